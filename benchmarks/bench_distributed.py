"""Data-parallel training: time per epoch and the all-reduce's share, 1 and 2 processes, and a model of N machines.

For a small and a large MLP (float32, ReLU, softmax + cross-entropy, plain SGD, synthetic
data), each row trains `handgrad.train.fit` for a few epochs in freshly spawned processes
and reports the median epoch time after the first:

- handgrad, 1 process, 1 BLAS thread, and 1 process, 2 BLAS threads (no torch.distributed);
- handgrad, 2 processes x 1 thread, `fit(..., distributed=True)` over gloo on 127.0.0.1,
  with the share of the epoch spent in the step's all-reduce (copies in and out included);
- PyTorch DistributedDataParallel, 2 processes x 1 thread, on the same network and batches
  (its all-reduce overlaps the backward, so no share is printed).

On a machine with 2 cores, 2 processes can at best halve the 1-thread epoch, and they
compete with a single process that simply uses both cores for its BLAS calls; on a
shared machine other jobs take cores too (the load average is printed). What the
figures do measure is the cost of the exchange: gloo over loopback is memory copies.

The model of N machines: with the global batch fixed, a step costs the measured 1-thread
compute t_c split N ways, plus a ring all-reduce of the P parameters (4 bytes each), which
sends 2(N-1)/N * 4P bytes per machine and takes 2(N-1) message latencies:

    t_step(N) = t_c / N + 2(N-1)/N * 4P / bandwidth + 2(N-1) * latency

at a stated bandwidth and latency (default 10 Gbit/s Ethernet: 1.25 GB/s, 30 us).
handgrad starts the all-reduce after the whole backward, so nothing is overlapped; the
model also assumes a shard's compute scales with its rows (small shards run BLAS less
efficiently, so it is optimistic).

    python benchmarks/bench_distributed.py            # about a minute on 2 cores
    python benchmarks/bench_distributed.py --quick    # fewer rows and epochs
    python benchmarks/bench_distributed.py --bandwidth-gbit 100 --latency-us 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

# name: (in_features, hidden sizes, classes, rows, batch)
NETS = {
    "small": (32, [64], 10, 16384, 64),
    "large": (256, [1024, 1024], 10, 4096, 256),
}
LR = 0.01


def make_data(name: str, rows: int) -> tuple[np.ndarray, np.ndarray]:
    n_in, _, k, _, _ = NETS[name]
    rng = np.random.default_rng(0)
    return rng.standard_normal((rows, n_in), dtype=np.float32), rng.integers(0, k, rows)


def n_parameters(name: str) -> int:
    n_in, hidden, k, _, _ = NETS[name]
    sizes = [n_in, *hidden, k]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


# ====================================================================== the workers (spawned processes)
def handgrad_worker(rank: int, world: int, name: str, rows: int, epochs: int, path: str) -> None:
    import handgrad as hg
    from handgrad.distributed import DataParallel, init_process_group
    from handgrad.train import fit

    n_in, hidden, k, _, batch = NETS[name]
    X, y = make_data(name, rows)
    net = hg.MLP(n_in, hidden, k, f="relu", g="identity", seed=0)
    parallel = False
    if world > 1:
        init_process_group("gloo")
        parallel = DataParallel(net)
    history = fit(net, X, y, "cross_entropy", optimizer="sgd", lr=LR, epochs=epochs, batch_size=batch,
                  train_metrics=False, distributed=parallel)
    if rank == 0:
        total = sum(history.epoch_seconds)
        share = parallel.seconds_in_allreduce / total if parallel else None
        steps = parallel.steps // epochs if parallel else -(-rows // batch)
        _write(path, {"epoch_seconds": history.epoch_seconds, "allreduce_share": share, "steps": steps})


def torch_worker(rank: int, world: int, name: str, rows: int, epochs: int, path: str) -> None:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from handgrad.distributed import init_process_group

    torch.set_num_threads(1)
    init_process_group("gloo")
    n_in, hidden, k, _, batch = NETS[name]
    X, y = make_data(name, rows)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    torch.manual_seed(0)
    sizes, layers = [n_in, *hidden, k], []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = DistributedDataParallel(torch.nn.Sequential(*layers[:-1]))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    rng, seconds = np.random.default_rng(0), []
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = rng.permutation(rows)
        for start in range(0, rows, batch):
            idx = order[start:start + batch]
            part = torch.from_numpy(idx[rank * len(idx) // world:(rank + 1) * len(idx) // world])
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(Xt[part]), yt[part]).backward()
            opt.step()
        seconds.append(time.perf_counter() - t0)
    dist.barrier()
    if rank == 0:
        _write(path, {"epoch_seconds": seconds, "allreduce_share": None, "steps": -(-rows // batch)})


def _write(path: str, record: dict) -> None:
    with open(path, "w") as f:
        json.dump(record, f)


def measure(engine: str, name: str, nproc: int, threads: int, rows: int, epochs: int) -> dict:
    from handgrad.distributed import launch

    worker = handgrad_worker if engine == "handgrad" else torch_worker
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "result.json")
        launch(worker, nproc, (name, rows, epochs, path), threads=threads)
        with open(path) as f:
            record = json.load(f)
    record["epoch"] = statistics.median(record["epoch_seconds"][1:] or record["epoch_seconds"])
    return record


# ====================================================================== the model of N machines
def model_rows(t_compute: float, P: int, bandwidth: float, latency: float, machines: list[int]) -> list[tuple]:
    rows = []
    for N in machines:
        t_ar = 2 * (N - 1) / N * 4 * P / bandwidth + 2 * (N - 1) * latency
        t_step = t_compute / N + t_ar
        rows.append((N, t_compute / N, t_ar, t_step, t_compute / t_step))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a quarter of the rows, 2 epochs")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--nets", default="small,large")
    ap.add_argument("--bandwidth-gbit", type=float, default=10.0, help="link bandwidth of the model (Gbit/s)")
    ap.add_argument("--latency-us", type=float, default=30.0, help="per-message latency of the model (µs)")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch DDP rows")
    args = ap.parse_args(argv)
    epochs = 2 if args.quick else args.epochs
    bandwidth, latency = args.bandwidth_gbit * 1e9 / 8, args.latency_us * 1e-6
    print(f"machine: {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.2f} at start; "
          f"median epoch after the first of {epochs}")
    print(f"{'network':<36}{'run':<40}{'s/epoch':>9}{'vs 1x1':>8}{'all-reduce':>12}{'ms/step':>9}")
    for name in args.nets.split(","):
        n_in, hidden, k, rows, batch = NETS[name]
        rows = rows // 4 if args.quick else rows
        label = f"{name} {'-'.join(map(str, [n_in, *hidden, k]))} P={n_parameters(name):,}"
        runs = [("handgrad", 1, 1, "handgrad 1 process x 1 thread"), ("handgrad", 1, 2, "handgrad 1 process x 2 threads"),
                ("handgrad", 2, 1, "handgrad 2 processes x 1 thread (gloo)")]
        if not args.no_torch:
            runs.append(("torch", 2, 1, "PyTorch DDP 2 processes x 1 thread"))
        base, results = None, {}
        for engine, nproc, threads, text in runs:
            r = measure(engine, name, nproc, threads, rows, epochs)
            results[(engine, nproc, threads)] = r
            base = base or r["epoch"]
            share, per_step = "-", "-"
            if r["allreduce_share"] is not None:
                share = f"{100 * r['allreduce_share']:.1f}%"
                per_step = f"{1e3 * r['allreduce_share'] * sum(r['epoch_seconds']) / (r['steps'] * epochs):.2f}"
            print(f"{label:<36}{text:<40}{r['epoch']:>9.3f}{base / r['epoch']:>7.2f}x{share:>12}{per_step:>9}")
            label = ""
        one = results[("handgrad", 1, 1)]
        t_c = one["epoch"] / one["steps"]
        print(f"  model of N machines ({name}, batch {batch}, t_c = {1e3 * t_c:.2f} ms/step on 1 thread, "
              f"{args.bandwidth_gbit:g} Gbit/s, {args.latency_us:g} µs):")
        print(f"  {'N':>5}{'compute ms':>12}{'all-reduce ms':>15}{'step ms':>10}{'speed-up':>10}")
        for N, tc, tar, ts, s in model_rows(t_c, n_parameters(name), bandwidth, latency, [1, 2, 4, 8, 16, 64]):
            print(f"  {N:>5}{1e3 * tc:>12.3f}{1e3 * tar:>15.3f}{1e3 * ts:>10.3f}{s:>9.1f}x")
    print(f"load average {os.getloadavg()[0]:.2f} at the end (other jobs on the machine take cores too)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
