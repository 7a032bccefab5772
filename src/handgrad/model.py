r"""Networks: ``Sequential`` of layers; ``MLP`` = Linear -> f -> ... -> Linear -> g.

The seed's five SGD steps read plainly::

    y_hat = net(x)                   # 1. forward
    J, dJ_dy_hat = loss(y, y_hat)    # 2. loss
    net.zero_grad()                  # 3. clear the gradients
    net.backward(dJ_dy_hat)          # 4. backward
    optimizer.step()                 # 5. update

``net.backward_loss(loss, y)`` does steps 2 and 4 at once and uses the fused
gradient when the network ends in a pair that simplifies (sigmoid + BCE,
softmax + cross-entropy).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ._checks import as_array, check_2d, check_size
from .backend import Backend, backend_of
from .layers import (
    Activation,
    Layer,
    Linear,
    activation_name,
    make_activation,
    make_rng,
    resolve_dtype,
)

Array = Any


class Sequential:
    """Layers applied in order; backward runs them in reverse.

    Consecutive sizes are checked at construction: ``Linear(4, 8)`` followed by
    ``Linear(6, 2)`` raises a ValueError naming both layers.
    """

    def __init__(self, *layers: Layer) -> None:
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        if not layers:
            raise ValueError("Sequential needs at least one layer, got none")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: layer {i} must be a handgrad Layer, got {type(layer).__name__}")
            layer.name = f"layers[{i}]"
        self.layers: list[Layer] = list(layers)
        self._check_chain()
        self._last_input: Any = None
        self._last_output: Any = None

    # ------------------------------------------------------------ structure
    def _check_chain(self) -> None:
        linears = [(i, layer) for i, layer in enumerate(self.layers) if isinstance(layer, Linear)]
        for (i, a), (j, b) in zip(linears, linears[1:]):
            if a.out_features != b.in_features:
                raise ValueError(
                    f"layer sizes do not chain: layers[{i}] {a!r} outputs {a.out_features} features, "
                    f"but layers[{j}] {b!r} expects {b.in_features}"
                )

    @property
    def linears(self) -> list[Linear]:
        return [layer for layer in self.layers if isinstance(layer, Linear)]

    @property
    def in_features(self) -> int | None:
        linears = self.linears
        return linears[0].in_features if linears else None

    @property
    def out_features(self) -> int | None:
        linears = self.linears
        return linears[-1].out_features if linears else None

    @property
    def dtype(self) -> np.dtype:
        for layer in self.layers:
            for p in layer.params.values():
                return resolve_dtype(p.dtype)
        return np.dtype(np.float64)

    @property
    def backend(self) -> Backend:
        for layer in self.layers:
            for p in layer.params.values():
                return backend_of(p)
        return Backend("numpy")

    def output_shape(self, input_shape: tuple) -> tuple:
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    # ------------------------------------------------------------ parameters
    def named_layers(self) -> list[tuple[str, Layer]]:
        """Layers with a parameter suffix: the k-th Linear is '1', '2', ... (W1, b1, W2, ...)."""
        out, k = [], 0
        for layer in self.layers:
            if layer.params:
                k += 1
                out.append((str(k), layer))
        return out

    @property
    def params(self) -> dict[str, Array]:
        """All parameters by their math names: {'W1': ..., 'b1': ..., 'W2': ...}."""
        return {f"{key}{suffix}": arr for suffix, layer in self.named_layers() for key, arr in layer.params.items()}

    @property
    def grads(self) -> dict[str, Array]:
        """All gradients, named like the params: {'dJ_dW1': ..., 'dJ_db1': ...}."""
        return {f"{key}{suffix}": arr for suffix, layer in self.named_layers() for key, arr in layer.grads.items()}

    def parameter_slots(self) -> list[tuple[str, Layer, str, str]]:
        """(name, layer, param key, grad key) for every parameter, for optimizers."""
        return [(f"{key}{suffix}", layer, key, f"dJ_d{key}") for suffix, layer in self.named_layers() for key in layer.params]

    def n_parameters(self) -> int:
        return int(sum(int(np.prod(p.shape)) for p in self.params.values()))

    # ------------------------------------------------------------ forward / backward
    def __call__(self, x: Array) -> Array:
        return self.forward(x)

    def forward(self, x: Array) -> Array:
        """y_hat for a batch x of shape (N, in_features)."""
        x = as_array(x, "x", self.dtype if isinstance(x, (np.ndarray, list, tuple)) else None)
        check_2d(x, "x", f"{type(self).__name__}.forward")
        for layer in self.layers[:-1]:
            x = layer.forward(x)
        self._last_input = x  # the output layer's input, for fused losses
        self._last_output = self.layers[-1].forward(x)
        return self._last_output

    def backward(self, dJ_dy_hat: Array, input_grad: bool = True) -> Array | None:
        """Backpropagate dJ/dŷ through every layer; returns dJ/dx (None if not input_grad)."""
        return self._backward_from(len(self.layers) - 1, dJ_dy_hat, input_grad)

    def _backward_from(self, last: int, g: Array, input_grad: bool) -> Array | None:
        for i in range(last, -1, -1):
            layer = self.layers[i]
            if i == 0 and isinstance(layer, Linear):
                return layer.backward(g, need_input_grad=input_grad)
            g = layer.backward(g)
        return g

    def fused_pair(self, loss: Any) -> bool:
        """True when the last layer and ``loss`` fuse (sigmoid + BCE, softmax + cross-entropy)."""
        last = self.layers[-1]
        out = getattr(loss, "fused_output", None)
        return out is not None and type(last) is out and getattr(last, "scale", 1.0) == 1.0 \
            and getattr(last, "beta", 1.0) == 1.0

    def backward_loss(self, loss: Any, y: Array, input_grad: bool = False) -> Array:
        """Loss of the last forward pass and backward from it, fused where the math allows.

        Returns J. The network must have run ``forward`` on the batch that ``y`` labels.
        """
        if getattr(self, "_last_output", None) is None:
            raise RuntimeError(f"{type(self).__name__}.backward_loss called before forward; call forward(x) first")
        if self.fused_pair(loss):
            J, dJ_dz = loss.fused(y, self._last_input)
            self.layers[-1].cache = None  # the output layer is bypassed by the fused gradient
            self._backward_from(len(self.layers) - 2, dJ_dz, input_grad)
            return J
        J, dJ_dy_hat = loss(y, self._last_output)
        self.backward(dJ_dy_hat, input_grad=input_grad)
        return J

    def zero_grad(self) -> None:
        for layer in self.layers:
            layer.zero_grad()

    def clear_cache(self) -> None:
        for layer in self.layers:
            layer.clear_cache()
        self._last_input = self._last_output = None

    # ------------------------------------------------------------ conversion
    def to(self, backend: str | Backend | None = None, dtype: Any = None, device: Any = None) -> Sequential:
        """Move every parameter to another backend and/or dtype (in place); returns self."""
        for layer in self.layers:
            layer.to(backend, dtype, device)
        return self

    def copy(self) -> Sequential:
        return copy.deepcopy(self)

    def config(self) -> dict[str, Any]:
        """The architecture as plain data (for save/load): a list of layer configs."""
        from .layers import layer_config

        return {"type": "Sequential", "layers": [layer_config(layer) for layer in self.layers]}

    def __repr__(self) -> str:
        inner = ",\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"{type(self).__name__}(\n{inner}\n)"


class MLP(Sequential):
    """A multilayer perceptron of any depth: Linear -> f -> ... -> Linear -> g.

    Parameters
    ----------
    in_features, out_features : input and output widths (n and K in the seed).
    hidden_sizes : an int or a sequence of ints, one per hidden layer (m in the seed);
        an empty sequence gives a single Linear -> g.
    f : hidden activation, a name ('relu', '5relu', 'tanh', 'gelu', ...) or a Layer.
    g : output activation ('identity', 'sigmoid', 'softmax', ...).
    init, seed, dtype, backend, device : as for :class:`~handgrad.layers.Linear`;
        one seeded generator draws every layer's weights in order.

    >>> MLP(2, [8, 8], 1, f="tanh").output_shape((None, 2))
    (None, 1)
    """

    def __init__(
        self,
        in_features: int,
        hidden_sizes: int | Sequence[int],
        out_features: int,
        f: Any = "relu",
        g: Any = "identity",
        *,
        init: str = "pytorch",
        seed: Any = None,
        dtype: Any = np.float32,
        backend: str | Backend = "numpy",
        device: Any = None,
    ) -> None:
        in_features = check_size("in_features", in_features)
        out_features = check_size("out_features", out_features)
        hidden = _hidden_list(hidden_sizes)
        rng = make_rng(seed)
        sizes = [in_features, *hidden, out_features]
        layers: list[Layer] = []
        for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
            layers.append(Linear(n_in, n_out, init=init, seed=rng, dtype=dtype, backend=backend, device=device))
            is_last = i == len(sizes) - 2
            layers.append(_fresh_activation(g if is_last else f))
        self.hidden_sizes = hidden
        self.f_name = _name_of(layers[1]) if hidden else _name_of_spec(f)
        self.g_name = _name_of(layers[-1])
        super().__init__(*layers)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(in_features={self.in_features}, hidden_sizes={self.hidden_sizes}, "
                f"out_features={self.out_features}, f={self.f_name!r}, g={self.g_name!r})")


class TwoLayerNet(MLP):
    """The seed's network x -> Linear1 -> f -> Linear2 -> g -> ŷ, with n -> m -> K.

    Defaults are the seed's regression: f = 5·ReLU, g = identity. Its parameters are
    W1 (m, n), b1 (m,), W2 (K, m), b2 (K,).
    """

    def __init__(self, n: int, m: int, K: int, f: Any = "5relu", g: Any = "identity", **kwargs: Any) -> None:
        super().__init__(n, [check_size("m", m)], K, f, g, **kwargs)

    def __repr__(self) -> str:
        return (f"TwoLayerNet(n={self.in_features}, m={self.hidden_sizes[0]}, K={self.out_features}, "
                f"f={self.f_name!r}, g={self.g_name!r})")


def _hidden_list(hidden_sizes: Any) -> list[int]:
    if isinstance(hidden_sizes, (int, np.integer)) and not isinstance(hidden_sizes, bool):
        return [check_size("hidden_sizes", hidden_sizes)]
    if isinstance(hidden_sizes, (str, bytes)) or not isinstance(hidden_sizes, Sequence):
        raise TypeError(f"hidden_sizes must be an int or a sequence of ints, got {type(hidden_sizes).__name__}")
    return [check_size(f"hidden_sizes[{i}]", h) for i, h in enumerate(hidden_sizes)]


def _fresh_activation(spec: Any) -> Layer:
    return copy.deepcopy(spec) if isinstance(spec, Layer) else make_activation(spec)


def _name_of(layer: Layer) -> str:
    try:
        return activation_name(layer)
    except ValueError:
        return repr(layer)


def _name_of_spec(spec: Any) -> str:
    return _name_of(_fresh_activation(spec))


def is_activation(layer: Layer) -> bool:
    return isinstance(layer, Activation)


__all__ = ["MLP", "Sequential", "TwoLayerNet"]
