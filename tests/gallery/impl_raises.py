"""Broken: backward multiplies by W2ᵀ instead of W2, a shape error whenever K differs from m."""

from impl_correct_numpy import MLP as Correct
from impl_correct_numpy import bce_loss, mse_loss  # noqa: F401


class MLP(Correct):
    def gradients(self, dJdy_hat):
        c = self.cache
        dJdz3 = dJdy_hat * self.slope(self.g_function, c["z3"], c["y_hat"])
        dJdz2 = dJdz3 @ self.parameters["W2"].T  # (N, K) @ (m, K): fails unless K == m
        dJdz1 = dJdz2 * self.slope(self.f_function, c["z1"], c["z2"])
        return {
            "dJdW2": self.weight_grad(dJdz3, c["z2"]), "dJdb2": self.bias_grad(dJdz3),
            "dJdW1": self.weight_grad(dJdz1, c["x"]), "dJdb1": self.bias_grad(dJdz1),
        }
