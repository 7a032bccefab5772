"""handgrad <-> PyTorch: to_torch, from_torch, state_dict / load_state_dict with PyTorch's key names."""

from __future__ import annotations

import numpy as np
import pytest

from handgrad import GELU, MLP, LeakyReLU, Linear, ReLU, Scale, Sequential, Softmax, Tanh
from handgrad.registry import activation_names
from handgrad.torch_interop import (
    from_torch,
    load_state_dict,
    module_count,
    state_dict,
    to_torch,
    torch_layers,
)

torch = pytest.importorskip("torch")
nn = torch.nn

HIDDEN = [*activation_names(elementwise=True), "5relu", "logistic", "2.5tanh"]
OUTPUT = ["identity", "sigmoid", *activation_names(elementwise=False)]
TOL = dict(rtol=1e-6, atol=1e-6)  # float32: both sides round differently inside tanh, exp, erf


def _torch_out(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("f", HIDDEN)
@pytest.mark.parametrize("g", OUTPUT)
def test_round_trip_handgrad_torch_handgrad(f, g, rng):
    net = MLP(6, [9, 7], 4, f=f, g=g, seed=rng)
    x = rng.normal(size=(32, 6)).astype(np.float32)
    module = to_torch(net, dtype=torch.float32)
    np.testing.assert_allclose(_torch_out(module, x), net.forward(x), **TOL)
    back = from_torch(module)
    assert back.config() == net.config()  # the same layers, 5·ReLU folded back into ReLU(scale=5)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back.forward(x), net.forward(x))  # the same weights, bit for bit


def _random_linear(rng, n_in, n_out, bias=True, dtype=torch.float32):
    layer = nn.Linear(n_in, n_out, bias=bias, dtype=dtype)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(rng.normal(0, 0.5, (n_out, n_in))))
        if bias:
            layer.bias.copy_(torch.from_numpy(rng.normal(0, 0.5, n_out)))
    return layer


TORCH_ACTIVATIONS = [nn.ReLU(), nn.LeakyReLU(0.2), nn.Tanh(), nn.Sigmoid(), nn.GELU(), nn.GELU(approximate="tanh"),
                     nn.Softplus(), nn.Identity()]


@pytest.mark.parametrize("act", TORCH_ACTIVATIONS, ids=lambda m: repr(m))
@pytest.mark.parametrize("last", [nn.Softmax(dim=-1), nn.LogSoftmax(dim=1), nn.Identity()], ids=repr)
def test_round_trip_torch_handgrad_torch(act, last, rng):
    module = nn.Sequential(_random_linear(rng, 5, 8), act, _random_linear(rng, 8, 3, bias=False), last)
    net = from_torch(module)
    x = rng.normal(size=(20, 5)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), _torch_out(module, x), **TOL)
    again = to_torch(net, dtype=torch.float32)
    np.testing.assert_array_equal(_torch_out(again, x), _torch_out(module, x))
    for (k1, v1), (k2, v2) in zip(module.state_dict().items(), again.state_dict().items()):
        assert k1 == k2
        assert torch.equal(v1, v2)


def test_from_torch_float64_nested_and_single_layer(rng):
    inner = nn.Sequential(_random_linear(rng, 4, 4, dtype=torch.float64), nn.Tanh())
    module = nn.Sequential(inner, _random_linear(rng, 4, 2, dtype=torch.float64))
    net = from_torch(module)
    assert net.dtype == np.float64 and len(net) == 3
    x = rng.normal(size=(7, 4))
    np.testing.assert_allclose(net.forward(x), _torch_out(module, x), rtol=1e-12, atol=1e-12)
    single = from_torch(_random_linear(rng, 3, 2), dtype="float64")
    assert isinstance(single[0], Linear) and single.dtype == np.float64


def test_scales_fold_back_into_their_layers(rng):
    net = Sequential(Linear(3, 4, seed=rng), LeakyReLU(0.1, scale=2.0), Linear(4, 4, seed=rng),
                     GELU("tanh", scale=3.0), Linear(4, 3, seed=rng), Scale(0.5), Softmax(beta=2.0))
    back = from_torch(to_torch(net, dtype=torch.float32))
    assert repr(back[1]) == "LeakyReLU(negative_slope=0.1, scale=2)"
    assert repr(back[3]) == "GELU(approximate='tanh', scale=3)"
    assert back.config() == net.config()  # Scale(0.5) stays a Scale; the ×2 before softmax is Softmax(beta=2)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(back.forward(x), net.forward(x), **TOL)


@pytest.mark.parametrize("module, match", [
    (nn.Sequential(nn.Linear(2, 3), nn.Dropout(0.5)), r"layer 1 \(Dropout\(p=0.5, inplace=False\)\) is not supported; "
                                                        r"supported layers: Linear, ReLU"),
    (nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3))), r"layer 1\.1 \(BatchNorm1d"),
    (nn.Sequential(nn.Linear(2, 3), nn.Softplus(beta=2.0)), "handgrad's Softplus has beta=1"),
    (nn.Sequential(nn.Linear(2, 3), nn.Softmax(dim=0)), r"Softmax\(dim=0\) is not supported"),
    (nn.Sequential(), "empty"),
])
def test_from_torch_names_what_it_cannot_convert(module, match):
    with pytest.raises(ValueError, match=match):
        from_torch(module)


def test_from_torch_refuses_non_modules():
    with pytest.raises(TypeError, match="expects a torch.nn.Module"):
        from_torch([nn.Linear(2, 2)])


def test_state_dict_uses_pytorch_key_names(rng):
    net = MLP(3, [5, 4], 2, f="5relu", g="softmax", seed=rng)
    module = to_torch(net, dtype=torch.float32)
    state = state_dict(net)
    assert list(state) == list(module.state_dict()) == ["0.weight", "0.bias", "3.weight", "3.bias", "6.weight",
                                                        "6.bias"]
    for key, value in module.state_dict().items():
        np.testing.assert_array_equal(state[key], value.numpy())
    state["0.weight"][0, 0] = 99.0  # a copy: the network is untouched
    assert net.params["W1"][0, 0] != 99.0
    fresh = to_torch(MLP(3, [5, 4], 2, f="5relu", g="softmax", seed=1), dtype=torch.float32)
    fresh.load_state_dict(state_dict(net, tensors=True))
    x = rng.normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_array_equal(_torch_out(fresh, x), _torch_out(module, x))


def test_load_state_dict_from_torch(rng):
    module = nn.Sequential(_random_linear(rng, 3, 6), nn.Tanh(), _random_linear(rng, 6, 2))
    net = MLP(3, [6], 2, f="tanh", seed=0)
    result = load_state_dict(net, module.state_dict())
    assert result == {"missing_keys": [], "unexpected_keys": []}
    x = rng.normal(size=(8, 3)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), _torch_out(module, x), **TOL)
    net64 = MLP(3, [6], 2, f="tanh", seed=0, dtype=np.float64)
    load_state_dict(net64, module.state_dict())  # cast to the network's dtype
    assert net64.params["W1"].dtype == np.float64
    np.testing.assert_array_equal(net64.params["W1"], module[0].weight.detach().numpy().astype(np.float64))


def test_load_state_dict_lists_every_problem_and_changes_nothing(rng):
    net = MLP(3, [6], 2, seed=0)
    before = net.params["W1"].copy()
    bad = {"0.weight": np.zeros((6, 4)), "0.bias": np.zeros(6), "9.weight": np.zeros((1, 1))}
    with pytest.raises(ValueError) as info:
        load_state_dict(net, bad)
    message = str(info.value)
    assert "0.weight: expected shape (6, 3), got (6, 4)" in message
    assert "missing keys: ['2.weight', '2.bias']" in message
    assert "unexpected keys: ['9.weight']" in message
    np.testing.assert_array_equal(net.params["W1"], before)
    partial = {"0.bias": np.ones(6), "extra": np.zeros(2)}
    assert load_state_dict(net, partial, strict=False) == {"missing_keys": ["0.weight", "2.weight", "2.bias"],
                                                           "unexpected_keys": ["extra"]}
    np.testing.assert_array_equal(net.params["b1"], np.ones(6))
    with pytest.raises(TypeError, match="mapping"):
        load_state_dict(net, [np.zeros(3)])


def test_state_dict_on_the_torch_backend(rng):
    pytest.importorskip("array_api_compat")
    net = MLP(3, [4], 2, seed=rng)
    numpy_state = state_dict(net)
    on_torch = MLP(3, [4], 2, seed=1).to("torch")
    load_state_dict(on_torch, numpy_state)
    assert isinstance(on_torch.params["W1"], torch.Tensor)
    np.testing.assert_array_equal(state_dict(on_torch)["0.weight"], numpy_state["0.weight"])


@pytest.mark.parametrize("layer", [Linear(2, 3, seed=0), ReLU(), ReLU(scale=5), Tanh(scale=2), Softmax(),
                                   Softmax(beta=3), Scale(2.0), LeakyReLU(0.3, scale=4), GELU("tanh")], ids=repr)
def test_module_count_matches_torch_layers(layer):
    assert module_count(layer) == len(torch_layers(layer, torch.float32))


def test_to_torch_of_a_trained_model_takes_raw_rows():
    torch = pytest.importorskip("torch")
    from handgrad import MLP, Predictor
    from handgrad.data import Standardizer

    rng = np.random.default_rng(3)
    X = rng.normal(-300.0, 20.0, size=(30, 2))
    model = Predictor(MLP(2, [4], 3, g="softmax", seed=0, dtype="float64"), task="classification",
                      loss="cross_entropy", feature_names=["a", "b"], class_labels=["x", "y", "z"],
                      x_scaler=Standardizer().fit(X))
    module = to_torch(model)
    got = module(torch.as_tensor(X)).detach().numpy()
    np.testing.assert_allclose(got, model.predict_proba(X), rtol=1e-12)


def test_state_dict_arrays_are_c_ordered_copies():
    """W is a Fortran-ordered view of the folded storage; state_dict hands out C-ordered
    copies, so a library that reads raw memory (safetensors) gets the right numbers."""
    from safetensors.numpy import load, save

    from handgrad.torch_interop import state_dict

    net = MLP(3, [4], 2, seed=0)
    assert not net.layers[0].W.flags.c_contiguous
    state = state_dict(net)
    assert all(value.flags.c_contiguous for value in state.values())
    np.testing.assert_array_equal(state["0.weight"], net.layers[0].W)
    np.testing.assert_array_equal(load(save(state))["0.weight"], net.layers[0].W)
