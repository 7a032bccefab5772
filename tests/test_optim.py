"""Optimizers, schedules and gradient clipping: formulas, validation, state, PyTorch agreement."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import handgrad as hg
from handgrad.optim import (
    SGD,
    Adam,
    CosineLR,
    Schedule,
    StepLR,
    clip_grad_norm,
    grad_norm,
    make_optimizer,
    make_schedule,
)


def _net(rng, dtype=np.float64):
    return hg.MLP(3, [4], 2, f="tanh", seed=rng, dtype=dtype)


def _set_grads(net, rng, scale=1.0):
    for _, layer, _, gkey in net.parameter_slots():
        g = layer.grads[gkey]
        g[...] = scale * rng.standard_normal(g.shape).astype(g.dtype)


def _params(net):
    return {k: np.array(v, copy=True) for k, v in net.params.items()}


# ---------------------------------------------------------------- plain SGD, in place
def test_sgd_plain_step_is_the_seed_update_bitwise_and_in_place(rng):
    net = _net(rng)
    before = _params(net)
    ids = {k: id(v) for k, v in net.params.items()}
    _set_grads(net, rng)
    grads = {k.replace("dJ_d", ""): np.array(v, copy=True) for k, v in net.grads.items()}
    SGD(net, lr=0.1).step()
    for k, theta in net.params.items():
        np.testing.assert_array_equal(theta, before[k] - 0.1 * grads[k])
        assert id(theta) == ids[k]


def test_sgd_positional_lr_still_works(rng):
    opt = SGD(_net(rng), 0.05)
    assert opt.lr == 0.05 and repr(opt) == "SGD(lr=0.05, momentum=0.0, nesterov=False, weight_decay=0.0)"


def test_one_small_step_lowers_least_squares_loss(rng):
    net = hg.MLP(3, [], 1, seed=rng, dtype=np.float64)
    X, y = rng.standard_normal((20, 3)), rng.standard_normal((20, 1))
    loss = hg.MSELoss()
    net.forward(X)
    net.zero_grad()
    J0 = float(net.backward_loss(loss, y))
    SGD(net, lr=1e-3).step()
    J1 = float(loss(y, net.forward(X))[0])
    assert J1 < J0


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize("lr", [0, 0.0, -0.1, math.nan, math.inf])
def test_bad_lr_values_raise_value_error(rng, lr):
    with pytest.raises(ValueError, match="lr must be a finite positive number"):
        SGD(_net(rng), lr=lr)
    with pytest.raises(ValueError, match="lr must be a finite positive number"):
        Adam(_net(rng), lr=lr)


@pytest.mark.parametrize("lr", ["0.1", None, True, [0.1]])
def test_non_numeric_lr_raises_type_error(rng, lr):
    with pytest.raises(TypeError, match="lr must be"):
        SGD(_net(rng), lr=lr)


def test_lr_assignment_is_validated(rng):
    opt = SGD(_net(rng), lr=0.1)
    with pytest.raises(ValueError, match="got -1"):
        opt.lr = -1.0


@pytest.mark.parametrize("momentum", [-0.1, 1.0, 1.5, math.nan])
def test_momentum_outside_unit_interval(rng, momentum):
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        SGD(_net(rng), lr=0.1, momentum=momentum)


def test_momentum_string_and_nesterov_checks(rng):
    with pytest.raises(TypeError, match="momentum must be a number"):
        SGD(_net(rng), lr=0.1, momentum="0.9")
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        SGD(_net(rng), lr=0.1, nesterov=True)
    with pytest.raises(TypeError, match="nesterov must be True or False"):
        SGD(_net(rng), lr=0.1, momentum=0.9, nesterov="yes")
    with pytest.raises(ValueError, match="weight_decay must be a finite non-negative"):
        SGD(_net(rng), lr=0.1, weight_decay=-1)


def test_adam_argument_checks(rng):
    with pytest.raises(ValueError, match=r"betas\[1\] must be in \[0, 1\)"):
        Adam(_net(rng), betas=(0.9, 1.0))
    with pytest.raises(TypeError, match="betas must be a pair"):
        Adam(_net(rng), betas=0.9)
    with pytest.raises(ValueError, match="eps must be a finite positive"):
        Adam(_net(rng), eps=0)


def test_optimizer_needs_a_network():
    with pytest.raises(TypeError, match="needs a handgrad network"):
        SGD([np.zeros(3)], lr=0.1)


def test_make_optimizer_names(rng):
    net = _net(rng)
    assert isinstance(make_optimizer("SGD", net, lr=0.1), SGD)
    assert isinstance(make_optimizer(" adam ", net), Adam)
    with pytest.raises(ValueError, match="did you mean 'adam'"):
        make_optimizer("adma", net)
    opt = Adam(net)
    assert make_optimizer(opt, net) is opt
    with pytest.raises(TypeError, match="extra settings"):
        make_optimizer(opt, net, lr=0.1)


# ---------------------------------------------------------------- formulas against the hand-written rule
def test_momentum_and_nesterov_follow_the_docstring(rng):
    for nesterov in (False, True):
        net = _net(rng)
        opt = SGD(net, lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.01)
        theta = _params(net)
        v = {k: np.zeros_like(a) for k, a in theta.items()}
        for _ in range(3):
            _set_grads(net, rng)
            for k in theta:
                g = net.grads[f"dJ_d{k}"] + 0.01 * theta[k]
                v[k] = 0.9 * v[k] + g
                theta[k] = theta[k] - 0.1 * ((g + 0.9 * v[k]) if nesterov else v[k])
            opt.step()
        for k in theta:
            np.testing.assert_allclose(net.params[k], theta[k], rtol=1e-13, atol=1e-15)


def test_adam_follows_the_docstring(rng):
    net = _net(rng)
    opt = Adam(net, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
    theta = _params(net)
    m = {k: np.zeros_like(a) for k, a in theta.items()}
    v = {k: np.zeros_like(a) for k, a in theta.items()}
    for t in range(1, 5):
        _set_grads(net, rng)
        for k in theta:
            g = net.grads[f"dJ_d{k}"] + 0.1 * theta[k]
            m[k] = 0.8 * m[k] + 0.2 * g
            v[k] = 0.99 * v[k] + 0.01 * g * g
            m_hat, v_hat = m[k] / (1 - 0.8**t), v[k] / (1 - 0.99**t)
            theta[k] = theta[k] - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-6)
        opt.step()
    for k in theta:
        np.testing.assert_allclose(net.params[k], theta[k], rtol=1e-10, atol=1e-12)
    assert opt.t == 4


@pytest.mark.parametrize("kind", ["sgd", "momentum", "nesterov", "adam", "adam_wd"])
def test_matches_torch_optim(rng, kind):
    torch = pytest.importorskip("torch")
    net = _net(rng)
    tparams = [torch.tensor(np.array(v), requires_grad=True) for v in net.params.values()]
    settings = {
        "sgd": (SGD, torch.optim.SGD, {"lr": 0.1}),
        "momentum": (SGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
        "nesterov": (SGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.5, "nesterov": True}),
        "adam": (Adam, torch.optim.Adam, {"lr": 0.01}),
        "adam_wd": (Adam, torch.optim.Adam, {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-4, "weight_decay": 0.1}),
    }[kind]
    ours, theirs, kw = settings
    opt, topt = ours(net, **kw), theirs(tparams, **kw)
    for _ in range(5):
        _set_grads(net, rng)
        for tp, g in zip(tparams, net.grads.values()):
            tp.grad = torch.tensor(np.array(g))
        opt.step()
        topt.step()
    for tp, p in zip(tparams, net.params.values()):
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("make", [lambda n: SGD(n, lr=0.1, momentum=0.9), lambda n: Adam(n, lr=0.01)])
def test_works_in_place_on_torch_backend(rng, make):
    pytest.importorskip("torch")
    seed = int(rng.integers(1 << 30))
    a = hg.MLP(3, [4], 2, seed=seed, dtype=np.float64)
    b = hg.MLP(3, [4], 2, seed=seed, dtype=np.float64).to("torch")
    ids = [id(p) for p in b.params.values()]
    oa, ob = make(a), make(b)
    for _ in range(3):
        _set_grads(a, rng)
        for (_, la, _, g), (_, lb, _, _) in zip(a.parameter_slots(), b.parameter_slots()):
            lb.grads[g][...] = b.backend.asarray(np.array(la.grads[g]), np.float64)
        oa.step()
        ob.step()
    assert ids == [id(p) for p in b.params.values()]
    for k in a.params:
        np.testing.assert_allclose(b.params[k].numpy(), a.params[k], rtol=1e-12)


# ---------------------------------------------------------------- state for checkpoints
@pytest.mark.parametrize("make", [lambda n: SGD(n, lr=0.1, momentum=0.9, nesterov=True), lambda n: Adam(n, lr=0.01)])
def test_state_dict_round_trip_continues_bitwise(rng, make):
    seed = int(rng.integers(1 << 30))
    grads = [np.random.default_rng(seed + i) for i in range(6)]
    a, b = hg.MLP(3, [4], 2, seed=seed), hg.MLP(3, [4], 2, seed=seed)
    oa, ob = make(a), make(b)
    for i in range(3):
        _set_grads(a, grads[i])
        _set_grads(b, np.random.default_rng(seed + i))
        oa.step()
        ob.step()
    state = ob.state_dict()
    json_part = {k: v for k, v in state.items() if k != "buffers"}
    import json

    json.dumps(json_part)  # plain JSON
    assert all(isinstance(v, np.ndarray) for v in state["buffers"].values())
    c = hg.MLP(3, [4], 2, seed=0)
    for name, layer, key, _ in c.parameter_slots():
        layer.params[key][...] = b.params[name]
    oc = make(c)
    oc.load_state_dict(state)
    assert oc.t == oa.t
    for i in range(3, 6):
        _set_grads(a, grads[i])
        _set_grads(c, np.random.default_rng(seed + i))
        oa.step()
        oc.step()
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], c.params[k])


def test_load_state_dict_rejects_mismatches(rng):
    net = _net(rng)
    opt = SGD(net, lr=0.1, momentum=0.9)
    _set_grads(net, rng)
    opt.step()
    state = opt.state_dict()
    with pytest.raises(ValueError, match="cannot load optimizer state of type 'sgd'"):
        Adam(net).load_state_dict(state)
    bad = dict(state, buffers={**state["buffers"], "velocity.W1": np.zeros((9, 9))})
    with pytest.raises(ValueError, match=r"'velocity.W1': expected shape \(4, 3\), found \(9, 9\)"):
        SGD(net, lr=0.1, momentum=0.9).load_state_dict(bad)
    bad = dict(state, buffers={"velocity.W7": np.zeros(2)})
    with pytest.raises(ValueError, match="unexpected buffer 'velocity.W7'"):
        SGD(net, lr=0.1, momentum=0.9).load_state_dict(bad)
    bad = dict(state, hyperparameters={**state["hyperparameters"], "lr": -1})
    with pytest.raises(ValueError, match="lr must be"):
        SGD(net, lr=0.1, momentum=0.9).load_state_dict(bad)


# ---------------------------------------------------------------- gradient norm and clipping
def test_clip_grad_norm_scales_to_max_norm(rng):
    net = _net(rng)
    _set_grads(net, rng, scale=10.0)
    expected = math.sqrt(sum(float(np.sum(g**2)) for g in net.grads.values()))
    before = {k: np.array(v) for k, v in net.grads.items()}
    norm = clip_grad_norm(net, 1.0)
    assert norm == pytest.approx(expected, rel=1e-12)
    assert grad_norm(net) == pytest.approx(1.0, rel=1e-5)
    for k, g in net.grads.items():  # direction kept
        np.testing.assert_allclose(g * (expected + 1e-6), before[k], rtol=1e-10)


def test_clip_grad_norm_below_threshold_is_untouched(rng):
    net = _net(rng)
    _set_grads(net, rng, scale=1e-3)
    before = {k: np.array(v) for k, v in net.grads.items()}
    clip_grad_norm(net, 100.0)
    for k, g in net.grads.items():
        np.testing.assert_array_equal(g, before[k])


def test_clip_grad_norm_matches_torch(rng):
    torch = pytest.importorskip("torch")
    net = _net(rng)
    _set_grads(net, rng, scale=5.0)
    tparams = [torch.zeros(v.shape, dtype=torch.float64, requires_grad=True) for v in net.params.values()]
    for tp, g in zip(tparams, net.grads.values()):
        tp.grad = torch.tensor(np.array(g))
    tnorm = float(torch.nn.utils.clip_grad_norm_(tparams, 0.5))
    assert clip_grad_norm(net, 0.5) == pytest.approx(tnorm, rel=1e-12)
    for tp, g in zip(tparams, net.grads.values()):
        np.testing.assert_allclose(g, tp.grad.numpy(), rtol=1e-12)


def test_non_finite_gradient_norm_is_reported_not_applied(rng):
    net = _net(rng)
    _set_grads(net, rng)
    net.layers[0].grads["dJ_dW"][0, 0] = np.nan
    before = {k: np.array(v) for k, v in net.grads.items()}
    assert math.isnan(clip_grad_norm(net, 1.0))
    for k, g in net.grads.items():
        np.testing.assert_array_equal(g, before[k])


def test_grad_norm_survives_float32_overflow_of_the_square(rng):
    net = _net(rng, dtype=np.float32)
    net.zero_grad()
    net.layers[0].grads["dJ_dW"][0, 0] = 1e30  # squared: 1e60 overflows float32 but the value is finite
    assert grad_norm(net) == pytest.approx(1e30, rel=1e-6)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(net, 0)


# ---------------------------------------------------------------- schedules
def test_step_schedule():
    s = StepLR(step_size=3, gamma=0.5)
    assert [s(e) for e in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    with pytest.raises(ValueError, match="step_size"):
        StepLR(0)
    with pytest.raises(TypeError, match="step_size"):
        StepLR(2.5)


def test_cosine_schedule_endpoints_and_monotone():
    s = CosineLR(epochs=10, min_factor=0.1)
    values = [s(e) for e in range(12)]
    assert values[0] == 1.0 and values[10] == pytest.approx(0.1) and values[11] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert s(5) == pytest.approx(0.1 + 0.9 * 0.5)
    with pytest.raises(ValueError, match="min_factor must be below 1"):
        CosineLR(5, min_factor=1.0)


def test_make_schedule_specs():
    assert make_schedule(None, 10) is None
    assert isinstance(make_schedule("cosine", 10), CosineLR) and make_schedule("cosine", 10).epochs == 10
    step = make_schedule("step", 9)
    assert (step.step_size, step.gamma) == (3, 0.1)
    assert make_schedule({"type": "step", "step_size": 2, "gamma": 0.5}, 10)(2) == 0.5
    assert type(make_schedule("constant", 5)) is Schedule
    f = lambda e: 0.5  # noqa: E731
    assert make_schedule(f, 10) is f
    with pytest.raises(ValueError, match="did you mean 'cosine'"):
        make_schedule("cosin", 10)
    with pytest.raises(TypeError, match="schedule must be"):
        make_schedule(3, 10)
    assert repr(StepLR(2, 0.5)) == "StepLR(step_size=2, gamma=0.5)"


@pytest.mark.parametrize("nesterov", [False, True])
def test_sklearn_convention_is_scikit_learns_sgd_update(rng, nesterov):
    """v ← μv - lr·g; θ ← θ + v (Nesterov: θ ← θ + μv - lr·g), as scikit-learn's SGDOptimizer."""
    net = hg.MLP(3, [4], 2, seed=0, dtype=np.float64)
    opt = hg.SGD(net, lr=0.1, momentum=0.9, nesterov=nesterov, convention="sklearn")
    theta = {k: v.copy() for k, v in net.params.items()}
    v = {k: np.zeros_like(t) for k, t in theta.items()}
    for _ in range(3):
        for _, layer, key, gkey in net.parameter_slots():
            layer.grads[gkey][...] = rng.normal(size=layer.grads[gkey].shape)
        grads = {k[len("dJ_d"):]: g.copy() for k, g in net.grads.items()}
        opt.step()
        for k in theta:
            v[k] = 0.9 * v[k] - 0.1 * grads[k]
            theta[k] = theta[k] + (0.9 * v[k] - 0.1 * grads[k] if nesterov else v[k])
            np.testing.assert_array_equal(net.params[k], theta[k], err_msg=k)
    assert opt.hyperparameters()["convention"] == "sklearn"


def test_sklearn_convention_adam_adds_eps_before_the_bias_correction(rng):
    net = hg.MLP(3, [4], 2, seed=0, dtype=np.float64)
    opt = hg.optim.Adam(net, lr=0.01, eps=1e-3, convention="sklearn")
    W = net.params["W1"].copy()
    g = rng.normal(size=W.shape)
    net.layers[0].grads["dJ_dW"][...] = g
    opt.step()
    m, v = 0.1 * g, 0.001 * g * g
    lr_t = 0.01 * np.sqrt(1 - 0.999) / (1 - 0.9)
    np.testing.assert_allclose(net.params["W1"], W - lr_t * m / (np.sqrt(v) + 1e-3), rtol=1e-14)


def test_train_step_runs_the_optimizer_and_the_hook_before_it(rng):
    """Sequential.train_step: forward, zeroed backward, before_update(J), then the update."""
    net = hg.MLP(3, [4], 2, seed=0, dtype=np.float64)
    twin = net.copy()
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    seen = []
    J = net.train_step(x, y, "mse", optimizer=hg.SGD(net, lr=0.1, momentum=0.5),
                       before_update=lambda J: seen.append(dict(net.params)["W1"].copy()) or 2 * J)
    np.testing.assert_array_equal(seen[0], twin.params["W1"])  # the hook ran before the update
    twin.forward(x)
    twin.zero_grad()
    J_ref = twin.backward_loss(hg.make_loss("mse"), y)
    hg.SGD(twin, lr=0.1, momentum=0.5).step()
    assert J == 2 * J_ref
    for k in net.params:
        np.testing.assert_array_equal(net.params[k], twin.params[k])
    with pytest.raises(TypeError, match="either lr"):
        net.train_step(x, y, "mse")


# ====================================================================== one flat update
def _unpacked_twin(net):
    """A copy whose parameters are separate arrays (not one flat storage): the per-parameter update."""
    twin = copy.deepcopy(net)
    for layer in twin.layers:
        for key in list(layer.params):
            layer.params[key] = layer.params[key].copy()
            layer.grads["dJ_d" + key] = layer.grads["dJ_d" + key].copy()
    return twin


@pytest.mark.parametrize("make", [
    lambda n: hg.Adam(n, lr=0.01), lambda n: hg.Adam(n, lr=0.01, convention="sklearn"),
    lambda n: hg.SGD(n, lr=0.05, momentum=0.9), lambda n: hg.SGD(n, lr=0.05, momentum=0.9, nesterov=True),
    lambda n: hg.SGD(n, lr=0.05, momentum=0.9, convention="sklearn", nesterov=True),
    lambda n: hg.Adam(n, lr=0.01, weight_decay=0.1),
], ids=["adam", "adam-sklearn", "momentum", "nesterov", "sklearn-nesterov", "adam-decay"])
def test_update_over_the_flat_storage_is_the_per_parameter_update(make):
    """An MLP's parameters tile one flat array: the optimizer updates it in one slot, with the
    same numbers as parameter by parameter, and keeps per-parameter buffers for state_dict."""
    rng = np.random.default_rng(3)
    net = hg.MLP(5, [7, 6], 3, f="tanh", seed=0, dtype=np.float64)
    twin = _unpacked_twin(net)
    opt, opt_twin = make(net), make(twin)
    assert [name for name, _, _ in opt.update_slots()] == [""]
    assert [name for name, _, _ in opt_twin.update_slots()] == ["W1", "b1", "W2", "b2", "W3", "b3"]
    x, y = rng.standard_normal((8, 5)), rng.standard_normal((8, 3))
    for _ in range(5):  # the same gradients for both (the twin's unpacked layers would run the plain path)
        net.forward(x)
        net.backward_loss(hg.make_loss("mse"), y, zero_grad=True)
        for key, g in net.grads.items():
            twin.grads[key][...] = g
        opt.step()
        opt_twin.step()
    for key in net.params:
        np.testing.assert_array_equal(net.params[key], twin.params[key], err_msg=key)
    state, state_twin = opt.state_dict(), opt_twin.state_dict()
    assert state["buffers"].keys() == state_twin["buffers"].keys()
    for key, value in state["buffers"].items():
        np.testing.assert_array_equal(value, state_twin["buffers"][key], err_msg=key)


def test_flat_update_takes_in_a_loaded_state():
    """A state loaded mid-run (separate arrays) is taken into the flat buffers, so the run
    continues exactly as the uninterrupted one."""
    rng = np.random.default_rng(4)
    net = hg.MLP(4, [6], 2, seed=1, dtype=np.float64)
    x, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    resumed = copy.deepcopy(net)
    opt = hg.Adam(net, lr=0.01)

    def step(model, o):
        model.forward(x)
        model.backward_loss(hg.make_loss("mse"), y, zero_grad=True)
        o.step()

    for _ in range(3):
        step(net, opt)
    for key in net.params:
        resumed.params[key][...] = net.params[key]
    opt_resumed = hg.Adam(resumed, lr=0.01)
    opt_resumed.load_state_dict(opt.state_dict())
    for _ in range(3):
        step(net, opt)
        step(resumed, opt_resumed)
    for key in net.params:
        np.testing.assert_array_equal(net.params[key], resumed.params[key], err_msg=key)


def test_the_flat_storage_is_found_again_when_arrays_or_layers_change():
    """update_slots keeps the flat storage it found while no params/grads dict changed and the
    network holds the same layers: a replaced array, or a layer swapped in the list, is seen
    at the next step (the update then reaches the new arrays, parameter by parameter)."""
    rng = np.random.default_rng(5)
    net = hg.MLP(4, [6], 2, seed=1, dtype=np.float64)
    opt = hg.SGD(net, lr=0.1, momentum=0.9)
    x, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))

    def step():
        net.forward(x)
        net.backward_loss(hg.make_loss("mse"), y, zero_grad=True)
        opt.step()

    step()
    assert [name for name, _, _ in opt.update_slots()] == [""]
    layer = net.layers[2]
    W = layer.params["W"].copy()
    layer.params["W"] = W  # a separate array now: no longer one flat storage
    assert [name for name, _, _ in opt.update_slots()] == ["W1", "b1", "W2", "b2"]
    before = W.copy()
    step()
    assert not np.array_equal(W, before)  # the new array itself was updated
    layer.params = dict(layer.params)  # the whole dict set again, with the same arrays: still found
    assert [name for name, _, _ in opt.update_slots()] == ["W1", "b1", "W2", "b2"]
    net.layers[0] = hg.Linear(4, 6, seed=2, dtype=np.float64)  # another layer in the list
    slots = [(name, t) for name, t, _ in opt.update_slots()]
    assert slots[0][1] is net.layers[0].params["W"]
