"""A correct homework MLP on PyTorch tensors (float32, torch's default dtype).

Written the way the homework's starter code is: parameters and gradients in dicts,
gradients compared against autograd by the course's tests. Also accepts leaky_relu.
"""

import torch

ACTIVATIONS = {
    "relu": (torch.relu, lambda z, a: (z > 0).to(z.dtype)),
    "sigmoid": (torch.sigmoid, lambda z, a: a * (1 - a)),
    "identity": (lambda z: z, lambda z, a: torch.ones_like(z)),
    "tanh": (torch.tanh, lambda z, a: 1 - a**2),
    "leaky_relu": (lambda z: torch.where(z > 0, z, 0.01 * z),
                   lambda z, a: torch.where(z > 0, torch.ones_like(z), torch.full_like(z, 0.01))),
}


class MLP:
    def __init__(self, linear_1_in_features, linear_1_out_features, f_function,
                 linear_2_in_features, linear_2_out_features, g_function):
        if f_function not in ACTIVATIONS or g_function not in ACTIVATIONS:
            raise NotImplementedError(f"activations {f_function!r}, {g_function!r}: only {sorted(ACTIVATIONS)}")
        self.f_function, self.g_function = f_function, g_function
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
        p = self.parameters
        z1 = x @ p["W1"].T + p["b1"]
        z2 = ACTIVATIONS[self.f_function][0](z1)
        z3 = z2 @ p["W2"].T + p["b2"]
        y_hat = ACTIVATIONS[self.g_function][0](z3)
        self.cache = dict(x=x, z1=z1, z2=z2, z3=z3, y_hat=y_hat)
        return y_hat

    def backward(self, dJdy_hat):
        c, p = self.cache, self.parameters
        dJdz3 = dJdy_hat * ACTIVATIONS[self.g_function][1](c["z3"], c["y_hat"])
        self.grads["dJdW2"] += dJdz3.T @ c["z2"]
        self.grads["dJdb2"] += dJdz3.sum(0)
        dJdz1 = (dJdz3 @ p["W2"]) * ACTIVATIONS[self.f_function][1](c["z1"], c["z2"])
        self.grads["dJdW1"] += dJdz1.T @ c["x"]
        self.grads["dJdb1"] += dJdz1.sum(0)

    def clear_grad_and_cache(self):
        for grad in self.grads.values():
            grad.zero_()
        self.cache = dict()


def mse_loss(y, y_hat):
    J = ((y_hat - y) ** 2).mean()
    return J, 2 * (y_hat - y) / y.numel()


def bce_loss(y, y_hat):
    J = -(y * torch.log(y_hat) + (1 - y) * torch.log(1 - y_hat)).mean()
    return J, -(y / y_hat - (1 - y) / (1 - y_hat)) / y.numel()
