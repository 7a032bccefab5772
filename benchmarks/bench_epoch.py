"""Whole epochs on MNIST-sized synthetic data against the sum of their steps, and peak memory.

Data: 60,000 x 784 float32 inputs and 10 one-hot float32 targets (about 190 MB), network
784 -> 128 -> 10 (ReLU, sigmoid, BCE; or softmax + cross-entropy with --loss ce), batch 64,
plain SGD (lr 0.01), 2 BLAS threads (--threads). "Sum of steps" times the step ``fit`` takes
(``Sequential.train_step``) on one fixed batch and multiplies by the number of batches (937
of 64 rows and one of 32); the seed's five separate calls are timed beside it. An epoch
draws a fresh permutation, gathers each batch as new arrays (``X.take``; also timed: into
two reused buffers with ``np.take(..., out=)``, and one step ahead in a second thread) and
takes fit's step per batch, without fit's divergence check.
``handgrad.train.fit`` runs one epoch three ways (``handgrad.train.GATHER_AHEAD``): each
batch gathered in the loop, one step ahead in a background thread, and the default, which
measures both at the start of the epoch and keeps the faster. Their ratios to the sum of
steps show what batching, shuffling and fit's divergence checks cost. A third baseline times the
steps on an epoch's own batches, gathered beforehand: steps that read their batch from memory, as
an epoch's do, without the gathering. Peak memory is
measured with tracemalloc (every NumPy allocation) in a separate epoch, and reported above
the data's own size.

    python benchmarks/bench_epoch.py              # 3 interleaved rounds, about 30 s
    python benchmarks/bench_epoch.py --rounds 7   # more rounds on a busy machine
    python benchmarks/bench_epoch.py --rounds 7 --threads 1 --idle 50   # each round waits for a free core
    python benchmarks/bench_epoch.py --quick      # 1 round
"""

from __future__ import annotations

import argparse
import os
import queue
import resource
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable

# BLAS threads (--threads N, default 2), set before NumPy loads its BLAS. On a machine whose
# cores are busy with other work, 2 threads that wait for each other can make a step many
# times slower; --threads 1 then gives the steadier comparison.
THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv[:-1] else 2
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

import numpy as np  # noqa: E402

N_SAMPLES, N_IN, N_HIDDEN, N_OUT, BATCH, LR = 60_000, 784, 128, 10, 64, 0.01


def make_data(rng: np.random.Generator, loss: str) -> tuple[np.ndarray, np.ndarray]:
    X = rng.standard_normal((N_SAMPLES, N_IN), dtype=np.float32)
    labels = rng.integers(0, N_OUT, N_SAMPLES)
    if loss == "ce":
        return X, labels
    Y = np.zeros((N_SAMPLES, N_OUT), np.float32)
    Y[np.arange(N_SAMPLES), labels] = 1.0
    return X, Y


def make_net(loss: str):
    from handgrad import MLP, SGD, make_loss

    g, name = ("softmax", "cross_entropy") if loss == "ce" else ("sigmoid", "bce")
    net = MLP(N_IN, [N_HIDDEN], N_OUT, f="relu", g=g, seed=0, dtype=np.float32)
    return net, make_loss(name), SGD(net, lr=LR)


def step(net, loss, opt, x: np.ndarray, y: np.ndarray) -> float:
    net.forward(x)                       # 1. forward
    net.zero_grad()                      # 3. clear the gradients
    J = net.backward_loss(loss, y)       # 2 + 4. loss and backward
    opt.step()                           # 5. update
    return J


def gather_into_buffers(X: np.ndarray, Y: np.ndarray) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Rows idx of X and Y, full batches into two reused buffers (np.take(..., out=))."""
    x_buf, y_buf = np.empty((BATCH, *X.shape[1:]), X.dtype), np.empty((BATCH, *Y.shape[1:]), Y.dtype)

    def gather(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(idx) != BATCH:
            return X.take(idx, axis=0), Y.take(idx, axis=0)
        return np.take(X, idx, axis=0, out=x_buf, mode="clip"), np.take(Y, idx, axis=0, out=y_buf, mode="clip")

    return gather


def gather_fresh(X: np.ndarray, Y: np.ndarray) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Rows idx of X and Y as new arrays (X.take, as handgrad.train.fit does)."""
    return lambda idx: (X.take(idx, axis=0), Y.take(idx, axis=0))


GATHERS = {"buffers": gather_into_buffers, "fresh": gather_fresh}


def epoch(net, loss, opt, X: np.ndarray, Y: np.ndarray, rng: np.random.Generator, how: str = "fresh") -> float:
    """One epoch of fit's step (train_step, no divergence check) over the shuffled batches."""
    order = rng.permutation(X.shape[0])  # shuffling
    if how == "ahead":
        return epoch_ahead(net, loss, opt, X, Y, order)
    gather = GATHERS[how](X, Y)
    total = 0.0
    for start in range(0, X.shape[0], BATCH):
        total += float(train_step(net, loss, opt, *gather(order[start:start + BATCH])))  # batching: gathered rows
    return total


def epoch_ahead(net, loss, opt, X: np.ndarray, Y: np.ndarray, order: np.ndarray) -> float:
    """The epoch with batch k + 1 gathered (X.take) in a second thread while step k runs,
    handed over through two queues, as ``fit`` does when it gathers ahead."""
    rows: queue.SimpleQueue = queue.SimpleQueue()
    batches: queue.SimpleQueue = queue.SimpleQueue()

    def gather() -> None:
        while (idx := rows.get()) is not None:
            batches.put((X.take(idx, axis=0), Y.take(idx, axis=0)))

    thread = threading.Thread(target=gather, daemon=True)
    thread.start()
    rows.put(order[:BATCH])
    total = 0.0
    for start in range(0, X.shape[0], BATCH):
        x, y = batches.get()
        if start + BATCH < X.shape[0]:
            rows.put(order[start + BATCH:start + 2 * BATCH])
        total += float(train_step(net, loss, opt, x, y))
    rows.put(None)
    thread.join()
    return total


def gather_epoch(X: np.ndarray, Y: np.ndarray, rng: np.random.Generator, how: str = "fresh") -> float:
    """An epoch's shuffling and batching alone (the same permutation and gathers, no steps)."""
    t0 = time.perf_counter()
    order = rng.permutation(X.shape[0])
    gather = GATHERS[how](X, Y)
    for start in range(0, X.shape[0], BATCH):
        gather(order[start:start + BATCH])
    return time.perf_counter() - t0


def train_step(net, loss, opt, x: np.ndarray, y: np.ndarray) -> float:
    """The step ``fit`` takes (``Sequential.train_step``: the same five steps, the gradients'
    zeroing folded into the backward), without fit's divergence check."""
    return net.train_step(x, y, loss, optimizer=opt)


def time_steps(net, loss, opt, X, Y, n_steps: int, how: Callable = step) -> float:
    """Best per-step time over blocks of steps on one fixed batch."""
    x, y = X[:BATCH], Y[:BATCH]
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n_steps):
            how(net, loss, opt, x, y)
        times.append((time.perf_counter() - t0) / n_steps)
    return min(times)


def steps_on_own_batches(net, loss, opt, X: np.ndarray, Y: np.ndarray, rng: np.random.Generator) -> float:
    """An epoch's train_steps on the batches an epoch would use (one permutation), all gathered
    beforehand and timed without the gathering: what the steps cost reading batches that come from
    memory rather than from the cache that one fixed batch stays in."""
    order = rng.permutation(X.shape[0])
    batches = [(X.take(order[s:s + BATCH], axis=0), Y.take(order[s:s + BATCH], axis=0))
               for s in range(0, X.shape[0], BATCH)]
    t0 = time.perf_counter()
    for x, y in batches:
        train_step(net, loss, opt, x, y)
    return time.perf_counter() - t0


def time_last_batch(net, loss, opt, X, Y, how: Callable = step) -> float:
    rest = X.shape[0] % BATCH
    if not rest:
        return 0.0
    x, y = X[:rest], Y[:rest]
    for _ in range(3):
        how(net, loss, opt, x, y)
    t0 = time.perf_counter()
    for _ in range(50):
        how(net, loss, opt, x, y)
    return (time.perf_counter() - t0) / 50


FIT_WAYS = {"fit": None, "fit, in the loop": False, "fit, ahead": True}  # handgrad.train.GATHER_AHEAD


def fit_epoch(X, Y, loss: str, ahead: bool | None = None) -> float:
    """One epoch of handgrad.train.fit (its loop: the divergence check of J and the gradient
    norm every step, its batches gathered with X.take -- in the loop, one step ahead in a
    background thread, or, by default, whichever it measures faster), as fit records it in
    ``History.epoch_seconds`` (its one-time check of the data is before the first epoch)."""
    import handgrad.train as T

    net, loss_fn, _ = make_net(loss)
    T.GATHER_AHEAD = ahead
    try:
        history = T.fit(net, X, Y, loss_fn, optimizer="sgd", lr=LR, epochs=1, batch_size=BATCH, seed=0,
                        train_metrics=False)
    finally:
        T.GATHER_AHEAD = None
    return history.epoch_seconds[0]


def cpu_idle(seconds: float = 1.0) -> float:
    """Percent of all CPUs' time spent idle over the next ``seconds`` (from /proc/stat)."""
    def sample() -> list[int]:
        with open("/proc/stat") as f:
            return [int(v) for v in f.readline().split()[1:9]]

    a = sample()
    time.sleep(seconds)
    b = sample()
    busy_idle = [y - x for x, y in zip(a, b)]
    return 100.0 * (busy_idle[3] + busy_idle[4]) / max(1, sum(busy_idle))


def wait_until_idle(pct: float, limit: float = 120.0) -> float:
    """Wait until the CPUs were at least ``pct``% idle over one second, or ``limit`` seconds; the last idle %."""
    t0 = time.perf_counter()
    while (idle := cpu_idle()) < pct and time.perf_counter() - t0 < limit:
        pass
    return idle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one epoch instead of three")
    parser.add_argument("--loss", choices=("bce", "ce"), default="bce",
                        help="bce: sigmoid + BCE on one-hot rows (default); ce: softmax + cross-entropy on labels")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3; --quick: 1)")
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads (default 2)")
    parser.add_argument("--idle", type=float, default=0.0, metavar="PCT",
                        help="on a shared machine: before each round, wait (up to 2 minutes) until the CPUs "
                             "were at least PCT%% idle over one second (Linux; default 0: no wait)")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=THREADS)
    load0 = os.getloadavg()[0]
    rng = np.random.default_rng(0)
    X, Y = make_data(rng, args.loss)
    data_mb = (X.nbytes + Y.nbytes) / 2**20
    n_full, rest = divmod(N_SAMPLES, BATCH)
    print(f"data: {N_SAMPLES} x {N_IN} float32 + targets = {data_mb:.0f} MB; network {N_IN}->{N_HIDDEN}->{N_OUT}, "
          f"batch {BATCH}, {n_full + bool(rest)} steps per epoch, loss {args.loss}, {THREADS} BLAS thread(s)", flush=True)

    net, loss, opt = make_net(args.loss)
    epoch(net, loss, opt, X[:BATCH * 50], Y[:BATCH * 50], rng)  # warm up
    t_rest = time_last_batch(net, loss, opt, X, Y)
    t_rest_fit = time_last_batch(net, loss, opt, X, Y, train_step)
    names = ("step", "train_step", "steps, own batches", "epoch", "epoch, reused buffers", "epoch, ahead", *FIT_WAYS, "gather", "gather, reused buffers")
    runs: dict[str, list[float]] = {name: [] for name in names}
    idle_seen = []
    for _ in range(1 if args.quick else args.rounds):  # interleaved, so that drifting load hits all alike
        if args.idle > 0:
            idle_seen.append(wait_until_idle(args.idle))
        runs["step"].append(time_steps(net, loss, opt, X, Y, 150))
        runs["train_step"].append(time_steps(net, loss, opt, X, Y, 150, train_step))
        runs["steps, own batches"].append(steps_on_own_batches(net, loss, opt, X, Y, rng))
        for how, name in (("fresh", "epoch"), ("buffers", "epoch, reused buffers"), ("ahead", "epoch, ahead")):
            t0 = time.perf_counter()
            epoch(net, loss, opt, X, Y, rng, how)
            runs[name].append(time.perf_counter() - t0)
        for name, ahead in FIT_WAYS.items():
            runs[name].append(fit_epoch(X, Y, args.loss, ahead))
        runs["gather"].append(gather_epoch(X, Y, rng, "fresh"))
        runs["gather, reused buffers"].append(gather_epoch(X, Y, rng, "buffers"))
    best = {name: min(ts) for name, ts in runs.items()}  # min over rounds: least disturbed by other load
    sum_seed = n_full * best["step"] + t_rest
    sum_steps = n_full * best["train_step"] + t_rest_fit

    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    net2, loss2, opt2 = make_net(args.loss)
    epoch(net2, loss2, opt2, X, Y, rng)
    peak = (tracemalloc.get_traced_memory()[1] - base) / 2**20
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # KiB on Linux

    def spread(name: str) -> str:
        ts = runs[name]
        return f"spread {max(ts) / min(ts):.2f}" if len(ts) > 1 else "spread: one round"

    print(f"min over {len(runs['step'])} interleaved rounds ({'; '.join(f'{n}: {spread(n)}' for n in names)})")
    print(f"one step (batch {BATCH}), the seed's five calls: {best['step'] * 1e6:8.1f} µs  "
          f"(sum of an epoch's: {sum_seed:.3f} s)")
    print(f"one step (batch {BATCH}), fit's train_step:      {best['train_step'] * 1e6:8.1f} µs  "
          f"({BATCH / best['train_step'] / 1e3:.0f} k samples/s)")
    print(f"sum of an epoch's steps:  {sum_steps:8.3f} s  ({n_full + bool(rest)} train_steps; the ratios below divide by it)")
    own = best["steps, own batches"]
    print(f"the same steps on an epoch's own batches, gathered beforehand: {own:8.3f} s  ({own / sum_steps:.3f}x)")
    rows = [("one step (batch 64), on one fixed batch", best["train_step"], None),
            (f"sum of an epoch's {n_full + bool(rest)} steps", sum_steps, sum_steps),
            ("the same steps on an epoch's own batches, gathered beforehand (no gathering timed)", own, own)]
    for name, label in (("epoch", "whole epoch, batches gathered as new arrays"),
                        ("epoch, reused buffers", "whole epoch, batches gathered into reused buffers"),
                        ("epoch, ahead", "whole epoch, each batch gathered one step ahead in a thread"),
                        ("fit, in the loop", "handgrad.train.fit, one epoch, gathering in the loop"),
                        ("fit, ahead", "handgrad.train.fit, one epoch, gathering one step ahead"),
                        ("fit", "handgrad.train.fit, one epoch (default: the faster way, measured)")):
        t = best[name]
        print(f"{label}: {t:8.3f} s  ({N_SAMPLES / t / 1e3:.0f} k samples/s)")
        print(f"  epoch / sum of steps:   {t / sum_steps:8.3f}x   (/ steps on its own batches: {t / own:.3f}x)")
        rows.append((label, t, t))
    for name, label in (("gather", "shuffling + gathering as new arrays alone"),
                        ("gather, reused buffers", "shuffling + gathering into buffers alone")):
        print(f"{label}: {best[name]:8.3f} s  ({best[name] / sum_steps:.1%} of the sum of steps)")
        rows.append((label, best[name], best[name]))
    print(f"\n| (min over {len(runs['step'])} interleaved rounds, {THREADS} BLAS thread(s)) | time | / sum of steps "
          "| / steps on own batches |")
    print("|---|---:|---:|---:|")
    for label, t, r in rows:
        shown = f"{t * 1e6:.0f} µs" if t < 0.01 else f"{t:.3f} s"
        print(f"| {label} | {shown} | {'' if r is None else f'{r / sum_steps:.3f}x'} "
              f"| {'' if r is None else f'{r / own:.3f}x'} |")
    print(f"peak memory above the data during an epoch (tracemalloc): {peak:.1f} MB; data {data_mb:.0f} MB; "
          f"process max RSS {rss:.0f} MB")
    if idle_seen:
        print(f"idle before each round (--idle {args.idle:g}): {', '.join(f'{p:.0f}%' for p in idle_seen)}")
    print(f"load average (1 min) before {load0:.2f}, after {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
