"""The gradient checker itself: it must catch wrong gradients and say where."""

from __future__ import annotations

import numpy as np
import pytest

import handgrad as hg
from handgrad import functional as F
from handgrad.gradcheck import check_layer, check_loss, check_network, compare, numerical_gradient


class WrongTanh(hg.Tanh):
    """tanh with the seed's erratum: 1 - tanh(x^2)."""

    def _backward(self, dJ_dy, y):
        x = np.arctanh(y)
        return dJ_dy * (1 - np.tanh(x * x))


class HalfMSE(hg.MSELoss):
    def _compute(self, y, y_hat):
        J, g = F.mse(y, y_hat)
        return J, g / 2


def test_catches_the_tanh_erratum(rng):
    report = check_layer(WrongTanh(), rng.normal(size=(2, 3)))
    assert not report.passed
    assert "FAIL" in str(report) and "dy/dx" in str(report)


def test_catches_a_wrong_network_gradient_and_names_the_parameter(rng):
    net = hg.Sequential(hg.Linear(3, 4, seed=rng), WrongTanh(), hg.Linear(4, 2, seed=rng))
    report = check_network(net, rng.normal(size=(5, 3)), rng.normal(size=(5, 2)), "mse")
    failed = {c.name for c in report.comparisons if not c.passed}
    assert "dJ/dW1" in failed and "dJ/db1" in failed
    assert report["dJ/dW2"].passed  # above the wrong layer, gradients are right
    worst = report["dJ/dW1"]
    assert worst.rel_error > 1e-3 and abs(worst.analytic - worst.reference) == pytest.approx(worst.max_abs_error)


def test_catches_a_wrong_loss_gradient(rng):
    report = check_loss(HalfMSE(), rng.normal(size=(3, 2)), rng.normal(size=(3, 2)))
    assert not report.passed
    assert report.worst.rel_error == pytest.approx(0.5, rel=1e-6)


def test_kink_is_reported_as_a_kink(rng):
    net = hg.Sequential(hg.Linear(1, 1, seed=rng, dtype=np.float64), hg.ReLU())
    net.layers[0].params["W"][...] = 1.0
    net.layers[0].params["b"][...] = 0.0
    report = check_network(net, np.array([[0.0]]), np.array([[1.0]]), "mse", input_grad=False)
    notes = " ".join(c.note for c in report.comparisons)
    assert "kink" in notes


def test_does_not_change_the_network_or_perturb_aliased_inputs(rng):
    net = hg.MLP(2, [3], 1, seed=rng)
    before = {k: v.copy() for k, v in net.params.items()}
    x = np.broadcast_to(rng.normal(size=(1, 2)), (4, 2))  # stride-0 rows
    report = check_network(net, x, np.zeros((4, 1)), "mse")
    assert report.passed
    for k in before:
        np.testing.assert_array_equal(before[k], net.params[k])
        assert net.params[k].dtype == np.float32


def test_numerical_gradient_restores_the_parameter(rng):
    theta = rng.normal(size=(3,))
    copy = theta.copy()
    g = numerical_gradient(lambda: float(np.sum(theta**3)), theta)
    np.testing.assert_array_equal(theta, copy)
    np.testing.assert_allclose(g, 3 * theta**2, rtol=1e-8)


def test_compare_reports_worst_entry():
    c = compare("q", np.array([1.0, 2.0, 3.5]), np.array([1.0, 2.0, 3.0]), rtol=1e-6, atol=1e-10)
    assert not c.passed and c.index == (2,) and c.reference == 3.0 and c.analytic == 3.5
    with pytest.raises(ValueError, match="shape"):
        compare("q", np.zeros(2), np.zeros(3), 1e-6, 1e-10)


def test_report_text_lists_every_quantity(rng):
    net = hg.MLP(2, [2], 1, f="tanh", seed=rng)
    text = str(check_network(net, rng.normal(size=(2, 2)), rng.normal(size=(2, 1)), "mse"))
    for name in ("dJ/dW1", "dJ/db1", "dJ/dW2", "dJ/db2", "dJ/dx"):
        assert name in text
