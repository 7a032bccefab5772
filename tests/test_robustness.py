"""Robustness cases of the reference table (S/V/C rows) not shown elsewhere, and the cheap
gradient-check assertions of its section 3: the adjoint (dot-product) test for every layer and
loss, linearity of backward in the upstream gradient, re-entrancy and purity, and batch
reduction. docs/robustness.md maps every row to its test."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import handgrad as hg
from handgrad import train as T
from handgrad.gradcheck import check_network
from handgrad.registry import activation_names

EPS = 1e-6


def _net(rng, out=2, **kw):
    return hg.MLP(4, [5], out, seed=rng, dtype=np.float64, **kw)


# ====================================================================== 2.1 shapes and dtypes
def test_S6_estimator_style_1d_y_is_canonicalised_and_equals_the_per_element_formula(rng):
    net = _net(rng, out=1, f="tanh")
    X, y = rng.normal(size=(6, 4)), rng.normal(size=6)
    y_hat = T.predict(net, X)
    mse = T.evaluate(net, X, y, loss="mse")["mse"]
    np.testing.assert_allclose(mse, np.mean((y_hat[:, 0] - y) ** 2), rtol=1e-12)
    assert not np.isclose(mse, np.mean((y_hat - y) ** 2))  # what (n,1)-(n,) broadcasting would give
    with pytest.raises(ValueError, match=r"same shape.*\(6,\).*\(6, 1\)"):
        hg.SquaredErrorLoss()(y, y_hat)


def test_S10_batch_of_one_passes_gradcheck_and_keeps_its_shape(rng):
    net = _net(rng, f="tanh")
    x, y = rng.normal(size=(1, 4)), rng.normal(size=(1, 2))
    assert net(x).shape == (1, 2)
    assert check_network(net, x, y, "mse").passed
    J, g = hg.MSELoss()(y, net(x))
    np.testing.assert_allclose(g, 2 * (net(x) - y) / 2, rtol=1e-12)  # divided by N·K = 1·2, not by N - 1
    assert np.isfinite(J)


def test_S11_memory_layouts_at_the_model_boundary(rng):
    net = _net(rng, f="tanh")
    X = rng.normal(size=(8, 4))
    ref = T.predict(net, X.copy())
    np.testing.assert_allclose(T.predict(net, np.asfortranarray(X)), ref, rtol=1e-12)
    np.testing.assert_allclose(T.predict(net, X[::-1]), ref[::-1], rtol=1e-12)
    np.testing.assert_allclose(T.predict(net, X[::2]), ref[::2], rtol=1e-12)
    np.testing.assert_allclose(T.predict(net, X.T.copy().T), ref, rtol=1e-12)


def test_S12_read_only_and_broadcast_inputs_train_and_predict(rng, tmp_path):
    X, y = rng.normal(size=(6, 4)), rng.normal(size=(6, 2))
    path = tmp_path / "x.dat"
    mm = np.memmap(path, dtype=np.float64, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    ro = np.memmap(path, dtype=np.float64, mode="r", shape=X.shape)
    net = _net(rng)
    T.fit(net, ro, np.broadcast_to(y[:1], y.shape), epochs=2, batch_size=3)
    assert T.predict(net, np.broadcast_to(X[:1], (3, 4))).shape == (3, 2)
    np.testing.assert_array_equal(ro, X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_S13_S14_S15_inputs_take_the_model_dtype(dtype, rng):
    net = hg.MLP(4, [5], 2, seed=rng, dtype=dtype)
    for x in (np.ones((2, 4), bool), np.arange(8, dtype=np.int32).reshape(2, 4),
              np.ones((2, 4), np.float16), rng.normal(size=(2, 4)).astype(np.float32), rng.normal(size=(2, 4))):
        assert net(x).dtype == dtype and T.predict(net, x).dtype == dtype
    np.testing.assert_array_equal(net(np.array([[3, 1, 2, 7]])), net(np.array([[3.0, 1.0, 2.0, 7.0]])))
    T.fit(net, rng.normal(size=(6, 4)), rng.normal(size=(6, 2)), epochs=1)  # float64 data
    assert all(p.dtype == dtype for p in net.params.values())


def test_S14_float16_is_upcast_not_computed_in_half_precision():
    layer = hg.Linear(300, 1, seed=0)  # float32 by default
    x = np.full((1, 300), 20.0, dtype=np.float16)
    layer.params["W"][...] = 20.0
    z = layer.forward(x)
    assert z.dtype == np.float32 and np.isfinite(z).all()  # 20·20·300 overflows float16, not float32


def test_S16_complex_is_refused_at_every_boundary(rng):
    net = _net(rng)
    X = rng.normal(size=(3, 4)) + 1j
    for call in (lambda: net(X), lambda: T.predict(net, X), lambda: T.fit(net, X, np.zeros((3, 2)), epochs=1),
                 lambda: hg.MSELoss()(X[:, :2], X[:, :2].real)):
        with pytest.raises(ValueError, match="complex data not supported"):
            call()


def test_S17_object_arrays(rng):
    net = _net(rng)
    numbers = np.array([[1, 2.5, np.float32(3), 4]], dtype=object)
    np.testing.assert_array_equal(T.predict(net, numbers), T.predict(net, [[1, 2.5, 3, 4]]))
    with pytest.raises(TypeError, match=r"got 'x' \(str\) at index \(0, 2\)"):
        T.predict(net, np.array([[1, 2, "x", 4]], dtype=object))
    with pytest.raises(TypeError, match=r"got \{'a': 1\} \(dict\) at index \(0, 1\)"):
        net(np.array([[1, {"a": 1}, 3, 4]], dtype=object))


def test_S17_S18_estimator_names_the_cell_and_the_ragged_row(rng):
    from handgrad.sklearn import HandgradRegressor

    X, y = rng.normal(size=(6, 4)), rng.normal(size=6)
    bad = X.astype(object)
    bad[2, 1] = "abc"
    with pytest.raises(ValueError, match=r"'abc' \(str\) at row 2, column 1"):
        HandgradRegressor(max_iter=1).fit(bad, y)
    bad[2, 1] = {"foo": "bar"}
    # scikit-learn's own text is kept (its check_dtype_object matches it)
    with pytest.raises(TypeError, match=r"at row 2, column 1 .*argument must be a string.* number"):
        HandgradRegressor(max_iter=1).fit(bad, y)
    ragged = X.tolist()
    ragged[3] = ragged[3][:2]
    with pytest.raises(ValueError, match=r"inhomogeneous row lengths \(ragged\): row 3 has 2 value\(s\), row 0 has 4"):
        HandgradRegressor(max_iter=1).fit(ragged, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = HandgradRegressor((3,), max_iter=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"'x' \(str\) at row 0, column 3"):
        reg.predict(np.array([[1, 2, 3, "x"]], dtype=object))


def test_S18_lists_and_tuples_equal_arrays_and_ragged_is_named(rng):
    net = _net(rng)
    X = rng.normal(size=(3, 4))
    np.testing.assert_array_equal(T.predict(net, X.tolist()), T.predict(net, X))
    np.testing.assert_array_equal(net(tuple(map(tuple, X))), net(X))
    with pytest.raises(ValueError, match="inhomogeneous row lengths"):
        T.predict(net, [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0]])


# ====================================================================== 2.2 values
def test_V1_V3_estimator_refuses_nan_and_inf(rng):
    from handgrad.sklearn import HandgradClassifier, HandgradRegressor

    X, y = rng.normal(size=(8, 3)), rng.normal(size=8)
    Xn = X.copy()
    Xn[2, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        HandgradRegressor(max_iter=1).fit(Xn, y)
    with pytest.raises(ValueError, match="Input X contains infinity"):
        HandgradClassifier(max_iter=1).fit(np.where(np.isnan(Xn), np.inf, Xn), np.arange(8) % 2)
    with pytest.raises(ValueError, match="Input y contains NaN"):
        HandgradRegressor(max_iter=1).fit(X, np.where(np.arange(8) == 5, np.nan, y))


def test_V10_bce_on_exact_zero_and_one_is_warning_free():
    y = np.array([[0.0, 1.0, 1.0, 0.0]])
    p = np.array([[0.0, 1.0, 0.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        J, g = hg.BCELoss()(y, p)
    assert J == pytest.approx(50.0) and np.isfinite(g).all()


def test_V15_dead_relu_layer_gives_a_finite_loss_and_a_no_op_step(rng):
    net = hg.MLP(3, [4], 1, f="relu", seed=rng, dtype=np.float64)
    net.params["b1"][...] = -100.0  # every pre-activation negative for the whole batch
    W1, b1 = net.params["W1"].copy(), net.params["b1"].copy()
    X, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 1))
    net(X)
    J = net.backward_loss(hg.MSELoss(), y)
    assert np.isfinite(J)
    assert np.all(net.grads["dJ_dW1"] == 0) and np.all(net.grads["dJ_db1"] == 0)
    hg.SGD(net, lr=0.1).step()
    np.testing.assert_array_equal(net.params["W1"], W1)
    np.testing.assert_array_equal(net.params["b1"], b1)


def test_V17_argmax_ties_go_to_the_lowest_index(rng):
    net = hg.Sequential(hg.Linear(2, 3, seed=rng, dtype=np.float64))
    net.params["W1"][...] = 0.0
    net.params["b1"][...] = [1.0, 3.0, 3.0]
    np.testing.assert_array_equal(T.predict_labels(net, np.zeros((2, 2))), [1, 1])
    p = T.predict_proba(net, np.zeros((1, 2)))
    assert p[0, 1] == p[0, 2] and p[0, 0] < p[0, 1]


def test_V19_negative_zero_and_subnormals_match_zero(rng):
    net = _net(rng, f="relu")
    a = T.predict(net, np.array([[-0.0, 1e-310, 0.0, -5e-324]]))
    b = T.predict(net, np.zeros((1, 4)))
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-300)
    relu = hg.ReLU()
    relu.forward(np.array([[-0.0, 0.0, 1e-310]]))
    np.testing.assert_array_equal(relu.backward(np.ones((1, 3))), [[0.0, 0.0, 1.0]])


def test_V20_huge_inputs_raise_divergence_with_the_weights_left_finite(rng):
    from handgrad.sklearn import HandgradRegressor

    X, y = rng.normal(size=(20, 4)) * 1e150, rng.normal(size=20)
    net = _net(rng, out=1)
    with np.errstate(all="ignore"), pytest.raises(hg.DivergenceError, match="standardised inputs"):
        T.fit(net, X, y, epochs=3)
    assert all(np.isfinite(p).all() for p in net.params.values())
    for solver in ("adam", "sgd"):
        reg = HandgradRegressor((4,), solver=solver, max_iter=3, random_state=0)
        with np.errstate(all="ignore"), pytest.raises(hg.DivergenceError,
                                                      match=r"epoch \d+, batch \d+/\d+.*scale your inputs"):
            reg.fit(X, y)
        assert all(np.isfinite(a).all() for a in reg.coefs_ + reg.intercepts_)


def test_V20_estimator_non_finite_loss_is_caught_before_the_update(rng):
    from handgrad.sklearn import HandgradRegressor

    X, y = rng.normal(size=(16, 3)), rng.normal(size=16)
    reg = HandgradRegressor((4,), solver="sgd", learning_rate_init=1e3, momentum=0.0, max_iter=30,
                            batch_size=4, random_state=0)
    with np.errstate(all="ignore"), pytest.raises(hg.DivergenceError, match="last finite epoch loss"):
        reg.fit(X * 1e3, y * 1e3)
    assert all(np.isfinite(a).all() for a in reg.coefs_ + reg.intercepts_)


def test_V21_constant_features_and_identical_rows_train_finite(rng):
    from handgrad.sklearn import HandgradRegressor

    X, y = np.ones((10, 4)), rng.normal(size=10)
    h = T.fit(_net(rng, out=1), X, y, epochs=3)
    assert all(np.isfinite(v) for v in h.final.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = HandgradRegressor((3,), max_iter=3, random_state=0).fit(X, y)
    assert np.isfinite(reg.predict(X)).all()
    h = T.fit(hg.MLP(4, [5], 3, seed=rng), rng.normal(size=(8, 4)), np.zeros(8, int), loss="cross_entropy",
              epochs=2)
    assert np.isfinite(h.final["loss"])


# ====================================================================== 2.3 configuration
def test_C9_bce_after_a_non_probability_output_warns(rng):
    X, y = rng.normal(size=(6, 4)), (rng.random((6, 2)) > 0.5).astype(float)
    net = hg.MLP(4, [5], 2, g="sigmoid", seed=rng)
    net.params["W2"][...] = 0.0
    with pytest.warns(UserWarning, match="bce takes probabilities.*Identity.*bce_with_logits"):
        ident = hg.MLP(4, [5], 2, g="identity", seed=rng)
        ident.params["W2"][...] = 0.0
        ident.params["b2"][...] = 0.5  # in [0, 1], so only the warning can tell
        T.fit(ident, X, y, loss="bce", epochs=1)
    with pytest.warns(UserWarning, match="applies the sigmoid twice"):
        T.fit(net, X, y, loss="bce_with_logits", epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        T.fit(hg.MLP(4, [5], 2, g="sigmoid", seed=rng), X, y, loss="bce", epochs=1)


def test_C10_loss_and_output_widths_are_named(rng):
    X = rng.normal(size=(4, 4))
    with pytest.raises(ValueError, match=r"C >= 2 classes, got \(4, 1\)"):
        T.fit(hg.MLP(4, [5], 1, seed=rng), X, np.zeros(4, int), loss="cross_entropy", epochs=1)
    with pytest.raises(ValueError, match="2 column.*outputs 3"):
        T.fit(hg.MLP(4, [5], 3, g="sigmoid", seed=rng), X, np.zeros((4, 2)), loss="bce", epochs=1)


# ====================================================================== 2.2 V5/V18 at the layer level
def test_V5_gelu_limits_at_infinity():
    for approximate in ("none", "tanh"):
        layer = hg.GELU(approximate)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            np.testing.assert_array_equal(layer.forward(np.array([[-np.inf, np.inf, -1e300, 1e300]])),
                                          [[0.0, np.inf, 0.0, 1e300]])
            np.testing.assert_array_equal(layer.backward(np.ones((1, 4))), [[0.0, 1.0, 0.0, 1.0]])


def test_V18_softmax_of_non_finite_logits_follows_the_jax_rule():
    """The row max is taken as 0 when it is not finite, as JAX's logsumexp does: a row holding
    +inf gets NaN there, a row of only -inf is all NaN; the other rows are unaffected, and the
    boundary rejects such input (V2)."""
    x = np.array([[np.inf, 0.0, 0.0], [-np.inf, -np.inf, -np.inf], [1.0, 2.0, -np.inf]])
    with np.errstate(invalid="ignore", divide="ignore"):
        for layer in (hg.Softmax(), hg.LogSoftmax()):
            y = layer.forward(x)
            assert np.isnan(y[0, 0]) and np.all(np.isnan(y[1]))
            assert np.all(np.isfinite(y[2, :2]))
    np.testing.assert_allclose(hg.Softmax().forward(x[2:]), [[1 / (1 + np.e), np.e / (1 + np.e), 0.0]])
    net = hg.MLP(3, [2], 3, g="softmax", seed=0)
    with pytest.raises(ValueError, match="infinity"):
        from handgrad.train import predict

        predict(net, x)


# ====================================================================== 3.3 gradient-check assertions
LAYERS = [(name, lambda name=name: hg.make_activation(name)) for name in activation_names()] + [
    ("5relu", lambda: hg.make_activation("5relu")), ("leaky_relu_0.2", lambda: hg.LeakyReLU(0.2)),
    ("softmax_beta", lambda: hg.Softmax(beta=2.5)), ("log_softmax_beta", lambda: hg.LogSoftmax(beta=2.0)),
    ("scale", lambda: hg.Scale(-0.5)), ("linear", lambda: hg.Linear(4, 3, seed=0, dtype=np.float64)),
]
SEEDS = range(5)


def _input(rng, layer, shape=(3, 4)):
    x = rng.normal(0, 1.5, shape)
    if isinstance(layer, (hg.ReLU, hg.LeakyReLU)):
        x = np.where(np.abs(x) < 1e-2, 0.5, x)  # central differences away from the kink (3.6)
    return x


def _fd(f, x, u):
    return (f(x + EPS * u) - f(x - EPS * u)) / (2 * EPS)


def _close(a, b, what):
    assert abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b)), f"{what}: {a} vs {b}"


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed{s}")
@pytest.mark.parametrize("name,factory", LAYERS, ids=[n for n, _ in LAYERS])
def test_adjoint_identity_for_every_layer(name, factory, seed):
    """<J u, w> = <u, Jᵀ w>: J u by central differences, Jᵀ w by backward (JAX check_vjp)."""
    rng = np.random.default_rng(seed)
    layer = factory()
    x = _input(rng, layer)
    y = layer.forward(x)
    u, w = rng.normal(size=x.shape), rng.normal(size=y.shape)
    layer.zero_grad()
    layer.forward(x)
    vjp = layer.backward(w)
    _close(np.sum(_fd(layer.forward, x, u) * w), np.sum(u * vjp), f"{name} dJ/dx seed {seed}")
    for key, p in layer.params.items():
        U, p0 = rng.normal(size=p.shape), p.copy()

        def f(theta, key=key):
            layer.params[key][...] = theta
            return layer.forward(x)

        jvp = _fd(f, p0, U)
        layer.params[key][...] = p0
        _close(np.sum(jvp * w), np.sum(U * layer.grads[f"dJ_d{key}"]), f"{name} dJ/d{key} seed {seed}")


LOSSES = [
    ("mse", hg.MSELoss, lambda r: r.normal(size=(3, 2)), lambda r: r.normal(size=(3, 2))),
    ("sse_sum", lambda: hg.SquaredErrorLoss("sum"), lambda r: r.normal(size=(3, 2)), lambda r: r.normal(size=(3, 2))),
    ("sse_mean", lambda: hg.SquaredErrorLoss("mean"), lambda r: r.normal(size=(3, 2)),
     lambda r: r.normal(size=(3, 2))),
    ("bce", hg.BCELoss, lambda r: r.random((3, 2)), lambda r: r.uniform(0.05, 0.95, (3, 2))),
    ("bce_with_logits", hg.BCEWithLogitsLoss, lambda r: r.random((3, 2)), lambda r: r.normal(0, 3, (3, 2))),
    ("ce_indices", hg.CrossEntropyLoss, lambda r: r.integers(0, 3, 4), lambda r: r.normal(0, 2, (4, 3))),
    ("ce_one_hot", hg.CrossEntropyLoss, lambda r: np.eye(3)[r.integers(0, 3, 4)], lambda r: r.normal(0, 2, (4, 3))),
]


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed{s}")
@pytest.mark.parametrize("name,factory,targets,outputs", LOSSES, ids=[c[0] for c in LOSSES])
def test_adjoint_identity_for_every_loss_and_its_fused_form(name, factory, targets, outputs, seed):
    rng = np.random.default_rng(seed)
    loss, y, y_hat = factory(), targets(rng), outputs(rng)
    u = rng.normal(size=y_hat.shape)
    _, g = loss(y, y_hat)
    _close(float(_fd(lambda p: loss(y, p)[0], y_hat, u)), float(np.sum(g * u)), f"{name} seed {seed}")
    if name.startswith(("bce", "ce")) and name != "bce_with_logits":
        z = rng.normal(0, 2, y_hat.shape)  # the fused gradient with respect to the output layer's input
        _, gz = loss.fused(y, z)
        _close(float(_fd(lambda v: loss.fused(y, v)[0], z, u)), float(np.sum(gz * u)), f"{name} fused seed {seed}")


@pytest.mark.parametrize("name,factory", LAYERS, ids=[n for n, _ in LAYERS])
def test_backward_is_linear_in_grad_out_reentrant_and_pure(name, factory, rng):
    layer = factory()
    x = _input(rng, layer)
    x.flags.writeable = False
    x0 = x.copy()
    params0 = {k: v.copy() for k, v in layer.params.items()}
    y = layer.forward(x)
    g1, g2 = rng.normal(size=y.shape), rng.normal(size=y.shape)

    def back(g):
        layer.zero_grad()
        dx = layer.backward(g)
        return [dx] + [layer.grads[f"dJ_d{k}"].copy() for k in layer.params]

    combined, b1, b2 = back(2.0 * g1 - 3.0 * g2), back(g1), back(g2)
    for c, a, b in zip(combined, b1, b2):
        np.testing.assert_allclose(c, 2.0 * a - 3.0 * b, rtol=1e-12, atol=1e-14)
    for a, b in zip(back(g1), b1):  # same (x, g) twice: bitwise equal
        np.testing.assert_array_equal(a, b)
    assert all(np.all(a == 0) for a in back(np.zeros_like(y)))
    np.testing.assert_array_equal(x, x0)
    for k, v in layer.params.items():
        np.testing.assert_array_equal(v, params0[k])
        assert layer.grads[f"dJ_d{k}"].shape == v.shape and layer.grads[f"dJ_d{k}"].dtype == v.dtype


@pytest.mark.parametrize("loss,reduce", [("sse_sum", np.sum), ("ce", np.mean), ("bce_with_logits", np.mean)])
def test_batch_reduction_sum_and_mean_of_per_sample_gradients(loss, reduce, rng):
    """Sum reduction: the batch gradient is the sum of per-sample gradients; mean: their average."""
    net = hg.MLP(3, [4], 2, f="tanh", seed=rng, dtype=np.float64)
    X = rng.normal(size=(4, 3))
    make = {"sse_sum": lambda: hg.SquaredErrorLoss("sum"), "ce": hg.CrossEntropyLoss,
            "bce_with_logits": hg.BCEWithLogitsLoss}[loss]
    Y = {"sse_sum": rng.normal(size=(4, 2)), "ce": rng.integers(0, 2, 4),
         "bce_with_logits": rng.random((4, 2))}[loss]

    def grads(x, y):
        net.zero_grad()
        net(x)
        net.backward_loss(make(), y)
        return {k: v.copy() for k, v in net.grads.items()}

    batch = grads(X, Y)
    per_sample = [grads(X[i:i + 1], Y[i:i + 1]) for i in range(4)]
    for k in batch:
        np.testing.assert_allclose(batch[k], reduce([g[k] for g in per_sample], axis=0), rtol=1e-10, atol=1e-14)


def test_C2_names_are_case_and_whitespace_insensitive():
    assert isinstance(hg.make_activation(" ReLU "), hg.ReLU) and isinstance(hg.make_loss(" MSE "), hg.MSELoss)
    assert isinstance(hg.make_loss("Cross-Entropy"), hg.CrossEntropyLoss)
    with pytest.raises(ValueError, match=r"unknown loss 'msee'; known: .*did you mean 'mse'"):
        hg.make_loss("msee")


@pytest.mark.filterwarnings("error")  # no warning from the sum's overflow or inf - inf either
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_finite_check_finds_every_non_finite_and_accepts_sums_that_overflow(dtype):
    """check_finite's one-pass sum: a single NaN, +inf, -inf or +inf and -inf together (whose
    sum is NaN) is found and located; finite values whose sum overflows are accepted."""
    from handgrad.validation import check_finite

    big = np.full((4, 3), np.finfo(dtype).max, dtype)
    check_finite(big)  # Σ = inf, yet every value is finite
    check_finite(np.zeros((0, 3), dtype))
    check_finite(np.arange(6).reshape(2, 3))  # integers
    for values, what, where in (([np.nan], "NaN", "row 1, column 2"), ([np.inf], "infinity", "row 1, column 2"),
                                ([-np.inf], "infinity", "row 1, column 2"),
                                ([np.inf, -np.inf], "infinity", "row 1, column 2")):
        X = np.ones((3, 3), dtype)
        X[1, 2] = values[0]
        if len(values) > 1:
            X[2, 0] = values[1]
        with pytest.raises(ValueError, match=f"Input X contains {what} at {where} \\({len(values)} non-finite"):
            check_finite(X)


# ====================================================================== issue 14: hostile inputs, one test per finding
def _trained_xor(tmp_path):
    from handgrad.cli import main

    assert main(["train", "--data", "xor", "--epochs", "2", "--hidden", "3", "-q", "--out", str(tmp_path / "run")]) == 0
    return tmp_path / "run" / "model.safetensors"


def test_inputs_that_overflow_the_network_are_an_error_never_a_class(tmp_path, capsys):
    from handgrad.cli import main
    from handgrad.inference import load_predictor

    model_path = _trained_xor(tmp_path)
    model = load_predictor(model_path)
    with pytest.raises(ValueError, match=r"row 1 \(0-based\), feature 'x1'.*outside the range of the network's float32"):
        model.predict(np.array([[0.0, 1.0], [1e300, 0.0]]))
    from handgrad.inference import Predictor

    net = hg.Sequential(hg.Linear(2, 2), hg.ReLU(), hg.Linear(2, 1), hg.Sigmoid())
    net.layers[0].params["W"][...] = 1.0
    net.layers[2].params["W"][...] = [[1.0, -1.0]]  # inf - inf: the output is NaN, not a probability
    overflowing = Predictor(net, task="classification", loss="bce", feature_names=["x1", "x2"], class_labels=[0, 1])
    for answer in (overflowing.predict, overflowing.predict_proba, lambda X: overflowing.metrics(X, [0, 1])):
        with pytest.raises(ValueError, match=r"row 1 \(0-based\): the network's outputs overflow"):
            answer(np.array([[0.0, 1.0], [2e38, 2e38]]))
    data = tmp_path / "huge.csv"
    data.write_text("x1,x2,class\n0,1,1\n1e300,0,0\n")
    for command in ("predict", "evaluate"):
        assert main([command, str(model_path), "--data", str(data)]) == 1
        err = capsys.readouterr().err
        assert "row 1 (0-based)" in err and "nan" not in err.lower()


def test_standardisation_of_huge_features_trains_and_saves(tmp_path):
    from handgrad.cli import main

    rng = np.random.default_rng(0)
    rows = "".join(f"{float(a) * 1e300!r},{float(b)!r},{int(a > 0)}\n" for a, b in rng.uniform(-1, 1, size=(40, 2)))
    data = tmp_path / "huge.csv"
    data.write_text("a,b,y\n" + rows)
    assert main(["train", "--data", str(data), "--epochs", "3", "-q", "--out", str(tmp_path / "o")]) == 0
    from handgrad.inference import load_predictor

    model = load_predictor(tmp_path / "o" / "model.safetensors")
    assert np.isfinite(model.x_scaler.scale_).all() and model.x_scaler.scale_[0] > 1e299


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_hw1_converts_lists_and_names_the_type_it_wants(backend):
    if backend == "torch":
        pytest.importorskip("torch")
    from handgrad import hw1

    mlp = hw1.MLP(2, 3, "relu", 3, 1, "identity", backend=backend)
    y_hat = mlp.forward([[1.0, 2.0]])
    assert tuple(y_hat.shape) == (1, 1)
    mlp.parameters["W1"] = [[1.0, 2.0]] * 3
    assert type(mlp.parameters["W1"]) is type(y_hat) and tuple(mlp.parameters["W1"].shape) == (3, 2)
    with pytest.raises(TypeError, match=r"x must be a (numpy\.ndarray|torch\.Tensor) like the network's parameters"):
        mlp.forward("1, 2")
    with pytest.raises(ValueError, match=r"W1 must have shape \(3, 2\), got \(2,\)"):
        mlp.parameters["W1"] = [1.0, 2.0]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("g", ["identity", "sigmoid"])
@pytest.mark.parametrize("bad", [(1, 3), (5, 1), (3,), ()])
def test_backward_refuses_an_upstream_gradient_of_another_shape(backend, g, bad):
    if backend == "torch":
        torch = pytest.importorskip("torch")
    net = hg.MLP(4, [6], 3, f="tanh", g=g, seed=np.random.default_rng(0))
    x = np.ones((5, 4), dtype=np.float32)
    if backend == "torch":
        net.to("torch")
        x, grad = torch.ones(5, 4), torch.ones(bad)
    else:
        grad = np.ones(bad, dtype=np.float32)
    net.forward(x)
    with pytest.raises(ValueError, match=rf"output's shape \(5, 3\), got {re.escape(str(tuple(bad)))}"):
        net.backward(grad)
    z = x
    for layer in net.layers:  # every layer run on its own, from the one rule in the base class
        z = layer.forward(z)
        wrong = torch.ones(bad) if backend == "torch" else np.ones(bad, dtype=np.float32)
        with pytest.raises(ValueError, match=rf"{type(layer).__name__}.*\.backward: the upstream gradient must "
                                             rf"have the output's shape \(5, \d\)"):
            layer.backward(wrong)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_hw1_backward_refuses_a_gradient_of_another_shape(backend):
    if backend == "torch":
        pytest.importorskip("torch")
    from handgrad import hw1

    mlp = hw1.MLP(4, 6, "relu", 6, 3, "identity", backend=backend)
    mlp.forward(np.ones((5, 4)).tolist())
    for bad in ([[1.0, 1.0, 1.0]], np.ones((5, 1)).tolist()):
        with pytest.raises(ValueError, match=r"dJdy_hat must have the output's shape \(5, 3\)"):
            mlp.backward(bad)


@pytest.mark.parametrize("text", ["-" * 10000 + "x", "-" * 600 + "x", "(" * 3000 + "x" + ")" * 3000,
                                  "+".join(["x"] * 5000)])
def test_deep_expressions_are_too_deeply_nested(text, capsys):
    from handgrad import graph
    from handgrad.cli import main

    with pytest.raises(ValueError, match="too deeply nested"):
        graph.parse_expressions(text, {"x": 1.0})
    assert main(["graph", f"--expr={text}", "--values", "x=1"]) == 2
    err = capsys.readouterr().err
    assert "too deeply nested" in err and "recursion" not in err.lower()


def test_plot_huge_dpi_and_binary_history_are_clear_errors(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from handgrad.cli import main

    assert main(["plot", "softmax", "--dpi", "100000", "-o", str(tmp_path / "s.png")]) == 2
    assert "dpi 100000 is too large" in capsys.readouterr().err and not (tmp_path / "s.png").exists()
    model = _trained_xor(tmp_path)
    assert main(["plot", "loss-curve", str(model), "-o", str(tmp_path / "l.png")]) == 2
    err = capsys.readouterr().err
    assert "not a history file: it is binary" in err and "codec" not in err


@pytest.mark.parametrize("name", ["HandgradClassifier", "HandgradRegressor"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_sample_weight_of_two_equals_a_repeated_row(name, solver):
    pytest.importorskip("sklearn")
    from handgrad import sklearn as hs

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    y = (X[:, 0] > 0).astype(int) if name == "HandgradClassifier" else X @ np.array([1.0, 2.0, 3.0])
    w = np.ones(20)
    w[:5] = 2
    kw = dict(hidden_layer_sizes=(4,), solver=solver, batch_size=100, shuffle=False, max_iter=15, random_state=1,
              alpha=0.01)
    Est = getattr(hs, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weighted = Est(**kw).fit(X, y, sample_weight=w)
        repeated = Est(**kw).fit(np.vstack([X, X[:5]]), np.concatenate([y, y[:5]]))
        plain = Est(**kw).fit(X, y)
        partial = Est(**kw).partial_fit(X, y, sample_weight=w, **({"classes": [0, 1]} if "Class" in name else {}))
    for a, b in zip(weighted.coefs_, repeated.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=1e-10)
    assert max(np.abs(a - b).max() for a, b in zip(weighted.coefs_, plain.coefs_)) > 1e-6
    assert len(partial.loss_curve_) == 1
    with pytest.raises(ValueError, match="Negative values"):
        Est(**kw).fit(X, y, sample_weight=-w)


def test_empty_error_messages_never_reach_the_user(capsys, monkeypatch):
    from handgrad import cli
    from handgrad.commands import datasets

    def boom(args):
        raise RuntimeError()

    monkeypatch.setattr(datasets, "run_datasets", boom, raising=False)
    parser = cli.build_parser()
    args = parser.parse_args(["datasets"])
    args.handler = boom
    monkeypatch.setattr(cli, "build_parser", lambda: type("P", (), {"parse_args": lambda self, a: args})())
    assert cli.main(["datasets"]) == 1
    err = capsys.readouterr().err
    assert "RuntimeError with no message in boom" in err and not err.rstrip().endswith("error:")
    assert cli.error_text(KeyError("W3")) == "missing key 'W3'"
