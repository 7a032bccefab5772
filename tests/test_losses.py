"""Losses: gradients against finite differences and PyTorch, conventions, errors."""

from __future__ import annotations

import numpy as np
import pytest

import handgrad as hg
from handgrad import functional as F
from handgrad.gradcheck import check_loss
from handgrad.registry import loss_names

SHAPES = [(1, 1), (1, 3), (4, 1), (5, 3)]


def _targets(name, rng, shape):
    if name in ("bce", "bce_with_logits"):
        return rng.choice([0.0, 1.0, 0.3], size=shape)
    if name == "cross_entropy":
        return rng.integers(0, shape[1], size=shape[0])
    return rng.normal(size=shape)


def _prediction(name, rng, shape):
    if name == "bce":
        return rng.uniform(0.05, 0.95, size=shape)  # away from the -100 clamp
    return rng.normal(0, 2, size=shape)


LOSS_NAMES = loss_names()


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_gradient_matches_finite_differences(name, shape, rng):
    if name == "cross_entropy" and shape[1] < 2:
        shape = (shape[0], 3)
    report = check_loss(name, _targets(name, rng, shape), _prediction(name, rng, shape))
    assert report.passed, str(report)


def test_squared_error_mean_reduction_gradient(rng):
    y, y_hat = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    assert check_loss(hg.SquaredErrorLoss("mean"), y, y_hat).passed
    J_sum, g_sum = hg.SquaredErrorLoss("sum")(y, y_hat)
    J_mean, g_mean = hg.SquaredErrorLoss("mean")(y, y_hat)
    np.testing.assert_allclose(J_mean, J_sum / 4, rtol=1e-15)
    np.testing.assert_allclose(g_mean, g_sum / 4, rtol=1e-15)


def test_squared_error_gradient_is_minus_two_residual_bitwise(rng):
    y, y_hat = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    J, g = hg.SquaredErrorLoss()(y, y_hat)
    np.testing.assert_array_equal(g, -2 * (y - y_hat))
    np.testing.assert_allclose(J, np.sum((y - y_hat) ** 2), rtol=1e-15)


def test_mse_is_sse_over_numel(rng):
    y, y_hat = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    J_mse, g_mse = hg.MSELoss()(y, y_hat)
    J_sse, g_sse = hg.SquaredErrorLoss()(y, y_hat)
    np.testing.assert_allclose(J_mse, J_sse / 15, rtol=1e-15)
    np.testing.assert_allclose(g_mse, g_sse / 15, rtol=1e-15)


def test_bce_seed_erratum_second_term_and_one_over_K(rng):
    """Seed erratum 1.2(b): the term is (1-y) log(1-ŷ) and dJ/dŷ carries 1/K."""
    K = 4
    y, p = rng.choice([0.0, 1.0], size=(1, K)), rng.uniform(0.1, 0.9, size=(1, K))
    J, g = hg.BCELoss()(y, p)
    np.testing.assert_allclose(J, -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), rtol=1e-12)
    np.testing.assert_allclose(g, -(1 / K) * (y / p - (1 - y) / (1 - p)), rtol=1e-12)
    wrong = -np.mean(y * np.log(p) + (1 - y) * (1 - np.log(p)))
    assert not np.isclose(J, wrong)


def test_bce_on_exact_zero_and_one_is_finite_like_pytorch():
    y = np.array([[1.0, 0.0, 1.0, 0.0]])
    p = np.array([[0.0, 1.0, 1.0, 0.0]])
    with np.errstate(divide="ignore"):  # log(0) = -inf is clamped to -100, as nn.BCELoss
        J, g = hg.BCELoss()(y, p)
    assert np.isfinite(J) and np.all(np.isfinite(g))
    np.testing.assert_allclose(J, 200 / 4)  # two confidently wrong elements, 100 each


def test_bce_with_logits_equals_bce_of_sigmoid(rng):
    z = rng.uniform(-15, 15, size=(6, 2))
    y = rng.uniform(0, 1, size=(6, 2))
    J1, g1 = hg.BCEWithLogitsLoss()(y, z)
    J2, _ = hg.BCELoss()(y, F.sigmoid(z))
    np.testing.assert_allclose(J1, J2, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(g1, (F.sigmoid(z) - y) / 12, rtol=1e-12)


def test_stable_losses_at_extreme_logits():
    z = np.array([[1e4, -1e4], [-1e4, 1e4]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        J, g = hg.BCEWithLogitsLoss()(np.array([[0.0, 1.0], [1.0, 0.0]]), z)
        np.testing.assert_allclose(J, 1e4)
        assert np.all(np.abs(g) <= 1 / 4)
        J, g = hg.CrossEntropyLoss()(np.array([1, 0]), z)
        assert np.isfinite(J) and np.all(np.isfinite(g))
        np.testing.assert_allclose(J, 2e4)


def test_cross_entropy_indices_and_one_hot_agree(rng):
    z = rng.normal(size=(4, 3))
    labels = np.array([0, 2, 1, 2])
    J1, g1 = hg.CrossEntropyLoss()(labels, z)
    J2, g2 = hg.CrossEntropyLoss()(np.eye(3)[labels], z)
    np.testing.assert_allclose(J1, J2, rtol=1e-15)
    np.testing.assert_allclose(g1, g2, rtol=1e-15)
    np.testing.assert_allclose(g1.sum(axis=1), 0, atol=1e-15)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_losses_match_pytorch(name, rng):
    torch = pytest.importorskip("torch")
    from handgrad.torch_interop import torch_loss

    shape = (5, 3)
    y, y_hat = _targets(name, rng, shape), _prediction(name, rng, shape)
    loss = hg.make_loss(name)
    J, g = loss(y, y_hat)
    t_hat = torch.tensor(y_hat, requires_grad=True)
    t_y = torch.tensor(y) if name != "cross_entropy" else torch.tensor(y, dtype=torch.int64)
    Jt = torch_loss(loss)(t_hat, t_y)
    Jt.backward()
    np.testing.assert_allclose(J, Jt.item(), rtol=1e-12)
    np.testing.assert_allclose(g, t_hat.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_losses_on_torch_tensors_return_tensors(rng):
    torch = pytest.importorskip("torch")
    y, y_hat = torch.tensor(rng.normal(size=(3, 2))), torch.tensor(rng.normal(size=(3, 2)))
    J, g = hg.MSELoss()(y, y_hat)
    assert isinstance(g, torch.Tensor)
    torch.testing.assert_close(J, torch.nn.functional.mse_loss(y_hat, y))


# ---------------------------------------------------------------- errors
def test_shape_mismatch_is_refused_not_broadcast():
    with pytest.raises(ValueError, match=r"same shape, got y \(4,\) and y_hat \(4, 1\)"):
        hg.MSELoss()(np.zeros(4), np.zeros((4, 1)))


def test_bce_ranges():
    with pytest.raises(ValueError, match=r"y_hat.*\[0, 1\].*max=1.2"):
        hg.BCELoss()(np.zeros((1, 2)), np.array([[0.5, 1.2]]))
    with pytest.raises(ValueError, match=r"y \(targets\) must be in \[0, 1\]"):
        hg.BCELoss()(np.array([[2.0, 0.0]]), np.array([[0.5, 0.5]]))
    with pytest.raises(ValueError, match=r"targets\) must be in \[0, 1\]"):
        hg.BCEWithLogitsLoss()(np.array([[-1.0, 0.0]]), np.array([[0.5, 0.5]]))
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]; got min=nan"):
        hg.BCELoss()(np.zeros((1, 2)), np.array([[0.5, np.nan]]))


def test_soft_bce_targets_are_allowed_and_minimised_at_the_target():
    y = np.array([[0.3]])
    J_at, _ = hg.BCELoss()(y, y)
    for p in (0.1, 0.29, 0.31, 0.9):
        assert hg.BCELoss()(y, np.array([[p]]))[0] > J_at
    np.testing.assert_allclose(J_at, -(0.3 * np.log(0.3) + 0.7 * np.log(0.7)))


def test_cross_entropy_target_errors():
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match="target 5 is out of range for 3 classes"):
        hg.CrossEntropyLoss()(np.array([0, 5]), z)
    with pytest.raises(ValueError, match="target -1 is out of range"):
        hg.CrossEntropyLoss()(np.array([0, -1]), z)
    with pytest.raises(ValueError, match="integer class indices"):
        hg.CrossEntropyLoss()(np.array([0.5, 1.0]), z)
    with pytest.raises(ValueError, match="rows must sum to 1"):
        hg.CrossEntropyLoss()(np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), z)
    with pytest.raises(ValueError, match="C >= 2"):
        hg.CrossEntropyLoss()(np.array([0, 0]), np.zeros((2, 1)))


def test_empty_batch_is_an_error():
    with pytest.raises(ValueError, match="empty batch"):
        hg.MSELoss()(np.zeros((0, 2)), np.zeros((0, 2)))


def test_unknown_loss_lists_known_names():
    with pytest.raises(ValueError, match=r"unknown loss 'mse2'.*bce.*did you mean 'mse'"):
        hg.make_loss("mse2")


def test_integer_targets_are_cast():
    J, g = hg.MSELoss()(np.array([[1, 2]]), np.array([[1.5, 2.5]]))
    np.testing.assert_allclose(J, 0.25)
    assert g.dtype == np.float64
