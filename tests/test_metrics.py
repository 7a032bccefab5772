"""Metrics: scikit-learn's definitions, shapes and error messages."""

from __future__ import annotations

import numpy as np
import pytest

from handgrad import metrics as M


def test_small_examples_by_hand():
    assert M.mse([1.0, 2.0], [1.0, 4.0]) == 2.0
    assert M.mae([1.0, 2.0], [1.0, 4.0]) == 1.0
    assert M.r2([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 1.0
    assert M.r2([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]) == 0.0
    assert M.accuracy([0, 1, 1, 2], [0, 1, 2, 2]) == 0.75
    assert M.log_loss([1, 0], [0.5, 0.5]) == pytest.approx(np.log(2))


def test_regression_metrics_match_sklearn(rng):
    sk = pytest.importorskip("sklearn.metrics")
    y, p = rng.standard_normal((50, 3)), rng.standard_normal((50, 3))
    assert M.mse(y, p) == pytest.approx(sk.mean_squared_error(y, p), rel=1e-12)
    assert M.mae(y, p) == pytest.approx(sk.mean_absolute_error(y, p), rel=1e-12)
    assert M.r2(y, p) == pytest.approx(sk.r2_score(y, p), rel=1e-12)
    assert M.r2(y[:, 0], p[:, 0]) == pytest.approx(sk.r2_score(y[:, 0], p[:, 0]), rel=1e-12)


def test_r2_of_constant_target_follows_sklearn():
    assert M.r2([2.0, 2.0], [2.0, 2.0]) == 1.0
    assert M.r2([2.0, 2.0], [1.0, 2.0]) == 0.0


def test_classification_metrics_match_sklearn(rng):
    sk = pytest.importorskip("sklearn.metrics")
    labels = rng.integers(0, 4, 60)
    logits = rng.standard_normal((60, 4))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert M.log_loss(labels, proba) == pytest.approx(sk.log_loss(labels, proba, labels=[0, 1, 2, 3]), rel=1e-12)
    assert M.accuracy(labels, proba.argmax(1)) == sk.accuracy_score(labels, proba.argmax(1))
    p1 = rng.uniform(0.01, 0.99, 60)
    b = rng.integers(0, 2, 60)
    assert M.log_loss(b, p1) == pytest.approx(sk.log_loss(b, p1), rel=1e-12)
    assert M.log_loss(b, p1[:, None]) == pytest.approx(sk.log_loss(b, p1), rel=1e-12)


def test_log_loss_is_finite_for_certain_mistakes():
    assert M.log_loss([1, 0], [0.0, 1.0]) == pytest.approx(-np.log(1e-15))


def test_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"same shape.*\(3,\) and \(2,\)"):
        M.mse([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="no samples"):
        M.mae(np.zeros((0, 1)), np.zeros((0, 1)))
    with pytest.raises(ValueError, match="same shape"):
        M.accuracy([1, 2], [1])
    with pytest.raises(ValueError, match=r"integers in \[0, 2\)"):
        M.log_loss([0, 2], [0.5, 0.5])
    with pytest.raises(ValueError, match="integer class indices"):
        M.log_loss([0.5, 1.0], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"shape \(2, C\)"):
        M.log_loss([0, 1], np.ones((3, 2)) / 2)


# ---------------------------------------------------------------------- confusion matrix, per-class scores
def test_confusion_matrix_and_per_class_match_scikit_learn(rng):
    skm = pytest.importorskip("sklearn.metrics")
    y = rng.integers(0, 4, size=200)
    p = np.where(rng.random(200) < 0.7, y, rng.integers(0, 4, size=200))
    p[p == 3] = 2  # class 3 is never predicted: precision 0, as zero_division=0
    from handgrad.metrics import confusion_matrix, per_class

    np.testing.assert_array_equal(confusion_matrix(y, p, 4), skm.confusion_matrix(y, p, labels=range(4)))
    got = per_class(y, p, 4)
    want = skm.precision_recall_fscore_support(y, p, labels=range(4), zero_division=0)
    for key, column in zip(("precision", "recall", "f1", "support"), want):
        np.testing.assert_allclose(got[key], column, rtol=1e-12, err_msg=key)


def test_confusion_matrix_rejects_labels_out_of_range():
    from handgrad.metrics import confusion_matrix

    with pytest.raises(ValueError, match=r"integer class indices in \[0, 2\)"):
        confusion_matrix([0, 2], [0, 1], 2)
