"""Mistake: MSE's gradient with the sign flipped, 2(y − ŷ) instead of 2(ŷ − y)."""

import numpy as np
from impl_correct_numpy import MLP, bce_loss  # noqa: F401


def mse_loss(y, y_hat):
    diff = y_hat - y
    return np.mean(diff**2), 2 * (y - y_hat) / diff.size
