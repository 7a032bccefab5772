"""Tests for handgrad/optional.py: one message for every missing optional package, simulated by hiding it."""

from __future__ import annotations

import builtins
import sys

import numpy as np
import pytest

from handgrad.cli import main
from handgrad.optional import EXTRAS, MissingDependencyError, available, require


def hide(monkeypatch, *names):
    """Make ``import name`` fail as it does when the package is not installed."""
    real_import = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.split(".")[0] in names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)


def test_require_returns_the_module():
    assert require("numpy.linalg", purpose="x") is np.linalg


def test_require_names_the_package_the_extra_and_the_purpose(monkeypatch):
    hide(monkeypatch, "matplotlib")
    with pytest.raises(MissingDependencyError) as info:
        require("matplotlib.figure", purpose="drawing a figure")
    err = info.value
    assert isinstance(err, ImportError) and err.package == "matplotlib" and err.extra == "plot"
    assert str(err) == ("drawing a figure needs matplotlib, which is not installed: pip install 'handgrad[plot]' "
                        "(or: pip install matplotlib)")


def test_none_in_sys_modules_reads_as_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingDependencyError, match=r"handgrad\[onnx\]"):
        require("onnx", purpose="ONNX export")
    assert not available("onnx")


def test_pip_names_differ_from_import_names(monkeypatch):
    hide(monkeypatch, "sklearn")
    with pytest.raises(MissingDependencyError, match=r"needs scikit-learn, .*handgrad\[sklearn\]"):
        require("sklearn.datasets", purpose="the digits data")


def test_every_extra_named_exists_in_pyproject():
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert set(EXTRAS.values()) <= set(extras), set(EXTRAS.values()) - set(extras)


@pytest.mark.parametrize("argv,package,extra", [
    (["plot", "activations", "-o", "{tmp}/a.png"], "matplotlib", "plot"),
    (["train", "--data", "digits", "--epochs", "1", "-q"], "sklearn", "sklearn"),
    (["playground", "--no-browser"], "starlette", "playground"),
])
def test_commands_say_one_line_with_the_extra(monkeypatch, capsys, tmp_path, argv, package, extra):
    hide(monkeypatch, package)
    code = main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err, err
    assert f"pip install 'handgrad[{extra}]'" in err and "Traceback" not in err


def test_export_without_onnx_names_the_extra(monkeypatch, capsys, tmp_path):
    assert main(["train", "--epochs", "2", "-q", "--out", str(tmp_path / "run")]) == 0
    hide(monkeypatch, "onnx")
    code = main(["export", str(tmp_path / "run"), "--onnx", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "pip install 'handgrad[onnx]'" in err and "\n" not in err
    assert not (tmp_path / "m.onnx").exists()
