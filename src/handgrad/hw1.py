r"""The homework interface: ``MLP``, ``mse_loss`` and ``bce_loss``, over the core.

The seed's practical part asks for exactly these names. They are a thin layer
over :class:`handgrad.model.TwoLayerNet` and :mod:`handgrad.losses`, not a
second implementation. By default they hold and take PyTorch tensors, so a
course's autograd-comparison tests run unchanged::

    net = MLP(2, 20, "relu", 20, 5, "identity")
    y_hat = net.forward(x)
    J, dJdy_hat = mse_loss(y, y_hat)
    net.backward(dJdy_hat)
    net.grads["dJdW1"]          # compare with nn.Linear's .weight.grad

``backend="numpy"`` holds NumPy arrays instead.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import numpy as np

from .backend import backend_of, to_numpy
from .layers import Linear
from .losses import BCELoss, MSELoss
from .model import TwoLayerNet

Array = Any


def _like(value: Any, like: Array, name: str) -> Array:
    """``value`` as an array of ``like``'s kind and dtype: nested lists, tuples, numbers and NumPy arrays are
    converted; anything else is a TypeError naming the type wanted."""
    if isinstance(value, type(like)):
        return value
    if isinstance(value, (list, tuple, int, float, np.ndarray, np.generic)) and not isinstance(value, bool):
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be numbers (a nested list or an array), got {type(value).__name__}: "
                            f"{exc}") from None
        return backend_of(like).asarray(array, like.dtype)
    raise TypeError(f"{name} must be a {type(like).__module__.split('.')[0]}.{type(like).__name__} like the "
                    f"network's parameters (or a nested list of numbers), got {type(value).__name__}")


class _LiveView(MutableMapping):
    """A dict whose entries are the network's own arrays (reads and writes go through)."""

    def __init__(self, slots: dict[str, tuple[dict, str]]) -> None:
        self._slots = slots

    def __getitem__(self, key: str) -> Array:
        store, inner = self._slots[key]
        return store[inner]

    def __setitem__(self, key: str, value: Array) -> None:
        if key not in self._slots:
            raise KeyError(f"{key!r}: known keys are {', '.join(self._slots)}")
        store, inner = self._slots[key]
        old = store[inner]
        value = _like(value, old, key)
        if tuple(value.shape) != tuple(old.shape):
            raise ValueError(f"{key} must have shape {tuple(old.shape)}, got {tuple(value.shape)}")
        store[inner] = backend_of(old).asarray(to_numpy(value) if type(value) is not type(old) else value, old.dtype)

    def __delitem__(self, key: str) -> None:
        raise TypeError("the network's parameters cannot be deleted")

    def __iter__(self) -> Iterator[str]:
        return iter(self._slots)

    def __len__(self) -> int:
        return len(self._slots)

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {self[k]!r}" for k in self) + "}"


class MLP:
    """The seed's two-layer network with the homework's constructor and dicts.

    Parameters
    ----------
    linear_1_in_features, linear_1_out_features : n and m.
    f_function, g_function : activation names ('relu', 'sigmoid', 'identity', 'tanh',
        '5relu', 'gelu', 'leaky_relu', ... every name handgrad knows).
    linear_2_in_features, linear_2_out_features : m (must equal linear_1_out_features) and K.
    backend : 'torch' (default, needs PyTorch) or 'numpy'.
    dtype : defaults to torch's default dtype (float32) for torch, float64 for NumPy.
    seed : seeds the initial weights (PyTorch's default initialisation).
    """

    def __init__(
        self,
        linear_1_in_features: int,
        linear_1_out_features: int,
        f_function: Any,
        linear_2_in_features: int,
        linear_2_out_features: int,
        g_function: Any,
        *,
        backend: str = "torch",
        dtype: Any = None,
        seed: Any = None,
    ) -> None:
        if linear_2_in_features != linear_1_out_features:
            raise ValueError(
                f"linear_2_in_features must equal linear_1_out_features: got {linear_2_in_features} "
                f"and {linear_1_out_features}"
            )
        if backend == "torch":
            from .optional import require

            torch = require("torch", extra="torch", purpose="handgrad.hw1.MLP (PyTorch tensors by default)",
                            alternative="pass backend='numpy'")
            dtype = dtype or str(torch.get_default_dtype())
        dtype = dtype or np.float64
        self.net = TwoLayerNet(
            linear_1_in_features, linear_1_out_features, linear_2_out_features,
            f=f_function, g=g_function, dtype=dtype, backend=backend, seed=seed,
        )
        linear1, linear2 = self.net.linears
        self.parameters = _LiveView({
            "W1": (linear1.params, "W"), "b1": (linear1.params, "b"),
            "W2": (linear2.params, "W"), "b2": (linear2.params, "b"),
        })
        self.grads = _LiveView({
            "dJdW1": (linear1.grads, "dJ_dW"), "dJdb1": (linear1.grads, "dJ_db"),
            "dJdW2": (linear2.grads, "dJ_dW"), "dJdb2": (linear2.grads, "dJ_db"),
        })
        self.cache: dict[str, Array] = {}

    def forward(self, x: Array) -> Array:
        """z1 = x W1ᵀ + b1, z2 = f(z1), z3 = z2 W2ᵀ + b2, ŷ = g(z3); the z's go into ``cache``."""
        linear1, f, linear2, g = self.net.layers
        x = _like(x, linear1.params["W"], "x")
        z1 = linear1.forward(x)
        z2 = f.forward(z1)
        z3 = linear2.forward(z2)
        y_hat = g.forward(z3)
        self.cache = {"x": x, "z1": z1, "z2": z2, "z3": z3, "y_hat": y_hat}
        return y_hat

    def backward(self, dJdy_hat: Array) -> None:
        """Add dJ/dW1, dJ/db1, dJ/dW2, dJ/db2 into ``grads`` (they accumulate until cleared)."""
        if not self.cache:
            raise RuntimeError("MLP.backward called before forward; call forward(x) first")
        y_hat = self.cache["y_hat"]
        dJdy_hat = _like(dJdy_hat, y_hat, "dJdy_hat")
        if tuple(dJdy_hat.shape) != tuple(y_hat.shape):  # broadcasting would give silently wrong gradients
            raise ValueError(f"MLP.backward: dJdy_hat must have the output's shape {tuple(y_hat.shape)}, "
                             f"got {tuple(dJdy_hat.shape)}")
        self.net.backward(dJdy_hat, input_grad=False)

    def clear_grad_and_cache(self) -> None:
        """Zero every gradient and forget the cached forward pass."""
        self.net.zero_grad()
        self.net.clear_cache()
        self.cache = {}

    def __repr__(self) -> str:
        n, m, K = self.net.in_features, self.net.hidden_sizes[0], self.net.out_features
        return f"MLP({n}, {m}, {self.net.f_name!r}, {m}, {K}, {self.net.g_name!r}, backend={self.net.backend.name!r})"


def mse_loss(y: Array, y_hat: Array) -> tuple[Array, Array]:
    """(J, dJ/dŷ) of the mean squared error over every element, like ``F.mse_loss``."""
    return MSELoss()(y, y_hat)


def bce_loss(y: Array, y_hat: Array) -> tuple[Array, Array]:
    """(J, dJ/dŷ) of binary cross-entropy over every element, like ``nn.BCELoss``."""
    return BCELoss()(y, y_hat)


__all__ = ["MLP", "bce_loss", "mse_loss", "Linear"]
