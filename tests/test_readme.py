"""The README's Python examples run, in order, as written."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_examples_run():
    pytest.importorskip("torch")
    namespace: dict = {}
    for i, block in enumerate(_blocks()):
        if block.lstrip().startswith(">>>"):
            parser = doctest.DocTestParser()
            test = parser.get_doctest(block, namespace, "README", str(README), 0)
            runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
            runner.run(test)
            assert runner.failures == 0, f"README doctest failed:\n{block}"
        else:
            exec(compile(block, str(README), "exec"), namespace)
        if i == 0:  # the five-steps tour really trains
            assert namespace["J"] < 0.05, namespace["J"]


def test_readme_opens_with_the_two_commands():
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index("```bash")
    assert lines[start + 1].endswith("handgrad train")
    assert "pytest" in lines[start + 2]
