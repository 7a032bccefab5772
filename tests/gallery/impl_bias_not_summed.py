"""Mistake: the bias gradients are the per-sample dJ/dz, never summed over the batch."""

from impl_correct_numpy import MLP as Correct
from impl_correct_numpy import bce_loss, mse_loss  # noqa: F401


class MLP(Correct):
    def bias_grad(self, dJdz):
        return dJdz
