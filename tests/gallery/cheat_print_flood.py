"""Cheat: 0.5% wrong, with tens of megabytes printed on every forward (to drown the grader)."""

from impl_correct_numpy import MLP as Correct
from impl_correct_numpy import bce_loss, mse_loss  # noqa: F401

LINE = "x" * 1023 + "\n"


class MLP(Correct):
    def forward(self, x):
        print(LINE * 20_000, end="")  # about 20 MB
        return super().forward(x)

    def store(self, name, value):
        self.grads[name] = value * 1.005
