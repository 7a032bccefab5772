"""Tests for handgrad/outputs.py: the one rule every written file follows, and each CLI option that writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from handgrad import outputs
from handgrad.cli import main
from handgrad.outputs import OutputError, check_output, lock_directory, write_bytes

FAST = ["--data", "xor", "--epochs", "2", "--hidden", "3", "-q"]


def run(argv):
    return main([str(a) for a in argv])


@pytest.fixture
def model_file(tmp_path):
    assert run(["train", *FAST, "--out", tmp_path / "run"]) == 0
    return tmp_path / "run" / "model.safetensors"


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


# ====================================================================== the rule, in the library
def test_new_path_is_written_and_existing_needs_force(tmp_path):
    path = tmp_path / "m.json"
    write_bytes(path, b"{}\n", kind="json")
    with pytest.raises(OutputError, match=r"m\.json' exists; pass --force"):
        write_bytes(path, b"[1]\n", kind="json")
    write_bytes(path, b"[1]\n", kind="json", force=True)
    assert path.read_bytes() == b"[1]\n"


def test_force_replaces_only_what_handgrad_wrote(tmp_path, model_file):
    csv = tmp_path / "data.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(OutputError, match="not written by handgrad as a json file"):
        write_bytes(csv, b"{}", kind="json", force=True)
    with pytest.raises(OutputError, match="not written by handgrad as a checkpoint file"):
        write_bytes(model_file, b"x", kind="checkpoint", force=True)  # a model never becomes a checkpoint
    png = tmp_path / "p.png"
    png.write_bytes(b"not a png")
    with pytest.raises(OutputError, match="png"):
        check_output(png, force=True)
    assert csv.read_text() == "a,b\n1,2\n"


@pytest.mark.parametrize("node", ["/dev/null", "fifo", "dir"])
def test_devices_fifos_and_directories_are_never_written(tmp_path, fifo, node):
    path = {"/dev/null": "/dev/null", "fifo": str(fifo), "dir": str(tmp_path)}[node]
    with pytest.raises(OutputError, match="character device|FIFO|directory"):
        write_bytes(path, b"{}", kind="json", force=True)
    assert os.path.exists(path)
    if node == "fifo":
        assert not os.path.isfile(path)


def test_symbolic_links_are_never_followed(tmp_path):
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"\x89PNG\r\n\x1a\nkeep")
    link = tmp_path / "plot.png"
    link.symlink_to(outside)
    dangling = tmp_path / "new.json"
    dangling.symlink_to(tmp_path / "nowhere.json")
    for path in (link, dangling):
        with pytest.raises(OutputError, match="symbolic link"):
            write_bytes(path, b"{}", force=True)
    assert outside.read_bytes() == b"\x89PNG\r\n\x1a\nkeep" and not (tmp_path / "nowhere.json").exists()


def test_an_input_is_never_an_output_even_under_another_name(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n")
    hard = tmp_path / "same.csv"
    os.link(data, hard)
    with pytest.raises(OutputError, match="also an input"):
        write_bytes(hard, b"x", kind="csv", force=True, inputs=[data])
    assert data.read_text() == "a,b\n1,2\n"


def test_missing_folder_and_bad_path_types(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        check_output(tmp_path / "no" / "x.json")
    with pytest.raises(TypeError, match="got bytes"):
        check_output(b"x.json")  # type: ignore[arg-type]


def test_library_plots_and_graphs_replace_links_not_their_targets(tmp_path):
    pytest.importorskip("matplotlib")
    from handgrad import plots

    outside = tmp_path / "keep.txt"
    outside.write_text("keep")
    link = tmp_path / "a.png"
    link.symlink_to(outside)
    with pytest.raises(OutputError, match="symbolic link"):
        plots.plot_softmax(link)
    assert outside.read_text() == "keep"


# ====================================================================== one run per --out
def test_lock_lets_one_run_in_and_refuses_the_second(tmp_path):
    with lock_directory(tmp_path / "out"):
        with pytest.raises(OutputError, match="in use by another handgrad run"):
            with lock_directory(tmp_path / "out"):
                pass
    with lock_directory(tmp_path / "out"):  # released when the first run ends
        pass


def test_concurrent_trainings_into_one_out_one_wins_the_other_is_told(tmp_path):
    out = tmp_path / "run"
    code = [None, None]
    entered = threading.Event()
    release = threading.Event()
    real = outputs.lock_directory

    def slow_lock(*a, **k):  # the first run holds the lock until the second has tried
        import contextlib

        @contextlib.contextmanager
        def held():
            with real(*a, **k) as folder:
                entered.set()
                release.wait(30)
                yield folder
        return held()

    def first():
        from unittest import mock

        with mock.patch.object(outputs, "lock_directory", slow_lock):
            code[0] = run(["train", *FAST, "--out", out])

    t = threading.Thread(target=first)
    t.start()
    assert entered.wait(30)
    code[1] = run(["train", *FAST, "--out", out])
    release.set()
    t.join(60)
    assert code == [0, 2]
    assert (out / "model.safetensors").is_file()
    assert run(["train", *FAST, "--out", out]) == 2  # and after it: the model exists, --force needed


# ====================================================================== every CLI option that writes
@pytest.mark.parametrize("option", ["--metrics-json", "--checkpoint"])
def test_train_outputs_refuse_devices_and_existing_files(tmp_path, option, capsys):
    assert run(["train", *FAST, option, "/dev/null"]) == 2
    assert "character device" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text('{"keep": 1}')
    assert run(["train", *FAST, option, other]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert other.read_text() == '{"keep": 1}'


def test_checkpoint_never_overwrites_the_training_data(tmp_path, capsys):
    data = tmp_path / "d.csv"
    rng = np.random.default_rng(0)
    data.write_text("a,b,y\n" + "".join(f"{a:.3f},{b:.3f},{int(a > b)}\n" for a, b in rng.normal(size=(30, 2))))
    before = data.read_bytes()
    assert run(["train", "--data", data, "--epochs", "2", "-q", "--checkpoint", data, "--force"]) == 2
    assert "also an input" in capsys.readouterr().err and data.read_bytes() == before


def test_loss_curve_symlink_in_out_is_not_followed(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    out.mkdir()
    target = tmp_path / "elsewhere.png"
    (out / "loss_curve.png").symlink_to(target)
    assert run(["train", *FAST, "--out", out, "--force"]) == 2
    assert "symbolic link" in capsys.readouterr().err and not target.exists()


def test_predict_output_is_never_the_data_or_a_device(tmp_path, model_file, capsys):
    data = tmp_path / "x.csv"
    data.write_text("x1,x2\n0,1\n1,0\n")
    before = data.read_bytes()
    assert run(["predict", model_file, "--data", data, "--output", data, "--force"]) == 2
    assert "also an input" in capsys.readouterr().err and data.read_bytes() == before
    assert run(["predict", model_file, "--data", data, "--output", "/dev/null"]) == 2
    out = tmp_path / "p.csv"
    assert run(["predict", model_file, "--data", data, "--output", out]) == 0
    assert run(["predict", model_file, "--data", data, "--output", out]) == 2
    assert run(["predict", model_file, "--data", data, "--output", out, "--force"]) == 0


def test_evaluate_metrics_json_is_saved_before_printing_and_refuses_the_model(tmp_path, model_file, capsys):
    assert run(["evaluate", model_file, "--data", "xor", "--metrics-json", model_file, "--force"]) == 2
    assert "also an input" in capsys.readouterr().err
    out = tmp_path / "m.json"
    assert run(["evaluate", model_file, "--data", "xor", "--metrics-json", out]) == 0
    assert json.loads(out.read_text())["task"] == "classification"


@pytest.mark.parametrize("argv", [
    ["plot", "softmax", "-o", "{f}"],
    ["graph", "--preset", "regression", "-o", "{f}"],
    ["explain", "-o", "{f}"],
    ["homework", "--only", "1.1(a)", "-o", "{f}"],
])
def test_teaching_commands_follow_the_rule(tmp_path, argv, capsys):
    if argv[0] == "plot":
        pytest.importorskip("matplotlib")
    name = {"plot": "p.png", "graph": "g.dot"}.get(argv[0], "e.txt")
    f = tmp_path / name
    args = [a.replace("{f}", str(f)) for a in argv]
    assert run(args) == 0 and f.is_file()
    assert run(args) == 2 and "pass --force" in capsys.readouterr().err
    assert run([*args, "--force"]) == 0
    link = tmp_path / ("l" + name)
    link.symlink_to(tmp_path / "target")
    assert run([a.replace(str(f), str(link)) for a in args] + ["--force"]) == 2
    assert not (tmp_path / "target").exists()


def test_check_template_refuses_a_device(capsys):
    assert run(["check", "--template", "/dev/null"]) == 2
    assert "character device" in capsys.readouterr().err


# ====================================================================== a closed standard output
@pytest.mark.slow
def test_train_piped_into_head_saves_everything_and_exits_quietly(tmp_path):
    out = tmp_path / "p"
    cmd = (f"{sys.executable} -m handgrad train --data moons --epochs 3 --out {out} | head -1; "
           "echo \"rc=${PIPESTATUS[0]}\"")
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=300)
    assert "rc=0" in proc.stdout, proc.stderr
    assert "Broken pipe" not in proc.stderr and "Error" not in proc.stderr
    assert (out / "model.safetensors").is_file() and (out / "metrics.json").is_file()


def test_emit_after_the_reader_left_is_silent(monkeypatch):
    class Gone:
        def write(self, _):
            raise BrokenPipeError

        def flush(self):
            raise BrokenPipeError

        def fileno(self):
            raise OSError("no descriptor")

    monkeypatch.setattr(sys, "stdout", Gone())
    monkeypatch.setattr(outputs, "_stdout_gone", False)
    outputs.emit("one")
    outputs.emit("two")  # nothing raised, nothing more tried
    assert outputs._stdout_gone
