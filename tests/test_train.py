"""The training loop: five steps, determinism, metrics, early stopping, faults, checkpoints and resume."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from helpers import InfGradLoss

import handgrad as hg
from handgrad.errors import DivergenceError, ModelFileError
from handgrad.io import load_checkpoint, load_model, read_metadata
from handgrad.losses import MSELoss
from handgrad.train import Callback, History, evaluate, fit, infer_task, predict, predict_labels, predict_proba


def _regression(rng, n=64, d=3):
    X = rng.standard_normal((n, d))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1]
    return X, y


def _classification(rng, n=90, d=2, k=3):
    centers = rng.standard_normal((k, d)) * 3
    labels = rng.integers(0, k, n)
    return centers[labels] + rng.standard_normal((n, d)), labels


def _params(net):
    return {k: np.array(v, copy=True) for k, v in net.params.items()}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# ====================================================================== the loop itself
def test_loop_is_the_five_steps_over_seeded_shuffles(rng):
    X, y = _regression(rng, n=50)
    seed = int(rng.integers(1 << 30))
    net = hg.MLP(3, [6], 1, f="tanh", seed=seed, dtype=np.float64)
    ref = hg.MLP(3, [6], 1, f="tanh", seed=seed, dtype=np.float64)
    fit(net, X, y, "mse", lr=0.05, epochs=3, batch_size=16, seed=7, train_metrics=False)
    # the same by hand
    loss, opt, shuffle = MSELoss(), hg.SGD(ref, lr=0.05), np.random.default_rng(7)
    Y = y.reshape(-1, 1)
    ref.forward(X[:2]), ref.forward(X[:16])  # fit primes the core's fast path per batch shape; so do we
    for _ in range(3):
        order = shuffle.permutation(50)
        for start in range(0, 50, 16):
            idx = order[start:start + 16]
            y_hat = ref.forward(X[idx])               # 1. forward
            J, dJ_dy_hat = loss(Y[idx], y_hat)        # 2. loss
            ref.zero_grad()                           # 3. zero the gradients
            ref.backward(dJ_dy_hat)                   # 4. backward
            opt.step()                                # 5. update
    _assert_same(_params(net), _params(ref))


def test_batch_larger_than_n_is_full_batch_gradient_descent(rng):
    X, y = _regression(rng, n=20)
    a = hg.MLP(3, [5], 1, seed=1, dtype=np.float64)
    b = hg.MLP(3, [5], 1, seed=1, dtype=np.float64)
    fit(a, X, y, "mse", lr=0.1, epochs=2, batch_size=1000)
    loss, opt = MSELoss(), hg.SGD(b, lr=0.1)
    for _ in range(2):  # a permutation of the full batch gives the same mean gradient up to rounding
        b.forward(X)
        b.zero_grad()
        b.backward_loss(loss, y.reshape(-1, 1))
        opt.step()
    for k, v in _params(a).items():
        np.testing.assert_allclose(v, b.params[k], rtol=1e-12, atol=1e-14)


def test_epochs_zero_leaves_parameters_bitwise_unchanged(rng):
    X, y = _regression(rng)
    net = hg.MLP(3, [4], 1, seed=rng)
    before = _params(net)
    history = fit(net, X, y, epochs=0)
    _assert_same(before, _params(net))
    assert len(history) == 0 and history.best_epoch is None and history.records == []


def test_determinism_same_seed_same_weights_and_history(rng):
    X, y = _classification(rng)
    runs = []
    for _ in range(2):
        net = hg.MLP(2, [8], 3, seed=3)
        h = fit(net, X, y, "cross_entropy", optimizer="adam", lr=0.01, epochs=4, batch_size=8, seed=11,
                validation_data=(X[:20], y[:20]))
        runs.append((_params(net), h.records))
    _assert_same(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    other = hg.MLP(2, [8], 3, seed=3)
    fit(other, X, y, "cross_entropy", optimizer="adam", lr=0.01, epochs=4, batch_size=8, seed=12)
    assert not np.array_equal(other.params["W1"], runs[0][0]["W1"])


def test_seed_none_is_drawn_and_recorded(rng):
    X, y = _regression(rng)
    a = hg.MLP(3, [4], 1, seed=0)
    h = fit(a, X, y, lr=0.05, epochs=2, seed=None)
    assert isinstance(h.seed, int)
    b = hg.MLP(3, [4], 1, seed=0)
    fit(b, X, y, lr=0.05, epochs=2, seed=h.seed)
    _assert_same(_params(a), _params(b))


def test_caller_arrays_are_not_modified(rng):
    X, y = _regression(rng)
    X.flags.writeable = False
    y.flags.writeable = False
    X0, y0 = X.copy(), y.copy()
    fit(hg.MLP(3, [4], 1, seed=rng), X, y, lr=0.05, epochs=2)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


# ====================================================================== metrics and history
def test_regression_history_has_loss_mse_mae_r2(rng):
    X, y = _regression(rng, n=200)
    net = hg.MLP(3, [16], 1, f="tanh", seed=rng)
    h = fit(net, X, y, "mse", optimizer="adam", lr=0.02, epochs=40, validation_data=(X[:50], y[:50]))
    assert set(h.final) == {"epoch", "lr", "loss", "mse", "mae", "r2", "val_loss", "val_mse", "val_mae", "val_r2"}
    assert h.final["loss"] == pytest.approx(h.final["mse"], rel=1e-6)
    assert h["r2"][-1] > 0.9 and h["loss"][-1] < h["loss"][0]
    assert h.best_epoch == int(np.argmin(h["val_loss"])) + 1
    with pytest.raises(KeyError, match="no 'accuracy' in the history"):
        h["accuracy"]
    assert History.from_dict(h.to_dict()) == h
    scores = evaluate(net, X[:50], y[:50], "mse")
    assert scores["loss"] == pytest.approx(h.final["val_loss"], rel=1e-6) and scores["r2"] == h.final["val_r2"]


def test_classification_history_and_prediction_helpers(rng):
    X, y = _classification(rng, n=150)
    net = hg.MLP(2, [16], 3, seed=rng)
    h = fit(net, X, y, "cross_entropy", optimizer="adam", lr=0.02, epochs=30, validation_data=(X, y))
    assert {"accuracy", "log_loss", "val_accuracy", "val_log_loss"} <= set(h.final)
    assert h.final["accuracy"] > 0.8
    # cross-entropy of the logits is the log-loss of the softmax probabilities
    assert h.final["loss"] == pytest.approx(h.final["log_loss"], rel=1e-5)
    proba = predict_proba(net, X, "cross_entropy")
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    labels = predict_labels(net, X, "cross_entropy")
    assert labels.shape == (150,) and np.mean(labels == y) == pytest.approx(h.final["accuracy"])


def test_fused_softmax_output_evaluated_from_the_logits(rng):
    X, y = _classification(rng)
    net = hg.MLP(2, [8], 3, g="softmax", seed=rng, dtype=np.float64)
    h = fit(net, X, y, "cross_entropy", lr=0.1, epochs=3)
    z = X
    for layer in net.layers[:-1]:
        z = layer.forward(z)
    logp = z - z.max(1, keepdims=True) - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True))
    assert h.final["loss"] == pytest.approx(-np.mean(logp[np.arange(len(y)), y]), rel=1e-10)


def test_binary_sigmoid_bce_the_seeds_classifier(rng):
    X, labels = _classification(rng, n=120, k=2)
    net = hg.TwoLayerNet(2, 8, 1, f="tanh", g="sigmoid", seed=rng)
    h = fit(net, X, labels, "bce", lr=0.5, epochs=30)
    assert h.final["accuracy"] > 0.85 and infer_task("bce") == "classification"
    assert predict_proba(net, X, "bce").shape == (120, 2)
    assert predict_labels(net, X, "bce").shape == (120,)
    assert predict(net, X).shape == (120, 1)


def test_train_metrics_false_records_mean_minibatch_loss(rng):
    X, y = _regression(rng)
    h = fit(hg.MLP(3, [4], 1, seed=rng), X, y, lr=0.05, epochs=2, train_metrics=False,
            validation_data=(X, y))
    assert set(h.final) == {"epoch", "lr", "loss", "val_loss", "val_mse", "val_mae", "val_r2"}


def test_schedule_sets_lr_per_epoch(rng):
    X, y = _regression(rng)
    h = fit(hg.MLP(3, [4], 1, seed=rng), X, y, lr=0.1, epochs=5, schedule=hg.optim.StepLR(2, 0.5))
    assert h["lr"] == [0.1, 0.1, 0.05, 0.05, 0.025]
    h = fit(hg.MLP(3, [4], 1, seed=rng), X, y, lr=0.1, epochs=3, schedule=lambda e: 1.0 / (e + 1))
    assert h["lr"] == pytest.approx([0.1, 0.05, 0.1 / 3])


def test_gradient_clipping_keeps_a_large_lr_finite(rng):
    X, y = _regression(rng)
    y = 100 * y
    net = hg.MLP(3, [8], 1, seed=rng)
    h = fit(net, X, y, lr=0.05, epochs=5, clip_grad_norm=1.0)
    assert all(math.isfinite(v) for v in h["loss"])


# ====================================================================== early stopping and callbacks
class _Recorder(Callback):
    def __init__(self, net):
        self.net, self.weights, self.calls = net, {}, []

    def on_train_begin(self, info):
        self.calls.append(("begin", info["epochs"]))

    def on_epoch_end(self, epoch, logs):
        self.weights[epoch] = _params(self.net)
        self.calls.append(("epoch", epoch, logs["loss"]))

    def on_train_end(self, history):
        self.calls.append(("end", len(history)))


def test_early_stopping_restores_best_weights(rng):
    X = rng.standard_normal((80, 2))
    y = X[:, 0]
    net = hg.MLP(2, [8], 1, seed=rng)
    rec = _Recorder(net)
    h = fit(net, X, y, lr=0.05, epochs=50, validation_data=(X, -y), early_stopping=True, patience=3,
            callbacks=[rec])
    assert h.stopped_early and "did not improve for 3 epochs" in h.stop_reason
    assert len(h) == h.best_epoch + 3 < 50
    _assert_same(_params(net), rec.weights[h.best_epoch])
    assert rec.calls[0] == ("begin", 50) and rec.calls[-1] == ("end", len(h))


def test_early_stopping_without_restore_keeps_last_weights(rng):
    X = rng.standard_normal((80, 2))
    net = hg.MLP(2, [8], 1, seed=rng)
    rec = _Recorder(net)
    h = fit(net, X, X[:, 0], lr=0.05, epochs=50, validation_data=(X, -X[:, 0]), early_stopping=True, patience=2,
            restore_best=False, callbacks=[rec])
    _assert_same(_params(net), rec.weights[len(h)])


def test_callback_can_stop_and_plain_functions_work(rng):
    X, y = _regression(rng)
    seen = []

    def stopper(epoch, logs):
        seen.append(epoch)
        return "stop" if epoch == 3 else None

    h = fit(hg.MLP(3, [4], 1, seed=rng), X, y, lr=0.05, epochs=10, callbacks=[stopper])
    assert len(h) == 3 and seen == [1, 2, 3] and h.stopped_early and "stopper" in h.stop_reason


# ====================================================================== progress
def test_progress_plain_lines_and_quiet(rng, capsys):
    X, y = _classification(rng)
    fit(hg.MLP(2, [4], 3, seed=rng), X, y, "cross_entropy", lr=0.1, epochs=3, progress=True,
        validation_data=(X, y))
    err = capsys.readouterr().err
    assert "epoch 1/3" in err and "epoch 3/3" in err and "loss" in err and "val_accuracy" in err
    fit(hg.MLP(2, [4], 3, seed=rng), X, y, "cross_entropy", lr=0.1, epochs=3, progress=False)
    assert capsys.readouterr() == ("", "")


# ====================================================================== validation at the boundary
def test_bad_inputs_rejected_with_clear_messages(rng):
    X, y = _regression(rng, n=10)
    net = hg.MLP(3, [4], 1, seed=rng)
    cases = [
        (dict(X=X[:, 0]), ValueError, "2-D"),
        (dict(X=np.where(np.arange(30).reshape(10, 3) == 4, np.nan, X)), ValueError, "NaN at row 1, column 1"),
        (dict(y=y[:9]), ValueError, r"shape \(10,\) or \(10, K\)"),
        (dict(X=X[:, :2]), ValueError, "has 2 features .* expects 3"),
        (dict(y=np.stack([y, y], 1)), ValueError, "2 column.* outputs 1"),
        (dict(y=np.where(np.arange(10) == 2, np.inf, y)), ValueError, "infinity"),
        (dict(X=X[:0], y=y[:0]), ValueError, "0 rows"),
        (dict(lr=-1.0), ValueError, "lr must be a finite positive"),
        (dict(lr="0.1"), TypeError, "lr must be"),
        (dict(epochs=-1), ValueError, "epochs must be an int >= 0"),
        (dict(epochs=2.0), TypeError, "epochs must be an int"),
        (dict(batch_size=0), ValueError, "batch_size must be an int >= 1"),
        (dict(seed="abc"), TypeError, "seed must be an int"),
        (dict(seed=1.5), TypeError, "seed must be an int"),
        (dict(task="regresion"), ValueError, "did you mean 'regression'"),
        (dict(optimizer="sgdd"), ValueError, "did you mean 'sgd'"),
        (dict(early_stopping=True), ValueError, "early_stopping needs validation_data"),
        (dict(validation_data=X), TypeError, "validation_data must be a pair"),
        (dict(clip_grad_norm=0), ValueError, "clip_grad_norm"),
    ]
    for overrides, exc, pattern in cases:
        kwargs = dict(X=X, y=y, epochs=1)
        kwargs.update(overrides)
        Xa, ya = kwargs.pop("X"), kwargs.pop("y")
        with pytest.raises(exc, match=pattern):
            fit(net, Xa, ya, **kwargs)
    with pytest.raises(TypeError, match="expected a handgrad network"):
        fit("net", X, y)


def test_cross_entropy_labels_checked(rng):
    X, y = _classification(rng)
    net = hg.MLP(2, [4], 3, seed=rng)
    with pytest.raises(ValueError, match="holds class 3, but the network has 3 outputs"):
        fit(net, X, np.where(y == 0, 3, y), "cross_entropy", epochs=1)
    with pytest.raises(ValueError, match="integer class indices"):
        fit(net, X, y + 0.5, "cross_entropy", epochs=1)
    with pytest.raises(TypeError, match="map class names to integers"):
        fit(net, X, np.array(["a"] * len(y)), "cross_entropy", epochs=1)
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 1\]"):
        fit(hg.MLP(2, [4], 1, g="sigmoid", seed=rng), X, y, "bce", epochs=1)


def test_optimizer_instance_and_lr_conflict(rng):
    X, y = _regression(rng)
    net = hg.MLP(3, [4], 1, seed=rng)
    with pytest.raises(ValueError, match="pass lr to the optimizer you built"):
        fit(net, X, y, optimizer=hg.optim.Adam(net), lr=0.1, epochs=1)
    with pytest.raises(ValueError, match="different network"):
        fit(net, X, y, optimizer=hg.optim.Adam(hg.MLP(3, [4], 1, seed=0)), epochs=1)
    h = fit(net, X, y, optimizer=hg.optim.SGD(net, lr=0.05, momentum=0.9), epochs=2)
    assert len(h) == 2


# ====================================================================== divergence
def test_T1_divergence_names_epoch_step_lr_and_keeps_finite_weights(rng):
    X, y = _regression(rng, n=64)
    net = hg.MLP(3, [32], 1, seed=rng)
    with pytest.raises(DivergenceError) as info:
        fit(net, 1e3 * X, 1e3 * y, lr=10.0, epochs=5, batch_size=16)
    msg = str(info.value)
    assert "epoch 1/5" in msg and "step" in msg and "lr=10" in msg and "smaller learning rate" in msg
    assert "last finite loss was" in msg
    assert all(np.isfinite(v).all() for v in net.params.values())
    assert isinstance(info.value.history, History)


def test_T2_non_finite_gradient_caught_before_the_update(rng):
    X, y = _regression(rng, n=32)
    seed = int(rng.integers(1 << 30))
    net = hg.MLP(3, [4], 1, seed=seed, dtype=np.float64)
    with pytest.raises(DivergenceError, match=r"epoch 2/3, step 1/4: the gradient of W1, b1, W2, b2 is non-finite"):
        fit(net, X, y, InfGradLoss(k=5), lr=0.05, epochs=3, batch_size=8, train_metrics=False)
    ref = hg.MLP(3, [4], 1, seed=seed, dtype=np.float64)
    fit(ref, X, y, "mse", lr=0.05, epochs=1, batch_size=8, train_metrics=False)  # the 4 good steps
    _assert_same(_params(net), _params(ref))


class _CorruptingSGD(hg.SGD):
    """Plain SGD whose k-th update writes an inf into W1: non-finite weights after a finite step."""

    def __init__(self, net, k):
        super().__init__(net, lr=0.05)
        self.k, self.calls = k, 0

    def step(self):
        super().step()
        self.calls += 1
        if self.calls == self.k:
            self.net.params["W1"][0, 0] = np.inf


def test_non_finite_weights_restored_to_the_start_of_the_epoch(rng):
    X, y = _regression(rng, n=32)
    net = hg.MLP(3, [8], 1, seed=rng, dtype=np.float64)
    rec = _Recorder(net)
    with pytest.raises(DivergenceError, match="epoch 2/3, step 3/4.*restored to their values at the start of epoch 2"):
        fit(net, X, y, optimizer=_CorruptingSGD(net, k=6), epochs=3, batch_size=8, callbacks=[rec])
    _assert_same(_params(net), rec.weights[1])


# ====================================================================== checkpoints and resume
_COMMON = dict(optimizer="adam", lr=0.01, batch_size=8, seed=5, schedule="cosine", train_metrics=True)
_EARLY = dict(early_stopping=True, patience=2, min_delta=0.02)  # stops at epoch 7, restores epoch 5


def _data_and_net(seed=0):
    r = np.random.default_rng(seed)
    X, y = _classification(r, n=60)
    return X, y, hg.MLP(2, [8], 3, seed=1)


def test_T7_resume_continues_bitwise(tmp_path):
    X, y, full = _data_and_net()
    h_full = fit(full, X, y, "cross_entropy", epochs=10, validation_data=(X[:20], y[:20]), **_COMMON, **_EARLY)
    path = tmp_path / "ckpt.safetensors"
    _, _, part = _data_and_net()
    with pytest.raises(KeyboardInterrupt):
        fit(part, X, y, "cross_entropy", epochs=10, validation_data=(X[:20], y[:20]), checkpoint=path,
            callbacks=[_interrupt_after(3)], **_COMMON, **_EARLY)
    assert load_checkpoint(path).epoch == 3
    _, _, resumed = _data_and_net()  # a fresh network: everything comes from the checkpoint
    h = fit(resumed, X, y, "cross_entropy", epochs=10, validation_data=(X[:20], y[:20]), resume=path,
            checkpoint=path, **_COMMON, **_EARLY)
    _assert_same(_params(full), _params(resumed))
    strip = lambda recs: [dict(r) for r in recs]  # noqa: E731
    assert strip(h.records) == strip(h_full.records) and h.best_epoch == h_full.best_epoch
    assert h.stopped_early == h_full.stopped_early and h.stop_reason == h_full.stop_reason
    assert load_checkpoint(path).epoch == len(h_full) and h_full.stopped_early and h_full.best_epoch < len(h_full)


def _interrupt_after(epoch):
    def callback(e, logs):
        if e == epoch + 1:
            raise KeyboardInterrupt
    return callback


def test_T8_resume_with_other_settings_or_architecture_refused(tmp_path):
    X, y, net = _data_and_net()
    path = tmp_path / "c"
    fit(net, X, y, "cross_entropy", epochs=2, checkpoint=path, **_COMMON)
    settings = dict(_COMMON, batch_size=16)
    with pytest.raises(ModelFileError, match="training settings differ: batch_size: checkpoint 8, now 16"):
        fit(_data_and_net()[2], X, y, "cross_entropy", epochs=4, resume=path, **settings)
    with pytest.raises(ModelFileError, match="data: checkpoint"):
        fit(_data_and_net()[2], X[:50], y[:50], "cross_entropy", epochs=4, resume=path, **_COMMON)
    with pytest.raises(ModelFileError, match="architecture differ"):
        fit(hg.MLP(2, [9], 3, seed=1), X, y, "cross_entropy", epochs=4, resume=path, **_COMMON)


class _InterruptingLoss(hg.CrossEntropyLoss):
    """Raises KeyboardInterrupt on the k-th call: Ctrl-C in the middle of an epoch."""

    def __init__(self, k):
        self.k, self.calls = k, 0

    def fused(self, y, z):
        self.calls += 1
        if self.calls == self.k:
            raise KeyboardInterrupt
        return super().fused(y, z)

    def _compute(self, y, z):
        return self.fused(y, z)

    def __repr__(self):
        return "CrossEntropyLoss()"


def test_T3_ctrl_c_mid_epoch_saves_last_finished_epoch_and_resumes(tmp_path):
    X, y, full = _data_and_net()
    fit(full, X, y, "cross_entropy", epochs=5, **_COMMON)
    path = tmp_path / "ckpt.safetensors"
    X, y, net = _data_and_net()
    steps_per_epoch, evals_per_epoch = 8, 1  # 60 rows / 8; train_metrics evaluates once per epoch
    k = 2 * (steps_per_epoch + evals_per_epoch) + 3  # in epoch 3, step 3
    with pytest.raises(KeyboardInterrupt) as info:
        fit(net, X, y, _InterruptingLoss(k), epochs=5, checkpoint=path, **_COMMON)
    msg = str(info.value)
    assert "interrupted during epoch 3/5" in msg and "epoch 2 is saved" in msg and "resume=" in msg
    ckpt = load_checkpoint(path)
    assert ckpt.epoch == 2 and len(ckpt.history["records"]) == 2
    _assert_same(_params(net), _params(ckpt.net))  # in memory: rolled back to the saved epoch
    fit(net, X, y, "cross_entropy", epochs=5, resume=path, **_COMMON)
    _assert_same(_params(full), _params(net))


def test_ctrl_c_without_checkpoint_says_nothing_was_saved(rng):
    X, y, net = _data_and_net()
    with pytest.raises(KeyboardInterrupt, match="nothing was saved"):
        fit(net, X, y, _InterruptingLoss(3), epochs=3, **_COMMON)


def test_no_checkpoint_written_from_a_diverged_state(tmp_path, rng):
    X, y = _regression(rng, n=64)
    net = hg.MLP(3, [32], 1, seed=rng)
    path = tmp_path / "c"
    with pytest.raises(DivergenceError):
        fit(net, 1e3 * X, 1e3 * y, lr=10.0, epochs=5, batch_size=16, checkpoint=path)
    if path.exists():
        ckpt = load_checkpoint(path)  # only finished, finite epochs
        assert all(np.isfinite(v).all() for v in ckpt.net.params.values())


def test_resume_of_a_finished_run_returns_its_history(tmp_path):
    X, y, net = _data_and_net()
    path = tmp_path / "c"
    h = fit(net, X, y, "cross_entropy", epochs=3, checkpoint=path, **_COMMON)
    again = _data_and_net()[2]
    h2 = fit(again, X, y, "cross_entropy", epochs=3, resume=path, **_COMMON)
    assert h2.records == h.records
    _assert_same(_params(again), _params(net))


# ====================================================================== real processes
_SCRIPT = textwrap.dedent("""
    import sys, time
    import numpy as np
    import handgrad as hg
    from handgrad.io import save_model
    from handgrad.train import fit

    mode, ckpt, out = sys.argv[1], sys.argv[2], sys.argv[3]
    r = np.random.default_rng(0)
    X = r.standard_normal((200, 4))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    net = hg.MLP(4, [16], 2, seed=1)
    slow = [lambda e, logs: time.sleep(0.3)] if mode == "slow" else []
    fit(net, X, y, "cross_entropy", optimizer="sgd", lr=0.1, epochs=12, batch_size=16, seed=3,
        checkpoint=None if mode == "plain" else ckpt, resume=ckpt if mode == "resume" else None, callbacks=slow)
    save_model(out, net)
""")


def _run(script, *args):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, str(script), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_epoch(path, proc, at_least=2, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists():
            try:
                if read_metadata(path)["checkpoint"]["epoch"] >= at_least:
                    return
            except ModelFileError:
                pass
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_training_process_resumes_to_the_same_weights(tmp_path, sig):
    script = tmp_path / "train_script.py"
    script.write_text(_SCRIPT)
    ckpt = tmp_path / "ckpt.safetensors"
    slow = _run(script, "slow", ckpt, tmp_path / "unused.safetensors")
    reference = _run(script, "plain", tmp_path / "none", tmp_path / "reference.safetensors")
    try:
        _wait_for_epoch(ckpt, slow)
        slow.send_signal(sig)
        _, err = slow.communicate(timeout=60)
    finally:
        if slow.poll() is None:
            slow.kill()
    assert slow.returncode != 0
    if sig == signal.SIGINT:
        assert "KeyboardInterrupt: training interrupted" in err and "resume=" in err
    epoch = load_checkpoint(ckpt).epoch
    assert 2 <= epoch < 12
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")] or sig == signal.SIGKILL
    resumed = _run(script, "resume", ckpt, tmp_path / "resumed.safetensors")
    assert resumed.wait(timeout=120) == 0, resumed.communicate()
    assert reference.wait(timeout=120) == 0, reference.communicate()
    a, _ = load_model(tmp_path / "reference.safetensors")
    b, _ = load_model(tmp_path / "resumed.safetensors")
    _assert_same(_params(a), _params(b))
    assert load_checkpoint(ckpt).epoch == 12


# ====================================================================== torch backend
def test_fit_on_torch_backend_matches_numpy(rng):
    pytest.importorskip("torch")
    X, y = _classification(rng)
    a = hg.MLP(2, [8], 3, seed=4, dtype=np.float64)
    b = hg.MLP(2, [8], 3, seed=4, dtype=np.float64).to("torch")
    ha = fit(a, X, y, "cross_entropy", optimizer="adam", lr=0.01, epochs=3, validation_data=(X, y))
    hb = fit(b, X, y, "cross_entropy", optimizer="adam", lr=0.01, epochs=3, validation_data=(X, y))
    assert b.backend.name == "torch"
    for k in a.params:
        np.testing.assert_allclose(b.params[k].numpy(), a.params[k], rtol=1e-9, atol=1e-12)
    assert hb.final["val_accuracy"] == ha.final["val_accuracy"]
    assert hb.final["loss"] == pytest.approx(ha.final["loss"], rel=1e-9)


def test_checkpoints_cost_a_small_share_of_a_run_of_fast_epochs(rng, tmp_path, monkeypatch):
    """Epochs far shorter than a checkpoint's write: the file is written after the first
    epoch, then only once the training since the last write is CHECKPOINT_RATIO times the
    write, and always after the last epoch; slow epochs are each saved."""
    import handgrad.io as hio
    import handgrad.train as T

    written = []
    real = hio.save_checkpoint

    def slow_save(path, ckpt):  # a write that takes 20 ms, like a real one with its fsync
        time.sleep(0.02)
        written.append(ckpt.epoch)
        return real(path, ckpt)

    monkeypatch.setattr(hio, "save_checkpoint", slow_save)
    X, y = _regression(rng, n=32)
    net = hg.MLP(3, [4], 1, seed=0)
    ckpt = tmp_path / "run.ckpt"
    fit(net, X, y, "mse", lr=0.01, epochs=60, batch_size=32, checkpoint=ckpt, train_metrics=False)
    assert written[0] == 1 and written[-1] == 60 and len(written) < 30, written
    assert load_checkpoint(ckpt).epoch == 60
    written.clear()
    sleepy = [lambda epoch, logs: time.sleep(T.CHECKPOINT_RATIO * 0.03)]  # epochs longer than 20 writes
    fit(hg.MLP(3, [4], 1, seed=0), X, y, "mse", lr=0.01, epochs=4, batch_size=32, checkpoint=tmp_path / "b.ckpt",
        train_metrics=False, callbacks=sleepy)
    assert written == [1, 2, 3, 4]
