"""The NumPy fast path of Sequential (reused buffers, fused loss gradients, packed parameters)
gives the plain array-API path's results, never aliases what it hands out, and never writes
into the caller's arrays."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from handgrad import MLP, SGD, Linear, ReLU, Sequential, Sigmoid, Tanh, make_loss
from handgrad.fast import Workspace, blas, kernels_for
from handgrad.losses import SquaredErrorLoss
from handgrad.model import MAX_PLANS

# (f, g, loss): every fast layer and every fast loss, plus layers and losses that take the plain pair inside a plan
CASES = [
    ("relu", "identity", "mse"),
    ("5relu", "identity", "mse"),
    ("relu", "sigmoid", "bce"),
    ("tanh", "sigmoid", "bce"),
    ("tanh", "tanh", "mse"),
    ("gelu", "softmax", "cross_entropy"),
    ("relu", "softmax", "cross_entropy_onehot"),
    ("leaky_relu", "identity", "squared_error"),
    ("softplus", "sigmoid", "mse"),
    ("relu", "identity", "bce_with_logits"),
]


def _targets(loss: str, rng, n: int, k: int, dtype):
    if loss in ("bce", "bce_with_logits"):
        return (rng.random((n, k)) < 0.5).astype(dtype)
    if loss == "cross_entropy":
        return rng.integers(0, k, n)
    if loss == "cross_entropy_onehot":
        return np.eye(k, dtype=dtype)[rng.integers(0, k, n)]
    return rng.standard_normal((n, k)).astype(dtype)


def _pair(f, g, dtype, hidden=(16, 8), n_in=5, k=3):
    fast = MLP(n_in, list(hidden), k, f=f, g=g, seed=3, dtype=dtype)
    plain = copy.deepcopy(fast)
    plain.fast_path = False
    return fast, plain


def _step(net, loss, x, y, lr=0.05):
    y_hat = net.forward(x)
    net.zero_grad()
    J = net.backward_loss(loss, y)
    grads = {k: v.copy() for k, v in net.grads.items()}
    net.sgd_step(lr)
    return float(J), y_hat.copy(), grads


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("f,g,loss_name", CASES)
def test_fast_path_matches_plain_path(rng, f, g, loss_name, dtype):
    fast, plain = _pair(f, g, dtype)
    loss = make_loss(loss_name.removesuffix("_onehot"))
    tol = dict(rtol=1e-4, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for _ in range(4):
        x = rng.standard_normal((7, 5)).astype(dtype)
        y = _targets(loss_name, rng, 7, 3, dtype)
        Ja, ya, ga = _step(fast, loss, x, y)
        Jb, yb, gb = _step(plain, loss, x, y)
        np.testing.assert_allclose(Ja, Jb, **tol)
        np.testing.assert_allclose(ya, yb, **tol)
        for key in gb:
            np.testing.assert_allclose(ga[key], gb[key], err_msg=key, **tol)
    for key, theta in plain.params.items():
        np.testing.assert_allclose(fast.params[key], theta, err_msg=key, **tol)
    assert fast._plan is not None and plain._plan is None  # the fast one really ran its plan


def test_backward_with_user_gradient_matches_and_returns_fresh_input_gradient(rng):
    fast, plain = _pair("tanh", "identity", np.float64)
    x = rng.standard_normal((6, 5))
    g = rng.standard_normal((6, 3))
    g_before = g.copy()
    for _ in range(2):  # the second call runs the plan
        for net in (fast, plain):
            net.forward(x)
            net.zero_grad()
        dx_fast = fast.backward(g)
        dx_plain = plain.backward(g)
    np.testing.assert_allclose(dx_fast, dx_plain, rtol=1e-12)
    np.testing.assert_array_equal(g, g_before)  # the caller's gradient is not used as scratch
    fast.forward(x)
    dx_again = fast.backward(2 * g)
    np.testing.assert_allclose(dx_fast, dx_plain, rtol=1e-12)  # the earlier result was not overwritten
    assert not np.shares_memory(dx_again, dx_fast)


def test_outputs_are_fresh_arrays(rng):
    for g in ("identity", "sigmoid", "relu", "tanh"):
        net = MLP(4, [8], 2, g=g, seed=0)
        x1, x2 = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
        net.forward(x1)
        y1 = net.forward(x1)
        kept = y1.copy()
        y2 = net.forward(x2)
        assert not np.shares_memory(y1, y2), g
        np.testing.assert_array_equal(y1, kept)


def test_callers_arrays_are_never_written_and_read_only_inputs_work(rng):
    net = MLP(5, [8], 3, f="relu", g="sigmoid", seed=0)
    loss = make_loss("bce")
    x = rng.standard_normal((6, 5)).astype(np.float32)
    y = (rng.random((6, 3)) < 0.5).astype(np.float32)
    x.setflags(write=False)
    y.setflags(write=False)
    x_before, y_before = x.copy(), y.copy()
    for _ in range(3):
        net.train_step(x, y, loss, 0.1)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(y, y_before)


def test_first_layer_activation_never_overwrites_the_input(rng):
    net = Sequential(ReLU(), Linear(4, 3, seed=0), Tanh(), Linear(3, 2, seed=1))
    x = rng.standard_normal((5, 4)).astype(np.float32)
    x_before = x.copy()
    for _ in range(3):
        net.forward(x)
        net.zero_grad()
        dx = net.backward(np.ones((5, 2), np.float32))
    np.testing.assert_array_equal(x, x_before)
    assert dx.shape == x.shape and not np.shares_memory(dx, x)


def test_gradients_accumulate_until_zero_grad(rng):
    net = MLP(5, [8], 3, seed=0)
    loss = make_loss("mse")
    x, y = rng.standard_normal((6, 5)), rng.standard_normal((6, 3))
    net.forward(x)
    net.forward(x)  # the plan now exists
    net.zero_grad()
    net.backward_loss(loss, y)
    once = {k: v.copy() for k, v in net.grads.items()}
    net.forward(x)
    net.backward_loss(loss, y)  # no zero_grad: adds
    for key, g in net.grads.items():
        np.testing.assert_allclose(g, 2 * once[key], rtol=1e-6, err_msg=key)
    net.zero_grad()
    assert all(not g.any() for g in net.grads.values())


def test_dtypes_are_kept(rng):
    for dtype in (np.float32, np.float64):
        net = MLP(3, [4], 2, seed=0, dtype=dtype)
        x = rng.standard_normal((5, 3))  # float64 input: cast to the network's dtype
        for _ in range(3):
            J = net.train_step(x, rng.standard_normal((5, 2)), "mse", 0.1)
        assert net.forward(x).dtype == dtype
        assert np.asarray(J).dtype == dtype
        assert all(a.dtype == dtype for a in [*net.params.values(), *net.grads.values()])


def test_parameters_stay_the_same_objects_in_the_folded_storage(rng):
    """W, b and their gradients keep their identity through training, as views of each
    Linear's folded storage M = [Wᵀ; bᵀ]: W (out, in) with W.T C-contiguous, b contiguous."""
    net = MLP(5, [8], 3, seed=0)
    before = {k: v for k, v in net.params.items()}
    grads_before = {k: v for k, v in net.grads.items()}
    opt = SGD(net, lr=0.1)
    x, y = rng.standard_normal((6, 5)), rng.standard_normal((6, 3))
    for _ in range(3):
        net.forward(x)
        net.zero_grad()
        net.backward_loss(make_loss("mse"), y)
        opt.step()
    for store, was in ((net.params, before), (net.grads, grads_before)):
        for key, a in store.items():
            assert a is was[key], key
            assert (a.T if a.ndim == 2 else a).flags.c_contiguous, key
    for layer in net.linears:
        M, dM = layer.packed().folded
        assert M.shape == (layer.in_features + 1, layer.out_features) and M.flags.c_contiguous
        np.testing.assert_array_equal(M, np.vstack([layer.W.T, layer.b]))
        np.testing.assert_array_equal(dM, np.vstack([layer.grads["dJ_dW"].T, layer.grads["dJ_db"]]))
        assert np.shares_memory(M, layer.W) and np.shares_memory(dM, layer.grads["dJ_db"])


def test_sgd_step_matches_the_optimizer(rng):
    a = MLP(5, [8], 3, seed=0)
    b = copy.deepcopy(a)
    opt = SGD(b, lr=0.1)
    loss = make_loss("mse")
    for _ in range(3):
        x, y = rng.standard_normal((6, 5)), rng.standard_normal((6, 3))
        a.train_step(x, y, loss, 0.1)
        b.forward(x)
        b.zero_grad()
        b.backward_loss(loss, y)
        opt.step()
    for key in a.params:
        np.testing.assert_allclose(a.params[key], b.params[key], rtol=1e-6, err_msg=key)


def test_replaced_parameters_are_used(rng):
    net = MLP(4, [6], 2, seed=0, dtype=np.float64)
    x = rng.standard_normal((5, 4))
    net.forward(x)
    net.forward(x)
    layer = net.layers[0]
    layer.params["W"] = np.ones((6, 4))  # a new array, not the packed one
    layer.grads["dJ_dW"] = np.zeros((6, 4))
    reference = copy.deepcopy(net)
    reference.fast_path = False
    for _ in range(2):
        np.testing.assert_allclose(net.forward(x), reference.forward(x), rtol=1e-12)
        for model in (net, reference):
            model.zero_grad()
            model.backward(np.ones((5, 2)))
        np.testing.assert_allclose(net.grads["dJ_dW1"], reference.grads["dJ_dW1"], rtol=1e-12)
    net.sgd_step(0.5)
    np.testing.assert_allclose(layer.params["W"], 1 - 0.5 * reference.grads["dJ_dW1"], rtol=1e-12)


def test_changing_batch_sizes_and_bounded_plans(rng):
    fast, plain = _pair("relu", "identity", np.float64)
    loss = make_loss("mse")
    for n in [8, 8, 3, 8, 5, 2, 7, 1, 8, 3]:
        x, y = rng.standard_normal((n, 5)), rng.standard_normal((n, 3))
        Ja, _, _ = _step(fast, loss, x, y)
        Jb, _, _ = _step(plain, loss, x, y)
        np.testing.assert_allclose(Ja, Jb, rtol=1e-10)
    assert len(fast._plans) <= MAX_PLANS


def test_checked_path_errors_still_raise_with_a_plan(rng):
    net = MLP(4, [6], 2, g="sigmoid", seed=0)
    x = rng.standard_normal((5, 4))
    net.forward(x)
    net.forward(x)
    with pytest.raises(ValueError, match=r"expected x of shape \(N, 4\), got \(5, 3\)"):
        net.forward(rng.standard_normal((5, 3)))
    net.forward(x)
    with pytest.raises(ValueError, match=r"y \(targets\) must be in \[0, 1\]"):
        net.backward_loss(make_loss("bce"), np.full((5, 2), 2.0, np.float32))
    with pytest.raises(ValueError, match="same shape"):
        net.backward_loss(make_loss("mse"), np.zeros((5, 3), np.float32))
    net.clear_cache()
    with pytest.raises(RuntimeError, match="before forward"):
        net.backward(np.ones((5, 2), np.float32))


def test_fast_caches_serve_the_plain_backward(rng):
    """Layer caches left by a fast forward are what each layer's own backward reads."""
    net = MLP(5, [8, 8], 3, f="5relu", g="identity", seed=0, dtype=np.float64)
    x, g = rng.standard_normal((6, 5)), rng.standard_normal((6, 3))
    net.forward(x)
    net.forward(x)
    net.zero_grad()
    net.backward(g)
    fast = {k: v.copy() for k, v in net.grads.items()}
    net.zero_grad()
    net._backward_from(len(net.layers) - 1, g, True)  # layer by layer, the plain pairs
    for key, value in net.grads.items():
        np.testing.assert_allclose(value, fast[key], rtol=1e-12, err_msg=key)


def test_copies_and_conversions_keep_working(rng):
    net = MLP(5, [8], 3, f="tanh", g="sigmoid", seed=0)
    loss = make_loss("bce")
    x = rng.standard_normal((6, 5)).astype(np.float32)
    y = (rng.random((6, 3)) < 0.5).astype(np.float32)
    for _ in range(2):
        net.train_step(x, y, loss, 0.1)
    twin = net.copy()
    assert all(not np.shares_memory(twin.params[k], v) for k, v in net.params.items())
    np.testing.assert_allclose(twin.train_step(x, y, loss, 0.1), net.train_step(x, y, loss, 0.1), rtol=1e-6)
    net.to(dtype=np.float64)
    J = net.train_step(x.astype(np.float64), y, loss, 0.1)
    assert np.asarray(J).dtype == np.float64 and net.params["W1"].dtype == np.float64


def test_single_sigmoid_network_returns_a_private_input_gradient(rng):
    net = Sequential(Sigmoid())
    loss = make_loss("bce")
    x = rng.standard_normal((4, 2))
    y = (rng.random((4, 2)) < 0.5).astype(np.float64)
    grads = []
    for _ in range(3):
        net.forward(x)
        grads.append(net.backward_loss(loss, y, input_grad=True))
    assert np.isfinite(float(grads[-1]))


def test_torch_backend_still_matches_numpy(rng):
    torch = pytest.importorskip("torch")
    a = MLP(5, [8], 3, f="relu", g="sigmoid", seed=0, dtype=np.float64)
    b = MLP(5, [8], 3, f="relu", g="sigmoid", seed=0, dtype=np.float64, backend="torch")
    loss = make_loss("bce")
    for _ in range(3):
        x = rng.standard_normal((6, 5))
        y = (rng.random((6, 3)) < 0.5).astype(np.float64)
        Ja = a.train_step(x, y, loss, 0.1)
        Jb = b.train_step(torch.from_numpy(x), torch.from_numpy(y), loss, 0.1)
        np.testing.assert_allclose(float(Ja), float(Jb), rtol=1e-10)
    for key in a.params:
        np.testing.assert_allclose(a.params[key], b.params[key].numpy(), rtol=1e-10, err_msg=key)


def test_train_step_and_sgd_step_reject_bad_learning_rates(rng):
    net = MLP(2, [3], 1, seed=0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lr must be a finite positive number"):
            net.sgd_step(bad)
    with pytest.raises(TypeError, match="lr must be"):
        net.sgd_step("0.1")


@pytest.mark.parametrize("scale", [1.0, 5.0])
def test_fast_relu_keeps_the_limits_at_infinity_and_propagates_nan(scale):
    """relu(-inf) = 0, relu(inf) = inf, relu(nan) = nan on the fast path too (not 0·inf = nan)."""
    net = Sequential(Linear(1, 2, dtype=np.float64, seed=0), ReLU(scale=scale))
    net.layers[0].params["W"][...] = [[1.0], [-1.0]]
    net.layers[0].params["b"][...] = 0.0
    x = np.array([[np.inf], [np.nan], [2.0]])
    expected = np.array([[np.inf, 0.0], [np.nan, np.nan], [2 * scale, 0.0]])
    for _ in range(3):  # the first pass is the checked one, then the fast plan runs
        np.testing.assert_array_equal(net(x), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_sigmoid_is_the_plain_sigmoid_at_every_extreme(dtype):
    """σ on the fast path: the same stable formula as the plain one, value for value."""
    row = [-np.inf, -1e4, -104.0, -88.0, -20.0, -1.0, -1e-8, 0.0, 1e-8, 1.0, 20.0, 88.0, 1e4, np.inf, np.nan]
    x = np.array([row, row[::-1]], dtype)
    g = np.linspace(-1, 1, x.size).reshape(x.shape).astype(dtype)
    plain = Sigmoid()
    y_plain, dx_plain = plain.forward(x), plain.backward(g)
    layer = Sigmoid()
    ws = Workspace(x.shape, x.shape, np.dtype(dtype), first=True, fresh=True, inplace=False)
    fast_forward, fast_backward = kernels_for(layer, ws)
    for _ in range(2):  # buffers reused
        y = fast_forward(x)
        np.testing.assert_array_equal(y, y_plain)
        assert y.dtype == dtype and np.all((y[~np.isnan(x)] >= 0) & (y[~np.isnan(x)] <= 1))
        np.testing.assert_array_equal(fast_backward(g), dx_plain)
    if dtype == np.float64:  # and inside a network's plan
        net = Sequential(Sigmoid())
        for _ in range(3):  # the first pass is the checked one, then the fast plan runs
            np.testing.assert_array_equal(net(x), y_plain)
        assert net._last_plan is not None
        np.testing.assert_array_equal(net.backward(g), dx_plain)


def test_fast_bce_is_finite_and_matches_for_saturated_logits(rng):
    """Sigmoid + BCE from logits far out in both tails: J and dJ/dz stay finite and equal the plain path's."""
    fast = MLP(3, [4], 2, f="relu", g="sigmoid", seed=0, dtype=np.float64)
    fast.layers[2].params["W"][...] *= 1e3  # logits of order 1e3
    plain = copy.deepcopy(fast)
    plain.fast_path = False
    loss = make_loss("bce")
    x = rng.standard_normal((6, 3))
    y = (rng.random((6, 2)) < 0.5).astype(np.float64)
    for _ in range(3):
        Ja, _, ga = _step(fast, loss, x, y, lr=1e-9)
        Jb, _, gb = _step(plain, loss, x, y, lr=1e-9)
        assert np.isfinite(Ja)
        np.testing.assert_allclose(Ja, Jb, rtol=1e-10)
        for key in gb:
            np.testing.assert_allclose(ga[key], gb[key], rtol=1e-10, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("f,g,loss_name", [("relu", "sigmoid", "bce"), ("tanh", "identity", "mse")])
def test_train_step_leaves_exactly_the_batch_gradient(rng, f, g, loss_name):
    """train_step defers zeroing (its backward writes the gradients): afterwards they are this
    batch's gradient, not a sum with the previous step's or with gradients left by the user."""
    a = MLP(5, [8], 3, f=f, g=g, seed=0)
    b = copy.deepcopy(a)
    loss = make_loss(loss_name)
    for i in range(4):
        x = rng.standard_normal((6, 5)).astype(np.float32)
        y = _targets(loss_name, rng, 6, 3, np.float32)
        if i == 2:  # gradients the user accumulated by hand must not leak into the step
            a.forward(x)
            a.backward(np.ones((6, 3), np.float32))
        Ja = a.train_step(x, y, loss, 0.1)
        Jb, _, gb = _step(b, loss, x, y, lr=0.1)
        np.testing.assert_allclose(float(Ja), Jb, rtol=1e-6)
        for key in gb:
            np.testing.assert_allclose(a.grads[key], gb[key], rtol=1e-5, atol=1e-7, err_msg=key)
    for key in a.params:
        np.testing.assert_allclose(a.params[key], b.params[key], rtol=1e-5, atol=1e-7, err_msg=key)


def test_failed_train_step_leaves_zero_gradients_and_untouched_parameters(rng):
    net = MLP(4, [6], 2, g="sigmoid", seed=0)
    loss = make_loss("bce")
    x = rng.standard_normal((5, 4)).astype(np.float32)
    y = (rng.random((5, 2)) < 0.5).astype(np.float32)
    for _ in range(2):
        net.train_step(x, y, loss, 0.1)
    assert any(np.any(v != 0) for v in net.grads.values())
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(ValueError, match=r"y \(targets\) must be in \[0, 1\]"):
        net.train_step(x, np.full((5, 2), 2.0, np.float32), loss, 0.1)
    for key, value in net.grads.items():
        np.testing.assert_array_equal(value, 0, err_msg=key)
    for key, value in net.params.items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_train_step_with_replaced_parameters_zeroes_for_real(rng):
    net = MLP(4, [6], 2, seed=0, dtype=np.float32)
    x, y = rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal((5, 2)).astype(np.float32)
    net.train_step(x, y, "mse", 0.1)
    layer = net.layers[0]
    layer.params["W"] = np.ones((6, 4), np.float32)  # no longer the packed storage
    layer.grads["dJ_dW"] = np.full((6, 4), 7.0, np.float32)  # stale values that must not be added
    reference = copy.deepcopy(net)
    reference.fast_path = False
    net.train_step(x, y, "mse", 0.1)
    _step(reference, make_loss("mse"), x, y, lr=0.1)
    for key in reference.grads:
        np.testing.assert_allclose(net.grads[key], reference.grads[key], rtol=1e-5, atol=1e-7, err_msg=key)
    for key in reference.params:
        np.testing.assert_allclose(net.params[key], reference.params[key], rtol=1e-5, atol=1e-7, err_msg=key)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_step_one_pass_update_matches_the_two_pass_update(rng, dtype, monkeypatch):
    """θ ← θ - lr·g through BLAS axpy (float32, one rounding) agrees with the ufunc pair
    (θ - round(lr·g)); float64 keeps the ufunc pair bit for bit. Also for replaced,
    non-contiguous parameter arrays, which axpy must not be given."""
    F = blas
    results = {}
    for use_blas in (True, False):
        monkeypatch.setattr(F, "USE_BLAS", use_blas)
        net = MLP(30, [50], 4, seed=0, dtype=dtype)
        net.layers[2].params["W"] = np.asfortranarray(net.layers[2].params["W"])  # not C-contiguous
        for _, layer, key, gkey in net.parameter_slots():
            layer.grads[gkey][...] = np.random.default_rng(1).standard_normal(layer.grads[gkey].shape)
        expected = {name: net.params[name] - dtype(0.01) * net.grads["dJ_d" + name] for name in net.params}
        net.sgd_step(0.01)
        for name, theta in net.params.items():
            if dtype == np.float64 or not use_blas:
                np.testing.assert_array_equal(theta, expected[name], err_msg=name)
            else:
                np.testing.assert_allclose(theta, expected[name], rtol=2e-7, atol=1e-9, err_msg=name)
        results[use_blas] = {k: v.copy() for k, v in net.params.items()}
    if dtype == np.float32 and F.blas_axpy(np.dtype(np.float32)) is not None:
        assert F.blas_axpy(np.dtype(np.float64)) is None


def test_blas_bias_add_gives_the_same_sums(rng, monkeypatch):
    """Wide layers (z of BLAS_BIAS_MIN_SIZE elements or more) get z += 1 bᵀ from BLAS's ger:
    the same sums as NumPy's broadcast add, bit for bit, into buffers and into a fresh ŷ."""
    from handgrad.fast.kernels import BLAS_BIAS_MIN_SIZE

    F = blas
    n = 64
    width = BLAS_BIAS_MIN_SIZE // n + 1
    x = rng.standard_normal((n, 5)).astype(np.float32)
    outputs = {}
    for use_blas in (True, False):
        monkeypatch.setattr(F, "USE_BLAS", use_blas)
        net = MLP(5, [width], width, f="relu", g="identity", seed=0, dtype=np.float32)
        ys = [net.forward(x) for _ in range(3)]  # checked, then the plan twice
        assert net._last_plan is not None
        assert (net._last_plan.workspaces[0].bias_add is not None) == (use_blas and F.blas_ger(np.dtype(np.float32)) is not None)
        assert not np.shares_memory(ys[1], ys[2])
        outputs[use_blas] = ys
    plain = MLP(5, [width], width, f="relu", g="identity", seed=0, dtype=np.float32)
    plain.fast_path = False
    expected = plain.forward(x)
    for use_blas, ys in outputs.items():
        for y in ys:
            np.testing.assert_array_equal(y, expected, err_msg=f"use_blas={use_blas}")


def test_sgd_step_after_a_plan_updates_replaced_parameters(rng):
    """The plan's one-call-per-Linear update is used only while each Linear still holds the
    arrays it was built for: a W replaced after training started is the one updated."""
    net = MLP(6, [5], 3, seed=0, dtype=np.float32)
    x, y = rng.standard_normal((4, 6)).astype(np.float32), rng.standard_normal((4, 3)).astype(np.float32)
    net.train_step(x, y, "mse", 0.1)
    assert net._plan is not None
    old_W = net.layers[0].params["W"]
    new_W = old_W.copy()
    net.layers[0].params["W"] = new_W
    before_old, before_new = old_W.copy(), new_W.copy()
    grad = net.layers[0].grads["dJ_dW"].copy()
    net.sgd_step(0.5)
    np.testing.assert_array_equal(old_W, before_old)  # the replaced array is left alone
    np.testing.assert_allclose(new_W, before_new - np.float32(0.5) * grad, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("fast_path", [True, False])
@pytest.mark.parametrize("g,loss_name", [("identity", "mse"), ("sigmoid", "bce"), ("softmax", "cross_entropy")])
def test_backward_loss_zero_grad_is_zero_grad_then_backward(rng, fast_path, g, loss_name):
    """backward_loss(..., zero_grad=True) leaves exactly the gradients of zero_grad() and a
    backward_loss, whatever the gradients held before; without it they accumulate."""
    net = MLP(4, [6], 3, f="tanh", g=g, seed=0, dtype=np.float64)
    net.fast_path = fast_path
    x = rng.standard_normal((5, 4))
    y = np.eye(3)[rng.integers(0, 3, 5)] if g != "identity" else rng.standard_normal((5, 3))
    loss = make_loss(loss_name)
    net.forward(x)
    net.zero_grad()
    J_ref = net.backward_loss(loss, y)
    expected = {k: v.copy() for k, v in net.grads.items()}
    for _ in range(2):  # the gradients now hold something: the zeroing must not be skipped
        net.forward(x)
        J = net.backward_loss(loss, y, zero_grad=True)
        assert J == J_ref
        for key, grad in net.grads.items():
            np.testing.assert_array_equal(grad, expected[key], err_msg=key)
    net.forward(x)
    net.backward_loss(loss, y)  # accumulates
    for key, grad in net.grads.items():
        np.testing.assert_allclose(grad, 2 * expected[key], rtol=1e-12, atol=1e-15, err_msg=key)


def test_backward_loss_zero_grad_zeroes_when_the_backward_fails(rng):
    """A backward that raises (targets of the wrong shape) leaves zeroed gradients, not stale ones."""
    net = MLP(4, [6], 3, seed=0, dtype=np.float64)
    x = rng.standard_normal((5, 4))
    net.forward(x)
    net.backward_loss(make_loss("mse"), rng.standard_normal((5, 3)))
    net.forward(x)
    with pytest.raises(ValueError):
        net.backward_loss(make_loss("mse"), rng.standard_normal((5, 2)), zero_grad=True)
    for key, grad in net.grads.items():
        assert not grad.any(), key



@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("targets", ["int64", "int32", "uint8", "onehot", "soft"])
def test_fast_cross_entropy_matches_the_checked_path_and_stays_finite(rng, dtype, targets, monkeypatch):
    """Softmax + cross-entropy into the plan's buffer: J and every gradient as the checked
    path gives them, for indices of any integer dtype, one-hot and probability rows, and for
    logits of order 1e3 (p underflows to 0 off the arg max; J stays finite)."""
    from handgrad.fast import losses as fl

    calls = []
    fused_into = fl.cross_entropy_with_logits_into
    monkeypatch.setattr(fl, "cross_entropy_with_logits_into", lambda *a: calls.append(1) or fused_into(*a))
    k = 4
    fast = MLP(5, [6], k, f="relu", g="softmax", seed=2, dtype=dtype)
    fast.layers[2].params["W"][...] *= 300.0  # logits of order 1e3
    plain = copy.deepcopy(fast)
    plain.fast_path = False
    loss = make_loss("cross_entropy")
    tol = dict(rtol=2e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for _ in range(3):
        x = rng.standard_normal((9, 5)).astype(dtype)
        labels = rng.integers(0, k, 9)
        if targets == "onehot":
            y = np.eye(k, dtype=dtype)[labels]
        elif targets == "soft":
            y = rng.dirichlet(np.ones(k), 9).astype(dtype)
            y /= y.sum(axis=1, keepdims=True)
        else:
            y = labels.astype(targets)
        Ja, _, ga = _step(fast, loss, x, y, lr=1e-9)
        Jb, _, gb = _step(plain, loss, x, y, lr=1e-9)
        assert np.isfinite(Ja)
        np.testing.assert_allclose(Ja, Jb, **tol)
        for key in gb:
            np.testing.assert_allclose(ga[key], gb[key], err_msg=key, **tol)
    assert len(calls) == 3  # the fast fused path ran on every pass (the first builds the plan and uses it)


@pytest.mark.parametrize("bad, message", [
    (np.array([0, 1, 4, 2]), "target 4 is out of range for 4 classes"),
    (np.array([0, -1, 2, 2]), "target -1 is out of range"),
    (np.array([0.0, 1.5, 2.0, 3.0]), "must be integer class indices"),
    (np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 0]], np.float32), "rows must sum to 1; row 2 sums to 2"),
    (np.array([[1, 0, 0, 0], [0, 2, -1, 0], [0, 0, 1, 0], [1, 0, 0, 0]], np.float32), "y"),
    (np.array([0, 1, 2]), "got 3 targets for 4 rows"),
    (np.array([0, 0, 0, 0]), "C >= 2 classes"),
])
def test_fast_cross_entropy_rejects_bad_targets_as_the_checked_path_does(rng, bad, message):
    net = MLP(3, [5], 1 if message.startswith("C >=") else 4, g="softmax", seed=0)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    for _ in range(2):  # the second pass runs the plan
        net.forward(x)
        with pytest.raises(ValueError, match=message):
            net.backward_loss(make_loss("cross_entropy"), bad)
    assert net._last_plan is not None


def test_fast_cross_entropy_leaves_non_finite_logits_to_the_checked_path(rng):
    """An inf logit: the fast path hands over, so J is what the checked path computes."""
    fast = MLP(3, [5], 4, g="softmax", seed=0, dtype=np.float64)
    plain = copy.deepcopy(fast)
    plain.fast_path = False
    x = rng.standard_normal((4, 3))
    y = np.array([0, 1, 2, 3])
    fast.forward(x)
    for net in (fast, plain):
        net.layers[2].params["b"][1] = np.inf
    with np.errstate(all="ignore"):
        Ja = fast.forward(x), fast.backward_loss(make_loss("cross_entropy"), y)
        Jb = plain.forward(x), plain.backward_loss(make_loss("cross_entropy"), y)
    np.testing.assert_array_equal(Ja[1], Jb[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_softmax_is_the_plain_softmax_value_for_value(dtype):
    """Softmax on the fast path: the plain path's max-shift, exp and division, bit for bit,
    and its rule for rows holding inf or NaN; β ≠ 1 runs the plain pass."""
    from handgrad import Softmax

    rows = [[-1e4, 0.0, 1e4], [1.0, 2.0, 3.0], [88.0, 89.0, -104.0], [np.inf, 0.0, 1.0], [np.nan, 0.0, 1.0],
            [-np.inf, -np.inf, -np.inf]]
    for beta in (1.0, 2.5):
        x = np.array(rows, dtype)
        with np.errstate(all="ignore"):
            expected = Softmax(beta).forward(x)
            layer = Softmax(beta)
            ws = Workspace(x.shape, x.shape, np.dtype(dtype), first=True, fresh=True, inplace=False)
            fast_forward, _ = kernels_for(layer, ws)
            for _ in range(2):  # buffers reused
                y = fast_forward(x)
                assert y.dtype == dtype
                np.testing.assert_array_equal(y, expected)
            if dtype == np.float64:  # and inside a network's plan
                net = Sequential(Softmax(beta))
                for _ in range(2):
                    np.testing.assert_array_equal(net.forward(x), expected)
                    np.testing.assert_array_equal(net.forward(x[1:3]), expected[1:3])
                assert net._last_plan is not None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("negative_slope, scale", [(0.01, 1.0), (0.2, 3.0), (0.0, 1.0), (1.0, 1.0), (2.5, 1.0)])
def test_fast_leaky_relu_is_the_plain_one_value_for_value(rng, dtype, negative_slope, scale):
    """LeakyReLU on the fast path: x or α·x (times c) and dJ/dx = c·dJ/dy ⊙ (1 or α), bit for
    bit, at 0, ±inf and NaN too; α > 1 runs the plain pair."""
    from handgrad import LeakyReLU

    row = [-np.inf, -3.0, -1e-8, -0.0, 0.0, 1e-8, 2.0, np.inf, np.nan]
    x = np.array([row, row[::-1]], dtype)
    g = np.linspace(-1, 1, x.size).reshape(x.shape).astype(dtype)
    with np.errstate(invalid="ignore"):
        plain = LeakyReLU(negative_slope, scale)
        y_plain, dx_plain = plain.forward(x), plain.backward(g)
        layer = LeakyReLU(negative_slope, scale)
        ws = Workspace(x.shape, x.shape, np.dtype(dtype), first=True, fresh=True, inplace=False)
        fast_forward, fast_backward = kernels_for(layer, ws)
        assert (fast_forward != layer.forward) == (negative_slope <= 1.0)  # α > 1: the plain pair
        for _ in range(2):  # buffers reused
            np.testing.assert_array_equal(fast_forward(x), y_plain)
            np.testing.assert_array_equal(fast_backward(g), dx_plain)
            np.testing.assert_array_equal(layer.backward(g), dx_plain)  # the plain backward after a fast forward


def test_fast_cross_entropy_keeps_small_losses_exact_beside_large_logits(rng):
    """Logits of order 1e4 with every sample right by a small margin: J is small and is formed
    row by row, so float32 gives it to its own precision, not to that of Σ of the 1e4s."""
    net = MLP(2, [3], 3, f="identity", g="softmax", seed=0, dtype=np.float32)
    net.layers[2].params["W"][...] = 0.0
    net.layers[2].params["b"][...] = [1e4, 1e4 - 3.0, 1e4 - 5.0]  # logits (1e4, 1e4 - 3, 1e4 - 5) for every row
    plain = copy.deepcopy(net)
    plain.fast_path = False
    x = rng.standard_normal((64, 2)).astype(np.float32)
    y = np.zeros(64, np.int64)
    expected = np.log1p(np.exp(-3.0) + np.exp(-5.0))  # the exact J, ≈ 0.0543
    for _ in range(2):
        net.forward(x)
        J = net.backward_loss(make_loss("cross_entropy"), y)
    plain.forward(x)
    J_plain = plain.backward_loss(make_loss("cross_entropy"), y)
    assert abs(J - expected) < 1e-6 and abs(J_plain - expected) < 1e-6


def test_an_mlp_keeps_all_its_parameters_in_one_array_and_updates_them_in_one_call(rng):
    """MLP packs every Linear's (W, b) into one flat θ (and dJ/dθ), so plain SGD is one BLAS
    call; the update equals θ - lr·g entry by entry, and a deep copy gets storage of its own."""
    F = blas
    net = MLP(5, [7, 6], 3, seed=0, dtype=np.float32)
    thetas = [layer.packed().theta for layer in net.layers if isinstance(layer, Linear)]
    assert len({id(t.base) for t in thetas}) == 1 and thetas[0].base.size == sum(t.size for t in thetas)
    x, y = rng.standard_normal((4, 5)).astype(np.float32), rng.standard_normal((4, 3)).astype(np.float32)
    net.forward(x)
    net.backward_loss(make_loss("mse"), y, zero_grad=True)
    before = {k: v.copy() for k, v in net.params.items()}
    grads = {k: v.copy() for k, v in net.grads.items()}
    net.sgd_step(0.1)
    if F.blas_axpy(np.dtype(np.float32)) is not None:
        assert len(net._plan.update_calls) == 1
    for key, theta in net.params.items():
        np.testing.assert_allclose(theta, before[key] - np.float32(0.1) * grads["dJ_d" + key], rtol=2e-7, atol=1e-8)
    twin = copy.deepcopy(net)
    assert not np.shares_memory(twin.layers[0].params["W"], net.layers[0].params["W"])
    for other in (twin, copy.deepcopy(net).to(dtype=np.float64)):  # a copy or a cast packs its layers together too
        bases = {id(layer.packed().theta.base) for layer in other.layers if isinstance(layer, Linear)}
        assert len(bases) == 1 and None not in [layer.packed() for layer in other.layers if isinstance(layer, Linear)]
    twin.train_step(x, y, "mse", 0.1)
    net.train_step(x, y, "mse", 0.1)
    for key, theta in net.params.items():
        np.testing.assert_array_equal(twin.params[key], theta, err_msg=key)


def test_sequential_of_separate_linears_updates_each_one(rng):
    """Layers made by the caller keep their own storage (the caller may hold their arrays)."""
    first, second = Linear(4, 6, seed=1), Linear(6, 2, seed=2)
    W1 = first.params["W"]
    net = Sequential(first, ReLU(), second)
    assert net.layers[0].params["W"] is W1
    x, y = rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal((5, 2)).astype(np.float32)
    before = W1.copy()
    net.train_step(x, y, "mse", 0.1)
    assert not np.array_equal(W1, before)  # the caller's array is the one trained


@pytest.mark.parametrize("layer_type", [ReLU, lambda: __import__("handgrad").LeakyReLU(0.2)])
def test_relu_caches_the_same_slope_on_both_paths(rng, layer_type):
    """The cache of ReLU (and LeakyReLU) is its slope on the plain path and in a plan alike."""
    x = rng.standard_normal((6, 4))
    plain, fast = layer_type(), layer_type()
    plain.forward(x)
    net = Sequential(fast)
    for _ in range(2):  # the checked pass, then the plan
        net.forward(x)
    assert net._last_plan is not None
    np.testing.assert_array_equal(fast.cache, plain.cache)
    np.testing.assert_array_equal(plain.cache, plain.derivative(x))


# ---------------------------------------------------------------------- the whole step as one closure
def _per_call_train_step(net, x, y, loss, lr):
    """train_step's five steps through the per-layer kernels, as train_step runs them without the closure."""
    net.forward(x)
    net._plan.step = None  # no whole-step closure: the per-layer kernels alone
    J = net.backward_loss(loss, y, zero_grad=True)
    net.sgd_step(lr)
    return J


def _assert_rounding_close(got, want, what):
    """Equal to float32 rounding: the folded products add the bias inside the sums, the
    per-layer kernels after them, so entries may differ in their last few bits (relative to
    the array's scale, as entries near 0 come from cancelling sums)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert np.all(np.isfinite(want)), f"{what}: the reference left the finite numbers (a diverging test case)"
    scale = max(float(np.max(np.abs(want))), 1e-30)
    np.testing.assert_allclose(got, want, rtol=4e-6, atol=4e-6 * scale, err_msg=what)


def _same_state(dst, src):
    for key in src.params:
        dst.params[key][...] = src.params[key]


@pytest.mark.parametrize("n_in, hidden, k, n, f, g", [
    (20, 100, 50, 10, "relu", "identity"),   # C1's shapes
    (1, 64, 1, 32, "5relu", "identity"),     # C2's shapes
    (5, 7, 3, 4, "tanh", "identity"),
    (784, 128, 10, 64, "relu", "sigmoid"),   # C3's shapes: x too wide to copy into [x 1]
    (6, 9, 3, 5, "tanh", "sigmoid"),
    (300, 20, 2, 64, "5relu", "identity"),   # wide x, MSE
    (16, 1100, 3, 64, "tanh", "sigmoid"),    # a1 too large for [a1 1]: layer 2 adds b2
    (300, 1100, 2, 64, "relu", "identity"),  # both too large: the bias added after each product
    (2, 16, 1, 32, "5relu", "identity-sq"),  # the homework's network and loss (squared error, mean)
    (64, 100, 10, 64, "relu", "softmax"),    # digits' shapes, class labels
    (6, 9, 4, 5, "tanh", "softmax-onehot"),
])
def test_whole_step_closure_is_the_per_layer_step_to_rounding(rng, n_in, hidden, k, n, f, g):
    """Each step of the closure, from the same parameters as the per-layer step: the same J,
    ŷ, gradients and updated parameters, to float32 rounding (and the same as the plain
    path's). What it leaves behind then serves the per-layer calls."""
    if blas.blas_axpy(np.dtype(np.float32)) is None:
        pytest.skip("the whole-step closure needs NumPy's bundled BLAS")
    onehot, squared = g == "softmax-onehot", g == "identity-sq"
    g = g.split("-")[0]
    fused = MLP(n_in, [hidden], k, f=f, g=g, seed=2, dtype=np.float32)
    layered = copy.deepcopy(fused)
    plain = copy.deepcopy(fused)
    plain.fast_path = False
    loss = SquaredErrorLoss("mean") if squared else make_loss({"sigmoid": "bce", "softmax": "cross_entropy"}.get(g, "mse"))
    lr = 0.002 if f == "5relu" else 0.05  # 5·ReLU at 0.05 diverges within these steps
    for i in range(5):
        x = rng.standard_normal((n, n_in)).astype(np.float32)
        y = rng.standard_normal((n, k)).astype(np.float32)
        if g == "sigmoid":
            y = (y > 0).astype(np.float32)
            y[0, 0] = 0.25  # soft targets are targets too
        if g == "softmax":
            y = rng.integers(0, k, n)
            if onehot:
                y = np.eye(k, dtype=np.float32)[y]
        _same_state(fused, layered)
        _same_state(plain, layered)
        J_fused = fused.train_step(x, y, loss, lr)
        J_layered = _per_call_train_step(layered, x, y, loss, lr)
        J_plain = plain.train_step(x, y, loss, lr)
        if i > 0:  # the first step builds the plan and runs the per-layer kernels
            assert fused._plan.step is not None
        _assert_rounding_close(J_fused, J_layered, "J")
        _assert_rounding_close(J_fused, J_plain, "J (plain)")
        _assert_rounding_close(fused._last_output, layered._last_output, "y_hat")
        assert type(loss) in fused._plan.step.loss_types
        for key in fused.params:
            _assert_rounding_close(fused.grads["dJ_d" + key], layered.grads["dJ_d" + key], "dJ_d" + key)
            _assert_rounding_close(fused.grads["dJ_d" + key], plain.grads["dJ_d" + key], "dJ_d" + key + " (plain)")
            _assert_rounding_close(fused.params[key], layered.params[key], key)
    # what the step leaves behind serves the next calls as the per-layer step's does
    _same_state(fused, layered)
    y_hat = fused.forward(x)
    assert y_hat is not fused.forward(x)  # ŷ stays a fresh array
    np.testing.assert_array_equal(y_hat, layered.forward(x))
    for net in (fused, layered):
        net.train_step(x, y, loss, lr)
    _same_state(fused, layered)
    fused.zero_grad()
    layered.zero_grad()
    if g != "identity":  # the fused pair bypassed the output layer: a forward comes first
        fused.forward(x), layered.forward(x)
    _assert_rounding_close(fused.backward(np.ones_like(y_hat)), layered.backward(np.ones_like(y_hat)), "dJ/dx")
    for key in fused.grads:
        _assert_rounding_close(fused.grads[key], layered.grads[key], key)


@pytest.mark.parametrize("g, loss_name", [("identity", "mse"), ("identity", "squared_error"),
                                           ("identity", "squared_error-mean"), ("sigmoid", "bce"),
                                           ("softmax", "cross_entropy")])
@pytest.mark.parametrize("optimizer", [None, "adam"])
def test_whole_step_closure_in_float64_is_the_five_calls_bit_for_bit(rng, g, loss_name, optimizer):
    """float64 (the estimators' dtype, and a student's reproducing fit by hand): the closure
    keeps the per-layer kernels' arithmetic and update, so it is the five calls written
    out bit for bit, with plain SGD and with an optimizer; and the plain path to rounding."""
    from handgrad import Adam

    fused = MLP(7, [12], 3, f="relu", g=g, seed=4, dtype=np.float64)
    layered, plain = copy.deepcopy(fused), copy.deepcopy(fused)
    plain.fast_path = False
    opts = {net: Adam(net, lr=0.01) for net in (fused, layered, plain)} if optimizer else {}
    loss = SquaredErrorLoss("mean") if loss_name == "squared_error-mean" else make_loss(loss_name)
    x = rng.standard_normal((9, 7))
    y = {"identity": rng.standard_normal((9, 3)), "sigmoid": (rng.random((9, 3)) > 0.5).astype(float),
         "softmax": rng.integers(0, 3, 9)}[g]
    for _ in range(4):
        J = fused.train_step(x, y, loss, **({"optimizer": opts[fused]} if optimizer else {"lr": 0.1}))
        layered.forward(x)
        layered._plan.step = None  # the per-layer kernels alone
        J_layered = layered.backward_loss(loss, y, zero_grad=True)
        opts[layered].step() if optimizer else layered.sgd_step(0.1)
        J_plain = plain.train_step(x, y, loss, **({"optimizer": opts[plain]} if optimizer else {"lr": 0.1}))
        assert J == J_layered
        np.testing.assert_allclose(J, J_plain, rtol=1e-12)
    assert fused._plan.step is not None and type(loss) in fused._plan.step.loss_types
    for key in fused.params:
        np.testing.assert_array_equal(fused.params[key], layered.params[key], err_msg=key)
        np.testing.assert_array_equal(fused.grads["dJ_d" + key], layered.grads["dJ_d" + key], err_msg=key)
        np.testing.assert_allclose(fused.params[key], plain.params[key], rtol=1e-11, atol=1e-13, err_msg=key)


def test_whole_step_closure_refuses_bce_targets_outside_0_1_with_the_usual_message(rng):
    net = MLP(4, [6], 2, f="relu", g="sigmoid", seed=0, dtype=np.float32)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    y = np.ones((5, 2), np.float32)
    for _ in range(2):
        net.train_step(x, y, "bce", 0.1)
    assert net._plan.step is not None
    before = {k: v.copy() for k, v in net.params.items()}
    y[2, 1] = 1.5
    with pytest.raises(ValueError, match="BCELoss"):
        net.train_step(x, y, make_loss("bce"), 0.1)
    for key, value in net.params.items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


@pytest.mark.parametrize("bad, message", [
    ([0, 1, 3, 2, 1], "target 3 is out of range for 3 classes"),
    ([0, 1, 2, 2], "got 4 targets for 5 rows of logits"),
])
def test_whole_step_closure_refuses_bad_class_labels_with_the_usual_message(rng, bad, message):
    """Labels out of range or one short: the closure steps aside before any update, and
    the usual path names what is wrong."""
    net = MLP(4, [6], 3, f="tanh", g="softmax", seed=0, dtype=np.float32)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    for _ in range(2):
        net.train_step(x, np.array([0, 1, 2, 2, 1]), "cross_entropy", 0.1)
    assert net._plan.step is not None and [t.__name__ for t in net._plan.step.loss_types] == ["CrossEntropyLoss"]
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(ValueError, match=message):
        net.train_step(x, np.array(bad), make_loss("cross_entropy"), 0.1)
    for key, value in net.params.items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_whole_step_closure_runs_five_products_and_no_bias_add(rng, monkeypatch):
    """The folded step is five matrix products: z1, ŷ, dJ/dM2, dJ/da1, dJ/dM1 (no 1ᵀ dJ/dz
    products, no dJ/dx), and no broadcast bias add."""
    if blas.blas_axpy(np.dtype(np.float32)) is None:
        pytest.skip("the whole-step closure needs NumPy's bundled BLAS")
    from handgrad.fast import step as step_module

    net = MLP(20, [100], 50, seed=0, dtype=np.float32)
    loss = make_loss("mse")
    x, y = rng.standard_normal((10, 20)).astype(np.float32), rng.standard_normal((10, 50)).astype(np.float32)
    net.train_step(x, y, loss, 0.05)  # builds the plan
    calls = []
    real_dot = step_module.dot
    monkeypatch.setattr(step_module, "dot", lambda a, b, out: calls.append((a.shape, b.shape)) or real_dot(a, b, out))
    net._drop_plans()
    net.train_step(x, y, loss, 0.05)  # rebinds with the counting dot, runs the per-layer path once
    calls.clear()
    net.train_step(x, y, loss, 0.05)
    assert calls == [((10, 21), (21, 100)), ((10, 101), (101, 50)), ((101, 10), (10, 50)),
                     ((10, 50), (50, 100)), ((21, 10), (10, 100))]


def test_whole_step_closure_leaves_the_callers_arrays_and_hands_out_fresh_outputs(rng):
    net = MLP(4, [6], 2, seed=0, dtype=np.float32)
    loss = make_loss("mse")
    x, y = rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal((5, 2)).astype(np.float32)
    x0, y0 = x.copy(), y.copy()
    x.flags.writeable = y.flags.writeable = False
    for _ in range(3):
        net.train_step(x, y, loss, 0.1)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    assert net._last_output is not net.train_step(x, y, loss, 0.1) and net._last_output.base is None


@pytest.mark.parametrize("change", ["W", "dJ_db", "scale", "loss", "before_update", "float64", "sigmoid"])
def test_whole_step_closure_falls_back_where_it_does_not_cover_the_step(rng, change):
    dtype = np.float64 if change == "float64" else np.float32
    g = "sigmoid" if change == "sigmoid" else "identity"
    net = MLP(4, [6], 2, f="relu", g=g, seed=0, dtype=dtype)
    reference = copy.deepcopy(net)
    reference.fast_path = False
    loss = make_loss("squared_error" if change == "loss" else "mse")
    x, y = rng.standard_normal((5, 4)).astype(dtype), rng.standard_normal((5, 2)).astype(dtype)
    for model in (net, reference):
        model.train_step(x, y, loss, 0.1)
        if change == "W":
            model.layers[2].params["W"] = model.layers[2].params["W"].copy()  # not the packed block any more
        elif change == "dJ_db":
            model.layers[0].grads["dJ_db"] = np.zeros_like(model.layers[0].grads["dJ_db"])
        elif change == "scale":
            model.layers[1].scale = 3.0
    kwargs = {"before_update": lambda J: J} if change == "before_update" else {}
    for _ in range(3):
        J = net.train_step(x, y, loss, 0.1, **kwargs)
        J_ref = reference.train_step(x, y, loss, 0.1, **kwargs)
        np.testing.assert_allclose(J, J_ref, rtol=1e-5)
    for key in reference.params:
        np.testing.assert_allclose(net.params[key], reference.params[key], rtol=1e-5, atol=1e-6, err_msg=key)
    if change == "float64":  # float64 binds too (its update is the ufunc pair, not BLAS's axpy)
        assert net._plan is not None and net._plan.step is not None
    if change == "sigmoid":  # a sigmoid output's closure runs BCE; MSE takes the usual path
        assert type(loss) not in net._plan.step.loss_types


@pytest.mark.parametrize("hook", ["before_update", "momentum"])
def test_whole_step_closure_leaves_the_update_to_a_hook_or_an_optimizer(rng, hook):
    fused = MLP(20, [100], 50, seed=2, dtype=np.float32)
    layered = copy.deepcopy(fused)
    loss = make_loss("mse")
    seen = {fused: [], layered: []}
    opts = {net: SGD(net, lr=0.05, momentum=0.9) for net in (fused, layered)}
    for _ in range(4):
        x = rng.standard_normal((10, 20)).astype(np.float32)
        y = rng.standard_normal((10, 50)).astype(np.float32)
        if hook == "before_update":
            J = fused.train_step(x, y, loss, 0.05, before_update=lambda J: seen[fused].append(J) or 2 * J)
            net = layered
            net.forward(x)
            net._plan.step = None
            J_ref = net.backward_loss(loss, y, zero_grad=True)
            seen[layered].append(J_ref)
            J_ref = 2 * J_ref
            net.sgd_step(0.05)
        else:
            J = fused.train_step(x, y, loss, optimizer=opts[fused])
            layered.forward(x)
            layered._plan.step = None
            J_ref = layered.backward_loss(loss, y, zero_grad=True)
            opts[layered].step()
        _assert_rounding_close(J, J_ref, "J")
        _same_state(fused, layered)
    assert fused._plan.step is not None
    np.testing.assert_allclose(seen[fused], seen[layered], rtol=4e-6)


@pytest.mark.parametrize("f", ["relu", "5relu", "tanh"])
def test_fused_loss_backward_is_the_per_layer_backward_bit_for_bit(rng, f):
    """forward, zero_grad, backward_loss(MSE): the closure's backward against the per-layer kernels'."""
    if blas.blas_axpy(np.dtype(np.float32)) is None:
        pytest.skip("the whole-step closure needs NumPy's bundled BLAS")
    fused = MLP(20, [30], 4, f=f, seed=1, dtype=np.float32)
    layered = copy.deepcopy(fused)
    loss = make_loss("mse")
    for i in range(4):
        x = rng.standard_normal((6, 20)).astype(np.float32)
        y = rng.standard_normal((6, 4)).astype(np.float32)
        Js = []
        for net in (fused, layered):
            net.forward(x)
            if net is layered:
                net._plan.step = None
            net.zero_grad()
            Js.append(net.backward_loss(loss, y))
            if i == 3:  # gradients to add to: the closure steps aside
                Js.append(net.backward_loss(loss, y))
            net.sgd_step(0.05)
        assert fused._plan.step is not None
        assert Js[: len(Js) // 2] == Js[len(Js) // 2:]
        for key in fused.grads:
            assert np.array_equal(fused.grads[key], layered.grads[key]), key
        for key in fused.params:
            assert np.array_equal(fused.params[key], layered.params[key]), key


@pytest.mark.parametrize("f, g, loss_name", [("relu", "identity", "mse"), ("tanh", "sigmoid", "bce"),
                                             ("5relu", "softmax", "cross_entropy")])
def test_whole_step_closure_leaves_each_layer_ready_for_its_own_backward(rng, f, g, loss_name):
    """The closure writes the layers' caches directly: a forward of another batch size in
    between (which records its output shapes) must not make a layer refuse the step's
    shapes afterwards, and each layer's own backward then reads the step's batch."""
    if blas.blas_axpy(np.dtype(np.float32)) is None:
        pytest.skip("the whole-step closure needs NumPy's bundled BLAS")
    net = MLP(4, [6], 3, f=f, g=g, seed=1, dtype=np.float32)
    loss = make_loss(loss_name)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    y = rng.integers(0, 3, 5) if g == "softmax" else (rng.random((5, 3)) > 0.5).astype(np.float32)
    for _ in range(2):
        net.train_step(x, y, loss, 0.01)
    assert net._plan.step is not None
    net.fast_path = False
    net.forward(rng.standard_normal((7, 4)).astype(np.float32))  # each layer's own forward: shapes (7, ·) recorded
    net.fast_path = True
    reference = copy.deepcopy(net)
    reference.fast_path = False
    net.train_step(x, y, loss, 0.01)  # the closure, batch 5
    reference.train_step(x, y, loss, 0.01)  # the per-layer calls
    lin1, act, lin2 = net.layers[:3]
    assert lin1.cache[0] is x
    g2 = rng.standard_normal((5, 3)).astype(np.float32)
    d_fast = lin1.backward(act.backward(lin2.backward(g2)))  # the step's batch: no shape refused
    d_ref = reference.layers[0].backward(reference.layers[1].backward(reference.layers[2].backward(g2)))
    np.testing.assert_allclose(d_fast, d_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("replace", ["setitem", "update", "ior", "setdefault-after-pop", "grads-setitem",
                                     "whole-dict"])
def test_whole_step_closure_sees_an_array_replaced_by_any_dict_method(rng, replace):
    """The closure checks one count of params/grads changes per step (storage.ArrayDict): every
    way of putting a new array into a layer's dicts must send the step to the usual path."""
    if blas.blas_axpy(np.dtype(np.float32)) is None:
        pytest.skip("the whole-step closure needs NumPy's bundled BLAS")
    net = MLP(4, [6], 2, seed=0, dtype=np.float32)
    loss = make_loss("mse")
    x, y = rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal((5, 2)).astype(np.float32)
    for _ in range(2):
        net.train_step(x, y, loss, 0.1)
    assert net._plan.step is not None
    layer = net.layers[2]
    if replace == "grads-setitem":
        layer.grads["dJ_dW"] = np.zeros((2, 6), np.float32)
    else:
        W = np.ones((2, 6), np.float32)
        if replace == "setitem":
            layer.params["W"] = W
        elif replace == "update":
            layer.params.update(W=W)
        elif replace == "ior":
            layer.params |= {"W": W}
        elif replace == "whole-dict":  # a new dict set on the layer: counted too, and made an ArrayDict
            layer.params = {"W": W, "b": layer.params["b"]}
        else:
            layer.params.pop("W")
            layer.params.setdefault("W", W)
    for _ in range(2):  # the expected step by hand (a copy of the network would itself count as a change)
        W1, b1, W2, b2 = (net.layers[i].params[k].astype(np.float64) for i in (0, 2) for k in ("W", "b"))
        a1 = np.maximum(x @ W1.T + b1, 0)
        r = a1 @ W2.T + b2 - y
        dW2 = (2 * r / r.size).T @ a1
        assert net.train_step(x, y, loss, 0.1) == pytest.approx(float(np.mean(r ** 2)), rel=1e-5)
        np.testing.assert_allclose(layer.grads["dJ_dW"], dW2, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(layer.params["W"], W2 - 0.1 * dW2, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_in, hidden, k, n, f, g", [
    (20, [100, 100], 50, 10, "relu", "identity"),
    (3, [8, 6, 5], 2, 7, "5relu", "identity-sq"),
    (4, [9, 7], 3, 5, "tanh", "sigmoid"),
    (64, [40, 30], 10, 16, "relu", "softmax"),
    (6, [9, 8], 4, 5, "tanh", "softmax-onehot"),
    (5, [12, 12], 2, 6, "5relu", "identity-sqsum"),
    (300, [1100, 20], 2, 64, "relu", "identity"),  # large layers: BLAS bias adds
])
def test_deep_closure_is_the_per_layer_step(rng, n_in, hidden, k, n, f, g, dtype):
    """Two or more hidden layers: each step of the whole-step closure (fast.step.bind_deep_step)
    -- J, ŷ, gradients, updated parameters -- is the per-layer kernels' bit for bit in float64
    and to rounding in float32 (where small layers take their input as [a 1], the bias inside
    the products), and what it leaves behind serves the layer API."""
    if dtype == np.float32 and blas.blas_axpy(np.dtype(np.float32)) is None:
        pytest.skip("float32's update needs NumPy's bundled BLAS")
    variant = g.split("-")[1] if "-" in g else ""
    g = g.split("-")[0]
    fused = MLP(n_in, hidden, k, f=f, g=g, seed=4, dtype=dtype)
    layered = copy.deepcopy(fused)
    loss = (SquaredErrorLoss("mean") if variant == "sq" else SquaredErrorLoss("sum") if variant == "sqsum"
            else make_loss({"sigmoid": "bce", "softmax": "cross_entropy"}.get(g, "mse")))
    lr = 0.002 if f == "5relu" else 0.05
    for i in range(5):
        x = rng.standard_normal((n, n_in)).astype(dtype)
        y = rng.standard_normal((n, k)).astype(dtype)
        if g == "sigmoid":
            y = (y > 0).astype(dtype)
            y[0, 0] = 0.25
        if g == "softmax":
            y = rng.integers(0, k, n)
            if variant == "onehot":
                y = np.eye(k, dtype=dtype)[y]
        J_fused = fused.train_step(x, y, loss, lr)
        J_layered = _per_call_train_step(layered, x, y, loss, lr)
        if i > 0:
            assert fused._plan.step is not None and fused._plan.step.__qualname__.startswith("bind_deep_step")
        same = np.testing.assert_array_equal if dtype == np.float64 else (
            lambda got, want, err_msg="": _assert_rounding_close(got, want, err_msg))
        if dtype == np.float64:
            assert J_fused == J_layered
        else:
            _assert_rounding_close(J_fused, J_layered, "J")
        same(fused._last_output, layered._last_output, err_msg="y_hat")
        for key in fused.params:
            same(fused.grads["dJ_d" + key], layered.grads["dJ_d" + key], err_msg="dJ_d" + key)
            same(fused.params[key], layered.params[key], err_msg=key)
        _same_state(fused, layered)  # the next step from the same parameters
    # the layer API after the closure: a forward and a backward give the per-layer results
    y_hat = fused.forward(x)
    same(y_hat, layered.forward(x), err_msg="forward")
    fused.zero_grad()
    layered.zero_grad()
    same(fused.backward(np.ones_like(y_hat)), layered.backward(np.ones_like(y_hat)), err_msg="dJ/dx")
    for key in fused.grads:
        same(fused.grads[key], layered.grads[key], err_msg=key)


def test_deep_closure_declines_what_the_usual_path_must_check(rng):
    """Replaced arrays, a changed activation scale, BCE targets outside [0, 1]: the deep closure
    steps aside (returns None) and train_step's usual path checks, raises or rebuilds."""
    if blas.blas_axpy(np.dtype(np.float32)) is None:
        pytest.skip("the whole-step closure needs NumPy's bundled BLAS")
    net = MLP(4, [6, 5], 2, f="5relu", seed=0, dtype=np.float32)
    loss = make_loss("mse")
    x, y = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 2)).astype(np.float32)
    for _ in range(2):
        net.train_step(x, y, loss, 0.1)
    step = net._plan.step
    assert step is not None and step(x, y, 0.1, loss) is not None
    net.layers[1].scale = 2.0
    assert step(x, y, 0.1, loss) is None
    net.layers[1].scale = 5.0
    net.layers[-1].scale = 3.0  # the output layer's scale: the closure's ŷ would leave it out
    assert step(x, y, 0.1, loss) is None
    net.layers[-1].scale = 1.0
    net.layers[2].params["W"] = net.layers[2].params["W"].copy()
    assert step(x, y, 0.1, loss) is None
    assert step(x.astype(np.float64), y, 0.1, loss) is None and step(x[:2], y[:2], 0.1, loss) is None
    reference = copy.deepcopy(net)
    reference.fast_path = False
    assert net.train_step(x, y, loss, 0.1) == pytest.approx(reference.train_step(x, y, loss, 0.1), rel=1e-5)
    bce_net = MLP(4, [6, 5], 1, g="sigmoid", seed=0, dtype=np.float32)
    yb = np.array([[0.0], [1.0], [0.5]], np.float32)
    bce = make_loss("bce")
    for _ in range(2):
        bce_net.train_step(x, yb, bce, 0.1)
    assert bce_net._plan.step is not None
    before = {key: value.copy() for key, value in bce_net.params.items()}
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bce_net.train_step(x, np.array([[0.0], [1.5], [0.5]], np.float32), bce, 0.1)
    for key, value in bce_net.params.items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)  # refused before any update


def test_the_update_in_one_thread_pieces_is_the_single_call(rng):
    """blas.bound_axpy(one_thread=True) updates in pieces OpenBLAS runs on the calling thread (for
    networks whose products all do): elementwise, so the same numbers as one call, bit for bit."""
    axpy = blas.blas_axpy(np.dtype(np.float32))
    if axpy is None:
        pytest.skip("needs NumPy's bundled BLAS")
    n = 3 * blas.AXPY_ONE_THREAD_MAX + 123
    g = rng.standard_normal(n).astype(np.float32)
    thetas = [rng.standard_normal(n).astype(np.float32) for _ in range(2)]
    thetas[1][...] = thetas[0]
    whole = blas.bound_axpy(axpy, n, g.ctypes.data, thetas[0].ctypes.data)
    pieces = blas.bound_axpy(axpy, n, g.ctypes.data, thetas[1].ctypes.data, one_thread=True)
    for alpha in (-0.01, -0.3):
        whole(alpha)
        pieces(alpha)
    np.testing.assert_array_equal(thetas[0], thetas[1])
    net = MLP(20, [100, 100], 50, seed=0, dtype=np.float32)  # 17,250 parameters, small products: in pieces
    net.train_step(np.ones((10, 20), np.float32), np.ones((10, 50), np.float32), make_loss("mse"), 0.01)
    assert net._plan.sgd_updates[0].__name__ == "update_in_pieces"
    big = MLP(784, [128], 10, seed=0, dtype=np.float32)  # its products use every thread: one call
    big.train_step(np.ones((64, 784), np.float32), np.ones((64, 10), np.float32), make_loss("mse"), 0.01)
    assert big._plan.sgd_updates[0].__name__ == "update"
