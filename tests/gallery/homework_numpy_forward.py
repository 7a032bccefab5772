"""Correct, homework only (NumPy): the activation is looked up in forward, which raises for other names."""

import numpy as np


def act(name, z):
    if name == "relu":
        return np.maximum(z, 0), (z > 0).astype(z.dtype)
    if name == "sigmoid":
        s = 1 / (1 + np.exp(-z))
        return s, s * (1 - s)
    if name == "identity":
        return z, np.ones_like(z)
    raise ValueError(f"unknown activation {name!r}")


class MLP:
    def __init__(self, linear_1_in_features, linear_1_out_features, f_function,
                 linear_2_in_features, linear_2_out_features, g_function):
        self.f_function, self.g_function = f_function, g_function
        self.parameters = dict(W1=np.zeros((linear_1_out_features, linear_1_in_features)),
                               b1=np.zeros(linear_1_out_features),
                               W2=np.zeros((linear_2_out_features, linear_2_in_features)),
                               b2=np.zeros(linear_2_out_features))
        self.grads = {f"dJd{k}": np.zeros_like(v) for k, v in self.parameters.items()}
        self.cache = {}

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
        self.grads.update(dJdW2=dJdz3.T @ c["z2"], dJdb2=dJdz3.sum(0), dJdW1=dJdz1.T @ c["x"], dJdb1=dJdz1.sum(0))

    def clear_grad_and_cache(self):
        self.grads = {k: np.zeros_like(v) for k, v in self.grads.items()}
        self.cache = {}


def mse_loss(y, y_hat):
    return np.mean((y_hat - y) ** 2), 2 * (y_hat - y) / y.size


def bce_loss(y, y_hat):
    J = -np.mean(y * np.log(y_hat) + (1 - y) * np.log(1 - y_hat))
    return J, -(y / y_hat - (1 - y) / (1 - y_hat)) / y.size
