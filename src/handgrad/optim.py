r"""Optimizers: the seed's fifth step, θ ← θ - lr · dJ/dθ, and its refinements.

Each optimizer updates the network's parameters **in place**, so arrays handed out
earlier (``net.params['W1']``) stay the same objects, and the same code runs on NumPy
arrays and on torch/cupy tensors (only ``*=``, ``+=``, ``-=`` and ``sqrt`` are used).

Every update rule is written out once in its class docstring and once in ``step``,
term by term, as the layers write their backward passes:

=========  =================================================================
SGD        g = dJ/dθ + λθ;  θ ← θ - lr·g
momentum   v ← μv + g;  θ ← θ - lr·v              (PyTorch's convention)
Nesterov   v ← μv + g;  θ ← θ - lr·(g + μv)
Adam       m ← β₁m + (1-β₁)g;  v ← β₂v + (1-β₂)g²;
           θ ← θ - (lr/(1-β₁ᵗ)) · m / (√v/√(1-β₂ᵗ) + ε)
=========  =================================================================

``convention="sklearn"`` switches SGD and Adam to scikit-learn's forms of the same rules
(the velocity holds the step itself, v ← μv - lr·g, θ ← θ + v; Adam's ε is added to √v
before the bias correction), which the scikit-learn estimators use: one optimizer, two
bookkeepings, so that their results match scikit-learn's update for update.

Learning-rate schedules are plain functions of the epoch that return a factor, so
the rate of epoch e is ``lr · schedule(e)`` and a resumed run needs no schedule state.
Optimizer state exports as plain arrays plus JSON (:meth:`Optimizer.state_dict`) for
checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .backend import backend_of, namespace_of, to_numpy
from .fast.update import sgd_update
from .storage import ARRAYS_REPLACED
from .validation import check_bool, check_positive_float, check_real, check_size, check_unit_interval, lookup_name

Array = Any


CONVENTIONS = ("pytorch", "sklearn")


def _check_convention(value: Any) -> str:
    return lookup_name("convention", value, {k: k for k in CONVENTIONS})


# ====================================================================== base class
class Optimizer:
    """Base class: the network's parameter slots, the learning rate and the update count.

    Subclasses implement ``step()`` and list their per-parameter buffers in
    ``buffer_names`` (e.g. ``("velocity",)``); buffers are created lazily, shaped like
    the parameter, on the parameter's backend.
    """

    name = "optimizer"
    buffer_names: tuple[str, ...] = ()

    def __init__(self, net: Any, lr: float = 0.01, *, weight_decay: float = 0.0) -> None:
        if not hasattr(net, "parameter_slots"):
            raise TypeError(f"optimizer needs a handgrad network (Sequential/MLP), got {type(net).__name__}")
        self.net = net
        self.lr = lr
        self.weight_decay = check_positive_float("weight_decay", weight_decay, allow_zero=True)
        self.t = 0  # number of updates taken so far
        self.state: dict[str, dict[str, Array]] = {}  # parameter name -> {buffer name: array}

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = check_positive_float("lr", value)

    def slots(self) -> Iterator[tuple[str, Array, Array]]:
        """(name, θ, dJ/dθ) for every parameter, read fresh so moved parameters are seen."""
        for name, layer, key, gkey in self.net.parameter_slots():
            yield name, layer.params[key], layer.grads[gkey]

    def update_slots(self) -> Iterator[tuple[str, Array, Array]]:
        """What ``step`` updates: one slot ``("", θ, dJ/dθ)`` over the network's one flat
        storage where every parameter lives in it (an MLP on NumPy: handgrad.storage), so
        that an update is a dozen ufunc calls whatever the depth; else :meth:`slots`.
        Elementwise rules give the same numbers either way; the buffers are kept per
        parameter too (views into the flat ones), for ``state_dict``."""
        # found once and kept while no layer's params/grads changed (storage.ARRAYS_REPLACED) and the
        # network holds the same layers: the search reads every array's address (36 µs of a digits step)
        layers = getattr(self.net, "layers", None)
        key = (ARRAYS_REPLACED[0], tuple(map(id, layers))) if isinstance(layers, list) else None
        if key is None or self.__dict__.get("_flat_key") != key:
            self.__dict__["_flat"] = self._flat_storage()
            self.__dict__["_flat_key"] = key
        flat = self.__dict__["_flat"]
        if flat is None:
            yield from self.slots()
        else:
            yield "", flat[0], flat[1]

    def _flat_storage(self) -> tuple[np.ndarray, np.ndarray, list[tuple[str, np.ndarray]]] | None:
        """(flat θ, flat dJ/dθ, [(name, θ view)]) when the parameters tile one flat NumPy array
        and the gradients another, at the same offsets; else None."""
        slots = list(self.slots())
        if not slots or any(type(t) is not np.ndarray or type(g) is not np.ndarray for _, t, g in slots):
            return None
        theta, grad = slots[0][1].base, slots[0][2].base
        if (type(theta) is not np.ndarray or type(grad) is not np.ndarray or theta.ndim != 1
                or grad.shape != theta.shape or grad.dtype != theta.dtype
                or not theta.flags.c_contiguous or not grad.flags.c_contiguous
                or sum(t.size for _, t, _ in slots) != theta.size):
            return None
        t0, g0 = theta.ctypes.data, grad.ctypes.data
        for _, t, g in slots:
            if (t.base is not theta or g.base is not grad or t.dtype != theta.dtype or g.strides != t.strides
                    or t.ctypes.data - t0 != g.ctypes.data - g0):
                return None
        return theta, grad, [(name, t) for name, t, _ in slots]

    def zero_grad(self) -> None:
        self.net.zero_grad()

    def step(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _decayed(self, theta: Array, dJ_dtheta: Array) -> Array:
        """g = dJ/dθ + λθ (L2 weight decay, added to the gradient as PyTorch does)."""
        if self.weight_decay == 0.0:
            return dJ_dtheta
        return dJ_dtheta + self.weight_decay * theta

    def _scratch(self, name: str, theta: np.ndarray) -> np.ndarray:
        """A reused temporary shaped like θ (not part of the state; NumPy only)."""
        scratch = self.__dict__.setdefault("_scratch_arrays", {})
        tmp = scratch.get(name)
        if tmp is None or tmp.shape != theta.shape or tmp.dtype != theta.dtype:
            tmp = scratch[name] = np.empty_like(theta)
        return tmp

    def _buffer(self, name: str, theta: Array, buffer: str) -> Array:
        if name == "":  # the flat slot of update_slots
            return self._flat_buffer(theta, buffer)
        slot = self.state.setdefault(name, {})
        if buffer not in slot:
            xp = namespace_of(theta)
            slot[buffer] = xp.zeros_like(theta)
        return slot[buffer]

    def _flat_buffer(self, theta: np.ndarray, buffer: str) -> np.ndarray:
        """The buffer over the flat θ, with ``state[param][buffer]`` a view of it per parameter;
        per-parameter values that are not those views (a loaded state, a copy) are taken in."""
        flats = self.__dict__.setdefault("_flat_buffers", {})
        flat, views = flats.get(buffer, (None, None))
        storage = self.__dict__.get("_flat")  # what update_slots found this step
        if storage is None or storage[0] is not theta:
            raise RuntimeError("an optimizer's flat buffer is asked for outside update_slots")
        params = storage[2]
        if (flat is None or flat.shape != theta.shape or flat.dtype != theta.dtype or views is None
                or [n for n, _ in views] != [n for n, _ in params]
                or any(self.state.get(n, {}).get(buffer) is not v for n, v in views)):
            flat = np.zeros_like(theta)
            views = []
            for name, t in params:
                view = np.ndarray(t.shape, t.dtype, buffer=flat, offset=t.ctypes.data - theta.ctypes.data,
                                  strides=t.strides)  # laid out in the flat buffer as θ's view is in θ
                old = self.state.get(name, {}).get(buffer)
                if old is not None:
                    view[...] = old
                self.state.setdefault(name, {})[buffer] = view
                views.append((name, view))
            flats[buffer] = (flat, views)
        return flat

    # ------------------------------------------------------------ state for checkpoints
    def hyperparameters(self) -> dict[str, Any]:
        """The constructor's keyword arguments as plain JSON data."""
        return {"lr": self.lr, "weight_decay": self.weight_decay}

    def state_dict(self) -> dict[str, Any]:
        """``{"type", "hyperparameters", "t", "buffers"}``: JSON data plus NumPy arrays.

        ``buffers`` maps ``"<buffer>.<param>"`` (e.g. ``"velocity.W1"``) to a NumPy copy.
        """
        buffers = {f"{b}.{name}": np.array(to_numpy(arr), copy=True)
                   for name, slot in self.state.items() for b, arr in slot.items()}
        return {"type": self.name, "hyperparameters": self.hyperparameters(), "t": self.t, "buffers": buffers}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore hyperparameters, the update count and every buffer (copied, on the params' backend).

        Raises ValueError naming every unknown, missing or mis-shaped buffer.
        """
        if not isinstance(state, dict) or state.get("type") != self.name:
            got = state.get("type") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"cannot load optimizer state of type {got!r} into {self!r}")
        hyper = dict(state.get("hyperparameters", {}))
        fresh = OPTIMIZERS.get(self.name, type(self))(self.net, **hyper)  # validates every hyperparameter
        params = {name: theta for name, theta, _ in self.slots()}
        new_state: dict[str, dict[str, Array]] = {}
        problems: list[str] = []
        for key, arr in state.get("buffers", {}).items():
            buffer, _, pname = key.partition(".")
            if buffer not in self.buffer_names or pname not in params:
                problems.append(f"unexpected buffer {key!r}")
                continue
            if tuple(arr.shape) != tuple(params[pname].shape):
                problems.append(f"buffer {key!r}: expected shape {tuple(params[pname].shape)}, found {tuple(arr.shape)}")
                continue
            theta = params[pname]
            new_state.setdefault(pname, {})[buffer] = backend_of(theta).asarray(np.array(arr, copy=True), theta.dtype)
        if problems:
            raise ValueError(f"optimizer state does not match the network: {'; '.join(problems)}")
        self.__dict__.update({k: v for k, v in fresh.__dict__.items() if k not in ("net", "state", "t")})
        self.t = int(state.get("t", 0))
        self.state = new_state

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"


# ====================================================================== SGD
class SGD(Optimizer):
    r"""Stochastic gradient descent, with optional momentum, Nesterov and weight decay.

    Update, for each parameter θ with gradient dJ/dθ (in place)::

        g = dJ/dθ + λ·θ                  (λ = weight_decay; g = dJ/dθ when λ = 0)
        μ = 0:      θ ← θ - lr·g           (the seed's step 5)
        μ > 0:      v ← μ·v + g            (v starts at 0, so v₁ = g)
                    θ ← θ - lr·v
        Nesterov:   θ ← θ - lr·(g + μ·v)

    These are PyTorch's ``torch.optim.SGD`` formulas (dampening 0). With
    ``convention="sklearn"``, scikit-learn's ``SGDOptimizer``: v ← μ·v - lr·g, θ ← θ + v
    (Nesterov: θ ← θ + μ·v - lr·g) -- the same steps while lr is constant.

    >>> from handgrad import MLP
    >>> SGD(MLP(2, 4, 1, seed=0), lr=0.1, momentum=0.9)
    SGD(lr=0.1, momentum=0.9, nesterov=False, weight_decay=0.0)
    """

    name = "sgd"
    buffer_names = ("velocity",)

    def __init__(self, net: Any, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, convention: str = "pytorch") -> None:
        super().__init__(net, lr, weight_decay=weight_decay)
        self.convention = _check_convention(convention)
        # scikit-learn accepts momentum 1 (no decay of the velocity)
        self.momentum = check_real("momentum", momentum, 0.0, 1.0, open_high=self.convention != "sklearn")
        self.nesterov = check_bool("nesterov", nesterov)
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0, got momentum=0.0")

    def step(self) -> None:
        lr, mu = self.lr, self.momentum
        if mu == 0.0 and self.weight_decay == 0.0:
            self.net.sgd_step(lr)  # θ ← θ - lr·g, one update per packed storage
            self.t += 1
            return
        scratch = self.__dict__.setdefault("_update_scratch", {})
        for name, theta, dJ_dtheta in self.update_slots():
            g = self._decayed(theta, dJ_dtheta)
            if mu == 0.0:
                sgd_update(theta, g, lr, scratch)    # θ ← θ - lr·g
                continue
            v = self._buffer(name, theta, "velocity")
            if self.convention == "sklearn":
                v *= mu                              # v ← μ·v
                v -= lr * g                          #     - lr·g
                theta += (mu * v - lr * g) if self.nesterov else v  # θ ← θ + μ·v - lr·g, or θ + v
                continue
            if type(theta) is np.ndarray:
                self._step_numpy(theta, g, v, lr, mu, self._scratch(name, theta))
                continue
            v *= mu                                  # v ← μ·v
            v += g                                   #     + g
            if self.nesterov:
                theta -= lr * (g + mu * v)           # θ ← θ - lr·(g + μ·v)
            else:
                theta -= lr * v                      # θ ← θ - lr·v
        self.t += 1

    def _step_numpy(self, theta: np.ndarray, g: np.ndarray, v: np.ndarray, lr: float, mu: float,
                    tmp: np.ndarray) -> None:
        """The momentum update, term for term and bit for bit, through one reused scratch array."""
        v *= mu                                      # v ← μ·v
        v += g                                       #     + g
        if self.nesterov:
            np.multiply(v, mu, out=tmp)              # μ·v
            tmp += g                                 # g + μ·v
            tmp *= lr                                # lr·(g + μ·v)
        else:
            np.multiply(v, lr, out=tmp)              # lr·v
        theta -= tmp                                 # θ ← θ - ...

    def hyperparameters(self) -> dict[str, Any]:
        hyper: dict[str, Any] = {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                                 "weight_decay": self.weight_decay}
        return hyper if self.convention == "pytorch" else {**hyper, "convention": self.convention}


# ====================================================================== Adam
class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), with bias correction; PyTorch's ``torch.optim.Adam``.

    Update at step t = 1, 2, ... for each parameter θ (in place)::

        g  = dJ/dθ + λ·θ                       (λ = weight_decay, L2 added to the gradient)
        m ← β₁·m + (1 - β₁)·g                  (first moment; m₀ = 0)
        v ← β₂·v + (1 - β₂)·g²                 (second moment; v₀ = 0)
        m̂ = m / (1 - β₁ᵗ),  v̂ = v / (1 - β₂ᵗ)  (bias corrections)
        θ ← θ - lr · m̂ / (√v̂ + ε)

    computed as θ ← θ - (lr/(1-β₁ᵗ)) · m / (√v/√(1-β₂ᵗ) + ε), PyTorch's order of operations.
    With ``convention="sklearn"``, scikit-learn's: θ ← θ - lr_t · m / (√v + ε),
    lr_t = lr·√(1-β₂ᵗ)/(1-β₁ᵗ) (ε added before the bias correction).
    """

    name = "adam"
    buffer_names = ("m", "v")

    def __init__(self, net: Any, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, convention: str = "pytorch") -> None:
        super().__init__(net, lr, weight_decay=weight_decay)
        self.convention = _check_convention(convention)
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (check_unit_interval("betas[0]", betas[0]), check_unit_interval("betas[1]", betas[1]))
        self.eps = check_positive_float("eps", eps)

    def step(self) -> None:
        self.t += 1
        beta1, beta2 = self.betas
        bias1 = 1.0 - beta1 ** self.t                 # 1 - β₁ᵗ
        bias2_sqrt = math.sqrt(1.0 - beta2 ** self.t)  # √(1 - β₂ᵗ)
        step_size = self.lr / bias1
        for name, theta, dJ_dtheta in self.update_slots():
            g = self._decayed(theta, dJ_dtheta)
            m = self._buffer(name, theta, "m")
            v = self._buffer(name, theta, "v")
            if self.convention == "sklearn":
                lr_t = self.lr * bias2_sqrt / bias1    # lr·√(1-β₂ᵗ)/(1-β₁ᵗ)
                if type(theta) is np.ndarray:
                    self._step_numpy_sklearn(theta, g, m, v, self._scratch(name, theta),
                                             self._scratch(name + "/2", theta), lr_t)
                    continue
                m *= beta1                             # m ← β₁·m
                m += (1 - beta1) * g                   #     + (1-β₁)·g
                v *= beta2                             # v ← β₂·v
                v += (1 - beta2) * (g * g)             #     + (1-β₂)·g²
                theta -= lr_t * m / (namespace_of(v).sqrt(v) + self.eps)  # θ ← θ - lr_t·m/(√v + ε)
                continue
            if type(theta) is np.ndarray:
                self._step_numpy(theta, g, m, v, self._scratch(name, theta), step_size, bias2_sqrt)
                continue
            m *= beta1                                 # m ← β₁·m
            m += (1.0 - beta1) * g                     #     + (1-β₁)·g
            v *= beta2                                 # v ← β₂·v
            v += (1.0 - beta2) * (g * g)               #     + (1-β₂)·g²
            xp = namespace_of(v)
            denom = xp.sqrt(v) / bias2_sqrt + self.eps  # √v̂ + ε
            theta -= step_size * (m / denom)           # θ ← θ - lr·m̂/(√v̂ + ε)

    def _step_numpy_sklearn(self, theta: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray,
                            tmp: np.ndarray, tmp2: np.ndarray, lr_t: float) -> None:
        """scikit-learn's update, term for term and bit for bit, through two reused scratch arrays."""
        beta1, beta2 = self.betas
        m *= beta1                                     # m ← β₁·m
        m += np.multiply(g, 1 - beta1, out=tmp)        #     + (1-β₁)·g
        v *= beta2                                     # v ← β₂·v
        np.multiply(g, g, out=tmp)
        tmp *= 1 - beta2
        v += tmp                                       #     + (1-β₂)·g²
        np.multiply(m, lr_t, out=tmp)                  # lr_t·m
        np.sqrt(v, out=tmp2)
        tmp2 += self.eps                               # √v + ε
        np.divide(tmp, tmp2, out=tmp)
        theta -= tmp                                   # θ ← θ - lr_t·m/(√v + ε)

    def _step_numpy(self, theta: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, tmp: np.ndarray,
                    step_size: float, bias2_sqrt: float) -> None:
        """The same update, term for term and bit for bit, through one reused scratch array."""
        beta1, beta2 = self.betas
        m *= beta1                                     # m ← β₁·m
        np.multiply(g, 1.0 - beta1, out=tmp)
        m += tmp                                       #     + (1-β₁)·g
        v *= beta2                                     # v ← β₂·v
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - beta2
        v += tmp                                       #     + (1-β₂)·g²
        np.sqrt(v, out=tmp)
        tmp /= bias2_sqrt
        tmp += self.eps                                # √v̂ + ε
        np.divide(m, tmp, out=tmp)
        tmp *= step_size                               # (lr/(1-β₁ᵗ))·m/(√v̂ + ε)
        theta -= tmp                                   # θ ← θ - lr·m̂/(√v̂ + ε)

    def hyperparameters(self) -> dict[str, Any]:
        hyper: dict[str, Any] = {"lr": self.lr, "betas": list(self.betas), "eps": self.eps,
                                 "weight_decay": self.weight_decay}
        return hyper if self.convention == "pytorch" else {**hyper, "convention": self.convention}


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam}


def make_optimizer(name: str | Optimizer, net: Any, **kwargs: Any) -> Optimizer:
    """An optimizer by name ('sgd', 'adam'; case-insensitive, did-you-mean on typos).

    An :class:`Optimizer` instance is returned as is (``kwargs`` must then be empty).
    """
    if isinstance(name, Optimizer):
        if kwargs:
            raise TypeError(f"got an optimizer instance {name!r} and extra settings {sorted(kwargs)}")
        return name
    return lookup_name("optimizer", name, OPTIMIZERS)(net, **kwargs)


# ====================================================================== gradient norm and clipping
def grad_norm(net: Any) -> float:
    r"""The global gradient norm ‖g‖ = √(Σ_θ Σ_i (dJ/dθ_i)²) over every parameter, as a float.

    Non-finite gradients give ``nan`` or ``inf``. Accumulated in float64 across parameters.
    """
    total = 0.0
    for _, layer in net.named_layers():
        store = layer.packed()
        if store is not None:  # every gradient of the layer in one flat array: one product
            total += _sum_of_squares(store.grad)
            continue
        for g in layer.grads.values():
            total += _sum_of_squares(g)
    return math.sqrt(total) if total >= 0 else float("nan")


def _sum_of_squares(g: Array) -> float:
    if isinstance(g, np.ndarray):
        s = float(np.vdot(g, g))
        if math.isinf(s) and np.isfinite(g).all():  # float32 overflow of finite values
            g64 = g.astype(np.float64)
            s = float(np.vdot(g64, g64))
        return s
    xp = namespace_of(g)
    return float(xp.sum(g * g))


def clip_grad_norm(net: Any, max_norm: float) -> float:
    r"""Scale every gradient by min(1, max_norm / (‖g‖ + 1e-6)), in place; return ‖g‖ before clipping.

    ‖g‖ is the global norm over all parameters (:func:`grad_norm`), PyTorch's
    ``clip_grad_norm_``. A non-finite norm is returned unchanged and nothing is scaled,
    so the caller can report divergence.
    """
    max_norm = check_positive_float("max_norm", max_norm)
    norm = grad_norm(net)
    if math.isfinite(norm) and norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for _, layer, _, gkey in net.parameter_slots():
            layer.grads[gkey] *= scale
    return norm


# ====================================================================== schedules
class Schedule:
    """A learning-rate schedule: ``schedule(epoch) -> factor``; epoch e (0-based) uses lr·factor.

    Schedules hold no state, so a resumed run gets the same rate for the same epoch.
    """

    name = "constant"

    def __call__(self, epoch: int) -> float:
        return 1.0

    def config(self) -> dict[str, Any]:
        return {"type": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"


class StepLR(Schedule):
    r"""Step decay: factor = γ^⌊e / step_size⌋ (multiply the rate by γ every ``step_size`` epochs)."""

    name = "step"

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = check_size("step_size", step_size)
        self.gamma = check_positive_float("gamma", gamma)

    def __call__(self, epoch: int) -> float:
        return self.gamma ** (epoch // self.step_size)

    def config(self) -> dict[str, Any]:
        return {"type": self.name, "step_size": self.step_size, "gamma": self.gamma}


class CosineLR(Schedule):
    r"""Cosine annealing over ``epochs``: factor = m + (1 - m)·(1 + cos(π·e/epochs))/2, m = min_factor.

    Epoch 0 uses the full rate; the factor falls smoothly towards ``min_factor`` and
    stays there after ``epochs``.
    """

    name = "cosine"

    def __init__(self, epochs: int, min_factor: float = 0.0) -> None:
        self.epochs = check_size("epochs", epochs)
        self.min_factor = check_positive_float("min_factor", min_factor, allow_zero=True)
        if self.min_factor >= 1.0:
            raise ValueError(f"min_factor must be below 1, got {self.min_factor}")

    def __call__(self, epoch: int) -> float:
        e = min(epoch, self.epochs)
        return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * e / self.epochs))

    def config(self) -> dict[str, Any]:
        return {"type": self.name, "epochs": self.epochs, "min_factor": self.min_factor}


SCHEDULES: dict[str, type[Schedule]] = {"constant": Schedule, "step": StepLR, "cosine": CosineLR}


def make_schedule(spec: Any, epochs: int) -> Schedule | Callable[[int], float] | None:
    """A schedule from None, a name ('constant', 'step', 'cosine'), a config dict, a Schedule or a callable.

    Name defaults for a run of ``epochs`` epochs: 'cosine' anneals over all of them to
    0.01 of the rate; 'step' multiplies the rate by 0.1 after each third of the run.
    A callable ``f(epoch) -> factor`` is used as is (it cannot be stored in a checkpoint).
    """
    if spec is None or isinstance(spec, Schedule):
        return spec
    if isinstance(spec, dict):
        cfg = dict(spec)
        cls = lookup_name("schedule", cfg.pop("type", None), SCHEDULES)
        return cls(**cfg)
    if isinstance(spec, str):
        cls = lookup_name("schedule", spec, SCHEDULES)
        if cls is CosineLR:
            return CosineLR(max(int(epochs), 1), min_factor=0.01)
        if cls is StepLR:
            return StepLR(max(int(epochs) // 3, 1), gamma=0.1)
        return cls()
    if callable(spec):
        return spec
    raise TypeError(f"schedule must be None, a name, a Schedule or a callable epoch -> factor, got {type(spec).__name__}")


__all__ = [
    "OPTIMIZERS", "SCHEDULES", "SGD", "Adam", "CosineLR", "Optimizer", "Schedule", "StepLR", "clip_grad_norm",
    "grad_norm", "make_optimizer", "make_schedule",
]
