"""Tests for handgrad.playground without a browser: validation, data, trainer, derivations and the server."""

from __future__ import annotations

import base64
import builtins
import json

import numpy as np
import pytest

import handgrad as hg
from handgrad.cli import main
from handgrad.playground.data import DATASETS, FEATURES, features, grid, make_points
from handgrad.playground.derive import derivation, verify
from handgrad.playground.protocol import (
    ACTIVATION_NAMES,
    MAX_MESSAGE_BYTES,
    Config,
    MessageError,
    Target,
    parse_config,
    parse_message,
)
from handgrad.playground.session import Session
from handgrad.playground.walkthrough import walkthrough


def config(**changes):
    return {**Config().to_dict(), **changes}


def message(kind, **fields):
    return json.dumps({"type": kind, **fields})


# ---------------------------------------------------------------- validation
def test_default_config_round_trips():
    assert parse_config(Config().to_dict()) == Config()


@pytest.mark.parametrize("changes, words", [
    ({"noise": 51}, "noise must be an integer in [0, 50]"),
    ({"noise": 5.5}, "noise must be an integer"),
    ({"noise": True}, "noise must be an integer"),
    ({"batch_size": 0}, "batch_size must be an integer in [1, 30]"),
    ({"hidden": [9]}, "hidden must be a list of at most 6"),
    ({"hidden": [1] * 7}, "hidden must be a list of at most 6"),
    ({"hidden": "4,4"}, "hidden must be a list"),
    ({"features": []}, "features must be a non-empty list"),
    ({"features": ["x1", "x1"]}, "distinct"),
    ({"features": ["../../etc/passwd"]}, "features must be"),
    ({"activation": "softmax"}, "activation must be one of"),
    ({"activation": "__import__('os')"}, "activation must be one of"),
    ({"learning_rate": float("nan")}, "learning_rate must be a number"),
    ({"learning_rate": 100}, "learning_rate must be a number in"),
    ({"learning_rate": "0.1"}, "learning_rate must be a number"),
    ({"dataset": "plane"}, "dataset must be one of circle, xor, gauss, spiral"),
    ({"problem": "regression", "dataset": "plane", "loss": "bce"}, "loss bce needs problem classification"),
    ({"regularization": "l3"}, "regularization must be one of none, l1, l2"),
])
def test_bad_config_names_expected_and_received(changes, words):
    with pytest.raises(MessageError, match=words.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        parse_config(config(**changes))


def test_config_needs_exactly_its_keys():
    raw = config()
    del raw["seed"]
    with pytest.raises(MessageError, match="missing seed"):
        parse_config(raw)
    with pytest.raises(MessageError, match="unknown"):
        parse_config(config(path="/etc/passwd"))


@pytest.mark.parametrize("text, words", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "JSON object with a string 'type'"),
    ('{"type": 3}', "string 'type'"),
    ('{"type": "explode"}', "unknown message type 'explode'"),
    ('{"type": "play", "extra": 1}', "unknown"),
    ('{"type": "derive", "target": {"kind": "W", "layer": 99, "row": 0}}', "layer must be an integer in"),
    ('{"type": "derive", "target": {"kind": "Q", "layer": 1, "row": 0}}', "kind must be one of W, b, neuron"),
    ('{"type": "config", "config": {"noise": NaN}}', "not valid JSON"),
    ("[" * 100000, "too large"),
    ("[" * 5000, "not valid JSON"),
    (b"binary", "JSON text frames"),
])
def test_bad_messages_are_refused_with_a_reason(text, words):
    with pytest.raises(MessageError, match=words):
        parse_message(text)
    assert len("[" * 100000) > MAX_MESSAGE_BYTES


def test_good_messages_parse():
    assert parse_message(message("play")) == ("play", None)
    kind, target = parse_message(message("derive", target={"kind": "W", "layer": 2, "row": 1, "col": 3}))
    assert (kind, target) == ("derive", Target("W", 2, 1, 3))
    kind, cfg = parse_message(message("config", config=config(hidden=[], features=["x1_x2", "x1"])))
    assert cfg.hidden == [] and cfg.features == ["x1", "x1_x2"]  # features kept in canonical order


def test_activation_choices_come_from_handgrads_registry():
    assert {"relu", "tanh", "sigmoid", "identity", "gelu", "leaky_relu", "softplus", "5relu"} <= set(ACTIVATION_NAMES)
    assert "softmax" not in ACTIVATION_NAMES and "logistic" not in ACTIVATION_NAMES  # not per neuron; a duplicate
    for name in ACTIVATION_NAMES:
        hg.make_activation(name)


# ---------------------------------------------------------------- data
@pytest.mark.parametrize("name", list(DATASETS))
def test_datasets_are_seeded_and_in_range(name):
    X, y = make_points(name, 20, seed=3)
    X2, y2 = make_points(name, 20, seed=3)
    assert X.shape == (500, 2) and y.shape == (500,)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    if DATASETS[name][0] == "classification":
        assert set(np.unique(y)) == {0.0, 1.0} and 200 < y.sum() < 300
    else:
        assert -1 <= y.min() and y.max() <= 1 and y.std() > 0.1


def test_features_and_grid():
    pts = np.array([[1.0, 2.0], [-3.0, 0.5]])
    F = features(pts, list(FEATURES))
    np.testing.assert_allclose(F[0], [1, 2, 1, 4, 2, np.sin(1), np.sin(2)])
    g = grid(4)
    assert g.shape == (16, 2) and g[0, 1] > 0 and g[0, 0] < 0 and np.abs(g).max() < 6


# ---------------------------------------------------------------- the trainer
def test_xor_trains_below_the_browser_tests_bar():
    s = Session(parse_config(config(dataset="xor", hidden=[4, 4], learning_rate=0.1)))
    for _ in range(60):
        s.train_epoch()
    assert s.epoch == 60 and s.updates == 60 * 25
    assert s.data_loss(s.X_test, s.y_test) < 0.05


def test_an_epoch_is_one_pass_in_batches():
    s = Session(parse_config(config(batch_size=7)))
    s.train_epoch()
    assert s.epoch == 1 and s.updates == int(np.ceil(250 / 7)) and s.position == 0


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_penalty_gradient_is_the_derivative_of_the_penalty(kind, rng):
    """dΩ/dW by hand equals central differences of Ω = λ Σ|W| or (λ/2) Σ W²."""
    s = Session(parse_config(config(regularization=kind, reg_rate=0.3)))
    W = rng.normal(size=(3, 4))
    omega = (lambda W: 0.3 * np.abs(W).sum()) if kind == "l1" else (lambda W: 0.15 * (W**2).sum())
    numeric = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        e = np.zeros_like(W)
        e[idx] = 1e-6
        numeric[idx] = (omega(W + e) - omega(W - e)) / 2e-6
    np.testing.assert_allclose(s.penalty_gradient(W), numeric, atol=1e-6)


def test_regularised_update_is_sgd_on_loss_plus_penalty():
    s = Session(parse_config(config(regularization="l2", reg_rate=0.5, learning_rate=0.1)))
    ref = s.net.copy()
    x, y = s.X_train[:10], s.y_train[:10]
    ref.forward(x)
    ref.backward_loss(hg.make_loss("bce"), y, zero_grad=True)
    expected = {k: ref.params[k] - 0.1 * (ref.grads[f"dJ_d{k}"] + (0.5 * ref.params[k] if k[0] == "W" else 0))
                for k in ref.params}
    s.train_update()
    for k, v in expected.items():
        np.testing.assert_allclose(s.net.params[k], v, atol=1e-12, err_msg=k)


def test_apply_keeps_weights_unless_the_network_changes():
    s = Session()
    s.train_epoch()
    W = s.net.params["W1"].copy()
    s.apply(parse_config(config(learning_rate=0.1, batch_size=5)))
    np.testing.assert_array_equal(s.net.params["W1"], W)
    assert s.optimizer.lr == 0.1 and s.epoch == 1
    s.apply(parse_config(config(learning_rate=0.1, batch_size=5, hidden=[3])))
    assert s.net.params["W1"].shape == (3, 2) and s.epoch == 0


def test_frame_contents():
    s = Session(parse_config(config(hidden=[3, 2])))
    f = s.frame()
    assert len(base64.b64decode(f["output"])) == 50 * 50
    assert [len(layer) for layer in f["neurons"]] == [3, 2]
    assert len(base64.b64decode(f["neurons"][0][0])) == 20 * 20
    assert np.array(f["weights"][1]["W"]).shape == (2, 3)
    json.dumps(f, allow_nan=False)


# ---------------------------------------------------------------- derivations
TARGETS = [Target("W", 1, 2, 1), Target("b", 1, 0), Target("W", 2, 1, 2), Target("neuron", 3, 0), Target("W", 3, 0, 1)]


@pytest.mark.parametrize("activation, loss", [("tanh", "bce"), ("relu", "mse"), ("5relu", "mse"), ("gelu", "bce"),
                                              ("sigmoid", "mse")])
@pytest.mark.parametrize("target", TARGETS, ids=str)
def test_derivation_chain_equals_backward_and_finite_differences(activation, loss, target):
    s = Session(parse_config(config(hidden=[4, 3], activation=activation, loss=loss, dataset="spiral")))
    for _ in range(5):
        s.train_update()
    x, y = s.current_batch()
    d = derivation(s.net, s.loss, x, y, target)
    v = verify(s.net, s.loss, x, y, target)
    assert d["difference"] < 1e-12, (d["chain"], d["backward"])
    assert v["difference"] < 1e-7, (v["numeric"], v["backward"])
    assert d["backward"] == v["backward"]
    assert np.isclose(d["chain"], sum(d["terms"]))
    assert len(d["factors"]) == 2 + 2 * (3 - target.layer) + 1


def test_derivation_matches_an_independent_mlp():
    """The numbers shown equal a fresh hg.MLP's backward on the same weights and batch."""
    s = Session(parse_config(config(hidden=[3], features=["x1", "x2", "x1_x2"])))
    s.train_update()
    x, y = s.current_batch()
    d = derivation(s.net, s.loss, x, y, Target("W", 1, 2, 2))
    net = hg.MLP(3, [3], 1, f="tanh", g="sigmoid", dtype=np.float64)
    for k, v in d["params"].items():
        net.params[k][...] = np.array(v)
    net.forward(np.array(d["batch"]["x"]))
    net.backward_loss(hg.BCELoss(), np.array(d["batch"]["y"]), zero_grad=True)
    assert abs(net.grads["dJ_dW1"][2, 2] - d["chain"]) < 1e-12


def test_walkthrough_is_one_real_update():
    s = Session(parse_config(config(hidden=[2], learning_rate=0.5)))
    before = {k: v.copy() for k, v in s.net.params.items()}
    w = walkthrough(s)
    steps = w["steps"]
    assert list(steps) == ["forward", "loss", "clear", "backward", "update"]
    assert all(g["max_abs"] == 0 for g in steps["clear"])
    assert steps["loss"]["J"] == pytest.approx(steps["loss"]["J_backward"], abs=1e-12)
    layer2 = steps["backward"][0]
    for k in before:
        grad = np.array(layer2["dJ_dW"] if k == "W2" else layer2["dJ_db"] if k == "b2"
                        else steps["backward"][1]["dJ_dW" if k == "W1" else "dJ_db"])
        np.testing.assert_allclose(np.array(steps["update"]["after"][k]), before[k] - 0.5 * grad, atol=1e-12)
        np.testing.assert_allclose(s.net.params[k], np.array(steps["update"]["after"][k]))
    assert s.updates == 1
    # dJ/dz1 shown in the walk agrees with dJ/dW1 = (dJ/dz1)ᵀ a0
    np.testing.assert_allclose(np.array(steps["backward"][1]["dJ_dz"]).T @ np.array(w["batch"]["x"]),
                               np.array(steps["backward"][1]["dJ_dW"]), atol=1e-12)


def test_check_target_refuses_out_of_range():
    s = Session(parse_config(config(hidden=[2])))
    with pytest.raises(MessageError, match=r"layer must be in \[1, 2\]"):
        s.check_target(Target("W", 3, 0, 0))
    with pytest.raises(MessageError, match="W1 is 2×2; got row 0, col 5"):
        s.check_target(Target("W", 1, 0, 5))


# ---------------------------------------------------------------- the model file
def test_downloaded_model_works_with_handgrad_predict(tmp_path, capsys):
    s = Session(parse_config(config(dataset="xor", hidden=[4, 4], features=["x1", "x2", "x1_x2"], learning_rate=0.1)))
    for _ in range(30):
        s.train_epoch()
    path = tmp_path / "playground.safetensors"
    path.write_bytes(s.model_file())
    pts = np.array([[3.0, 3.0], [-3.0, 3.0], [-2.0, -4.0], [4.0, -1.0]])
    csv = tmp_path / "points.csv"
    csv.write_text("x1,x2,x1_x2\n" + "".join(f"{a},{b},{a * b}\n" for a, b in pts))
    capsys.readouterr()
    assert main(["predict", str(path), "--data", str(csv)]) == 0
    assert capsys.readouterr().out.split() == ["label", "1", "0", "1", "0"]


# ---------------------------------------------------------------- the server (in process)
starlette_testclient = pytest.importorskip("starlette.testclient", reason="the playground extra is not installed")
ORIGIN = {"origin": "http://testserver"}


@pytest.fixture
def client():
    from handgrad.playground.server import create_app

    with starlette_testclient.TestClient(create_app({"testserver"})) as c:
        yield c


def receive_until(ws, kind):
    for _ in range(50):
        msg = ws.receive_json()
        if msg["type"] == kind:
            return msg
    raise AssertionError(f"no {kind!r} message")


def test_page_and_static_files_are_served(client):
    r = client.get("/")
    assert r.status_code == 200 and "handgrad playground" in r.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/../server.py").status_code == 404
    assert "datasets" in client.get("/options").json()


@pytest.mark.parametrize("headers", [{}, {"origin": "http://evil.example"}, {"origin": "null"},
                                     {"origin": "http://testserver", "host": "evil.example"}])
def test_websocket_refuses_a_foreign_origin_or_host(client, headers):
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect):
        with client.websocket_connect("/ws", headers=headers) as ws:
            ws.receive_json()


def test_hostile_messages_get_errors_and_the_session_goes_on(client):
    with client.websocket_connect("/ws", headers=ORIGIN) as ws:
        assert ws.receive_json()["type"] == "hello"
        for bad in ["{", '{"type": "config", "config": {"hidden": [1000000]}}', '{"type": "rm -rf"}',
                    '{"type": "derive", "target": {"kind": "W", "layer": 7, "row": 0, "col": 0}}',
                    "x" * 10000]:
            ws.send_text(bad)
            assert receive_until(ws, "error")["message"]
        ws.send_text(message("config", config=config(hidden=[2])))
        assert receive_until(ws, "config")["config"]["hidden"] == [2]
        assert receive_until(ws, "frame")["epoch"] == 0  # the new config's first frame
        ws.send_text(message("step"))
        assert receive_until(ws, "frame")["epoch"] == 1


def test_play_pause_and_two_independent_sessions(client):
    with client.websocket_connect("/ws", headers=ORIGIN) as a, client.websocket_connect("/ws", headers=ORIGIN) as b:
        a.receive_json(), b.receive_json()
        a.send_text(message("play"))
        frames = []
        while len(frames) < 5:
            frame = receive_until(a, "frame")
            frames.append(frame)
            a.send_text(message("ack"))
        a.send_text(message("pause"))
        last = receive_until(a, "frame")
        while last["playing"]:
            last = receive_until(a, "frame")
        assert last["updates"] > frames[0]["updates"] > 0
        b.send_text(message("step"))
        assert receive_until(b, "frame")["updates"] == 25  # b's own session: one epoch, untouched by a's play


def test_download_model_over_the_socket(client):
    from handgrad.io import load_model

    with client.websocket_connect("/ws", headers=ORIGIN) as ws:
        ws.receive_json()
        ws.send_text(message("download_model"))
        data = base64.b64decode(receive_until(ws, "model")["data"])
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.safetensors")
        with open(path, "wb") as f:
            f.write(data)
        net, meta = load_model(path)
    assert [p.shape for p in net.params.values()] == [(4, 2), (4,), (2, 4), (2,), (1, 2), (1,)]
    assert meta["feature_names"] == ["x1", "x2"] and meta["task"] == "classification"


# ---------------------------------------------------------------- the command
def test_command_without_the_extra_names_it(monkeypatch, capsys):
    real_import = builtins.__import__

    def no_uvicorn(name, *args, **kwargs):
        if name in ("uvicorn", "starlette"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_uvicorn)
    assert main(["playground", "--no-browser"]) == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "pip install 'handgrad[playground]'" in err


def test_command_rejects_a_bad_port(capsys):
    assert main(["playground", "--no-browser", "--port", "70000"]) == 2
    assert "--port must be in [0, 65535]" in capsys.readouterr().err


def test_divergence_stops_with_a_message_and_frames_stay_valid_json():
    s = Session(parse_config(config(problem="regression", dataset="multigauss", activation="relu", hidden=[8, 8],
                                    loss="mse", learning_rate=10, features=["x1", "x2", "x1_sq", "x2_sq"])))
    with np.errstate(all="ignore"), pytest.raises(hg.DivergenceError, match="lower the learning rate"):
        for _ in range(100):
            s.train_epoch()
    with np.errstate(all="ignore"):
        f = s.frame()
    json.dumps(f, allow_nan=False)
    assert f["test_loss"] is None


def test_divergence_reaches_the_page_as_an_error(client):
    with client.websocket_connect("/ws", headers=ORIGIN) as ws:
        ws.receive_json()
        ws.send_text(message("config", config=config(problem="regression", dataset="multigauss", activation="relu",
                                                     hidden=[8, 8], loss="mse", learning_rate=10,
                                                     features=["x1", "x2", "x1_sq", "x2_sq"])))
        receive_until(ws, "frame")
        for _ in range(30):
            ws.send_text(message("step"))
            msg = ws.receive_json()
            if msg["type"] == "error":
                break
        assert "training diverged" in msg["message"]
        ws.send_text(message("reset"))
        assert receive_until(ws, "frame")["test_loss"] is not None


def test_no_hidden_layer_network_derives_and_walks():
    s = Session(parse_config(config(hidden=[], features=["x1", "x2", "x1_sq"])))
    s.train_update()
    x, y = s.current_batch()
    for target in (Target("W", 1, 0, 2), Target("neuron", 1, 0)):
        d = derivation(s.net, s.loss, x, y, target)
        assert d["difference"] < 1e-12 and len(d["factors"]) == 3
        assert verify(s.net, s.loss, x, y, target)["difference"] < 1e-7
    w = walkthrough(s)
    assert len(w["steps"]["forward"]) == 1 and s.frame()["neurons"] == []
