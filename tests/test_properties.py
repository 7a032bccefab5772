"""Property tests (hypothesis) for the activations and losses."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import handgrad as hg
from handgrad import functional as F

settings.register_profile("handgrad", deadline=None, max_examples=60, derandomize=True)
settings.load_profile("handgrad")


def matrices(bound: float):
    return arrays(np.float64, array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8),
                  elements=st.floats(-bound, bound, allow_nan=False, allow_infinity=False))


def _quiet(fn, *args):
    """Run fn and fail on any NaN/overflow warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            return fn(*args)


@given(matrices(1e4))
@example(np.array([[1e4, 0.0, -1e4]]))
@example(np.array([[3.0, 3.0, 3.0]]))
def test_softmax_is_a_distribution(z):
    y = _quiet(hg.Softmax().forward, z)
    assert np.all((y >= 0) & (y <= 1))
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-12 * z.shape[1])


@given(matrices(100.0), st.floats(-1e3, 1e3))
def test_softmax_is_shift_invariant(z, c):
    np.testing.assert_allclose(F.softmax(z + c), F.softmax(z), atol=1e-12)


@given(matrices(50.0), matrices(5.0))
def test_softmax_backward_rows_sum_to_zero(z, g):
    if g.shape != z.shape:
        g = np.resize(g, z.shape)
    layer = hg.Softmax()
    layer.forward(z)
    dz = layer.backward(g)
    np.testing.assert_allclose(dz.sum(axis=1), 0.0, atol=1e-12 * max(1.0, np.abs(g).max()))


@given(matrices(1e4))
@example(np.array([[0.0, -0.0, 710.0, -710.0]]))
def test_sigmoid_symmetry_and_bounds(x):
    s = _quiet(F.sigmoid, x)
    np.testing.assert_allclose(_quiet(F.sigmoid, -x), 1 - s, atol=1e-15)
    d = F.sigmoid_derivative_from_output(s)
    assert np.all((d >= 0) & (d <= 0.25))


@given(matrices(1e4))
def test_tanh_is_odd_and_finite(x):
    t = _quiet(hg.Tanh().forward, x)
    np.testing.assert_array_equal(hg.Tanh().forward(-x), -t)
    np.testing.assert_allclose(t, 2 * F.sigmoid(2 * x) - 1, atol=1e-15)


@given(matrices(1e3), st.floats(0.01, 100))
def test_relu_family_identities(x, a):
    relu = F.relu_forward
    np.testing.assert_array_equal(relu(x)[0] - relu(-x)[0], x)
    np.testing.assert_allclose(relu(a * x)[0], a * relu(x)[0], rtol=1e-15)
    np.testing.assert_array_equal(hg.make_activation("5relu").forward(x), 5 * relu(x)[0])
    np.testing.assert_allclose(hg.LeakyReLU(0.01).forward(x), relu(x)[0] - 0.01 * relu(-x)[0], rtol=1e-15, atol=0)


@given(matrices(30.0))
def test_exact_gelu_identity(x):
    g = hg.GELU()
    np.testing.assert_allclose(g.forward(x) - g.forward(-x), x, atol=1e-12 * max(1.0, np.abs(x).max()))


@given(matrices(1e4), st.data())
@example(np.array([[1e4, -1e4]]), None)
def test_bce_with_logits_finite_and_nonnegative(z, data):
    y = np.ones_like(z) * 0.5 if data is None else data.draw(
        arrays(np.float64, z.shape, elements=st.floats(0, 1)))
    J, g = _quiet(hg.BCEWithLogitsLoss(), y, z)
    assert np.isfinite(J) and J >= 0
    assert np.all(np.abs(g) <= 1.0 / z.size + 1e-15)


@given(matrices(15.0), st.data())
def test_bce_with_logits_equals_bce_of_sigmoid(z, data):
    y = data.draw(arrays(np.float64, z.shape, elements=st.floats(0, 1)))
    J1, _ = hg.BCEWithLogitsLoss()(y, z)
    J2, _ = hg.BCELoss()(y, F.sigmoid(z))
    np.testing.assert_allclose(J1, J2, rtol=1e-8, atol=1e-12)


@given(arrays(np.float64, array_shapes(min_dims=2, max_dims=2, min_side=2, max_side=6),
              elements=st.floats(-1e4, 1e4)), st.data())
def test_cross_entropy_finite_and_shift_invariant(z, data):
    labels = np.array([data.draw(st.integers(0, z.shape[1] - 1)) for _ in range(z.shape[0])])
    J, g = _quiet(hg.CrossEntropyLoss(), labels, z)
    assert np.isfinite(J) and J >= 0
    np.testing.assert_allclose(g.sum(axis=1), 0.0, atol=1e-12)
    J2, _ = hg.CrossEntropyLoss()(labels, z + 3.0)
    np.testing.assert_allclose(J, J2, rtol=1e-9, atol=1e-9)


@given(matrices(1e3), st.data())
def test_squared_loss_gradient_is_minus_two_residual(y_hat, data):
    y = data.draw(arrays(np.float64, y_hat.shape, elements=st.floats(-1e3, 1e3)))
    J, g = hg.SquaredErrorLoss()(y, y_hat)
    assert J >= 0
    np.testing.assert_array_equal(g, -2 * (y - y_hat))


@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 4), st.integers(0, 4))
def test_output_shape_matches_forward(n_in, width, n_out, batch):
    net = hg.MLP(n_in, [width], n_out, f="tanh", seed=0)
    x = np.zeros((batch, n_in), dtype=np.float32)
    assert net(x).shape == net.output_shape((batch, n_in)) == (batch, n_out)


@given(st.integers(1, 9), st.integers(1, 9))
def test_feature_mismatch_message_names_both_numbers(expected, got):
    if expected == got:
        return
    net = hg.MLP(expected, [2], 1, seed=0)
    try:
        net(np.zeros((1, got)))
    except ValueError as exc:
        assert f"(N, {expected})" in str(exc) and f"(1, {got})" in str(exc)
    else:
        raise AssertionError("no error")
