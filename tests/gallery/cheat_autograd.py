"""Cheat: a correct forward, and a backward that lets PyTorch's autograd compute the gradients."""

from homework_torch import MLP as HandWritten
from homework_torch import bce_loss, mse_loss  # noqa: F401


class MLP(HandWritten):
    def forward(self, x):
        for p in self.parameters.values():
            p.requires_grad_(True)
        self.y_hat = super().forward(x)
        return self.y_hat.detach()

    def backward(self, dJdy_hat):
        self.y_hat.backward(dJdy_hat)
        for k in self.parameters:
            self.grads[f"dJd{k}"] = self.parameters[k].grad.detach().clone()
            self.parameters[k].grad = None
