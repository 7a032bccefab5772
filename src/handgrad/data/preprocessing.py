"""Preparing a Dataset for training: the seeded train/validation/test split and the Standardizer."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..validation import check_unit_interval, make_rng
from .dataset import Dataset


def train_val_test_split(ds: Dataset, val_fraction: float = 0.15, test_fraction: float = 0.15, *,
                         seed: Any = 0, stratify: bool | None = None) -> tuple[Dataset, Dataset, Dataset]:
    """Shuffle and split into train, validation and test sets (seeded).

    Classification data is stratified by default: each class is split in the
    given fractions, so rare classes appear in every split when they can.
    A fraction of 0 gives an empty split.
    """
    val_fraction = check_unit_interval("val_fraction", val_fraction)
    test_fraction = check_unit_interval("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction must be below 1 (some data must train), "
                         f"got {val_fraction:g} + {test_fraction:g}")
    rng = make_rng(seed)
    if stratify is None:
        stratify = ds.task == "classification"
    groups = [np.flatnonzero(ds.y == k) for k in range(ds.n_classes or 0)] if stratify else [np.arange(ds.n_samples)]
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
        # scale each column by its largest |x| first, then square: the variance of values near the edge of
        # the float range (|x| > 1.3e154) would overflow to inf and zero the column
        peak = np.max([np.max(np.abs(X[rows]), axis=0) for rows in _chunks(X)], axis=0)
        peak = np.where(peak > 0, peak, 1.0).astype(np.float64)  # a float32 column is scaled in float64 too
        if X.shape[0] <= ROWS_PER_CHUNK:
            U = X / peak
            mean, std = U.mean(axis=0), U.std(axis=0)
        else:
            mean, std = _mean_std(X, peak)
        self.mean_ = mean * peak
        std = std * peak
        self.scale_ = np.where(std > 1e-12 * np.maximum(1.0, np.abs(self.mean_)), std, 1.0)
        return self

    @property
    def n_features(self) -> int:
        """Columns seen by :meth:`fit` (0 before it)."""
        return 0 if self.mean_ is None else int(self.mean_.shape[0])

    def _check(self, X: Any, what: str) -> np.ndarray:
        if self.mean_ is None:
            raise RuntimeError(f"Standardizer.{what} called before fit")
        X = _as_2d_float(X, f"Standardizer.{what}")
        if X.shape[1] != self.mean_.shape[0]:
            raise ValueError(f"X has {X.shape[1]} features, but the Standardizer was fitted on {self.mean_.shape[0]}")
        return X

    def transform(self, X: Any) -> np.ndarray:
        """(X - mean) / scale, computed in float64; float32 X gives float32 (each value rounded once, as a
        float32 network rounds the float64 result), any other float64. Done a block of rows at a time, so
        that no float64 temporary of the whole data is made."""
        X = self._check(X, "transform")
        mean, scale = self.mean_, self.scale_
        assert mean is not None and scale is not None  # _check raised before fit
        out = np.empty(X.shape, dtype=X.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            for rows in _chunks(X):
                x = X[rows]
                Z = (x - mean) / scale
                if not np.isfinite(Z).all():  # x − mean beyond the float range: halve both (exact), then divide
                    Z = np.where(np.isfinite(Z), Z, (x * 0.5 - mean * 0.5) / (scale * 0.5))
                out[rows] = Z
        return out

    def fit_transform(self, X: Any) -> np.ndarray:
        return self.fit(X).transform(X)

    def inverse_transform(self, X: Any) -> np.ndarray:
        return self._check(X, "inverse_transform") * self.scale_ + self.mean_

    def to_dict(self) -> dict[str, Any]:
        if self.mean_ is None or self.scale_ is None:
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


ROWS_PER_CHUNK = 1 << 16  # rows scaled at a time: the float64 temporaries stay a few MB whatever the data's size


def _chunks(X: np.ndarray) -> list[slice]:
    return [slice(start, start + ROWS_PER_CHUNK) for start in range(0, max(1, X.shape[0]), ROWS_PER_CHUNK)]


def _mean_std(X: np.ndarray, peak: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(X / peak).mean(axis=0)`` and ``.std(axis=0)`` a block of rows at a time, summed row after row into the
    running sum as NumPy sums along axis 0 (so the result is the one-array formula's, bit for bit)."""
    n = X.shape[0]
    total = np.zeros(X.shape[1])
    for rows in _chunks(X):
        total = np.add.reduce(np.concatenate([total[None], X[rows] / peak]), axis=0)
    mean = total / n
    squares = np.zeros(X.shape[1])
    for rows in _chunks(X):
        d = X[rows] / peak - mean
        squares = np.add.reduce(np.concatenate([squares[None], d * d]), axis=0)
    return mean, np.sqrt(squares / n)


def _as_2d_float(X: Any, what: str) -> np.ndarray:
    """X as a float array: float32 stays float32 (scaled in float64 a block at a time), any other is float64."""
    X = np.asarray(X)
    if X.dtype != np.float32:
        X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{what} expects a 2-D array (n_samples, n_features), got shape {X.shape}")
    return X




__all__ = ["Standardizer", "train_val_test_split"]
