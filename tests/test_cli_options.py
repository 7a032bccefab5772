"""Tests for the command line's help and options (handgrad/commands/*.py): help that tells the truth,
suggestions that name options that exist, clipping and schedules, the exists error, resuming."""

from __future__ import annotations

import argparse
import inspect
import json
import re

import pytest

from handgrad.cli import build_parser, main
from handgrad.commands import train as cmd
from handgrad.optim import OPTIMIZERS


def subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def help_of(command):
    return subparsers()[command].format_help()


def test_every_command_has_an_example():
    for name, p in subparsers().items():
        assert p.epilog and "handgrad " + name in p.epilog, f"'handgrad {name} --help' shows no example"


def test_every_documented_default_is_the_parsers_default():
    """'(default X)' in an option's help is the value argparse gives when the option is left out."""
    for name, p in subparsers().items():
        for action in p._actions:
            found = re.search(r"\(default:? ([^)]*)\)", action.help or "")
            if not found or action.default in (None, argparse.SUPPRESS) or isinstance(action.default, bool):
                continue
            text = found.group(1).split(";")[0].strip()
            if isinstance(action.default, (int, float)) and re.fullmatch(r"[-0-9.e]+", text):
                assert float(text) == float(action.default), (name, action.option_strings, text, action.default)
            elif isinstance(action.default, str) and " " not in text:
                assert text == action.default, (name, action.option_strings, text, action.default)


def test_learning_rate_defaults_are_the_optimizers_own():
    for name, lr in cmd.DEFAULT_LR.items():
        assert inspect.signature(OPTIMIZERS[name]).parameters["lr"].default == lr
    text = " ".join(help_of("train").split())
    assert "(default: 0.01 for sgd, 0.001 for adam)" in text


def test_epochs_help_matches_what_runs(capsys):
    text = " ".join(help_of("train").split())
    assert f"default: {cmd.HOMEWORK_PROFILE['epochs']} for the homework data" in text
    assert main(["train", "--epochs", "1", "-q"]) == 0  # the homework data's run, cut short
    ns = build_parser().parse_args(["train"])
    from handgrad.data import load_data

    ds = load_data("homework-regression")
    settings = cmd._settings(ns, ds, 180)
    assert settings["epochs"] == cmd.HOMEWORK_PROFILE["epochs"] and settings["lr"] == 0.01
    ns = build_parser().parse_args(["train", "--data", "moons"])
    assert cmd._settings(ns, load_data("moons"), 700)["epochs"] == cmd.MAX_DEFAULT_EPOCHS


def test_clip_and_schedule_reach_fit(monkeypatch, tmp_path, capsys):
    seen = {}
    from handgrad import train as train_module

    real_fit = train_module.fit

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(train_module, "fit", spy)  # fit is imported inside the handler, so the spy is what runs
    code = main(["train", "--data", "moons", "--epochs", "4", "-q", "--clip-grad-norm", "0.5", "--lr-schedule", "cosine",
                 "--out", str(tmp_path / "r")])
    assert code == 0 and seen["clip_grad_norm"] == 0.5 and seen["schedule"] == "cosine"
    lrs = [r["lr"] for r in json.loads((tmp_path / "r" / "history.json").read_text())["records"]]
    assert lrs[0] == pytest.approx(0.001) and lrs[-1] < lrs[0]


def test_bad_clip_value_is_a_usage_error(capsys):
    assert main(["train", "--clip-grad-norm", "0"]) == 2
    assert "--clip-grad-norm" in capsys.readouterr().err


def test_divergence_advice_works_when_followed(capsys):
    assert main(["train", "--lr", "1000", "-q"]) == 1
    err = capsys.readouterr().err
    assert "--clip-grad-norm 1.0" in err and "--lr 100" in err
    assert main(["train", "--lr", "1", "--clip-grad-norm", "1.0", "--epochs", "3", "-q"]) in (0, 1)
    assert "--clip-grad-norm 1.0" not in capsys.readouterr().err  # never suggested once given


def test_exists_error_offers_resume_only_when_it_would_work(tmp_path, capsys):
    out = str(tmp_path / "run")
    argv = ["train", "--data", "moons", "--epochs", "3", "-q", "--out", out]
    assert main(argv) == 0
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--force" in err and "another --out" in err and "--resume" in err
    assert main([*argv, "--epochs", "5", "--resume"]) == 0  # the offer works
    assert main([*argv, "--lr", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "--force" in err and "--resume" not in err  # the settings differ: resuming would fail


def test_a_resumed_run_says_so(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "--data", "moons", "--epochs", "3", "-q", "--out", out]) == 0
    capsys.readouterr()
    assert main(["train", "--data", "moons", "--epochs", "5", "--out", out, "--resume"]) == 0
    err = capsys.readouterr().err
    assert "resumed from" in err and "at epoch 3" in err


def test_convergence_warning_at_the_epoch_cap(capsys):
    assert main(["train", "--data", "moons", "--epochs", "5"]) == 0
    err = capsys.readouterr().err
    assert "warning: training ended at the epoch cap (5 epochs)" in err and "--epochs" in err


def test_wrote_goes_to_stderr(tmp_path, capsys):
    assert main(["train", "--epochs", "2", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr()
    assert "wrote" not in out.out and "wrote" in out.err


# ---------------------------------------------------------------------- evaluate
def test_evaluate_classifier_prints_and_records_per_class_scores(tmp_path, capsys):
    assert main(["train", "--data", "spirals", "--epochs", "5", "-q", "--out", str(tmp_path / "r")]) == 0
    assert main(["evaluate", str(tmp_path / "r"), "--data", "spirals", "--metrics-json", str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out
    assert "precision" in out and "confusion matrix" in out and "test split" in out
    e = json.loads((tmp_path / "e.json").read_text())
    C = e["confusion_matrix"]
    assert len(C) == 3 and sum(map(sum, C)) == e["n_samples"] == sum(e["per_class"]["support"])
    assert sum(C[k][k] for k in range(3)) / e["n_samples"] == pytest.approx(e["accuracy"])
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["test_classes"]["confusion_matrix"] == C


def test_evaluate_split_on_a_file_is_a_usage_error(tmp_path, capsys):
    assert main(["train", "--data", "moons", "--epochs", "2", "-q", "--out", str(tmp_path / "r")]) == 0
    assert main(["datasets", "--export", "moons", str(tmp_path / "moons.csv")]) == 0
    assert main(["evaluate", str(tmp_path / "r"), "--data", str(tmp_path / "moons.csv"), "--split", "test"]) == 2
    assert "scored whole" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "r"), "--data", str(tmp_path / "moons.csv")]) == 0
    assert "1000 samples" in capsys.readouterr().out


def test_evaluate_split_on_other_builtin_data_says_why(tmp_path, capsys):
    assert main(["train", "--data", "moons", "--epochs", "2", "-q", "--out", str(tmp_path / "r")]) == 0
    assert main(["evaluate", str(tmp_path / "r"), "--data", "circles"]) == 2
    assert "--split all" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "r"), "--data", "circles", "--split", "all"]) == 0


def test_wide_targets_keep_columns_apart(tmp_path, capsys, rng):
    path = tmp_path / "price.csv"
    X = rng.uniform(0, 1, size=(200, 2))
    y = 30000 + 20000 * X[:, 0] + 100 * rng.normal(size=200)
    path.write_text("a,b,price\n" + "".join(f"{a:.4f},{b:.4f},{v:.2f}\n" for (a, b), v in zip(X, y)))
    assert main(["train", "--data", str(path), "--epochs", "3", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("test"))
    assert len(row.split()) == 5, row  # the name and four numbers, each separated
    assert "units of 'price'" in out
    assert main(["predict", str(tmp_path / "r"), "--data", str(path)]) == 0
    values = capsys.readouterr().out.splitlines()[1:]
    assert all(len(v) <= 12 for v in values), values[:3]  # not 17 digits


def test_every_optimizer_is_at_the_top_level():
    import handgrad as hg

    for cls in OPTIMIZERS.values():
        assert getattr(hg, cls.__name__) is cls and cls.__name__ in hg.__all__
    net = hg.MLP(2, [3], 1, seed=0)
    assert isinstance(hg.Adam(net, lr=0.01), hg.Optimizer)


def test_architecture_mismatch_on_resume_reads_layer_by_layer(tmp_path, capsys):
    argv = ["train", "--data", "moons", "--epochs", "2", "-q", "--checkpoint", str(tmp_path / "c.safetensors")]
    assert main([*argv, "--hidden", "8"]) == 0
    assert main([*argv, "--hidden", "16", "--resume"]) == 1
    err = capsys.readouterr().err
    assert "the architecture differs: layer 0: checkpoint Linear(in_features=2, out_features=8" in err
    assert "{'type'" not in err


def test_one_feature_is_singular(capsys):
    assert main(["train", "--data", "sin", "--epochs", "1", "-q"]) == 0
    assert main(["train", "--data", "sin", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "1 feature," in out and "1 features" not in out


# ---------------------------------------------------------------------- --categorical auto
@pytest.fixture
def colours_csv(tmp_path, rng):
    rows = ["size,color,label"]
    for _ in range(150):
        color, size = rng.choice(["red", "green", "blue"]), rng.uniform()
        rows.append(f"{size:.3f},{color},{'yes' if (color == 'red') != (size > 0.5) else 'no'}")
    path = tmp_path / "colours.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_categorical_auto_one_hot_encodes_and_stores_the_categories(tmp_path, colours_csv, capsys):
    assert main(["train", "--data", str(colours_csv), "-q"]) == 1  # off: a text feature is an error
    assert "non-numeric value" in capsys.readouterr().err
    out = tmp_path / "run"
    assert main(["train", "--data", str(colours_csv), "--categorical", "auto", "--epochs", "40", "-q",
                 "--out", str(out)]) == 0
    from handgrad import load_predictor

    model = load_predictor(out / "model.safetensors")
    assert model.info["categories"] == {"color": ["blue", "green", "red"]}
    assert model.feature_names == ["size", "color=blue", "color=green", "color=red"]
    new = tmp_path / "new.csv"
    new.write_text("color,size\nred,0.2\npurple,0.9\npurple,0.1\n")  # column order differs; 'purple' is new
    assert main(["predict", str(out), "--data", str(new)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[:2] == ["label", "yes"]
    assert "'purple' (2 rows)" in captured.err and captured.err.count("\n") == 1
