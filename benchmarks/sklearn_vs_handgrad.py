"""HandgradClassifier/HandgradRegressor against scikit-learn's MLPClassifier/MLPRegressor.

Both train on the same split of the same data with the same hidden sizes, activation,
solver, learning rate, L2 alpha, batch size and number of epochs (tol=0 and a patience
above the epoch count, so neither stops early). Each configuration runs with several
seeds; the table shows test accuracy (or R²) as mean ± standard deviation over the
seeds, and the median wall time of one fit.

    python benchmarks/sklearn_vs_handgrad.py            # all tasks, 5 seeds
    python benchmarks/sklearn_vs_handgrad.py --seeds 3 --threads 1 --tasks digits
    python benchmarks/sklearn_vs_handgrad.py --cv 3   # 5-fold cross_val_score on digits, 3 interleaved rounds

``--cv ROUNDS`` times ``cross_val_score(make_pipeline(StandardScaler(), est), X, y, cv=5)`` on
digits for both estimators with the same settings (each solver), interleaved over the rounds,
and reports the fastest round of each and the mean accuracy over the folds.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, make_friedman1
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler

from handgrad.sklearn import HandgradClassifier, HandgradRegressor


def _scaled(X, y, *, regression: bool, seed: int = 0):
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=seed,
                                              stratify=None if regression else y)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    if regression:
        mu, sd = y_tr.mean(), y_tr.std()
        y_tr, y_te = (y_tr - mu) / sd, (y_te - mu) / sd
    return X_tr, X_te, y_tr, y_te


def tasks():
    """name -> (kind, data, hidden sizes, epochs)."""
    return {
        "digits": ("clf", _scaled(*load_digits(return_X_y=True), regression=False), (100,), 50),
        "breast_cancer": ("clf", _scaled(*load_breast_cancer(return_X_y=True), regression=False), (32,), 50),
        "diabetes": ("reg", _scaled(*load_diabetes(return_X_y=True), regression=True), (32,), 100),
        "friedman1": ("reg", _scaled(*make_friedman1(5000, 10, noise=1.0, random_state=0), regression=True),
                      (64, 64), 30),
    }


SOLVERS = {
    "sgd": dict(solver="sgd", learning_rate_init=0.01, momentum=0.9, nesterovs_momentum=True),
    "adam": dict(solver="adam", learning_rate_init=1e-3),
}


def run_one(Est, kind, data, params, seed):
    X_tr, X_te, y_tr, y_te = data
    est = Est(random_state=seed, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        est.fit(X_tr, y_tr)
        elapsed = time.perf_counter() - start
    assert est.n_iter_ == params["max_iter"], f"{Est.__name__} stopped after {est.n_iter_} epochs"
    return est.score(X_te, y_te), elapsed


def cross_validation(rounds: int, batch_size: int) -> None:
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline

    X, y = load_digits(return_X_y=True)
    print(f"5-fold cross_val_score on digits ({X.shape[0]} x {X.shape[1]}), StandardScaler + MLP (100,), relu, "
          f"alpha 1e-4, batch {batch_size}, 50 epochs; fastest of {rounds} interleaved rounds")
    print(f"{'solver':<6} {'handgrad s':>10} {'sklearn s':>10} {'speed-up':>8} {'handgrad acc':>13} {'sklearn acc':>12}")
    for solver, solver_params in SOLVERS.items():
        params = dict(hidden_layer_sizes=(100,), activation="relu", alpha=1e-4, batch_size=batch_size, max_iter=50,
                      tol=0.0, n_iter_no_change=51, random_state=0, **solver_params)
        times: dict = {HandgradClassifier: [], MLPClassifier: []}
        scores: dict = {}
        for r in range(rounds):
            for Est in (HandgradClassifier, MLPClassifier) if r % 2 == 0 else (MLPClassifier, HandgradClassifier):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    start = time.perf_counter()
                    scores[Est] = cross_val_score(make_pipeline(StandardScaler(), Est(**params)), X, y, cv=5)
                    times[Est].append(time.perf_counter() - start)
        t_ours, t_theirs = min(times[HandgradClassifier]), min(times[MLPClassifier])
        print(f"{solver:<6} {t_ours:>10.2f} {t_theirs:>10.2f} {t_theirs / t_ours:>7.2f}x "
              f"{scores[HandgradClassifier].mean():>13.4f} {scores[MLPClassifier].mean():>12.4f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads for both (default: as is)")
    parser.add_argument("--tasks", nargs="*", default=None)
    parser.add_argument("--cv", type=int, default=0, metavar="ROUNDS",
                        help="instead: 5-fold cross_val_score on digits, this many interleaved rounds")
    args = parser.parse_args(argv)
    if args.threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    if args.cv:
        cross_validation(args.cv, args.batch_size)
        return
    all_tasks = tasks()
    names = args.tasks or list(all_tasks)
    print(f"{'task':<14} {'solver':<5} {'metric':<8} {'handgrad':>15} {'scikit-learn':>15} "
          f"{'handgrad s':>11} {'sklearn s':>10} {'speed-up':>8}")
    for name in names:
        kind, data, hidden, epochs = all_tasks[name]
        ours, theirs = (HandgradClassifier, MLPClassifier) if kind == "clf" else (HandgradRegressor, MLPRegressor)
        for solver, solver_params in SOLVERS.items():
            params = dict(hidden_layer_sizes=hidden, activation="relu", alpha=1e-4, batch_size=args.batch_size,
                          max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1, **solver_params)
            results = {ours: [], theirs: []}
            for seed in range(args.seeds):
                for Est in (ours, theirs) if seed % 2 == 0 else (theirs, ours):  # interleave the order
                    results[Est].append(run_one(Est, kind, data, params, seed))
            cols = []
            for Est in (ours, theirs):
                scores = [s for s, _ in results[Est]]
                cols.append(f"{np.mean(scores):.4f} ± {np.std(scores):.4f}")
            t_ours = statistics.median(t for _, t in results[ours])
            t_theirs = statistics.median(t for _, t in results[theirs])
            metric = "accuracy" if kind == "clf" else "R²"
            print(f"{name:<14} {solver:<5} {metric:<8} {cols[0]:>15} {cols[1]:>15} {t_ours:>11.3f} "
                  f"{t_theirs:>10.3f} {t_theirs / t_ours:>7.2f}x")


if __name__ == "__main__":
    main()
