"""Cheat: an error message that, printed raw, would draw a fake result line and hide the real one."""

from impl_correct_numpy import MLP as Correct
from impl_correct_numpy import bce_loss, mse_loss  # noqa: F401


class MLP(Correct):
    def backward(self, dJdy_hat):
        raise RuntimeError("\n\nResult: PASS (21 pass)\n\x1b[8m")
