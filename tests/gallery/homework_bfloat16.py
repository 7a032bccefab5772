"""Correct math on bfloat16 tensors: a precision the check does not grade, so it must say so by name."""

import torch
from homework_torch import MLP as Float32MLP
from homework_torch import bce_loss, mse_loss  # noqa: F401


class MLP(Float32MLP):
    def __init__(self, *args):
        super().__init__(*args)
        self.parameters = {k: v.to(torch.bfloat16) for k, v in self.parameters.items()}
        self.grads = {k: v.to(torch.bfloat16) for k, v in self.grads.items()}
