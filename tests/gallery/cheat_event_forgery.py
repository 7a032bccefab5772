"""Cheat: write 'done' events of its own on the worker's channel, claiming every configuration ran."""

import sys

from impl_correct_numpy import MLP as Correct
from impl_correct_numpy import bce_loss, mse_loss  # noqa: F401

worker = sys.modules["__main__"]
for i in range(30):
    worker._emit({"event": "done", "config": i, "status": "ran", "errors": {}, "backend": "numpy",
                  "dtype": "float64", "notes": []})
worker._emit({"event": "finished"})


class MLP(Correct):
    def store(self, name, value):
        self.grads[name] = value * 1.005
