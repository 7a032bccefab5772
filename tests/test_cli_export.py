"""Tests for ``handgrad export`` (handgrad/commands/export.py) and ``handgrad datasets --export``: the exported
graphs take raw rows (the scaling is inside), checked in onnxruntime and torch.export against ``predict``."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from handgrad import load_predictor
from handgrad.cli import main


def train(tmp_path, *argv):
    out = tmp_path / "run"
    assert main(["train", *argv, "--epochs", "5", "-q", "--out", str(out)]) == 0
    return out


def raw_rows(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return np.array([[float(v) for v in row[:-1]] for row in rows[1:]])


@pytest.fixture
def wide_csv(tmp_path, rng):
    """Raw features far from standardised (means in the thousands), a target in the tens of thousands."""
    X = rng.normal([5000.0, -20.0, 0.01], [800.0, 3.0, 0.002], size=(150, 3))
    y = 30000 + 2 * X[:, 0] + 500 * X[:, 1] + rng.normal(0, 50, size=150)
    path = tmp_path / "wide.csv"
    path.write_text("a,b,c,price\n" + "".join(f"{a:.17g},{b:.17g},{c:.17g},{v:.17g}\n" for (a, b, c), v in zip(X, y)))
    return path


def test_onnx_export_takes_raw_rows(tmp_path, wide_csv):
    ort = pytest.importorskip("onnxruntime")
    out = train(tmp_path, "--data", str(wide_csv))
    assert main(["export", str(out), "--onnx", str(tmp_path / "m.onnx")]) == 0  # the model's own dtype
    X = raw_rows(wide_csv)
    model = load_predictor(out / "model.safetensors")
    want = model.predict(X)
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"x": X.astype(model.net.dtype)})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=0)
    standardised_only = model.net.forward(X.astype(model.net.dtype))  # the network alone, fed raw rows
    assert np.abs(np.asarray(standardised_only) - want).max() > 1  # so the scaling in the graph is what matters


def test_onnx_export_of_a_classifier_gives_its_probabilities(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    out = train(tmp_path, "--data", "spirals")
    csv_path = tmp_path / "spirals.csv"
    assert main(["datasets", "--export", "spirals", str(csv_path), "-q"]) == 0
    assert main(["export", str(out), "--onnx", str(tmp_path / "m.onnx"), "--dtype", "float64"]) == 0
    X = raw_rows(csv_path)
    proba = load_predictor(out / "model.safetensors").predict_proba(X)
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"x": X})[0]
    np.testing.assert_allclose(got, proba, atol=1e-5)


def test_torch_export_takes_raw_rows(tmp_path, wide_csv):
    torch = pytest.importorskip("torch")
    out = train(tmp_path, "--data", str(wide_csv))
    assert main(["export", str(out), "--torch", str(tmp_path / "m.pt2")]) == 0
    X = raw_rows(wide_csv)
    model = load_predictor(out / "model.safetensors")
    module = torch.export.load(str(tmp_path / "m.pt2")).module()
    got = module(torch.as_tensor(X.astype(model.net.dtype))).detach().numpy()
    np.testing.assert_allclose(got, model.predict(X), rtol=1e-5, atol=0)


def test_export_needs_a_target(tmp_path, capsys):
    out = train(tmp_path)
    assert main(["export", str(out)]) == 2
    assert "--onnx FILE" in capsys.readouterr().err


def test_readme_predict_example_works_as_written(tmp_path, capsys, monkeypatch):
    """README: train with --out, write new.csv with 'datasets --export', then 'predict --data new.csv'."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "moons", "--epochs", "3", "-q", "--out", "runs/moons"]) == 0
    assert main(["datasets", "--export", "moons", "new.csv"]) == 0
    assert "wrote new.csv (1000 rows, 2 features" in capsys.readouterr().err
    assert main(["predict", "runs/moons/model.safetensors", "--data", "new.csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "class" and len(lines) == 1001 and set(lines[1:]) <= {"0", "1"}


def test_datasets_export_rejects_unknown_names_and_non_csv(tmp_path, capsys):
    assert main(["datasets", "--export", "moonz", str(tmp_path / "a.csv")]) == 2
    assert "did you mean 'moons'" in capsys.readouterr().err
    assert main(["datasets", "--export", "moons", str(tmp_path / "a.txt")]) == 2
