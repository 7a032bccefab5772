"""Export a handgrad network to ONNX, and run an exported model with onnxruntime.

Each layer becomes the standard ONNX operator that computes the same function:

=====================  ==========================================================
handgrad               ONNX
=====================  ==========================================================
Linear                 Gemm(x, W, b, transB=1): x Wᵀ + b, W stored (out, in)
ReLU, Tanh, Sigmoid    Relu, Tanh, Sigmoid
LeakyReLU(α)           LeakyRelu(alpha=α)
Softplus               Softplus
GELU(approximate)      Gelu(approximate) from opset 20; below, its formula with Erf / Tanh
Softmax, LogSoftmax    Softmax(axis=-1), LogSoftmax(axis=-1); β ≠ 1 adds Mul(β) before
Scale(c), scale=c      Mul(c) (5·ReLU is Relu then Mul 5)
Identity               Identity
=====================  ==========================================================

The input is named ``x`` with shape (N, in_features), N symbolic; the output ``y``.
Weights are stored under the key names of :func:`handgrad.torch_interop.state_dict`
('0.weight', '0.bias', ...). Needs the ``onnx`` package; running needs ``onnxruntime``.
onnxruntime's CPU kernels for LeakyRelu, Softplus, Gelu and Erf take float32 only,
so float64 models that use them run in ONNX's reference evaluator but not there.

>>> from handgrad import MLP
>>> model = export_onnx(MLP(4, [8], 3, g="softmax", seed=0), "net.onnx")  # doctest: +SKIP
>>> run_onnx("net.onnx", X)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .backend import to_numpy
from .layers import GELU, Linear, Scale, resolve_dtype
from .registry import activation_spec
from .torch_interop import layer_scales, model_scalings, module_count

DEFAULT_OPSET = 21
MIN_OPSET = 13  # Softmax/LogSoftmax act on one axis from opset 13 on


def _onnx() -> Any:
    from .optional import require

    return require("onnx", extra="onnx", purpose="ONNX export")


class _Graph:
    """Collects nodes and initializers; ``value`` is the name of the running tensor."""

    def __init__(self, dtype: np.dtype, opset: int) -> None:
        onnx = _onnx()
        self.helper, self.numpy_helper = onnx.helper, onnx.numpy_helper
        self.dtype, self.opset = dtype, opset
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.value = "x"
        self._n = 0

    def constant(self, name: str, array: Any) -> str:
        arr = np.array(to_numpy(array), dtype=self.dtype)
        self.initializers.append(self.numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type: str, inputs: list[str], prefix: str, **attrs: Any) -> str:
        self._n += 1
        out = f"{prefix}/{op_type}_{self._n}"
        self.nodes.append(self.helper.make_node(op_type, [self.value, *inputs],
                                                [out], name=out, **attrs))
        self.value = out
        return out

    def scalar_op(self, op_type: str, c: float, prefix: str) -> str:
        return self.op(op_type, [self.constant(f"{prefix}/{op_type.lower()}_{self._n + 1}", c)], prefix)


def _gelu_formula(g: _Graph, layer: GELU, prefix: str) -> None:
    """GELU from primitive ops, for opsets below 20 (which have no Gelu)."""
    x = g.value
    if layer.approximate == "tanh":
        # ½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))
        g.op("Mul", [x], prefix)
        g.op("Mul", [x], prefix)  # x³
        g.scalar_op("Mul", 0.044715, prefix)
        g.op("Add", [x], prefix)
        g.scalar_op("Mul", math.sqrt(2.0 / math.pi), prefix)
        g.op("Tanh", [], prefix)
    else:
        # ½ x (1 + erf(x / √2))
        g.scalar_op("Mul", 1.0 / math.sqrt(2.0), prefix)
        g.op("Erf", [], prefix)
    g.scalar_op("Add", 1.0, prefix)
    g.op("Mul", [x], prefix)
    g.scalar_op("Mul", 0.5, prefix)


def _add_layer(g: _Graph, layer: Any, index: int) -> None:
    prefix = f"{index}"
    if isinstance(layer, Linear):
        W = g.constant(f"{index}.weight", layer.params["W"])
        inputs = [W] + ([g.constant(f"{index}.bias", layer.params["b"])] if "b" in layer.params else [])
        g.op("Gemm", inputs, prefix, transB=1)
        return
    if isinstance(layer, Scale):
        g.scalar_op("Mul", layer.c, prefix)
        return
    before, after = layer_scales(layer)
    try:
        onnx_op = activation_spec(layer).onnx
    except ValueError:
        onnx_op = None
    op = (onnx_op, {}) if isinstance(onnx_op, str) else onnx_op(layer, g.opset) if onnx_op is not None else None
    if op is None and not isinstance(layer, GELU):
        raise ValueError(f"export_onnx: layer {index} {layer!r} has no ONNX equivalent")
    if before is not None:
        g.scalar_op("Mul", before, prefix)
    if op is None:  # GELU below opset 20
        _gelu_formula(g, layer, prefix)
    else:
        g.op(op[0], [], prefix, **op[1])
    if after is not None:
        g.scalar_op("Mul", after, prefix)


def export_onnx(net: Any, path: str | os.PathLike | None = None, *, opset: int = DEFAULT_OPSET, dtype: Any = None,
                input_name: str = "x", output_name: str = "y") -> Any:
    """The ONNX model (``onnx.ModelProto``) of ``net``; written to ``path`` when given.

    Parameters
    ----------
    net : a handgrad Sequential / MLP (any backend; weights are copied to NumPy), or a trained model
        (``handgrad.load_predictor(path)``): its input scaling then opens the graph (Sub, Div) and a
        regression model's target scaling closes it (Mul, Add), so the graph takes raw rows.
    path : where to write the ``.onnx`` file (atomically: a temporary file, then a rename).
    opset : ONNX opset, at least 13 (default 21).
    dtype : 'float32' or 'float64'; the network's own dtype by default.
    input_name, output_name : tensor names of the graph's input and output.
    """
    onnx = _onnx()
    net, x_scaling, y_scaling = model_scalings(net)
    if not hasattr(net, "layers"):
        raise TypeError(f"export_onnx expects a handgrad network (Sequential/MLP), got {type(net).__name__}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"opset must be an int >= {MIN_OPSET}, got {opset!r}")
    in_features = net.in_features
    if in_features is None:
        raise ValueError("export_onnx: the network has no Linear layer, so its input width is unknown")
    dtype = resolve_dtype(dtype if dtype is not None else net.dtype)
    g = _Graph(dtype, opset)
    g.value = input_name
    if x_scaling is not None:  # raw rows in: x' = (x - mean) / scale, the scaling fitted on the training split
        g.op("Sub", [g.constant("input.mean", x_scaling[0])], "input")
        g.op("Div", [g.constant("input.scale", x_scaling[1])], "input")
    index = 0
    for layer in net.layers:
        _add_layer(g, layer, index)
        index += module_count(layer)
    if y_scaling is not None:  # values out in the target's units: y = y'·scale + mean
        g.op("Mul", [g.constant("output.scale", y_scaling[1])], "output")
        g.op("Add", [g.constant("output.mean", y_scaling[0])], "output")
    g.nodes.append(onnx.helper.make_node("Identity", [g.value], [output_name], name="output"))
    elem = onnx.helper.np_dtype_to_tensor_dtype(dtype)
    out_shape = net.output_shape(("N", in_features))
    graph = onnx.helper.make_graph(
        g.nodes, "handgrad",
        [onnx.helper.make_tensor_value_info(input_name, elem, ["N", in_features])],
        [onnx.helper.make_tensor_value_info(output_name, elem, list(out_shape))],
        initializer=g.initializers,
    )
    from . import __version__

    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)],
                                   producer_name="handgrad", producer_version=__version__,
                                   doc_string=repr(net))
    model.ir_version = min(model.ir_version, 10)  # readable by onnxruntime releases of the last two years
    onnx.checker.check_model(model, full_check=True)
    if path is not None:
        _write(model, Path(path))
    return model


def _write(model: Any, path: Path) -> None:
    from .io import atomic_write_bytes

    atomic_write_bytes(path, model.SerializeToString())


def run_onnx(model: Any, X: Any, *, reference: bool = False) -> np.ndarray:
    """Outputs of an exported model (a path or a ModelProto) on X, with onnxruntime's CPU kernels
    (or ONNX's pure-Python reference evaluator with ``reference=True``)."""
    onnx = _onnx()
    if isinstance(model, (str, os.PathLike)):
        model = onnx.load(os.fspath(model))
    inp = model.graph.input[0]
    dtype = onnx.helper.tensor_dtype_to_np_dtype(inp.type.tensor_type.elem_type)
    X = np.ascontiguousarray(np.asarray(X, dtype=dtype))
    if X.ndim != 2:
        raise ValueError(f"run_onnx expects X of shape (N, features), got shape {X.shape}")
    if reference:
        from onnx.reference import ReferenceEvaluator

        outputs: Any = ReferenceEvaluator(model).run(None, {inp.name: X})
        return outputs[0]
    from .optional import require

    onnxruntime = require("onnxruntime", extra="onnx", purpose="running an ONNX model")
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {inp.name: X})[0]


__all__ = ["DEFAULT_OPSET", "export_onnx", "run_onnx"]
