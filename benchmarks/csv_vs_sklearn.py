"""A new user's CSV: ``handgrad train --data FILE --target COL`` against scikit-learn's MLPClassifier.

For each CSV (written here from data scikit-learn ships, with a text target column,
as a user's file would arrive) and each seed, handgrad trains with only ``--data``
and ``--target``; scikit-learn's ``MLPClassifier()`` with its defaults trains on the
same rows (handgrad's train + validation split; scikit-learn makes no validation
split of its own by default) and both are scored on the same test rows. The
scikit-learn figure is given on raw features, as its defaults take them, and after
``StandardScaler`` (what its documentation recommends; handgrad standardises too).

``--builtin`` also runs the README's built-in commands (digits, moons, sin, the seed
default) over several seeds.

Run:  OMP_NUM_THREADS=1 python benchmarks/csv_vs_sklearn.py [--seeds 5] [--builtin]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
import warnings

import numpy as np


def write_csvs(directory: str) -> dict[str, str]:
    """CSV files with a header and a text target column 'label'."""
    from sklearn import datasets as skd

    rng = np.random.default_rng(0)
    X, y = skd.make_classification(n_samples=2000, n_features=20, n_informative=8, n_redundant=4, n_classes=4,
                                   n_clusters_per_class=2, class_sep=1.0, flip_y=0.02, random_state=0)
    sources = {
        "iris": (skd.load_iris(), None),
        "wine": (skd.load_wine(), None),
        "breast_cancer": (skd.load_breast_cancer(), None),
        "digits": (skd.load_digits(), ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                                       "nine"]),
        "synthetic": (None, None),
    }
    paths = {}
    for name, (bunch, names) in sources.items():
        if bunch is None:
            data, target, labels = X * rng.uniform(0.5, 50, size=20), y, ["red", "green", "blue", "yellow"]
            columns = [f"f{i}" for i in range(20)]
        else:
            data, target = bunch.data, bunch.target
            labels = names or [str(t) for t in bunch.target_names]
            columns = [str(c).replace(" ", "_") for c in getattr(bunch, "feature_names", [])] \
                or [f"pixel{i}" for i in range(data.shape[1])]
        path = os.path.join(directory, f"{name}.csv")
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow([*columns, "label"])
            for row, t in zip(data, target):
                w.writerow([*(repr(float(v)) for v in row), labels[int(t)]])
        paths[name] = path
    return paths


def handgrad_run(argv: list[str]) -> tuple[dict, float]:
    from handgrad.cli import main

    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    t0 = time.perf_counter()
    code = main([*argv, "-q", "--metrics-json", out])
    seconds = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"handgrad {' '.join(argv)} failed with exit code {code}")
    with open(out) as fh:
        report = json.load(fh)
    os.remove(out)
    return report, seconds


def sklearn_scores(path: str, seed: int) -> tuple[float, float, int]:
    """MLPClassifier() on handgrad's train+validation rows, scored on handgrad's test rows."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from handgrad.data import load_data, train_val_test_split

    ds = load_data(path, target="label")
    # the same split as 'handgrad train --seed SEED' (its split generator is default_rng([seed, 1]))
    train, val, test = train_val_test_split(ds, 0.15, 0.15, seed=np.random.default_rng([seed, 1]))
    X = np.concatenate([train.X, val.X])
    y = np.concatenate([train.y, val.y])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter=200 on raw features
        raw = MLPClassifier(random_state=seed).fit(X, y).score(test.X, test.y)
        scaled = make_pipeline(StandardScaler(), MLPClassifier(random_state=seed)).fit(X, y).score(test.X, test.y)
    return raw, scaled, test.n_samples


def compare_csvs(seeds: int, extra: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_csvs(tmp)
        print(f"{'csv':<14}{'rows':>6}{'classes':>8}  {'handgrad':>9}{'sklearn raw':>13}{'sklearn+scaler':>16}"
              f"{'handgrad s':>12}")
        for name, path in paths.items():
            ours, raw, scaled, secs = [], [], [], []
            for seed in range(seeds):
                report, seconds = handgrad_run(["train", "--data", path, "--target", "label", "--seed", str(seed),
                                                *extra])
                r, s, n_test = sklearn_scores(path, seed)
                if report["test"]["n_samples"] != n_test:
                    raise SystemExit(f"{name}: split mismatch ({report['test']['n_samples']} vs {n_test} test rows)")
                ours.append(report["test"]["accuracy"])
                raw.append(r)
                scaled.append(s)
                secs.append(seconds)
            n_rows = sum(1 for _ in open(path)) - 1
            n_classes = len({row[-1] for row in csv.reader(open(path))}) - 1
            print(f"{name:<14}{n_rows:>6}{n_classes:>8}  {np.mean(ours):>9.4f}{np.mean(raw):>13.4f}"
                  f"{np.mean(scaled):>16.4f}{np.mean(secs):>12.1f}", flush=True)
        print(f"(test accuracy, mean over seeds 0..{seeds - 1}; handgrad s = seconds per 'handgrad train' run)")


def builtin(seeds: int) -> None:
    runs = [("seed (default)", [], "r2"), ("sin", ["--data", "sin"], "r2"), ("moons", ["--data", "moons"], "accuracy"),
            ("digits", ["--data", "digits"], "accuracy")]
    print(f"\n{'command':<16}{'metric':>9}{'seed 0':>9}{'mean':>9}{'min':>9}{'max':>9}{'s/run':>8}")
    for name, argv, key in runs:
        values, secs = [], []
        for seed in range(seeds):
            report, seconds = handgrad_run(["train", *argv, "--seed", str(seed)])
            values.append(report["test"][key])
            secs.append(seconds)
        print(f"{name:<16}{key:>9}{values[0]:>9.4f}{np.mean(values):>9.4f}{np.min(values):>9.4f}{np.max(values):>9.4f}"
              f"{np.mean(secs):>8.1f}", flush=True)
    print(f"(test-split figures of 'handgrad train [--data NAME] --seed S', S = 0..{seeds - 1})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--builtin", action="store_true", help="also run the README's built-in commands")
    parser.add_argument("--builtin-only", action="store_true")
    parser.add_argument("--extra", default="", help="more 'handgrad train' options for the CSV runs, e.g. '--hidden 128'")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, {os.cpu_count()} CPUs")
    if not args.builtin_only:
        compare_csvs(args.seeds, args.extra.split())
    if args.builtin or args.builtin_only:
        builtin(args.seeds)


if __name__ == "__main__":
    main()
