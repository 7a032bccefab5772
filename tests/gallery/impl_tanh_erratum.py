"""Mistake: the seed's tanh' = 1 − tanh(z²) instead of 1 − tanh(z)²."""

import numpy as np
from impl_correct_numpy import MLP as Correct
from impl_correct_numpy import bce_loss, mse_loss  # noqa: F401


class MLP(Correct):
    def slope(self, name, z, a):
        if name == "tanh":
            return 1 - np.tanh(z**2)
        return super().slope(name, z, a)
