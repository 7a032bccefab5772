r"""Layers: stateful wrappers over :mod:`handgrad.functional`.

A layer's ``forward(x)`` stores in ``self.cache`` only what its backward needs;
``backward(dJ_dy)`` returns ``dJ/dx`` and *adds* parameter gradients into
``self.grads`` (keys mirror ``self.params``: ``W`` -> ``dJ_dW``) until
``zero_grad()``. Each layer also declares its :class:`~handgrad.derivation.Derivation`
(forward formula, Jacobian, backward rule), gives its Jacobian explicitly
(``jacobian(x)``, shape ``(N, out, in)``) and reports ``output_shape``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from . import functional as F
from .backend import Backend, backend_of, namespace_of, resolve_backend, to_numpy
from .derivation import Derivation, Formula, activation_record
from .storage import ARRAYS_REPLACED, ArrayDict, PackedParameters, counted_dict
from .validation import as_array, check_2d, check_positive_float, check_size, lookup_name, make_rng

Array = Any
DTYPES = {"float32": np.float32, "float64": np.float64}


def resolve_dtype(dtype: Any) -> np.dtype:
    """float32 or float64, from a NumPy/torch dtype or its name."""
    name = str(dtype).replace("torch.", "").replace("<class 'numpy.", "").rstrip("'>")
    if name not in DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return np.dtype(DTYPES[name])


def _zero_(a: Array) -> None:
    if type(a) is np.ndarray:
        a.fill(0)
    else:
        a[...] = 0


def shape_of(a: Any) -> tuple:
    """The shape of an array of any backend (or of nested lists) as a plain tuple."""
    shape = getattr(a, "shape", None)
    return tuple(shape) if shape is not None else tuple(np.shape(a))


def check_upstream_shape(where: str, grad: Any, output_shape: tuple | None) -> None:
    """ValueError unless ``grad`` (dJ/d(output)) has the output's shape: broadcasting a (1, K), (N, 1),
    (K,) or scalar upstream gradient would give silently wrong parameter gradients."""
    if output_shape is not None and shape_of(grad) != output_shape:
        raise ValueError(f"{where}: the upstream gradient must have the output's shape {output_shape}, "
                         f"got {shape_of(grad)}")


def _records_output_shape(forward: Any) -> Any:
    @functools.wraps(forward)
    def wrapper(self: Layer, x: Any, *args: Any, **kwargs: Any) -> Any:
        y = forward(self, x, *args, **kwargs)
        self.output_shape_ = shape_of(y)
        return y
    return wrapper


def _checks_upstream_shape(backward: Any) -> Any:
    @functools.wraps(backward)
    def wrapper(self: Layer, dJ_dy: Any, *args: Any, **kwargs: Any) -> Any:
        if self._cache is not None:  # before forward, the layer's own RuntimeError says so
            check_upstream_shape(f"{self._label()}.backward", dJ_dy, self.output_shape_)
        return backward(self, dJ_dy, *args, **kwargs)
    return wrapper


class Layer:
    """Base class: parameters, gradients, a cache, and the forward/backward pair.

    Every subclass's ``forward`` records its output's shape and every ``backward`` first
    refuses an upstream gradient of another shape (:func:`check_upstream_shape`): the rule
    lives here once, so a new layer gets it without writing it.
    """

    derivation: Derivation | None = None
    output_shape_: tuple | None = None  # shape of the last forward's output (None: unknown)

    @property
    def params(self) -> dict[str, Array]:
        """The parameters by name (``W``, ``b``): a :class:`~handgrad.storage.ArrayDict`, which
        counts every array put in or taken out, as setting the whole dict counts too (a plain
        dict set here becomes one), so that code bound to the arrays sees any replacement."""
        return self._params

    @params.setter
    def params(self, value: dict[str, Array]) -> None:
        self._params = counted_dict(value)

    @property
    def grads(self) -> dict[str, Array]:
        """The gradients, keyed ``dJ_d`` + the parameter's name; an ArrayDict, as :attr:`params`."""
        return self._grads

    @grads.setter
    def grads(self, value: dict[str, Array]) -> None:
        self._grads = counted_dict(value)

    @property
    def cache(self) -> Any:
        """What backward needs from the last forward. Setting it from outside ``forward`` (the fast
        path fills caches itself) makes the output shape unknown, so no stale shape is enforced."""
        return self._cache

    @cache.setter
    def cache(self, value: Any) -> None:
        self._cache = value
        self.output_shape_ = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:
            cls.forward = _records_output_shape(cls.__dict__["forward"])  # type: ignore[method-assign]
        if "backward" in cls.__dict__:
            cls.backward = _checks_upstream_shape(cls.__dict__["backward"])  # type: ignore[method-assign]

    def __init__(self) -> None:
        self.params = ArrayDict()
        self.grads = ArrayDict()
        self.cache: Any = None
        self.name: str | None = None  # set by a containing Sequential ("layers[0]")
        self.grads_zero = True  # every gradient is known to be 0 (set by zero_grad, cleared by backward)
        self.storage: PackedParameters | None = None  # flat storage of params and grads, where packed

    def __call__(self, x: Array) -> Array:
        return self.forward(x)

    def forward(self, x: Array) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dJ_dy: Array) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def zero_grad(self) -> None:
        """Set every gradient to 0 (gradients accumulate across backward calls)."""
        store = self.packed()
        if store is not None:
            store.grad.fill(0)  # every gradient of the layer in one fill
        else:
            for g in self.grads.values():
                _zero_(g)
        self.grads_zero = True
        self.zero_pending = False

    zero_pending = False  # zeroing deferred by defer_zero_grad: the next backward zeroes first

    def defer_zero_grad(self) -> None:
        """Zero the gradients lazily: they count as zero, and the next backward zeroes them
        before adding (the fast path writes them instead, skipping the fill). For
        :meth:`Sequential.backward_loss` with ``zero_grad=True``, which runs that backward
        before anyone can read the gradients (and zeroes them if it fails)."""
        if self.packed() is None:
            self.zero_grad()
            return
        self.grads_zero = self.zero_pending = True

    def packed(self) -> PackedParameters | None:
        """The layer's flat parameter storage, or None when its parameters are not stored packed
        (another backend, or arrays replaced in ``params``/``grads``)."""
        store = self.storage
        if store is None:
            return None
        params, grads = self.params, self.grads
        seen = self._packed_seen  # the last positive answer, kept while no params/grads dict changed
        if (seen is not None and seen[0] == ARRAYS_REPLACED[0] and seen[1] is store and seen[2] is params
                and seen[3] is grads):
            return store
        try:
            for key, gkey, block, grad_block in store.blocks:
                if params[key] is not block or grads[gkey] is not grad_block:
                    return None
        except KeyError:  # a parameter or gradient was removed
            return None
        if len(params) != store.size:
            return None
        self._packed_seen = (ARRAYS_REPLACED[0], store, params, grads)
        return store

    _packed_seen: tuple | None = None

    def clear_cache(self) -> None:
        self.cache = None

    def output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def symbols(self) -> dict[str, Any]:
        """Constants substituted into this layer's derivation ($c, $alpha, $beta ...)."""
        return {"c": ""}

    def derivation_record(self) -> Derivation:
        """This layer's derivation record; NotImplementedError for a layer that declares none."""
        if self.derivation is None:
            raise NotImplementedError(f"{type(self).__name__} declares no derivation record")
        return self.derivation

    def explain(self, fmt: str = "text", **symbols: Any) -> str:
        """This layer's derivation with its variable names, e.g. ``x="z1", y="z2"``."""
        return self.derivation_record().render(fmt, **{"x": "x", "y": "y", **self.symbols(), **symbols})

    def jacobian(self, x: Array) -> Array:  # pragma: no cover - abstract
        """∂y/∂x per sample, shape (N, out, in)."""
        raise NotImplementedError(f"{type(self).__name__} gives no Jacobian")

    def to(self, backend: str | Backend | None = None, dtype: Any = None, device: Any = None) -> Layer:
        """Move parameters and gradients to another backend and/or dtype, in place."""
        target = resolve_backend(backend, device) if backend is not None else None
        for store in (self.params, self.grads):
            for k, v in store.items():
                dt = resolve_dtype(dtype) if dtype is not None else resolve_dtype(v.dtype)
                be = target or backend_of(v)
                store[k] = be.asarray(np.array(to_numpy(v), dtype=dt), dtype=dt)
        self.cache = None
        return self

    def _label(self) -> str:
        return f"{self.name} {self!r}" if self.name else repr(self)

    def _require_cache(self) -> Any:
        if self.cache is None:
            raise RuntimeError(f"{self._label()}: backward called before forward; call forward(x) first")
        return self.cache

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# ====================================================================== Linear
class Linear(Layer):
    r"""Fully connected layer, PyTorch's layout.

    Forward:  z = x Wᵀ + b
    Jacobian: ∂z_i/∂x_j = W_ij (the same matrix for every sample)
    Backward: dJ/dx = dJ/dz · W;  dJ/dW = (dJ/dz)ᵀ x;  dJ/db = Σ_n (dJ/dz)_n

    Shape: x (N, in) -> z (N, out); W (out, in); b (out,)

    Initialisation (seeded): ``"pytorch"`` (default; W, b ~ U(±1/√in)), ``"xavier"``
    / ``"glorot"`` (W ~ U(±√(6/(in+out))), b = 0), ``"he"`` (W ~ N(0, 2/in), b = 0).

    >>> Linear(3, 2, seed=0).forward(np.zeros((1, 3))).shape
    (1, 2)
    """

    derivation = Derivation(
        name="Linear",
        forward=Formula("$y = $x $Wᵀ + $b", r"$y = $x {$W}^{\top} + $b"),
        jacobian=Formula("∂${y}_i/∂${x}_j = ${W}_ij", r"\frac{\partial {$y}_i}{\partial {$x}_j} = {$W}_{ij}"),
        backward=Formula(
            "dJ/d$x = dJ/d$y · $W", r"\frac{\partial J}{\partial $x} = \frac{\partial J}{\partial $y}\, $W"
        ),
        structure="weight",
        why="a linear map's Jacobian is its weight matrix W (out × in), the same for every sample",
        param_grads=(
            Formula("dJ/d$W = (dJ/d$y)ᵀ $x", r"\frac{\partial J}{\partial $W} = \left(\frac{\partial J}{\partial $y}\right)^{\top} $x"),
            Formula("dJ/d$b = Σ_n (dJ/d$y)_n", r"\frac{\partial J}{\partial $b} = \sum_n \left(\frac{\partial J}{\partial $y}\right)_n"),
        ),
        shape_in="(N, in)",
        shape_out="(N, out)",
    )
    INITS = ("pytorch", "xavier", "glorot", "he")

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        init: str = "pytorch",
        seed: Any = None,
        dtype: Any = np.float32,
        backend: str | Backend = "numpy",
        device: Any = None,
    ) -> None:
        super().__init__()
        self.in_features = check_size("in_features", in_features)
        self.out_features = check_size("out_features", out_features)
        self.init = lookup_name("init", init, {k: k for k in self.INITS})
        self.backend = resolve_backend(backend, device)
        self.dtype = resolve_dtype(dtype)
        W, b = self._initial_weights(make_rng(seed))
        self.params["W"] = self.backend.asarray(W, self.dtype)
        self.grads["dJ_dW"] = self.backend.zeros(W.shape, self.dtype)
        if bias:
            self.params["b"] = self.backend.asarray(b, self.dtype)
            self.grads["dJ_db"] = self.backend.zeros(b.shape, self.dtype)
        self.storage = PackedParameters.pack(self)

    def to(self, backend: str | Backend | None = None, dtype: Any = None, device: Any = None) -> Layer:
        super().to(backend, dtype, device)
        self.storage = PackedParameters.pack(self)
        return self

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a copy (deepcopy) gets fresh packed storage holding the copied values
        self.__dict__.update(state)
        self.storage = PackedParameters.pack(self)

    def _initial_weights(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        n_in, n_out = self.in_features, self.out_features
        if self.init == "pytorch":
            bound = 1.0 / math.sqrt(n_in)
            return rng.uniform(-bound, bound, (n_out, n_in)), rng.uniform(-bound, bound, n_out)
        if self.init in ("xavier", "glorot"):
            bound = math.sqrt(6.0 / (n_in + n_out))
            return rng.uniform(-bound, bound, (n_out, n_in)), np.zeros(n_out)
        return rng.normal(0.0, math.sqrt(2.0 / n_in), (n_out, n_in)), np.zeros(n_out)

    @property
    def W(self) -> Array:
        return self.params["W"]

    @property
    def b(self) -> Array | None:
        return self.params.get("b")

    def forward(self, x: Array) -> Array:
        x = self.check_input(x)
        z, self.cache = F.linear_forward(x, self.params["W"], self.params.get("b"))
        return z

    def check_input(self, x: Array) -> Array:
        """x as an array of the weights' dtype; ValueError unless it is (N, in_features)."""
        x = as_array(x, "x", self.params["W"].dtype)
        check_2d(x, "x", self._label())
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"{self._label()} expected x of shape (N, {self.in_features}), got {tuple(x.shape)}"
            )
        return x

    def backward(self, dJ_dy: Array, need_input_grad: bool = True) -> Array | None:
        x, W = self._require_cache()
        if self.zero_pending:
            self.zero_grad()
        dJ_dx, dJ_dW, dJ_db = F.linear_backward(dJ_dy, (x, W), need_input_grad)
        self.grads["dJ_dW"] += dJ_dW
        if "dJ_db" in self.grads:
            self.grads["dJ_db"] += dJ_db
        self.grads_zero = False
        return dJ_dx if need_input_grad else None

    def jacobian(self, x: Array) -> Array:
        """∂z/∂x per sample: W repeated N times, shape (N, out, in)."""
        xp = namespace_of(self.params["W"])
        x = self.check_input(x)
        return xp.broadcast_to(self.params["W"][None, :, :], (x.shape[0], self.out_features, self.in_features))

    def output_shape(self, input_shape: tuple) -> tuple:
        if len(input_shape) != 2 or (input_shape[1] is not None and input_shape[1] != self.in_features):
            raise ValueError(f"{self._label()} expected input of shape (N, {self.in_features}), got {tuple(input_shape)}")
        return (input_shape[0], self.out_features)

    def symbols(self) -> dict[str, Any]:
        return {"W": "W", "b": "b"}

    def __repr__(self) -> str:
        extra = "" if "b" in self.params else ", bias=False"
        return f"Linear(in_features={self.in_features}, out_features={self.out_features}{extra})"


# ====================================================================== Scale
class Scale(Layer):
    r"""Multiply by a constant c (the seed's 5·ReLU is ReLU then Scale(5)).

    Forward:  y = c x
    Jacobian: ∂y_i/∂x_j = c δ_ij
    Backward: dJ/dx = c dJ/dy
    """

    derivation = Derivation(
        name="Scale",
        forward=Formula("$y = $k·$x", r"$y = $k\, $x"),
        jacobian=Formula("∂${y}_i/∂${x}_j = $k δ_ij", r"\frac{\partial {$y}_i}{\partial {$x}_j} = $k\,\delta_{ij}"),
        backward=Formula("dJ/d$x = $k · dJ/d$y", r"\frac{\partial J}{\partial $x} = $k\,\frac{\partial J}{\partial $y}"),
        structure="diagonal",
        why="scaling acts on each element separately: the Jacobian is c times the identity",
    )

    def __init__(self, c: float) -> None:
        super().__init__()
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c):
            raise ValueError(f"Scale expects a finite number c, got {c!r}")
        self.c = float(c)

    def forward(self, x: Array) -> Array:
        x = as_array(x, "x")
        y, self.cache = F.scale_forward(x, self.c)
        return y

    def backward(self, dJ_dy: Array) -> Array:
        return F.scale_backward(dJ_dy, self._require_cache())

    def derivative(self, x: Array) -> Array:
        xp = namespace_of(x)
        return xp.ones_like(x) * self.c

    def jacobian(self, x: Array) -> Array:
        return _diag_embed(self.derivative(as_array(x, "x")))

    def symbols(self) -> dict[str, Any]:
        return {"k": _number(self.c), "c": ""}

    def __repr__(self) -> str:
        return f"Scale(c={_number(self.c)})"


# ====================================================================== activations
class Activation(Layer):
    """An elementwise activation y = c·φ(x), with optional scale c (default 1).

    Subclasses give ``_forward(x) -> (φ(x), cache)``, ``_backward(g, cache)`` = g ⊙ φ′
    and ``_derivative(x)`` = φ′(x) for the explicit Jacobian.
    """

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale == 0:
            raise ValueError(f"{type(self).__name__}: scale must be a finite non-zero number, got {scale!r}")
        self.scale = float(scale)

    def forward(self, x: Array) -> Array:
        x = as_array(x, "x")
        y, self.cache = self._forward(x)
        return y * self.scale if self.scale != 1.0 else y

    def backward(self, dJ_dy: Array) -> Array:
        cache = self._require_cache()
        if self.scale != 1.0:
            dJ_dy = dJ_dy * self.scale
        return self._backward(dJ_dy, cache)

    def derivative(self, x: Array) -> Array:
        """dy/dx elementwise: c·φ′(x), the diagonal of the Jacobian."""
        d = self._derivative(as_array(x, "x"))
        return d * self.scale if self.scale != 1.0 else d

    def jacobian(self, x: Array) -> Array:
        """The per-sample Jacobian, diagonal: shape (N, D, D)."""
        return _diag_embed(self.derivative(x))

    def symbols(self) -> dict[str, Any]:
        if self.scale == 1.0:
            return {"c": ""}
        return {"c": (f"{_number(self.scale)}·", rf"{_number(self.scale)}\cdot ")}

    def _config(self) -> str:
        return "" if self.scale == 1.0 else f"scale={_number(self.scale)}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._config()})"

    # subclasses implement these three
    def _forward(self, x: Array) -> tuple[Array, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _backward(self, dJ_dy: Array, cache: Any) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def _derivative(self, x: Array) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError


class Identity(Activation):
    """y = x.  Backward: dJ/dx = dJ/dy."""

    derivation = activation_record("Identity", ("$x", "$x"), ("1", "1"))

    def _forward(self, x):
        return F.identity_forward(x)[0], True

    def _backward(self, dJ_dy, cache):
        return F.identity_backward(dJ_dy)

    def _derivative(self, x):
        return F.identity_derivative(x)


class ReLU(Activation):
    r"""Rectified linear unit, y = c·max(0, x) (c = 5 is the seed's 5·ReLU).

    Jacobian: diagonal, ∂y_i/∂x_i = c·1[x_i > 0] (0 at x = 0, as PyTorch)
    Backward: dJ/dx = dJ/dy ⊙ c·1[x > 0]
    """

    derivation = activation_record("ReLU", ("max(0, $x)", r"\max(0, $x)"), ("1[$x > 0]", r"\mathbf{1}[$x > 0]"))

    def _forward(self, x):
        return F.relu_forward(x)

    def _backward(self, dJ_dy, slope):
        return F.relu_backward(dJ_dy, slope)

    def _derivative(self, x):
        return F.relu_derivative(x)


class LeakyReLU(Activation):
    r"""y = x for x > 0, α x otherwise (α = negative_slope, 0.01 by default).

    Jacobian: diagonal, 1 for x > 0 and α for x ≤ 0 (α at 0, as PyTorch)
    """

    derivation = activation_record(
        "LeakyReLU",
        ("($x if $x > 0 else $alpha·$x)", r"\begin{cases} $x & $x > 0 \\ $alpha\, $x & \text{otherwise} \end{cases}"),
        ("(1 if $x > 0 else $alpha)", r"\begin{cases} 1 & $x > 0 \\ $alpha & \text{otherwise} \end{cases}"),
    )

    def __init__(self, negative_slope: float = 0.01, scale: float = 1.0) -> None:
        super().__init__(scale)
        self.negative_slope = check_positive_float("negative_slope", negative_slope, allow_zero=True)

    def _forward(self, x):
        return F.leaky_relu_forward(x, self.negative_slope)

    def _backward(self, dJ_dy, slope):
        return F.leaky_relu_backward(dJ_dy, slope)

    def _derivative(self, x):
        return F.leaky_relu_derivative(x, self.negative_slope)

    def symbols(self) -> dict[str, Any]:
        return {**super().symbols(), "alpha": _number(self.negative_slope)}

    def _config(self):
        return ", ".join(filter(None, [f"negative_slope={_number(self.negative_slope)}", super()._config()]))


class Tanh(Activation):
    r"""y = tanh(x).

    Jacobian: diagonal, ∂y_i/∂x_i = 1 - tanh(x_i)² (the seed's 1 - tanh(x²) is wrong)
    Backward: dJ/dx = dJ/dy ⊙ (1 - y²), reading the cached output
    """

    derivation = activation_record(
        "Tanh", ("tanh($x)", r"\tanh($x)"), ("(1 − tanh²($x))", r"\left(1 - \tanh^2($x)\right)"), uses_output=True
    )

    def _forward(self, x):
        return F.tanh_forward(x)

    def _backward(self, dJ_dy, y):
        return F.tanh_backward(dJ_dy, y)

    def _derivative(self, x):
        return F.tanh_derivative_from_output(F.tanh_forward(x)[0])


class Sigmoid(Activation):
    r"""Logistic sigmoid, element-wise.

    Forward:  y = σ(x) = 1 / (1 + exp(-x)), computed without overflow
    Jacobian: ∂y_i/∂x_j = δ_ij · y_i (1 - y_i)    (diagonal)
    Backward: dJ/dx = dJ/dy ⊙ y ⊙ (1 - y)

    Shape: x (N, D) -> y (N, D)

    >>> Sigmoid().forward(np.zeros((1, 2)))
    array([[0.5, 0.5]])
    """

    derivation = activation_record(
        "Sigmoid", ("σ($x)", r"\sigma($x)"), ("σ($x)(1 − σ($x))", r"\sigma($x)\left(1 - \sigma($x)\right)"),
        uses_output=True,
    )

    def _forward(self, x):
        return F.sigmoid_forward(x)

    def _backward(self, dJ_dy, y):
        return F.sigmoid_backward(dJ_dy, y)

    def _derivative(self, x):
        return F.sigmoid_derivative_from_output(F.sigmoid(x))


class Softplus(Activation):
    """y = log(1 + eˣ) (logaddexp(0, x)); derivative σ(x)."""

    derivation = activation_record("Softplus", ("log(1 + e^$x)", r"\log\left(1 + e^{$x}\right)"), ("σ($x)", r"\sigma($x)"))

    def _forward(self, x):
        return F.softplus_forward(x)

    def _backward(self, dJ_dy, x):
        return F.softplus_backward(dJ_dy, x)

    def _derivative(self, x):
        return F.sigmoid(x)


class GELU(Activation):
    r"""Gaussian error linear unit.

    ``approximate="none"`` (default, exact): y = x Φ(x), Φ the standard normal CDF,
    derivative Φ(x) + x φ(x).  ``approximate="tanh"``:
    y = ½ x (1 + tanh(√(2/π)(x + 0.044715 x³))), derivative
    ½(1 + t) + ½ x (1 - t²) √(2/π)(1 + 3·0.044715 x²), t = tanh(...).
    These match ``torch.nn.GELU(approximate=...)``.
    """

    APPROXIMATIONS = ("none", "tanh")
    _exact = activation_record("GELU", ("$x·Φ($x)", r"$x\,\Phi($x)"), ("(Φ($x) + $x·φ($x))", r"\left(\Phi($x) + $x\,\varphi($x)\right)"))
    _tanh = activation_record(
        "GELU (tanh approximation)",
        ("½$x(1 + tanh(u)), u = √(2/π)($x + 0.044715$x³)", r"\tfrac12 $x\left(1 + \tanh u\right),\ u = \sqrt{2/\pi}\left($x + 0.044715\, $x^3\right)"),
        ("(½(1 + tanh u) + ½$x(1 − tanh² u)√(2/π)(1 + 0.134145$x²))",
         r"\left(\tfrac12(1 + \tanh u) + \tfrac12 $x (1 - \tanh^2 u)\sqrt{2/\pi}\,(1 + 0.134145\, $x^2)\right)"),
    )
    derivation = _exact

    def __init__(self, approximate: str = "none", scale: float = 1.0) -> None:
        super().__init__(scale)
        self.approximate = lookup_name("GELU approximation", approximate, {k: k for k in self.APPROXIMATIONS})
        self.derivation = self._tanh if self.approximate == "tanh" else self._exact

    def _forward(self, x):
        return F.gelu_forward(x, self.approximate)

    def _backward(self, dJ_dy, x):
        return F.gelu_backward(dJ_dy, x, self.approximate)

    def _derivative(self, x):
        return F.gelu_derivative(x, self.approximate)

    def _config(self):
        return ", ".join(filter(None, ["approximate='tanh'" if self.approximate == "tanh" else "", super()._config()]))


# ====================================================================== softmax
class Softmax(Layer):
    r"""Softargmax along the last axis, with inverse temperature β.

    Forward:  y_i = exp(β x_i) / Σ_j exp(β x_j)   (max-shifted, never overflows)
    Jacobian: ∂y_i/∂x_j = β y_i (δ_ij - y_j), i.e. β(diag(y) - y yᵀ): full, not diagonal
    Backward: dJ/dx = β y ⊙ (dJ/dy - ⟨dJ/dy, y⟩)

    softmax(βx) is a smooth arg max: as β grows it tends to the one-hot vector of the
    largest entry (not to the largest entry itself).
    """

    derivation = Derivation(
        name="Softmax",
        forward=Formula("${y}_i = exp($beta${x}_i) / Σ_j exp($beta${x}_j)",
                        r"{$y}_i = \frac{e^{$beta {$x}_i}}{\sum_j e^{$beta {$x}_j}}"),
        jacobian=Formula("∂${y}_i/∂${x}_j = $beta${y}_i (δ_ij − ${y}_j)",
                         r"\frac{\partial {$y}_i}{\partial {$x}_j} = $beta {$y}_i\left(\delta_{ij} - {$y}_j\right)"),
        backward=Formula("dJ/d$x = $beta$y ⊙ (dJ/d$y − Σ_j (dJ/d$y)_j ${y}_j)",
                         r"\frac{\partial J}{\partial $x} = $beta $y \odot \left(\frac{\partial J}{\partial $y} - \sum_j \frac{\partial J}{\partial {$y}_j} {$y}_j\right)"),
        structure="full",
        why="every output shares the normalising sum, so each depends on every input: β(diag(y) − y yᵀ) is dense",
    )

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = check_positive_float("beta", beta)

    def forward(self, x: Array) -> Array:
        x = as_array(x, "x")
        _check_rows(x, self)
        y, self.cache = F.softmax_forward(x, self.beta)
        return y

    def backward(self, dJ_dy: Array) -> Array:
        return F.softmax_backward(dJ_dy, self._require_cache(), self.beta)

    def jacobian(self, x: Array) -> Array:
        x = as_array(x, "x")
        return F.softmax_jacobian(F.softmax(x, self.beta), self.beta)

    def symbols(self) -> dict[str, Any]:
        return {"c": "", "beta": "" if self.beta == 1.0 else (f"{_number(self.beta)}·", rf"{_number(self.beta)}\,")}

    def __repr__(self):
        return "Softmax()" if self.beta == 1.0 else f"Softmax(beta={_number(self.beta)})"


class LogSoftmax(Layer):
    r"""log softmax(βx) along the last axis, computed with log-sum-exp.

    Forward:  y_i = β x_i - log Σ_j exp(β x_j)
    Jacobian: ∂y_i/∂x_j = β(δ_ij - softmax(βx)_j)
    Backward: dJ/dx = β(dJ/dy - softmax(βx) Σ_j (dJ/dy)_j)
    """

    derivation = Derivation(
        name="LogSoftmax",
        forward=Formula("${y}_i = $beta${x}_i − log Σ_j exp($beta${x}_j)",
                        r"{$y}_i = $beta {$x}_i - \log \sum_j e^{$beta {$x}_j}"),
        jacobian=Formula("∂${y}_i/∂${x}_j = $beta(δ_ij − softmax($beta$x)_j)",
                         r"\frac{\partial {$y}_i}{\partial {$x}_j} = $beta\left(\delta_{ij} - \mathrm{softmax}($beta $x)_j\right)"),
        backward=Formula("dJ/d$x = $beta(dJ/d$y − softmax($beta$x) Σ_j (dJ/d$y)_j)",
                         r"\frac{\partial J}{\partial $x} = $beta\left(\frac{\partial J}{\partial $y} - \mathrm{softmax}($beta $x) \sum_j \frac{\partial J}{\partial {$y}_j}\right)"),
        structure="full",
        why="the log-normaliser depends on every input, so every row of the Jacobian is dense",
    )

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = check_positive_float("beta", beta)

    def forward(self, x: Array) -> Array:
        x = as_array(x, "x")
        _check_rows(x, self)
        y, self.cache = F.log_softmax_forward(x, self.beta)
        return y

    def backward(self, dJ_dy: Array) -> Array:
        return F.log_softmax_backward(dJ_dy, self._require_cache(), self.beta)

    def jacobian(self, x: Array) -> Array:
        return F.log_softmax_jacobian(F.log_softmax(as_array(x, "x"), self.beta), self.beta)

    symbols = Softmax.symbols

    def __repr__(self):
        return "LogSoftmax()" if self.beta == 1.0 else f"LogSoftmax(beta={_number(self.beta)})"


# ====================================================================== helpers
def _diag_embed(d: Array) -> Array:
    """(N, D) diagonal -> (N, D, D) matrices."""
    xp = namespace_of(d)
    D = d.shape[-1]
    eye = xp.eye(D, dtype=d.dtype)
    if not isinstance(d, np.ndarray):
        eye = xp.asarray(eye, device=getattr(d, "device", None))
    return d[..., :, None] * eye


def _check_rows(x: Array, layer: Layer) -> None:
    if len(x.shape) == 0 or x.shape[-1] == 0:
        raise ValueError(f"{layer._label()} expected at least one entry along the last axis, got shape {tuple(x.shape)}")


def _number(v: float) -> str:
    return f"{v:g}"


__all__ = [
    "GELU", "Activation", "Identity", "Layer", "LeakyReLU", "Linear", "LogSoftmax", "ReLU", "Scale", "Sigmoid",
    "Softmax", "Softplus", "Tanh", "resolve_dtype",
]
