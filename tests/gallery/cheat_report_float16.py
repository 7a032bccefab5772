"""Cheat: 0.5% wrong gradients, and the worker's reports rewritten to claim float16 (a looser tolerance)."""

import sys

from impl_correct_numpy import MLP as Correct
from impl_correct_numpy import bce_loss, mse_loss  # noqa: F401

worker = sys.modules["__main__"]
original = worker._emit


def forged(event):
    if "dtype" in event:
        event = {**event, "dtype": "float16"}
    original(event)


worker._emit = forged


class MLP(Correct):
    def store(self, name, value):
        self.grads[name] = value * 1.005
