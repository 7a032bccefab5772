"""Networks of depth 1 to 4: every activation x loss, against finite differences and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import away_from_kinks

import handgrad as hg
from handgrad.gradcheck import check_network, compare_with_torch

HIDDEN = [*hg.activation_names(elementwise=True), "5relu"]
# (loss, output activation g)
PAIRS = [
    ("mse", "identity"),
    ("squared_error", "identity"),
    ("mse", "sigmoid"),
    ("bce", "sigmoid"),
    ("bce_with_logits", "identity"),
    ("cross_entropy", "identity"),
    ("cross_entropy", "softmax"),
]


def _case(rng, f, loss, g, depth=None):
    depth = depth if depth is not None else int(rng.integers(1, 5))
    widths = [int(w) for w in rng.choice([1, 2, 3, 5], size=depth)]
    n = int(rng.choice([1, 2, 3, 5]))
    d = int(rng.integers(1, 4))
    k = int(rng.integers(2, 4)) if loss == "cross_entropy" else int(rng.integers(1, 4))
    net = hg.MLP(d, widths, k, f=f, g=g, seed=rng, dtype=np.float64)
    x = away_from_kinks(net, lambda: rng.normal(size=(n, d)))
    if loss == "cross_entropy":
        y = rng.integers(0, k, size=n)
    elif loss in ("bce", "bce_with_logits"):
        y = rng.choice([0.0, 1.0], size=(n, k))
    else:
        y = rng.normal(size=(n, k))
    return net, x, y


@pytest.mark.parametrize("loss,g", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
@pytest.mark.parametrize("f", HIDDEN)
def test_network_gradients_match_finite_differences(f, loss, g, rng):
    net, x, y = _case(rng, f, loss, g)
    report = check_network(net, x, y, loss)
    assert report.passed, f"{net!r}\n{report}"


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("f", ["relu", "tanh", "gelu"])
def test_depths_one_to_four(depth, f, rng):
    net, x, y = _case(rng, f, "mse", "identity", depth=depth)
    assert len(net.linears) == depth + 1
    assert check_network(net, x, y, "mse").passed


@pytest.mark.parametrize("loss,g", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
@pytest.mark.parametrize("f", HIDDEN)
def test_network_gradients_match_pytorch_float64(f, loss, g, rng):
    pytest.importorskip("torch")
    net, x, y = _case(rng, f, loss, g)
    report = compare_with_torch(net, x, y, loss)  # rel error < 1e-10
    assert report.passed, f"{net!r}\n{report}"


@pytest.mark.parametrize("loss,g", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
@pytest.mark.parametrize("f", HIDDEN)
def test_network_gradients_match_pytorch_float32(f, loss, g, rng):
    pytest.importorskip("torch")
    net, x, y = _case(rng, f, loss, g)
    report = compare_with_torch(net, x, y, loss, dtype=np.float32, rtol=1e-5, atol=1e-8)
    assert report.passed, f"{net!r}\n{report}"


def test_fused_and_unfused_gradients_agree(rng):
    for g, loss, y in [("sigmoid", hg.BCELoss(), rng.choice([0.0, 1.0], size=(4, 2))),
                       ("softmax", hg.CrossEntropyLoss(), rng.integers(0, 2, size=4))]:
        net = hg.MLP(3, [4], 2, f="tanh", g=g, seed=rng, dtype=np.float64)
        x = rng.normal(size=(4, 3))
        assert net.fused_pair(loss)
        net.forward(x)
        J_fused = net.backward_loss(loss, y)
        fused = {k: v.copy() for k, v in net.grads.items()}
        net.zero_grad()
        y_hat = net.forward(x)
        if g == "sigmoid":
            J, dJ_dy_hat = loss(y, y_hat)
        else:  # the unfused chain: CE on probabilities = NLL, dJ/dp = -onehot/(N p)
            onehot = np.eye(2)[y]
            J, dJ_dy_hat = -np.sum(onehot * np.log(y_hat)) / 4, -onehot / (4 * y_hat)
        net.backward(dJ_dy_hat)
        np.testing.assert_allclose(J_fused, J, rtol=1e-12)
        for k in fused:
            np.testing.assert_allclose(fused[k], net.grads[k], rtol=1e-9, atol=1e-14)


def test_fused_bce_stays_finite_when_the_sigmoid_saturates():
    net = hg.MLP(1, [2], 1, f="relu", g="sigmoid", seed=0, dtype=np.float64)
    net.linears[-1].params["b"][...] = 60.0  # sigmoid rounds to exactly 1.0
    x, y = np.array([[1.0]]), np.array([[0.0]])
    net.forward(x)
    J = net.backward_loss(hg.BCELoss(), y)
    assert np.isfinite(J) and J > 50
    assert all(np.all(np.isfinite(g)) for g in net.grads.values())
    np.testing.assert_allclose(net.grads["dJ_db2"], [1.0])  # σ(z) - y = 1


# ---------------------------------------------------------------- the five steps
def test_the_seed_five_steps_lower_the_loss(rng):
    x = rng.uniform(-1, 1, size=(64, 1))
    y = np.sin(3 * x)
    net = hg.TwoLayerNet(1, 32, 1, seed=rng, dtype=np.float64)  # 5·ReLU, identity
    loss, opt = hg.SquaredErrorLoss("mean"), hg.SGD(net, lr=0.01)
    first = None
    for _ in range(300):
        y_hat = net(x)                    # 1. forward
        J, dJ_dy_hat = loss(y, y_hat)     # 2. loss
        net.zero_grad()                   # 3. clear the gradients
        net.backward(dJ_dy_hat)           # 4. backward
        opt.step()                        # 5. update
        first = J if first is None else first
    assert J < 0.2 * first


def test_sgd_with_zero_gradient_or_tiny_lr(rng):
    net = hg.MLP(2, [3], 1, seed=rng)
    before = {k: v.copy() for k, v in net.params.items()}
    net.zero_grad()
    hg.SGD(net, lr=0.1).step()
    for k in before:
        np.testing.assert_array_equal(before[k], net.params[k])
    with pytest.raises(ValueError, match="lr must be a finite positive number, got -0.1"):
        hg.SGD(net, lr=-0.1)
    with pytest.raises(TypeError, match="lr"):
        hg.SGD(net, lr="fast")


def test_sgd_updates_in_place_and_keeps_dtype(rng):
    net = hg.MLP(2, [3], 1, seed=rng)
    W1 = net.params["W1"]
    x, y = rng.normal(size=(4, 2)), rng.normal(size=(4, 1))
    net(x)
    net.backward_loss(hg.MSELoss(), y)
    hg.SGD(net, lr=0.1).step()
    assert net.params["W1"] is W1 and W1.dtype == np.float32


# ---------------------------------------------------------------- structure and errors
def test_two_layer_net_is_the_seed_network():
    net = hg.TwoLayerNet(4, 6, 2)
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds == ["Linear", "ReLU", "Linear", "Identity"]
    assert net.layers[1].scale == 5.0
    assert {k: v.shape for k, v in net.params.items()} == {"W1": (6, 4), "b1": (6,), "W2": (2, 6), "b2": (2,)}
    assert set(net.grads) == {"dJ_dW1", "dJ_db1", "dJ_dW2", "dJ_db2"}


def test_sizes_must_chain():
    with pytest.raises(ValueError, match=r"layers\[0\].*outputs 8.*layers\[2\].*expects 6"):
        hg.Sequential(hg.Linear(4, 8), hg.ReLU(), hg.Linear(6, 2))


def test_feature_mismatch_names_the_layer_and_numbers(rng):
    net = hg.MLP(4, [3], 1, seed=rng)
    with pytest.raises(ValueError, match=r"layers\[0\] Linear\(in_features=4.*expected x of shape \(N, 4\), got \(2, 5\)"):
        net(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="1-D"):
        net(np.zeros(4))


def test_bad_hidden_sizes():
    with pytest.raises(ValueError, match=r"hidden_sizes\[1\] must be a positive int, got 0"):
        hg.MLP(2, [3, 0], 1)
    with pytest.raises(TypeError, match="hidden_sizes"):
        hg.MLP(2, "8", 1)
    with pytest.raises(ValueError, match="unknown activation"):
        hg.MLP(2, [3], 1, f="rleu")


def test_backward_loss_before_forward():
    net = hg.MLP(2, [3], 1, seed=0)
    with pytest.raises(RuntimeError, match="call forward"):
        net.backward_loss(hg.MSELoss(), np.zeros((1, 1)))


def test_batch_independence_and_empty_batch(rng):
    net = hg.MLP(3, [4, 4], 2, f="tanh", seed=rng, dtype=np.float64)
    x = rng.normal(size=(5, 3))
    full = net(x)
    for i in range(5):
        np.testing.assert_allclose(net(x[i : i + 1]), full[i : i + 1], rtol=1e-12)
    perm = rng.permutation(5)
    np.testing.assert_allclose(net(x[perm]), full[perm], rtol=1e-12)
    assert net(np.zeros((0, 3))).shape == (0, 2)


def test_mean_loss_gradient_is_average_of_per_sample_gradients(rng):
    net = hg.MLP(3, [4], 2, f="tanh", seed=rng, dtype=np.float64)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    loss = hg.SquaredErrorLoss("mean")
    net.zero_grad()
    net(x)
    net.backward_loss(loss, y)
    batch = {k: v.copy() for k, v in net.grads.items()}
    net.zero_grad()
    for i in range(4):
        net(x[i : i + 1])
        net.backward_loss(loss, y[i : i + 1])
    for k in batch:
        np.testing.assert_allclose(batch[k], net.grads[k] / 4, rtol=1e-12)


def test_forward_does_not_mutate_inputs(rng):
    net = hg.MLP(3, [4], 2, f="relu", g="softmax", seed=rng)
    x = rng.normal(size=(4, 3)).astype(np.float32)
    x.flags.writeable = False
    copy = x.copy()
    net(x)
    net.backward_loss(hg.CrossEntropyLoss(), np.array([0, 1, 1, 0]))
    np.testing.assert_array_equal(x, copy)


def test_config_round_trips_through_plain_data(rng):
    from handgrad.registry import layer_from_config

    net = hg.MLP(3, [4, 5], 2, f="5relu", g="sigmoid", seed=rng)
    config = net.config()
    rebuilt = hg.Sequential(*[layer_from_config(c) for c in config["layers"]])
    assert [repr(a) for a in net.layers] == [repr(b) for b in rebuilt.layers]
    with pytest.raises(ValueError, match="unknown layer type"):
        layer_from_config({"type": "os.system"})


def test_repr():
    assert repr(hg.TwoLayerNet(2, 3, 1)) == "TwoLayerNet(n=2, m=3, K=1, f='5relu', g='identity')"
    assert "Linear(in_features=2, out_features=3)" in repr(hg.Sequential(hg.Linear(2, 3), hg.ReLU()))
