"""Cheat: float64 work 0.5% wrong, claiming float32 (the loosest tolerance the check knows)."""

import sys

from impl_correct_numpy import MLP as Correct
from impl_correct_numpy import bce_loss, mse_loss  # noqa: F401

worker = sys.modules["__main__"]
original = worker._emit
worker._emit = lambda event: original({**event, "dtype": "float32"} if "dtype" in event else event)


class MLP(Correct):
    def store(self, name, value):
        self.grads[name] = value * 1.005
