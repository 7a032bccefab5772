"""A correct homework MLP on NumPy arrays (the interface of handgrad.hw1).

Every broken implementation in this gallery is a small variation of this file:
it imports it and overrides the one piece that holds the mistake.
"""

import numpy as np


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


# name -> (f(z), f'(z) given the input z and the output a = f(z))
ACTIVATIONS = {
    "relu": (lambda z: np.maximum(z, 0), lambda z, a: (z > 0).astype(z.dtype)),
    "sigmoid": (sigmoid, lambda z, a: a * (1 - a)),
    "identity": (lambda z: z, lambda z, a: np.ones_like(z)),
    "tanh": (np.tanh, lambda z, a: 1 - a**2),
}


class MLP:
    def __init__(self, linear_1_in_features, linear_1_out_features, f_function,
                 linear_2_in_features, linear_2_out_features, g_function):
        for name in (f_function, g_function):
            if name not in ACTIVATIONS:
                raise ValueError(f"unknown activation {name!r}")
        self.f_function, self.g_function = f_function, g_function
        rng = np.random.default_rng(0)
        self.parameters = {
            "W1": rng.standard_normal((linear_1_out_features, linear_1_in_features)),
            "b1": rng.standard_normal(linear_1_out_features),
            "W2": rng.standard_normal((linear_2_out_features, linear_2_in_features)),
            "b2": rng.standard_normal(linear_2_out_features),
        }
        self.grads = {f"dJd{k}": np.zeros_like(v) for k, v in self.parameters.items()}
        self.cache = {}

    def slope(self, name, z, a):
        """The activation's derivative at input z (output a)."""
        return ACTIVATIONS[name][1](z, a)

    def forward(self, x):
        p = self.parameters
        z1 = x @ p["W1"].T + p["b1"]
        z2 = ACTIVATIONS[self.f_function][0](z1)
        z3 = z2 @ p["W2"].T + p["b2"]
        y_hat = ACTIVATIONS[self.g_function][0](z3)
        self.remember(x=x, z1=z1, z2=z2, z3=z3, y_hat=y_hat)
        return y_hat

    def remember(self, **tensors):
        self.cache = tensors

    def backward(self, dJdy_hat):
        for name, value in self.gradients(dJdy_hat).items():
            self.store(name, value)

    def gradients(self, dJdy_hat):
        c = self.cache
        dJdz3 = dJdy_hat * self.slope(self.g_function, c["z3"], c["y_hat"])
        dJdz2 = dJdz3 @ self.parameters["W2"]
        dJdz1 = dJdz2 * self.slope(self.f_function, c["z1"], c["z2"])
        return {
            "dJdW2": self.weight_grad(dJdz3, c["z2"]), "dJdb2": self.bias_grad(dJdz3),
            "dJdW1": self.weight_grad(dJdz1, c["x"]), "dJdb1": self.bias_grad(dJdz1),
        }

    def weight_grad(self, dJdz, inputs):
        return dJdz.T @ inputs

    def bias_grad(self, dJdz):
        return dJdz.sum(axis=0)

    def store(self, name, value):
        self.grads[name] = value

    def clear_grad_and_cache(self):
        for name in self.grads:
            self.grads[name] = np.zeros_like(self.grads[name])
        self.cache = {}


def mse_loss(y, y_hat):
    diff = y_hat - y
    return np.mean(diff**2), 2 * diff / diff.size


def bce_loss(y, y_hat):
    J = -np.mean(y * np.log(y_hat) + (1 - y) * np.log(1 - y_hat))
    return J, -(y / y_hat - (1 - y) / (1 - y_hat)) / y.size
