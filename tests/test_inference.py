"""handgrad.inference: one output -> label rule, and the public Predictor."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from handgrad import load_predictor
from handgrad.data import Standardizer
from handgrad.errors import ModelFileError
from handgrad.inference import (
    OUTPUT_KINDS,
    Predictor,
    decide,
    labels,
    margin,
    output_kind,
    predict,
    predict_labels,
    predict_proba,
    probabilities,
)
from handgrad.io import save_model
from handgrad.model import MLP

KINDS = [k for k in OUTPUT_KINDS if k != "regression"]


# ---------------------------------------------------------------------- how outputs are read
@pytest.mark.parametrize("g,loss,kind", [
    ("softmax", "cross_entropy", "softmax"), ("log_softmax", None, "log_softmax"), ("sigmoid", "bce", "sigmoid"),
    ("sigmoid", "mse", "sigmoid"), ("identity", "cross_entropy", "logits"), ("identity", None, "logits"),
    ("identity", "bce_with_logits", "sigmoid_logits"), ("identity", "mse", "scores"), ("tanh", "mse", "scores"),
])
def test_output_kind_follows_the_output_layer_then_the_loss(g, loss, kind, rng):
    assert output_kind(MLP(2, 3, 2, g=g, seed=rng), loss) == kind


@pytest.mark.parametrize("kind", KINDS)
def test_one_output_labels_are_the_probability_threshold_and_the_margin_sign(kind, rng):
    out = rng.normal(0.5, 2.0, size=(200, 1))
    if kind == "log_softmax":
        out = -np.abs(out)  # log-probabilities are <= 0
    if kind in ("softmax", "sigmoid"):
        out = np.clip(out, 0.0, 1.0)
    p = probabilities(out, kind)
    assert p.shape == (200, 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    decided = labels(out, kind)
    np.testing.assert_array_equal(decided, (margin(out, kind)[:, 0] >= 0).astype(int))
    clear = np.abs(p[:, 1] - 0.5) > 1e-9  # away from the boundary, where rounding could tip p
    np.testing.assert_array_equal(decided[clear], (p[clear, 1] >= 0.5).astype(int))


def test_the_boundary_itself_is_class_one():
    # p = 0.5 exactly (z = 0 for logits) decides class 1, for every reading of one output
    assert labels(np.array([[0.0]]), "logits")[0] == 1
    assert labels(np.array([[0.0]]), "sigmoid_logits")[0] == 1
    assert labels(np.array([[0.5]]), "sigmoid")[0] == 1
    assert labels(np.array([[0.5]]), "scores")[0] == 1
    assert labels(np.array([[np.nextafter(0.5, 0)]]), "scores")[0] == 0


@pytest.mark.parametrize("kind", KINDS)
def test_one_class_among_k_is_the_argmax_of_the_probabilities(kind, rng):
    out = rng.normal(size=(100, 4))
    if kind == "sigmoid":
        out = 1 / (1 + np.exp(-out))
    if kind in ("softmax", "log_softmax"):
        out = out - np.log(np.exp(out).sum(axis=1, keepdims=True))
        out = np.exp(out) if kind == "softmax" else out
    if kind == "scores":
        out = rng.uniform(0.0, 1.0, size=(100, 4))  # clipping ties scores outside [0, 1]; the argmax of ŷ decides
    p = probabilities(out, kind)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_array_equal(labels(out, kind), np.argmax(p, axis=1))


def test_multilabel_outputs_decide_each_label_on_its_own(rng):
    out = rng.normal(size=(50, 3))
    decided = labels(out, "sigmoid_logits", multilabel=True)
    assert decided.shape == (50, 3)
    np.testing.assert_array_equal(decided, (out >= 0).astype(int))
    p = probabilities(out, "sigmoid_logits", multilabel=True)
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-out)))  # independent, not normalised


def test_plots_predict_and_the_estimators_decide_alike_for_an_identity_output(rng):
    # one identity output with no loss known: logits, class 1 where z >= 0 -- the boundary plots draw
    net = MLP(2, 8, 1, f="tanh", g="identity", seed=rng, dtype=np.float64)
    X = rng.normal(size=(300, 2))
    z = predict(net, X)[:, 0]
    index, score = decide(net, X)
    np.testing.assert_array_equal(index, (z >= 0).astype(int))
    np.testing.assert_allclose(score, z)
    np.testing.assert_array_equal(predict_labels(net, X), index)
    np.testing.assert_allclose(predict_proba(net, X)[:, 1], 1 / (1 + np.exp(-z)))
    # the same network trained with a squared loss on 0/1 targets reads its outputs as scores: boundary 0.5
    np.testing.assert_array_equal(predict_labels(net, X, loss="mse"), (z >= 0.5).astype(int))


# ---------------------------------------------------------------------- the Predictor
def _classifier(tmp_path, rng, *, loss="cross_entropy", g="softmax"):
    X = rng.normal(10.0, 3.0, size=(60, 3))
    net = MLP(3, 6, 3, g=g, seed=rng, dtype=np.float64)
    model = Predictor(net, task="classification", loss=loss, feature_names=["a", "b", "c"], target_name="kind",
                      class_labels=["x", "y", "z"], x_scaler=Standardizer().fit(X), g=g)
    path = model.save(tmp_path / "model.safetensors")
    return X, net, model, path


def test_predictor_takes_raw_rows_and_answers_with_class_labels(tmp_path, rng):
    X, net, model, path = _classifier(tmp_path, rng)
    loaded = load_predictor(path)
    scaled = (X - X.mean(axis=0)) / X.std(axis=0)
    expected = np.argmax(predict(net, scaled), axis=1)
    np.testing.assert_array_equal(loaded.predict(X), np.array(["x", "y", "z"])[expected])
    P = loaded.predict_proba(X)
    assert P.shape == (60, 3)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    np.testing.assert_allclose(P, predict(net, scaled), rtol=1e-12)
    index, _ = decide(loaded, X)
    np.testing.assert_array_equal(index, expected)


def test_predictor_scales_raw_rows_a_chunk_at_a_time(tmp_path, rng, monkeypatch):
    import handgrad.inference as inference

    X, net, model, _ = _classifier(tmp_path, rng)
    whole = model.outputs(X), model.metrics(X, np.arange(60) % 3)
    monkeypatch.setattr(inference, "INPUT_CHUNK", 7)  # 60 rows: 9 chunks, the last of 4 rows
    np.testing.assert_array_equal(model.outputs(X), whole[0])
    assert model.metrics(X, np.arange(60) % 3) == whole[1]
    net32 = MLP(3, 6, 3, seed=rng, dtype=np.float32)
    model32 = Predictor(net32, task="classification", loss="cross_entropy", feature_names=["a", "b", "c"],
                        class_labels=["x", "y", "z"], x_scaler=model.x_scaler)
    bad = X.copy()
    bad[45, 1] = 1e300  # beyond float32 after scaling: named by its row in the whole data, not in its chunk
    with pytest.raises(ValueError, match=r"row 45 \(0-based\), feature 'b'"):
        model32.outputs(bad)


def test_predictor_of_scores_has_labels_but_no_probabilities(tmp_path, rng):
    X, _, model, path = _classifier(tmp_path, rng, loss="mse", g="identity")
    loaded = load_predictor(path)
    assert loaded.output == "scores" and not loaded.has_probabilities
    assert set(loaded.predict(X)) <= {"x", "y", "z"}
    with pytest.raises(ValueError, match="not class probabilities"):
        loaded.predict_proba(X)


def test_regression_predictor_answers_in_the_target_units(tmp_path, rng):
    X = rng.normal(size=(40, 2))
    y = 100.0 + 20.0 * rng.normal(size=(40, 1))
    net = MLP(2, 4, 1, seed=rng, dtype=np.float64)
    y_scaler = Standardizer().fit(y)
    model = Predictor(net, task="regression", loss="mse", feature_names=["u", "v"], y_scaler=y_scaler)
    loaded = load_predictor(model.save(tmp_path / "r.safetensors"))
    np.testing.assert_allclose(loaded.predict(X), y_scaler.inverse_transform(predict(net, X)), rtol=1e-12)
    assert not loaded.has_probabilities


def test_predictor_load_raises_library_errors(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        load_predictor(tmp_path / "missing.safetensors")
    bare = tmp_path / "bare.safetensors"
    save_model(bare, MLP(2, 3, 1, seed=rng), {"note": "no training metadata"})
    with pytest.raises(ModelFileError, match="was not saved by 'handgrad train'"):
        load_predictor(bare)


@pytest.mark.slow
def test_the_library_never_imports_the_command_line():
    code = ("import sys, handgrad, handgrad.inference, handgrad.train, handgrad.data, handgrad.sklearn, "
            "handgrad.io, handgrad.validation; "
            "print(sorted(m for m in sys.modules if m == 'handgrad.cli' or m.startswith('handgrad.commands')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
