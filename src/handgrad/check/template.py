"""``handgrad check --template``: a starter file with the homework's interface and nothing filled in."""

from __future__ import annotations

import os
from pathlib import Path

TEMPLATE = '''"""The homework's MLP, forward and backward by hand (no autograd).

Run `handgrad check mlp.py` after every edit: it tells apart what is not written yet
from what is wrong, quantity by quantity.
"""

import torch


class MLP:
    def __init__(self, linear_1_in_features, linear_1_out_features, f_function,
                 linear_2_in_features, linear_2_out_features, g_function):
        """f_function and g_function are each one of 'relu', 'sigmoid', 'identity'."""
        self.f_function = f_function
        self.g_function = g_function
        self.parameters = dict(
            W1=torch.randn(linear_1_out_features, linear_1_in_features),
            b1=torch.randn(linear_1_out_features),
            W2=torch.randn(linear_2_out_features, linear_2_in_features),
            b2=torch.randn(linear_2_out_features),
        )
        self.grads = dict(
            dJdW1=torch.zeros(linear_1_out_features, linear_1_in_features),
            dJdb1=torch.zeros(linear_1_out_features),
            dJdW2=torch.zeros(linear_2_out_features, linear_2_in_features),
            dJdb2=torch.zeros(linear_2_out_features),
        )
        self.cache = dict()

    def forward(self, x):
        """x: (batch_size, linear_1_in_features) -> y_hat: (batch_size, linear_2_out_features).

        z1 = x W1^T + b1,  z2 = f(z1),  z3 = z2 W2^T + b2,  y_hat = g(z3); cache what backward needs.
        """
        raise NotImplementedError("forward")

    def backward(self, dJdy_hat):
        """dJdy_hat: (batch_size, linear_2_out_features). Store dJ/dW1, dJ/db1, dJ/dW2, dJ/db2 in self.grads."""
        raise NotImplementedError("backward")

    def clear_grad_and_cache(self):
        for grad in self.grads.values():
            grad.zero_()
        self.cache = dict()


def mse_loss(y, y_hat):
    """Mean over every element of (y_hat - y)^2. Returns (J, dJdy_hat)."""
    raise NotImplementedError("mse_loss")


def bce_loss(y, y_hat):
    """Mean over every element of -[y log y_hat + (1 - y) log(1 - y_hat)]. Returns (J, dJdy_hat)."""
    raise NotImplementedError("bce_loss")
'''


def write_template(path: str | os.PathLike = "mlp.py", overwrite: bool = False) -> Path:
    """Write the starter file; FileExistsError rather than overwrite a student's work."""
    out = Path(path)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; not overwriting it (choose another path)")
    out.write_text(TEMPLATE)
    return out
