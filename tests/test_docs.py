"""The tutorial runs: every ```python block of docs/tutorial.md is executed in order, in
one namespace, and each ```output block must equal what the block above it printed."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```\s*$", re.S | re.M)


def blocks(path: Path) -> list[tuple[str, str | None, int]]:
    """(code, expected output or None, line number) for each python block."""
    text = path.read_text(encoding="utf-8")
    found = [(m.group(1), m.group(2), m.start(), m.end()) for m in FENCE.finditer(text)]
    out = []
    for i, (lang, body, start, end) in enumerate(found):
        if lang != "python":
            continue
        expected = None
        if i + 1 < len(found) and found[i + 1][0] == "output" and not text[end:found[i + 1][2]].strip():
            expected = found[i + 1][1]
        out.append((body, expected, text.count("\n", 0, start) + 1))
    return out


def _norm(s: str) -> list[str]:
    return [line.rstrip() for line in s.strip("\n").splitlines()]


def test_tutorial_has_code_and_outputs():
    found = blocks(DOCS / "tutorial.md")
    assert len(found) >= 15
    assert sum(expected is not None for _, expected, _ in found) >= 15


def test_tutorial_runs_and_prints_what_it_says(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the tutorial writes its images to the working folder
    namespace: dict = {"__name__": "tutorial"}
    for code, expected, line in blocks(DOCS / "tutorial.md"):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            try:
                exec(compile(code, f"tutorial.md:{line}", "exec"), namespace)  # noqa: S102 - our own docs
            except Exception as exc:  # pragma: no cover - the message names the block
                pytest.fail(f"tutorial.md block at line {line} raised {type(exc).__name__}: {exc}")
        if expected is not None:
            assert _norm(buf.getvalue()) == _norm(expected), f"tutorial.md block at line {line} printed:\n{buf.getvalue()}"
    for image in ("softmax.png", "activations.png", "linear_maps.png"):
        assert (tmp_path / image).stat().st_size > 5000


def test_tutorial_images_exist():
    text = (DOCS / "tutorial.md").read_text(encoding="utf-8")
    for name in re.findall(r"\]\((images/[^)]+)\)", text):
        assert (DOCS / name).is_file(), f"{name} is referenced but missing"
