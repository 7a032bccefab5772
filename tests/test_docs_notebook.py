"""docs/homework.ipynb runs from top to bottom, and its outputs say what the page claims."""

import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parent.parent / "docs" / "homework.ipynb"


def _texts(cell):
    out = []
    for o in cell.get("outputs", []):
        if "text" in o:
            out.append(o["text"])
        out += [str(v) for v in o.get("data", {}).values()]
    return "\n".join(out)


@pytest.fixture(scope="module")
def executed():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    return [c for c in nb.cells if c.cell_type == "code"]


def test_notebook_outputs(executed):
    explanation, notation, right, wrong, sgd, flow, graph_cell, homework = executed
    md = [o for o in explanation.outputs if "data" in o][0]["data"]
    assert "text/markdown" in md and "| quantity | against | verdict |" in md["text/markdown"]
    assert "text/latex" in md and r"\begin{aligned}" in md["text/latex"]
    assert re.search(r"Checks: (\d+)/\1 pass", md["text/markdown"])
    assert "✗" not in md["text/markdown"]
    assert "equals dJ/dW2 from backward: True" in _texts(notation)
    assert "**right**" in _texts(right) and "**wrong**" in _texts(wrong) and "transpose" in _texts(wrong)
    assert "W2' = W2 - lr * dJ/dW2: True" in _texts(sgd)
    assert "dead ReLUs" in _texts(flow) and "first / last: sigmoid" in _texts(flow)
    assert "## 1.3(e)" in _texts(homework)
    svg = [o["data"].get("image/svg+xml") for o in graph_cell.outputs if "data" in o]
    import shutil

    if shutil.which("dot"):
        assert svg and "<svg" in svg[0]
