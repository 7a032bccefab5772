r"""Metrics that do not depend on the training loss: pure NumPy, float64, scikit-learn's definitions.

Regression (y and ŷ of shape (N,) or (N, K); K > 1 outputs are averaged uniformly)::

    mse = (1/N) Σ_n (y_n - ŷ_n)²
    mae = (1/N) Σ_n |y_n - ŷ_n|
    r2  = 1 - Σ_n (y_n - ŷ_n)² / Σ_n (y_n - ȳ)²

Classification::

    accuracy = (1/N) Σ_n [label_n = predicted_n]
    log_loss = -(1/N) Σ_n log p_n[label_n]      (p clipped to [1e-15, 1 - 1e-15])

>>> mse([1.0, 2.0], [1.0, 4.0])
2.0
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend import to_numpy

EPS = 1e-15  # probability clip for log_loss, so a confident mistake costs -log(1e-15) ≈ 34.5


def _pair(y_true: Any, y_pred: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(to_numpy(y_true), dtype=np.float64)
    p = np.asarray(to_numpy(y_pred), dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if p.ndim == 1:
        p = p[:, None]
    if y.shape != p.shape or y.ndim != 2:
        raise ValueError(f"{what}: y_true and y_pred must have the same shape (N,) or (N, K), "
                         f"got {np.shape(y_true)} and {np.shape(y_pred)}")
    if y.shape[0] == 0:
        raise ValueError(f"{what}: no samples (0 rows)")
    return y, p


def mse(y_true: Any, y_pred: Any) -> float:
    """Mean squared error, averaged over samples and then over outputs."""
    y, p = _pair(y_true, y_pred, "mse")
    return float(np.mean((y - p) ** 2))


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error, averaged over samples and then over outputs."""
    y, p = _pair(y_true, y_pred, "mae")
    return float(np.mean(np.abs(y - p)))


def r2(y_true: Any, y_pred: Any) -> float:
    r"""Coefficient of determination R² = 1 - SS_res/SS_tot, per output, then averaged.

    As in scikit-learn: an output with constant y scores 1.0 if predicted exactly and
    0.0 otherwise (SS_tot = 0 leaves R² undefined).
    """
    y, p = _pair(y_true, y_pred, "r2")
    ss_res = np.sum((y - p) ** 2, axis=0)
    ss_tot = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
    scores = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.where(ss_res == 0, 1.0, 0.0))
    return float(np.mean(scores))


def accuracy(labels: Any, predicted: Any) -> float:
    """Fraction of samples whose predicted label equals the true label."""
    a = np.asarray(to_numpy(labels))
    b = np.asarray(to_numpy(predicted))
    if a.shape != b.shape:
        raise ValueError(f"accuracy: labels and predictions must have the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError("accuracy: no samples (0 rows)")
    return float(np.mean(a == b))


def log_loss(labels: Any, proba: Any) -> float:
    r"""Cross-entropy of integer labels (N,) under predicted probabilities.

    ``proba`` is (N, C) with rows summing to 1, or (N,) / (N, 1) holding P(class 1) for a
    binary problem. Probabilities are clipped to [1e-15, 1 - 1e-15].
    """
    y = np.asarray(to_numpy(labels)).reshape(-1)
    p = np.asarray(to_numpy(proba), dtype=np.float64)
    if p.ndim == 1 or (p.ndim == 2 and p.shape[1] == 1):
        p1 = p.reshape(-1)
        p = np.stack([1.0 - p1, p1], axis=1)
    if p.ndim != 2 or p.shape[0] != y.shape[0]:
        raise ValueError(f"log_loss: expected probabilities of shape ({y.shape[0]}, C), got {np.shape(proba)}")
    if y.size == 0:
        raise ValueError("log_loss: no samples (0 rows)")
    if y.dtype.kind == "f":
        if not np.all(y == np.round(y)):
            raise ValueError("log_loss: labels must be integer class indices")
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"log_loss: labels must be integers in [0, {p.shape[1]}), got values {np.unique(y)[:5]}")
    picked = np.clip(p[np.arange(y.shape[0]), y], EPS, 1.0 - EPS)
    return float(-np.mean(np.log(picked)))


def _labels(labels: Any, predicted: Any, n_classes: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(to_numpy(labels)).reshape(-1)
    b = np.asarray(to_numpy(predicted)).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"{what}: labels and predictions must have the same shape, got {a.shape} and {b.shape}")
    for name, v in (("labels", a), ("predictions", b)):
        if v.size and (v.dtype.kind not in "iu" or v.min() < 0 or v.max() >= n_classes):
            raise ValueError(f"{what}: {name} must be integer class indices in [0, {n_classes}), "
                             f"got {np.unique(v)[:5]}")
    return a.astype(np.int64), b.astype(np.int64)


def confusion_matrix(labels: Any, predicted: Any, n_classes: int) -> np.ndarray:
    """C[i, j] = the number of samples of true class i predicted as class j (scikit-learn's layout)."""
    a, b = _labels(labels, predicted, n_classes, "confusion_matrix")
    C = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(C, (a, b), 1)
    return C


def per_class(labels: Any, predicted: Any, n_classes: int) -> dict[str, list[float]]:
    r"""Precision, recall, F1 and support of each class, from the confusion matrix C::

        precision_k = C[k, k] / Σ_i C[i, k]     (0 when class k is never predicted, as scikit-learn's zero_division=0)
        recall_k    = C[k, k] / Σ_j C[k, j]     (0 when class k has no samples)
        F1_k        = 2 precision_k recall_k / (precision_k + recall_k)
        support_k   = Σ_j C[k, j]

    >>> per_class([0, 0, 1], [0, 1, 1], 2)["recall"]
    [0.5, 1.0]
    """
    C = confusion_matrix(labels, predicted, n_classes).astype(np.float64)
    hit = np.diag(C)
    predicted_k, support = C.sum(axis=0), C.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted_k > 0, hit / predicted_k, 0.0)
        recall = np.where(support > 0, hit / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {"precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist(),
            "support": support.astype(int).tolist()}


REGRESSION_METRICS = {"mse": mse, "mae": mae, "r2": r2}

__all__ = ["accuracy", "confusion_matrix", "log_loss", "mae", "mse", "per_class", "r2"]
