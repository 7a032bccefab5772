"""Test helpers shared by several test files."""

from __future__ import annotations

import numpy as np

import handgrad as hg
from handgrad.losses import MSELoss

KINKED = (hg.ReLU, hg.LeakyReLU)


def away_from_kinks(net, draw, margin: float = 1e-3, tries: int = 50):
    """Draw inputs with ``draw()`` until no ReLU-family pre-activation is within ``margin`` of 0."""
    for _ in range(tries):
        x = draw()
        h = np.asarray(x, dtype=np.float64)
        ok = True
        for layer in net.layers:
            if isinstance(layer, KINKED) and np.min(np.abs(h)) < margin:
                ok = False
                break
            h = np.asarray(layer.forward(h.astype(net.dtype)), dtype=np.float64)
        if ok:
            return x
    raise RuntimeError("could not draw inputs away from the ReLU kinks")


class InfGradLoss(MSELoss):
    """A finite loss whose gradient overflows from the k-th call on (a backward overflow)."""

    def __init__(self, k):
        self.k, self.calls = k, 0

    def _compute(self, y, y_hat):
        self.calls += 1
        J, g = super()._compute(y, y_hat)
        if self.calls >= self.k:
            g = g.copy()
            g[0, 0] = np.inf
        return J, g
