"""Tests for ``handgrad train | evaluate | predict | datasets`` (handgrad/commands/train.py), through cli.main."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from handgrad import train as train_module
from handgrad.cli import main
from handgrad.inference import load_predictor

FAST = ["--epochs", "5", "-q"]


def run(argv, capsys=None):
    code = main([str(a) for a in argv])
    out = capsys.readouterr() if capsys is not None else None
    return code, out


def metrics_of(tmp_path, argv, name="m.json"):
    path = tmp_path / name
    code, _ = run([*argv, "--metrics-json", path])
    assert code == 0
    return json.loads(path.read_text())


@pytest.fixture
def species_csv(tmp_path, rng):
    """Three Gaussian blobs with a text target, the way a user's CSV arrives."""
    centers = {"setosa": (0, 0, 0), "versicolor": (3, 3, 0), "virginica": (0, 3, 3)}
    path = tmp_path / "flowers.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["a", "b", "c", "species"])
        for i in range(90):
            label = list(centers)[i % 3]
            w.writerow([*(f"{v:.4f}" for v in rng.normal(centers[label], 0.7)), label])
    return path


# ---------------------------------------------------------------------- the README's main command
def test_train_without_arguments_trains_the_seed_network(capsys):
    code, out = run(["train"], capsys)
    assert code == 0
    assert "2 -> 16 -> 1, f = 5relu, g = identity" in out.out
    assert "loss squared_error" in out.out and "SGD(lr=0.01)" in out.out
    test_row = next(line for line in out.out.splitlines() if line.startswith("test"))
    r2 = float(test_row.split()[-1])
    assert r2 > 0.99, out.out


def test_metrics_json_layout_regression(tmp_path):
    m = metrics_of(tmp_path, ["train", *FAST])
    assert m["task"] == "regression"
    for split in ("train", "validation", "test"):
        assert set(m[split]) >= {"loss", "mse", "mae", "r2"}
        assert all(np.isfinite(v) for v in m[split].values())
    assert m["epochs"] == 5


def test_same_seed_same_metrics_other_seed_differs(tmp_path):
    argv = ["train", "--data", "moons", *FAST]
    a = metrics_of(tmp_path, argv, "a.json")
    b = metrics_of(tmp_path, argv, "b.json")
    c = metrics_of(tmp_path, [*argv, "--seed", "1"], "c.json")
    assert a == b
    assert a != c


# ---------------------------------------------------------------------- classification from a user's CSV
def test_csv_with_text_target_trains_evaluates_predicts(tmp_path, species_csv, capsys):
    out_dir = tmp_path / "run"
    code, out = run(["train", "--data", species_csv, "--target", "species", "--epochs", "40", "--out", out_dir], capsys)
    assert code == 0, out.err
    assert "4 -> 64 -> 3" not in out.out and "3 -> 64 -> 3, f = relu, g = softmax" in out.out
    assert {p.name for p in out_dir.iterdir()} >= {"model.safetensors", "metrics.json", "checkpoint.safetensors"}
    m = json.loads((out_dir / "metrics.json").read_text())
    assert m["task"] == "classification" and m["test"]["accuracy"] >= 0.9

    model = out_dir / "model.safetensors"
    code, out = run(["evaluate", model, "--data", species_csv, "--metrics-json", tmp_path / "e.json"], capsys)
    assert code == 0 and "accuracy" in out.out
    e = json.loads((tmp_path / "e.json").read_text())
    assert e["n_samples"] == 90 and e["accuracy"] >= 0.9

    code, out = run(["predict", model, "--data", species_csv, "--proba"], capsys)
    assert code == 0
    rows = list(csv.reader(out.out.splitlines()))
    assert rows[0] == ["species", "p_setosa", "p_versicolor", "p_virginica"]
    assert len(rows) == 91 and {r[0] for r in rows[1:]} <= {"setosa", "versicolor", "virginica"}
    np.testing.assert_allclose([sum(map(float, r[1:])) for r in rows[1:]], 1.0, atol=1e-5)
    truth = [r[3] for r in csv.reader(open(species_csv))][1:]
    assert np.mean([p[0] == t for p, t in zip(rows[1:], truth)]) == pytest.approx(e["accuracy"])


def test_save_load_predict_gives_identical_outputs(tmp_path, species_csv, capsys):
    out_dir = tmp_path / "run"
    assert run(["train", "--data", species_csv, "--target", "species", *FAST, "--out", out_dir])[0] == 0
    model = out_dir / "model.safetensors"
    assert run(["predict", model, "--data", species_csv, "--output", tmp_path / "p1.csv", "--proba"])[0] == 0
    assert run(["predict", model, "--data", species_csv, "--output", tmp_path / "p2.csv", "--proba"])[0] == 0
    assert (tmp_path / "p1.csv").read_bytes() == (tmp_path / "p2.csv").read_bytes()
    loaded = load_predictor(model)
    X = np.loadtxt(species_csv, delimiter=",", skiprows=1, usecols=(0, 1, 2))
    proba = np.array([[float(v) for v in r[1:]] for r in list(csv.reader(open(tmp_path / "p1.csv")))[1:]])
    np.testing.assert_allclose(proba, loaded.predict_proba(X), rtol=1e-5, atol=1e-7)
    assert loaded.class_labels == ["setosa", "versicolor", "virginica"]
    predicted = [r[0] for r in list(csv.reader(open(tmp_path / "p1.csv")))[1:]]
    assert list(loaded.predict(X)) == predicted  # raw rows in, labels out: the scaling travels with the model


def test_predict_writes_its_csv_a_chunk_at_a_time(tmp_path, species_csv, capsys, monkeypatch):
    import handgrad.commands.predict as predict_command

    out_dir = tmp_path / "run"
    assert run(["train", "--data", species_csv, "--target", "species", *FAST, "--out", out_dir])[0] == 0
    model = out_dir / "model.safetensors"
    argv = ["predict", model, "--data", species_csv, "--proba"]
    assert run([*argv, "--output", tmp_path / "whole.csv"])[0] == 0
    whole = run(argv, capsys)[1].out
    monkeypatch.setattr(predict_command, "CSV_CHUNK_ROWS", 7)  # 90 rows: 13 chunks, the last of 6
    assert run([*argv, "--output", tmp_path / "chunked.csv"])[0] == 0
    assert (tmp_path / "chunked.csv").read_text() == (tmp_path / "whole.csv").read_text() == whole
    assert run(argv, capsys)[1].out == whole and whole.count("\n") == 91
    code, out = run([*argv, "--output", tmp_path / "chunked.csv"], capsys)  # refused before the data is read
    assert code != 0 and "exists; pass --force" in out.err


def test_evaluate_matches_the_test_metrics_of_training(tmp_path, capsys):
    out_dir = tmp_path / "run"
    assert run(["train", "--data", "sin", *FAST, "--out", out_dir, "--test-fraction", "0.2"])[0] == 0
    m = json.loads((out_dir / "metrics.json").read_text())
    for split in ("train", "validation", "test"):  # the same rows training scored: the split is in the model file
        code, _ = run(["evaluate", out_dir, "--data", "sin", "--split", split, "--metrics-json", tmp_path / f"{split}.json"])
        s = json.loads((tmp_path / f"{split}.json").read_text())
        assert code == 0 and s["split"].startswith(split)
        for key in ("n_samples", "loss", "mse", "mae", "r2"):
            assert s[key] == pytest.approx(m[split][key], rel=1e-9), (split, key)
    code, out = run(["evaluate", out_dir / "model.safetensors", "--data", "sin", "--metrics-json", tmp_path / "t.json"])
    assert json.loads((tmp_path / "t.json").read_text())["n_samples"] == m["test"]["n_samples"]  # test by default
    code, out = run(["evaluate", out_dir / "model.safetensors", "--data", "sin", "--split", "all",
                     "--metrics-json", tmp_path / "e.json"])
    e = json.loads((tmp_path / "e.json").read_text())
    assert e["n_samples"] == 1000 and set(e) >= {"loss", "mse", "mae", "r2"} and e["units"]["mae"] == "target units"
    n = [m[s]["n_samples"] for s in ("train", "validation", "test")]
    pooled = sum(m[s]["mse"] * k for s, k in zip(("train", "validation", "test"), n)) / sum(n)
    assert e["mse"] == pytest.approx(pooled, rel=1e-6)


def test_regression_predict_writes_values_in_target_units(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(120, 2))
    path = tmp_path / "r.csv"
    with open(path, "w") as fh:
        fh.write("u,v,price\n" + "".join(f"{a},{b},{1000 + 300 * a - 200 * b}\n" for a, b in X))
    out_dir = tmp_path / "run"
    assert run(["train", "--data", path, "--target", "price", "--epochs", "60", "-q", "--out", out_dir])[0] == 0
    code, out = run(["predict", out_dir / "model.safetensors", "--data", path], capsys)
    rows = list(csv.reader(out.out.splitlines()))
    assert rows[0] == ["price"]
    pred = np.array([float(r[0]) for r in rows[1:]])
    assert np.abs(pred - (1000 + 300 * X[:, 0] - 200 * X[:, 1])).mean() < 40  # in dollars, not standardised units
    code, out = run(["predict", out_dir / "model.safetensors", "--data", path, "--proba"], capsys)
    assert code == 2 and "--proba applies to classification" in out.err


def test_npz_data_and_integer_target(tmp_path, rng):
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    path = tmp_path / "d.npz"
    np.savez(path, X=X, y=y)
    m = metrics_of(tmp_path, ["train", "--data", path, "--epochs", "20", "-q"])
    assert m["task"] == "classification" and "accuracy" in m["test"]


# ---------------------------------------------------------------------- the seed's networks and defaults
def test_seed_classification_network_trains_on_xor(tmp_path):
    m = metrics_of(tmp_path, ["train", "--data", "xor", "--f", "tanh", "--g", "sigmoid", "--loss", "bce",
                              "--epochs", "60", "-q"])
    assert m["test"]["accuracy"] >= 0.95


def test_squared_loss_classification_with_tanh_sigmoid(tmp_path):
    m = metrics_of(tmp_path, ["train", "--data", "moons", "--f", "tanh", "--g", "sigmoid", "--loss", "squared_error",
                              "--epochs", "120", "-q"])
    assert m["test"]["accuracy"] >= 0.9 and "log_loss" in m["test"]


@pytest.mark.parametrize("argv,expected", [
    (["--data", "moons"], "2 -> 64 -> 1, f = relu, g = sigmoid"),
    (["--data", "spirals"], "2 -> 64 -> 3, f = relu, g = softmax"),
    (["--data", "sin"], "1 -> 64 -> 1, f = relu, g = identity"),
    (["--data", "moons", "--loss", "cross_entropy"], "2 -> 64 -> 2, f = relu, g = softmax"),
    (["--data", "moons", "--loss", "bce_with_logits"], "2 -> 64 -> 1, f = relu, g = identity"),
    (["--data", "spirals", "--hidden", "8", "--hidden", "4", "--f", "gelu"], "2 -> 8 -> 4 -> 3, f = gelu"),
])
def test_network_defaults_follow_the_task(capsys, argv, expected):
    code, out = run(["train", *argv, "--epochs", "1"], capsys)
    assert code == 0 and expected in out.out, out.out


def test_datasets_command_lists_builtins(capsys):
    code, out = run(["datasets"], capsys)
    assert code == 0
    for name in ("homework_regression", "sin", "friedman", "moons", "circles", "spirals", "xor", "digits", "iris", "diabetes"):
        assert f"\n{name} " in out.out


# ---------------------------------------------------------------------- output directory
def test_out_refuses_to_overwrite_without_force(tmp_path, capsys):
    out_dir = tmp_path / "run"
    assert run(["train", *FAST, "--out", out_dir])[0] == 0
    code, out = run(["train", *FAST, "--out", out_dir], capsys)
    assert code == 2 and "pass --force" in out.err
    assert run(["train", *FAST, "--out", out_dir, "--force"])[0] == 0


def test_missing_matplotlib_only_skips_the_plot(tmp_path, capsys, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    code, out = run(["train", "--epochs", "3", "--out", tmp_path / "run"], capsys)
    assert code == 0
    notes = [line for line in out.err.splitlines() if "not installed" in line]
    assert len(notes) == 1 and "pip install 'handgrad[plot]'" in notes[0] and "everything else" in notes[0]
    for name in ("model.safetensors", "metrics.json", "history.csv", "history.json"):
        assert (tmp_path / "run" / name).exists(), name
    assert not (tmp_path / "run" / "loss_curve.png").exists()


def test_zero_epochs_saves_the_initial_weights_and_their_metrics(tmp_path, capsys):
    code, out = run(["train", "--data", "moons", "--epochs", "0", "--out", tmp_path / "run"], capsys)
    assert code == 0 and "trained 0 epochs" in out.out and "no loss curve" in out.err
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["epochs"] == 0 and 0.0 <= m["test"]["accuracy"] <= 1.0
    assert run(["evaluate", tmp_path / "run" / "model.safetensors", "--data", "moons"], capsys)[0] == 0


def test_loss_curve_plot_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    assert run(["train", *FAST, "--out", tmp_path / "run"])[0] == 0
    assert (tmp_path / "run" / "loss_curve.png").stat().st_size > 1000


# ---------------------------------------------------------------------- bad input: one line, right exit code
@pytest.mark.parametrize("argv,code,message", [
    (["train", "--data", "nope.csv"], 2, "no such file: 'nope.csv'"),
    (["train", "--data", "moonz"], 2, "did you mean the built-in dataset 'moons'"),
    (["train", "--lr", "-1"], 2, "--lr must be a finite positive number"),
    (["train", "--hidden", "0"], 2, "--hidden must be an int >= 1"),
    (["train", "--epochs", "-1"], 2, "--epochs must be an int >= 0"),  # the rule of fit(epochs=...)
    (["train", "--seed", "-1"], 2, "--seed must be an int >= 0"),
    (["train", "--momentum", "1"], 2, "--momentum must be in [0, 1)"),
    (["train", "--f", "rleu"], 2, "unknown activation 'rleu'"),
    (["train", "--optimizer", "adamw"], 2, "unknown optimizer"),
    (["train", "--loss", "cross_entropy"], 2, "is for classification"),
    (["train", "--data", "moons", "--loss", "bce", "--g", "softmax"], 2, "--loss bce takes probabilities"),
    (["train", "--val-fraction", "0.6", "--test-fraction", "0.5"], 2, "must be below 1"),
    (["train", "--resume", "/nonexistent/ckpt.safetensors"], 2, "no checkpoint at"),
    (["train", "--data", "moons", "--target", "y"], 2, "--target applies to files"),
    (["train", "--task", "classification"], 2, "is a regression dataset, not classification"),
])
def test_bad_options(capsys, argv, code, message):
    got, out = run(argv, capsys)
    assert got == code, out.err
    assert message in out.err and len(out.err.strip().splitlines()) == 1 and "Traceback" not in out.err


def test_bad_files_name_file_column_and_line(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,label\n1,2,x\n3,abc,y\n")
    code, out = run(["train", "--data", path], capsys)
    assert code == 1 and "non-numeric value 'abc' at line 3, column 'b'" in out.err and "bad.csv" in out.err
    code, out = run(["train", "--data", path, "--target", "lable"], capsys)
    assert code == 1 and "columns: a, b, label" in out.err
    path.write_text("a,b,label\n")
    code, out = run(["train", "--data", path], capsys)
    assert code == 1 and "no data rows" in out.err
    code, out = run(["train", "--data", tmp_path], capsys)
    assert code == 2 and "is a directory" in out.err


def test_single_class_target_is_refused(tmp_path, capsys):
    path = tmp_path / "one.csv"
    path.write_text("a,label\n1,x\n2,x\n3,x\n4,x\n5,x\n6,x\n")
    code, out = run(["train", "--data", path], capsys)
    assert code == 1 and "single class" in out.err


def test_argparse_errors_exit_2():
    with pytest.raises(SystemExit) as exc:
        main(["train", "--epochs", "many"])
    assert exc.value.code == 2


def test_debug_shows_the_traceback():
    with pytest.raises(ValueError, match="no such file: 'nope.csv'"):  # cli.UsageError, raised instead of printed
        main(["--debug", "train", "--data", "nope.csv"])


def test_evaluate_and_predict_errors(tmp_path, species_csv, capsys):
    code, out = run(["evaluate", tmp_path / "none.safetensors", "--data", "moons"], capsys)
    assert code == 2 and "no such model file" in out.err
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 40)
    code, out = run(["predict", junk, "--data", "moons"], capsys)
    assert code == 1 and "junk.safetensors" in out.err and "Traceback" not in out.err
    out_dir = tmp_path / "run"
    assert run(["train", "--data", species_csv, "--target", "species", *FAST, "--out", out_dir])[0] == 0
    model = out_dir / "model.safetensors"
    other = tmp_path / "other.csv"
    other.write_text("a,b,species\n1,2,setosa\n")
    code, out = run(["predict", model, "--data", other], capsys)
    assert code == 1 and "lacks the model's feature column(s) 'c'" in out.err
    other.write_text("a,b,c,species\n1,2,3,tulip\n")
    code, out = run(["evaluate", model, "--data", other], capsys)
    assert code == 1 and "label 'tulip' at line 2" in out.err
    other.write_text("c,a,b\n1,2,3\n")  # reordered columns, no target: predict matches by name
    code, out = run(["predict", model, "--data", other], capsys)
    assert code == 0 and out.out.splitlines()[0] == "species"
    code, out = run(["evaluate", model, "--data", other], capsys)
    assert code == 2 and "no target column 'species'" in out.err


# ---------------------------------------------------------------------- Ctrl-C and resume
def test_interrupt_saves_and_resume_reaches_the_uninterrupted_metrics(tmp_path, capsys, monkeypatch):
    argv = ["train", "--data", "moons", "--epochs", "8", "--no-early-stopping", "-q"]
    full = metrics_of(tmp_path, argv, "full.json")

    real_epoch = train_module._Run.train_epoch

    def interrupting(self, epoch):
        if epoch == 5:
            raise KeyboardInterrupt
        return real_epoch(self, epoch)

    monkeypatch.setattr(train_module._Run, "train_epoch", interrupting)
    ckpt = tmp_path / "ck.safetensors"
    code, out = run([*argv, "--checkpoint", ckpt], capsys)
    assert code == 130
    assert f"epoch 4 is saved in {ckpt}" in out.err and "--resume" in out.err
    monkeypatch.setattr(train_module._Run, "train_epoch", real_epoch)
    resumed = metrics_of(tmp_path, [*argv, "--checkpoint", ckpt, "--resume"], "resumed.json")
    assert resumed == full


def test_default_run_keeps_no_temporary_checkpoint(tmp_path, monkeypatch):
    from handgrad.commands import train as cmd

    monkeypatch.setattr(cmd, "_scratch_dir", lambda: str(tmp_path))
    assert run(["train", *FAST])[0] == 0
    assert list(tmp_path.iterdir()) == []


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env.pop("PYTHONWARNINGS", None)
    return env


@pytest.mark.slow
def test_python_m_handgrad_train_smoke(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "handgrad", "train", "--epochs", "20", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120, env=_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "test" in proc.stdout and "wrote" not in proc.stdout and "model.safetensors (model)" in proc.stderr


@pytest.mark.slow
def test_sigint_in_a_real_process_then_resume(tmp_path):
    out_dir = tmp_path / "run"
    argv = [sys.executable, "-m", "handgrad", "train", "--data", "moons", "--epochs", "3000", "--no-early-stopping",
            "--out", str(out_dir)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path)
    ckpt = out_dir / "checkpoint.safetensors"
    deadline = time.monotonic() + 60
    while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted; epoch" in err and "resume with: handgrad train" in err and "Traceback" not in err
    from handgrad.io import load_checkpoint

    done = load_checkpoint(str(ckpt)).epoch
    assert 1 <= done < 3000
    resume = subprocess.run([*argv[:7], str(done + 2), *argv[8:], "--resume"], capture_output=True, text=True,
                            timeout=120, env=_env(), cwd=tmp_path)
    assert resume.returncode == 0, resume.stderr
    assert json.loads((out_dir / "metrics.json").read_text())["epochs"] == done + 2


# ---------------------------------------------------------------------- documented accuracy (a few seconds each)
@pytest.mark.slow
@pytest.mark.parametrize("data,key,bar", [("moons", "accuracy", 0.97), ("sin", "r2", 0.98), ("digits", "accuracy", 0.97)])
def test_documented_commands_reach_their_figures(tmp_path, data, key, bar):
    if data == "digits":
        pytest.importorskip("sklearn")
    m = metrics_of(tmp_path, ["train", "--data", data, "-q"])
    assert m["test"][key] >= bar, m["test"]


def test_divergence_is_one_line_exit_1_and_leaves_no_temporary_file(tmp_path, capsys, monkeypatch):
    from handgrad.commands import train as cmd

    monkeypatch.setattr(cmd, "_scratch_dir", lambda: str(tmp_path))
    code, out = run(["train", "--lr", "50", "-q"], capsys)
    assert code == 1 and "training diverged at epoch 1" in out.err and "smaller --lr (e.g. --lr 5)" in out.err
    assert "clip_grad_norm" not in out.err and "--clip-grad-norm 1.0" in out.err  # an option that exists here
    assert len(out.err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
