"""One registry of activations and losses: a user's activation registered in one call works
everywhere a built-in does (MLP by name, explain, gradcheck, model files, torch export)."""

from __future__ import annotations

import numpy as np
import pytest

import handgrad as hg
from handgrad.functional import sigmoid
from handgrad.gradcheck import check_layer, check_network
from handgrad.registry import activation_name, activation_spec, layer_config, layer_from_config, unregister_activation


def _swish(x):
    return x * sigmoid(x)


def _swish_derivative(x):
    s = sigmoid(x)
    return s * (1 + x * (1 - s))


@pytest.fixture
def swish():
    cls = hg.register_activation("swish", forward=_swish, derivative=_swish_derivative, formula="x·σ(x)",
                                 derivative_formula="σ(x)(1 + x(1 − σ(x)))", torch="SiLU", onnx=None)
    yield cls
    unregister_activation("swish")


def test_a_registered_activation_works_by_name(swish, rng):
    net = hg.MLP(3, [4], 2, f="swish", seed=0, dtype=np.float64)
    assert isinstance(net.layers[1], swish) and net.f_name == "swish"
    assert hg.make_activation("2swish").scale == 2.0 and "swish" in hg.activation_names(elementwise=True)
    x = rng.normal(size=(5, 3))
    np.testing.assert_allclose(net.layers[1].forward(x[:, :1]), x[:, :1] / (1 + np.exp(-x[:, :1])), rtol=1e-12)


def test_a_registered_activation_runs_inside_the_fast_plan(swish, rng):
    """Its plain pair runs inside the plan (the Linears keep their kernels): the same numbers."""
    import copy

    fast = hg.MLP(3, [6, 5], 2, f="swish", seed=0)
    plain = copy.deepcopy(fast)
    plain.fast_path = False
    x, y = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(4, 2)).astype(np.float32)
    for _ in range(2):
        J_fast, J_plain = fast.train_step(x, y, "mse", 0.1), plain.train_step(x, y, "mse", 0.1)
    assert fast._last_plan is not None
    np.testing.assert_allclose(J_fast, J_plain, rtol=1e-6)
    for k in fast.params:
        np.testing.assert_allclose(fast.params[k], plain.params[k], rtol=1e-5, atol=1e-7, err_msg=k)


def test_a_registered_activation_passes_gradcheck_and_explains_itself(swish, rng):
    report = check_layer(hg.make_activation("3swish"), rng.normal(size=(4, 5)))
    assert report.passed, str(report)
    net = hg.MLP(3, [4], 2, f="swish", seed=0, dtype=np.float64)
    assert check_network(net, rng.normal(size=(5, 3)), rng.normal(size=(5, 2)), "mse").passed
    text = hg.make_activation("swish").explain(x="z1", y="z2")
    assert "z2 = z1·σ(z1)" in text and "σ(z1)(1 + z1(1 − σ(z1)))" in text


def test_a_registered_activation_round_trips_through_a_model_file(swish, tmp_path, rng):
    from handgrad.io import load_model, save_model

    net = hg.MLP(3, [4], 2, f="2swish", seed=0)
    assert layer_config(net.layers[1]) == {"type": "Activation", "name": "swish", "scale": 2.0}
    save_model(tmp_path / "m.hgm", net)
    loaded, _ = load_model(tmp_path / "m.hgm")
    x = rng.normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))
    unregister_activation("swish")
    with pytest.raises(Exception, match="swish"):
        load_model(tmp_path / "m.hgm")  # a name not registered in this process: an error, never code
    hg.register_activation("swish", forward=_swish, derivative=_swish_derivative, formula="x·σ(x)",
                           derivative_formula="σ(x)(1 + x(1 − σ(x)))")


def test_a_registered_activation_exports_to_torch(swish, rng):
    torch = pytest.importorskip("torch")
    from handgrad.torch_interop import from_torch, to_torch

    net = hg.MLP(3, [4], 2, f="swish", seed=0, dtype=np.float64)
    module = to_torch(net)
    assert isinstance(module[1], torch.nn.SiLU)
    x = rng.normal(size=(5, 3))
    np.testing.assert_allclose(module(torch.from_numpy(x)).detach().numpy(), net.forward(x), rtol=1e-10)
    assert isinstance(from_torch(module).layers[1], swish)


def test_the_class_form_registers_a_richer_activation(rng):
    class Square(hg.Activation):
        """y = c·x²."""

        derivation = hg.Tanh.derivation  # any record: the class form brings its own

        def _forward(self, x):
            return x * x, x

        def _backward(self, dJ_dy, x):
            return dJ_dy * 2 * x

        def _derivative(self, x):
            return 2 * x

    hg.register_activation("square", layer=Square)
    try:
        assert isinstance(hg.make_activation("square"), Square) and activation_name(Square(scale=3)) == "3square"
        assert check_layer(Square(), rng.normal(size=(3, 4))).passed
        with pytest.raises(ValueError, match="no PyTorch equivalent"):
            from handgrad.torch_interop import torch_layers

            pytest.importorskip("torch")
            torch_layers(Square(), None)
    finally:
        unregister_activation("square")


def test_names_are_checked():
    with pytest.raises(ValueError, match="already registered"):
        hg.register_activation("relu", forward=_swish, derivative=_swish_derivative, formula="x", derivative_formula="1")
    with pytest.raises(TypeError, match="needs forward"):
        hg.register_activation("nothing")
    with pytest.raises(ValueError, match="did you mean 'relu'"):
        hg.make_activation("rleu")


def test_softmax_takes_no_scale_and_builtins_round_trip():
    with pytest.raises(ValueError, match="cannot be scaled"):
        hg.make_activation("2softmax")
    for name in hg.activation_names():
        layer = hg.make_activation(name)
        assert activation_name(layer) == name and activation_spec(name).describes(layer)
        assert type(layer_from_config(layer_config(layer))) is type(layer)


def test_register_loss():
    class Half(hg.MSELoss):
        name = "half_mse"

    hg.register_loss("half_mse", Half)
    try:
        assert isinstance(hg.make_loss("half-mse"), Half)
    finally:
        del hg.LOSSES["half_mse"]


def test_a_registered_activation_works_in_the_cli(swish, capsys):
    from handgrad.cli import main

    assert main(["train", "--f", "swish", "--epochs", "3"]) == 0
    assert "f = swish" in capsys.readouterr().out


def test_loss_names_are_one_per_loss_without_aliases():
    from handgrad.registry import loss_names

    names = loss_names()
    assert len({hg.LOSSES[n] for n in names}) == len(names) == len(set(hg.LOSSES.values()))
    assert "ce" not in names and "cross_entropy" in names
