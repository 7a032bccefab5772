"""The same hand-written ops on PyTorch tensors (through the array API) as on NumPy arrays."""

from __future__ import annotations

import numpy as np
import pytest

import handgrad as hg
from handgrad.backend import Backend, backend_name, namespace_of, to_numpy
from handgrad.torch_interop import torch_layers

torch = pytest.importorskip("torch")

# every registered activation, then variants of their settings
CASES = [(name, lambda name=name: hg.make_activation(name)) for name in hg.activation_names()] + [
    ("5relu", lambda: hg.make_activation("5relu")), ("leaky_0.1", lambda: hg.LeakyReLU(0.1)),
    ("softmax_beta", lambda: hg.Softmax(beta=3.0)), ("scale", lambda: hg.Scale(2.5)),
]
LAYERS = [factory for _, factory in CASES]
IDS = [name for name, _ in CASES]


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["f64", "f32"])
@pytest.mark.parametrize("factory", LAYERS, ids=IDS)
def test_op_on_torch_tensors_matches_autograd(factory, dtype, tol, rng):
    layer = factory()
    x_np = rng.normal(0, 2, size=(4, 5))
    x_np = np.where(np.abs(x_np) < 1e-2, 0.5, x_np)
    x = torch.tensor(x_np, dtype=dtype, requires_grad=True)
    y = layer.forward(x.detach())
    assert isinstance(y, torch.Tensor) and y.dtype == dtype
    g = torch.tensor(rng.normal(size=(4, 5)), dtype=dtype)
    dx = layer.backward(g)
    ref = x
    for mod in torch_layers(layer, dtype):
        ref = mod(ref)
    ref.backward(g)
    torch.testing.assert_close(y, ref.detach(), rtol=tol, atol=tol)
    torch.testing.assert_close(dx, x.grad, rtol=tol, atol=tol)
    # and the same numbers as the NumPy path
    y_np = factory().forward(x_np.astype(np.float64))
    np.testing.assert_allclose(y.numpy(), y_np, rtol=tol * 10, atol=tol)


@pytest.mark.parametrize("factory", LAYERS, ids=IDS)
def test_jacobian_on_torch(factory, rng):
    layer = factory()
    x = torch.tensor(rng.normal(size=(2, 3)))
    J = layer.jacobian(x)
    assert isinstance(J, torch.Tensor) and tuple(J.shape) == (2, 3, 3)


def test_torch_backend_network_trains_like_numpy(rng):
    seed = int(rng.integers(2**31))
    x, y = rng.normal(size=(8, 3)), rng.integers(0, 3, size=8)
    nets = [hg.MLP(3, [6, 5], 3, f="gelu", g="softmax", seed=seed, dtype=np.float64, backend=b) for b in ("numpy", "torch")]
    assert isinstance(nets[1].params["W1"], torch.Tensor) and nets[1].backend.name == "torch"
    losses = []
    for net in nets:
        opt = hg.SGD(net, lr=0.5)
        xb = x if net.backend.name == "numpy" else torch.tensor(x)
        trace = []
        for _ in range(5):
            net.forward(xb)
            net.zero_grad()
            trace.append(float(net.backward_loss(hg.CrossEntropyLoss(), y)))
            opt.step()
        losses.append(trace)
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-10)
    for k in nets[0].params:
        np.testing.assert_allclose(nets[0].params[k], to_numpy(nets[1].params[k]), rtol=1e-10)


def test_moving_a_network_between_backends_and_dtypes(rng):
    net = hg.MLP(2, [3], 1, seed=rng)
    x = rng.normal(size=(4, 2)).astype(np.float32)
    before = net(x)
    net.to("torch", dtype=np.float64)
    assert net.params["W1"].dtype == torch.float64 and net.dtype == np.float64
    after = net(torch.tensor(x, dtype=torch.float64))
    np.testing.assert_allclose(to_numpy(after), before, rtol=1e-6)
    net.to("numpy", dtype="float32")
    assert isinstance(net.params["W1"], np.ndarray) and net.params["W1"].dtype == np.float32


def test_namespace_helpers():
    assert namespace_of(np.zeros(2)) is np
    assert backend_name(torch.zeros(2)) == "torch"
    with pytest.raises(TypeError, match="NumPy array, a torch.Tensor or a CuPy array"):
        backend_name("abc")
    with pytest.raises(ValueError, match="backend must be one of numpy, torch, cupy, got 'jax'"):
        Backend("jax")


def test_numpy_input_to_a_torch_network_is_converted(rng):
    net = hg.MLP(3, [4], 2, f="tanh", seed=rng, dtype=np.float64, backend="torch")
    x = rng.normal(size=(5, 3))
    y = net(x)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float64
    np.testing.assert_allclose(y.numpy(), net(torch.tensor(x)).numpy(), rtol=1e-15)
    assert net([[0.0, 1.0, 2.0]]).shape == (1, 2)


def test_erf_without_scipy_matches_math_erf():
    """erf from NumPy alone (the core install): within 4e-16 of math.erf from -8 to 8, exact
    limits, odd, NaN kept, float32 in gives float32 out."""
    import math

    from handgrad.backend import erf_numpy

    x = np.concatenate([np.linspace(-8, 8, 40001), [0.0, -0.0, 1e-300, 5.99999, 6.0, 6.0001, 1 / 32, 27.0]])
    expected = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(erf_numpy(x), expected, rtol=5e-15, atol=4e-16)
    np.testing.assert_array_equal(erf_numpy(np.array([np.inf, -np.inf])), [1.0, -1.0])
    np.testing.assert_array_equal(erf_numpy(-x), -erf_numpy(x))
    assert np.signbit(erf_numpy(np.array([-0.0]))[0])
    assert np.isnan(erf_numpy(np.array([1.0, np.nan]))).tolist() == [False, True]
    y32 = erf_numpy(x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, expected.astype(np.float32), rtol=1e-6, atol=1e-7)


def test_gelu_without_scipy_matches_pytorch(monkeypatch):
    """With SciPy missing, exact GELU and its derivative still agree with PyTorch in float64."""
    import sys

    torch = pytest.importorskip("torch")
    from handgrad import GELU

    monkeypatch.setitem(sys.modules, "scipy.special", None)  # import scipy.special -> ImportError
    x = np.linspace(-9, 9, 1001)
    layer = GELU()
    y = layer.forward(x)
    g = np.cos(x)
    dx = layer.backward(g)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.gelu(xt)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-13, atol=1e-15)
