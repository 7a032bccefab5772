"""Reading a CSV file: handgrad.data.load_data against pandas.read_csv, time and peak memory.

The file: n rows of 20 float features (7 significant digits) and a 0/1 label, with a header,
written to a temporary directory and deleted afterwards (10,000,000 rows are about 1.9 GB).
The readers (``--readers``, all by default):

- ``pandas``: ``pandas.read_csv(path)`` (a DataFrame of float64 features and an int64 label);
- ``handgrad``: ``load_data(path)``, float64 features (the NumPy block parser,
  ``handgrad.data.csv_numbers``, for this file; pyarrow's streaming reader, installed here,
  for the files the block parser declines);
- ``handgrad-f32``: ``load_data(path, dtype="float32")``, what a float32 network trains on;
- ``numpy`` / ``numpy-f32``: the same two with pyarrow hidden, as on the core install;
- ``pandas-parquet``, ``parquet``, ``parquet-f32`` (only with ``--parquet``): the same data
  written to a Parquet file (by pyarrow, snappy), read by ``pandas.read_parquet`` and by
  ``load_data`` (float64, float32).

Each reader runs in its own fresh process, interleaved over the rounds; the time is the min
over rounds of the read alone (imports excluded); the peak is the process's resident memory,
sampled every 2 ms during the read, above its resident memory after the imports and a
warm-up read of a 10-row file (Linux), shown against the data's float32 size
(n × 21 × 4 bytes). ``--train`` also runs one epoch of ``handgrad.train.fit`` (a 20 → 64 → 1
network, sigmoid + BCE, batch 256) after each handgrad read and reports the peak of the whole
process (imports, reading and training: ``VmHWM``).

    python benchmarks/bench_data.py                      # 1e5, 1e6 and 1e7 rows
    python benchmarks/bench_data.py --rows 100000,1000000 --rounds 3
    python benchmarks/bench_data.py --rows 10000000 --readers handgrad-f32,pandas --train
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

N_FEATURES = 20
READERS = ("pandas", "handgrad", "handgrad-f32", "numpy", "numpy-f32")
PARQUET_READERS = ("pandas-parquet", "parquet", "parquet-f32")
CHILD = r"""
import json, resource, sys, time
how, path, train, warm = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
if "parquet" in how:
    path, warm = path[:-4] + ".parquet", warm[:-4] + ".parquet"
if how.startswith("numpy"):  # the core install: no pyarrow
    sys.modules["pyarrow"] = None
import numpy as np
def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20
dtype = "float32" if how.endswith("-f32") else "float64"
if how.startswith("pandas"):
    import pandas as pd
    read = pd.read_parquet if how == "pandas-parquet" else pd.read_csv
    read(warm)  # a 10-row file: lazy imports and first-call set-up happen before the baseline
else:
    from handgrad.data import load_data
    load_data(warm, dtype=dtype)
import threading
base, peak, reading = rss_mb(), [0.0], [True]
def sample():  # the resident memory every 2 ms (ru_maxrss would include the imports' own peak)
    while reading[0]:
        peak[0] = max(peak[0], rss_mb())
        time.sleep(0.002)
sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
t0 = time.perf_counter()
if how.startswith("pandas"):
    frame = read(path)
    shape = frame.shape
else:
    ds = load_data(path, dtype=dtype)
    shape = (ds.X.shape[0], ds.X.shape[1] + 1)
t_read = time.perf_counter() - t0
reading[0] = False
sampler.join()
peak_read = max(peak[0], rss_mb()) - base
t_fit = None
if train and not how.startswith("pandas"):
    from handgrad import MLP
    from handgrad.train import fit
    net = MLP(ds.X.shape[1], [64], 1, f="relu", g="sigmoid", seed=0)
    t0 = time.perf_counter()
    fit(net, ds.X, ds.y.reshape(-1, 1).astype(np.float32), "bce", lr=0.01, epochs=1, batch_size=256, seed=0,
        train_metrics=False)
    t_fit = time.perf_counter() - t0
with open("/proc/self/status") as fh:  # VmHWM: this process's own peak (ru_maxrss counts the parent's at the fork)
    hwm = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
print(json.dumps({"read_s": t_read, "peak_read_mb": peak_read, "fit_s": t_fit, "shape": shape,
                  "peak_total_mb": hwm / 2**10}))
"""


def write_csv(path: str, n: int, rng: np.random.Generator, chunk: int = 200_000) -> None:
    with open(path, "w") as fh:
        fh.write(",".join([f"x{i}" for i in range(N_FEATURES)] + ["label"]) + "\n")
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            block = np.column_stack([rng.standard_normal((m, N_FEATURES)), rng.random(m) < 0.5])
            np.savetxt(fh, block, delimiter=",", fmt=["%.7g"] * N_FEATURES + ["%d"])


def write_parquet(csv_path: str) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    pq.write_table(pacsv.read_csv(csv_path), csv_path[:-4] + ".parquet")


def run(how: str, path: str, train: bool) -> dict:
    warm = os.path.join(os.path.dirname(path), "warm.csv")
    if not os.path.exists(warm):
        write_csv(warm, 10, np.random.default_rng(1))
        write_parquet(warm)
    done = subprocess.run([sys.executable, "-c", CHILD, how, path, "1" if train else "0", warm],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{how} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="100000,1000000,10000000", help="comma-separated row counts")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per size (min is reported)")
    parser.add_argument("--readers", default=",".join(READERS), help=f"comma-separated, of {', '.join(READERS)}")
    parser.add_argument("--train", action="store_true", help="also one epoch of fit after each handgrad read")
    parser.add_argument("--parquet", action="store_true", help="also the same data as a Parquet file (pyarrow)")
    parser.add_argument("--dir", default=None, help="where to write the files (default: a temporary directory)")
    args = parser.parse_args(argv)
    sizes = [int(float(r)) for r in args.rows.split(",") if r.strip()]
    readers = [r.strip() for r in args.readers.split(",") if r.strip()]
    if args.parquet:
        readers += [r for r in PARQUET_READERS if r not in readers]
    unknown = [r for r in readers if r not in READERS + PARQUET_READERS]
    if unknown:
        parser.error(f"unknown reader(s) {', '.join(unknown)}; choose from {', '.join(READERS)}")
    try:
        import pandas  # noqa: F401
    except ImportError:
        readers = [r for r in readers if not r.startswith("pandas")]
    load0 = os.getloadavg()
    print(f"numpy {np.__version__}; {os.cpu_count()} CPUs; min over {args.rounds} interleaved rounds, "
          "each read in a fresh process")
    print("| rows | file | float32 size | reader | read | / pandas | peak | peak / float32 size |"
          + (" fit epoch | whole process, read + fit |" if args.train else ""))
    print("|---:|---:|---:|---|---:|---:|---:|---:|" + ("---:|---:|" if args.train else ""))
    workdir = tempfile.mkdtemp(prefix="handgrad-bench-data-", dir=args.dir)
    try:
        for n in sizes:
            path = os.path.join(workdir, f"rows{n}.csv")
            write_csv(path, n, np.random.default_rng(0))
            if any("parquet" in r for r in readers):
                write_parquet(path)
            results: dict[str, list[dict]] = {r: [] for r in readers}
            for _ in range(args.rounds):
                for how in readers:
                    results[how].append(run(how, path, args.train and not how.startswith("pandas")))
            f32 = n * (N_FEATURES + 1) * 4 / 2**20
            best = {how: min(r["read_s"] for r in rs) for how, rs in results.items()}
            for how, rs in results.items():
                peak = min(r["peak_read_mb"] for r in rs)
                against = "pandas-parquet" if "parquet" in how else "pandas"
                ratio = f"{best[how] / best[against]:.2f}x" if against in best else "–"
                source = path[:-4] + ".parquet" if "parquet" in how else path
                cells = [f"{n:,}", f"{os.path.getsize(source) / 2**20:.0f} MB", f"{f32:.0f} MB", how,
                         f"{best[how]:.2f} s", ratio, f"{peak:.0f} MB", f"{peak / f32:.2f}x"]
                if args.train:
                    fits = [r["fit_s"] for r in rs if r["fit_s"] is not None]
                    cells += [f"{min(fits):.1f} s" if fits else "–",
                              f"{min(r['peak_total_mb'] for r in rs):.0f} MB" if fits else "–"]
                print("| " + " | ".join(cells) + " |", flush=True)
            os.remove(path)
            if os.path.exists(path[:-4] + ".parquet"):
                os.remove(path[:-4] + ".parquet")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load1 = os.getloadavg()
    print(f"load average (1, 5 min) before {load0[0]:.2f}, {load0[1]:.2f}; after {load1[0]:.2f}, {load1[1]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
