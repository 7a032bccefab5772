"""handgrad homework: every question answered at a point, the seed's mistakes shown, hints without answers."""

import re
import shutil
import subprocess

import numpy as np
import pytest

from handgrad.cli import main
from handgrad.explain.homework import gradient_flow, questions, render, sgd_step

IDS = ["1.1(a)", "1.1(b)", "1.1(c)", "1.1(d)", "1.2(a)", "1.2(b)", "1.2(c)",
       "1.3(a)", "1.3(b)", "1.3(c)", "1.3(d)", "1.3(e)"]


def test_all_twelve_questions_answered_with_a_command():
    qs = questions()
    assert [q.id for q in qs] == IDS
    assert all(q.answer and q.command.startswith("handgrad ") for q in qs)
    wrong = {q.id for q in qs if q.seed}
    assert {"1.1(a)", "1.1(c)", "1.1(d)", "1.2(a)", "1.2(b)", "1.2(c)", "1.3(a)", "1.3(d)", "1.3(e)"} <= wrong


def test_the_reproducing_commands_run(capsys, tmp_path, monkeypatch):
    """A learner's walk: every question's command runs as printed (pictures land in a scratch folder)."""
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    for q in questions():
        argv = q.command.split()[1:]
        argv = [a.strip("'") for a in argv] + (["--no-torch"] if argv[0] == "explain" else [])
        if "--help" in argv:
            with pytest.raises(SystemExit) as exc:
                main(argv)
            assert exc.value.code == 0, q.command
            continue
        assert main(argv) == 0, q.command
    assert any(tmp_path.iterdir())  # the graph and plots were written
    capsys.readouterr()


def test_sgd_step_lowers_the_loss_and_is_the_update():
    s = sgd_step()
    assert s["J_after"] < s["J"]
    assert np.allclose(s["W2_new"], s["W2"] - s["lr"] * s["dJ_dW2"])


def test_gradient_flow_vanishes_for_sigmoid_not_so_for_relu():
    flow = gradient_flow()
    ratio = {f: flow[f][0] / flow[f][-1] for f in ("sigmoid", "tanh", "relu")}
    assert ratio["sigmoid"] < 1e-5 < 0.1 < ratio["relu"]  # sigmoid vanishes; ReLU keeps the norm
    assert len(flow["dead_relu"]) == 10
    assert all(0 <= d <= 1 for d in flow["dead_relu"])


def test_hints_give_no_answers(capsys):
    assert main(["homework", "--hints"]) == 0
    out = capsys.readouterr().out
    assert "hint:" in out and "answer:" not in out and "the worked answers say" not in out
    assert "1 − tanh(z)²" not in out


def test_only_and_answer_key_markdown(capsys):
    assert main(["homework", "--only", "1.2(c)", "--answer-key", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# The homework") and "## 1.2(c)" in out and "1.1(a)" not in out
    assert main(["homework", "--only", "9.9"]) == 2
    assert main(["homework", "--only", "1.2", "--answer-key", "markdown"]) == 0  # a part: all its questions
    out = capsys.readouterr().out
    assert all(f"## 1.2({p})" in out for p in "abc") and "## 1.1(" not in out and "## 1.3(" not in out


@pytest.mark.slow
def test_answer_key_latex_compiles(tmp_path):
    tex = render(questions(), "latex")
    assert r"\begin{document}" in tex and not re.search(r"(forward|backward|chain|jacobian):\S", tex)
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed")
    (tmp_path / "key.tex").write_text(tex, encoding="utf-8")
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "key.tex"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:]


def test_draw_writes_every_picture(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["homework", "--only", "1.3(b)", "--draw", str(tmp_path / "pics")]) == 0
    err = capsys.readouterr().err
    files = sorted(p.name for p in (tmp_path / "pics").iterdir())
    for stem in ("derivatives_1.3c.png", "softmax_1.3a.png", "gradient_flow_1.2c.png", "linear_maps_1.3d.png"):
        assert stem in files
    assert any(name.startswith("graph_1.3b.") for name in files) and "drew 1.3(b)" in err
    assert main(["homework", "--only", "1.3(c)", "--draw", str(tmp_path / "pics"), "--answer-key", "markdown",
                 "--force"]) == 0
    assert "![1.3(c)](" in capsys.readouterr().out
