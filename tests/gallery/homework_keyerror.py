"""Correct (NumPy): relu, sigmoid, identity and tanh in a dict; other names raise KeyError in forward."""

from impl_correct_numpy import MLP as Correct
from impl_correct_numpy import bce_loss, mse_loss  # noqa: F401


class MLP(Correct):
    def __init__(self, n, m, f_function, m2, K, g_function):
        super().__init__(n, m, "identity", m2, K, "identity")  # sizes only; the names are looked up in forward
        self.f_function, self.g_function = f_function, g_function
