"""A whole training step bound as one closure, for the plain two-layer MLP on NumPy.

On a small network a step is mostly the Python around its NumPy calls: the plan's
per-layer closures, each checking that its arrays are still the ones it was bound to, the
network's dispatch between them, and the update's checks. For the commonest networks --
Linear, ReLU (any scale c) or tanh, Linear, then identity + mean squared error, sigmoid +
binary cross-entropy or softmax + cross-entropy (both fused), on NumPy arrays -- :func:`bind_mlp_step` binds
forward, loss gradient, backward and SGD update (optional: an optimizer may run it
instead) into one function over the plan's own buffers, with one check per step that no
layer's parameter or gradient array was replaced (one count, :class:`~handgrad.storage.ArrayDict`;
the eight arrays are looked up only after it moved).

It works on the folded storage of each Linear (:mod:`handgrad.storage`): M = [Wᵀ; bᵀ],
with the layer's input kept as [x 1] (a buffer whose last column is ones), so that

    z1 = [x 1] M1,   ŷ = [a1 1] M2,   dJ/dM2 = [a1 1]ᵀ dJ/dŷ,   dJ/dM1 = [x 1]ᵀ dJ/dz1

and a float32 step is five matrix products (dJ/dx is not needed) and a few elementwise
calls -- no bias adds, no separate 1ᵀ dJ/dz products. (Where x is large -- 64 rows of 784
pixels -- copying it into [x 1] costs more than the bias add it saves, and layer 1 keeps
z1 = x W1ᵀ + b1 with dJ/db1 = 1ᵀ dJ/dz1; where a1 is large -- 256 x 1024 -- the
activation's passes over a1 inside [a1 1], a strided view, cost more than layer 2's bias
add, and layer 2 keeps ŷ = a1 W2ᵀ + b2.) The bias enters each product as one more
term of its sums, so J, ŷ and the gradients agree with the per-layer kernels (which add
b after the product) to rounding, not bit for bit (tests/test_fast_path.py holds them to
a few units in the last place). float64 -- the dtype of gradient checks, of the
scikit-learn estimators and of a student reproducing ``fit`` by hand -- keeps the per-layer
kernels' arithmetic (bias added after each product) and their ufunc update, so there the
closure is the five calls bit for bit and saves only their dispatch. Each layer's cache and gradients are left as the
per-layer calls leave them, so a backward or an optimizer step may follow. Any other
network, loss or state returns None and the network takes the usual path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import functional as F
from ..layers import Identity, Linear, ReLU, Sigmoid, Softmax, Tanh
from ..losses import BCELoss, CrossEntropyLoss, MSELoss, SquaredErrorLoss
from ..storage import ARRAYS_REPLACED, ArrayDict, flat_base
from . import blas
from . import losses as fl
from .blas import dot
from .kernels import BLAS_BIAS_MIN_SIZE
from .update import sgd_update

FOLD_COPY_MAX = 16384  #: elements of x up to which layer 1 takes [x 1] (a copy this small costs less than a call)


def _bound_arrays(linears: Any) -> tuple[list[int], list[int], Callable[[], bool]]:
    """(the count of params/grads changes, the count a closure last checked, ``still_bound()``):
    whether each Linear still holds the W, b, dJ/dW and dJ/db it holds now. A closure compares
    the two counts every step and calls ``still_bound`` only after some layer's dict changed
    (storage.ArrayDict): one comparison per step, not a lookup per array."""
    bound = [(lin, attribute, key, getattr(lin, attribute)[key]) for lin in linears
             for attribute, key in (("params", "W"), ("params", "b"), ("grads", "dJ_dW"), ("grads", "dJ_db"))]
    replaced, seen = ARRAYS_REPLACED, [-1]

    def still_bound() -> bool:  # the layer's dicts as they are now: setting one whole counts too
        if any(getattr(lin, attribute).get(key) is not array for lin, attribute, key, array in bound):
            return False
        seen[0] = replaced[0]
        return True

    return replaced, seen, still_bound


def _bind_output_loss(plan: Any, out: Any, z: np.ndarray, y_hat: np.ndarray) -> Callable[[Any, Any], Any]:
    """``loss_step(y, loss) -> (J, ŷ) | None`` for a closure: the output layer and the loss on the
    top Linear's output z, the loss gradient written into ``plan.dJ_dout`` -- sigmoid + BCE and
    softmax + cross-entropy fused (dJ/dz = (p - y)/n), identity + MSE or squared error
    (dJ/dŷ = 2(ŷ - y)/n, ŷ being z itself). None where the usual path must name the targets or
    J is not finite (cross-entropy; it reruns the pass). ŷ is ``y_hat`` (p for BCE), or a fresh
    p for softmax."""
    bce, ce = type(out) is Sigmoid, type(out) is Softmax
    g, shape_out, dtype = plan.dJ_dout, plan.shapes[-1], plan.dtype
    work = (plan.workspaces[-1].slope, plan.workspaces[-1].mask) if bce else None
    scratch = np.empty(shape_out, dtype)
    softmax, cross_entropy = plan.forwards[-1], plan.cross_entropy_gradient  # the plan's own kernels
    two_over_numel, numel, N = plan.two_over_numel, y_hat.size, shape_out[0]
    sigmoid, bce_into, residual_square_into = F.sigmoid, fl.bce_with_logits_into, fl.residual_square_into

    if bce:
        def loss_step(y: Any, loss: Any) -> Any:  # p = σ(z); J = mean(max(z, 0) + log1p(e^-|z|) - z·y)
            sigmoid(z, y_hat, work)
            J = bce_into(y, z, y_hat, g, scratch)
            out._cache = None  # the output layer is bypassed by the fused gradient
            return J, y_hat
    elif ce:
        def loss_step(y: Any, loss: Any) -> Any:  # p = softmax(z), fresh; J = mean(log Σ e^z - z_y)
            p = softmax(z)
            J = cross_entropy(y, z, p)
            return None if J is None else (J, p)
    else:
        def loss_step(y: Any, loss: Any) -> Any:  # J = r·r/n with r = ŷ - y: MSE n = N·K, squared error N or 1
            J = (residual_square_into(y, y_hat, g, N if loss.reduction == "mean" else 1)
                 if type(loss) is SquaredErrorLoss else residual_square_into(y, y_hat, g, numel, two_over_numel))
            out._cache = True
            return J, y_hat
    return loss_step


def bind_mlp_step(plan: Any) -> Callable[[np.ndarray, np.ndarray, float | None], Any] | None:
    """``step(x, y, lr, loss) -> (J, ŷ)`` (with ``lr`` None: no update, for an optimizer or a
    ``before_update`` hook to run after) for ``plan`` (a :class:`~handgrad.fast.plan.Plan`), or None
    where the plan is not of a shape this covers. ``step`` returns None, having done
    nothing, when x or y is not a NumPy array of the plan's input / output shape and dtype,
    BCE targets leave [0, 1], lr is not a finite positive float (softmax + cross-entropy:
    also after its forward pass, for targets the usual path must name or a J that is not
    finite; it reruns the pass), a parameter or gradient
    array was replaced or an activation's setting changed since binding (the caller then
    takes the usual path, which checks, raises or rebuilds the plan). ŷ is a buffer of the
    step, overwritten by the next. ``step.loss_types`` are the losses it runs (MSE and
    squared error after an identity output, BCE after a sigmoid, cross-entropy after a
    softmax); ``loss`` is the instance (squared error's reduction). ``finite_below`` (with ``lr``):
    a divergence check before the update -- J finite and the sum of squares of the gradient
    (one dot over the flat array both layers' gradients tile) below it -- that, when it does
    not hold, returns None with nothing updated (the caller redoes the step with its own check)."""
    layers = plan.layers
    if len(layers) != 4 or (plan.axpy is not None and len(plan.update_calls) != 1):
        return None
    lin1, act, lin2, out = layers
    if not (type(lin1) is Linear and type(lin2) is Linear and type(act) in (ReLU, Tanh)
            and type(out) in (Identity, Sigmoid, Softmax) and getattr(out, "scale", 1.0) == 1.0
            and getattr(out, "beta", 1.0) == 1.0):
        return None
    bce = type(out) is Sigmoid               # sigmoid + BCE, fused: dJ/dz2 = (p - y)/(N·K)
    ce = type(out) is Softmax                # softmax + cross-entropy, fused: dJ/dz2 = (p - y)/N
    mse = not (bce or ce)                    # identity + MSE: dJ/dŷ = 2(ŷ - y)/(N·K)
    ws1, wsa, ws2, wso = plan.workspaces
    if not wsa.inplace or ws1.fresh or ws2.fresh != mse:
        return None  # buffers arranged otherwise: the per-layer kernels
    p1, g1, p2, g2 = lin1.params, lin1.grads, lin2.params, lin2.grads
    s1, s2 = lin1.packed(), lin2.packed()
    if any(type(d) is not ArrayDict for d in (p1, g1, p2, g2)):
        return None  # dicts that do not count their changes: the per-layer kernels check each call
    if set(p1) != {"W", "b"} or set(p2) != {"W", "b"} or s1 is None or s2 is None or s1.folded is None or s2.folded is None:
        return None
    W1, b1, dW1, db1 = p1["W"], p1["b"], g1["dJ_dW"], g1["dJ_db"]
    W2, b2, dW2, db2 = p2["W"], p2["b"], g2["dJ_dW"], g2["dJ_db"]
    (M1, dM1), (M2, dM2) = s1.folded, s2.folded   # [W1ᵀ; b1ᵀ], [W2ᵀ; b2ᵀ] and their gradients
    relu = type(act) is ReLU
    scale_value = act.scale
    if not relu and scale_value != 1.0:
        return None  # a scaled tanh runs its plain pair
    x_shape, shape_out, dtype = plan.x_shape, plan.shapes[-1], plan.dtype
    (N, n_in), n_hidden = x_shape, W1.shape[0]
    # [x 1] costs a copy of x; it pays where x is small: the bias add on z1 and the 1ᵀ dJ/dz1
    # product it saves cost more (C3's 64 x 784 x is too large to copy). Else layer 1 adds b1.
    # float64 (no BLAS axpy: the dtype of gradient checks and of the scikit-learn estimators)
    # keeps the per-layer kernels' arithmetic, bias added after each product, so that a step
    # is bit for bit the five calls written out; float32 folds the bias into the products.
    fold = plan.axpy is not None
    fold_x = fold and N * n_in <= FOLD_COPY_MAX
    # a1 inside [a1 1] is a strided view: the activation's elementwise passes over it cost more
    # than the bias add and the 1ᵀ dJ/dz2 product it saves once it is large (C4: 256 x 1024)
    fold = fold and N * n_hidden < BLAS_BIAS_MIN_SIZE
    xa = np.ones((N, n_in + 1 if fold_x else 1), dtype)  # [x 1] (unused where layer 1 adds b1)
    a1a = np.ones((N, n_hidden + 1 if fold else 1), dtype)  # [a1 1] (unused where layer 2 adds b2)
    z1 = ws1.out                             # z1 (N, h)
    x_in, a1 = xa[:, :n_in], (a1a[:, :n_hidden] if fold else z1)  # unfolded: a1 = f(z1) over z1, as the kernels do
    xa_T, a1a_T = xa.T, a1a.T                # the views the gradients' products read, made once
    W1_T, W2_T, dW1_T, dW2_T = W1.T, W2.T, dW1.T, dW2.T  # rows of the folded storage: C-contiguous
    bias_add, bias_add2 = ws1.bias_add, ws2.bias_add  # z += 1 bᵀ by BLAS for large outputs, as the kernels add it
    dx2 = ws2.dx                             # dJ/da1, then dJ/dz1 over it
    y_hat = np.empty(shape_out, dtype)       # ŷ (p for BCE; softmax hands out a fresh p)
    z2 = y_hat if mse else ws2.out           # the logits
    loss_step = _bind_output_loss(plan, out, z2, y_hat)  # the output layer and the loss, J and dJ/dz2 into g
    zero, zeros, mask, c, slope = wsa.zero, wsa.zeros, wsa.mask, wsa.scale, wsa.slope  # slope: c·1[z1 > 0] or 1 - a1²
    above = wsa.above  # ReLU: 1[z1 > 0] as booleans
    g = plan.dJ_dout                        # dJ/dŷ (MSE) or dJ/dz2 (BCE)
    ones1, ones2 = ws1.ones, ws2.ones
    two_over_numel = plan.two_over_numel
    axpy = plan.axpy  # float32 with NumPy's BLAS: one axpy over both layers; else the ufunc update per layer
    update = plan.sgd_updates[0] if axpy is not None else None  # θ += α·dJ/dθ (blas.bound_axpy)
    stores = (s1, s2)
    cache2, out_scales = (a1, W2), hasattr(out, "scale")  # layer 2's cache: the same two arrays every step
    grad_flat: Any = flat_base([s1.grad, s2.grad])  # the one flat array they tile, for the check before the update
    vdot = blas.vdot
    scratch_update: dict = {}
    ndarray, inf = np.ndarray, float("inf")
    np_add, np_copyto, np_greater, np_maximum, np_multiply, np_subtract = (
        np.add, blas.copyto, np.greater, np.maximum, np.multiply, np.subtract)
    np_tanh, np_square, np_min, np_max = np.tanh, np.square, np.minimum.reduce, np.maximum.reduce
    residual_square_into, numel = fl.residual_square_into, y_hat.size  # loss_backward's MSE

    replaced, seen, still_bound = _bound_arrays((lin1, lin2))

    def step(x: np.ndarray, y: np.ndarray, lr: float | None, loss: Any = None,
             finite_below: float | None = None) -> Any:
        if (type(x) is not ndarray or type(y) is not ndarray or x.shape != x_shape or x.dtype is not dtype
                or ((y.shape != shape_out or y.dtype is not dtype) and not ce)  # CE: labels, checked below
                or (replaced[0] != seen[0] and not still_bound())
                or act.scale != scale_value or (out_scales and out.scale != 1.0)
                or (ce and out.beta != 1.0)
                or (lr is not None and (type(lr) is not float or not 0.0 < lr < inf
                                        or (axpy is not None and not blas.USE_BLAS)))
                or (bce and not (np_min(y, None) >= 0.0 and np_max(y, None) <= 1.0))
                or (finite_below is not None and grad_flat is None)):
            return None
        # forward: z1 = [x 1] M1 (or x W1ᵀ + b1); a1 = f(z1) into [a1 1]; z2 = [a1 1] M2
        if fold_x:
            np_copyto(x_in, x)
            dot(xa, M1, z1)
        else:
            dot(x, W1_T, z1)
            if bias_add is None:
                np_add(z1, b1, out=z1)
            else:  # z1 += 1 b1ᵀ by BLAS, as the per-layer kernel adds it
                bias_add(z1)
        if relu:
            np_greater(z1, zero, out=above)
            np_copyto(mask, above)  # 1[z1 > 0] as the kernel computes it: booleans, then floats
            np_maximum(z1, zeros, out=a1)
            if c is not None:
                np_multiply(mask, c, out=slope)
                np_multiply(a1, c, out=a1)
            act._cache = mask
        else:
            act._cache = np_tanh(z1, out=a1)
        # each layer's cache as its forward leaves it, written directly (the property's setter, which also
        # forgets the output shape a forward recorded, costs a Python call each: 5% of a small step)
        lin1._cache = (x, W1)
        if (lin1.output_shape_ is not None or act.output_shape_ is not None or lin2.output_shape_ is not None
                or out.output_shape_ is not None):  # a forward ran since the last step: forget its shapes
            lin1.output_shape_ = act.output_shape_ = lin2.output_shape_ = out.output_shape_ = None
        if fold:
            dot(a1a, M2, z2)
        else:
            dot(a1, W2_T, z2)
            if bias_add2 is None:
                np_add(z2, b2, out=z2)
            else:
                bias_add2(z2)
        lin2._cache = cache2
        done = loss_step(y, loss)  # J and dJ/dz2 into g
        if done is None:
            return None  # targets the usual path must name, or J not finite: it reruns the pass
        J, result = done
        # backward, the gradients written (this step's alone, as after zero_grad)
        if fold:
            dot(a1a_T, g, dM2)                           # [dJ/dW2ᵀ; dJ/db2ᵀ] = [a1 1]ᵀ dJ/dz2
        else:
            dot(a1.T, g, dW2_T)                          # dJ/dW2ᵀ = a1ᵀ dJ/dz2
            dot(ones2, g, db2)                           # dJ/db2 = 1ᵀ dJ/dz2
        d = dot(g, W2, dx2)                              # dJ/da1
        if relu:
            np_multiply(d, mask if c is None else slope, out=d)  # dJ/dz1 = dJ/da1 ⊙ c·1[z1 > 0]
        else:
            np_square(a1, out=slope)
            np_subtract(1, slope, out=slope)
            np_multiply(d, slope, out=d)                 # dJ/dz1 = dJ/da1 ⊙ (1 - a1²)
        if fold_x:
            dot(xa_T, d, dM1)                            # [dJ/dW1ᵀ; dJ/db1ᵀ] = [x 1]ᵀ dJ/dz1
        else:
            dot(x.T, d, dW1_T)                           # dJ/dW1ᵀ = xᵀ dJ/dz1
            dot(ones1, d, db1)                           # dJ/db1 = 1ᵀ dJ/dz1
        if lin1.grads_zero or lin2.grads_zero or lin1.zero_pending or lin2.zero_pending:  # reads cost less than writes
            lin1.grads_zero = lin1.zero_pending = lin2.grads_zero = lin2.zero_pending = False
        if lr is not None:  # update: θ += (-lr)·dJ/dθ over both layers' packed parameters, one BLAS call
            if finite_below is not None and not (-inf < J < inf and vdot(grad_flat, grad_flat) < finite_below):
                return None  # perhaps diverging: nothing updated; the usual path redoes the step with its check
            if update is not None:
                update(-lr)
            else:  # θ ← θ - lr·dJ/dθ per layer, as Sequential.sgd_step runs it without BLAS
                for store in stores:
                    sgd_update(store.theta, store.grad, lr, scratch_update)
        return J, result

    def loss_backward(y: np.ndarray, y_hat: np.ndarray) -> Any:
        """MSE and the backward after a forward pass of the plan (``backward_loss`` after
        ``zero_grad``), the gradients written as the per-layer kernels write them: J, or
        None, having done nothing, where the per-layer kernels must run (gradients to add
        to, a cache cleared, arrays replaced)."""
        c1, c2, ca = lin1.cache, lin2.cache, act.cache
        if (not mse or c1 is None or c2 is None or ca is None or not lin1.grads_zero or not lin2.grads_zero
                or c1[1] is not W1 or c2[1] is not W2 or g1["dJ_dW"] is not dW1 or g1["dJ_db"] is not db1
                or g2["dJ_dW"] is not dW2 or g2["dJ_db"] is not db2):
            return None
        x, a = c1[0], c2[0]
        J = residual_square_into(y, y_hat, g, numel, two_over_numel)
        dot(a.T, g, dW2_T)
        dot(ones2, g, db2)
        d = dot(g, W2, dx2)
        if relu:
            np_multiply(d, mask if c is None else slope, out=d)
        else:
            np_square(ca, out=slope)
            np_subtract(1, slope, out=slope)
            np_multiply(d, slope, out=d)
        dot(x.T, d, dW1_T)
        dot(ones1, d, db1)
        lin1.grads_zero = lin1.zero_pending = lin2.grads_zero = lin2.zero_pending = False
        return J

    step.loss_backward = loss_backward  # type: ignore[attr-defined]
    step.loss_types = (BCELoss,) if bce else (CrossEntropyLoss,) if ce else (MSELoss, SquaredErrorLoss)  # type: ignore[attr-defined]
    return step


def bind_deep_step(plan: Any) -> Callable[..., Any] | None:
    """:func:`bind_mlp_step`'s closure for an MLP of two or more hidden layers -- Linear, then
    (ReLU at any scale or tanh, Linear) repeated, then identity + MSE or squared error, sigmoid +
    BCE or softmax + cross-entropy -- with the same signature, checks, caches and results.

    Layer by layer over the plan's own buffers: z = a Wᵀ + b, dJ/dWᵀ = aᵀ δ, dJ/db = 1ᵀ δ, and
    δ W for the layer below. In float32 a layer whose input is small takes it as [a 1] (x
    copied in, a hidden layer's activation written there), as the two-layer closure does:
    z = [a 1] M and dJ/dM = [a 1]ᵀ δ, with no bias add and no 1ᵀ δ product, equal to the
    per-layer calls to rounding. float64 keeps their arithmetic and is them bit for bit
    (tests/test_fast_path.py). None where the plan is of another shape."""
    layers = plan.layers
    if len(layers) < 6 or len(layers) % 2:
        return None
    lins, acts, out = layers[0:-1:2], layers[1:-1:2], layers[-1]
    if not (all(type(lin) is Linear for lin in lins) and all(type(act) in (ReLU, Tanh) for act in acts)
            and type(out) in (Identity, Sigmoid, Softmax) and getattr(out, "scale", 1.0) == 1.0
            and getattr(out, "beta", 1.0) == 1.0):
        return None
    if any(type(act) is Tanh and act.scale != 1.0 for act in acts):
        return None  # a scaled tanh runs its plain pair
    bce, ce = type(out) is Sigmoid, type(out) is Softmax
    mse = not (bce or ce)
    lin_ws, act_ws = plan.workspaces[0:-1:2], plan.workspaces[1:-1:2]
    if not all(ws.inplace for ws in act_ws) or any(ws.fresh for ws in lin_ws[:-1]) or lin_ws[-1].fresh != mse:
        return None  # buffers arranged otherwise: the per-layer kernels
    dicts = [d for lin in lins for d in (lin.params, lin.grads)]
    stores = [lin.packed() for lin in lins]
    if (any(type(d) is not ArrayDict for d in dicts) or any(s is None for s in stores)
            or any(set(lin.params) != {"W", "b"} for lin in lins)):
        return None
    Ws = [lin.params["W"] for lin in lins]
    bs = [lin.params["b"] for lin in lins]
    dWs = [lin.grads["dJ_dW"] for lin in lins]
    dbs = [lin.grads["dJ_db"] for lin in lins]
    W_Ts, dW_Ts = [W.T for W in Ws], [dW.T for dW in dWs]  # rows of the folded storage: C-contiguous
    bias_adds, ones, dxs = [ws.bias_add for ws in lin_ws], [ws.ones for ws in lin_ws], [ws.dx for ws in lin_ws]
    x_shape, shape_out, dtype = plan.x_shape, plan.shapes[-1], plan.dtype
    y_hat = np.empty(shape_out, dtype)       # ŷ (p for BCE; softmax hands out a fresh p)
    zs = [ws.out for ws in lin_ws[:-1]] + [y_hat if mse else lin_ws[-1].out]  # each layer's z; a = f(z) over it
    k = len(acts)
    relus = [type(act) is ReLU for act in acts]
    scales = [act.scale for act in acts]
    masks, aboves, zeroses = [ws.mask for ws in act_ws], [ws.above for ws in act_ws], [ws.zeros for ws in act_ws]
    cs, slopes, zero = [ws.scale for ws in act_ws], [ws.slope for ws in act_ws], act_ws[0].zero
    # float32: Linear j takes its input as [a 1] where that is small (x copied in; a hidden layer's
    # activation written into it from z), else a Wᵀ + b with the bias added after the product
    N = x_shape[0]
    widths = [x_shape[1]] + [W.shape[0] for W in Ws[:-1]]
    fold = plan.axpy is not None and all(s.folded is not None for s in stores)
    folded_in = [fold and (N * widths[j] <= FOLD_COPY_MAX if j == 0 else N * widths[j] < BLAS_BIAS_MIN_SIZE)
                 for j in range(k + 1)]
    ins: list[Any] = [np.ones((N, widths[j] + 1), dtype) if folded_in[j] else None for j in range(k + 1)]  # [a 1]
    ins_T: list[Any] = [a1.T if a1 is not None else None for a1 in ins]
    Ms: list[Any] = [s.folded[0] if s.folded is not None else None for s in stores]   # [Wᵀ; bᵀ]
    dMs: list[Any] = [s.folded[1] if s.folded is not None else None for s in stores]  # its gradient
    x_in = ins[0][:, :widths[0]] if folded_in[0] else None
    a_views = [ins[i + 1][:, :widths[i + 1]] if folded_in[i + 1] else zs[i] for i in range(k)]  # a = f(z): over z, or in [a 1]
    act_caches = [masks[i] if relus[i] else a_views[i] for i in range(k)]  # ReLU: 1[z > 0]; tanh: a = tanh(z)
    backward_slopes = [(masks[i] if cs[i] is None else slopes[i]) if relus[i] else slopes[i] for i in range(k)]
    lin_caches = [None] + [(a_views[i], Ws[i + 1]) for i in range(k)]  # layer i > 0 reads a of the layer below
    g = plan.dJ_dout
    loss_step = _bind_output_loss(plan, out, zs[k], y_hat)  # the output layer and the loss, J and δ into g
    axpy = plan.axpy
    updates = plan.sgd_updates if axpy is not None else []  # θ += α·dJ/dθ (blas.bound_axpy)
    grad_flat: Any = flat_base([s.grad for s in stores])  # the one flat array they tile, for the check before the update
    vdot = blas.vdot
    scratch_update: dict = {}
    ndarray, inf = np.ndarray, float("inf")
    np_add, np_copyto, np_greater, np_maximum, np_multiply, np_subtract = (
        np.add, blas.copyto, np.greater, np.maximum, np.multiply, np.subtract)
    np_tanh, np_square, np_min, np_max = np.tanh, np.square, np.minimum.reduce, np.maximum.reduce
    replaced, seen, still_bound = _bound_arrays(lins)
    out_scales = hasattr(out, "scale")

    def step(x: np.ndarray, y: np.ndarray, lr: float | None, loss: Any = None,
             finite_below: float | None = None) -> Any:
        if (type(x) is not ndarray or type(y) is not ndarray or x.shape != x_shape or x.dtype is not dtype
                or ((y.shape != shape_out or y.dtype is not dtype) and not ce)  # CE: labels, checked below
                or (replaced[0] != seen[0] and not still_bound())
                or any(act.scale != scale for act, scale in zip(acts, scales))
                or (out_scales and out.scale != 1.0) or (ce and out.beta != 1.0)
                or (lr is not None and (type(lr) is not float or not 0.0 < lr < inf
                                        or (axpy is not None and not blas.USE_BLAS)))
                or (bce and not (np_min(y, None) >= 0.0 and np_max(y, None) <= 1.0))
                or (finite_below is not None and grad_flat is None)):
            return None
        # forward, layer by layer as the kernels run it: z = a Wᵀ + b, then a = f(z) over z
        a = x
        if x_in is not None:
            np_copyto(x_in, x)
        for i in range(k + 1):
            z = zs[i]
            if folded_in[i]:
                dot(ins[i], Ms[i], z)                      # z = [a 1] M
            else:
                dot(a, W_Ts[i], z)                         # z = a Wᵀ + b
                if bias_adds[i] is None:
                    np_add(z, bs[i], out=z)
                else:
                    bias_adds[i](z)
            lins[i]._cache = (x, Ws[0]) if i == 0 else lin_caches[i]
            if i == k:
                break
            a = a_views[i]
            if relus[i]:
                np_greater(z, zero, out=aboves[i])
                np_copyto(masks[i], aboves[i])
                np_maximum(z, zeroses[i], out=a)
                if cs[i] is not None:
                    np_multiply(masks[i], cs[i], out=slopes[i])
                    np_multiply(a, cs[i], out=a)
            else:
                np_tanh(z, out=a)
            acts[i]._cache = act_caches[i]
        if any(layer.output_shape_ is not None for layer in layers):  # a forward ran since the last step
            for layer in layers:
                layer.output_shape_ = None
        done = loss_step(y, loss)  # J and dJ/dz of the top layer into g
        if done is None:
            return None  # targets the usual path must name, or J not finite: it reruns the pass
        J, result = done
        # backward: δ = dJ/dz of the top layer, then down through each activation and Linear
        d = g
        for i in range(k, -1, -1):
            if folded_in[i]:
                dot(ins_T[i], d, dMs[i])                    # [dJ/dWᵀ; dJ/dbᵀ] = [a 1]ᵀ δ
            else:
                dot((x if i == 0 else a_views[i - 1]).T, d, dW_Ts[i])  # dJ/dWᵀ = aᵀ δ
                dot(ones[i], d, dbs[i])                     # dJ/db = 1ᵀ δ
            if i == 0:
                break
            d = dot(d, Ws[i], dxs[i])                       # dJ/da of the layer below
            j = i - 1
            if relus[j]:
                np_multiply(d, backward_slopes[j], out=d)   # ⊙ c·1[z > 0]
            else:
                np_square(a_views[j], out=slopes[j])
                np_subtract(1, slopes[j], out=slopes[j])
                np_multiply(d, slopes[j], out=d)            # ⊙ (1 - a²)
        for lin in lins:
            lin.grads_zero = lin.zero_pending = False
        if lr is not None:
            if finite_below is not None and not (-inf < J < inf and vdot(grad_flat, grad_flat) < finite_below):
                return None  # perhaps diverging: nothing updated; the usual path redoes the step with its check
            if axpy is not None:
                for update in updates:
                    update(-lr)
            else:
                for store in stores:
                    sgd_update(store.theta, store.grad, lr, scratch_update)
        return J, result

    step.loss_backward = lambda y, y_hat: None  # type: ignore[attr-defined]  # backward_loss: the kernels
    step.loss_types = (BCELoss,) if bce else (CrossEntropyLoss,) if ce else (MSELoss, SquaredErrorLoss)  # type: ignore[attr-defined]
    return step
