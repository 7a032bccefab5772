"""PyTorch equivalents of handgrad networks and losses (torch is imported lazily).

``to_torch(net)`` builds an ``nn.Sequential`` with identical weights: handgrad's
Linear stores W as (out, in) like ``nn.Linear``, so the copy is direct.
``from_torch(module)`` goes the other way, from an ``nn.Sequential`` of supported
layers. ``state_dict(net)`` / ``load_state_dict(net, state)`` read and write the
weights under the key names of the equivalent ``nn.Sequential`` ('0.weight',
'0.bias', '2.weight', ...), so weights move between the two libraries by name.
``torch_loss(loss)`` returns the matching ``torch.nn`` loss. The gradient checks
use ``to_torch`` and ``torch_loss`` to compare every gradient with autograd.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .backend import backend_of, to_numpy, torch_dtype
from .layers import (
    GELU,
    Activation,
    Identity,
    Layer,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ReLU,
    Scale,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
    resolve_dtype,
)
from .registry import activation_names, activation_spec


def _torch() -> Any:
    from .optional import require

    return require("torch", extra="torch", purpose="PyTorch interop")


@functools.cache
def scale_module_class() -> Any:
    """The ``nn.Module`` for y = c·x (handgrad's Scale, and the c of 5·ReLU); one class per process."""
    module: Any = _torch().nn.Module  # torch is imported only here, so its classes are Any to mypy

    class ScaleModule(module):
        """y = c x (handgrad's Scale, and the c of 5·ReLU)."""

        def __init__(self, c: float) -> None:
            super().__init__()
            self.c = c

        def forward(self, x):
            return x * self.c

        def extra_repr(self) -> str:
            return f"c={self.c:g}"

    ScaleModule.__qualname__ = "ScaleModule"
    return ScaleModule


def _scale_module(c: float) -> Any:
    return scale_module_class()(c)


def torch_layers(layer: Any, dtype: Any) -> list[Any]:
    """The torch module(s) computing the same function as one handgrad layer."""
    nn = _torch().nn
    if isinstance(layer, Linear):
        mod = nn.Linear(layer.in_features, layer.out_features, bias="b" in layer.params, dtype=dtype)
        with _torch().no_grad():
            mod.weight.copy_(_torch().as_tensor(np.array(to_numpy(layer.params["W"])), dtype=dtype))
            if "b" in layer.params:
                mod.bias.copy_(_torch().as_tensor(np.array(to_numpy(layer.params["b"])), dtype=dtype))
        return [mod]
    if isinstance(layer, Scale):
        return [_scale_module(layer.c)]
    try:
        make = activation_spec(layer).torch
    except ValueError:
        make = None
    if make is None:
        raise ValueError(f"no PyTorch equivalent for {layer!r}")
    before, after = layer_scales(layer)
    return ([_scale_module(before)] if before is not None else []) + [make(nn, layer)] + \
        ([_scale_module(after)] if after is not None else [])


def to_torch(net: Any, dtype: Any = None) -> Any:
    """An ``nn.Sequential`` with the same layers and weights as ``net``.

    ``net`` may also be a trained model (:class:`~handgrad.inference.Predictor`, from
    ``handgrad.load_predictor``): its input scaling x' = (x - mean) / scale then opens the
    sequence and a regression model's target scaling y = y'·scale + mean closes it, so the
    module takes raw rows and returns values in the target's units, as ``model.predict`` does.

    ``dtype``: a torch dtype, ``"float32"``/``"float64"`` (or a NumPy float dtype);
    float64 by default, as the gradient checks want.
    """
    torch = _torch()
    dtype = _torch_dtype(dtype) if dtype is not None else torch.float64
    net, x_scaling, y_scaling = model_scalings(net)
    modules = [m for layer in net.layers for m in torch_layers(layer, dtype)]
    if x_scaling is not None:
        modules.insert(0, affine_module_class()(*x_scaling, inverse=False, dtype=dtype))
    if y_scaling is not None:
        modules.append(affine_module_class()(*y_scaling, inverse=True, dtype=dtype))
    return torch.nn.Sequential(*modules)


def model_scalings(model: Any) -> tuple[Any, tuple[Any, Any] | None, tuple[Any, Any] | None]:
    """(network, (mean, scale) of the inputs or None, (mean, scale) of regression targets or None).

    A plain network has no scaling; a trained model (anything with ``net`` and ``x_scaler``)
    carries the standardisation fitted on its training split.
    """
    if not hasattr(model, "x_scaler") or not hasattr(model, "net"):
        return model, None, None

    def pair(scaler: Any) -> tuple[Any, Any] | None:
        return None if scaler is None else (np.asarray(scaler.mean_, np.float64), np.asarray(scaler.scale_, np.float64))

    y = pair(model.y_scaler) if getattr(model, "task", None) == "regression" else None
    return model.net, pair(model.x_scaler), y


@functools.cache
def affine_module_class() -> Any:
    """The ``nn.Module`` of a standardisation: (x - mean) / scale, or its inverse y·scale + mean."""
    torch = _torch()
    module: Any = torch.nn.Module  # torch is imported only here, so its classes are Any to mypy

    class Standardize(module):
        """x' = (x - mean) / scale (``inverse=False``) or y = y'·scale + mean (``inverse=True``)."""

        def __init__(self, mean: Any, scale: Any, inverse: bool, dtype: Any) -> None:
            super().__init__()
            self.inverse = bool(inverse)
            self.register_buffer("mean", torch.as_tensor(np.asarray(mean), dtype=dtype))
            self.register_buffer("scale", torch.as_tensor(np.asarray(scale), dtype=dtype))

        def forward(self, x):
            return x * self.scale + self.mean if self.inverse else (x - self.mean) / self.scale

        def extra_repr(self) -> str:
            return f"features={self.mean.shape[0]}, inverse={self.inverse}"

    Standardize.__qualname__ = "Standardize"
    return Standardize


def _torch_dtype(dtype: Any) -> Any:
    """A torch dtype as is; anything else through handgrad's dtype rules (float32 or float64)."""
    if isinstance(dtype, _torch().dtype):
        return dtype
    return torch_dtype(resolve_dtype(dtype))


# ---------------------------------------------------------------------- torch -> handgrad
_BUILT_IN = (Identity, ReLU, LeakyReLU, Tanh, Sigmoid, GELU, Softplus, Softmax, LogSoftmax)
SUPPORTED_TORCH_LAYERS = ("Linear", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "GELU", "Softplus", "Identity",
                          "Softmax(dim=-1)", "LogSoftmax(dim=-1)", "ScaleModule (from to_torch)")


def from_torch(module: Any, dtype: Any = None) -> Any:
    """A handgrad :class:`~handgrad.model.Sequential` computing what ``module`` computes.

    ``module`` is an ``nn.Sequential`` (nested ones are flattened) of Linear, ReLU,
    LeakyReLU, Tanh, Sigmoid, GELU, Softplus (beta=1), Identity, Softmax(dim=-1) and
    LogSoftmax(dim=-1), or one such layer. Weights are copied (to NumPy). ``dtype``
    defaults to the first parameter's (float32 or float64). A layer ``to_torch`` wrote
    for a scale c (the c of 5·ReLU, the β of Softmax(beta)) folds back into its layer.
    Any other layer raises ValueError naming it and its position.
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch expects a torch.nn.Module (an nn.Sequential), got {type(module).__name__}")
    flat = _flatten(module, "")
    if dtype is None:
        first = next((p for p in module.parameters()), None)
        dtype = resolve_dtype(str(first.dtype)) if first is not None else np.dtype(np.float32)
    else:
        dtype = resolve_dtype(dtype)
    layers: list[Layer] = []
    for where, mod in flat:
        layer = _from_torch_layer(mod, where, dtype)
        if isinstance(layer, Scale) and layers:
            merged = _fold_scale(layers[-1], layer.c)
            if merged is not None:
                layers[-1] = merged
                continue
        layers.append(layer)
    layers = _fold_softmax_scale(layers)
    from .model import Sequential

    return Sequential(*layers)


def _flatten(module: Any, prefix: str) -> list[tuple[str, Any]]:
    torch = _torch()
    if isinstance(module, torch.nn.Sequential):
        if len(module) == 0 and not prefix:
            raise ValueError("from_torch: the nn.Sequential is empty; a network needs at least one layer")
        return [item for name, child in module.named_children()
                for item in _flatten(child, f"{prefix}{name}." if isinstance(child, torch.nn.Sequential)
                                     else f"{prefix}{name}")]
    return [(prefix or "module", module)]


def _from_torch_layer(mod: Any, where: str, dtype: np.dtype) -> Layer:
    nn = _torch().nn
    kind = type(mod).__name__
    if isinstance(mod, nn.Linear):
        layer = Linear(mod.in_features, mod.out_features, bias=mod.bias is not None, dtype=dtype, seed=0)
        _assign(layer.params["W"], mod.weight, f"{where}.weight")
        if mod.bias is not None:
            _assign(layer.params["b"], mod.bias, f"{where}.bias")
        return layer
    if isinstance(mod, scale_module_class()):
        return Scale(mod.c)
    simple = {nn.ReLU: ReLU, nn.Tanh: Tanh, nn.Sigmoid: Sigmoid, nn.Identity: Identity}
    if type(mod) in simple:
        return simple[type(mod)]()
    if isinstance(mod, nn.LeakyReLU):
        return LeakyReLU(mod.negative_slope)
    if isinstance(mod, nn.GELU):
        return GELU(mod.approximate)
    if isinstance(mod, nn.Softplus):
        if mod.beta != 1:
            raise ValueError(f"from_torch: layer {where} {mod} is not supported: handgrad's Softplus has beta=1")
        return Softplus()
    if isinstance(mod, (nn.Softmax, nn.LogSoftmax)):
        if mod.dim not in (-1, 1):
            raise ValueError(f"from_torch: layer {where} {kind}(dim={mod.dim}) is not supported: handgrad's "
                             f"{kind} works along the last axis of (N, features) input (dim=-1)")
        return Softmax() if isinstance(mod, nn.Softmax) else LogSoftmax()
    for name in activation_names():  # a registered activation whose torch module is this one's type
        spec = activation_spec(name)
        if spec.torch is not None and spec.layer_type not in _BUILT_IN and type(spec.torch(nn, spec.make())) is type(mod):
            return spec.make()
    raise ValueError(f"from_torch: layer {where} ({mod}) is not supported; supported layers: "
                     f"{', '.join(SUPPORTED_TORCH_LAYERS)}")


def _fold_scale(prev: Layer, c: float) -> Layer | None:
    """ReLU followed by ×c is ReLU(scale=c) (to_torch writes 5·ReLU as ReLU, ×5)."""
    if isinstance(prev, Activation) and prev.scale == 1.0 and c != 0:
        config = {"negative_slope": prev.negative_slope} if isinstance(prev, LeakyReLU) else \
            {"approximate": prev.approximate} if isinstance(prev, GELU) else {}
        return type(prev)(scale=c, **config)
    return None


def _fold_softmax_scale(layers: list[Layer]) -> list[Layer]:
    """×β followed by Softmax is Softmax(beta=β) (to_torch writes it that way)."""
    out: list[Layer] = []
    for layer in layers:
        if isinstance(layer, (Softmax, LogSoftmax)) and out and isinstance(out[-1], Scale) and out[-1].c > 0 \
                and layer.beta == 1.0:
            out[-1] = type(layer)(beta=out[-1].c)
            continue
        out.append(layer)
    return out


# ---------------------------------------------------------------------- state dicts
def layer_scales(layer: Layer) -> tuple[float | None, float | None]:
    """The multiplications around a layer's core op when exported (torch modules, ONNX
    nodes): (β before Softmax/LogSoftmax when β ≠ 1, an activation's scale c after it when
    c ≠ 1); None where there is none. One rule, so torch keys and ONNX names agree."""
    before = layer.beta if isinstance(layer, (Softmax, LogSoftmax)) and layer.beta != 1.0 else None
    after = layer.scale if isinstance(layer, Activation) and layer.scale != 1.0 else None
    return before, after


def module_count(layer: Layer) -> int:
    """How many modules ``torch_layers`` writes for ``layer`` (without importing torch)."""
    return 1 + sum(scale is not None for scale in layer_scales(layer))


def torch_names(net: Any) -> list[tuple[str, Layer, str]]:
    """(PyTorch key, layer, handgrad param key) for every parameter: ('0.weight', Linear, 'W'), ..."""
    out: list[tuple[str, Layer, str]] = []
    index = 0
    for layer in net.layers:
        if isinstance(layer, Linear):
            out.append((f"{index}.weight", layer, "W"))
            if "b" in layer.params:
                out.append((f"{index}.bias", layer, "b"))
        index += module_count(layer)
    return out


def state_dict(net: Any, *, tensors: bool = False) -> dict[str, Any]:
    """The weights under the key names of ``to_torch(net)``'s ``state_dict()``.

    Values are NumPy copies, or torch tensors with ``tensors=True`` (ready for
    ``module.load_state_dict``).
    """
    state = {key: np.array(to_numpy(layer.params[pkey]), order="C", copy=True) for key, layer, pkey in torch_names(net)}
    if tensors:
        torch = _torch()
        state = {k: torch.from_numpy(v) for k, v in state.items()}
    return state


def load_state_dict(net: Any, state: Any, *, strict: bool = True) -> dict[str, list[str]]:
    """Copy weights from a PyTorch-style state dict (NumPy arrays or tensors) into ``net``, in place.

    Keys follow ``to_torch(net)`` ('0.weight', '0.bias', ...). Every shape must match;
    with ``strict`` (the default) missing and unexpected keys are errors too. One
    ValueError lists every problem; nothing is copied unless all is well. Values are
    cast to the network's dtype. Returns ``{"missing_keys": [...], "unexpected_keys": [...]}``.
    """
    if not hasattr(state, "keys"):
        raise TypeError(f"load_state_dict expects a mapping of names to arrays, got {type(state).__name__}")
    names = torch_names(net)
    expected = {key: (layer, pkey) for key, layer, pkey in names}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    problems = [f"{k}: expected shape {tuple(expected[k][0].params[expected[k][1]].shape)}, got "
                f"{tuple(getattr(state[k], 'shape', ()))}" for k in expected if k in state
                and tuple(getattr(state[k], "shape", ())) != tuple(expected[k][0].params[expected[k][1]].shape)]
    if strict and missing:
        problems.append(f"missing keys: {missing}")
    if strict and unexpected:
        problems.append(f"unexpected keys: {unexpected} (the network's keys are {list(expected)})")
    if problems:
        raise ValueError("load_state_dict: the state does not fit the network:\n  " + "\n  ".join(problems))
    for key, (layer, pkey) in expected.items():
        if key in state:
            _assign(layer.params[pkey], state[key], key)
    return {"missing_keys": missing, "unexpected_keys": unexpected}


def _assign(target: Any, value: Any, name: str) -> None:
    """target[...] = value, in place, cast to target's dtype and backend."""
    arr = np.asarray(to_numpy(value) if not isinstance(value, np.ndarray) else value)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected a float array, got dtype {arr.dtype}")
    if tuple(arr.shape) != tuple(target.shape):
        raise ValueError(f"{name}: expected shape {tuple(target.shape)}, got {tuple(arr.shape)}")
    if isinstance(target, np.ndarray):
        np.copyto(target, arr, casting="unsafe")
    else:
        target[...] = backend_of(target).asarray(arr.astype(resolve_dtype(target.dtype)), resolve_dtype(target.dtype))


def torch_loss(loss: Any) -> Any:
    """``fn(y_hat, y) -> J`` computing ``loss`` with torch.nn.functional."""
    from .losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, SquaredErrorLoss

    F = _torch().nn.functional
    if isinstance(loss, MSELoss):
        return lambda y_hat, y: F.mse_loss(y_hat, y)
    if isinstance(loss, SquaredErrorLoss):
        if loss.reduction == "sum":
            return lambda y_hat, y: F.mse_loss(y_hat, y, reduction="sum")
        return lambda y_hat, y: F.mse_loss(y_hat, y, reduction="sum") / y_hat.shape[0]
    if isinstance(loss, BCELoss):
        return lambda y_hat, y: F.binary_cross_entropy(y_hat, y)
    if isinstance(loss, BCEWithLogitsLoss):
        return lambda y_hat, y: F.binary_cross_entropy_with_logits(y_hat, y)
    if isinstance(loss, CrossEntropyLoss):
        return lambda y_hat, y: F.cross_entropy(y_hat, y)
    raise ValueError(f"no PyTorch equivalent for {loss!r}")


__all__ = [
    "SUPPORTED_TORCH_LAYERS", "from_torch", "load_state_dict", "scale_module_class", "state_dict", "to_torch",
    "torch_layers", "torch_loss", "torch_names",
]
