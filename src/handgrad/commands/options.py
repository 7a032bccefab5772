"""The command-line options shared by ``explain``, ``graph`` and ``plot``: the network (a preset
and sizes, or a saved model), number lists and output files."""

from __future__ import annotations

import argparse
import sys
from typing import Any

PRESET_HELP = ("regression (5relu/identity/squared error), classification-mse (tanh/sigmoid/squared error), "
               "classification-bce (tanh/sigmoid/BCE), classification-relu (relu/sigmoid/BCE)")

def network_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("network (as for 'handgrad train')")
    g.add_argument("--preset", metavar="NAME", help=f"one of the homework's configurations (NYU DS-GA 1008 homework 1): {PRESET_HELP}")
    g.add_argument("--f", metavar="NAME", help="hidden activation: relu, 5relu, tanh, gelu, leaky_relu, ...")
    g.add_argument("--g", metavar="NAME", help="output activation: identity, sigmoid, softmax, ...")
    g.add_argument("--loss", metavar="NAME", help="mse, squared_error, bce, bce_with_logits, cross_entropy")
    g.add_argument("--n", type=int, metavar="N", help="inputs (default 3)")
    g.add_argument("--m", type=int, metavar="M", help="hidden units of the one hidden layer (default 4)")
    g.add_argument("--K", type=int, metavar="K", help="outputs (default 2)")
    g.add_argument("--hidden", type=int, action="append", metavar="M",
                   help="width of a hidden layer; repeat for depth (instead of --m)")
    g.add_argument("--seed", type=int, default=0, help="seed of the weights and of drawn points (default 0)")
    g.add_argument("--model", metavar="FILE",
                   help="a model saved by 'handgrad train --out DIR' (DIR/model.safetensors, or DIR) instead of "
                        "--preset and the sizes; its loss comes from the file (else --loss)")


SIZE_OPTIONS = ("preset", "f", "g", "n", "m", "K", "hidden")


def model_path(path: str) -> str:
    """FILE as given, or DIR/model.safetensors when DIR is a 'handgrad train --out' directory."""
    import os

    from .common import MODEL_FILE

    inner = os.path.join(path, MODEL_FILE)
    return inner if os.path.isdir(path) and os.path.isfile(inner) else path


def load(args: argparse.Namespace, need_loss: bool = True) -> tuple[Any, Any, str]:
    """(net, loss, one line on the file) for --model; a bad file raises ModelFileError (exit 1)."""
    from ..cli import UsageError
    from ..errors import ModelFileError
    from ..explain import describe_model, load_network

    given = [f"--{name}" for name in SIZE_OPTIONS if getattr(args, name) is not None]
    if given:
        raise UsageError(f"--model takes the network from the file; leave out {', '.join(given)}")
    path = model_path(args.model)
    try:
        net, loss, meta = load_network(path, args.loss, need_loss=need_loss)
    except ModelFileError:
        raise
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--model: {exc}") from None
    return net, loss, describe_model(path, net, meta)


def network(args: argparse.Namespace, need_loss: bool = True) -> tuple[Any, Any, str]:
    """(net, loss, source line): from --model, else built from --preset and the sizes."""
    if args.model is not None:
        return load(args, need_loss)
    return (*build(args), "")


def build(args: argparse.Namespace, overrides: dict[str, Any] | None = None) -> Any:
    from ..cli import UsageError
    from ..explain import build_network

    spec = {"preset": args.preset, "f": args.f, "g": args.g, "loss": args.loss, "n": args.n, "m": args.m,
            "K": args.K, "hidden": args.hidden}
    spec.update(overrides or {})
    try:  # an unknown preset, size or name: build_network's message, as a usage error
        return build_network(spec.pop("preset"), seed=args.seed, **spec)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def numbers(text: str, what: str) -> list[list[float]]:
    """'1,2,3' -> [[1, 2, 3]]; rows separated by ';'."""
    from ..cli import UsageError

    rows = []
    for row in text.split(";"):
        if not row.strip():
            continue
        try:
            rows.append([float(v) for v in row.replace(" ", ",").split(",") if v])
        except ValueError:
            raise UsageError(f"{what} must be numbers separated by commas (rows by ';'), got {text!r}") from None
    if not rows:
        raise UsageError(f"{what} is empty")
    return rows


def write(text: str, output: str | None, quiet: bool = False, *, force: bool = False, inputs: Any = ()) -> None:
    """Text to standard output, or to ``output`` under handgrad.outputs' rule (``force``: --force)."""
    from ..outputs import emit, write_text

    if output is None or output == "-":
        emit(text, end="")
        return
    path = write_text(output, text, force=force, inputs=inputs, what="--output")
    if not quiet:
        print(f"wrote {path}", file=sys.stderr)
