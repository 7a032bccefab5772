"""A student midway: the losses are written, forward and backward are still the template's stubs."""

import numpy as np
from homework_numpy_forward import MLP as Written
from homework_numpy_forward import bce_loss, mse_loss  # noqa: F401


class MLP(Written):
    def forward(self, x):
        raise NotImplementedError("forward")

    def backward(self, dJdy_hat):
        raise NotImplementedError("backward")


def unused():
    return np.zeros(1)
