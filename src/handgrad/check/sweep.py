"""The seeded sweep of configurations, and handgrad's reference pass for each.

Every configuration is a homework network ``MLP(n, m, f, m, K, g)`` with a loss. The
homework's own activations (:data:`REQUIRED`) are required; the others
(:func:`optional_activations`, every other registered elementwise one) are optional unless the check is ``extended``.

What the checked code receives holds no reference value: the loss is given an
independent ŷ and ``backward`` an independent dJ/dŷ, drawn at random, so neither
reveals what ``forward`` or the loss should return.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .. import BCELoss, MSELoss, hw1
from .. import functional as F
from ..layers import Activation, Layer, Linear
from ..registry import activation_names, make_activation

QUANTITIES = ("y_hat", "J", "dJdy_hat", "dJdW1", "dJdb1", "dJdW2", "dJdb2")
GRADS = ("dJdW1", "dJdb1", "dJdW2", "dJdb2")
REQUIRED = ("relu", "sigmoid", "identity")  # the homework's activations
KINKED = ("relu", "leaky_relu")
CALLS = 3  # (x1, y1), (x1, y1) again, (x2, y2): each after clear_grad_and_cache()


def optional_activations() -> tuple[str, ...]:
    """Every registered elementwise activation the homework does not require (read now, so a
    user's :func:`~handgrad.register_activation` joins the extended sweep)."""
    return tuple(a for a in activation_names(elementwise=True) if a not in REQUIRED)


@dataclass(frozen=True)
class Config:
    """One network and loss to run: MLP(n, m, f, m, K, g) on batches of N, loss ``loss``."""

    f: str
    g: str
    loss: str
    N: int
    n: int
    m: int
    K: int

    @property
    def optional(self) -> bool:
        """True when it uses an activation the homework does not require."""
        return self.f not in REQUIRED or self.g not in REQUIRED

    def label(self) -> str:
        return f"f={self.f} g={self.g} loss={self.loss} N={self.N} n={self.n} m={self.m} K={self.K}"


def _sizes(rng: np.random.Generator, N: int | None = None, K: int | None = None) -> dict[str, int]:
    """n, m, K distinct (so transposes change shapes) and N ∉ {2, K} (so factors are told apart)."""
    while True:
        s = {"N": N or int(rng.integers(3, 8)), "n": int(rng.integers(2, 6)), "m": int(rng.integers(2, 7)),
             "K": K or int(rng.integers(3, 6))}
        if len({s["n"], s["m"], s["K"]}) == 3 and (s["N"] == 1 or s["K"] == 1 or s["N"] != s["K"]):
            return s


def sweep(seed: int = 0, quick: bool = False) -> list[Config]:
    """The seeded configurations: every f, g among relu/sigmoid/identity with MSE, BCE after a
    sigmoid, each extra activation as f and as g, with batch 1 and one output among them.
    ``quick`` keeps four that between them exercise every diagnosis (one of them optional)."""
    rng = np.random.default_rng(seed)
    if quick:
        plan = [("relu", "identity", "mse", {}), ("sigmoid", "sigmoid", "bce", {}),
                ("tanh", "sigmoid", "bce", {"N": 1}), ("relu", "sigmoid", "mse", {"K": 1})]
    else:
        special = [{"N": 1}, {"K": 1}, {"N": 1, "K": 1}]
        plan = [(f, g, "mse", special.pop(0) if (f, g) in (("relu", "identity"), ("sigmoid", "relu"),
                                                             ("identity", "sigmoid")) else {})
                for f in REQUIRED for g in REQUIRED]
        plan += [(f, "sigmoid", "bce", {"K": 1} if f == "identity" else {}) for f in REQUIRED]
        extra = optional_activations()
        plan += [(a, "identity", "mse", {}) for a in extra] + [("relu", a, "mse", {}) for a in extra]
        plan += [("tanh", "sigmoid", "bce", {"N": 1})]
    return [Config(f, g, loss, **_sizes(rng, **fixed)) for f, g, loss, fixed in plan]


def _f32(a: np.ndarray) -> np.ndarray:
    """Round to float32 and back: exact in both dtypes, so the user and the reference see the same numbers."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


@dataclass
class RefCall:
    """The reference pass for one call: inputs, cached tensors and expected values (float64)."""

    x: np.ndarray
    y: np.ndarray
    z1: np.ndarray
    z2: np.ndarray
    z3: np.ndarray
    expected: dict[str, np.ndarray]
    y_hat_fed: np.ndarray  # what the user's loss receives: independent of the forward's y_hat
    grad_fed: np.ndarray  # what the user's backward receives: independent of the loss's dJ/dŷ


class Reference:
    """handgrad.hw1's MLP in float64 NumPy with one configuration's weights, and its calls."""

    def __init__(self, config: Config, rng: np.random.Generator) -> None:
        c = self.config = config
        self.net = hw1.MLP(c.n, c.m, c.f, c.m, c.K, c.g, backend="numpy", dtype=np.float64)
        self.weights = {
            "W1": _f32(rng.normal(0, 1 / np.sqrt(c.n), (c.m, c.n))), "b1": _f32(rng.normal(0, 0.5, c.m)),
            "W2": _f32(rng.normal(0, 1 / np.sqrt(c.m), (c.K, c.m))), "b2": _f32(rng.normal(0, 0.5, c.K)),
        }
        for name, value in self.weights.items():
            self.net.parameters[name] = value
        self.loss = MSELoss() if c.loss == "mse" else BCELoss()
        self.f_layer, self.g_layer = make_activation(c.f), make_activation(c.g)  # the ops hw1.MLP runs, by name
        self.linear_record = Linear(c.n, c.m).derivation_record()
        first = self._draw(rng)
        self.calls = [self.run(*first, rng), self.run(*first, rng), self.run(*self._draw(rng), rng)]

    def _draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A batch (x, y) whose ReLU-family pre-activations keep 1e-3 away from the kink at 0, where
        float32 and float64 could disagree on the slope."""
        c = self.config
        for _ in range(100):
            x = _f32(rng.normal(0, 1, (c.N, c.n)))
            z1 = x @ self.weights["W1"].T + self.weights["b1"]
            z3 = self.f_layer.forward(z1) @ self.weights["W2"].T + self.weights["b2"]
            if all(np.min(np.abs(z)) > 1e-3 for z, a in ((z1, c.f), (z3, c.g)) if a in KINKED):
                break
        y = rng.normal(0, 1, (c.N, c.K)) if c.loss == "mse" else rng.integers(0, 2, (c.N, c.K)).astype(np.float64)
        return x, _f32(y)

    def run(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> RefCall:
        net, c = self.net, self.config
        net.clear_grad_and_cache()
        y_hat = np.array(net.forward(x))
        cache = net.cache
        # the loss and backward get values of their own, so no input gives the forward's answer away
        y_hat_fed = _f32(rng.uniform(0.05, 0.95, y_hat.shape) if c.loss == "bce" else rng.normal(0, 1, y_hat.shape))
        J, dJdy_hat = self.loss(y, y_hat_fed)
        grad_fed = _f32(rng.normal(0, 1 / y_hat.size, y_hat.shape))
        net.backward(grad_fed)
        expected = {"y_hat": y_hat, "J": np.asarray(J, dtype=np.float64), "dJdy_hat": np.asarray(dJdy_hat),
                    **{k: np.array(net.grads[k]) for k in GRADS}}
        return RefCall(x, y, cache["z1"], cache["z2"], cache["z3"], expected, y_hat_fed, grad_fed)

    def chain(self, call: RefCall, dJdy_hat: np.ndarray, g_slope: np.ndarray, f_slope: np.ndarray,
              w2_input: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The four gradients by the chain rule with the given activation slopes, with handgrad's
        linear backward: a hypothesis swaps one slope (or one cached tensor) for a wrong one."""
        dJdz3 = dJdy_hat * g_slope
        dJdz2, dJdW2, dJdb2 = F.linear_backward(dJdz3, (call.z2 if w2_input is None else w2_input, self.weights["W2"]))
        dJdz1 = dJdz2 * f_slope
        _, dJdW1, dJdb1 = F.linear_backward(dJdz1, (call.x, self.weights["W1"]))
        return {"dJdW1": dJdW1, "dJdb1": dJdb1, "dJdW2": dJdW2, "dJdb2": dJdb2, "dJdz1": dJdz1, "dJdz3": dJdz3}

    def slopes(self, call: RefCall) -> tuple[np.ndarray, np.ndarray]:
        """The correct slopes: g'(z3) and f'(z1), from the layers' own derivative()."""
        return _derivative(self.g_layer, call.z3), _derivative(self.f_layer, call.z1)


def _derivative(layer: Layer, z: np.ndarray) -> np.ndarray:
    if not isinstance(layer, Activation):
        raise ValueError(f"the homework's f and g are elementwise activations, got {layer!r}")
    return np.asarray(layer.derivative(z))


# an import of one of these that fails in the sandbox means the code leans on autodiff
AUTODIFF_HINT = re.compile(r"No module named '(handgrad|jax|autograd|tensorflow|tinygrad|micrograd|mxnet|functorch)")
