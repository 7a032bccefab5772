"""``handgrad export MODEL --onnx FILE | --torch FILE``: a trained model for other runtimes.

The exported graph takes raw rows: the input scaling fitted on the training split (and,
for regression, the target scaling) is inside it, so ONNX Runtime or PyTorch (``torch.export.load(FILE).module()``) give what
``handgrad predict`` gives, with no handgrad installed.
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import MODEL_HELP, examples, load_model_arg, note, usage


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export", help="write a trained model as ONNX or a PyTorch program (raw inputs, scaling included)",
        description="Write a model trained by 'handgrad train --out' for other runtimes. The graph includes the "
                    "input scaling (and a regression model's target scaling), so it takes raw rows and returns "
                    "what 'handgrad predict' computes: class probabilities or scores, or values in the target's "
                    "units. --onnx needs 'handgrad[onnx]', --torch needs 'handgrad[torch]'.",
        **examples(
            ("handgrad export runs/m --onnx model.onnx", "ONNX (run it with onnxruntime on raw rows)"),
            ("handgrad export runs/m --torch model.pt2", "torch.export.load('model.pt2').module(), no handgrad"),
        ))
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--onnx", metavar="FILE", help="write an ONNX model (input 'x' (N, features), output 'y')")
    p.add_argument("--torch", metavar="FILE", help="write a PyTorch program (torch.export.save; load it with "
                                                   "torch.export.load(FILE).module())")
    p.add_argument("--dtype", choices=("float32", "float64"), help="precision of the exported graph "
                                                                   "(default: the model's own)")
    p.add_argument("--opset", type=int, help="ONNX opset (default: handgrad.onnx_export.DEFAULT_OPSET)")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    p.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    if not args.onnx and not args.torch:
        raise usage("name what to write: --onnx FILE and/or --torch FILE")
    model = load_model_arg(args.model)
    dtype = args.dtype or str(model.net.dtype)
    scaled = "input scaling" + (" and target scaling" if model.y_scaler is not None and model.task == "regression"
                                else "") + " inside" if model.x_scaler is not None else "no scaling (trained on raw inputs)"
    if args.onnx:
        _onnx(args, model, dtype)
        note(args, f"wrote {args.onnx} (ONNX, {dtype}, {scaled})")
    if args.torch:
        _torch(args, model, dtype)
        note(args, f"wrote {args.torch} (torch.export program, {dtype}, {scaled})")
    return 0


def _onnx(args: argparse.Namespace, model: Any, dtype: str) -> None:
    from ..onnx_export import DEFAULT_OPSET, export_onnx

    try:
        export_onnx(model, args.onnx, dtype=dtype, opset=args.opset if args.opset is not None else DEFAULT_OPSET)
    except ValueError as exc:
        raise usage(f"--onnx: {exc}") from None


def _torch(args: argparse.Namespace, model: Any, dtype: str) -> None:
    """A torch.export program (``torch.export.load(FILE).module()``), the batch dimension left free."""
    import io

    from ..io import atomic_write_bytes
    from ..optional import require
    from ..torch_interop import to_torch

    torch = require("torch", extra="torch", purpose="handgrad export --torch")
    module = to_torch(model, dtype=dtype).eval()
    example = torch.zeros((4, model.net.in_features), dtype=getattr(torch, dtype))
    program = torch.export.export(module, (example,), dynamic_shapes=({0: torch.export.Dim("N")},))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    atomic_write_bytes(args.torch, buffer.getvalue())
