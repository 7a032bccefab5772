"""Mistake: the seed's BCE with the second term written (1 − y)(1 − log ŷ), and its derivative."""

import numpy as np
from impl_correct_numpy import MLP, mse_loss  # noqa: F401


def bce_loss(y, y_hat):
    J = -np.mean(y * np.log(y_hat) + (1 - y) * (1 - np.log(y_hat)))
    return J, -(y / y_hat - (1 - y) / y_hat) / y.size
