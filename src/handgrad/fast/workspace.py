"""What one layer reuses across training steps on the fast path."""

from __future__ import annotations

from typing import Any

import numpy as np


class StalePlanError(Exception):
    """A layer's parameters or settings changed since its kernels were bound (the network
    then drops its plans and rebuilds them on the next pass)."""


class NotFastError(Exception):
    """A layer's current state does not suit the fast path (e.g. a Linear whose parameters
    are not stored packed): the network runs the plain path for that shape."""


class Workspace:
    """One layer's buffers for one batch shape and dtype.

    The flags say what the layer may overwrite: ``inplace`` -- its input is a private
    buffer that nothing else needs, so the layer may write its output over it; ``fresh``
    -- its output leaves the network (ŷ), so it goes into a newly allocated array;
    ``first`` -- the layer's input and dJ/d(input) belong to the caller, so they are never
    overwritten and dJ/d(input) is freshly allocated.

    A kernel binder (:mod:`handgrad.fast.kernels`) allocates what it reads every step
    (``out``, ``dx``, ``ones``, ``zeros``, ``mask``, ``slope``) and takes rarer scratch
    arrays from :meth:`buffer`. Constants go in as 0-d arrays of the dtype (``zero``,
    ``scale``): NumPy's ufuncs take those faster than a Python number, with the same result
    (``np.maximum`` is the exception: against a scalar it runs slower than against the
    full ``zeros`` array; docs/performance.md has the figures).
    """

    __slots__ = ("shape_in", "shape_out", "dtype", "first", "fresh", "inplace", "buffers",
                 "out", "dx", "ones", "zeros", "mask", "above", "slope", "zero", "scale", "bias_add")

    def __init__(self, shape_in: tuple, shape_out: tuple, dtype: np.dtype, *, first: bool, fresh: bool,
                 inplace: bool) -> None:
        self.shape_in, self.shape_out, self.dtype = shape_in, shape_out, np.dtype(dtype)
        self.first, self.fresh, self.inplace = first, fresh, inplace
        self.buffers: dict[str, np.ndarray] = {}
        # the buffers a kernel binder allocates (None until it does); Any: NumPy's stubs have
        # no overload for a ufunc's out= that may be None
        self.out: Any = None
        self.dx: Any = None
        self.ones: Any = None
        self.zeros: Any = None
        self.mask: Any = None
        self.above: Any = None  # ReLU: 1[x > 0] as booleans, before it is copied into the float mask
        self.slope: Any = None
        self.scale: Any = None
        self.bias_add: Any = None  # Linear: z += 1 bᵀ by BLAS (handgrad.fast.kernels), or None: NumPy's add
        self.zero = np.zeros((), self.dtype)

    def buffer(self, name: str, shape: tuple) -> np.ndarray:
        """A reused scratch array (allocated once, then overwritten every step)."""
        buf = self.buffers.get(name)
        if buf is None:
            buf = self.buffers[name] = np.empty(shape, self.dtype)
        return buf

    def prepare_output(self) -> None:
        """Allocate ``out`` if the layer's output goes into a buffer (neither fresh nor in place)."""
        if not self.fresh and not self.inplace:
            self.out = np.empty(self.shape_out, self.dtype)

    def output(self, x: np.ndarray) -> np.ndarray:
        """Where an elementwise layer writes y: a fresh array, over x, or its buffer."""
        if self.fresh:
            return np.empty(self.shape_out, self.dtype)
        return x if self.inplace else self.out

    def input_grad(self, g: np.ndarray) -> np.ndarray:
        """Where an elementwise layer writes dJ/dx: over dJ/dy, or fresh for the caller."""
        return np.empty(self.shape_in, self.dtype) if self.first else g
