"""Mistake: the transposed weight gradient is reshaped to the weight's shape (reshape is not a transpose)."""

from impl_correct_numpy import MLP as Correct
from impl_correct_numpy import bce_loss, mse_loss  # noqa: F401


class MLP(Correct):
    def weight_grad(self, dJdz, inputs):
        return (inputs.T @ dJdz).reshape(dJdz.shape[1], inputs.shape[1])
