"""Fast kernels, keyed by layer type: the plain layers' math for NumPy arrays, through reused buffers.

:data:`KERNELS` maps a layer class to a :class:`FastOp`: a binder that, given the layer
and its :class:`~handgrad.fast.workspace.Workspace`, allocates the buffers and returns
``(forward(x), backward(dJ_dy, need_input_grad=True))`` as closures over them (nothing
to look up per call), and two facts the plan needs to decide what may be overwritten.
A class without an entry, or a binder returning None, runs the plain pair inside the
plan. The plain layer classes know nothing of this table; tests/test_fast_path.py holds
every kernel equal to its layer's forward and backward, value for value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import functional as F
from ..layers import (
    GELU,
    Activation,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ReLU,
    Scale,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
)
from .blas import ROW_MAJOR, blas_ger, copyto, dot
from .workspace import NotFastError, StalePlanError, Workspace

Kernels = tuple[Callable[..., Any], Callable[..., Any]]
BLAS_BIAS_MIN_SIZE = 65536  # z (N, out) from this many elements gets its bias added by BLAS's ger (below, NumPy's add is faster)


@dataclass(frozen=True)
class FastOp:
    """How the plan runs one layer type.

    bind : ``(layer, ws) -> (forward, backward)`` or None (the plain pair), or None itself.
    overwrites_input : the op may write its output over its input (an elementwise op whose
        cache does not hold its input).
    caches_output : the layer's cache holds its own output (so the next layer must not
        overwrite it).
    """

    bind: Callable[[Any, Workspace], Kernels | None] | None = None
    overwrites_input: bool = False
    caches_output: bool = False


def fast_op(layer: Any) -> FastOp | None:
    """How the plan runs ``layer``: its type's entry in :data:`KERNELS`; for any other
    elementwise activation (a registered one, a subclass) its plain pair, with its output
    left alone; None where a network holding it runs the plain path."""
    op = KERNELS.get(type(layer))
    if op is None and isinstance(layer, Activation):
        return PLAIN_ACTIVATION
    return op


def kernels_for(layer: Any, ws: Workspace) -> Kernels:
    """``(forward, backward)`` for ``layer`` bound to ``ws``: its fast kernels where it has
    them, else its plain pair. Raises :class:`NotFastError` where the layer cannot run in a plan."""
    op = fast_op(layer)
    if op is None:
        raise NotFastError
    kernels = op.bind(layer, ws) if op.bind is not None else None
    if kernels is not None:
        return kernels
    return layer.forward, lambda dJ_dy, need_input_grad=True: layer.backward(dJ_dy)


# ---------------------------------------------------------------------- Linear
def _blas_bias_add(ws: Workspace, b: np.ndarray | None) -> Callable[[np.ndarray], None] | None:
    """``bias_add(z)``: z += 1 bᵀ for a Linear's output z (N, out) as BLAS's rank-1 update,
    the same sums z_ij + b_j as NumPy's broadcast add in a third of the time -- for outputs of
    BLAS_BIAS_MIN_SIZE elements or more (below that the add is faster); None where the add
    runs (smaller outputs, no bias, no BLAS routine). Needs ``ws.ones`` (N ones)."""
    ger = blas_ger(ws.dtype)
    n, width = ws.shape_out
    if ger is None or b is None or n * width < BLAS_BIAS_MIN_SIZE:
        return None
    ones_ptr, b_ptr = ws.ones.ctypes.data, b.ctypes.data
    z_ptr = None if ws.fresh else ws.out.ctypes.data  # a fresh output's address changes every pass

    def bias_add(z: np.ndarray) -> None:
        ger(ROW_MAJOR, n, width, 1.0, ones_ptr, 1, b_ptr, 1, z_ptr or z.ctypes.data, width)

    return bias_add


def _linear(layer: Linear, ws: Workspace) -> Kernels:
    """z = x Wᵀ + b into a reused buffer; dJ/dW = (dJ/dz)ᵀ x and dJ/db = 1ᵀ dJ/dz (a matrix
    product, faster than a sum over rows), written straight into the gradients when they were
    just zeroed, else added; dJ/dx = dJ/dz W, skipped when no one needs it."""
    store = layer.packed()
    if store is None or store.theta.dtype != ws.dtype:
        raise NotFastError  # the plan's update works on packed parameters only
    W, dW, b, db = layer.params["W"], layer.grads["dJ_dW"], layer.params.get("b"), layer.grads.get("dJ_db")
    if not ws.fresh:
        ws.out = np.empty(ws.shape_out, ws.dtype)  # z
    if not ws.first:
        ws.dx = np.empty(ws.shape_in, ws.dtype)  # dJ/dx
    ws.ones = np.ones(ws.shape_in[0], ws.dtype)  # 1 for dJ/db = 1ᵀ dJ/dz
    ws.bias_add = _blas_bias_add(ws, b)
    W_T, dW_T = W.T, dW.T  # rows of the folded storage M = [Wᵀ; bᵀ] (handgrad.storage): C-contiguous
    fresh, first, shape_in, shape_out, dtype = ws.fresh, ws.first, ws.shape_in, ws.shape_out, ws.dtype
    z_buf, dx_buf, ones, bias_add = ws.out, ws.dx, ws.ones, ws.bias_add

    def forward(x: np.ndarray) -> np.ndarray:
        params = layer.params
        if params["W"] is not W or params.get("b") is not b:
            raise StalePlanError
        z = np.empty(shape_out, dtype) if fresh else z_buf
        dot(x, W_T, z)
        if b is not None:
            if bias_add is None:
                np.add(z, b, out=z)
            else:
                bias_add(z)
        layer.cache = (x, W)
        return z

    def backward(dJ_dz: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        if layer.cache is None:
            return layer.backward(dJ_dz)  # which raises: backward before forward
        x, W_cached = layer.cache
        grads = layer.grads
        if grads["dJ_dW"] is not dW or grads.get("dJ_db") is not db or W_cached is not W or dJ_dz.dtype is not dtype:
            return layer.backward(dJ_dz, need_input_grad)  # arrays were swapped: the plain pair
        if layer.grads_zero:
            dot(x.T, dJ_dz, dW_T)  # dJ/dWᵀ = xᵀ dJ/dz, into the folded storage's rows
            if db is not None:
                dot(ones, dJ_dz, db)
        else:
            np.add(dW, dot(dJ_dz.T, x, ws.buffer("dJ_dW", dW.shape)), out=dW)
            if db is not None:
                np.add(db, dot(ones, dJ_dz, ws.buffer("dJ_db", db.shape)), out=db)
        layer.grads_zero = layer.zero_pending = False
        if not need_input_grad:
            return None
        return dot(dJ_dz, W, np.empty(shape_in, dtype) if first else dx_buf)

    return forward, backward


# ---------------------------------------------------------------------- Identity
def _identity(layer: Identity, ws: Workspace) -> Kernels:
    """y = x: hand x on when it is private to the network, else copy it."""
    ws.prepare_output()
    hand_on = ws.inplace and not ws.fresh
    fresh, first, shape_out, dtype, out_buf = ws.fresh, ws.first, ws.shape_out, ws.dtype, ws.out

    def forward(x: np.ndarray) -> np.ndarray:
        if layer.scale != 1.0:
            return layer.forward(x)
        layer.cache = True
        if hand_on:
            return x
        out = np.empty(shape_out, dtype) if fresh else out_buf
        copyto(out, x)
        return out

    def backward(dJ_dy: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        if layer.scale != 1.0:
            return layer.backward(dJ_dy)
        return dJ_dy.copy() if first else dJ_dy

    return forward, backward


# ---------------------------------------------------------------------- ReLU
def _relu(layer: ReLU, ws: Workspace) -> Kernels:
    """y = c·max(0, x) (NaN propagates, -inf gives 0); the float slope 1[x > 0], taken first,
    is the cache, as on the plain path, and the backward's slope (times c)."""
    ws.prepare_output()
    ws.mask = np.empty(ws.shape_in, ws.dtype)  # 1[x > 0]
    # the comparison into booleans, then a copy into the float mask: two calls that cost less than one
    # comparison writing floats (its output cast; 0.96 against 1.18 µs on 10 x 100, 2.0 against 2.3 on 64 x 128)
    ws.above = np.empty(ws.shape_in, bool)
    ws.zeros = np.zeros(ws.shape_in, ws.dtype)  # max(x, 0) against an array is faster than against a scalar
    scale_value = layer.scale
    if scale_value != 1.0:
        ws.scale = np.array(scale_value, ws.dtype)
        ws.slope = np.empty(ws.shape_in, ws.dtype)  # c·1[x > 0]
    c, zero, zeros, mask, slope, above = ws.scale, ws.zero, ws.zeros, ws.mask, ws.slope, ws.above
    fresh, inplace, first, shape, dtype, out_buf = ws.fresh, ws.inplace, ws.first, ws.shape_out, ws.dtype, ws.out
    backward_slope = mask if c is None else slope

    def forward(x: np.ndarray) -> np.ndarray:
        if layer.scale != scale_value:
            raise StalePlanError
        np.greater(x, zero, out=above)
        copyto(mask, above)  # 1[x > 0] (NaN: 0)
        layer.cache = mask
        y = np.maximum(x, zeros, out=np.empty(shape, dtype) if fresh else (x if inplace else out_buf))
        if c is None:
            return y
        np.multiply(mask, c, out=slope)
        return np.multiply(y, c, out=y)

    def backward(dJ_dy: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        """dJ/dx = dJ/dy ⊙ c·1[x > 0], in place over dJ/dy."""
        return np.multiply(dJ_dy, backward_slope, out=np.empty(shape, dtype) if first else dJ_dy)

    return forward, backward


# ---------------------------------------------------------------------- LeakyReLU
def _leaky_relu(layer: LeakyReLU, ws: Workspace) -> Kernels | None:
    """y = c·x·s with the slope s = 1 where x > 0, else α (the plain path's x or α·x, and its
    cache); dJ/dx = (c·dJ/dy) ⊙ s in place over dJ/dy. s = max(1[x > 0], α) holds for α ≤ 1
    only: beyond, the plain pair."""
    alpha, scale_value = layer.negative_slope, layer.scale
    if alpha > 1.0:
        return None
    ws.prepare_output()
    ws.mask = np.empty(ws.shape_in, ws.dtype)  # 1[x > 0]
    ws.slope = np.empty(ws.shape_in, ws.dtype)  # 1 or α
    ws.zeros = np.full(ws.shape_in, alpha, ws.dtype)  # α everywhere (an array: see ReLU)
    if scale_value != 1.0:
        ws.scale = np.array(scale_value, ws.dtype)
    c, zero, alphas, mask, slope = ws.scale, ws.zero, ws.zeros, ws.mask, ws.slope
    fresh, inplace, first, shape, dtype, out_buf = ws.fresh, ws.inplace, ws.first, ws.shape_out, ws.dtype, ws.out

    def forward(x: np.ndarray) -> np.ndarray:
        if layer.scale != scale_value or layer.negative_slope != alpha:
            raise StalePlanError
        np.greater(x, zero, out=mask)
        layer.cache = np.maximum(mask, alphas, out=slope)
        y = np.multiply(x, slope, out=np.empty(shape, dtype) if fresh else (x if inplace else out_buf))
        return y if c is None else np.multiply(y, c, out=y)

    def backward(dJ_dy: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        g = np.multiply(dJ_dy, c, out=np.empty(shape, dtype) if first else dJ_dy) if c is not None else dJ_dy
        return np.multiply(g, slope, out=np.empty(shape, dtype) if first and c is None else g)

    return forward, backward


# ---------------------------------------------------------------------- Tanh
def _tanh(layer: Tanh, ws: Workspace) -> Kernels:
    """y = tanh(x) (the cache, as on the plain path); dJ/dx = dJ/dy ⊙ (1 - y²) in place."""
    ws.prepare_output()
    ws.slope = np.empty(ws.shape_in, ws.dtype)  # 1 - y²
    slope = ws.slope

    def forward(x: np.ndarray) -> np.ndarray:
        if layer.scale != 1.0:
            return layer.forward(x)
        y = layer.cache = np.tanh(x, out=ws.output(x))
        return y

    def backward(dJ_dy: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        if layer.scale != 1.0:
            return layer.backward(dJ_dy)
        y = layer.cache if layer.cache is not None else layer.backward(dJ_dy)  # no cache: the plain backward raises
        np.square(y, out=slope)
        np.subtract(1, slope, out=slope)
        return np.multiply(dJ_dy, slope, out=ws.input_grad(dJ_dy))

    return forward, backward


# ---------------------------------------------------------------------- Sigmoid
def _sigmoid(layer: Sigmoid, ws: Workspace) -> Kernels:
    """y = σ(x) by :func:`handgrad.functional.sigmoid` into reused buffers (the cache, as on
    the plain path); dJ/dx = dJ/dy ⊙ y(1 - y) in place over dJ/dy."""
    ws.prepare_output()
    ws.slope = np.empty(ws.shape_in, ws.dtype)  # 1 + e^{-|x|} in the forward, y(1 - y) in the backward
    ws.mask = np.empty(ws.shape_in, bool)  # x ≥ 0
    work, slope = (ws.slope, ws.mask), ws.slope

    def forward(x: np.ndarray) -> np.ndarray:
        if layer.scale != 1.0:
            return layer.forward(x)
        y = layer.cache = F.sigmoid(x, ws.output(x), work)
        return y

    def backward(dJ_dy: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        if layer.scale != 1.0:
            return layer.backward(dJ_dy)
        y = layer.cache if layer.cache is not None else layer.backward(dJ_dy)  # no cache: the plain backward raises
        np.multiply(y, np.subtract(1.0, y, out=slope), out=slope)
        return np.multiply(dJ_dy, slope, out=ws.input_grad(dJ_dy))

    return forward, backward


# ---------------------------------------------------------------------- Softmax
def _softmax(layer: Softmax, ws: Workspace) -> Kernels:
    """y = e / Σ_j e_j with e = exp(x - max_j x_j): the plain path's operations, into buffers
    (x itself is left as it is: a fused cross-entropy reads it). The backward is the plain
    one (a fused cross-entropy bypasses it)."""
    ws.prepare_output()
    n = ws.shape_in[0]
    row_max, row_sum = ws.buffer("row_max", (n, 1)), ws.buffer("row_sum", (n, 1))
    fresh, shape, dtype, out_buf = ws.fresh, ws.shape_out, ws.dtype, ws.out

    def forward(x: np.ndarray) -> np.ndarray:
        if layer.beta != 1.0:
            return layer.forward(x)
        np.maximum.reduce(x, axis=1, keepdims=True, out=row_max)
        if not math.isfinite(np.add.reduce(row_max, axis=None)):
            return layer.forward(x)  # a row with inf or NaN: the plain path's rule for it
        y = np.subtract(x, row_max, out=np.empty(shape, dtype) if fresh else out_buf)
        np.exp(y, out=y)
        np.divide(y, np.add.reduce(y, axis=1, keepdims=True, out=row_sum), out=y)
        layer.cache = y
        return y

    def backward(dJ_dy: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        return layer.backward(dJ_dy)

    return forward, backward


KERNELS: dict[type, FastOp] = {
    Linear: FastOp(_linear),
    Identity: FastOp(_identity, overwrites_input=True),
    ReLU: FastOp(_relu, overwrites_input=True),
    LeakyReLU: FastOp(_leaky_relu, overwrites_input=True),
    Tanh: FastOp(_tanh, overwrites_input=True, caches_output=True),
    Sigmoid: FastOp(_sigmoid, caches_output=True),
    Softmax: FastOp(_softmax, caches_output=True),
    # the plain pair inside a plan
    Scale: FastOp(),
    Softplus: FastOp(),
    GELU: FastOp(),
    LogSoftmax: FastOp(caches_output=True),
}
PLAIN_ACTIVATION = FastOp(caches_output=True)
