"""The fast path's plan: one network's workspaces, kernels, fused losses and SGD update for one
input shape and dtype.

:class:`~handgrad.model.Sequential` builds a plan on the first NumPy forward pass of a shape
(after its input is checked) and uses it for that pass too; later passes with the same shape
and dtype skip the per-call checks, allocate nothing but the returned ŷ and write every
intermediate into the plan's buffers. A plan is an optimisation of the plain path and gives
its results (tests/test_fast_path.py); anything it does not cover returns None or raises
:class:`~handgrad.fast.workspace.StalePlanError`, and the network runs the plain path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..layers import Identity, Layer, Linear
from ..losses import BCELoss, CrossEntropyLoss, MSELoss, SquaredErrorLoss
from . import blas
from . import losses as fl
from .blas import blas_axpy
from .kernels import FastOp, fast_op, kernels_for
from .step import bind_deep_step, bind_mlp_step
from .update import merged_ranges
from .workspace import NotFastError, Workspace

PLAIN = FastOp()


class Plan:
    """Workspaces and bound kernels for every layer, the loss gradient's buffer and the
    packed parameters' SGD update, for one input shape and dtype."""

    __slots__ = ("x_shape", "dtype", "layers", "workspaces", "shapes", "buffers", "dJ_dout", "forwards",
                 "backwards", "trainable", "stores", "updates", "update_calls", "axpy", "two_over_numel",
                 "step", "sgd_updates")

    def __init__(self, layers: list[Layer], x_shape: tuple, dtype: np.dtype) -> None:
        self.x_shape, self.dtype, self.layers = x_shape, np.dtype(dtype), list(layers)
        shapes = [x_shape]
        for layer in layers:
            shapes.append(tuple(layer.output_shape(shapes[-1])))
        self.shapes = shapes
        n = len(layers)
        fresh = [i == n - 1 for i in range(n)]
        last_is_identity = type(layers[-1]) is Identity and layers[-1].scale == 1.0
        if n >= 2 and last_is_identity and isinstance(layers[-2], Linear):
            fresh[-2], fresh[-1] = True, False  # the last Linear's fresh z is ŷ itself
        ops = [fast_op(layer) or PLAIN for layer in layers]  # build() checked that each has one
        self.workspaces = [
            Workspace(shapes[i], shapes[i + 1], dtype, first=i == 0, fresh=fresh[i],
                      inplace=ops[i].overwrites_input and i > 0 and not ops[i - 1].caches_output)
            for i in range(n)
        ]
        self.buffers: dict[str, np.ndarray] = {}
        self.dJ_dout = np.empty(shapes[-1], dtype)  # the loss gradient dJ/dŷ (or dJ/dz of a fused pair)
        self.forwards: list = []
        self.backwards: list = []
        self.trainable = [layer for layer in layers if layer.grads]  # the Linears
        self.stores: list = []  # per Linear: its packed parameters when bound, checked before an update
        self.updates: list = []  # (Linear, its packed parameters) pairs
        self.update_calls: list = []  # (size, θ address, dJ/dθ address): one per run of adjacent Linears
        self.axpy: Any = None
        self.sgd_updates: list = []  # per update call, update(α): θ += α·dJ/dθ (blas.bound_axpy)
        self.step: Any = None  # the whole training step as one closure, where bind_mlp_step or bind_deep_step covers the network
        self.two_over_numel = np.array(2.0 / math.prod(shapes[-1]), dtype)  # the MSE gradient's 2/(N·K)

    @classmethod
    def build(cls, layers: list[Layer], x_shape: tuple, dtype: np.dtype) -> Plan | None:
        """A bound plan, or None where some layer cannot run on the fast path."""
        if any(fast_op(layer) is None for layer in layers):
            return None
        plan = cls(layers, x_shape, dtype)
        try:
            for layer, ws in zip(plan.layers, plan.workspaces):
                forward, backward = kernels_for(layer, ws)
                plan.forwards.append(forward)
                plan.backwards.append(backward)
        except NotFastError:
            return None
        plan.stores = [layer.packed() for layer in plan.trainable]
        plan.updates = list(zip(plan.trainable, plan.stores))
        plan.axpy = blas_axpy(plan.dtype)
        if plan.axpy is not None:  # SGD's θ += (-lr)·dJ/dθ as BLAS calls over the packed arrays
            plan.update_calls = merged_ranges(
                [(s.theta.size, s.theta.ctypes.data, s.grad.ctypes.data) for s in plan.stores], plan.dtype.itemsize)
            # where every product runs on one thread, so does the update (blas.bound_axpy)
            one_thread = all(x_shape[0] * (store.theta.size) <= blas.SMALL_GEMM_MAX for store in plan.stores)  # N·(in+1)·out
            plan.sgd_updates = [blas.bound_axpy(plan.axpy, size, grad_ptr, theta_ptr, one_thread=one_thread)
                                for size, theta_ptr, grad_ptr in plan.update_calls]
        plan.step = bind_mlp_step(plan) or bind_deep_step(plan)
        return plan

    # ------------------------------------------------------------ passes
    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the output layer's input, ŷ); raises StalePlanError if parameters were replaced."""
        forwards = self.forwards
        for i in range(len(forwards) - 1):
            x = forwards[i](x)
        return x, forwards[-1](x)

    def backward(self, last: int, g: np.ndarray, input_grad: bool) -> np.ndarray | None:
        """Backpropagate g = dJ/d(output of layer ``last``) through layers last..0; g must be
        private (it is overwritten). Returns dJ/dx, or None if not input_grad."""
        if last < 0:  # nothing to go through: dJ/dx is the loss gradient itself
            return g.copy() if input_grad else None
        backwards = self.backwards
        for i in range(last, 0, -1):
            g = backwards[i](g)
        if input_grad or self.layers[0].params:
            g = backwards[0](g, input_grad)
        return g if input_grad else None

    def loss(self, loss: Any, y: np.ndarray, z: np.ndarray, y_hat: np.ndarray, fuses: Callable[[Any], bool],
             input_grad: bool) -> Any:
        """MSE, squared error, sigmoid + BCE and softmax + cross-entropy straight into the
        gradient buffer, then the backward. ``z`` is the output layer's input; ``fuses(loss)``
        says whether the output layer and the loss fuse (asked only for BCE and cross-entropy).

        Returns J, or None to take the checked path (another loss, another shape or dtype,
        or targets that the checked path must reject with its message).
        """
        kind, g = type(loss), self.dJ_dout
        if kind is CrossEntropyLoss and fuses(loss):
            return self._cross_entropy(y, z, y_hat, input_grad)
        if y.shape != y_hat.shape or y.dtype != self.dtype:
            return None
        last = len(self.layers) - 1
        if kind is MSELoss and self.step is not None and not input_grad:
            J = self.step.loss_backward(y, y_hat)  # the whole backward as one closure (handgrad.fast.step)
            if J is not None:
                return J
        if kind is MSELoss:
            J = fl.mse_into(y, y_hat, g, self.two_over_numel)
        elif kind is SquaredErrorLoss:
            J = fl.squared_error_into(y, y_hat, g, loss.reduction)
        elif kind is BCELoss and fuses(loss):
            if not (y.min() >= 0.0 and y.max() <= 1.0):
                return None  # the checked path names the bad targets
            J, last = fl.bce_with_logits_into(y, z, y_hat, g, self.buffer("scratch", y_hat.shape)), last - 1
            self.layers[-1].cache = None  # the output layer is bypassed by the fused gradient
        else:
            return None
        self.backward(last, g, input_grad)
        return J

    def _cross_entropy(self, y: np.ndarray, z: np.ndarray, p: np.ndarray, input_grad: bool) -> Any:
        """Softmax + cross-entropy and the backward from dJ/dz (see :meth:`cross_entropy_gradient`)."""
        J = self.cross_entropy_gradient(y, z, p)
        if J is not None:
            self.backward(len(self.layers) - 2, self.dJ_dout, input_grad)
        return J

    def cross_entropy_gradient(self, y: np.ndarray, z: np.ndarray, p: np.ndarray) -> Any:
        """Softmax + cross-entropy: J, and dJ/dz = (p - y)/N into the gradient buffer, for class
        indices (N,) or one-hot rows (N, K) that pass the checked path's tests (else None: that
        path names what is wrong; also when J is not finite, so that it reports the same)."""
        if type(y) is not np.ndarray:
            return None
        n, k = p.shape
        if k < 2:
            return None  # the checked path explains that cross-entropy needs two classes or more
        if y.ndim == 1 and y.shape[0] == n and y.dtype.kind in "iu":
            if not (y.min() >= 0 and y.max() < k):
                return None
            labels, onehot = y, None
        elif y.shape == p.shape and y.dtype == self.dtype:
            if not (y.min() >= 0.0 and y.max() <= 1.0):
                return None
            if np.maximum.reduce(np.abs(np.add.reduce(y, axis=1) - 1.0)) > 1e-6 + 1e-5:  # rows sum to 1 (allclose)
                return None
            labels, onehot = None, y
        else:
            return None
        g = self.dJ_dout
        row_starts, flat_index = self._index_buffers(n, k)
        J = fl.cross_entropy_with_logits_into(labels, onehot, z, p, g, row_starts, flat_index,
                                              self.buffer("scratch", p.shape))
        if not math.isfinite(J):
            return None
        self.layers[-1].cache = None  # the output layer is bypassed by the fused gradient
        return J

    # ------------------------------------------------------------ update
    def sgd_step(self, lr: float) -> bool:
        """θ ← θ - lr·dJ/dθ as one BLAS axpy per run of adjacent packed parameters; False
        (nothing done) without BLAS or when some Linear's parameters were replaced."""
        if self.axpy is None or not self.update_calls or not blas.USE_BLAS:
            return False
        for layer, store in self.updates:
            if layer.packed() is not store:
                return False
        for update in self.sgd_updates:
            update(-lr)
        return True

    # ------------------------------------------------------------ buffers
    def _index_buffers(self, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(0, K, 2K, ..., (N-1)K) and scratch for N flat int64 indices into an (N, K) array."""
        starts = self.buffers.get("row_starts")
        if starts is None:  # (N, K) is the plan's output shape: built once
            starts = self.buffers["row_starts"] = np.arange(0, n * k, k, dtype=np.int64)
            self.buffers["flat_index"] = np.empty(n, np.int64)
        return starts, self.buffers["flat_index"]

    def buffer(self, name: str, shape: tuple) -> np.ndarray:
        """A reused scratch array of the plan's dtype."""
        buf = self.buffers.get(name)
        if buf is None or buf.shape != shape:
            buf = self.buffers[name] = np.empty(shape, self.dtype)
        return buf
