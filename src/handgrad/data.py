r"""Data: built-in datasets by name, user files (CSV, NPZ, Parquet), splits and scaling.

A :class:`Dataset` holds ``X`` (float64, ``(n_samples, n_features)``) and ``y``:
for regression a float64 ``(n_samples, n_targets)`` array (always 2-D, so a loss
never broadcasts ``(n,)`` against ``(n, 1)``), for classification int64 class
indices ``(n_samples,)`` into ``class_labels``.

>>> ds = load_dataset("moons", n_samples=100)
>>> ds.X.shape, ds.task, ds.class_labels
((100, 2), 'classification', [0, 1])

Every built-in dataset is generated (seeded, no download) or shipped by
scikit-learn (``digits``, ``iris``, ...; an optional dependency). User files go
through :func:`load_data`; a bad file raises ``ValueError`` naming the file, the
column and the 1-based line (the header is line 1).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ._checks import lookup_name

TASKS = ("regression", "classification")
# an integer-valued target with at most this many distinct values is taken as class labels
MAX_INFERRED_CLASSES = 20
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
DELIMITERS = (",", ";", "\t", "|")


# ====================================================================== Dataset
@dataclass
class Dataset:
    """Features and targets with the facts needed to train, save and report on them.

    Attributes
    ----------
    X : float64 array (n_samples, n_features).
    y : regression: float64 (n_samples, n_targets); classification: int64 indices (n_samples,).
    task : 'regression' or 'classification'.
    feature_names : one name per column of X.
    class_labels : the original label of each class index (classification), else None.
    name, description : where the data came from, for summaries.
    target_name : the target column's name, if known.
    """

    X: np.ndarray
    y: np.ndarray
    task: str
    feature_names: list[str] = field(default_factory=list)
    class_labels: list[Any] | None = None
    name: str = "data"
    description: str = ""
    target_name: str | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        self.X = np.asarray(self.X, dtype=np.float64)
        if self.X.ndim != 2:
            raise ValueError(f"Dataset X must be 2-D (n_samples, n_features), got shape {self.X.shape}")
        if self.task == "regression":
            y = np.asarray(self.y, dtype=np.float64)
            self.y = y.reshape(-1, 1) if y.ndim == 1 else y
        else:
            self.y = np.asarray(self.y).astype(np.int64, copy=False).reshape(-1)
            if self.class_labels is None:
                self.class_labels = list(range(int(self.y.max()) + 1 if self.y.size else 0))
        if self.y.shape[0] != self.X.shape[0]:
            raise ValueError(f"Dataset X has {self.X.shape[0]} rows but y has {self.y.shape[0]}")
        if not self.feature_names:
            self.feature_names = [f"x{i + 1}" for i in range(self.X.shape[1])]
        if len(self.feature_names) != self.X.shape[1]:
            raise ValueError(f"{len(self.feature_names)} feature names for {self.X.shape[1]} features")

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_classes(self) -> int | None:
        return len(self.class_labels) if self.task == "classification" else None

    @property
    def n_targets(self) -> int:
        return 1 if self.task == "classification" else int(self.y.shape[1])

    def subset(self, index: Any) -> Dataset:
        """The rows ``index`` (an index array or a boolean mask) as a new Dataset."""
        return replace(self, X=self.X[index], y=self.y[index])

    def summary(self) -> str:
        what = (f"{self.n_classes} classes" if self.task == "classification"
                else f"{self.n_targets} target{'s' if self.n_targets > 1 else ''}")
        return f"{self.name}: {self.n_samples} samples, {self.n_features} features, {self.task} ({what})"

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, task={self.task!r}, n_samples={self.n_samples}, "
                f"n_features={self.n_features}" + (f", n_classes={self.n_classes})" if self.n_classes else ")"))


# ====================================================================== built-in: synthetic
def _rng(seed: Any) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int or a numpy Generator, got {type(seed).__name__} {seed!r}")
    return np.random.default_rng(int(seed))


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
        X = _rng(seed).uniform(-1.0, 1.0, size=(n_samples, 2))
    y = np.abs(X[:, 0]) + np.abs(X[:, 1]) - 1.0 + 0.5 * X[:, 0]
    if noise:
        y = y + _rng(seed).normal(0.0, noise, size=n_samples)
    return Dataset(X, y, "regression", ["x1", "x2"], name="seed",
                   description="the seed's regression: y = |x1| + |x2| - 1 + x1/2 on a 16x16 grid (5·ReLU fits it)",
                   target_name="y")


def make_sin(n_samples: int = 1000, noise: float = 0.05, seed: Any = 0) -> Dataset:
    """1-D curve: y = sin(x) + noise, x uniform in [-π, π]."""
    rng = _rng(seed)
    x = rng.uniform(-np.pi, np.pi, size=(n_samples, 1))
    y = np.sin(x[:, 0]) + rng.normal(0.0, noise, size=n_samples)
    return Dataset(x, y, "regression", ["x"], name="sin",
                   description=f"1-D curve y = sin(x) + N(0, {noise:g}²), x in [-π, π]", target_name="y")


def make_cubic(n_samples: int = 1000, noise: float = 0.05, seed: Any = 0) -> Dataset:
    """1-D curve: y = x³ - x + noise, x uniform in [-1.5, 1.5]."""
    rng = _rng(seed)
    x = rng.uniform(-1.5, 1.5, size=(n_samples, 1))
    y = x[:, 0] ** 3 - x[:, 0] + rng.normal(0.0, noise, size=n_samples)
    return Dataset(x, y, "regression", ["x"], name="cubic",
                   description=f"1-D curve y = x³ - x + N(0, {noise:g}²), x in [-1.5, 1.5]", target_name="y")


def make_friedman(n_samples: int = 2000, noise: float = 1.0, seed: Any = 0) -> Dataset:
    """Friedman #1, a noisy multivariate function of 10 features (5 of them irrelevant):
    y = 10 sin(π x1 x2) + 20 (x3 - 1/2)² + 10 x4 + 5 x5 + noise, x uniform in [0, 1]^10."""
    rng = _rng(seed)
    X = rng.uniform(0.0, 1.0, size=(n_samples, 10))
    y = (10 * np.sin(np.pi * X[:, 0] * X[:, 1]) + 20 * (X[:, 2] - 0.5) ** 2 + 10 * X[:, 3] + 5 * X[:, 4]
         + rng.normal(0.0, noise, size=n_samples))
    return Dataset(X, y, "regression", [f"x{i + 1}" for i in range(10)], name="friedman",
                   description=f"noisy multivariate function (Friedman #1) of 10 features, noise N(0, {noise:g}²)",
                   target_name="y")


def make_moons(n_samples: int = 1000, noise: float = 0.1, seed: Any = 0) -> Dataset:
    """Two interleaving half circles, 2 classes."""
    rng = _rng(seed)
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
    rng = _rng(seed)
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
    rng = _rng(seed)
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
    rng = _rng(seed)
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
        try:
            import sklearn.datasets as skd
        except ImportError:
            raise ImportError(
                f"dataset {name!r} is shipped by scikit-learn, which is not installed; "
                "install it with: pip install scikit-learn  (or: pip install 'handgrad[sklearn]')"
            ) from None
        bunch = getattr(skd, loader)()
        X = np.asarray(bunch.data, dtype=np.float64)
        names = [str(n) for n in getattr(bunch, "feature_names", [])] or None
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
    "seed": "256 points, y = |x1| + |x2| - 1 + x1/2 on a grid of [-1, 1]^2 (default of 'handgrad train')",
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
    "seed": ("regression", "generated", make_seed_regression),
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
DEFAULT_DATASET = "seed"


def _builtin_description(name: str) -> str:
    return _SKLEARN_DESCRIPTIONS.get(name) or _GENERATED_DESCRIPTIONS[name]


def list_datasets() -> list[DatasetInfo]:
    """Every built-in dataset: name, task, source and a one-line description."""
    return [DatasetInfo(name, task, source, _builtin_description(name)) for name, (task, source, _) in _BUILTIN.items()]


def is_builtin(name: str) -> bool:
    return isinstance(name, str) and name.strip().lower().replace("-", "_") in _BUILTIN


def load_dataset(name: str, *, seed: Any = 0, n_samples: int | None = None, noise: float | None = None) -> Dataset:
    """A built-in dataset by name (see :func:`list_datasets`).

    Generated data is drawn from ``np.random.default_rng(seed)`` (default 0, so a
    name always means the same data); ``n_samples`` and ``noise`` override the
    defaults of generated datasets.
    """
    task, source, loader = lookup_name("dataset", name, _BUILTIN)
    kwargs: dict[str, Any] = {"seed": seed}
    if source == "generated":
        if n_samples is not None:
            if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
                raise ValueError(f"n_samples must be an int >= 2, got {n_samples!r}")
            kwargs["n_samples"] = int(n_samples)
        if noise is not None:
            if not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise >= 0):
                raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
            kwargs["noise"] = float(noise)
    elif n_samples is not None or noise is not None:
        raise ValueError(f"dataset {name!r} is fixed data from scikit-learn; n_samples and noise do not apply")
    return loader(**kwargs)


# ====================================================================== user files
def load_data(source: str | os.PathLike, *, target: str | None = None, task: str | None = None,
              delimiter: str | None = None, drop: Sequence[str] = (), seed: Any = 0) -> Dataset:
    """A Dataset from a built-in name or a file (``.csv``/``.tsv``/``.txt``, ``.npz``, ``.parquet``).

    Parameters
    ----------
    source : a built-in dataset name ('moons', 'digits', ...) or a path.
    target : the target column of a CSV/Parquet file (default: the last column).
    task : 'regression' or 'classification'; inferred from the target when None
        (text, or integers with at most 20 distinct values, mean classification).
    delimiter : CSV delimiter; detected from the header when None.
    drop : columns to ignore (an id column, a text column).
    seed : seed of generated built-in datasets.
    """
    task = _check_task(task)
    path = os.fspath(source)
    if not os.path.exists(path) and is_builtin(path):
        if target is not None:
            raise ValueError(f"--target applies to files; built-in dataset {path!r} has its target already")
        ds = load_dataset(path, seed=seed)
        if task is not None and task != ds.task:
            raise ValueError(f"built-in dataset {path!r} is a {ds.task} dataset, not {task}")
        return ds
    _check_path(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        return load_npz(path, task=task)
    if ext in (".parquet", ".pq"):
        return load_parquet(path, target=target, task=task, drop=drop)
    if ext in (".csv", ".tsv", ".txt", ".data", ""):
        return load_csv(path, target=target, task=task, delimiter=delimiter, drop=drop)
    raise ValueError(f"{path!r}: unsupported file type {ext!r}; handgrad reads .csv, .tsv, .npz and .parquet files")


def _check_task(task: str | None) -> str | None:
    if task is None:
        return None
    return lookup_name("task", task, {t: t for t in TASKS})


def _check_path(path: str) -> None:
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a directory, not a data file")
    if not os.path.exists(path):
        close = _close_builtin(path)
        hint = f"; built-in datasets: {', '.join(_BUILTIN)}" if os.sep not in path and "." not in path else ""
        hint = f"; did you mean the built-in dataset {close!r}?" if close else hint
        raise FileNotFoundError(f"no such file: {path!r}{hint}")


def _close_builtin(name: str) -> str | None:
    import difflib

    close = difflib.get_close_matches(name.strip().lower(), list(_BUILTIN), n=1)
    return close[0] if close else None


def _open_error(path: str, exc: OSError) -> OSError:
    reason = exc.strerror or str(exc)
    return type(exc)(f"cannot read {path!r}: {reason} (errno {exc.errno})") if exc.errno else exc


# ---------------------------------------------------------------------- CSV
def load_csv(path: str | os.PathLike, *, target: str | None = None, task: str | None = None,
             delimiter: str | None = None, drop: Sequence[str] = ()) -> Dataset:
    """Read a CSV file with a header row. See :func:`load_data`.

    A UTF-8 byte-order mark and CRLF line endings are handled; a ``;``, tab or
    ``|`` delimiter is detected from the header. Errors name the file, the column
    and the 1-based line (the header is line 1).
    """
    path = os.fspath(path)
    _check_path(path)
    table, header, where = _read_csv_table(path, delimiter, min_columns=2)
    return _from_table(table, header, target, task, drop, path, where, text_cells=True)


def _read_csv_table(path: str, delimiter: str | None, *, min_columns: int) -> tuple[dict, list[str], list[str]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path!r} is not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise _open_error(path, exc) from None
    if not text.strip():
        raise ValueError(f"{path!r} is empty: no header and no data rows")
    header, rows, lines = _read_rows(text, path, delimiter, min_columns)
    table = {name: [row[j] for row in rows] for j, name in enumerate(header)}
    return table, header, [f"line {n}" for n in lines]


def _read_rows(text: str, path: str, delimiter: str | None,
               min_columns: int) -> tuple[list[str], list[list[str]], list[int]]:
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if delimiter is None:
        delimiter = "\t" if path.lower().endswith(".tsv") else _detect_delimiter(first)
    reader = csv.reader(lines, delimiter=delimiter)
    header: list[str] | None = None
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        if header is None:
            header = [cell.strip() for cell in row]
            _check_header(header, path, delimiter, min_columns)
            continue
        if len(row) != len(header):
            raise ValueError(f"{path!r}, line {line}: {len(row)} field(s), but the header has {len(header)} "
                             f"(delimiter {delimiter!r})")
        rows.append(row)
        line_numbers.append(line)
    if not rows:
        raise ValueError(f"no data rows in {path!r} (only a header)")
    return header, rows, line_numbers


def _detect_delimiter(header_line: str) -> str:
    if "," in header_line:
        return ","
    counts = {d: header_line.count(d) for d in DELIMITERS[1:]}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _check_header(header: list[str], path: str, delimiter: str, min_columns: int) -> None:
    if len(header) < min_columns:
        others = [d for d in DELIMITERS if d != delimiter and d in header[0]]
        guess = f"; the header contains {others[0]!r}: is that the delimiter?" if others else ""
        raise ValueError(f"only 1 column found in {path!r} with delimiter {delimiter!r}{guess} "
                         "(a data file needs at least one feature column and a target column)")
    seen: set[str] = set()
    for j, name in enumerate(header):
        if not name:
            raise ValueError(f"{path!r}, line 1: column {j + 1} has an empty name in the header")
        if name in seen:
            raise ValueError(f"{path!r}, line 1: column name {name!r} appears twice in the header")
        seen.add(name)


# ---------------------------------------------------------------------- NPZ
def load_npz(path: str | os.PathLike, *, task: str | None = None) -> Dataset:
    """Read ``X`` (n, d) and ``y`` from an ``.npz`` file (``allow_pickle=False``).

    Optional keys: ``feature_names`` (d strings) and ``class_labels``.
    """
    path = os.fspath(path)
    _check_path(path)
    task = _check_task(task)
    import zipfile

    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path!r} is not a valid .npz file (not a zip archive of arrays; save with np.savez)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            missing = [k for k in ("X", "y") if k not in keys]
            if missing:
                raise ValueError(f"{path!r} has no {' or '.join(repr(k) for k in missing)} array; "
                                 f"found keys: {', '.join(map(repr, keys)) or 'none'} (save with np.savez(path, X=X, y=y))")
            X, y = npz["X"], npz["y"]
            names = [str(n) for n in npz["feature_names"]] if "feature_names" in keys else None
            labels = [_plain(v) for v in npz["class_labels"].tolist()] if "class_labels" in keys else None
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise ValueError(f"{path!r} holds an object array, which handgrad never loads (pickle); "
                             "save plain numeric arrays") from None
        if str(exc).startswith(repr(path)):
            raise
        raise ValueError(f"{path!r} is not a valid .npz file: {exc}") from None
    except OSError as exc:
        if exc.errno:
            raise _open_error(path, exc) from None
        raise ValueError(f"{path!r} is not a valid .npz file: {exc}") from None
    except Exception as exc:  # zipfile.BadZipFile, EOFError, ...
        raise ValueError(f"{path!r} is not a valid .npz file ({type(exc).__name__}: {exc})") from None
    if X.ndim != 2:
        raise ValueError(f"{path!r}: X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{path!r}: X must hold numbers, got dtype {X.dtype}")
    if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
        raise ValueError(f"{path!r}: y must have one row per row of X ({X.shape[0]}), got shape {y.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"no data rows in {path!r} (X has shape {X.shape})")
    X = X.astype(np.float64)
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        r, c = (int(i) for i in bad[0])
        raise ValueError(f"{path!r}: X contains {_nonfinite_word(X[r, c])} at row {r} (0-based), column {c} "
                         f"({len(bad)} non-finite value(s) in all)")
    name = os.path.basename(path)
    if y.ndim == 2 and y.shape[1] > 1:
        if task == "classification":
            raise ValueError(f"{path!r}: y has {y.shape[1]} columns; classification needs one label per row")
        return _regression(X, _numeric_target(y, path), names, name, path, "y")
    ds = _target_dataset(X, y.reshape(-1), task, names, name, path, "y", [f"row {i}" for i in range(len(y))])
    if labels is not None and ds.task == "classification":
        if len(labels) != ds.n_classes:
            raise ValueError(f"{path!r}: class_labels has {len(labels)} entries for {ds.n_classes} classes")
        ds.class_labels = labels
    return ds


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float)) else str(value)


def _numeric_target(y: np.ndarray, path: str) -> np.ndarray:
    if y.dtype.kind not in "biuf":
        raise ValueError(f"{path!r}: a regression target must hold numbers, got dtype {y.dtype}")
    y = y.astype(np.float64)
    if not np.isfinite(y).all():
        r = int(np.argwhere(~np.isfinite(y))[0][0])
        raise ValueError(f"{path!r}: y contains NaN or infinity at row {r} (0-based)")
    return y


def _nonfinite_word(value: float) -> str:
    return "NaN" if math.isnan(value) else "infinity"


# ---------------------------------------------------------------------- Parquet
def load_parquet(path: str | os.PathLike, *, target: str | None = None, task: str | None = None,
                 drop: Sequence[str] = ()) -> Dataset:
    """Read a Parquet file with pyarrow (or pandas). Rows in errors are 1-based data rows."""
    path = os.fspath(path)
    _check_path(path)
    columns = _read_parquet_columns(path)
    header = list(columns)
    if not header:
        raise ValueError(f"{path!r} has no columns")
    n = len(next(iter(columns.values())))
    if n == 0:
        raise ValueError(f"no data rows in {path!r}")
    return _from_table(columns, header, target, task, drop, path, [f"row {i + 1}" for i in range(n)],
                       text_cells=False)


def _read_parquet_columns(path: str) -> dict[str, np.ndarray]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        pq = None
    try:
        if pq is not None:
            table = pq.read_table(path)
            return {str(name): _arrow_column(table.column(name)) for name in table.column_names}
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                f"reading Parquet ({path!r}) needs pyarrow: pip install pyarrow  (or: pip install 'handgrad[parquet]')"
            ) from None
        frame = pd.read_parquet(path)
        return {str(name): frame[name].to_numpy(dtype=object) for name in frame.columns}
    except ImportError:
        raise
    except OSError as exc:
        if exc.errno:
            raise _open_error(path, exc) from None
        raise ValueError(f"{path!r} is not a valid Parquet file: {exc}") from None
    except Exception as exc:
        raise ValueError(f"{path!r} is not a valid Parquet file ({type(exc).__name__}: {exc})") from None


def _arrow_column(col: Any) -> np.ndarray:
    values = col.to_pylist()
    return np.array(values, dtype=object)


# ====================================================================== columns -> Dataset
def _from_table(table: dict[str, Any], header: list[str], target: str | None, task: str | None,
                drop: Sequence[str], path: str, where: list[str], *, text_cells: bool) -> Dataset:
    """Turn named columns into a Dataset: every feature numeric, the target typed by ``task``."""
    for name in drop:
        if name not in table:
            raise ValueError(f"{path!r}: cannot drop column {name!r}: no such column; columns: {', '.join(header)}")
    if target is None:
        target = header[-1]
    elif target not in table:
        import difflib

        close = difflib.get_close_matches(target, header, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{path!r} has no target column {target!r}; columns: {', '.join(header)}{hint}")
    features = [name for name in header if name != target and name not in drop]
    if not features:
        raise ValueError(f"{path!r}: no feature columns left besides the target {target!r}")
    X = np.column_stack([_feature_column(table[name], name, path, where, text_cells) for name in features])
    y = np.asarray(table[target], dtype=object)
    return _target_dataset(X, y, task, features, os.path.basename(path), path, target, where,
                           text_cells=text_cells)


def _feature_column(values: Any, name: str, path: str, where: list[str], text_cells: bool) -> np.ndarray:
    try:  # fast path: every cell a finite number
        fast = np.asarray(values, dtype=np.float64)
        if fast.ndim == 1 and np.isfinite(fast).all():
            return fast
    except (TypeError, ValueError):
        pass
    out = np.empty(len(values), dtype=np.float64)  # slow path: find and name the first bad cell
    for i, value in enumerate(values):
        number = _cell_number(value, text_cells)
        if number is _MISSING:
            raise ValueError(f"{path!r}: missing value at {where[i]}, column {name!r}")
        if number is None:
            raise ValueError(f"{path!r}: non-numeric value {str(value).strip()!r} at {where[i]}, column {name!r} "
                             "(features must be numbers; drop text columns with --drop)")
        if not math.isfinite(number):
            raise ValueError(f"{path!r}: {_nonfinite_word(number)} ({str(value).strip()!r}) at {where[i]}, "
                             f"column {name!r}; features must be finite numbers")
        out[i] = number
    return out


_MISSING = object()


def _cell_number(value: Any, text_cells: bool) -> Any:
    """A float, _MISSING for an empty/NA cell, or None for text."""
    if value is None:
        return _MISSING
    if isinstance(value, str) or text_cells:
        text = str(value).strip()
        if text.lower() in MISSING_TOKENS:
            return _MISSING
        try:
            return float(text)
        except ValueError:
            return None
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return _MISSING if math.isnan(number) else number


def _target_dataset(X: np.ndarray, y: np.ndarray, task: str | None, names: list[str] | None, name: str,
                    path: str, target: str, where: list[str], *, text_cells: bool = False) -> Dataset:
    values, numbers = _target_values(y, path, target, where, text_cells)
    if task is None:
        task = _infer_task(numbers)
    if task == "regression":
        if numbers is None:
            i = next(i for i, v in enumerate(values) if _cell_number(v, text_cells) is None)
            raise ValueError(f"{path!r}: target column {target!r} holds text ({str(values[i]).strip()!r} at "
                             f"{where[i]}); regression needs numbers (use --task classification)")
        return _regression(X, numbers, names, name, path, target)
    labels, index = _classes(values, numbers)
    description = f"{path}: target {target!r}, {len(labels)} classes"
    return Dataset(X, index, "classification", names, labels, name, description, target)


def _regression(X: np.ndarray, y: np.ndarray, names: list[str] | None, name: str, path: str, target: str) -> Dataset:
    bad = np.argwhere(~np.isfinite(y))
    if bad.size:
        raise ValueError(f"{path!r}: target {target!r} contains NaN or infinity at row {int(bad[0][0])} (0-based)")
    return Dataset(X, y, "regression", names, None, name, f"{path}: target {target!r}", target)


def _target_values(y: np.ndarray, path: str, target: str, where: list[str],
                   text_cells: bool) -> tuple[list[Any], np.ndarray | None]:
    """The target's cells, and their float values when every cell is a number (else None)."""
    if y.dtype.kind in "biuf":
        numbers = y.astype(np.float64)
        bad = np.argwhere(~np.isfinite(numbers))
        if bad.size:
            i = int(bad[0][0])
            raise ValueError(f"{path!r}: missing or non-finite target at {where[i]}, column {target!r}")
        return list(y.tolist()), numbers
    values = list(y.tolist())
    numbers_list: list[float] | None = []
    for i, value in enumerate(values):
        number = _cell_number(value, text_cells)
        if number is _MISSING:
            raise ValueError(f"{path!r}: missing value at {where[i]}, column {target!r} (the target)")
        if number is None:
            numbers_list = None
        elif numbers_list is not None:
            if not math.isfinite(number):
                raise ValueError(f"{path!r}: {_nonfinite_word(number)} at {where[i]}, column {target!r} (the target)")
            numbers_list.append(number)
    if numbers_list is None:
        return [str(v).strip() for v in values], None
    return values, np.asarray(numbers_list, dtype=np.float64)


def _infer_task(numbers: np.ndarray | None) -> str:
    if numbers is None:
        return "classification"
    integral = bool(np.all(numbers == np.round(numbers)))
    return "classification" if integral and len(np.unique(numbers)) <= MAX_INFERRED_CLASSES else "regression"


def _classes(values: list[Any], numbers: np.ndarray | None) -> tuple[list[Any], np.ndarray]:
    if numbers is not None:
        uniq, index = np.unique(numbers, return_inverse=True)
        integral = bool(np.all(uniq == np.round(uniq)))
        labels = [int(u) if integral else float(u) for u in uniq]
        return labels, index.astype(np.int64)
    uniq, index = np.unique(np.asarray(values, dtype=str), return_inverse=True)
    return [str(u) for u in uniq], index.astype(np.int64)


def infer_task(y: Any) -> str:
    """'classification' for text or integer targets with few distinct values, else 'regression'."""
    arr = np.asarray(y)
    if arr.dtype.kind in "biuf":
        return _infer_task(arr.astype(np.float64).reshape(-1))
    return "classification"


# ====================================================================== splits
def train_val_test_split(ds: Dataset, val_fraction: float = 0.15, test_fraction: float = 0.15, *,
                         seed: Any = 0, stratify: bool | None = None) -> tuple[Dataset, Dataset, Dataset]:
    """Shuffle and split into train, validation and test sets (seeded).

    Classification data is stratified by default: each class is split in the
    given fractions, so rare classes appear in every split when they can.
    A fraction of 0 gives an empty split.
    """
    for name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= frac < 1:
            raise ValueError(f"{name} must be a number in [0, 1), got {frac!r}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction must be below 1 (some data must train), "
                         f"got {val_fraction:g} + {test_fraction:g}")
    rng = _rng(seed)
    if stratify is None:
        stratify = ds.task == "classification"
    groups = [np.flatnonzero(ds.y == k) for k in range(ds.n_classes)] if stratify else [np.arange(ds.n_samples)]
    parts: list[list[np.ndarray]] = [[], [], []]
    for idx in groups:
        idx = rng.permutation(idx)
        n_test = int(round(test_fraction * len(idx)))
        n_val = int(round(val_fraction * len(idx)))
        if n_test + n_val >= len(idx) and len(idx) > 0:  # keep at least one sample of each group to train on
            n_val = max(0, min(n_val, len(idx) - 1 - n_test))
            n_test = max(0, min(n_test, len(idx) - 1))
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test:n_test + n_val])
        parts[0].append(idx[n_test + n_val:])
    train, val, test = (ds.subset(rng.permutation(np.concatenate(p)).astype(np.int64)) for p in parts)
    if train.n_samples == 0:
        raise ValueError(f"{ds.name}: no samples left to train on after the split")
    return train, val, test


# ====================================================================== scaling
class Standardizer:
    """Feature scaling x' = (x - mean) / scale, fitted on the training split only.

    Constant columns get scale 1 (they become 0, never NaN). The state is plain
    JSON-able data (:meth:`to_dict` / :meth:`from_dict`) so it is saved with the model.
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def fit(self, X: Any) -> Standardizer:
        X = _as_2d_float(X, "Standardizer.fit")
        if X.shape[0] == 0:
            raise ValueError("Standardizer.fit needs at least one row, got 0")
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std > 1e-12 * np.maximum(1.0, np.abs(self.mean_)), std, 1.0)
        return self

    def _check(self, X: Any, what: str) -> np.ndarray:
        if self.mean_ is None:
            raise RuntimeError(f"Standardizer.{what} called before fit")
        X = _as_2d_float(X, f"Standardizer.{what}")
        if X.shape[1] != self.mean_.shape[0]:
            raise ValueError(f"X has {X.shape[1]} features, but the Standardizer was fitted on {self.mean_.shape[0]}")
        return X

    def transform(self, X: Any) -> np.ndarray:
        return (self._check(X, "transform") - self.mean_) / self.scale_

    def fit_transform(self, X: Any) -> np.ndarray:
        return self.fit(X).transform(X)

    def inverse_transform(self, X: Any) -> np.ndarray:
        return self._check(X, "inverse_transform") * self.scale_ + self.mean_

    def to_dict(self) -> dict[str, Any]:
        if self.mean_ is None:
            raise RuntimeError("Standardizer.to_dict called before fit")
        return {"type": "standardize", "mean": [float(v) for v in self.mean_],
                "scale": [float(v) for v in self.scale_]}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Standardizer:
        if not isinstance(state, dict) or state.get("type") != "standardize":
            raise ValueError(f"not a Standardizer state: {state!r:.80}")
        mean = np.asarray(state.get("mean"), dtype=np.float64)
        scale = np.asarray(state.get("scale"), dtype=np.float64)
        if mean.ndim != 1 or mean.shape != scale.shape:
            raise ValueError(f"Standardizer state: mean and scale must be equal-length lists, "
                             f"got shapes {mean.shape} and {scale.shape}")
        if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError("Standardizer state: mean and scale must be finite and scale > 0")
        out = cls()
        out.mean_, out.scale_ = mean, scale
        return out

    def __repr__(self) -> str:
        n = "unfitted" if self.mean_ is None else f"n_features={self.mean_.shape[0]}"
        return f"Standardizer({n})"


def _as_2d_float(X: Any, what: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{what} expects a 2-D array (n_samples, n_features), got shape {X.shape}")
    return X


# ====================================================================== features of new data
def load_features(source: str | os.PathLike, feature_names: Sequence[str], *, target: str | None = None,
                  delimiter: str | None = None) -> tuple[np.ndarray, list[Any] | np.ndarray | None, list[str]]:
    """X for a trained model, from a file or a built-in name, with the model's columns.

    CSV and Parquet columns are matched by name (their order in the file does not
    matter, extra columns are ignored); a missing column raises listing the
    expected and the found columns. Returns ``(X, y, where)``: ``y`` holds the raw
    target cells when the ``target`` column is present (else None), ``where`` the
    location of each row for error messages.
    """
    path = os.fspath(source)
    if not os.path.exists(path) and is_builtin(path):
        ds = load_dataset(path)
        if list(ds.feature_names) != list(feature_names):
            raise ValueError(f"built-in dataset {ds.name!r} has features {ds.feature_names}, "
                             f"but the model expects {list(feature_names)}")
        y = [ds.class_labels[i] for i in ds.y] if ds.task == "classification" else ds.y
        return ds.X, y, [f"row {i}" for i in range(ds.n_samples)]
    _check_path(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        ds = load_npz(path)
        if ds.n_features != len(feature_names):
            raise ValueError(f"{path!r}: X has {ds.n_features} features, but the model expects {len(feature_names)}")
        y = [ds.class_labels[i] for i in ds.y] if ds.task == "classification" else ds.y
        return ds.X, y, [f"row {i}" for i in range(ds.n_samples)]
    if ext in (".parquet", ".pq"):
        table = _read_parquet_columns(path)
        header = list(table)
        n = len(next(iter(table.values()))) if header else 0
        where, text_cells = [f"row {i + 1}" for i in range(n)], False
    else:
        table, header, where = _read_csv_table(path, delimiter, min_columns=1)
        text_cells = True
    missing = [name for name in feature_names if name not in table]
    if missing:
        raise ValueError(f"{path!r} lacks the model's feature column(s) {', '.join(map(repr, missing))}; "
                         f"expected: {', '.join(feature_names)}; found: {', '.join(header)}")
    if not where:
        raise ValueError(f"no data rows in {path!r}")
    X = np.column_stack([_feature_column(table[name], name, path, where, text_cells) for name in feature_names])
    y = list(table[target]) if target is not None and target in table else None
    return X, y, where


def encode_labels(cells: Sequence[Any], class_labels: Sequence[Any], *, source: str = "data",
                  column: str = "target", where: Sequence[str] | None = None) -> np.ndarray:
    """Class indices of raw label cells ('setosa', 3, '3.0') against a model's class labels.

    A label the model never saw raises ValueError naming it, its row and the known labels.
    """
    lookup = {_label_key(label): k for k, label in enumerate(class_labels)}
    out = np.empty(len(cells), dtype=np.int64)
    for i, cell in enumerate(cells):
        key = _label_key(cell)
        if key not in lookup:
            at = f" at {where[i]}" if where is not None else f" at row {i}"
            known = ", ".join(repr(label) for label in class_labels)
            raise ValueError(f"{source!r}: label {cell!r}{at}, column {column!r}, is not one of the model's "
                             f"classes ({known})")
        out[i] = lookup[key]
    return out


def _label_key(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        return str(int(number)) if math.isfinite(number) and number == round(number) else repr(number)
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if math.isfinite(number) and number == round(number) else repr(number)


def regression_targets(cells: Any, *, source: str = "data", column: str = "target",
                       where: Sequence[str] | None = None) -> np.ndarray:
    """Float targets (n, k) from raw cells, with missing or text cells named by row."""
    arr = np.asarray(cells, dtype=object) if not isinstance(cells, np.ndarray) else cells
    if arr.dtype.kind in "biuf":
        y = arr.astype(np.float64)
    else:
        y = np.empty(len(arr), dtype=np.float64)
        for i, cell in enumerate(arr):
            number = _cell_number(cell, isinstance(cell, str))
            at = where[i] if where is not None else f"row {i}"
            if number is _MISSING or number is None:
                raise ValueError(f"{source!r}: {'missing' if number is _MISSING else 'non-numeric'} target "
                                 f"{cell!r} at {at}, column {column!r}")
            y[i] = number
    if not np.isfinite(y).all():
        i = int(np.argwhere(~np.isfinite(y))[0][0])
        raise ValueError(f"{source!r}: non-finite target at {where[i] if where else f'row {i}'}, column {column!r}")
    return y.reshape(len(y), -1)


__all__ = [
    "DEFAULT_DATASET", "TASKS", "Dataset", "DatasetInfo", "Standardizer", "infer_task", "is_builtin", "list_datasets",
    "encode_labels", "load_csv", "load_data", "load_dataset", "load_features", "load_npz", "load_parquet", "make_circles", "make_cubic",
    "make_friedman", "make_moons", "make_seed_regression", "make_sin", "make_spirals", "make_xor",
    "regression_targets", "train_val_test_split",
]
