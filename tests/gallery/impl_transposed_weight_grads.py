"""Mistake: the weight gradients are transposed, inputsᵀ · dJ/dz instead of (dJ/dz)ᵀ · inputs."""

from impl_correct_numpy import MLP as Correct
from impl_correct_numpy import bce_loss, mse_loss  # noqa: F401


class MLP(Correct):
    def weight_grad(self, dJdz, inputs):
        return inputs.T @ dJdz
