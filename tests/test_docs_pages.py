"""The Python examples of every page under docs/ run, in order, as written.

(docs/tutorial.md has its own, stricter test in test_docs.py, which also checks outputs.)
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
GALLERY = Path(__file__).resolve().parent / "gallery"
PAGES = ["training.md", "cli.md", "explain.md", "check.md", "interop.md", "from-sklearn.md"]


def _blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), flags=re.S)


def _files_the_pages_name(directory: Path) -> None:
    """The example files the pages refer to: a CSV with a text target, a homework implementation."""
    rng = np.random.default_rng(0)
    lines = ["sepal,petal,species"]
    for i in range(90):
        label = ("setosa", "versicolor", "virginica")[i % 3]
        lines.append(f"{rng.normal(i % 3, 0.3):.3f},{rng.normal(2 * (i % 3), 0.3):.3f},{label}")
    (directory / "flowers.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copy(GALLERY / "impl_correct_numpy.py", directory / "mlp.py")


@pytest.mark.parametrize("page", PAGES)
def test_page_examples_run(page, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    if page == "interop.md":
        pytest.importorskip("onnxruntime")
    blocks = _blocks(page)
    assert blocks, f"{page} has no Python example"
    _files_the_pages_name(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{page[:-3]}"}
    for block in blocks:
        exec(compile(block, str(DOCS / page), "exec"), namespace)
