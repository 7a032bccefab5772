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
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from . import functional as F
from ._checks import as_array, check_2d, check_positive_float, check_size
from .backend import Backend, backend_of
from .layers import (
    LAYER_TYPES,
    Activation,
    Identity,
    Layer,
    Linear,
    StalePlanError,
    Workspace,
    activation_name,
    make_activation,
    make_rng,
    resolve_dtype,
)
from .losses import LOSSES, BCELoss, CrossEntropyLoss, Loss, MSELoss, SquaredErrorLoss, make_loss

Array = Any
_BUILTIN_LAYERS = frozenset(LAYER_TYPES.values())
_BUILTIN_LOSSES = frozenset(LOSSES.values())
_NUMPY = Backend("numpy")
MAX_PLANS = 4  # batch shapes remembered at once (e.g. full batches and an epoch's last, smaller one)


class Plan:
    """The NumPy fast path for one input shape and dtype: a :class:`~handgrad.layers.Workspace`
    per layer (reused buffers) and the loss gradient's buffer.

    Built on the first forward pass with that shape, after its input is checked, and used by
    that pass too; later passes with the same shape and dtype skip the per-call checks,
    allocate nothing but the returned ŷ and write every intermediate into these buffers.
    """

    __slots__ = ("x_shape", "dtype", "layers", "workspaces", "shapes", "buffers", "dJ_dout", "forwards",
                 "backwards", "trainable", "updates", "update_calls", "axpy", "two_over_numel")

    def __init__(self, layers: list[Layer], x_shape: tuple, dtype: np.dtype) -> None:
        self.x_shape, self.dtype, self.layers = x_shape, dtype, list(layers)
        shapes = [x_shape]
        for layer in layers:
            shapes.append(tuple(layer.output_shape(shapes[-1])))
        self.shapes = shapes
        n = len(layers)
        fresh = [i == n - 1 for i in range(n)]
        last_is_identity = type(layers[-1]) is Identity and layers[-1].scale == 1.0
        if n >= 2 and last_is_identity and isinstance(layers[-2], Linear):
            fresh[-2], fresh[-1] = True, False  # the last Linear's fresh z is ŷ itself
        self.workspaces = [
            Workspace(shapes[i], shapes[i + 1], dtype, first=i == 0, fresh=fresh[i],
                      inplace=layer.fast_inplace and i > 0 and not layers[i - 1].keeps_output)
            for i, layer in enumerate(layers)
        ]
        self.buffers: dict[str, np.ndarray] = {}
        self.dJ_dout = np.empty(shapes[-1], dtype)  # the loss gradient dJ/dŷ (or dJ/dz of a fused pair)
        self.forwards: list = []
        self.backwards: list = []
        self.trainable = [layer for layer in layers if layer.grads]  # the Linears
        self.updates: list | None = None  # per Linear: (layer, its packed arrays), checked before an update
        self.update_calls: list = []  # (size, θ address, dJ/dθ address): one per run of adjacent Linears
        self.two_over_numel = np.array(2.0 / math.prod(shapes[-1]), dtype)  # the MSE gradient's 2/(N·K)

    def bind(self) -> bool:
        """Record the parameter arrays each Linear reads, then prepare every layer's buffers and
        kernels; False if a Linear's parameters do not suit the fast path."""
        for layer, ws in zip(self.layers, self.workspaces):
            if isinstance(layer, Linear):
                refs = layer.workspace_refs(self.dtype)
                if refs is None:
                    return False
                ws.refs = refs
        for layer, ws in zip(self.layers, self.workspaces):
            layer.fast_prepare(ws)
            forward, backward = layer.fast_kernels(ws)
            self.forwards.append(forward)
            self.backwards.append(backward)
        self.axpy = F.blas_axpy(self.dtype)
        if self.axpy is not None:  # SGD's θ += (-lr)·dJ/dθ as BLAS calls over the packed arrays
            self.updates = [(layer, layer._packed) for layer in self.trainable]
            self.update_calls = _merged_ranges(
                [(layer._packed[0].size, *layer._packed_ptrs[:2]) for layer in self.trainable], self.dtype.itemsize)
        return True

    def index_buffers(self, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(0, K, 2K, ..., (N-1)K) and scratch for N flat int64 indices into an (N, K) array."""
        starts = self.buffers.get("row_starts")
        if starts is None:  # (N, K) is the plan's output shape: built once
            starts = self.buffers["row_starts"] = np.arange(0, n * k, k, dtype=np.int64)
            self.buffers["flat_index"] = np.empty(n, np.int64)
        return starts, self.buffers["flat_index"]

    def buffer(self, name: str, shape: tuple) -> np.ndarray:
        buf = self.buffers.get(name)
        if buf is None or buf.shape != shape:
            buf = self.buffers[name] = np.empty(shape, self.dtype)
        return buf


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
        self._plans: dict[tuple, Plan] = {}  # NumPy fast path, by (input shape, dtype)

    fast_path = True  # set False (on a network or the class) to run the plain, array-API pass every time
    _plan: Plan | None = None  # the plan of the latest fast forward pass's shape
    _last_plan: Plan | None = None  # the plan the latest forward pass ran with (None: the plain path)
    _last_output: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # copies (deepcopy) start without the fast path's buffers; they rebuild on use
        state = self.__dict__.copy()
        state.update(_plans={}, _plan=None, _last_plan=None)
        return state

    def _drop_plans(self) -> None:
        self.__dict__.update(_plans={}, _plan=None, _last_plan=None)

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
                return _NUMPY if type(p) is np.ndarray else backend_of(p)
        return _NUMPY

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
        plan = self._plan
        if (plan is not None and type(x) is np.ndarray and x.shape == plan.x_shape and x.dtype == plan.dtype
                and plan.layers == self.layers):
            y_hat = self._forward_fast(x, plan)
            if y_hat is not None:
                return y_hat
        return self._forward_checked(x)

    def _forward_checked(self, x: Array) -> Array:
        """Convert and check x, then run the fast path if a plan for its shape exists, else the plain one."""
        x = as_array(x, "x", self.dtype if isinstance(x, (np.ndarray, list, tuple)) else None)
        backend = self.backend
        if backend.name != "numpy" and isinstance(x, np.ndarray):  # NumPy input to a torch/CuPy network
            x = backend.asarray(x, self.dtype)
        check_2d(x, "x", f"{type(self).__name__}.forward")
        plans = self.__dict__.setdefault("_plans", {})
        plan = plans.get((x.shape, x.dtype)) if type(x) is np.ndarray else None
        if plan is None or plan.layers != self.layers:
            plan = self._new_plan(x, plans)
        if plan is not None:
            self._plan = plan
            y_hat = self._forward_fast(x, plan)
            if y_hat is not None:
                return y_hat
        for layer in self.layers[:-1]:
            x = layer.forward(x)
        self._last_input = x  # the output layer's input, for fused losses
        self._last_output = self.layers[-1].forward(x)
        self._last_plan = None
        return self._last_output

    def _new_plan(self, x: Array, plans: dict) -> Plan | None:
        """The fast path for x's shape (NumPy, built-in layers only), so every pass of a shape,
        its first included, takes the same path; None where the plain pass must run."""
        if not self.fast_path or type(x) is not np.ndarray or x.shape[0] == 0:
            return None
        if any(type(layer) not in _BUILTIN_LAYERS for layer in self.layers):
            return None
        dtype = self.dtype
        if x.dtype != dtype:
            return None
        first = self.layers[0]
        if isinstance(first, Linear):
            first._check_input(x)  # the plain pass's check and message, before any buffer exists
        plan = Plan(self.layers, x.shape, dtype)
        if not plan.bind():
            return None
        if len(plans) >= MAX_PLANS:
            plans.pop(next(iter(plans)))
        plans[(x.shape, x.dtype)] = plan
        return plan

    def _forward_fast(self, x: np.ndarray, plan: Plan) -> np.ndarray | None:
        """The same forward pass through reused buffers; None if parameters were replaced."""
        forwards = plan.forwards
        try:
            for i in range(len(forwards) - 1):
                x = forwards[i](x)
            y_hat = forwards[-1](x)
        except StalePlanError:
            self._drop_plans()
            return None
        self._last_input, self._last_output, self._last_plan = x, y_hat, plan  # x: the output layer's input
        return y_hat

    def backward(self, dJ_dy_hat: Array, input_grad: bool = True) -> Array | None:
        """Backpropagate dJ/dŷ through every layer; returns dJ/dx (None if not input_grad)."""
        plan = self._last_plan
        if (plan is not None and type(dJ_dy_hat) is np.ndarray and dJ_dy_hat.shape == plan.shapes[-1]
                and dJ_dy_hat.dtype == plan.dtype):
            g = plan.buffer("dJ_dy_hat", plan.shapes[-1])
            np.copyto(g, dJ_dy_hat)  # the fast backward works in place; the caller's array stays as it is
            return self._backward_fast(plan, len(self.layers) - 1, g, input_grad)
        return self._backward_from(len(self.layers) - 1, dJ_dy_hat, input_grad)

    def _backward_from(self, last: int, g: Array, input_grad: bool) -> Array | None:
        for i in range(last, -1, -1):
            layer = self.layers[i]
            if i == 0 and isinstance(layer, Linear):
                return layer.backward(g, need_input_grad=input_grad)
            g = layer.backward(g)
        return g

    def _backward_fast(self, plan: Plan, last: int, g: np.ndarray, input_grad: bool) -> np.ndarray | None:
        """The same backward pass through reused buffers; g must be private (it is overwritten)."""
        if last < 0:  # nothing to go through: dJ/dx is the loss gradient itself
            return g.copy() if input_grad else None
        backwards = plan.backwards
        for i in range(last, 0, -1):
            g = backwards[i](g)
        if input_grad or self.layers[0].params:
            g = backwards[0](g, input_grad)
        return g if input_grad else None

    def fused_pair(self, loss: Any) -> bool:
        """True when the last layer and ``loss`` fuse (sigmoid + BCE, softmax + cross-entropy)."""
        last = self.layers[-1]
        out = getattr(loss, "fused_output", None)
        return out is not None and type(last) is out and getattr(last, "scale", 1.0) == 1.0 \
            and getattr(last, "beta", 1.0) == 1.0

    def backward_loss(self, loss: Any, y: Array, input_grad: bool = False, zero_grad: bool = False) -> Array:
        """Loss of the last forward pass and backward from it, fused where the math allows.

        Returns J. The network must have run ``forward`` on the batch that ``y`` labels.
        Gradients accumulate, as with ``backward``; ``zero_grad=True`` gives the same result
        as calling ``zero_grad()`` first -- the gradients are this batch's alone -- in one
        pass less: each Linear's backward writes its gradients instead of adding to zeros
        (no one can read them in between; if the backward fails they are zeroed).
        """
        if self._last_output is None:
            raise RuntimeError(f"{type(self).__name__}.backward_loss called before forward; call forward(x) first")
        if zero_grad:
            return self._backward_loss_zeroed(loss, y, input_grad)
        plan = self._last_plan
        if plan is not None and type(y) is np.ndarray:
            J = self._loss_fast(plan, loss, y, input_grad)
            if J is not None:
                return J
        fused = self.fused_pair(loss)
        if fused:
            J, g = loss.fused(y, self._last_input)
            self.layers[-1].cache = None  # the output layer is bypassed by the fused gradient
        else:
            J, g = loss(y, self._last_output)
        last = len(self.layers) - (2 if fused else 1)
        if plan is not None and type(g) is np.ndarray and g.shape == plan.shapes[last + 1] and g.dtype == plan.dtype:
            if type(loss) not in _BUILTIN_LOSSES:  # a user's loss may hand back an array it keeps
                g = g.copy()
            self._backward_fast(plan, last, g, input_grad)
        else:
            self._backward_from(last, g, input_grad)
        return J

    def _loss_fast(self, plan: Plan, loss: Any, y: np.ndarray, input_grad: bool) -> Any:
        """MSE, squared error, sigmoid + BCE and softmax + cross-entropy straight into a reused
        gradient buffer.

        Returns J, or None to take the checked path (another loss, another shape or dtype,
        or targets that the checked path must reject with its message).
        """
        y_hat, kind = self._last_output, type(loss)
        g = plan.dJ_dout
        if kind is CrossEntropyLoss and self.fused_pair(loss):
            return self._cross_entropy_fast(plan, y, input_grad)
        if y.shape != y_hat.shape or y.dtype != plan.dtype:
            return None
        if kind is MSELoss:
            J, last = F.mse_into(y, y_hat, g, plan.two_over_numel), len(self.layers) - 1
        elif kind is SquaredErrorLoss:
            J, last = F.squared_error_into(y, y_hat, g, loss.reduction), len(self.layers) - 1
        elif kind is BCELoss and self.fused_pair(loss):
            if not (y.min() >= 0.0 and y.max() <= 1.0):
                return None  # the checked path names the bad targets
            scratch = plan.buffer("scratch", y_hat.shape)
            J, last = F.bce_with_logits_into(y, self._last_input, y_hat, g, scratch), len(self.layers) - 2
            self.layers[-1].cache = None  # the output layer is bypassed by the fused gradient
        else:
            return None
        self._backward_fast(plan, last, g, input_grad)
        return J

    def _cross_entropy_fast(self, plan: Plan, y: np.ndarray, input_grad: bool) -> Any:
        """Softmax + cross-entropy: dJ/dz = (p - y)/N into the plan's buffer, for class indices
        (N,) or one-hot rows (N, K) that pass the checked path's tests (else None: that path
        names what is wrong; also when J is not finite, so that it reports the same)."""
        p, z = self._last_output, self._last_input
        n, k = p.shape
        if k < 2:
            return None  # the checked path explains that cross-entropy needs two classes or more
        if y.ndim == 1 and y.shape[0] == n and y.dtype.kind in "iu":
            if not (y.min() >= 0 and y.max() < k):
                return None
            labels, onehot = y, None
        elif y.shape == p.shape and y.dtype == plan.dtype:
            if not (y.min() >= 0.0 and y.max() <= 1.0):
                return None
            if np.maximum.reduce(np.abs(np.add.reduce(y, axis=1) - 1.0)) > 1e-6 + 1e-5:  # rows sum to 1 (allclose)
                return None
            labels, onehot = None, y
        else:
            return None
        g = plan.dJ_dout
        row_starts, flat_index = plan.index_buffers(n, k)
        J = F.cross_entropy_with_logits_into(labels, onehot, z, p, g, row_starts, flat_index,
                                             plan.buffer("scratch", p.shape))
        if not math.isfinite(J):
            return None
        self.layers[-1].cache = None  # the output layer is bypassed by the fused gradient
        self._backward_fast(plan, len(self.layers) - 2, g, input_grad)
        return J

    def zero_grad(self) -> None:
        for layer in self.layers:
            if layer.grads:
                layer.zero_grad()

    def clear_cache(self) -> None:
        for layer in self.layers:
            layer.clear_cache()
        self._last_input = self._last_output = None
        self._last_plan = None

    # ------------------------------------------------------------ training
    def sgd_step(self, lr: float) -> None:
        """Plain SGD on every parameter, in place: θ ← θ - lr · dJ/dθ.

        On NumPy each Linear's W and b are updated together in one pass through the axpy
        of NumPy's own BLAS (or, without it, lr · dJ/dθ goes into a reused scratch array
        and is subtracted); a step allocates nothing. (:class:`handgrad.optim.SGD` does
        the same update.)
        """
        if type(lr) is not float or not 0.0 < lr < math.inf:
            lr = check_positive_float("lr", lr)
        plan = self._plan
        if plan is not None and plan.updates is not None and F.USE_BLAS and plan.layers == self.layers:
            for layer, packed in plan.updates:
                if layer.packed() is not packed:  # parameters replaced: the general loop below
                    break
            else:
                axpy = plan.axpy
                for size, theta_ptr, grad_ptr in plan.update_calls:
                    axpy(size, -lr, grad_ptr, 1, theta_ptr, 1)
                return
        scratch = self.__dict__.get("_scratch")
        if scratch is None:
            scratch = self._scratch = {}
        for layer in self.layers:
            if not layer.params:
                continue
            packed = layer.packed() if isinstance(layer, Linear) else None
            if packed is not None:  # W and b in one flat array: one update
                axpy = F.blas_axpy(packed[0].dtype)
                if axpy is not None:  # θ += (-lr)·dJ/dθ in one pass
                    theta_ptr, grad_ptr, _ = layer._packed_ptrs
                    axpy(packed[0].size, -lr, grad_ptr, 1, theta_ptr, 1)
                else:
                    _sgd_update(packed[0], packed[1], lr, scratch)
                continue
            for key in layer.params:
                _sgd_update(layer.params[key], layer.grads["dJ_d" + key], lr, scratch)

    def _backward_loss_zeroed(self, loss: Any, y: Array, input_grad: bool) -> Array:
        """backward_loss after zeroing the gradients, with each Linear's zeroing deferred to its
        backward (which then writes dJ/dW and dJ/db instead of adding to zeros)."""
        plan = self._last_plan
        layers = plan.trainable if plan is not None else [layer for layer in self.layers if layer.grads]
        for layer in layers:
            if isinstance(layer, Linear):
                layer.defer_zero_grad()
            else:
                layer.zero_grad()
        try:
            J = self.backward_loss(loss, y, input_grad)
        except BaseException:
            self.zero_grad()
            raise
        for layer in layers:
            if getattr(layer, "_zero_pending", False):  # not reached by the backward: zero it now
                layer.zero_grad()
        return J

    def train_step(self, x: Array, y: Array, loss: Any, lr: float) -> Any:
        """One step of plain SGD: forward, zero the gradients, loss and backward, update.

        Returns the loss J of the batch (before the update). ``loss`` is a Loss or its name.
        """
        loss = make_loss(loss) if not isinstance(loss, Loss) else loss
        self.forward(x)
        J = self.backward_loss(loss, y, zero_grad=True)
        self.sgd_step(lr)
        return J

    # ------------------------------------------------------------ conversion
    def to(self, backend: str | Backend | None = None, dtype: Any = None, device: Any = None) -> Sequential:
        """Move every parameter to another backend and/or dtype (in place); returns self."""
        for layer in self.layers:
            layer.to(backend, dtype, device)
        self._drop_plans()
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
        self._share_storage()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._share_storage()  # a copy's layers are its own: pack them together again

    def to(self, backend: str | Backend | None = None, dtype: Any = None, device: Any = None) -> MLP:
        super().to(backend, dtype, device)
        self._share_storage()  # the layers' arrays were replaced anyway
        return self

    def _share_storage(self) -> None:
        """Pack every Linear's θ = (W, b) -- and dJ/dθ -- into one flat array for the whole
        network, layer after layer, so that SGD's update is one BLAS call. Only here: the
        layers were created by this network, so no one holds their old arrays."""
        linears = [layer for layer in self.layers if isinstance(layer, Linear) and layer.packed() is not None]
        if len(linears) < 2 or len({layer._packed[0].dtype for layer in linears}) != 1:
            return
        dtype, sizes = linears[0]._packed[0].dtype, [layer._packed[0].size for layer in linears]
        theta, grad = np.empty(sum(sizes), dtype), np.empty(sum(sizes), dtype)
        start = 0
        for layer, size in zip(linears, sizes):
            layer._pack(storage=(theta[start:start + size], grad[start:start + size]))
            start += size

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


def _merged_ranges(ranges: list[tuple[int, int, int]], itemsize: int) -> list[tuple[int, int, int]]:
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


def _sgd_update(theta: Array, dJ_dtheta: Array, lr: float, scratch: dict) -> None:
    """θ ← θ - lr·dJ/dθ in place. On NumPy: one pass through the axpy of NumPy's own BLAS
    when it is available (:func:`handgrad.functional.blas_axpy`), else lr·dJ/dθ goes into
    a reused scratch array and is subtracted.

    (SciPy's BLAS axpy is a different library whose thread pool competes with NumPy's
    BLAS threads, which made whole steps many times slower; NumPy's own does not.)
    """
    if type(theta) is np.ndarray and type(dJ_dtheta) is np.ndarray and theta.dtype == dJ_dtheta.dtype:
        dtype = theta.dtype
        axpy = F.blas_axpy(dtype)
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
    else:
        theta -= lr * dJ_dtheta


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
