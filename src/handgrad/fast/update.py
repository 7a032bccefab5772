"""SGD's update θ ← θ - lr·dJ/dθ, in place, as the fast path runs it.

On NumPy a layer's packed θ = (W, b) is updated in one pass through the axpy of NumPy's own
BLAS (:func:`~handgrad.fast.blas.blas_axpy`); without it, lr·dJ/dθ goes into a reused
scratch array and is subtracted, so a step allocates nothing. Other backends use
``θ -= lr·dJ/dθ``. :class:`handgrad.optim.SGD` is the one optimizer that calls it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .blas import blas_axpy


def sgd_update(theta: Any, dJ_dtheta: Any, lr: float, scratch: dict) -> None:
    """θ ← θ - lr·dJ/dθ in place; ``scratch`` is a dict the caller keeps between calls."""
    if type(theta) is not np.ndarray or type(dJ_dtheta) is not np.ndarray or theta.dtype != dJ_dtheta.dtype:
        theta -= lr * dJ_dtheta
        return
    dtype = theta.dtype
    axpy = blas_axpy(dtype)
    if (axpy is not None and theta.shape == dJ_dtheta.shape and theta.flags.c_contiguous
            and dJ_dtheta.flags.c_contiguous and theta.flags.writeable
            and not np.may_share_memory(theta, dJ_dtheta)):
        axpy(theta.size, -lr, dJ_dtheta.ctypes.data, 1, theta.ctypes.data, 1)  # θ += (-lr)·dJ/dθ, one pass
        return
    tmp = scratch.get((theta.shape, dtype))
    if tmp is None:
        tmp = scratch[(theta.shape, dtype)] = np.empty(theta.shape, dtype)
    lr_array = scratch.get(dtype)  # (lr, lr as a 0-d array: ufuncs take it faster than a float)
    if lr_array is None or lr_array[0] != lr:
        lr_array = scratch[dtype] = (lr, np.array(lr, dtype))
    theta -= np.multiply(dJ_dtheta, lr_array[1], out=tmp)


def merged_ranges(ranges: list[tuple[int, int, int]], itemsize: int) -> list[tuple[int, int, int]]:
    """(size, θ address, dJ/dθ address) ranges with abutting ones merged: one BLAS call covers
    two arrays exactly when both θ and dJ/dθ continue where the previous ones end."""
    merged: list[list[int]] = []
    for size, theta_ptr, grad_ptr in ranges:
        if merged:
            last = merged[-1]
            if last[1] + last[0] * itemsize == theta_ptr and last[2] + last[0] * itemsize == grad_ptr:
                last[0] += size
                continue
        merged.append([size, theta_ptr, grad_ptr])
    return [(size, theta_ptr, grad_ptr) for size, theta_ptr, grad_ptr in merged]
