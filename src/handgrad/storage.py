"""Packed parameter storage: a layer's parameters as blocks of one flat array.

A layer's parameters live in one flat θ (and its gradients in one flat dJ/dθ), so one fill
zeroes every gradient of the layer and one in-place update (the fast path's BLAS axpy)
covers every parameter. An MLP packs all its layers into one pair of flat arrays, layer
after layer, so that an SGD step is a single call. Other backends, mixed dtypes, or arrays
replaced in ``params``/``grads`` simply leave a layer unpacked.

A weight matrix W (out, in) with its bias b (out,) is stored *folded*: θ is the matrix

    M = [Wᵀ]   (in + 1, out), C-contiguous,
        [bᵀ]

so that z = x Wᵀ + b is the one product [x 1] M, and dJ/dM = [x 1]ᵀ dJ/dz holds dJ/dWᵀ
and dJ/db in one product too (the fast step's layout, :mod:`handgrad.fast.step`). The
public arrays keep PyTorch's layout as views: ``W`` is ``M[:in].T`` (shape (out, in),
Fortran-ordered: ``W.T`` is C-contiguous) and ``b`` is ``M[in]`` (contiguous). Every
in-place write (``W[...] = ...``, ``W -= ...``, ufuncs with ``out=``) reaches θ; only a
reshape of W copies, as for any transposed array. Any other parameters are consecutive
C-contiguous blocks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ARRAYS_REPLACED = [0]  #: how many times an array was put into (or taken out of) any layer's params or grads


class ArrayDict(dict):
    """A layer's ``params`` or ``grads``: a dict that counts, in :data:`ARRAYS_REPLACED`, every
    time an entry is set or removed. Code bound to a layer's arrays (the whole-step closure of
    :mod:`handgrad.fast.step`) then checks one number per step, and each array only when the
    number moved, instead of looking up every key every step."""

    __slots__ = ()

    def __setitem__(self, key: Any, value: Any) -> None:
        ARRAYS_REPLACED[0] += 1
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        ARRAYS_REPLACED[0] += 1
        dict.__delitem__(self, key)

    def _changed(name: str) -> Any:  # type: ignore[misc]  # noqa: N805 - builds the methods below
        method = getattr(dict, name)

        def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            ARRAYS_REPLACED[0] += 1
            return method(self, *args, **kwargs)
        counted.__name__ = name
        return counted

    update = _changed("update")
    setdefault = _changed("setdefault")
    pop = _changed("pop")
    popitem = _changed("popitem")
    clear = _changed("clear")
    __ior__ = _changed("__ior__")
    del _changed


def counted_dict(value: Any) -> Any:
    """What a layer's ``params`` or ``grads`` becomes when set whole: the change counted in
    ARRAYS_REPLACED, and a plain dict made an :class:`ArrayDict` (other mappings are kept as
    they are; the fast path's closures then leave the layer to the per-layer kernels)."""
    ARRAYS_REPLACED[0] += 1
    return ArrayDict(value) if type(value) is dict else value


class PackedParameters:
    """θ and dJ/dθ of one layer as two flat NumPy arrays.

    Attributes
    ----------
    theta, grad : the flat arrays (views into a network's arrays when the network packed
        several layers together).
    keys : the parameter names, in storage order (``("W", "b")``).
    folded : ``(M, dJ/dM)``, the two (in [+ 1], out) matrices whose rows are Wᵀ [and bᵀ],
        for a folded weight and bias (see the module); None for other layouts.
    """

    __slots__ = ("theta", "grad", "keys", "blocks", "size", "folded")

    def __init__(self, theta: np.ndarray, grad: np.ndarray, keys: tuple[str, ...], views: tuple,
                 folded: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.theta, self.grad, self.keys, self.folded = theta, grad, keys, folded
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
        if _foldable(layer.params, keys):
            return cls._pack_folded(layer, keys, theta, grad)
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

    @classmethod
    def _pack_folded(cls, layer: Any, keys: tuple[str, ...], theta: np.ndarray, grad: np.ndarray) -> PackedParameters:
        """W (out, in) [and b (out,)] as the views ``M[:in].T`` [and ``M[in]``] of M = [Wᵀ; bᵀ]."""
        n_out, n_in = layer.params["W"].shape
        rows = n_in + (len(keys) == 2)
        M, dM = theta.reshape(rows, n_out), grad.reshape(rows, n_out)
        views = []
        for k in keys:
            for store, key, matrix in ((layer.params, k, M), (layer.grads, "dJ_d" + k, dM)):
                block = matrix[:n_in].T if k == "W" else matrix[n_in]
                block[...] = store[key]
                store[key] = block
                views.append(block)
        return cls(theta, grad, keys, tuple(views), (M, dM))

    def zero_grad(self) -> None:
        """Every gradient of the layer to 0, in one fill."""
        self.grad.fill(0)


def flat_base(arrays: list[Any]) -> np.ndarray | None:
    """The one 1-D NumPy array that ``arrays`` are all views of and that holds nothing else (their
    sizes add up to its size): a network's flat gradient, which the packed layers' gradients tile.
    A finite sum of squares over it, one dot, vouches that every one of them is finite. None
    where the arrays are not laid out so."""
    bases = [a if a.base is None else a.base for a in arrays]  # an array that owns its memory is its own base
    base = bases[0] if bases else None
    if (type(base) is not np.ndarray or base.ndim != 1 or any(b is not base for b in bases)
            or sum(a.size for a in arrays) != base.size):
        return None
    return base


def _foldable(params: dict[str, np.ndarray], keys: tuple[str, ...]) -> bool:
    """Whether the parameters are a weight W (out, in) and maybe its bias b (out,), in that order."""
    if keys not in (("W",), ("W", "b")) or params["W"].ndim != 2:
        return False
    return len(keys) == 1 or params["b"].shape == params["W"].shape[:1]
