"""A whole training step bound as one closure, for the plain two-layer MLP on NumPy.

On a small network a step is mostly the Python around its fifteen NumPy calls: the plan's
per-layer closures, each checking that its arrays are still the ones it was bound to, the
network's dispatch between them, and the update's checks. For the commonest network --
Linear, ReLU (any scale c) or tanh, Linear, identity output, mean squared error, float32
with NumPy's own BLAS -- :func:`bind_mlp_step` binds forward, loss gradient, backward and
SGD update (optional: an optimizer may run it instead) into one function over the plan's own buffers, with one check of the
parameters' arrays per step. It runs exactly the calls of the per-layer kernels
(:mod:`handgrad.fast.kernels`), in the same order, on the same buffers, so the numbers are
bit for bit those of ``forward`` + ``backward_loss(zero_grad=True)`` + ``sgd_step``
(tests/test_fast_path.py); each layer's cache and gradients are left as those calls leave
them. Any other network, loss or state returns None and the network takes the usual path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..layers import Identity, Linear, ReLU, Tanh
from . import blas
from .blas import dot, vdot


def bind_mlp_step(plan: Any) -> Callable[[np.ndarray, np.ndarray, float | None], Any] | None:
    """``step(x, y, lr) -> (J, ŷ)`` (with ``lr`` None: no update, for an optimizer or a
    ``before_update`` hook to run after) for ``plan`` (a :class:`~handgrad.fast.plan.Plan`), or None
    where the plan is not of the one shape this covers. ``step`` returns None, having done
    nothing, when a parameter or gradient array was replaced or an activation's setting
    changed since binding (the caller then takes the usual path, which rebuilds the plan);
    x and y must be of the plan's input and output shape and dtype (the caller checks)."""
    layers = plan.layers
    if len(layers) != 4 or plan.axpy is None or len(plan.update_calls) != 1:
        return None
    lin1, act, lin2, out = layers
    if not (type(lin1) is Linear and type(lin2) is Linear and type(act) in (ReLU, Tanh)
            and type(out) is Identity and out.scale == 1.0):
        return None
    ws1, wsa, ws2 = plan.workspaces[0], plan.workspaces[1], plan.workspaces[2]
    if ws1.bias_add is not None or ws2.bias_add is not None or not wsa.inplace or ws1.fresh or not ws2.fresh:
        return None  # the bias added by BLAS, or buffers arranged otherwise: the per-layer kernels
    p1, g1, p2, g2 = lin1.params, lin1.grads, lin2.params, lin2.grads
    if set(p1) != {"W", "b"} or set(p2) != {"W", "b"}:
        return None
    W1, b1, dW1, db1 = p1["W"], p1["b"], g1["dJ_dW"], g1["dJ_db"]
    W2, b2, dW2, db2 = p2["W"], p2["b"], g2["dJ_dW"], g2["dJ_db"]
    relu = type(act) is ReLU
    scale_value = act.scale
    if not relu and scale_value != 1.0:
        return None  # a scaled tanh runs its plain pair
    W1_T, W2_T = W1.T, W2.T
    z1, ones1 = ws1.out, ws1.ones           # z1 (N, h); a1 = f(z1) over it
    dx2, ones2 = ws2.dx, ws2.ones           # dJ/da1, then dJ/dz1 over it
    zero, zeros, mask, c, slope = wsa.zero, wsa.zeros, wsa.mask, wsa.scale, wsa.slope
    g = plan.dJ_dout                        # dJ/dŷ
    g_T, d_T = g.T, dx2.T                   # the views the weight gradients' products read, made once
    two_over_numel = plan.two_over_numel
    shape_out, dtype = plan.shapes[-1], plan.dtype
    numel = int(np.prod(shape_out))
    axpy = plan.axpy
    (size, theta_ptr, grad_ptr), = plan.update_calls
    np_add, np_greater, np_maximum, np_multiply, np_subtract = np.add, np.greater, np.maximum, np.multiply, np.subtract
    np_empty, np_tanh, np_square = np.empty, np.tanh, np.square

    def step(x: np.ndarray, y: np.ndarray, lr: float | None) -> Any:
        if (p1["W"] is not W1 or p1["b"] is not b1 or p2["W"] is not W2 or p2["b"] is not b2
                or g1["dJ_dW"] is not dW1 or g1["dJ_db"] is not db1 or g2["dJ_dW"] is not dW2
                or g2["dJ_db"] is not db2 or act.scale != scale_value or out.scale != 1.0
                or (lr is not None and not blas.USE_BLAS)):
            return None
        # forward: z1 = x W1ᵀ + b1; a1 = f(z1) in place; ŷ = a1 W2ᵀ + b2 (fresh: it is handed out)
        dot(x, W1_T, z1)
        np_add(z1, b1, out=z1)
        if relu:
            np_greater(z1, zero, out=mask)
            a1 = np_maximum(z1, zeros, out=z1)
            if c is not None:
                np_multiply(mask, c, out=slope)
                np_multiply(a1, c, out=a1)
            act.cache = mask
        else:
            a1 = act.cache = np_tanh(z1, out=z1)
        lin1.cache = (x, W1)
        y_hat = dot(a1, W2_T, np_empty(shape_out, dtype))
        np_add(y_hat, b2, out=y_hat)
        lin2.cache = (a1, W2)
        out.cache = True
        # loss: r = ŷ - y; J = r·r/(N·K); dJ/dŷ = 2r/(N·K), in place of r
        np_subtract(y_hat, y, g)
        J = vdot(g, g) / numel
        np_multiply(g, two_over_numel, g)
        # backward, the gradients written (this step's alone, as after zero_grad)
        dot(g_T, a1, dW2)
        dot(ones2, g, db2)
        d = dot(g, W2, dx2)                             # dJ/da1
        if relu:
            np_multiply(d, mask if c is None else slope, out=d)  # dJ/dz1 = dJ/da1 ⊙ c·1[z1 > 0]
        else:
            np_square(a1, out=slope)
            np_subtract(1, slope, out=slope)
            np_multiply(d, slope, out=d)                # dJ/dz1 = dJ/da1 ⊙ (1 - a1²)
        dot(d_T, x, dW1)
        dot(ones1, d, db1)
        lin1.grads_zero = lin1.zero_pending = lin2.grads_zero = lin2.zero_pending = False
        if lr is not None:  # update: θ += (-lr)·dJ/dθ over both layers' packed parameters, one BLAS call
            axpy(size, -lr, grad_ptr, 1, theta_ptr, 1)
        return J, y_hat

    def loss_backward(y: np.ndarray, y_hat: np.ndarray) -> Any:
        """MSE and the backward after a forward pass of the plan (``backward_loss`` after
        ``zero_grad``), the gradients written: J, or None, having done nothing, where the
        per-layer kernels must run (gradients to add to, a cache cleared, arrays replaced)."""
        c1, c2, ca = lin1.cache, lin2.cache, act.cache
        if (c1 is None or c2 is None or ca is None or not lin1.grads_zero or not lin2.grads_zero
                or c1[1] is not W1 or c2[1] is not W2 or g1["dJ_dW"] is not dW1 or g1["dJ_db"] is not db1
                or g2["dJ_dW"] is not dW2 or g2["dJ_db"] is not db2):
            return None
        x, a1 = c1[0], c2[0]
        np_subtract(y_hat, y, g)
        J = vdot(g, g) / numel
        np_multiply(g, two_over_numel, g)
        dot(g_T, a1, dW2)
        dot(ones2, g, db2)
        d = dot(g, W2, dx2)
        if relu:
            np_multiply(d, mask if c is None else slope, out=d)
        else:
            np_square(ca, out=slope)
            np_subtract(1, slope, out=slope)
            np_multiply(d, slope, out=d)
        dot(d.T, x, dW1)
        dot(ones1, d, db1)
        lin1.grads_zero = lin1.zero_pending = lin2.grads_zero = lin2.zero_pending = False
        return J

    step.loss_backward = loss_backward  # type: ignore[attr-defined]
    return step
