"""The homework interface against PyTorch autograd, as a course's tests compare it."""

from __future__ import annotations

import builtins
from collections import OrderedDict

import numpy as np
import pytest

from handgrad import hw1
from handgrad.registry import activation_names

ACTS = ("relu", "sigmoid", "identity")
CASES = [(f, g, "mse") for f in ACTS for g in ACTS] + [(f, "sigmoid", "bce") for f in ACTS]


def _autograd_net(net, f, g, torch):
    nn = torch.nn
    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "identity": nn.Identity}
    n, m = net.parameters["W1"].shape[1], net.parameters["W1"].shape[0]
    K = net.parameters["W2"].shape[0]
    auto = nn.Sequential(OrderedDict([
        ("linear1", nn.Linear(n, m)), ("f", acts[f]()), ("linear2", nn.Linear(m, K)), ("g", acts[g]()),
    ]))
    # exactly what a course's test does: share the tensors
    auto.linear1.weight.data = net.parameters["W1"]
    auto.linear1.bias.data = net.parameters["b1"]
    auto.linear2.weight.data = net.parameters["W2"]
    auto.linear2.bias.data = net.parameters["b2"]
    return auto


def _sizes(rng):
    return int(rng.integers(1, 6)), int(rng.integers(1, 8)), int(rng.integers(1, 5)), int(rng.integers(1, 7))


@pytest.mark.parametrize("f,g,loss_name", CASES, ids=["-".join(c) for c in CASES])
def test_homework_mlp_matches_autograd(f, g, loss_name, rng):
    torch = pytest.importorskip("torch")
    n, m, K, N = _sizes(rng)
    torch.manual_seed(int(rng.integers(2**31)))
    net = hw1.MLP(n, m, f, m, K, g, seed=rng)
    x = torch.randn(N, n)
    y = torch.randn(N, K) if loss_name == "mse" else (torch.rand(N, K) > 0.5).float()
    loss_fn = hw1.mse_loss if loss_name == "mse" else hw1.bce_loss
    net.clear_grad_and_cache()
    y_hat = net.forward(x)
    J, dJdy_hat = loss_fn(y, y_hat)
    net.backward(dJdy_hat)

    auto = _autograd_net(net, f, g, torch)
    y_hat_auto = auto(x)
    J_auto = torch.nn.functional.mse_loss(y_hat_auto, y) if loss_name == "mse" else torch.nn.BCELoss()(y_hat_auto, y)
    auto.zero_grad()
    J_auto.backward()

    torch.testing.assert_close(y_hat, y_hat_auto.detach())
    torch.testing.assert_close(J, J_auto.detach())
    torch.testing.assert_close(net.grads["dJdW1"], auto.linear1.weight.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(net.grads["dJdb1"], auto.linear1.bias.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(net.grads["dJdW2"], auto.linear2.weight.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(net.grads["dJdb2"], auto.linear2.bias.grad, rtol=1e-5, atol=1e-6)


def test_clear_grad_and_cache_really_resets(rng):
    torch = pytest.importorskip("torch")
    net = hw1.MLP(3, 4, "relu", 4, 2, "identity", seed=rng)
    x, y = torch.randn(5, 3), torch.randn(5, 2)

    def one_round():
        net.clear_grad_and_cache()
        J, dJdy_hat = hw1.mse_loss(y, net.forward(x))
        net.backward(dJdy_hat)
        return {k: v.clone() for k, v in net.grads.items()}

    first, second = one_round(), one_round()
    for k in first:
        torch.testing.assert_close(first[k], second[k], rtol=0, atol=0)
    assert net.cache["z1"].shape == (5, 4)
    net.clear_grad_and_cache()
    assert net.cache == {} and all(torch.all(v == 0) for v in net.grads.values())


def test_two_backward_calls_without_clearing_accumulate(rng):
    torch = pytest.importorskip("torch")
    net = hw1.MLP(2, 3, "tanh", 3, 1, "sigmoid", seed=rng)
    x, y = torch.randn(4, 2), torch.rand(4, 1)
    net.forward(x)
    _, d = hw1.bce_loss(y, net.cache["y_hat"])
    net.backward(d)
    once = net.grads["dJdW1"].clone()
    net.backward(d)
    torch.testing.assert_close(net.grads["dJdW1"], 2 * once)


def test_numpy_backend_matches_torch_backend(rng):
    torch = pytest.importorskip("torch")
    seed = int(rng.integers(2**31))
    a = hw1.MLP(3, 5, "tanh", 5, 2, "sigmoid", backend="numpy", seed=seed)
    b = hw1.MLP(3, 5, "tanh", 5, 2, "sigmoid", dtype=torch.float64, seed=seed)
    assert isinstance(a.parameters["W1"], np.ndarray) and a.parameters["W1"].dtype == np.float64
    x, y = rng.normal(size=(4, 3)), rng.choice([0.0, 1.0], size=(4, 2))
    _, da = hw1.bce_loss(y, a.forward(x))
    a.backward(da)
    _, db = hw1.bce_loss(torch.tensor(y), b.forward(torch.tensor(x)))
    b.backward(db)
    for k in a.grads:
        np.testing.assert_allclose(a.grads[k], b.grads[k].numpy(), rtol=1e-12)


def test_every_activation_name_is_accepted(rng):
    for f in ("5relu", *activation_names(elementwise=True)):
        net = hw1.MLP(2, 3, f, 3, 1, "identity", backend="numpy", seed=rng)
        assert net.forward(rng.normal(size=(2, 2))).shape == (2, 1)


def test_parameters_view_is_live_and_checked(rng):
    net = hw1.MLP(2, 3, "relu", 3, 1, "identity", backend="numpy", seed=rng)
    net.parameters["W1"] = np.ones((3, 2))
    np.testing.assert_array_equal(net.net.linears[0].W, np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"W1 must have shape \(3, 2\), got \(2, 3\)"):
        net.parameters["W1"] = np.ones((2, 3))
    assert list(net.parameters) == ["W1", "b1", "W2", "b2"]
    assert list(net.grads) == ["dJdW1", "dJdb1", "dJdW2", "dJdb2"]


def test_errors():
    with pytest.raises(ValueError, match="linear_2_in_features must equal linear_1_out_features: got 4 and 3"):
        hw1.MLP(2, 3, "relu", 4, 1, "identity", backend="numpy")
    with pytest.raises(ValueError, match="unknown activation 'rleu'"):
        hw1.MLP(2, 3, "rleu", 3, 1, "identity", backend="numpy")
    net = hw1.MLP(2, 3, "relu", 3, 1, "identity", backend="numpy")
    with pytest.raises(RuntimeError, match="call forward"):
        net.backward(np.zeros((1, 1)))


def test_missing_torch_gives_install_hint(monkeypatch):
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch":
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(ImportError, match=r"pip install .*torch==2.13.0.*backend='numpy'"):
        hw1.MLP(2, 3, "relu", 3, 1, "identity")
