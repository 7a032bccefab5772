"""Broken: backward calls sys.exit."""

import sys

from impl_correct_numpy import MLP as Correct
from impl_correct_numpy import bce_loss, mse_loss  # noqa: F401


class MLP(Correct):
    def backward(self, dJdy_hat):
        sys.exit("giving up")
