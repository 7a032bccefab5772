"""explain: the equations come from the op records, evaluate to what the network computes,
and every gradient matches finite differences (and PyTorch where installed)."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

import handgrad as hg
from handgrad.derivation import activation_record
from handgrad.explain import (
    PRESETS,
    build_network,
    compose_affine,
    derive,
    diff,
    explain,
    one_hot_argmax,
    render_diff,
    softargmax,
)
from handgrad.gradcheck import check_network

SEED_CONFIGS = list(PRESETS)  # 1.1 regression; 1.2 squared loss, BCE, and f = ReLU


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def evaluate_text(rhs: str, env: dict) -> np.ndarray:
    """Evaluate a Unicode right-hand side such as '5·max(0, x W1ᵀ + b1)' with NumPy.

    Juxtaposition is a matrix product, ᵀ a transpose, · a product; this reads the
    explanation's own text, so a wrong equation gives a wrong number here.
    """
    expr = rhs.replace("ᵀ", ".T").replace("·", "*").replace("−", "-").replace("σ", "sigmoid").replace("ŷ", "y_hat")
    expr = re.sub(r"(?<=[\w)\]])\s+(?=[A-Za-z(])", " @ ", expr)
    names = {"max": np.maximum, "tanh": np.tanh, "sigmoid": _sigmoid, "__builtins__": {}}
    return eval(expr, names, {k.replace("ŷ", "y_hat"): v for k, v in env.items()})  # noqa: S307 - our own text


def seed_forward(preset: str, net, x):
    """The seed's (corrected) forward pass, written out by hand for each configuration."""
    W1, b1, W2, b2 = (net.params[k] for k in ("W1", "b1", "W2", "b2"))
    z1 = x @ W1.T + b1
    z2 = {"regression": 5 * np.maximum(z1, 0), "classification-relu": np.maximum(z1, 0)}.get(preset, np.tanh(z1))
    z3 = z2 @ W2.T + b2
    y_hat = z3 if preset == "regression" else _sigmoid(z3)
    return z1, z2, z3, y_hat


@pytest.mark.parametrize("preset", SEED_CONFIGS)
def test_seed_configurations_equations_evaluate_to_the_network(preset, rng):
    net, loss = build_network(preset, seed=rng)
    x, y = rng.standard_normal((3, 3)), rng.integers(0, 2, (3, 2)).astype(float)
    ex = derive(net, loss, at=(x, y), torch=False)
    z1, z2, z3, y_hat = seed_forward(preset, net, x)
    for name, want in (("z1", z1), ("z2", z2), ("z3", z3), ("ŷ", y_hat)):
        np.testing.assert_allclose(ex.values[name], want, rtol=1e-12, atol=1e-12, err_msg=name)
        rhs = ex.equation(f"forward:{name}").text.split(" = ", 1)[1]
        got = evaluate_text(rhs, {**net.params, **ex.values})
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=f"{name} = {rhs}")
    composed = ex.equation("composed:ŷ").text.split(" = ", 1)[1]
    np.testing.assert_allclose(evaluate_text(composed, {**net.params, "x": x}), y_hat, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ex.values["ŷ"], np.asarray(net.forward(x)), rtol=1e-12)


@pytest.mark.parametrize("preset", SEED_CONFIGS)
def test_seed_configurations_gradients_match_finite_differences(preset, rng):
    net, loss = build_network(preset, seed=rng)
    x = rng.standard_normal((2, 3))
    ex = derive(net, loss, at=x, seed=rng, torch=False)
    fd = {c.quantity: c for c in ex.checks if c.against == "finite differences"}
    for name in ("dJ/dW1", "dJ/db1", "dJ/dW2", "dJ/db2"):
        assert fd[name].passed and fd[name].rel_error < 1e-6, fd[name].line()
        assert ex.values[name].shape == net.params[name[4:]].shape
    report = check_network(net, x, ex.values["y"], loss)  # the network's own backward, independently
    assert report.passed, str(report)
    net.zero_grad()
    net.forward(x)
    net.backward_loss(loss, ex.values["y"])
    for name in ("W1", "b1", "W2", "b2"):
        np.testing.assert_allclose(ex.values[f"dJ/d{name}"], net.grads[f"dJ_d{name}"], rtol=1e-10, atol=1e-14)
    assert ex.passed, "\n".join(c.line() for c in ex.checks)


def test_seed_loss_values_and_corrected_gradients(rng):
    # 1.1: l = ||y - ŷ||², dl/dŷ = -2(y - ŷ); 1.2(b): with sigmoid + BCE, dl/dz3 = (ŷ - y)/K for one sample
    net, loss = build_network("regression", seed=rng)
    x, y = rng.standard_normal((1, 3)), rng.standard_normal((1, 2))
    ex = derive(net, loss, at=(x, y), torch=False)
    y_hat = ex.values["ŷ"]
    assert float(ex.values["J"]) == pytest.approx(float(np.sum((y - y_hat) ** 2)), rel=1e-12)
    np.testing.assert_allclose(ex.values["dJ/dŷ"], -2 * (y - y_hat), rtol=1e-12)
    net, loss = build_network("classification-bce", seed=rng)
    y = np.array([[1.0, 0.0]])
    ex = derive(net, loss, at=(x, y), torch=False)
    y_hat = ex.values["ŷ"]
    bce = -np.mean(y * np.log(y_hat) + (1 - y) * np.log(1 - y_hat))
    assert float(ex.values["J"]) == pytest.approx(bce, rel=1e-12)
    np.testing.assert_allclose(ex.values["dJ/dz3"], (y_hat - y) / 2, rtol=1e-10)
    assert "(ŷ − y)/(N·K)" in ex.equation("backward:dJ/dz3").text


def test_jacobians_are_m_by_m_and_diagonal_not_K(rng):
    net, loss = build_network("regression", n=3, m=5, K=2, seed=rng)
    ex = derive(net, loss, at="random", seed=rng, torch=False)
    jac = ex.equation("jacobian:∂z2/∂z1")
    assert "m × m = 5 × 5" in jac.text and jac.structure == "diagonal"
    assert "δ_ij · 5·1[z1_i > 0]" in jac.text
    J21 = ex.jacobian_values["∂z2/∂z1"]
    assert J21.shape == (5, 5)
    np.testing.assert_array_equal(J21, np.diag(5.0 * (ex.values["z1"][0] > 0)))
    assert ex.jacobian_values["∂ŷ/∂z3"].shape == (2, 2)
    np.testing.assert_array_equal(ex.jacobian_values["∂ŷ/∂z3"], np.eye(2))  # g = identity: I_K
    assert ex.equation("jacobian:∂J/∂ŷ").structure == "gradient"
    tanh = derive(*build_network("classification-mse", seed=rng)).equation("jacobian:∂z2/∂z1").text
    assert "1 − tanh²(z1_i)" in tanh and "tanh(z1²" not in tanh
    checks = {c.quantity: c for c in ex.checks}
    assert checks["∂z2/∂z1"].note == "diagonal confirmed"


def test_param_gradients_in_matrix_form_have_the_corrected_shapes():
    ex = derive(*build_network("regression", n=3, m=4, K=2))
    w2 = ex.equation("backward:dJ/dW2")
    assert w2.text == "dJ/dW2 = (dJ/dz3)ᵀ z2" and w2.shape == "(K, m)"
    assert ex.equation("backward:dJ/dW1").text == "dJ/dW1 = (dJ/dz1)ᵀ x"
    assert ex.equation("backward:dJ/dW1").shape == "(m, n)"
    assert ex.equation("forward:z3").text == "z3 = z2 W2ᵀ + b2"  # not 5 W2 z2 (the seed's slip)
    chain = ex.equation("chain:dJ/dW1").text
    assert chain == "dJ/dW1 = ∂J/∂ŷ · ∂ŷ/∂z3 · ∂z3/∂z2 · ∂z2/∂z1 · ∂z1/∂W1"


def test_depth_generalises_names(rng):
    net = hg.MLP(2, [4, 3], 1, f="tanh", g="sigmoid", seed=rng, dtype=np.float64)
    ex = derive(net, "bce", at="random", seed=rng, torch=False)
    assert {"forward:z1", "forward:z5", "forward:ŷ", "backward:dJ/dW3", "jacobian:∂z4/∂z3"} <= set(ex.keys)
    assert ex.passed, "\n".join(c.line() for c in ex.checks)
    assert "m1" in ex.sizes and "m2" in ex.sizes


class Cube(hg.Activation):
    """y = x³, a new op declared only by its formulas."""

    derivation = activation_record("Cube", ("$x³", "{$x}^3"), ("3$x²", "3{$x}^2"))

    def _forward(self, x):
        return x**3, x

    def _backward(self, dJ_dy, x):
        return dJ_dy * 3 * x**2

    def _derivative(self, x):
        return 3 * x**2


def test_a_new_activation_explains_itself(rng):
    net = hg.Sequential(hg.Linear(2, 3, seed=rng, dtype=np.float64), Cube(),
                        hg.Linear(3, 1, seed=rng, dtype=np.float64), hg.Identity())
    ex = derive(net, "mse", at="random", seed=rng)
    assert ex.equation("forward:z2").text == "z2 = z1³"
    assert "δ_ij · 3z1_i²" in ex.equation("jacobian:∂z2/∂z1").text
    assert ex.equation("backward:dJ/dz1").text == "dJ/dz1 = dJ/dz2 ⊙ 3z1²"
    assert ex.passed, "\n".join(c.line() for c in ex.checks)
    assert any("skipped" in c.note for c in ex.checks if c.against == "PyTorch autograd")
    np.testing.assert_allclose(ex.values["z2"], ex.values["z1"] ** 3)


def test_a_layer_without_a_record_is_refused(rng):
    class Bare(hg.Layer):
        def forward(self, x):
            return x

    with pytest.raises(ValueError, match="declares no derivation record"):
        derive(hg.Sequential(hg.Linear(2, 2, seed=rng), Bare()), "mse")


def test_pytorch_agrees(rng):
    pytest.importorskip("torch")
    ex = derive(*build_network("classification-relu", seed=rng), at="random", seed=rng, batch=3)
    torch_checks = [c for c in ex.checks if c.against == "PyTorch autograd"]
    assert len(torch_checks) == 4 and all(c.passed and c.rel_error < 1e-10 for c in torch_checks)


# ---------------------------------------------------------------- formats
def _balanced(tex: str) -> None:
    body = tex.replace(r"\{", "").replace(r"\}", "")
    depth = 0
    for ch in body:
        depth += (ch == "{") - (ch == "}")
        assert depth >= 0, "unbalanced braces"
    assert depth == 0, "unbalanced braces"
    assert tex.count(r"\left") == tex.count(r"\right"), r"\left/\right unpaired"
    assert tex.count(r"\begin{") == tex.count(r"\end{")


@pytest.mark.slow
@pytest.mark.parametrize("preset", SEED_CONFIGS)
def test_latex_compiles(preset, tmp_path, rng):
    tex = explain(preset, fmt="latex", at="random", seed=rng, torch=False)
    assert tex.startswith(r"\documentclass") and tex.rstrip().endswith(r"\end{document}")
    _balanced(tex)
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (apt-get install texlive-latex-base); braces checked only")
    (tmp_path / "e.tex").write_text(tex, encoding="utf-8")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "e.tex"], cwd=tmp_path,
                          capture_output=True, timeout=120)
    log = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, log[-3000:]
    assert (tmp_path / "e.pdf").stat().st_size > 1000


@pytest.mark.slow
def test_latex_diff_compiles(tmp_path):
    a, b = derive(*build_network("classification-mse")), derive(*build_network("classification-bce"))
    tex = render_diff(a, b, "latex")
    _balanced(tex)
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed")
    (tmp_path / "d.tex").write_text(tex, encoding="utf-8")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "d.tex"], cwd=tmp_path,
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stdout.decode(errors="replace")[-3000:]


def test_markdown_and_text_sections():
    md = explain("regression", fmt="markdown")
    assert md.startswith("# handgrad explain") and "## Forward pass" in md and "## The Jacobians" in md
    assert "- `z2 = 5·max(0, z1)`" in md
    text = explain("regression")
    assert "Backward pass as a chain of Jacobians" in text and "why:" in text
    with pytest.raises(ValueError, match="format must be one of"):
        explain("regression", fmt="html")


# ---------------------------------------------------------------- diff (1.2)
def test_diff_shows_only_what_changes():
    mse = derive(*build_network("classification-mse"))
    bce = derive(*build_network("classification-bce"))
    relu = derive(*build_network("classification-relu"))
    changed = {k for k, _, _ in diff(mse, bce)}
    assert {"forward:J", "backward:dJ/dŷ", "backward:dJ/dz3"} <= changed
    assert not changed & {"forward:z1", "forward:z2", "forward:z3", "forward:ŷ", "jacobian:∂z2/∂z1"}
    changed = {k for k, _, _ in diff(bce, relu)}
    assert {"forward:z2", "jacobian:∂z2/∂z1", "backward:dJ/dz1"} <= changed
    assert not changed & {"forward:J", "forward:z1", "forward:z3", "backward:dJ/dŷ"}
    assert diff(bce, derive(*build_network("classification-bce"))) == []
    text = render_diff(mse, bce)
    assert "@@ forward pass: J" in text and "forward pass: z1" not in text


# ---------------------------------------------------------------- points and errors
def test_at_accepts_numbers_and_validates(rng):
    net, loss = build_network("regression", seed=rng)
    ex = derive(net, loss, at=[0.5, -1.0, 2.0], target=[1.0, 2.0], torch=False)
    np.testing.assert_array_equal(ex.values["x"], [[0.5, -1.0, 2.0]])
    with pytest.raises(ValueError, match=r"expected x of shape \(3,\) or \(N, 3\), got \(1, 2\)"):
        derive(net, loss, at=[1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        derive(net, loss, at=[1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="at must be 'random'"):
        derive(net, loss, at="somewhere")
    with pytest.raises(ValueError, match="a loss is needed"):
        derive(net)
    with pytest.raises(TypeError, match="Sequential/MLP or a preset"):
        derive(42, "mse")
    with pytest.raises(ValueError, match="unknown preset"):
        build_network("regresion")
    with pytest.raises(ValueError, match="either m"):
        build_network(m=3, hidden=[2, 2])


# ---------------------------------------------------------------- softargmax, affine stacks
def test_softargmax_tends_to_the_one_hot_argmax(rng):
    x = rng.standard_normal(6)
    hot = one_hot_argmax(x)
    dists = [np.abs(softargmax(x, b) - hot).max() for b in (0.1, 1, 10, 100, 1000)]
    assert all(a >= b for a, b in zip(dists, dists[1:])) and dists[-1] < 1e-6
    assert softargmax(x, 3.0).sum() == pytest.approx(1.0)
    assert float(softargmax(x, 1000.0) @ x) == pytest.approx(x.max(), rel=1e-6)  # the value tends to max(x)
    np.testing.assert_allclose(softargmax([2.0, 2.0], 5.0), [0.5, 0.5])
    with pytest.raises(ValueError, match="non-empty"):
        softargmax([])


def test_a_stack_of_linear_layers_is_one_affine_map(rng):
    stack = [hg.Linear(3, 4, seed=rng, dtype=np.float64), hg.Linear(4, 2, seed=rng, dtype=np.float64),
             hg.Linear(2, 5, seed=rng, dtype=np.float64)]
    W, b = compose_affine(stack)
    x = rng.standard_normal((7, 3))
    h = x
    for layer in stack:
        h = layer.forward(h)
    np.testing.assert_allclose(x @ W.T + b, h, rtol=1e-12, atol=1e-12)
    assert W.shape == (5, 3)
    with pytest.raises(ValueError, match="not linear"):
        compose_affine([stack[0], hg.ReLU(), stack[1]])


# ---------------------------------------------------------------- command line
def run_cli(argv: list[str]) -> int:
    """The real ``handgrad`` entry point, as a user runs it."""
    from handgrad.cli import main

    return main(argv)


def test_cli_explain(capsys, tmp_path):
    assert run_cli(["explain", "--preset", "classification-relu", "--at", "0.5,-1,2", "--target", "1,0",
                    "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert "z2 = max(0, z1)" in out and "✓ pass" in out and "FAIL" not in out
    assert run_cli(["explain", "--preset", "classification-mse", "--diff", "loss=bce"]) == 0
    assert "@@ forward pass: J" in capsys.readouterr().out
    target = tmp_path / "e.tex"
    assert run_cli(["explain", "--hidden", "4", "--hidden", "3", "--f", "gelu", "--format", "latex",
                    "-o", str(target)]) == 0
    assert target.read_text(encoding="utf-8").startswith(r"\documentclass")
    assert run_cli(["explain", "--f", "rleu"]) == 2
    assert run_cli(["explain", "--at", "1,2"]) == 2
    assert run_cli(["explain", "--diff", "colour=red"]) == 2
    assert run_cli(["explain", "--target", "1,2"]) == 2
    capsys.readouterr()


@pytest.mark.parametrize("g", ["softmax", "identity"])
def test_cross_entropy_reads_the_logits(g, rng):
    net = hg.MLP(3, [4], 3, f="tanh", g=g, seed=rng, dtype=np.float64)
    x, labels = rng.standard_normal((4, 3)), rng.integers(0, 3, 4)
    ex = derive(net, "cross_entropy", at=(x, labels), torch=False)
    z3 = ex.values["z3"]
    log_p = z3 - np.log(np.exp(z3).sum(axis=1, keepdims=True))
    assert float(ex.values["J"]) == pytest.approx(-log_p[np.arange(4), labels].mean(), rel=1e-12)
    assert ex.passed, "\n".join(c.line() for c in ex.checks)
    assert ("softmax(z3_n)" in ex.equation("forward:J").text) == (g == "softmax")
    if g == "softmax":
        assert "backward:dJ/dŷ" not in ex.keys and ex.equation("jacobian:∂ŷ/∂z3").structure == "full"


# ---------------------------------------------------------------- a trained model (--model FILE)
def _trained(tmp_path, capsys) -> tuple:
    """A real 'handgrad train' run (moons, 2 epochs, one hidden layer of 5): its model file."""
    out = tmp_path / "run"
    assert run_cli(["train", "--data", "moons", "--epochs", "2", "--hidden", "5", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    return out, out / "model.safetensors"


def test_cli_explain_a_trained_model(tmp_path, capsys):
    from handgrad.io import load_model

    run_dir, path = _trained(tmp_path, capsys)
    net, _ = load_model(path)
    assert run_cli(["explain", "--model", str(path), "--at", "random", "--seed", "0", "--no-torch"]) == 0
    out = capsys.readouterr().out
    sizes = f"sizes: n = {net.in_features}, m = {net.linears[0].out_features}, K = {net.out_features}"
    assert sizes == "sizes: n = 2, m = 5, K = 1" and sizes in out
    assert "Linear(2→5) → ReLU → Linear(5→1) → Sigmoid → ŷ; loss: binary cross-entropy" in out  # the recorded loss
    assert f"model {path}; classification; classes 0, 1; features x1, x2" in out
    n_checks = re.search(r"Checks: (\d+)/(\d+) pass", out)
    assert n_checks and n_checks[1] == n_checks[2] and int(n_checks[2]) >= 10 and "FAIL" not in out
    # numbers of the model's width, and the run directory in place of the file
    assert run_cli(["explain", "--model", str(run_dir), "--at", "0.5,-1;2,0", "--target", "1;0", "--no-torch",
                    "--format", "markdown"]) == 0
    assert "N = 2" in capsys.readouterr().out
    assert run_cli(["explain", "--model", str(path), "--at", "1,2,3"]) == 2
    err = capsys.readouterr().err
    assert "--at gives 3 number(s) per row" in err and "takes 2 inputs" in err and str(path) in err
    assert run_cli(["explain", "--model", str(path), "--diff", "loss=mse"]) == 0
    assert "@@ forward pass: J" in capsys.readouterr().out
    assert run_cli(["explain", "--model", str(path), "--diff", "f=tanh"]) == 2
    assert "another loss only" in capsys.readouterr().err


def test_a_loaded_model_is_evaluated_on_its_trained_weights(tmp_path, rng):
    from handgrad.explain import load_network
    from handgrad.io import save_model

    net = hg.MLP(3, [4], 2, f="tanh", g="identity", seed=rng)  # float32, as training leaves it
    path = save_model(tmp_path / "m.safetensors", net, {"cli_format": 1, "loss": "squared_error"})
    loaded, loss, meta = load_network(path)
    assert loss.reduction == "mean" and meta["loss"] == "squared_error"  # as 'handgrad train' trained it
    for k, v in net.params.items():
        np.testing.assert_array_equal(loaded.params[k], v)
    x = rng.standard_normal((2, 3))
    ex = derive(loaded, loss, at=x, torch=False)
    np.testing.assert_allclose(ex.values["ŷ"], net.forward(x.astype(np.float32)), rtol=1e-5, atol=1e-6)
    assert ex.passed, "\n".join(c.line() for c in ex.checks)  # float32 weights, float64 checks
    save_model(tmp_path / "bare.safetensors", net, {"loss": "sse"})
    assert load_network(tmp_path / "bare.safetensors")[1].reduction == "sum"  # not from 'train': the loss's default


def test_cli_explain_model_loss_and_file_errors(tmp_path, capsys, rng):
    from handgrad.io import save_model

    net = hg.MLP(3, [4], 2, f="tanh", g="sigmoid", seed=rng)
    bare = save_model(tmp_path / "bare.safetensors", net)  # no metadata: no recorded loss
    assert run_cli(["explain", "--model", str(bare)]) == 2
    err = capsys.readouterr().err
    assert "records no loss" in err and "bce" in err and "cross_entropy" in err and "mse" in err
    assert run_cli(["explain", "--model", str(bare), "--loss", "bce", "--at", "random", "--no-torch"]) == 0
    assert "sizes: n = 3, m = 4, K = 2" in capsys.readouterr().out
    recorded = save_model(tmp_path / "bce.safetensors", net, {"loss": "bce"})
    assert run_cli(["explain", "--model", str(recorded), "--loss", "mse"]) == 2
    assert "trained with loss 'bce'" in capsys.readouterr().err
    assert run_cli(["explain", "--model", str(recorded), "--loss", "bce"]) == 0  # agreeing is fine
    capsys.readouterr()
    odd = save_model(tmp_path / "odd.safetensors", net, {"loss": "hinge"})
    assert run_cli(["explain", "--model", str(odd)]) == 1
    assert "records a loss handgrad does not know" in capsys.readouterr().err
    (tmp_path / "junk.safetensors").write_bytes(rng.integers(0, 256, 64, dtype=np.uint8).tobytes())
    for bad, reason in (("missing.safetensors", "no such file"), ("junk.safetensors", "not a handgrad model file")):
        assert run_cli(["explain", "--model", str(tmp_path / bad)]) == 1
        err = capsys.readouterr().err
        assert reason in err and err.count("\n") == 1 and "Traceback" not in err
    for extra in (["--preset", "regression"], ["--n", "3"], ["--hidden", "4"], ["--f", "relu"]):
        assert run_cli(["explain", "--model", str(recorded), *extra]) == 2
        assert f"leave out {extra[0]}" in capsys.readouterr().err


def test_chain_is_formed_as_printed_and_matches_backward():
    """∂z3/∂W2 is the K × (K·m) matrix δ_ij z2_k; the printed product equals backward."""
    from handgrad.explain import build_network, param_jacobian

    rng = np.random.default_rng(7)
    ex = derive("classification-bce", at=rng.standard_normal((2, 3)), torch=False)
    jac = ex.jacobian_values["∂z3/∂W2"]
    K, m = 2, 4
    assert jac.shape == (K, K * m)
    z2 = ex.values["z2"][0]
    assert np.allclose(jac.reshape(K, K, m), np.einsum("ij,k->ijk", np.eye(K), z2))
    net, _ = build_network("classification-bce")
    P = param_jacobian(net.linears[1], "W", ex.values["z2"])
    product = np.einsum("no,nop->p", ex.values["dJ/dz3"], P).reshape(K, m)
    assert np.allclose(product, ex.values["dJ/dW2"])
    assert ex.passed and any(c.against == "handgrad backward" and c.quantity == "dJ/dW2" for c in ex.checks)


def test_saturated_sigmoid_chain_is_a_clamp_not_a_failure():
    ex = derive("classification-relu", at=[-60.0, 60.0, -60.0], target=[0, 1], torch=False)
    assert ex.passed
    ex = derive("classification-bce", at=[600.0, -600.0, 600.0], target=[0, 1], torch=False)
    assert ex.passed


@pytest.mark.parametrize("argv", [
    ["explain", "--preset", "regression", "--at", "-0.5,1,2", "--target", "-1,2", "--no-torch"],
    ["explain", "--preset", "regression", "--at", "-0.5,1,2;-1,-2,-3", "--no-torch"],
])
def test_negative_numbers_in_comma_lists(argv, capsys):
    from handgrad.cli import main

    assert main(argv) == 0
    assert "Evaluated at" in capsys.readouterr().out


def test_homework_notation(capsys):
    from handgrad.cli import main

    assert main(["explain", "--preset", "regression", "--notation", "homework", "--at", "random", "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert "z1 = W(1) x + b(1)" in out and "x W1ᵀ" not in out.split("Bridge 2")[0]
    assert "∂z3_i/∂W(2)_jk = δ_ij z2_k" in out and "K × (K·m)" in out
    assert "equals dJ/dW2 from backward: True" in out and "Bridge 1" in out and "Z1 = X W1ᵀ + b1" in out
    assert "∂z2_i/∂z1_j" in out


@pytest.mark.parametrize("preset,question,absent", [("regression", "1.1", "1.2(b)"), ("classification-bce", "1.2", "1.1(d)")])
def test_explain_shows_the_seed_mistakes_of_its_question(preset, question, absent):
    text = explain(preset)
    assert f"Mistakes of the worked answers to {question}, corrected" in text and absent not in text.split("worked answers to")[1]
    assert ("(homework 1.1(b))" in text) == (question == "1.1")
    md = explain(preset, fmt="markdown")
    assert f"## Mistakes of the worked answers to {question}" in md


@pytest.mark.slow
@pytest.mark.parametrize("preset", list(PRESETS))
def test_latex_at_a_point_compiles_without_internal_keys(preset, tmp_path):
    tex = explain(preset, fmt="latex", at="random", torch=False)
    assert r"\mathbb{1}" not in tex and not re.search(r"(forward|backward|chain|jacobian):", tex)
    if preset in ("classification-bce", "classification-relu"):  # notes set their formulas in math
        assert r"fuse: $\partial J/\partial \hat{y}$" in tex
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed")
    (tmp_path / "ex.tex").write_text(tex, encoding="utf-8")
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "ex.tex"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:]


def test_large_layer_gradient_by_structure_not_a_huge_matrix():
    from handgrad.explain import build_network
    from handgrad.explain.evaluation import MAX_PARAM_JACOBIAN_ENTRIES

    net, loss = build_network("regression", n=100, m=150, K=2)
    assert 150 * 150 * 100 > MAX_PARAM_JACOBIAN_ENTRIES
    ex = derive(net, loss, at="random", check=False)
    assert "∂z1/∂W1" not in ex.jacobian_values and "∂z3/∂W2" in ex.jacobian_values
    x, y = ex.values["x"], ex.values["y"]
    net.forward(x)
    net.zero_grad()
    net.backward_loss(loss, y)
    assert np.allclose(ex.values["dJ/dW1"], net.grads["dJ_dW1"])


def test_large_layer_finite_differences_on_a_sample():
    from handgrad.explain import build_network
    from handgrad.explain.evaluation import MAX_FD_ENTRIES

    net, loss = build_network("classification-bce", n=60, m=50, K=2)
    ex = derive(net, loss, at="random", torch=False)
    fd_w1 = [c for c in ex.checks if c.quantity == "dJ/dW1" and c.against == "finite differences"][0]
    assert ex.passed and f"{MAX_FD_ENTRIES} of its 3000 entries" in fd_w1.note


@pytest.mark.parametrize("fmt", ["markdown", "latex"])
def test_homework_notation_formats(fmt, tmp_path, capsys):
    from handgrad.cli import main

    out = tmp_path / f"n.{'tex' if fmt == 'latex' else 'md'}"
    argv = ["explain", "--preset", "classification-bce", "--notation", "homework", "--at", "random", "--no-torch"]
    assert main(argv + ["--format", fmt, "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    if fmt == "markdown":
        assert text.startswith("# handgrad explain --notation homework") and "```text" in text
        return
    assert r"\begin{document}" in text and r"\delta_{ij}" in text
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed")
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", out.name], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:]
