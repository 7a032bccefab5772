"""Mistake: forward forgets the output activation g, so ŷ = z3 (and backward's g' reads z3 as g's output)."""

from impl_correct_numpy import ACTIVATIONS, bce_loss, mse_loss  # noqa: F401
from impl_correct_numpy import MLP as Correct


class MLP(Correct):
    def forward(self, x):
        p = self.parameters
        z1 = x @ p["W1"].T + p["b1"]
        z2 = ACTIVATIONS[self.f_function][0](z1)
        z3 = z2 @ p["W2"].T + p["b2"]
        self.remember(x=x, z1=z1, z2=z2, z3=z3, y_hat=z3)
        return z3  # missing: y_hat = g(z3)
