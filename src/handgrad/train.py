r"""The training loop: the seed's five SGD steps over shuffled mini-batches, epoch after epoch.

Each step of :func:`fit` is the seed's recipe, :meth:`~handgrad.model.Sequential.train_step`::

    y_hat = net.forward(x_batch)                           # 1. forward
    J = net.backward_loss(loss, y_batch, zero_grad=True)   # 3. clear the gradients, 2. loss, 4. backward
    optimizer.step()                                       # 5. update θ ← θ - lr·dJ/dθ (or momentum / Adam)

``zero_grad=True`` is ``net.zero_grad()`` followed by ``backward_loss`` (gradients
accumulate otherwise), without the separate pass that fills them with zeros.
``backward_loss`` computes J(y, ŷ) and backpropagates dJ/dŷ; when the network ends in
sigmoid + BCE or softmax + cross-entropy it starts from the output layer's input z
with the simpler dJ/dz = (ŷ - y)/N instead. Before step 5 the loss and the gradients
are checked: a NaN or inf raises :class:`~handgrad.errors.DivergenceError` and the
update is never applied.

Around the five steps: a seeded ``np.random.default_rng`` shuffles each epoch (each
batch's rows are gathered in the loop or, where that is measured faster, one step ahead
in a background thread: the same batches either way, see ``GATHER_AHEAD``); loss and
metrics (MSE/MAE/R² or accuracy/log-loss) are recorded per epoch on the training and
validation data in a :class:`History`; early stopping on the validation loss restores
the best weights; callbacks may stop the run; checkpoints are written atomically after the
first epoch, then as often as keeps their cost near 1/:data:`CHECKPOINT_RATIO` of the
training time, and always after the last one (the cap, early stopping or a callback's stop), and ``resume=`` continues a run to the same
weights as an uninterrupted one; Ctrl-C rolls back to the last finished epoch, which is
then saved.
"""

from __future__ import annotations

import hashlib
import math
import os
import queue
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from . import metrics as M
from .backend import to_numpy
from .data.dataset import check_task
from .errors import ConvergenceWarning, DivergenceError, ModelFileError
from .inference import (
    check_features,
    check_network,
    classification_scores,
    is_multilabel,
    logits_and_outputs,
    loss_of_outputs,
    output_kind,
    predict,
    predict_labels,
    predict_proba,
)
from .losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, Loss, make_loss
from .optim import SGD, Optimizer, Schedule, clip_grad_norm, grad_norm, make_optimizer, make_schedule
from .storage import flat_base
from .validation import check_finite, check_int, check_positive_float, make_rng

Array = Any

CHECKPOINT_RATIO = 20.0  #: fit's checkpoint waits until the training since the last one took this many times its write
RNG_TYPES = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


# ====================================================================== history
@dataclass
class History:
    """Per-epoch records of a run: ``history.records[i]`` is a dict for epoch i + 1.

    Each record holds ``epoch`` (1-based), ``lr``, ``loss`` and the task's metrics
    (``mse``, ``mae``, ``r2`` or ``accuracy``, ``log_loss``), and the same with a
    ``val_`` prefix when validation data was given. ``history["val_loss"]`` is a column.
    ``best_epoch`` has the lowest validation loss (training loss without validation);
    ``stopped_early`` says whether early stopping or a callback ended the run, and
    ``stop_reason`` why. ``seed`` is the shuffling seed (drawn and recorded when None).
    """

    records: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    stop_reason: str | None = None
    seed: int | None = None
    epoch_seconds: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: str) -> list[float]:
        if not any(key in r for r in self.records) and self.records:
            raise KeyError(f"no {key!r} in the history; recorded: {', '.join(self.records[-1])}")
        return [r.get(key, math.nan) for r in self.records]

    @property
    def final(self) -> dict[str, float]:
        """The last epoch's record ({} before any epoch)."""
        return dict(self.records[-1]) if self.records else {}

    @property
    def best(self) -> dict[str, float]:
        """The best epoch's record ({} before any epoch)."""
        return dict(self.records[self.best_epoch - 1]) if self.best_epoch else {}

    def to_dict(self) -> dict[str, Any]:
        return {"records": [dict(r) for r in self.records], "best_epoch": self.best_epoch,
                "stopped_early": self.stopped_early, "stop_reason": self.stop_reason, "seed": self.seed,
                "epoch_seconds": list(self.epoch_seconds)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        return cls(records=[dict(r) for r in d.get("records", [])], best_epoch=d.get("best_epoch"),
                   stopped_early=bool(d.get("stopped_early", False)), stop_reason=d.get("stop_reason"),
                   seed=d.get("seed"), epoch_seconds=list(d.get("epoch_seconds", [])))

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v:.4g}" for k, v in self.final.items() if k not in ("epoch", "lr"))
        return f"History(epochs={len(self)}, best_epoch={self.best_epoch}, stopped_early={self.stopped_early}, {last})"


class Callback:
    """Base class for callbacks; every hook is optional.

    ``on_epoch_end(epoch, logs)`` gets the 1-based epoch and that epoch's record; returning
    True or ``"stop"`` ends training after this epoch. A plain function
    ``f(epoch, logs)`` works too.
    """

    def on_train_begin(self, info: dict[str, Any]) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool | str | None:
        return None

    def on_train_end(self, history: History) -> None:
        pass


# ====================================================================== data at the boundary
@dataclass
class _Data:
    X: Array            # (n, in_features), the network's backend and dtype
    Y: Array            # targets as the loss takes them: (n, K) floats, or (n,) int labels for cross-entropy
    y_np: np.ndarray    # the same targets in NumPy, for metrics
    X_np: np.ndarray    # the features in NumPy, for the fingerprint

    @property
    def fingerprint(self) -> str:
        """Identifies the data in a checkpoint (computed only when a checkpoint needs it)."""
        if not hasattr(self, "_fingerprint"):
            self._fingerprint = _digest(self.X_np, self.y_np)
        return self._fingerprint

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    def take(self, idx: np.ndarray) -> tuple[Array, Array]:
        if isinstance(self.X, np.ndarray):
            return self.X.take(idx, axis=0), self.Y.take(idx, axis=0)
        import torch

        t = torch.as_tensor(idx, device=self.X.device)
        y = self.Y[idx] if isinstance(self.Y, np.ndarray) else self.Y[t]
        return self.X[t], y


#: Whether ``fit`` gathers each next batch in a background thread while the current step runs:
#: None (default) times both ways every 256 steps and keeps the faster, on NumPy data whose
#: batches hold at least BACKGROUND_GATHER_MIN_BYTES, with a second CPU; True always (NumPy
#: data); False never. The training is the same either way, bit for bit.
GATHER_AHEAD: bool | None = None

# Gathering a batch reads its rows from all over the data (a 64 x 784 float32 batch: 64
# scattered reads of 3 KB, about 7% of its step); below this many bytes per batch it costs
# less than handing it to another thread.
BACKGROUND_GATHER_MIN_BYTES = 1 << 16


def _gather_ahead(data: _Data, batch_size: int, n_steps: int) -> bool | None:
    """How an epoch gathers its batches: False in the loop, True one step ahead in a background
    thread, None measured (see GATHER_AHEAD)."""
    if GATHER_AHEAD is False or type(data.X) is not np.ndarray or type(data.Y) is not np.ndarray:
        return False
    if GATHER_AHEAD is True:
        return True
    row_bytes = data.X[:1].nbytes + data.Y[:1].nbytes
    if batch_size * row_bytes < BACKGROUND_GATHER_MIN_BYTES or n_steps < _Batches.MIN_STEPS:
        return False
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    return None if len(cpus) > 1 else False


class _Batches:
    """Each step's shuffled rows ``take(order[rows of the step])``: gathered in the loop, or one
    step ahead in a background thread while the current step runs.

    Ahead is faster only when a core is free while the step runs (NumPy's ``take`` releases
    the GIL, so the copy overlaps the step's BLAS calls); with every core busy -- BLAS on all
    of them, or other processes -- the thread only adds hand-offs. So every PERIOD blocks of
    steps the epoch times blocks both ways, alternating, and gathers the faster way until the
    next measurement (``ahead=None``; True or False fixes the way). The batches are the same
    arrays, in the same order, either way: training does not depend on the choice.
    """

    BLOCK = 8                     # steps per timed block
    TRIALS = 2                    # timed blocks each way per measurement
    PERIOD = 32                   # blocks from one measurement to the next: the load on the cores changes
    MIN_STEPS = 16 * BLOCK        # shorter epochs gather in the loop

    def __init__(self, take: Callable[[np.ndarray], tuple[Array, Array]], order: np.ndarray, batch_size: int,
                 n_steps: int, ahead: bool | None) -> None:
        self.take, self.order, self.bs, self.n_steps = take, order, batch_size, n_steps
        self.measured = ahead is None
        self.ahead = bool(ahead)             # gathering one step ahead now
        self.waiting = False                 # a batch is being gathered ahead
        self.seconds = [math.inf, math.inf]  # best per-step time of a timed block: in the loop, ahead
        self.t0 = 0.0
        self.thread: threading.Thread | None = None
        if ahead is not False:
            # two C-implemented queues, not futures: a hand-off costs the step a microsecond
            self.rows: queue.SimpleQueue = queue.SimpleQueue()     # row indices to gather, None to end
            self.batches: queue.SimpleQueue = queue.SimpleQueue()  # (x, y), or the exception raised
            self.thread = threading.Thread(target=self._gather, name="handgrad-gather", daemon=True)
            self.thread.start()

    def _gather(self) -> None:
        take, rows, batches = self.take, self.rows, self.batches
        while (idx := rows.get()) is not None:
            try:
                batches.put(take(idx))
            except BaseException as exc:  # raised in the training loop, at the step it belongs to
                batches.put(exc)

    def __enter__(self) -> _Batches:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.thread is not None:
            self.rows.put(None)
            self.thread.join()

    def next(self, step: int) -> tuple[np.ndarray, Array, Array]:
        """(row indices, x, y) of step ``step`` (1-based), called once per step in order."""
        bs = self.bs
        idx = self.order[(step - 1) * bs: step * bs]
        if self.thread is None:
            return (idx, *self.take(idx))
        if self.measured and (step - 1) % self.BLOCK == 0:
            self._choose((step - 1) // self.BLOCK)
        if self.waiting:
            got = self.batches.get()
            self.waiting = False
            if isinstance(got, BaseException):
                raise got
            x, y = got
        else:
            x, y = self.take(idx)
        if self.ahead and step < self.n_steps:
            self.rows.put(self.order[step * bs: (step + 1) * bs])
            self.waiting = True
        return idx, x, y

    def _choose(self, block: int) -> None:
        """At the start of block ``block``: time the block that ended, pick the way for this one.
        Every PERIOD blocks: one untimed block the current way, then 2·TRIALS timed blocks
        alternating (ahead first), then the faster way until the next measurement."""
        now = time.perf_counter()
        phase, decide = block % self.PERIOD, 2 * self.TRIALS + 1
        if 2 <= phase <= decide:  # the block that ended was a timed one
            way = int(self.ahead)
            self.seconds[way] = min(self.seconds[way], (now - self.t0) / self.BLOCK)
        self.t0 = now
        if phase == 0:
            self.seconds = [math.inf, math.inf]
        elif phase < decide:
            self.ahead = phase % 2 == 1
        elif phase == decide:
            self.ahead = self.seconds[1] < self.seconds[0]


class _FlatGradient:
    """Every gradient of a network whose layers keep theirs in one flat array (an MLP on NumPy
    packs them so), for the divergence check before each update: one BLAS dot over that array
    instead of :func:`~handgrad.optim.grad_norm`'s walk over the layers (about 2% of a
    784-128-10 step). Its answer is grad_norm's: a sum of squares well below the dtype's
    largest value means every per-layer sum grad_norm adds is finite too; anything else
    (NaN, inf, or near overflow) is left to grad_norm itself."""

    def __init__(self, flat: np.ndarray, stores: list[tuple[Any, Any]]) -> None:
        self.flat, self.stores = flat, stores
        self.limit = float(np.finfo(flat.dtype).max) / 4  # margin for the rounding of partial sums

    @classmethod
    def of(cls, net: Any) -> _FlatGradient | None:
        stores = []
        for _, layer in net.named_layers():
            store = layer.packed()
            if store is None:
                return None
            stores.append((layer, store))
        if not stores:
            return None
        flat = flat_base([s.grad for _, s in stores])  # the layers' gradients tile one flat array
        return cls(flat, stores) if flat is not None and flat.dtype.kind == "f" else None

    def surely_finite_norm(self) -> bool:
        """True when grad_norm(net) is finite (False: ask grad_norm)."""
        for layer, store in self.stores:
            if layer.packed() is not store:  # an array was replaced: the flat one is not the gradient
                return False
        return float(np.vdot(self.flat, self.flat)) < self.limit  # False for NaN too


def infer_task(loss: Any) -> str:
    """'classification' for BCE, BCE-with-logits and cross-entropy; 'regression' otherwise."""
    return "classification" if isinstance(make_loss(loss), (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss)) \
        else "regression"


def _targets(net: Any, y: Any, loss: Loss, n: int, name: str) -> np.ndarray:
    """y canonicalised: (n,) int labels for cross-entropy with indices, else (n, K) floats of the net's dtype."""
    y = np.asarray(to_numpy(y))
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {y.dtype}; map class names to integers 0..C-1 first")
    if y.ndim not in (1, 2) or y.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) or ({n}, K) to match X's {n} rows, got {y.shape}")
    check_finite(y, name)  # integer labels are finite as they are: no float copy
    K = net.out_features
    if isinstance(loss, CrossEntropyLoss) and (y.ndim == 1 or (y.shape[1] == 1 and K != 1)):
        labels = y.reshape(-1)
        if np.any(labels != np.round(labels)):
            raise ValueError(f"{name}: cross-entropy targets must be integer class indices 0..{K - 1}")
        labels = labels.astype(np.int64)
        if labels.min() < 0 or labels.max() >= K:
            raise ValueError(f"{name} holds class {int(labels.max() if labels.max() >= K else labels.min())}, but the "
                             f"network has {K} outputs (classes 0..{K - 1})")
        return labels
    y = y.reshape(-1, 1) if y.ndim == 1 else y
    if y.shape[1] != K:
        raise ValueError(f"{name} has {y.shape[1]} column(s) (targets per sample), but the network outputs {K}")
    if isinstance(loss, (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss)) and (y.min() < 0 or y.max() > 1):
        raise ValueError(f"{name}: {type(loss).__name__} targets must lie in [0, 1], got min {y.min():g}, max {y.max():g}")
    return y.astype(net.dtype, copy=False)


def _prepare(net: Any, X: Any, y: Any, loss: Loss, what: str) -> _Data:
    Xn = check_features(net, X, f"X ({what})")
    yn = _targets(net, y, loss, Xn.shape[0], f"y ({what})")
    be = net.backend
    if be.name == "numpy":
        return _Data(Xn, yn, yn, Xn)
    Y = yn if yn.dtype.kind == "i" else be.asarray(yn, yn.dtype)
    return _Data(be.asarray(Xn, Xn.dtype), Y, yn, Xn)


def _digest(*arrays: np.ndarray) -> str:
    """SHA-256 of the arrays' shapes, dtypes and bytes (read in place, no copy when contiguous)."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(repr((a.shape, a.dtype.str)).encode())
        h.update(np.ascontiguousarray(a).data.cast("B"))
    return h.hexdigest()


# ====================================================================== evaluation
def _evaluate(net: Any, loss: Loss, task: str, data: _Data) -> dict[str, float]:
    z, out = logits_and_outputs(net, data.X)
    y = data.y_np
    record = {"loss": loss_of_outputs(net, loss, y, z, out)}
    if math.isfinite(record["loss"]) and np.isfinite(out).all():
        if task == "regression":
            record.update({name: fn(y, out) for name, fn in M.REGRESSION_METRICS.items()})
        else:
            record.update(classification_scores(out, y, output_kind(net, loss), multilabel=is_multilabel(net, loss)))
    return record


def evaluate(net: Any, X: Any, y: Any, loss: Any = "mse", task: str | None = None) -> dict[str, float]:
    """Loss and metrics of ``net`` on (X, y): ``{"loss", "mse", "mae", "r2"}`` for regression,
    ``{"loss", "accuracy", "log_loss"}`` for classification (``task`` defaults from the loss)."""
    check_network(net)
    loss = make_loss(loss)
    task = _check_task(task, loss)
    return _evaluate(net, loss, task, _prepare(net, X, y, loss, "evaluation data"))


# ====================================================================== argument checks
def _check_task(task: Any, loss: Loss) -> str:
    if task is None:
        return infer_task(loss)
    return cast(str, check_task(task))


def _seeded_rng(seed: Any) -> tuple[np.random.Generator, int | None]:
    """The shuffling generator and the seed to record (drawn from the OS when None; None for a Generator)."""
    if seed is None:
        seed = cast(int, np.random.SeedSequence().entropy)  # drawn from the OS, recorded in the history
    return make_rng(seed), None if isinstance(seed, np.random.Generator) else int(seed)


def _make_optimizer(optimizer: Any, net: Any, lr: Any) -> Optimizer:
    if isinstance(optimizer, Optimizer):
        if optimizer.net is not net:
            raise ValueError("the optimizer was built for a different network")
        if lr is not None:
            raise ValueError("pass lr to the optimizer you built, or pass optimizer by name with lr=")
        return optimizer
    return make_optimizer(optimizer, net) if lr is None else make_optimizer(optimizer, net, lr=lr)


def _check_loss_pair(net: Any, loss: Loss) -> None:
    from .layers import Sigmoid, Softmax

    last = net.layers[-1]
    if isinstance(loss, BCELoss) and not isinstance(last, (Sigmoid, Softmax)):
        warnings.warn(f"bce takes probabilities in [0, 1], but the output layer is {type(last).__name__}, which "
                      "does not produce them; use a sigmoid output (g='sigmoid') or loss='bce_with_logits'",
                      UserWarning, stacklevel=3)
    if isinstance(loss, BCEWithLogitsLoss) and isinstance(last, Sigmoid):
        warnings.warn("bce_with_logits after a Sigmoid output applies the sigmoid twice; use loss='bce' "
                      "(fused with the sigmoid) or an identity output", UserWarning, stacklevel=3)
    if isinstance(loss, CrossEntropyLoss) and isinstance(last, Softmax) and not net.fused_pair(loss):
        warnings.warn("cross_entropy takes logits; this Softmax output does not fuse with it (beta != 1)",
                      UserWarning, stacklevel=3)


# ====================================================================== progress
class _Progress:
    """Epoch progress: a rich bar on a terminal, else a plain line every ~5% of the epochs (to stderr)."""

    def __init__(self, enabled: bool, epochs: int, start: int, task: str) -> None:
        self.epochs, self.task, self.bar = epochs, task, None
        self.enabled = bool(enabled) and epochs > start
        self.every = max(1, math.ceil(epochs / 20))
        if self.enabled and getattr(sys.stderr, "isatty", lambda: False)():
            try:
                from rich.console import Console
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            except ImportError:
                return
            self.bar = Progress(TextColumn("epoch"), MofNCompleteColumn(), BarColumn(), TextColumn("{task.fields[info]}"),
                                TimeElapsedColumn(), console=Console(stderr=True), transient=False)
            self.bar.start()
            self.task_id = self.bar.add_task("train", total=epochs, completed=start, info="")

    def _summary(self, r: dict[str, float]) -> str:
        keys = ["loss", "accuracy" if self.task == "classification" else "r2"]
        keys += [f"val_{k}" for k in keys]
        return "  ".join(f"{k} {r[k]:.4g}" for k in keys if k in r)

    def update(self, record: dict[str, float]) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(self.task_id, completed=record["epoch"], info=self._summary(record))
        elif record["epoch"] % self.every == 0 or record["epoch"] in (1, self.epochs):
            width = len(str(self.epochs))
            print(f"epoch {record['epoch']:>{width}}/{self.epochs}  {self._summary(record)}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


# ====================================================================== the run
def _clone(a: Array) -> Array:
    return a.copy() if isinstance(a, np.ndarray) else a.clone()


def _params_finite(net: Any) -> bool:
    return all(bool(np.isfinite(to_numpy(p)).all()) for p in net.params.values())


class _Run:
    """State of one training run; ``fit`` drives it epoch by epoch."""

    def __init__(self, net: Any, loss: Loss, opt: Optimizer, rng: np.random.Generator, data: _Data,
                 val: _Data | None, cfg: dict[str, Any]) -> None:
        self.net, self.loss, self.opt, self.rng, self.data, self.val, self.cfg = net, loss, opt, rng, data, val, cfg
        self.history = History(seed=cfg["seed"])
        self.epoch = 0                     # finished epochs
        self.best_value = math.inf
        self.best_params: dict[str, Array] | None = None
        self.wait = 0
        self.saved_epoch: int | None = None
        self.saved_at = -math.inf  # time.monotonic() when the last checkpoint was written
        self.save_seconds = 0.0  # what writing it took
        self.last_finite: tuple[float, int, int] | None = None
        self.snap: dict[str, Any] | None = None
        self.in_epoch = False

    # ------------------------------------------------------------ the five steps
    def train_epoch(self, epoch: int) -> float:
        """One pass over the shuffled training data; returns the mean mini-batch loss."""
        net, loss, opt, data, cfg = self.net, self.loss, self.opt, self.data, self.cfg
        bs, clip, mean_loss = cfg["batch_size"], cfg["clip_grad_norm"], cfg["mean_loss"]
        order = self.rng.permutation(data.n)
        n_steps = math.ceil(data.n / bs)
        total = 0.0
        parallel = cfg["parallel"]  # a DataParallel: this rank trains on its shard of each batch
        step = 0
        flat = _FlatGradient.of(net)

        def checked(J: Any) -> float:
            """Between the backward and the update: clip, and stop on a non-finite J or gradient."""
            J = float(J)
            if clip:
                norm = clip_grad_norm(net, clip)
            elif flat is not None and flat.surely_finite_norm():
                norm = 0.0  # grad_norm(net) is finite: the check needs no more
            else:
                norm = grad_norm(net)
            if not (math.isfinite(J) and math.isfinite(norm)):
                self.diverged(epoch, step, n_steps, J)  # before the update: θ stays finite
            return J

        # plain SGD with the flat gradient's check: train_step at opt's rate, told when `checked` surely passes
        # (J finite, the dot below flat.limit), so that the whole-step closure checks and updates in one call:
        # the same update as opt.step() (the same BLAS axpy or ufuncs over the same arrays), bit for bit
        plain = (parallel is None and not clip and flat is not None and type(opt) is SGD and opt.momentum == 0.0
                 and opt.weight_decay == 0.0)
        if parallel is None:
            batches = _Batches(data.take, order, bs, n_steps, _gather_ahead(data, bs, n_steps))
        else:
            batches = _Batches(lambda idx: data.take(parallel.shard(idx)), order, bs, n_steps, ahead=False)
        with batches:
            for step in range(1, n_steps + 1):
                idx, x_batch, y_batch = batches.next(step)
                # the five steps, once (Sequential.train_step): forward, zero, loss, backward, update
                if plain:
                    J = float(net.train_step(x_batch, y_batch, loss, opt.lr, before_update=checked,
                                             finite_below=flat.limit))  # type: ignore[union-attr]
                    opt.t += 1  # as SGD.step counts its updates
                elif parallel is None:
                    J = net.train_step(x_batch, y_batch, loss, optimizer=opt, before_update=checked)
                else:  # the same step on this rank's shard, the gradients all-reduced before the update
                    J = parallel.train_step(x_batch, y_batch, loss, opt, checked, len(idx), mean_loss)
                total += J * len(idx) if mean_loss else J
                self.last_finite = (J, epoch, step)
        return total / data.n if mean_loss else total

    # ------------------------------------------------------------ faults
    def diverged(self, epoch: int, step: int | str, n_steps: int, J: float) -> None:
        where = f"epoch {epoch}/{self.cfg['epochs']}, " + (f"step {step}/{n_steps}" if isinstance(step, int) else step)
        if not math.isfinite(J):
            what = f"the loss is {J}"
        else:
            bad = [name for name, layer, _, g in self.net.parameter_slots()
                   if not np.isfinite(to_numpy(layer.grads[g])).all()]
            what = f"the gradient of {', '.join(bad) or 'the parameters'} is non-finite (the loss was {J:.6g})"
        if _params_finite(self.net):
            kept = "the parameters are left at their last finite values (no update was applied)"
        else:
            self.restore_snapshot()
            kept = f"the parameters are restored to their values at the start of epoch {epoch}"
        last = (f"{self.last_finite[0]:.6g} (epoch {self.last_finite[1]}, step {self.last_finite[2]})"
                if self.last_finite else "none")
        lr = self.opt.lr
        summary = f"training diverged at {where}: {what}, with lr={lr:g}. The last finite loss was {last}; {kept}."
        err = DivergenceError(
            f"{summary} Try a smaller learning rate (e.g. lr={lr / 10:g}), gradient clipping (clip_grad_norm=1.0) "
            "or standardised inputs.")
        err.history, err.lr, err.summary = self.history, lr, summary
        raise err

    def snapshot(self) -> None:
        """Remember the state at the start of an epoch (the end of the last finished one)."""
        if self.snap is None:
            self.snap = {"params": {k: _clone(v) for k, v in self.net.params.items()}}
        else:
            for k, v in self.net.params.items():
                self.snap["params"][k][...] = v
        self.snap["opt"] = self.opt.state_dict()
        self.snap["rng"] = self.rng.bit_generator.state
        h = self.history
        self.snap["run"] = (len(h.records), h.best_epoch, h.stopped_early, h.stop_reason,
                            self.best_value, self.wait, self.best_params)

    def restore_snapshot(self) -> None:
        """Return to the start of the current epoch: weights, optimizer, generator, history, early stopping."""
        if self.snap is None:
            return
        for name, layer, key, _ in self.net.parameter_slots():
            layer.params[key][...] = self.snap["params"][name]
        self.opt.load_state_dict(self.snap["opt"])
        self.rng.bit_generator.state = self.snap["rng"]
        h = self.history
        n, h.best_epoch, h.stopped_early, h.stop_reason, self.best_value, self.wait, self.best_params = self.snap["run"]
        del h.records[n:], h.epoch_seconds[n:]

    # ------------------------------------------------------------ end of an epoch
    def end_epoch(self, epoch: int, running_loss: float, lr: float, seconds: float) -> dict[str, float]:
        record: dict[str, float] = {"epoch": epoch, "lr": lr}
        if self.cfg["train_metrics"]:
            record.update(_evaluate(self.net, self.loss, self.cfg["task"], self.data))
        else:
            record["loss"] = running_loss
        if self.val is not None:
            record.update({f"val_{k}": v for k, v in _evaluate(self.net, self.loss, self.cfg["task"], self.val).items()})
        for key in ("loss", "val_loss"):
            if key in record and not math.isfinite(record[key]):
                self.diverged(epoch, f"end-of-epoch evaluation ({key})", 0, record[key])
        self.history.records.append(record)
        self.history.epoch_seconds.append(seconds)
        self.track_best(epoch, record)
        return record

    def track_best(self, epoch: int, record: dict[str, float]) -> None:
        value = record["val_loss" if self.val is not None else "loss"]
        if value < self.best_value - self.cfg["min_delta"]:
            self.best_value, self.history.best_epoch, self.wait = value, epoch, 0
            if self.cfg["early_stopping"] and self.cfg["restore_best"]:
                self.best_params = {k: _clone(v) for k, v in self.net.params.items()}
        else:
            self.wait += 1

    def restore_best(self) -> None:
        if self.best_params is not None and self.history.best_epoch != len(self.history):
            for name, layer, key, _ in self.net.parameter_slots():
                layer.params[key][...] = self.best_params[name]

    # ------------------------------------------------------------ checkpoints
    def save(self, force: bool = False) -> None:
        """Write the checkpoint of the last finished epoch: the first time, when ``force``, or
        once the time since the last write is CHECKPOINT_RATIO times what that write took."""
        path = self.cfg["checkpoint"]
        if path is None or self.saved_epoch == self.epoch:
            return
        if (not force and self.saved_epoch is not None
                and time.monotonic() - self.saved_at < CHECKPOINT_RATIO * self.save_seconds):
            return
        if self.cfg["parallel"] is not None and not self.cfg["parallel"].writes_files:
            return  # rank 0 writes the one checkpoint
        from .io import Checkpoint, save_checkpoint  # imported only when checkpointing

        state = {"best_value": self.best_value if math.isfinite(self.best_value) else None, "wait": self.wait}
        t0 = time.monotonic()
        save_checkpoint(path, Checkpoint(
            net=self.net, epoch=self.epoch, optimizer_state=self.opt.state_dict(),
            rng_state=dict(self.rng.bit_generator.state), history=self.history.to_dict(),
            hyperparameters=self.cfg["hyper"], best_params=self.best_params, state=state))
        self.saved_epoch, self.saved_at = self.epoch, time.monotonic()
        self.save_seconds = self.saved_at - t0

    def resume(self, path: Any) -> None:
        from .io import load_checkpoint

        ckpt = load_checkpoint(path)
        _check_same(path, "architecture", ckpt.net.config(), self.net.config())
        _check_same(path, "training settings", ckpt.hyperparameters, self.cfg["hyper"], skip=("epochs", "seed"))
        for name, layer, key, _ in self.net.parameter_slots():
            layer.params[key][...] = self.net.backend.asarray(ckpt.net.params[name], layer.params[key].dtype)
        if ckpt.optimizer_state is not None:
            try:
                self.opt.load_state_dict(ckpt.optimizer_state)
            except (TypeError, ValueError) as exc:  # the file's fault: name it
                raise ModelFileError(f"{path}: cannot restore the checkpoint's optimizer state ({exc})") from None
        self.rng = _rng_from_state(path, ckpt.rng_state)
        self.history = History.from_dict(ckpt.history or {})
        self.epoch = self.saved_epoch = ckpt.epoch
        self.saved_at = time.monotonic()
        best = ckpt.state.get("best_value")
        self.best_value = float(best) if best is not None else math.inf
        self.wait = int(ckpt.state.get("wait", 0))
        if ckpt.best_params is not None:
            be = self.net.backend
            self.best_params = {k: be.asarray(v, v.dtype) for k, v in ckpt.best_params.items()}


def _check_same(path: Any, what: str, saved: dict, now: dict, skip: Sequence[str] = ()) -> None:
    if "layers" in saved or "layers" in now:
        diffs = _layer_diffs(saved.get("layers") or [], now.get("layers") or [])
    else:
        keys = sorted((set(saved) | set(now)) - set(skip))
        diffs = [f"{k}: checkpoint {saved.get(k)!r}, now {now.get(k)!r}" for k in keys if saved.get(k) != now.get(k)]
    if diffs:
        verb = "differs" if what == "architecture" else "differ"
        raise ModelFileError(f"{path}: cannot resume, the {what} {verb}: " + "; ".join(diffs))


def _layer_text(layer: dict | None) -> str:
    """{'type': 'Linear', 'in_features': 2, ...} -> 'Linear(in_features=2, ...)'."""
    if layer is None:
        return "nothing"
    args = ", ".join(f"{k}={v!r}" for k, v in layer.items() if k != "type")
    return f"{layer.get('type', '?')}({args})"


def _layer_diffs(saved: list, now: list) -> list[str]:
    """Each layer that differs, as 'layer i: checkpoint Linear(...), now Linear(...)'."""
    out = []
    for i in range(max(len(saved), len(now))):
        a = saved[i] if i < len(saved) else None
        b = now[i] if i < len(now) else None
        if a != b:
            out.append(f"layer {i}: checkpoint {_layer_text(a)}, now {_layer_text(b)}")
    return out


def _rng_from_state(path: Any, state: Any) -> np.random.Generator:
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in RNG_TYPES:
        raise ModelFileError(f"{path}: the checkpoint's random generator state is missing or unknown ({name!r})")
    bitgen = getattr(np.random, name)()
    try:
        bitgen.state = state
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelFileError(f"{path}: the checkpoint's random generator state is invalid ({exc})") from None
    return np.random.Generator(bitgen)


def _schedule_config(schedule: Any) -> Any:
    if schedule is None:
        return None
    return schedule.config() if isinstance(schedule, Schedule) else "callable"


def _call_callbacks(callbacks: Sequence[Any], hook: str, *args: Any) -> str | None:
    reason = None
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is None and hook == "on_epoch_end" and callable(cb):
            fn = cb
        if fn is None:
            continue
        result = fn(*args)
        if hook == "on_epoch_end" and (result is True or result == "stop") and reason is None:
            reason = f"callback {getattr(cb, '__name__', type(cb).__name__)} asked to stop"
    return reason


# ====================================================================== fit
def fit(
    net: Any,
    X: Any,
    y: Any,
    loss: Any = "mse",
    *,
    optimizer: str | Optimizer = "sgd",
    lr: float | None = None,
    epochs: int = 100,
    batch_size: int = 32,
    seed: int | np.random.Generator | None = 0,
    validation_data: tuple[Any, Any] | None = None,
    task: str | None = None,
    train_metrics: bool = True,
    early_stopping: bool = False,
    patience: int = 10,
    min_delta: float = 0.0,
    restore_best: bool = True,
    callbacks: Sequence[Any] = (),
    progress: bool = False,
    clip_grad_norm: float | None = None,
    schedule: str | Schedule | Callable[[int], float] | None = None,
    checkpoint: Any = None,
    resume: Any = None,
    distributed: Any = False,
) -> History:
    """Train ``net`` in place on (X, y) with shuffled mini-batches; return the :class:`History`.

    Parameters
    ----------
    net : a handgrad network (``MLP``, ``TwoLayerNet``, ``Sequential``).
    X : (n, in_features) inputs; y : (n,) or (n, K) targets, or (n,) class indices for
        cross-entropy. Checked once here: 2-D, finite, matching rows and widths.
    loss : a loss name ('mse', 'squared_error', 'bce', 'bce_with_logits', 'cross_entropy') or a Loss.
    optimizer : 'sgd', 'adam' or an :class:`~handgrad.optim.Optimizer` built on ``net``.
    lr : learning rate for a named optimizer (default: SGD 0.01, Adam 0.001).
    epochs : passes over the data; 0 leaves the parameters bitwise unchanged.
    batch_size : rows per step; larger than n means one full batch per epoch.
    seed : int, Generator or None (drawn and recorded in ``history.seed``) for the shuffles.
    validation_data : (X_val, y_val), evaluated after every epoch.
    task : 'regression' or 'classification' (metrics); default from the loss.
    train_metrics : evaluate loss and metrics on the whole training set after each epoch with
        the epoch's final weights (True), or record only the mean mini-batch loss (False, cheaper).
    early_stopping, patience, min_delta, restore_best : stop when the validation loss has not
        improved by more than ``min_delta`` for ``patience`` epochs, then restore the best weights.
    callbacks : objects with ``on_epoch_end(epoch, logs)`` (return True/'stop' to stop) or functions.
    progress : show a progress bar (rich on a terminal, else plain lines on stderr).
    clip_grad_norm : rescale the gradients to this global norm when it is exceeded.
    schedule : 'step', 'cosine', a :class:`~handgrad.optim.Schedule` or ``f(epoch) -> factor``;
        epoch e (0-based) trains at ``lr·factor``.
    checkpoint : path written atomically (weights, optimizer state, epoch, random state,
        history, settings) after the first epoch, then after an epoch once the time since
        the last write is CHECKPOINT_RATIO times what that write took (so writing costs
        about 1/CHECKPOINT_RATIO of the run: every epoch when epochs are long, every few
        dozen when a small network's epochs take a millisecond and a write with its fsync
        ten), always after the last epoch, and on Ctrl-C (the last finished epoch).
    resume : a checkpoint path; training continues from it to the same weights as an
        uninterrupted run. The settings (except ``epochs``) must match the checkpoint's.
    distributed : True to train data-parallel on ``torch.distributed`` (one process per replica,
        launched by torchrun or :func:`handgrad.distributed.launch`): each rank takes its shard of
        every batch and one all-reduce averages the gradients; rank 0 writes the checkpoint.
        Or a :class:`handgrad.distributed.DataParallel`. See ``docs/scaling.md``.

    Raises
    ------
    DivergenceError : a non-finite loss or gradient; names the epoch, step, lr and last finite
        loss; the parameters keep their last finite values. ``err.history`` holds the history.
    KeyboardInterrupt : re-raised after rolling back to (and saving) the last finished epoch.
    """
    check_network(net)
    loss = make_loss(loss)
    task = _check_task(task, loss)
    epochs = check_int("epochs", epochs, 0)
    batch_size = check_int("batch_size", batch_size, 1)
    patience = check_int("patience", patience, 1)
    min_delta = check_positive_float("min_delta", min_delta, allow_zero=True)
    clip = None if clip_grad_norm is None else check_positive_float("clip_grad_norm", clip_grad_norm)
    rng, drawn_seed = _seeded_rng(seed)
    opt = _make_optimizer(optimizer, net, lr)
    schedule = make_schedule(schedule, epochs)
    callbacks = list(callbacks)
    data = _prepare(net, X, y, loss, "training data")
    val = None if validation_data is None else _prepare(net, *_pair(validation_data), loss, "validation data")
    if early_stopping and val is None:
        raise ValueError("early_stopping needs validation_data=(X_val, y_val): it monitors the validation loss")
    _check_loss_pair(net, loss)
    base_lr = opt.lr
    hyper = {"loss": repr(loss), "task": task, "optimizer": opt.name, "optimizer_settings": opt.hyperparameters(),
             "batch_size": batch_size, "schedule": _schedule_config(schedule), "clip_grad_norm": clip,
             "early_stopping": bool(early_stopping), "patience": patience, "min_delta": min_delta,
             "restore_best": bool(restore_best), "train_metrics": bool(train_metrics), "epochs": epochs, "seed": drawn_seed}
    if checkpoint is not None or resume is not None:  # a checkpoint records which data it belongs to
        hyper["data"] = data.fingerprint
        hyper["validation_data"] = None if val is None else val.fingerprint
    cfg = {"epochs": epochs, "batch_size": min(batch_size, data.n), "clip_grad_norm": clip, "task": task,
           "train_metrics": bool(train_metrics), "early_stopping": bool(early_stopping), "patience": patience,
           "min_delta": min_delta, "restore_best": bool(restore_best), "checkpoint": checkpoint, "hyper": hyper,
           "seed": drawn_seed, "mean_loss": getattr(loss, "reduction", "mean") != "sum"}
    cfg["parallel"] = None
    if distributed is not False:
        from .distributed import data_parallel  # torch is imported only for a distributed run

        cfg["parallel"] = data_parallel(distributed, net, checkpoint=checkpoint)
    run = _Run(net, loss, opt, rng, data, val, cfg)
    if resume is not None:
        run.resume(resume)
    if cfg["parallel"] is not None:
        cfg["parallel"].broadcast_parameters()  # every replica starts from rank 0's weights
    _call_callbacks(callbacks, "on_train_begin", {"epochs": epochs, "initial_epoch": run.epoch, "task": task})
    bar = _Progress(progress, epochs, run.epoch, task)
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported as a DivergenceError
            _loop(run, schedule, base_lr, callbacks, bar)
        if cfg["parallel"] is not None:
            cfg["parallel"].barrier()  # rank 0 has written the last checkpoint before any rank returns
    except KeyboardInterrupt:
        bar.close()
        _interrupted(run)
    finally:
        bar.close()
    run.restore_best()
    _warn_if_still_improving(run)
    _call_callbacks(callbacks, "on_train_end", run.history)
    return run.history


def still_improving(history: History, epochs: int) -> bool:
    """Whether a run that used all ``epochs`` had its best validation loss in its last tenth (at least the last
    epoch): the loss was still going down when the epoch cap ended it."""
    if history.stopped_early or len(history) < max(epochs, 1) or not history.best_epoch:
        return False
    if not any("val_loss" in r for r in history.records):
        return False
    return history.best_epoch > len(history) - max(1, len(history) // 10)


def _warn_if_still_improving(run: _Run) -> None:
    h = run.history
    if run.val is not None and still_improving(h, run.cfg["epochs"]):
        warnings.warn(f"training ended at the epoch cap ({len(h)} epochs) while the validation loss was still "
                      f"improving (best epoch {h.best_epoch}); more epochs may help", ConvergenceWarning, stacklevel=3)


def _pair(validation_data: Any) -> tuple[Any, Any]:
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise TypeError(f"validation_data must be a pair (X_val, y_val), got {type(validation_data).__name__}")
    return validation_data[0], validation_data[1]


def _loop(run: _Run, schedule: Any, base_lr: float, callbacks: list, bar: _Progress) -> None:
    epochs = run.cfg["epochs"]
    if run.history.stopped_early or run.epoch >= epochs:
        return
    for e in range(run.epoch, epochs):
        run.snapshot()
        run.in_epoch = True
        run.opt.lr = base_lr * float(schedule(e)) if schedule is not None else base_lr
        t0 = time.perf_counter()
        running = run.train_epoch(e + 1)
        record = run.end_epoch(e + 1, running, run.opt.lr, time.perf_counter() - t0)
        reason = _call_callbacks(callbacks, "on_epoch_end", e + 1, dict(record))
        if reason is None and run.cfg["early_stopping"] and run.wait >= run.cfg["patience"]:
            reason = (f"early stopping: val_loss did not improve for {run.cfg['patience']} epochs "
                      f"(best {run.best_value:.6g} at epoch {run.history.best_epoch})")
        if run.cfg["parallel"] is not None:
            reason = run.cfg["parallel"].agree(reason)  # every rank stops at the same epoch
        if reason is not None:
            run.history.stopped_early, run.history.stop_reason = True, reason
        run.epoch = e + 1
        run.in_epoch = False
        bar.update(record)
        run.save(force=reason is not None or run.epoch == epochs)
        if reason is not None:
            return


def _interrupted(run: _Run) -> None:
    epoch_now = run.epoch + 1
    if run.in_epoch:
        run.restore_snapshot()
        run.in_epoch = False
    path = run.cfg["checkpoint"]
    if path is not None and run.epoch > 0 and run.saved_epoch != run.epoch:
        run.save(force=True)
    if path is not None and run.epoch > 0:
        how = (f"epoch {run.epoch} is saved in {str(path)!r}; resume with fit(..., resume={str(path)!r}) "
               f"(CLI: add --resume {path})")
    else:
        how = "no checkpoint= path was given, so nothing was saved; pass checkpoint=PATH to make a run resumable"
    raise KeyboardInterrupt(f"training interrupted during epoch {epoch_now}/{run.cfg['epochs']}; the network holds "
                            f"the weights of the last finished epoch ({run.epoch}); {how}") from None


__all__ = [
    "Callback", "History", "still_improving", "evaluate", "fit", "infer_task", "predict", "predict_labels", "predict_proba",
]
