"""The conceptual questions computed: softmax as a smooth arg max (1.3(a)) and stacked linear maps as one affine map (1.3(d))."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import Linear, Sequential, Softmax
from ..backend import to_numpy


def softargmax(x: Any, beta: float = 1.0) -> np.ndarray:
    """softmax(βx) along the last axis: a smooth arg max.

    As β grows it tends to the one-hot vector of the largest entry (the arg max),
    not to the largest entry itself; ``softargmax(x, β) · x`` tends to max(x).

    >>> np.round(softargmax([1.0, 3.0, 2.0], beta=50.0), 6)
    array([0., 1., 0.])
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"softargmax expects a non-empty vector, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("softargmax expects finite values")
    layer = Softmax(beta)
    return np.asarray(to_numpy(layer.forward(x.reshape(-1, x.shape[-1])))).reshape(x.shape)


def one_hot_argmax(x: Any) -> np.ndarray:
    """The limit of softargmax(x, β) as β → ∞: the one-hot vector of the largest entry.

    With ties the limit is the uniform vector over the tied maxima (softmax treats equal
    inputs equally at every β), not a one-hot vector of the first of them.

    >>> one_hot_argmax([1.0, 3.0, 3.0])
    array([0. , 0.5, 0.5])
    """
    x = np.asarray(x, dtype=np.float64)
    top = x == np.max(x, axis=-1, keepdims=True)
    return top / np.sum(top, axis=-1, keepdims=True)


def compose_affine(layers: Any) -> tuple[np.ndarray, np.ndarray]:
    """One affine map (W, b) equal to a stack of Linear layers with nothing between them.

    x W1ᵀ + b1 then (·) W2ᵀ + b2 is x (W2 W1)ᵀ + (b1 W2ᵀ + b2): the product of the
    weights and the pushed-through biases. Raises if a non-linear layer is in the stack.
    """
    seq = layers.layers if isinstance(layers, Sequential) else list(layers)
    W, b = None, None
    for layer in seq:
        if not isinstance(layer, Linear):
            raise ValueError(f"compose_affine needs Linear layers only; {layer!r} is not linear, "
                             "which is why a stack with activations is not one affine map")
        Wk = np.asarray(to_numpy(layer.params["W"]), dtype=np.float64)
        bk = np.asarray(to_numpy(layer.params["b"]), dtype=np.float64) if "b" in layer.params else np.zeros(Wk.shape[0])
        W, b = (Wk, bk) if W is None else (Wk @ W, b @ Wk.T + bk)
    if W is None or b is None:
        raise ValueError("compose_affine needs at least one Linear layer")
    return W, b


__all__ = ['compose_affine', 'one_hot_argmax', 'softargmax']
