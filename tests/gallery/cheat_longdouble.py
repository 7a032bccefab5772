"""Cheat: 0.5% wrong gradients, on np.longdouble parameters, hoping for a looser tolerance."""

import numpy as np
from impl_correct_numpy import MLP as Correct
from impl_correct_numpy import bce_loss, mse_loss  # noqa: F401


class MLP(Correct):
    def __init__(self, *args):
        super().__init__(*args)
        self.parameters = {k: v.astype(np.longdouble) for k, v in self.parameters.items()}

    def store(self, name, value):
        self.grads[name] = value * 1.005
