r"""Data-parallel training on ``torch.distributed``: one replica per process, one all-reduce per step.

Every process holds the whole network and the whole data set. Each step, the global
mini-batch of B rows (the same seeded permutation on every rank) is cut into one
contiguous shard per rank; rank r runs handgrad's own forward and backward on its n_r
rows, and the gradients are averaged with a single all-reduce before the update::

    dJ/dθ = Σ_r (n_r / B) · dJ_r/dθ          J = Σ_r (n_r / B) · J_r        (mean losses)

(a loss that sums over rows is summed instead). The all-reduce carries the network's flat
gradient array(s) and J in one buffer, so every rank receives bitwise the same numbers
and applies the same update: the replicas never drift apart, and a non-finite J or
gradient stops every rank at the same step. Rank 0 broadcasts the initial weights,
writes the checkpoints, and the ranks agree on stopping after every epoch.

In Python::

    from handgrad.distributed import launch
    from handgrad.train import fit

    def work(rank, world_size):              # runs in each of the processes
        net = MLP(2, [64], 1, seed=0)
        fit(net, X, y, "mse", distributed=True, checkpoint="run.ckpt")

    launch(work, nproc=2)                    # spawns 2 local processes (gloo on 127.0.0.1)

``fit(..., distributed=True)`` also runs under ``torchrun``, which sets ``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``. gloo is used on CPUs, NCCL when
the network lives on a CUDA device. torch is imported only here, only when asked for.
"""

from __future__ import annotations

import atexit
import os
import socket
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np

INSTALL_HINT = "install the distributed extra: pip install 'handgrad[distributed]'"
DEFAULT_TIMEOUT = 300.0  # seconds a collective waits for a silent peer before every rank gives up


class DistributedError(RuntimeError):
    """A distributed run cannot go on: a peer process died, timed out or failed to start."""


def _torch_distributed() -> Any:
    from .optional import require

    dist = require("torch.distributed", extra="distributed",
                   purpose="distributed training (--nproc, torchrun, fit(..., distributed=True))")
    if not dist.is_available():
        raise ImportError("this PyTorch build has no torch.distributed; " + INSTALL_HINT)
    return dist


def _env_int(name: str) -> int:
    value = os.environ.get(name)
    if value is None or not value.strip().lstrip("-").isdigit():
        raise DistributedError(f"distributed=True needs the environment variable {name} (an integer, as set by "
                               f"torchrun or handgrad.distributed.launch), got {value!r}")
    return int(value)


def launched() -> bool:
    """Whether this process was started by a launcher (``RANK`` and ``WORLD_SIZE`` are set)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_process_group(backend: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> tuple[int, int]:
    """Join the process group described by the environment (torchrun's variables) once;
    return ``(rank, world_size)``. ``backend``: 'gloo' (CPUs) or 'nccl' (GPUs); default gloo."""
    dist = _torch_distributed()
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
    if not 0 <= rank < world:
        raise DistributedError(f"RANK must lie in 0..WORLD_SIZE-1 = 0..{world - 1}, got {rank}")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    if "MASTER_PORT" not in os.environ:
        raise DistributedError("distributed=True needs MASTER_PORT (and MASTER_ADDR) in the environment, as set by "
                               "torchrun or handgrad.distributed.launch")
    loopback = [name for _, name in socket.if_nameindex() if name in ("lo", "lo0")]
    if os.environ["MASTER_ADDR"] in ("127.0.0.1", "localhost") and loopback and "GLOO_SOCKET_IFNAME" not in os.environ:
        os.environ["GLOO_SOCKET_IFNAME"] = loopback[0]  # all ranks are local: gloo need not resolve the host name
    try:
        dist.init_process_group(backend or "gloo", init_method="env://", rank=rank, world_size=world,
                                timeout=timedelta(seconds=timeout))
    except (RuntimeError, ValueError) as exc:
        raise DistributedError(f"rank {rank}/{world} could not join the process group at "
                               f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}: {_first_line(exc)}") from None
    # A group still open when the interpreter finalises leaves gloo's threads to be torn down with it, which
    # can abort the process ("terminate called without an active exception") after a finished run; the group
    # this function opened is closed at exit instead.
    atexit.register(_close_group)
    return rank, world


def _close_group() -> None:
    dist = _torch_distributed()
    try:
        if dist.is_initialized():
            dist.destroy_process_group()
    except RuntimeError:
        pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ====================================================================== the replica's side
class DataParallel:
    """A network's link to the other replicas: shards batches, averages gradients, agrees.

    ``fit(..., distributed=True)`` builds one; pass your own (``distributed=DataParallel(net)``)
    to choose the process group. Every method is a collective: all ranks call it in the same order.
    """

    def __init__(self, net: Any, *, group: Any = None, checkpoint: Any = None) -> None:
        dist = _torch_distributed()
        if not dist.is_initialized():
            raise DistributedError("DataParallel needs an initialised process group: call "
                                   "handgrad.distributed.init_process_group() first (or fit(..., distributed=True))")
        self.dist, self.net, self.group, self.checkpoint = dist, net, group, checkpoint
        self.rank, self.world_size = dist.get_rank(group), dist.get_world_size(group)
        self.steps = 0
        self.seconds_in_allreduce = 0.0  # for benchmarks: time spent in the step's all-reduce (copies included)
        self._buffer: Any = None

    def __repr__(self) -> str:
        return f"DataParallel(rank={self.rank}, world_size={self.world_size}, backend={self.dist.get_backend(self.group)!r})"

    # ------------------------------------------------------------ what is exchanged
    def gradient_arrays(self) -> list[Any]:
        """The gradient storage exchanged each step: one flat array per packed layer (an MLP's
        layers are views of one array, which is then used whole), else each gradient array."""
        arrays: list[Any] = []
        for _, layer in self.net.named_layers():
            store = layer.packed()
            arrays.extend([store.grad] if store is not None else [layer.grads["dJ_d" + k] for k in layer.params])
        base = getattr(arrays[0], "base", None) if arrays else None
        if isinstance(base, np.ndarray) and base.ndim == 1 and all(a.base is base for a in arrays) \
                and sum(a.size for a in arrays) == base.size:
            return [base]  # the network's one flat dJ/dθ
        return arrays

    def _flat_buffer(self, arrays: list[Any]) -> tuple[Any, Any]:
        """A reused 1-D buffer of the gradients' size + 1 (for J), and the torch tensor over it."""
        size = sum(int(np.prod(a.shape)) for a in arrays) + 1
        if self._buffer is None or self._buffer[0].shape[0] != size:
            if isinstance(arrays[0], np.ndarray):
                import torch

                buf = np.empty(size, arrays[0].dtype)
                self._buffer = (buf, torch.from_numpy(buf))  # shares the memory: no copy
            else:
                buf = arrays[0].new_empty(size)
                self._buffer = (buf, buf)
        return self._buffer

    def _collective(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args, group=self.group)
        except RuntimeError as exc:
            self._leave()
            resume = (f"; the last checkpoint resumes the run: fit(..., resume={str(self.checkpoint)!r}) or "
                      f"handgrad train ... --resume {self.checkpoint}" if self.checkpoint is not None else
                      "; pass checkpoint=PATH to make a run resumable")
            raise DistributedError(f"rank {self.rank}/{self.world_size}: {what} failed after {self.steps} steps: "
                                   f"another process died or stopped answering ({_first_line(exc)}){resume}") from None

    def _leave(self) -> None:
        """Leave a broken group now, so that this process exits cleanly rather than in gloo's teardown."""
        try:
            if self.dist.is_initialized():
                self.dist.destroy_process_group()
        except RuntimeError:
            pass

    # ------------------------------------------------------------ collectives
    def broadcast_parameters(self, src: int = 0) -> None:
        """Every replica takes rank ``src``'s weights (in place: packed storage stays packed)."""
        slots = self.net.parameter_slots()
        arrays = [layer.params[key] for _, layer, key, _ in slots]
        buf, tensor = self._flat_buffer(arrays)
        _gather(arrays, buf)
        self._collective("broadcasting the initial weights", self.dist.broadcast, tensor, src)
        _scatter(buf, arrays)

    def shard(self, idx: np.ndarray) -> np.ndarray:
        """This rank's contiguous part of a global batch's row indices (sizes differ by at most 1)."""
        n, r, w = len(idx), self.rank, self.world_size
        return idx[r * n // w: (r + 1) * n // w]

    def averaged(self, then: Callable[[Any], Any], n_global: int, mean: bool = True) -> Callable[[Any], Any]:
        """A ``before_update`` hook for :meth:`Sequential.train_step`: all-reduce this rank's
        gradients and J (weighted by its share of the rows when the loss is a mean), then call
        ``then(J)`` with the global batch's J (clipping, divergence checks)."""
        r, w = self.rank, self.world_size
        n_local = (r + 1) * n_global // w - r * n_global // w  # len(self.shard(rows)), without the rows

        def hook(J: Any) -> Any:
            t0 = time.perf_counter()
            arrays = self.gradient_arrays()
            buf, tensor = self._flat_buffer(arrays)
            weight = n_local / n_global if mean else 1.0
            if n_local == 0:  # more ranks than rows in this batch: contribute nothing
                buf[:] = 0
            else:
                _gather(arrays, buf)
                buf[-1] = float(J)
                if weight != 1.0:
                    buf *= weight
            self._collective("the gradient all-reduce", self.dist.all_reduce, tensor)
            _scatter(buf, arrays)
            self.steps += 1
            self.seconds_in_allreduce += time.perf_counter() - t0
            return then(float(buf[-1]))

        return hook

    def train_step(self, x: Any, y: Any, loss: Any, optimizer: Any, then: Callable[[Any], Any], n_global: int,
                   mean: bool = True) -> Any:
        """:meth:`Sequential.train_step` on this rank's shard (x, y) of a global batch of
        ``n_global`` rows, with :meth:`averaged` as its ``before_update``. A rank whose shard is
        empty (fewer rows than ranks) still takes part: zero gradients, the all-reduce, the update."""
        hook = self.averaged(then, n_global, mean)
        if len(x):
            return self.net.train_step(x, y, loss, optimizer=optimizer, before_update=hook)
        self.net.zero_grad()
        J = hook(0.0)
        optimizer.step()
        return J

    def agree(self, reason: str | None) -> str | None:
        """One stop decision for all ranks after an epoch: the first rank's reason to stop, if any."""
        reasons: list[Any] = [None] * self.world_size
        self._collective("agreeing on stopping", self.dist.all_gather_object, reasons, reason)
        return next((r for r in reasons if r is not None), None)

    def barrier(self) -> None:
        """Wait until every rank is here (the end of ``fit``: rank 0's files are complete)."""
        self._collective("waiting for the other ranks", self.dist.barrier)

    @property
    def writes_files(self) -> bool:
        """Whether this rank writes checkpoints and results (rank 0 only)."""
        return self.rank == 0


def _gather(arrays: list[Any], buf: Any) -> None:
    start = 0
    for a in arrays:
        n = int(np.prod(a.shape))
        buf[start:start + n] = a.reshape(-1)
        start += n


def _scatter(buf: Any, arrays: list[Any]) -> None:
    start = 0
    for a in arrays:
        n = int(np.prod(a.shape))
        a[...] = buf[start:start + n].reshape(a.shape)  # in place, in C order, whatever a's memory layout (W is a transposed view)
        start += n


def data_parallel(distributed: Any, net: Any, checkpoint: Any = None, timeout: float = DEFAULT_TIMEOUT) -> DataParallel:
    """``fit``'s ``distributed=`` argument to a :class:`DataParallel`: True joins the process
    group described by the environment (gloo on CPUs, NCCL for a CUDA network)."""
    if isinstance(distributed, DataParallel):
        if distributed.net is not net:
            raise ValueError("the DataParallel was built for a different network")
        distributed.checkpoint = checkpoint
        return distributed
    if distributed is not True:
        raise TypeError(f"distributed must be True, False or a DataParallel, got {distributed!r}")
    device = getattr(next(iter(net.params.values()), None), "device", None)
    backend = "nccl" if getattr(device, "type", None) == "cuda" else "gloo"
    if backend == "nccl":
        import torch

        torch.cuda.set_device(device)  # NCCL's collectives (and all_gather_object) use the current device
    init_process_group(backend, timeout)
    return DataParallel(net, checkpoint=checkpoint)


# ====================================================================== the launcher
def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (for the rendezvous of local processes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _worker(local_rank: int, fn: Callable[..., Any], world_size: int, port: int, args: tuple) -> None:
    os.environ.update({"RANK": str(local_rank), "LOCAL_RANK": str(local_rank), "WORLD_SIZE": str(world_size),
                       "LOCAL_WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    try:
        fn(local_rank, world_size, *args)
    finally:
        dist = _torch_distributed()
        if dist.is_initialized():
            dist.destroy_process_group()


def launch(fn: Callable[..., Any], nproc: int, args: tuple = (), *, threads: int | None = None) -> None:
    """Run ``fn(rank, world_size, *args)`` in ``nproc`` new local processes joined on 127.0.0.1.

    In a process that a launcher already started (torchrun: ``RANK`` and ``WORLD_SIZE`` set),
    ``fn`` runs here as that rank instead, so one script serves both. The processes are watched: when one fails or dies, the others are stopped and
    :class:`DistributedError` names the rank and its error. ``fn`` must be importable
    (a module-level function): the processes are spawned, not forked. ``threads`` sets
    each process's BLAS/OpenMP threads (default: the cores divided among the processes).
    """
    from .validation import check_int

    nproc = check_int("nproc", nproc, 1)
    _torch_distributed()
    if launched():
        fn(_env_int("RANK"), _env_int("WORLD_SIZE"), *args)
        return
    import torch.multiprocessing as mp

    threads = threads or max(1, (os.cpu_count() or 1) // nproc)
    settings = {k: str(threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)  # inherited by the spawned processes
    try:
        mp.start_processes(_worker, args=(fn, nproc, free_port(), tuple(args)), nprocs=nproc, join=True,
                           start_method="spawn")
    except mp.ProcessRaisedException as exc:
        raise DistributedError(f"rank {exc.error_index} of {nproc} failed: {_last_line(str(exc))}") from None
    except mp.ProcessExitedException as exc:
        raise DistributedError(f"rank {exc.error_index} of {nproc} died ({_first_line(exc)}); the other ranks "
                               "were stopped") from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _last_line(traceback_text: str) -> str:
    lines = [line for line in traceback_text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "unknown error"


__all__ = ["DataParallel", "DistributedError", "data_parallel", "free_port", "init_process_group", "launch",
           "launched"]

