"""Every layer's backward against central finite differences (full Jacobians, float64),
its explicit Jacobian, and its conventions at kinks and extremes."""

from __future__ import annotations

import numpy as np
import pytest

import handgrad as hg
from handgrad.gradcheck import check_layer
from handgrad.registry import activation_names

# (id, factory, input scale): every registered activation, then variants of their settings;
# ReLU-family inputs are kept away from 0 below
INPUT_SCALE = {"identity": 1.0, "relu": 1.0, "leaky_relu": 1.0, "tanh": 1.5, "sigmoid": 3.0, "softplus": 3.0}
LAYERS = [(name, lambda name=name: hg.make_activation(name), INPUT_SCALE.get(name, 2.0)) for name in activation_names()] + [
    ("5relu", lambda: hg.make_activation("5relu"), 1.0),
    ("leaky_relu_0.2", lambda: hg.LeakyReLU(0.2), 1.0),
    ("3tanh", lambda: hg.make_activation("3*tanh"), 1.0),
    ("softmax_beta", lambda: hg.Softmax(beta=2.5), 1.0),
    ("scale", lambda: hg.Scale(-0.5), 1.0),
]
SHAPES = [(1, 1), (1, 4), (3, 2), (4, 5)]


def _draw(rng, shape, scale, layer):
    x = rng.normal(0, scale, shape)
    if isinstance(layer, (hg.ReLU, hg.LeakyReLU)):
        x = np.where(np.abs(x) < 1e-2, 0.5, x)  # away from the kink
    return x


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name,factory,scale", LAYERS, ids=[c[0] for c in LAYERS])
def test_layer_backward_matches_finite_differences(name, factory, scale, shape, rng):
    layer = factory()
    if isinstance(layer, (hg.Softmax, hg.LogSoftmax)) and shape[1] == 1:
        shape = (shape[0], 3)
    report = check_layer(layer, _draw(rng, shape, scale, layer))
    assert report.passed, str(report)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("init", ["pytorch", "xavier", "he"])
def test_linear_backward_matches_finite_differences(shape, init, rng):
    n, d = shape
    layer = hg.Linear(d, 3, init=init, seed=rng)
    report = check_layer(layer, rng.normal(size=(n, d)))
    assert report.passed, str(report)
    assert {c.name for c in report.comparisons} == {"dy/dx", "dy/dW", "dy/db"}


@pytest.mark.parametrize("name,factory,scale", LAYERS, ids=[c[0] for c in LAYERS])
def test_explicit_jacobian_equals_backward(name, factory, scale, rng):
    """jacobian(x)[n] is the matrix whose vector-Jacobian products backward computes."""
    layer = factory()
    x = _draw(rng, (3, 4), scale, layer)
    J = np.asarray(layer.jacobian(x))
    assert J.shape == (3, 4, 4)
    layer.forward(x)
    g = rng.normal(size=(3, 4))
    vjp = np.asarray(layer.backward(g))
    np.testing.assert_allclose(vjp, np.einsum("ni,nij->nj", g, J), rtol=1e-12, atol=1e-12)
    if not isinstance(layer, (hg.Softmax, hg.LogSoftmax)):
        off_diagonal = J * (1 - np.eye(4))
        assert np.all(off_diagonal == 0), "elementwise activations have diagonal Jacobians"
        assert layer.derivation.structure == "diagonal"
    else:
        assert layer.derivation.structure == "full"


def test_linear_jacobian_is_the_weight(rng):
    layer = hg.Linear(4, 3, seed=rng, dtype=np.float64)
    J = layer.jacobian(rng.normal(size=(2, 4)))
    assert J.shape == (2, 3, 4)
    np.testing.assert_array_equal(J[0], layer.W)
    np.testing.assert_array_equal(J[1], layer.W)


@pytest.mark.parametrize("name,factory,scale", LAYERS, ids=[c[0] for c in LAYERS])
def test_zero_upstream_gives_zero_and_shapes_match(name, factory, scale, rng):
    layer = factory()
    x = _draw(rng, (3, 4), scale, layer)
    y = layer.forward(x)
    assert y.shape == layer.output_shape(x.shape) == (3, 4)
    g = layer.backward(np.zeros_like(y))
    assert g.shape == x.shape
    assert np.all(g == 0)


def test_linear_zero_upstream_and_gradient_shapes(rng):
    layer = hg.Linear(4, 3, seed=rng, dtype=np.float64)
    x = rng.normal(size=(5, 4))
    layer.forward(x)
    dx = layer.backward(np.zeros((5, 3)))
    assert dx.shape == (5, 4) and np.all(dx == 0)
    assert layer.grads["dJ_dW"].shape == layer.params["W"].shape == (3, 4)
    assert layer.grads["dJ_db"].shape == layer.params["b"].shape == (3,)
    assert layer.grads["dJ_dW"].dtype == layer.params["W"].dtype


def test_linear_formulas_match_einsum(rng):
    layer = hg.Linear(4, 3, seed=rng, dtype=np.float64)
    x, g = rng.normal(size=(5, 4)), rng.normal(size=(5, 3))
    z = layer.forward(x)
    np.testing.assert_allclose(z, np.einsum("ni,oi->no", x, layer.W) + layer.b, rtol=1e-12)
    dx = layer.backward(g)
    np.testing.assert_allclose(dx, np.einsum("no,oi->ni", g, layer.W), rtol=1e-12)
    np.testing.assert_allclose(layer.grads["dJ_dW"], np.einsum("no,ni->oi", g, x), rtol=1e-12)
    np.testing.assert_allclose(layer.grads["dJ_db"], g.sum(axis=0), rtol=1e-12)


def test_backward_is_linear_in_upstream_gradient(rng):
    layer = hg.Linear(4, 3, seed=rng, dtype=np.float64)
    x = rng.normal(size=(5, 4))
    g1, g2 = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))

    def grads(g):
        layer.zero_grad()
        layer.forward(x)
        dx = layer.backward(g)
        return dx, layer.grads["dJ_dW"].copy(), layer.grads["dJ_db"].copy()

    combined = grads(2.0 * g1 - 3.0 * g2)
    for c, a, b in zip(combined, grads(g1), grads(g2)):
        np.testing.assert_allclose(c, 2.0 * a - 3.0 * b, rtol=1e-12, atol=1e-14)


def test_gradients_accumulate_until_zero_grad(rng):
    layer = hg.Linear(3, 2, seed=rng, dtype=np.float64)
    x, g = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    layer.forward(x)
    layer.backward(g)
    once = layer.grads["dJ_dW"].copy()
    layer.forward(x)
    layer.backward(g)
    np.testing.assert_allclose(layer.grads["dJ_dW"], 2 * once, rtol=1e-12)
    layer.zero_grad()
    assert np.all(layer.grads["dJ_dW"] == 0) and np.all(layer.grads["dJ_db"] == 0)


def test_backward_twice_is_bitwise_equal_and_pure(rng):
    layer = hg.Tanh()
    x = rng.normal(size=(3, 4))
    x.flags.writeable = False
    layer.forward(x)
    g = rng.normal(size=(3, 4))
    g.flags.writeable = False
    a, b = layer.backward(g), layer.backward(g)
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- conventions at kinks
@pytest.mark.parametrize("zero", [0.0, -0.0])
def test_relu_family_at_exactly_zero(zero):
    x = np.array([[zero, 1.0, -1.0]])
    relu, five, leaky = hg.ReLU(), hg.make_activation("5relu"), hg.LeakyReLU(0.01)
    np.testing.assert_array_equal(relu.forward(x), [[0.0, 1.0, 0.0]])
    np.testing.assert_array_equal(relu.derivative(x), [[0.0, 1.0, 0.0]])
    np.testing.assert_array_equal(five.forward(x), [[0.0, 5.0, 0.0]])
    np.testing.assert_array_equal(five.derivative(x), [[0.0, 5.0, 0.0]])
    # LeakyReLU at 0: value 0 and slope negative_slope (PyTorch's convention), the same forward and backward
    np.testing.assert_array_equal(leaky.forward(x), [[0.0, 1.0, -0.01]])
    np.testing.assert_array_equal(leaky.derivative(x), [[0.01, 1.0, 0.01]])
    leaky.forward(x)
    np.testing.assert_array_equal(leaky.backward(np.ones_like(x)), [[0.01, 1.0, 0.01]])


def test_dead_relu_units_give_exact_zero_gradients():
    layer = hg.ReLU()
    x = -np.abs(np.linspace(0.1, 2, 12)).reshape(3, 4)
    assert np.all(layer.forward(x) == 0)
    assert np.all(layer.backward(np.ones_like(x)) == 0)


def test_tanh_derivative_is_one_minus_tanh_squared_not_tanh_of_square():
    """Seed erratum 1.2(a): tanh' = 1 - tanh(z)^2."""
    z = np.array([[0.5, -1.3, 2.0]])
    np.testing.assert_allclose(hg.Tanh().derivative(z), 1 - np.tanh(z) ** 2, rtol=1e-15)
    assert not np.allclose(hg.Tanh().derivative(z), 1 - np.tanh(z**2))
    assert "1 − tanh²" in hg.Tanh().explain()


def test_5relu_jacobian_is_m_by_m_diagonal():
    """Seed erratum 1.1(d): dz2/dz1 is m x m, diag(5·1[z1 > 0])."""
    m = 6
    z1 = np.array([[1.0, -2.0, 3.0, -0.5, 0.25, 4.0]])
    J = hg.make_activation("5relu").jacobian(z1)
    assert J.shape == (1, m, m)
    np.testing.assert_array_equal(J[0], np.diag(5.0 * (z1[0] > 0)))


# ---------------------------------------------------------------- extremes
def test_extremes_are_finite_and_warning_free():
    x = np.array([[-1e4, -800.0, -710.0, 0.0, 710.0, 800.0, 1e4]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is exact enough
        s = hg.Sigmoid()
        y = s.forward(x)
        np.testing.assert_array_equal(y[0, [0, -1]], [0.0, 1.0])
        assert np.all(np.isfinite(s.backward(np.ones_like(x))))
        t = hg.Tanh()
        np.testing.assert_array_equal(t.forward(x)[0, [0, -1]], [-1.0, 1.0])
        assert np.all(np.isfinite(t.backward(np.ones_like(x))))
        np.testing.assert_array_equal(hg.Softmax().forward(np.array([[1e4, 0.0, -1e4]])), [[1.0, 0.0, 0.0]])
        assert np.all(np.isfinite(hg.LogSoftmax().forward(np.array([[1e4, 0.0, -1e4]]))))


def test_infinite_inputs_have_defined_limits():
    x = np.array([[-np.inf, np.inf]])
    np.testing.assert_array_equal(hg.Sigmoid().forward(x), [[0.0, 1.0]])
    np.testing.assert_array_equal(hg.Tanh().forward(x), [[-1.0, 1.0]])
    np.testing.assert_array_equal(hg.ReLU().forward(x), [[0.0, np.inf]])
    np.testing.assert_array_equal(hg.LeakyReLU().forward(x), [[-np.inf, np.inf]])
    s = hg.Sigmoid()
    s.forward(x)
    np.testing.assert_array_equal(s.backward(np.ones_like(x)), [[0.0, 0.0]])


def test_nan_propagates_elementwise():
    x = np.array([[np.nan, 1.0]])
    for layer in (hg.ReLU(), hg.LeakyReLU(), hg.Tanh(), hg.Sigmoid(), hg.GELU(), hg.Identity()):
        y = layer.forward(x)
        assert np.isnan(y[0, 0]) and np.isfinite(y[0, 1]), layer


def test_softmax_ties_are_exactly_uniform():
    y = hg.Softmax().forward(np.full((2, 4), 3.7))
    np.testing.assert_array_equal(y, np.full((2, 4), 0.25))


def test_softmax_tends_to_one_hot_argmax_as_beta_grows():
    """Seed erratum 1.3(a): softmax(beta x) -> one-hot arg max, not the max itself."""
    x = np.array([[1.0, 3.0, 2.0]])
    for beta, floor in [(1.0, 0.6), (5.0, 0.99), (50.0, 1 - 1e-15)]:
        y = hg.Softmax(beta).forward(x)
        assert y[0, 1] >= floor
    np.testing.assert_array_equal(hg.Softmax(1000.0).forward(x), [[0.0, 1.0, 0.0]])


def test_gelu_variants_differ_and_are_documented():
    x = np.array([[1.0]])
    exact, approx = hg.GELU().forward(x), hg.GELU("tanh").forward(x)
    assert abs(exact - approx).item() < 1e-3 and exact.item() != approx.item()
    assert "Φ" in hg.GELU().explain() and "tanh" in hg.GELU("tanh").explain()


# ---------------------------------------------------------------- errors
def test_linear_feature_mismatch_names_both_numbers(rng):
    with pytest.raises(ValueError, match=r"expected x of shape \(N, 4\), got \(2, 5\)"):
        hg.Linear(4, 3, seed=rng).forward(np.zeros((2, 5)))


def test_linear_rank_errors(rng):
    layer = hg.Linear(4, 3, seed=rng)
    with pytest.raises(ValueError, match=r"2-D array .* got 1-D shape \(4,\).*reshape"):
        layer.forward(np.zeros(4))
    with pytest.raises(ValueError, match="3-D"):
        layer.forward(np.zeros((1, 2, 4)))
    with pytest.raises(ValueError, match="0-D"):
        layer.forward(np.float64(1.0))


@pytest.mark.parametrize("bad,exc", [(0, ValueError), (-3, ValueError), (True, TypeError), (3.5, TypeError), ("8", TypeError)])
def test_bad_sizes(bad, exc):
    with pytest.raises(exc, match="in_features"):
        hg.Linear(bad, 2)


def test_backward_before_forward_says_call_forward_first():
    for layer in (hg.Linear(2, 2, seed=0), hg.ReLU(), hg.Softmax(), hg.Scale(2.0)):
        with pytest.raises(RuntimeError, match="call forward"):
            layer.backward(np.zeros((1, 2)))


def test_clear_cache_forgets_the_forward_pass():
    layer = hg.Tanh()
    layer.forward(np.zeros((1, 2)))
    layer.clear_cache()
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((1, 2)))


def test_unknown_activation_lists_known_names_and_suggests():
    with pytest.raises(ValueError, match=r"unknown activation 'rleu'.*relu.*did you mean 'relu'"):
        hg.make_activation("rleu")
    # one policy: case-insensitive, '-', '_' and spaces alike
    assert isinstance(hg.make_activation(" ReLU "), hg.ReLU)
    assert isinstance(hg.make_activation("Leaky-ReLU"), hg.LeakyReLU)
    assert hg.make_activation("5*relu").scale == 5.0


def test_integer_and_bool_inputs_are_cast_not_truncated(rng):
    layer = hg.Linear(2, 1, seed=rng, dtype=np.float64)
    z_int = layer.forward(np.array([[1, 2]]))
    z_float = layer.forward(np.array([[1.0, 2.0]]))
    np.testing.assert_array_equal(z_int, z_float)
    assert z_int.dtype == np.float64
    assert hg.Sigmoid().forward(np.array([[1, 0]])).dtype == np.float64
    assert layer.forward(np.array([[True, False]])).dtype == np.float64


def test_complex_and_non_numeric_inputs_are_rejected(rng):
    layer = hg.Linear(2, 1, seed=rng)
    with pytest.raises(ValueError, match="complex"):
        layer.forward(np.array([[1 + 1j, 2]]))
    with pytest.raises(TypeError, match="'x'"):
        layer.forward(np.array([[1.0, "x"]], dtype=object))
    with pytest.raises(ValueError, match="inhomogeneous"):
        layer.forward([[1.0, 2.0], [3.0]])


def test_empty_batch_forward_gives_empty_output(rng):
    layer = hg.Linear(3, 2, seed=rng)
    out = layer.forward(np.zeros((0, 3), dtype=np.float32))
    assert out.shape == (0, 2) and out.dtype == np.float32


def test_float64_input_into_float32_layer_is_cast(rng):
    layer = hg.Linear(3, 2, seed=rng)  # float32 by default, like PyTorch
    z = layer.forward(rng.normal(size=(2, 3)))
    assert z.dtype == np.float32
    layer.backward(np.ones((2, 2), dtype=np.float32))
    assert layer.grads["dJ_dW"].dtype == np.float32


def test_non_contiguous_inputs_give_the_same_result(rng):
    layer = hg.Linear(4, 3, seed=rng, dtype=np.float64)
    x = rng.normal(size=(6, 8))
    view = x[::2, ::2]
    np.testing.assert_allclose(layer.forward(view), layer.forward(np.ascontiguousarray(view)), rtol=1e-12)
    np.testing.assert_allclose(layer.forward(np.asfortranarray(view)), layer.forward(view.copy()), rtol=1e-12)


def test_initialisations_are_seeded_and_scaled():
    a, b = hg.Linear(100, 50, seed=3), hg.Linear(100, 50, seed=3)
    np.testing.assert_array_equal(a.W, b.W)
    assert np.abs(a.W).max() <= 1 / np.sqrt(100) + 1e-7
    xavier = hg.Linear(100, 50, init="xavier", seed=3)
    assert np.abs(xavier.W).max() <= np.sqrt(6 / 150) + 1e-7 and np.all(xavier.b == 0)
    he = hg.Linear(1000, 200, init="he", seed=3, dtype=np.float64)
    assert abs(he.W.std() - np.sqrt(2 / 1000)) < 0.002
    with pytest.raises(TypeError, match="seed"):
        hg.Linear(2, 2, seed="abc")
    with pytest.raises(ValueError, match="unknown init"):
        hg.Linear(2, 2, init="glorot_normalish")


def test_repr_shows_configuration():
    assert repr(hg.Linear(3, 4)) == "Linear(in_features=3, out_features=4)"
    assert repr(hg.make_activation("5relu")) == "ReLU(scale=5)"
    assert repr(hg.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(hg.Softmax(beta=2)) == "Softmax(beta=2)"
