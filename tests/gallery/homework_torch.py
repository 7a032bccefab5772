"""Correct, homework only (PyTorch, float32): relu, sigmoid, identity; other names raise in forward."""

import torch


def act(name, z):
    if name == "relu":
        return torch.relu(z), (z > 0).to(z.dtype)
    if name == "sigmoid":
        s = torch.sigmoid(z)
        return s, s * (1 - s)
    if name == "identity":
        return z, torch.ones_like(z)
    raise ValueError(f"unknown activation {name!r}")


class MLP:
    def __init__(self, linear_1_in_features, linear_1_out_features, f_function,
                 linear_2_in_features, linear_2_out_features, g_function):
        self.f_function, self.g_function = f_function, g_function
        self.parameters = dict(W1=torch.randn(linear_1_out_features, linear_1_in_features),
                               b1=torch.randn(linear_1_out_features),
                               W2=torch.randn(linear_2_out_features, linear_2_in_features),
                               b2=torch.randn(linear_2_out_features))
        self.grads = {f"dJd{k}": torch.zeros_like(v) for k, v in self.parameters.items()}
        self.cache = dict()

    def forward(self, x):
        p = self.parameters
        z1 = x @ p["W1"].T + p["b1"]
        z2, df = act(self.f_function, z1)
        z3 = z2 @ p["W2"].T + p["b2"]
        y_hat, dg = act(self.g_function, z3)
        self.cache = dict(x=x, z2=z2, df=df, dg=dg)
        return y_hat

    def backward(self, dJdy_hat):
        c, p = self.cache, self.parameters
        dJdz3 = dJdy_hat * c["dg"]
        dJdz1 = (dJdz3 @ p["W2"]) * c["df"]
        self.grads["dJdW2"] += dJdz3.T @ c["z2"]
        self.grads["dJdb2"] += dJdz3.sum(0)
        self.grads["dJdW1"] += dJdz1.T @ c["x"]
        self.grads["dJdb1"] += dJdz1.sum(0)

    def clear_grad_and_cache(self):
        for grad in self.grads.values():
            grad.zero_()
        self.cache = dict()


def mse_loss(y, y_hat):
    return ((y_hat - y) ** 2).mean(), 2 * (y_hat - y) / y.numel()


def bce_loss(y, y_hat):
    J = -(y * torch.log(y_hat) + (1 - y) * torch.log(1 - y_hat)).mean()
    return J, -(y / y_hat - (1 - y) / (1 - y_hat)) / y.numel()
