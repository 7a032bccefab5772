"""Test helpers shared by several test files."""

from __future__ import annotations

import numpy as np

import handgrad as hg

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
