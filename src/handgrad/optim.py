r"""Optimizers: the seed's fifth step, θ ← θ - lr · dJ/dθ, written out plainly.

Each optimizer updates the network's parameters in place, so arrays handed out
earlier (``net.params['W1']``) stay the same objects.
"""

from __future__ import annotations

from typing import Any

from ._checks import check_positive_float


class Optimizer:
    """Base class: holds the network's parameter slots and the learning rate."""

    def __init__(self, net: Any, lr: float) -> None:
        if not hasattr(net, "parameter_slots"):
            raise TypeError(f"optimizer needs a handgrad network (Sequential/MLP), got {type(net).__name__}")
        self.net = net
        self.lr = check_positive_float("lr", lr)

    def slots(self):
        """(name, θ, dJ/dθ) for every parameter, read fresh so moved parameters are seen."""
        for name, layer, key, gkey in self.net.parameter_slots():
            yield name, layer.params[key], layer.grads[gkey]

    def step(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def zero_grad(self) -> None:
        self.net.zero_grad()


class SGD(Optimizer):
    """Plain stochastic gradient descent: θ ← θ - lr · dJ/dθ (in place)."""

    def step(self) -> None:
        for _, theta, dJ_dtheta in self.slots():
            theta -= self.lr * dJ_dtheta

    def __repr__(self) -> str:
        return f"SGD(lr={self.lr:g})"


__all__ = ["SGD", "Optimizer"]
