"""Built-in datasets by name: generated ones (seeded, no download) and scikit-learn's (optional)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataSourceError
from ..validation import check_int, check_real, lookup_name, make_rng
from .dataset import Dataset

# The homework's regression data (NYU DS-GA 1008 homework 1, see the README) is the default of 'handgrad train';
# "seed" is its older name, kept as an alias.
DEFAULT_DATASET = "homework_regression"
ALIASES = {"seed": DEFAULT_DATASET}


# ====================================================================== generated
def make_seed_regression(n_samples: int = 256, noise: float = 0.0, seed: Any = 0) -> Dataset:
    """The default data of ``handgrad train``: the seed's regression, x in R^2 -> y in R.

    y = |x1| + |x2| - 1 + 0.5·x1 (evaluated on an even 16 x 16 grid of [-1, 1]^2 when
    ``n_samples`` is 256 and ``noise`` is 0, so it needs no file and no randomness).
    A piecewise-linear target: exactly what a 5·ReLU hidden layer with an identity
    output and the squared loss can represent, so the training curve reaches ~0.
    """
    side = int(round(math.sqrt(n_samples)))
    if side * side == n_samples:
        g = np.linspace(-1.0, 1.0, side)
        x1, x2 = np.meshgrid(g, g, indexing="ij")
        X = np.column_stack([x1.ravel(), x2.ravel()])
    else:
        X = make_rng(seed).uniform(-1.0, 1.0, size=(n_samples, 2))
    y = np.abs(X[:, 0]) + np.abs(X[:, 1]) - 1.0 + 0.5 * X[:, 0]
    if noise:
        y = y + make_rng(seed).normal(0.0, noise, size=n_samples)
    return Dataset(X, y, "regression", ["x1", "x2"], name=DEFAULT_DATASET,
                   description="the homework's regression (NYU DS-GA 1008 homework 1): y = |x1| + |x2| - 1 + x1/2 "
                               "on a 16x16 grid (5·ReLU fits it)",
                   target_name="y")


def make_sin(n_samples: int = 1000, noise: float = 0.05, seed: Any = 0) -> Dataset:
    """1-D curve: y = sin(x) + noise, x uniform in [-π, π]."""
    rng = make_rng(seed)
    x = rng.uniform(-np.pi, np.pi, size=(n_samples, 1))
    y = np.sin(x[:, 0]) + rng.normal(0.0, noise, size=n_samples)
    return Dataset(x, y, "regression", ["x"], name="sin",
                   description=f"1-D curve y = sin(x) + N(0, {noise:g}²), x in [-π, π]", target_name="y")


def make_cubic(n_samples: int = 1000, noise: float = 0.05, seed: Any = 0) -> Dataset:
    """1-D curve: y = x³ - x + noise, x uniform in [-1.5, 1.5]."""
    rng = make_rng(seed)
    x = rng.uniform(-1.5, 1.5, size=(n_samples, 1))
    y = x[:, 0] ** 3 - x[:, 0] + rng.normal(0.0, noise, size=n_samples)
    return Dataset(x, y, "regression", ["x"], name="cubic",
                   description=f"1-D curve y = x³ - x + N(0, {noise:g}²), x in [-1.5, 1.5]", target_name="y")


def make_friedman(n_samples: int = 2000, noise: float = 1.0, seed: Any = 0) -> Dataset:
    """Friedman #1, a noisy multivariate function of 10 features (5 of them irrelevant):
    y = 10 sin(π x1 x2) + 20 (x3 - 1/2)² + 10 x4 + 5 x5 + noise, x uniform in [0, 1]^10."""
    rng = make_rng(seed)
    X = rng.uniform(0.0, 1.0, size=(n_samples, 10))
    y = (10 * np.sin(np.pi * X[:, 0] * X[:, 1]) + 20 * (X[:, 2] - 0.5) ** 2 + 10 * X[:, 3] + 5 * X[:, 4]
         + rng.normal(0.0, noise, size=n_samples))
    return Dataset(X, y, "regression", [f"x{i + 1}" for i in range(10)], name="friedman",
                   description=f"noisy multivariate function (Friedman #1) of 10 features, noise N(0, {noise:g}²)",
                   target_name="y")


def make_moons(n_samples: int = 1000, noise: float = 0.1, seed: Any = 0) -> Dataset:
    """Two interleaving half circles, 2 classes."""
    rng = make_rng(seed)
    n0 = n_samples // 2
    n1 = n_samples - n0
    t0 = rng.uniform(0.0, np.pi, n0)
    t1 = rng.uniform(0.0, np.pi, n1)
    X = np.concatenate([np.column_stack([np.cos(t0), np.sin(t0)]),
                        np.column_stack([1 - np.cos(t1), 0.5 - np.sin(t1)])])
    X += rng.normal(0.0, noise, size=X.shape)
    y = np.concatenate([np.zeros(n0, np.int64), np.ones(n1, np.int64)])
    return _shuffled(X, y, rng, "moons", f"two interleaving half circles, 2 classes, noise {noise:g}")


def make_circles(n_samples: int = 1000, noise: float = 0.08, factor: float = 0.5, seed: Any = 0) -> Dataset:
    """A small circle inside a large one, 2 classes."""
    rng = make_rng(seed)
    n0 = n_samples // 2
    n1 = n_samples - n0
    t0 = rng.uniform(0.0, 2 * np.pi, n0)
    t1 = rng.uniform(0.0, 2 * np.pi, n1)
    X = np.concatenate([np.column_stack([np.cos(t0), np.sin(t0)]),
                        factor * np.column_stack([np.cos(t1), np.sin(t1)])])
    X += rng.normal(0.0, noise, size=X.shape)
    y = np.concatenate([np.zeros(n0, np.int64), np.ones(n1, np.int64)])
    return _shuffled(X, y, rng, "circles", f"a circle inside a circle (radius ratio {factor:g}), 2 classes")


def make_spirals(n_samples: int = 900, n_classes: int = 3, noise: float = 0.2, seed: Any = 0) -> Dataset:
    """Interleaved spiral arms, one class per arm (CS231n's spiral data)."""
    rng = make_rng(seed)
    counts = [n_samples // n_classes + (k < n_samples % n_classes) for k in range(n_classes)]
    Xs, ys = [], []
    for k, n in enumerate(counts):
        r = np.linspace(0.0, 1.0, n)
        t = np.linspace(k * 4.0, (k + 1) * 4.0, n) + rng.normal(0.0, noise, n)
        Xs.append(np.column_stack([r * np.sin(t), r * np.cos(t)]))
        ys.append(np.full(n, k, np.int64))
    return _shuffled(np.concatenate(Xs), np.concatenate(ys), rng, "spirals",
                     f"{n_classes} interleaved spiral arms, one class each")


def make_xor(n_samples: int = 1000, noise: float = 0.0, seed: Any = 0) -> Dataset:
    """XOR: points uniform in [-1, 1]^2, class 1 where x1·x2 < 0 (not linearly separable)."""
    rng = make_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(n_samples, 2))
    y = (X[:, 0] * X[:, 1] < 0).astype(np.int64)
    if noise:
        X = X + rng.normal(0.0, noise, size=X.shape)
    return Dataset(X, y, "classification", ["x1", "x2"], [0, 1], "xor",
                   "XOR: class 1 where x1·x2 < 0, points uniform in [-1, 1]^2", "class")


def _shuffled(X: np.ndarray, y: np.ndarray, rng: np.random.Generator, name: str, description: str) -> Dataset:
    order = rng.permutation(len(y))
    labels = list(range(int(y.max()) + 1))
    return Dataset(X[order], y[order], "classification", ["x1", "x2"], labels, name, description, "class")


# ====================================================================== built-in: scikit-learn
def _sklearn_loader(loader: str, task: str, name: str) -> Callable[..., Dataset]:
    def load(seed: Any = 0) -> Dataset:
        from ..optional import require

        skd = require("sklearn.datasets", extra="sklearn", purpose=f"the built-in dataset {name!r} (shipped by scikit-learn)")
        bunch = getattr(skd, loader)()
        X = np.asarray(bunch.data, dtype=np.float64)
        names = [str(n) for n in getattr(bunch, "feature_names", [])]
        description = _SKLEARN_DESCRIPTIONS[name] + " (scikit-learn)"
        if task == "classification":
            labels = [str(t) for t in bunch.target_names] if hasattr(bunch, "target_names") else None
            return Dataset(X, bunch.target, task, names, labels, name, description, "target")
        return Dataset(X, bunch.target, task, names, None, name, description, "target")

    return load


_SKLEARN_DESCRIPTIONS = {
    "digits": "1797 8x8 images of handwritten digits, 64 features, 10 classes",
    "iris": "150 iris flowers, 4 measurements, 3 species",
    "wine": "178 wines, 13 chemical measurements, 3 cultivars",
    "breast_cancer": "569 tumours, 30 features, malignant or benign",
    "diabetes": "442 patients, 10 features, disease progression after one year",
}
_GENERATED_DESCRIPTIONS = {
    "homework_regression": "256 points, y = |x1| + |x2| - 1 + x1/2 on a grid of [-1, 1]^2: the homework's data "
                           "(default of 'handgrad train'; also 'seed')",
    "sin": "1000 points, y = sin(x) + noise, x in [-pi, pi]",
    "cubic": "1000 points, y = x^3 - x + noise, x in [-1.5, 1.5]",
    "friedman": "2000 points, noisy function of 10 features, 5 of them irrelevant (Friedman #1)",
    "moons": "1000 points, two interleaving half circles, 2 classes",
    "circles": "1000 points, a circle inside a circle, 2 classes",
    "spirals": "900 points, three interleaved spiral arms, 3 classes",
    "xor": "1000 points, class 1 where x1*x2 < 0 (not linearly separable), 2 classes",
}


@dataclass(frozen=True)
class DatasetInfo:
    """One row of :func:`list_datasets`."""

    name: str
    task: str
    source: str  # 'generated' or 'scikit-learn'
    description: str


# name -> (task, source, loader(seed=...)); loaders of generated data take n_samples/noise too
_BUILTIN: dict[str, tuple[str, str, Callable[..., Dataset]]] = {
    "homework_regression": ("regression", "generated", make_seed_regression),
    "sin": ("regression", "generated", make_sin),
    "cubic": ("regression", "generated", make_cubic),
    "friedman": ("regression", "generated", make_friedman),
    "moons": ("classification", "generated", make_moons),
    "circles": ("classification", "generated", make_circles),
    "spirals": ("classification", "generated", make_spirals),
    "xor": ("classification", "generated", make_xor),
    "digits": ("classification", "scikit-learn", _sklearn_loader("load_digits", "classification", "digits")),
    "iris": ("classification", "scikit-learn", _sklearn_loader("load_iris", "classification", "iris")),
    "wine": ("classification", "scikit-learn", _sklearn_loader("load_wine", "classification", "wine")),
    "breast_cancer": ("classification", "scikit-learn",
                      _sklearn_loader("load_breast_cancer", "classification", "breast_cancer")),
    "diabetes": ("regression", "scikit-learn", _sklearn_loader("load_diabetes", "regression", "diabetes")),
}


def _builtin_description(name: str) -> str:
    return _SKLEARN_DESCRIPTIONS.get(name) or _GENERATED_DESCRIPTIONS[name]


def list_datasets() -> list[DatasetInfo]:
    """Every built-in dataset: name, task, source and a one-line description."""
    return [DatasetInfo(name, task, source, _builtin_description(name)) for name, (task, source, _) in _BUILTIN.items()]


def builtin_names() -> list[str]:
    """The names :func:`load_dataset` knows, in :func:`list_datasets` order."""
    return list(_BUILTIN)


def canonical_name(name: str) -> str:
    """A built-in name as listed: case, '-' and '_' alike, and the old names (``seed``) resolved."""
    key = name.strip().lower().replace("-", "_")
    return ALIASES.get(key, key)


def is_builtin(name: str) -> bool:
    return isinstance(name, str) and canonical_name(name) in _BUILTIN


def load_dataset(name: str, *, seed: Any = 0, n_samples: int | None = None, noise: float | None = None) -> Dataset:
    """A built-in dataset by name (see :func:`list_datasets`).

    Generated data is drawn from ``validation.make_rng(seed)`` (default 0, so a
    name always means the same data); ``n_samples`` and ``noise`` override the
    defaults of generated datasets.
    """
    try:
        task, source, loader = lookup_name("dataset", canonical_name(name) if isinstance(name, str) else name,
                                           _BUILTIN)
    except ValueError as exc:
        raise DataSourceError(str(exc)) from None
    kwargs: dict[str, Any] = {"seed": seed}
    if source == "generated":
        if n_samples is not None:
            kwargs["n_samples"] = check_int("n_samples", n_samples, 2)
        if noise is not None:
            kwargs["noise"] = check_real("noise", noise, 0.0, math.inf, open_high=True)
    elif n_samples is not None or noise is not None:
        raise DataSourceError(f"dataset {name!r} is fixed data from scikit-learn; n_samples and noise do not apply")
    return loader(**kwargs)


__all__ = [
    "ALIASES", "DEFAULT_DATASET", "DatasetInfo", "builtin_names", "canonical_name", "is_builtin", "list_datasets", "load_dataset", "make_circles", "make_cubic",
    "make_friedman", "make_moons", "make_seed_regression", "make_sin", "make_spirals", "make_xor",
]
