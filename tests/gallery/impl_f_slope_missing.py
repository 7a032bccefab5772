"""Mistake: the hidden activation's slope f'(z1) is left out of the chain rule."""

from impl_correct_numpy import MLP as Correct
from impl_correct_numpy import bce_loss, mse_loss  # noqa: F401


class MLP(Correct):
    def gradients(self, dJdy_hat):
        c = self.cache
        dJdz3 = dJdy_hat * self.slope(self.g_function, c["z3"], c["y_hat"])
        dJdz1 = dJdz3 @ self.parameters["W2"]  # missing: * f'(z1)
        return {
            "dJdW2": self.weight_grad(dJdz3, c["z2"]), "dJdb2": self.bias_grad(dJdz3),
            "dJdW1": self.weight_grad(dJdz1, c["x"]), "dJdb1": self.bias_grad(dJdz1),
        }
