"""Mistake: the seed's BCE gradient without 1/K (here divided by the batch size only)."""

import numpy as np
from impl_correct_numpy import MLP, mse_loss  # noqa: F401


def bce_loss(y, y_hat):
    J = -np.mean(y * np.log(y_hat) + (1 - y) * np.log(1 - y_hat))
    return J, -(y / y_hat - (1 - y) / (1 - y_hat)) / len(y)
