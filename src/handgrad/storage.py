"""Packed parameter storage: a layer's parameters as consecutive blocks of one flat array.

A Linear's W and b are blocks of one flat θ (and dJ/dW, dJ/db of one flat dJ/dθ), each
block still a C-contiguous array of its usual shape in ``layer.params`` / ``layer.grads``.
So one fill zeroes every gradient of the layer, and one in-place update (the fast path's
BLAS axpy) covers every parameter. An MLP packs all its layers into one pair of flat
arrays, layer after layer, so that an SGD step is a single call. Other backends, mixed
dtypes, or arrays replaced in ``params``/``grads`` simply leave a layer unpacked.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class PackedParameters:
    """θ and dJ/dθ of one layer as two flat NumPy arrays.

    Attributes
    ----------
    theta, grad : the flat arrays (views into a network's arrays when the network packed
        several layers together).
    keys : the parameter names, in storage order (``("W", "b")``).
    """

    __slots__ = ("theta", "grad", "keys", "blocks", "size")

    def __init__(self, theta: np.ndarray, grad: np.ndarray, keys: tuple[str, ...], views: tuple) -> None:
        self.theta, self.grad, self.keys = theta, grad, keys
        #: (param key, grad key, θ block, dJ/dθ block) per parameter, as handed out
        self.blocks = tuple((k, "dJ_d" + k, views[2 * i], views[2 * i + 1]) for i, k in enumerate(keys))
        self.size = len(keys)

    @classmethod
    def pack(cls, layer: Any, storage: tuple[np.ndarray, np.ndarray] | None = None) -> PackedParameters | None:
        """Move ``layer``'s parameters and gradients into flat storage (values kept) and
        return it; None where they are not all NumPy arrays of one dtype. ``storage``:
        two flat arrays of the right size and dtype to use instead of new ones."""
        keys = tuple(layer.params)
        arrays = [layer.params[k] for k in keys] + [layer.grads["dJ_d" + k] for k in keys]
        if not keys or not all(type(a) is np.ndarray for a in arrays) or len({a.dtype for a in arrays}) != 1:
            return None
        dtype, size = arrays[0].dtype, sum(layer.params[k].size for k in keys)
        if storage is not None and storage[0].shape == storage[1].shape == (size,) and storage[0].dtype == dtype:
            theta, grad = storage
        else:
            theta, grad = np.empty(size, dtype), np.empty(size, dtype)
        start, views = 0, []
        for k in keys:
            shape, n = layer.params[k].shape, layer.params[k].size
            for store, key, flat in ((layer.params, k, theta), (layer.grads, "dJ_d" + k, grad)):
                block = flat[start:start + n].reshape(shape)
                block[...] = store[key]
                store[key] = block
                views.append(block)
            start += n
        return cls(theta, grad, keys, tuple(views))

    def zero_grad(self) -> None:
        """Every gradient of the layer to 0, in one fill."""
        self.grad.fill(0)
