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
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .backend import Backend, backend_of
from .fast.plan import Plan
from .fast.update import sgd_update
from .fast.workspace import StalePlanError
from .layers import Layer, Linear, check_upstream_shape, resolve_dtype, shape_of
from .losses import LOSSES, Loss, make_loss
from .registry import activation_name, layer_config, make_activation
from .storage import PackedParameters
from .validation import as_array, check_2d, check_positive_float, check_size, make_rng

Array = Any
_BUILTIN_LOSSES = frozenset(LOSSES.values())
_NUMPY = Backend("numpy")
MAX_PLANS = 4  # batch shapes remembered at once (e.g. full batches and an epoch's last, smaller one)


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
        dtype = self.dtype
        if x.dtype != dtype:
            return None
        first = self.layers[0]
        if isinstance(first, Linear):
            first.check_input(x)  # the plain pass's check and message, before any buffer exists
        plan = Plan.build(self.layers, x.shape, dtype)
        if plan is None:
            return None
        if len(plans) >= MAX_PLANS:
            plans.pop(next(iter(plans)))
        plans[(x.shape, x.dtype)] = plan
        return plan

    def _forward_fast(self, x: np.ndarray, plan: Plan) -> np.ndarray | None:
        """The same forward pass through reused buffers; None if parameters were replaced."""
        try:
            x, y_hat = plan.forward(x)
        except StalePlanError:
            self._drop_plans()
            return None
        self._last_input, self._last_output, self._last_plan = x, y_hat, plan  # x: the output layer's input
        return y_hat

    def backward(self, dJ_dy_hat: Array, input_grad: bool = True) -> Array | None:
        """Backpropagate dJ/dŷ through every layer; returns dJ/dx (None if not input_grad).

        dJ/dŷ must have ŷ's shape (ValueError naming both shapes): broadcasting it would give
        silently wrong gradients."""
        if self._last_output is not None:
            check_upstream_shape(f"{type(self).__name__}.backward", dJ_dy_hat, shape_of(self._last_output))
        plan = self._last_plan
        if (plan is not None and type(dJ_dy_hat) is np.ndarray and dJ_dy_hat.shape == plan.shapes[-1]
                and dJ_dy_hat.dtype == plan.dtype):
            g = plan.buffer("dJ_dy_hat", plan.shapes[-1])
            np.copyto(g, dJ_dy_hat)  # the fast backward works in place; the caller's array stays as it is
            return plan.backward(len(self.layers) - 1, g, input_grad)
        return self._backward_from(len(self.layers) - 1, dJ_dy_hat, input_grad)

    def _backward_from(self, last: int, g: Array, input_grad: bool) -> Array | None:
        for i in range(last, -1, -1):
            layer = self.layers[i]
            if i == 0 and isinstance(layer, Linear):
                return layer.backward(g, need_input_grad=input_grad)
            g = layer.backward(g)
        return g

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
            J = plan.loss(loss, y, self._last_input, self._last_output, self.fused_pair, input_grad)
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
            plan.backward(last, g, input_grad)
        else:
            self._backward_from(last, g, input_grad)
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

        On NumPy each packed parameter storage is updated in one pass (the plan's BLAS
        calls cover a whole MLP at once); a step allocates nothing. This is
        :class:`handgrad.optim.SGD`'s update with momentum and weight decay 0.
        """
        if type(lr) is not float or not 0.0 < lr < math.inf:
            lr = check_positive_float("lr", lr)
        plan = self._plan
        if plan is not None and plan.layers == self.layers and plan.sgd_step(lr):
            return
        scratch = self.__dict__.setdefault("_scratch", {})
        for layer in self.layers:
            store = layer.packed()
            if store is not None:  # every parameter of the layer in one flat array: one update
                sgd_update(store.theta, store.grad, lr, scratch)
                continue
            for key in layer.params:
                sgd_update(layer.params[key], layer.grads["dJ_d" + key], lr, scratch)

    def _backward_loss_zeroed(self, loss: Any, y: Array, input_grad: bool) -> Array:
        """backward_loss after zeroing the gradients, with each Linear's zeroing deferred to its
        backward (which then writes dJ/dW and dJ/db instead of adding to zeros)."""
        plan = self._last_plan
        layers = plan.trainable if plan is not None else [layer for layer in self.layers if layer.grads]
        for layer in layers:
            layer.defer_zero_grad()
        try:
            J = self.backward_loss(loss, y, input_grad)
        except BaseException:
            self.zero_grad()
            raise
        for layer in layers:
            if layer.zero_pending:  # not reached by the backward: zero it now
                layer.zero_grad()
        return J

    def train_step(self, x: Array, y: Array, loss: Any, lr: float | None = None, *, optimizer: Any = None,
                   before_update: Callable[[Any], Any] | None = None, finite_below: float | None = None) -> Any:
        """One training step, the seed's five steps: forward, zero the gradients, loss and
        backward, update. The one step that ``fit`` and the scikit-learn estimators run too.

        Returns J of the batch (before the update). ``loss`` is a Loss or its name. The update
        is plain SGD at rate ``lr``, or ``optimizer.step()``. ``before_update(J)``, if given,
        runs between the backward and the update and returns the J to report: clipping,
        divergence checks or extra loss terms go there, and an exception it raises skips the
        update. ``finite_below`` (plain SGD with a ``before_update`` divergence check, as ``fit``
        runs it) says that hook passes, returning J unchanged, whenever J is finite and the
        gradient's sum of squares is below this bound: where the whole-step closure runs, it
        tests that itself before its update (one dot) and the hook runs only when it fails.
        """
        plan = self._plan
        if plan is not None and optimizer is None and (before_update is None or finite_below is not None):
            step = plan.step
            if step is not None and type(loss) in step.loss_types and plan.layers == self.layers:
                # the whole step, plain SGD with nothing in between, bound as one closure over
                # the plan's buffers (handgrad.fast.step); it checks x, y and lr itself
                done = step(x, y, lr, loss, finite_below)
                if done is not None:
                    J, self._last_output = done
                    self._last_input, self._last_plan = self._last_output, plan
                    return J
        if (lr is None) == (optimizer is None):
            raise TypeError("train_step needs either lr (plain SGD) or optimizer, not both or neither")
        loss = make_loss(loss) if not isinstance(loss, Loss) else loss
        plan, done = self._plan, None
        if plan is not None and plan.step is not None and type(loss) in plan.step.loss_types and plan.layers == self.layers:
            done = plan.step(x, y, None, loss)  # steps 1-4 as one closure; the update below
        if done is not None:
            self._last_input, self._last_output, self._last_plan = done[1], done[1], plan
            J = done[0]
        else:
            self.forward(x)                                 # 1. forward
            J = self.backward_loss(loss, y, zero_grad=True)  # 3. zero the gradients, 2. loss, 4. backward
        if before_update is not None:
            J = before_update(J)
        if lr is not None:
            self.sgd_step(lr)                               # 5. update θ ← θ - lr·dJ/dθ
        else:
            optimizer.step()                                # 5. update (SGD, momentum, Adam)
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
        stores = [(layer, store) for layer in self.layers if isinstance(layer, Linear)
                  for store in [layer.packed()] if store is not None]
        if len(stores) < 2 or len({store.theta.dtype for _, store in stores}) != 1:
            return
        dtype, sizes = stores[0][1].theta.dtype, [store.theta.size for _, store in stores]
        theta, grad = np.empty(sum(sizes), dtype), np.empty(sum(sizes), dtype)
        start = 0
        for (layer, _), size in zip(stores, sizes):
            layer.storage = PackedParameters.pack(layer, storage=(theta[start:start + size], grad[start:start + size]))
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


__all__ = ["MLP", "Sequential", "TwoLayerNet"]
