"""The :class:`Dataset`: features, targets and the facts needed to train, save and report on them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..validation import lookup_name

TASKS = ("regression", "classification")


def check_task(task: str | None) -> str | None:
    """None, or 'regression' / 'classification' (any case, as users type it)."""
    if task is None:
        return None
    return lookup_name("task", task, {t: t for t in TASKS})


@dataclass
class Dataset:
    """Features and targets with the facts needed to train, save and report on them.

    Attributes
    ----------
    X : float64 array (n_samples, n_features); a float32 X is kept as it is (data read for a float32
        network, e.g. ``load_data(..., dtype="float32")``), any other becomes float64.
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
        X = np.asarray(self.X)
        self.X = X if X.dtype == np.float32 else np.asarray(X, dtype=np.float64)
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
        return len(self.class_labels or []) if self.task == "classification" else None

    @property
    def n_targets(self) -> int:
        return 1 if self.task == "classification" else int(self.y.shape[1])

    def subset(self, index: Any) -> Dataset:
        """The rows ``index`` (an index array or a boolean mask) as a new Dataset."""
        return replace(self, X=self.X[index], y=self.y[index])

    def summary(self) -> str:
        what = (f"{self.n_classes} classes" if self.task == "classification"
                else f"{self.n_targets} target{'s' if self.n_targets > 1 else ''}")
        features = f"{self.n_features} feature{'s' if self.n_features != 1 else ''}"
        return f"{self.name}: {self.n_samples} samples, {features}, {self.task} ({what})"

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, task={self.task!r}, n_samples={self.n_samples}, "
                f"n_features={self.n_features}" + (f", n_classes={self.n_classes})" if self.n_classes else ")"))



__all__ = ["TASKS", "Dataset", "check_task"]
