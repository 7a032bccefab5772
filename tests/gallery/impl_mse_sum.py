"""Mistake: the squared error summed, not averaged (as in the seed's ||y − ŷ||²), while the
homework compares with F.mse_loss, which averages over all N·K elements."""

import numpy as np
from impl_correct_numpy import MLP, bce_loss  # noqa: F401


def mse_loss(y, y_hat):
    diff = y_hat - y
    return np.sum(diff**2), 2 * diff
