"""Mistake: dJ/dW2 computed from z1, the activation's input, instead of its output z2."""

from impl_correct_numpy import MLP as Correct
from impl_correct_numpy import bce_loss, mse_loss  # noqa: F401


class MLP(Correct):
    def gradients(self, dJdy_hat):
        c = self.cache
        dJdz3 = dJdy_hat * self.slope(self.g_function, c["z3"], c["y_hat"])
        dJdz2 = dJdz3 @ self.parameters["W2"]
        dJdz1 = dJdz2 * self.slope(self.f_function, c["z1"], c["z2"])
        return {
            "dJdW2": self.weight_grad(dJdz3, c["z1"]), "dJdb2": self.bias_grad(dJdz3),  # z1 where z2 belongs
            "dJdW1": self.weight_grad(dJdz1, c["x"]), "dJdb1": self.bias_grad(dJdz1),
        }
