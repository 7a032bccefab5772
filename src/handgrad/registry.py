r"""The registry of activations and losses, keyed by the names users type.

``"relu"``, ``"5relu"``, ``"tanh"``, ``"bce"``: the estimator, the CLI's ``--f``/``--g``,
``MLP(f=...)``, ``explain``, model files, the PyTorch and ONNX exporters and the op
tests all read this one table, so adding an activation is one registration:

>>> import numpy as np, handgrad as hg
>>> from handgrad.functional import sigmoid
>>> hg.register_activation(
...     "swish", forward=lambda x: x * sigmoid(x),
...     derivative=lambda x: sigmoid(x) * (1 + x * (1 - sigmoid(x))),
...     formula="x·σ(x)", derivative_formula="σ(x)(1 + x(1 − σ(x)))", torch="SiLU", replace=True)
<class 'handgrad.registry.Swish'>
>>> hg.MLP(2, [3], 1, f="swish").f_name
'swish'

The class form registers an :class:`~handgrad.layers.Activation` subclass (its own
``_forward``/``_backward``/``_derivative`` and ``derivation``) with ``layer=``. The
built-ins below are registered the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .derivation import activation_record
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
)
from .losses import LOSSES, Loss
from .validation import lookup_name, normalize_name

OnnxSpec = str | Callable[[Any, int], "tuple[str, dict[str, Any]] | None"]


@dataclass(frozen=True)
class ActivationSpec:
    """One registered activation.

    name : the name users type (lower case, ``_`` between words).
    make : ``make(scale=c)`` (or ``make()`` when not ``scalable``) -> a fresh layer.
    layer_type : the class of the layers ``make`` returns.
    matches : whether a layer is this activation (default: its type is ``layer_type``).
    scalable : whether a leading number scales it (``"5relu"``).
    torch : ``torch(nn, layer) -> nn.Module`` computing φ (the scale c is added by the
        exporter), or None where PyTorch has no such module.
    onnx : the ONNX op computing φ (``"Relu"``), or ``onnx(layer, opset) -> (op, attributes)``
        (None: no single op at that opset), or None.
    """

    name: str
    make: Callable[..., Layer]
    layer_type: type
    matches: Callable[[Layer], bool] | None = None
    scalable: bool = True
    torch: Callable[[Any, Any], Any] | None = None
    onnx: OnnxSpec | None = None

    def describes(self, layer: Layer) -> bool:
        if self.matches is not None:
            return self.matches(layer)
        return type(layer) is self.layer_type


_SPECS: dict[str, ActivationSpec] = {}  # by name
ACTIVATIONS: dict[str, Callable[..., Layer]] = {}  # every name and alias -> its spec's ``make``
_ALIASES: dict[str, str] = {}  # every name and alias -> the name
_SCALED = re.compile(r"^([0-9]*\.?[0-9]+)\s*\*?\s*([a-z_]+)$")


def add_activation(spec: ActivationSpec, aliases: tuple[str, ...] = (), replace: bool = False) -> ActivationSpec:
    """Register ``spec`` under its name and ``aliases`` (the low-level form of
    :func:`register_activation`). Raises ValueError for a name taken, unless ``replace``."""
    names = [normalize_name(n) for n in (spec.name, *aliases)]
    for n in names:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", n) or n in {"activation"}:
            raise ValueError(f"an activation name is a word of letters, digits and '_' starting with a letter, got {n!r}")
        taken = _ALIASES.get(n)
        if taken is not None and not (replace and taken == spec.name):
            raise ValueError(f"activation name {n!r} is already registered (for {taken!r}); pass replace=True to replace it")
    for n in names:
        _ALIASES[n] = spec.name
        ACTIVATIONS[n] = spec.make
    _SPECS[spec.name] = spec
    return spec


def register_activation(
    name: str,
    forward: Callable[[Any], Any] | None = None,
    derivative: Callable[[Any], Any] | None = None,
    formula: str | None = None,
    derivative_formula: str | None = None,
    *,
    layer: type | None = None,
    latex: str | None = None,
    derivative_latex: str | None = None,
    aliases: tuple[str, ...] = (),
    torch: str | Callable[[Any, Layer], Any] | None = None,
    onnx: OnnxSpec | None = None,
    replace: bool = False,
) -> type:
    """Register an elementwise activation y = c·φ(x) under ``name``; returns its layer class.

    Function form: ``forward`` is φ and ``derivative`` is φ′, both elementwise functions of
    an array (use the array's own operations, or :mod:`handgrad.functional`, to run on every
    backend); ``formula`` and ``derivative_formula`` write φ and φ′ in ``x`` for explain
    (``latex``/``derivative_latex`` default to the same text). Class form: ``layer`` is an
    :class:`~handgrad.layers.Activation` subclass whose constructor takes ``scale``.

    ``torch``: the name of the ``torch.nn`` module computing φ (``"SiLU"``) or
    ``torch(nn, layer) -> module``; ``onnx``: the ONNX op type. Then the activation works
    by name in ``MLP``, the CLI's ``--f``/``--g``, explain, gradcheck, model files, and
    torch/ONNX export where those are given.
    """
    key = normalize_name(name)
    if layer is None:
        if not (callable(forward) and callable(derivative) and formula and derivative_formula):
            raise TypeError("register_activation needs forward, derivative, formula and derivative_formula "
                            "(or a layer= class)")
        layer = _elementwise_class(key, forward, derivative, (formula, latex or formula),
                                   (derivative_formula, derivative_latex or derivative_formula))
    elif not (isinstance(layer, type) and issubclass(layer, Activation)):
        raise TypeError(f"layer must be an Activation subclass, got {layer!r}")
    torch_make = (lambda nn, _layer, cls=torch: getattr(nn, cls)()) if isinstance(torch, str) else torch
    add_activation(ActivationSpec(key, layer, layer, torch=torch_make, onnx=onnx), aliases, replace)
    return layer


def _elementwise_class(name: str, phi: Callable, dphi: Callable, formula: tuple[str, str],
                       derivative: tuple[str, str]) -> type:
    def _in_x(text: str) -> str:  # the user's x becomes the record's $x
        return re.sub(r"(?<![A-Za-z_$\\])x(?![A-Za-z_])", "$x", text)

    record = activation_record(name.replace("_", " ").title().replace(" ", ""),
                               (_in_x(formula[0]), _in_x(formula[1])), (_in_x(derivative[0]), _in_x(derivative[1])))
    namespace = {
        "__doc__": f"y = c·{formula[0]}, derivative c·{derivative[0]} (registered as {name!r}).",
        "derivation": record,
        "_forward": lambda self, x: (phi(x), x),
        "_backward": lambda self, dJ_dy, x: dJ_dy * dphi(x),
        "_derivative": lambda self, x: dphi(x),
        "__module__": __name__,
    }
    return type(record.name, (Activation,), namespace)


def unregister_activation(name: str) -> None:
    """Remove a registered activation and its aliases (the built-ins included: use with care)."""
    key = _ALIASES.get(normalize_name(name))
    if key is None:
        raise ValueError(f"no activation named {name!r} is registered")
    for alias in [a for a, n in _ALIASES.items() if n == key]:
        del _ALIASES[alias], ACTIVATIONS[alias]
    del _SPECS[key]


# ---------------------------------------------------------------------- lookups
def activation_names(*, elementwise: bool | None = None) -> list[str]:
    """Every registered activation name (aliases left out), in registration order;
    ``elementwise=True``/``False`` keeps only the elementwise ones (y_i = c·φ(x_i)) or the
    others (softmax, log-softmax)."""
    return [name for name, spec in _SPECS.items()
            if elementwise is None or issubclass(spec.layer_type, Activation) == elementwise]


def activation_spec(name_or_layer: str | Layer) -> ActivationSpec:
    """The spec of a name (or alias) or of an activation layer; ValueError if none."""
    if isinstance(name_or_layer, Layer):
        for spec in _SPECS.values():
            if spec.describes(name_or_layer):
                return spec
        raise ValueError(f"{name_or_layer!r} is not a registered activation")
    return _SPECS[lookup_name("activation", name_or_layer, _ALIASES)]


def make_activation(spec: Any) -> Layer:
    """A layer from a name ('relu', 'tanh', '5relu', '5*relu', 'leaky_relu', ...) or a Layer.

    Names are case-insensitive; '-', '_' and spaces are alike. A leading number
    scales the activation: '5relu' is the seed's 5·ReLU.
    """
    if isinstance(spec, Layer):
        return spec
    if isinstance(spec, type) and issubclass(spec, Layer):
        return spec()
    if isinstance(spec, str):
        match = _SCALED.match(normalize_name(spec))
        if match:
            entry = activation_spec(match.group(2))
            if not entry.scalable:
                raise ValueError(f"{entry.name} cannot be scaled; got {spec!r} (use Softmax(beta=...))")
            return entry.make(scale=float(match.group(1)))
    return activation_spec(spec).make()


def activation_name(layer: Layer) -> str:
    """The registry name of an activation layer ('5relu' for ReLU(scale=5))."""
    base = activation_spec(layer).name
    scale = getattr(layer, "scale", 1.0)
    return base if scale == 1.0 else f"{scale:g}{base}"


# ---------------------------------------------------------------------- configs
LAYER_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (Linear, Scale, Identity, ReLU, LeakyReLU, Tanh, Sigmoid, Softplus, GELU, Softmax, LogSoftmax)
}
CONFIG_ATTRIBUTES = ("scale", "negative_slope", "approximate", "beta")  # an activation's settings in a model file


def layer_config(layer: Layer) -> dict[str, Any]:
    """A layer's architecture as plain JSON-able data (no weights).

    Built-in layers are recorded by class name; other registered activations as
    ``{"type": "Activation", "name": ..., "scale": ...}``, rebuilt by name on load.
    """
    kind = type(layer).__name__
    if isinstance(layer, Linear) and kind in LAYER_TYPES:
        return {"type": kind, "in_features": layer.in_features, "out_features": layer.out_features,
                "bias": "b" in layer.params}
    if isinstance(layer, Scale) and kind in LAYER_TYPES:
        return {"type": kind, "c": layer.c}
    if LAYER_TYPES.get(kind) is type(layer):
        return {"type": kind, **{a: getattr(layer, a) for a in CONFIG_ATTRIBUTES if hasattr(layer, a)}}
    try:
        name = activation_spec(layer).name
    except ValueError:
        raise ValueError(f"cannot describe {layer!r}: not one of {', '.join(LAYER_TYPES)} "
                         "nor a registered activation") from None
    return {"type": "Activation", "name": name, "scale": getattr(layer, "scale", 1.0)}


def layer_from_config(config: Any, *, dtype: Any = None, backend: Any = "numpy") -> Layer:
    """Rebuild a layer from :func:`layer_config` data; only known types and registered
    names, never code."""
    import numpy as np

    dtype = np.float32 if dtype is None else dtype
    kind = config.get("type") if isinstance(config, dict) else None
    if kind == "Activation":
        kwargs = {k: v for k, v in config.items() if k != "type"}
        _only(kwargs, {"name", "scale"}, "Activation")
        entry = activation_spec(str(kwargs.get("name")))
        return entry.make(scale=kwargs.get("scale", 1.0)) if entry.scalable else entry.make()
    if kind not in LAYER_TYPES:
        got = kind if isinstance(config, dict) else type(config).__name__
        raise ValueError(f"unknown layer type {got!r}; known: {', '.join(LAYER_TYPES)}, "
                         "Activation (a registered name)")
    kwargs = {k: v for k, v in config.items() if k != "type"}
    cls = LAYER_TYPES[kind]
    if cls is Linear:
        _only(kwargs, {"in_features", "out_features", "bias"}, "Linear")
        return Linear(kwargs["in_features"], kwargs["out_features"], bias=kwargs.get("bias", True),
                      dtype=dtype, backend=backend, seed=0)
    if cls is Scale:
        _only(kwargs, {"c"}, "Scale")
        return Scale(kwargs["c"])
    _only(kwargs, set(CONFIG_ATTRIBUTES), cls.__name__)
    return cls(**kwargs)


def _only(kwargs: dict, allowed: set, name: str) -> None:
    unknown = set(kwargs) - allowed
    if unknown:
        raise ValueError(f"{name} config has unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")


# ---------------------------------------------------------------------- losses
def loss_names() -> list[str]:
    """Every registered loss name (aliases left out: the first name of each class), in registration order."""
    first: dict[Any, str] = {}
    for name, cls in LOSSES.items():
        first.setdefault(cls, name)
    return list(first.values())


def register_loss(name: str, loss: type[Loss], aliases: tuple[str, ...] = (), replace: bool = False) -> type[Loss]:
    """Register a :class:`~handgrad.losses.Loss` subclass under ``name`` (and ``aliases``)."""
    if not (isinstance(loss, type) and issubclass(loss, Loss)):
        raise TypeError(f"loss must be a Loss subclass, got {loss!r}")
    for n in (normalize_name(name), *map(normalize_name, aliases)):
        if n in LOSSES and LOSSES[n] is not loss and not replace:
            raise ValueError(f"loss name {n!r} is already registered; pass replace=True to replace it")
        LOSSES[n] = loss
    return loss


# ---------------------------------------------------------------------- built-ins
def _gelu(approximate: str) -> Callable[[Any], bool]:
    return lambda layer: type(layer) is GELU and layer.approximate == approximate


def _onnx_gelu(layer: Any, opset: int) -> tuple[str, dict[str, Any]] | None:
    return ("Gelu", {"approximate": layer.approximate}) if opset >= 20 else None


for _spec, _aliases in (
    (ActivationSpec("identity", Identity, Identity, torch=lambda nn, layer: nn.Identity(), onnx="Identity"), ("linear",)),
    (ActivationSpec("relu", ReLU, ReLU, torch=lambda nn, layer: nn.ReLU(), onnx="Relu"), ()),
    (ActivationSpec("leaky_relu", LeakyReLU, LeakyReLU, torch=lambda nn, layer: nn.LeakyReLU(layer.negative_slope),
                    onnx=lambda layer, opset: ("LeakyRelu", {"alpha": float(layer.negative_slope)})), ("leakyrelu",)),
    (ActivationSpec("gelu", GELU, GELU, _gelu("none"), torch=lambda nn, layer: nn.GELU(), onnx=_onnx_gelu), ()),
    (ActivationSpec("gelu_tanh", lambda scale=1.0: GELU("tanh", scale), GELU, _gelu("tanh"),
                    torch=lambda nn, layer: nn.GELU(approximate="tanh"), onnx=_onnx_gelu), ()),
    (ActivationSpec("tanh", Tanh, Tanh, torch=lambda nn, layer: nn.Tanh(), onnx="Tanh"), ()),
    (ActivationSpec("sigmoid", Sigmoid, Sigmoid, torch=lambda nn, layer: nn.Sigmoid(), onnx="Sigmoid"), ("logistic",)),
    (ActivationSpec("softplus", Softplus, Softplus, torch=lambda nn, layer: nn.Softplus(), onnx="Softplus"), ()),
    (ActivationSpec("softmax", Softmax, Softmax, scalable=False, torch=lambda nn, layer: nn.Softmax(dim=-1),
                    onnx=lambda layer, opset: ("Softmax", {"axis": -1})), ()),
    (ActivationSpec("log_softmax", LogSoftmax, LogSoftmax, scalable=False,
                    torch=lambda nn, layer: nn.LogSoftmax(dim=-1),
                    onnx=lambda layer, opset: ("LogSoftmax", {"axis": -1})), ()),
):
    add_activation(_spec, _aliases)


__all__ = [
    "ACTIVATIONS", "CONFIG_ATTRIBUTES", "LAYER_TYPES", "ActivationSpec", "activation_name", "activation_names",
    "activation_spec", "add_activation", "layer_config", "layer_from_config", "loss_names", "make_activation",
    "register_activation", "register_loss", "unregister_activation",
]
