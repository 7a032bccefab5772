"""Tests for handgrad.check: the grader of hand-written homework MLPs, and its diagnoses.

The gallery (tests/gallery/impl_*.py) holds one correct implementation per backend and
one small variation per usual mistake; each must fail and be diagnosed by name.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from handgrad.check import (
    CALLS,
    GRADS,
    QUANTITIES,
    REQUIRED,
    Config,
    Reference,
    check_implementation,
    compare,
    resolve_target,
    sweep,
)
from handgrad.cli import main

GALLERY = Path(__file__).parent / "gallery"
ALL_GRADS = set(GRADS)


def gallery(name: str) -> str:
    return str(GALLERY / f"impl_{name}.py")


def each(ids: str | dict, quantities) -> set[tuple[str, str]]:
    return {(q, ids) for q in quantities}


# every planted mistake, and exactly the (quantity, mistake) pairs it must be named by
MISTAKES = {
    "transposed_weight_grads": each("transposed", ["dJdW1", "dJdW2"]),
    "transposed_reshaped": each("transposed_reshaped", ["dJdW1", "dJdW2"]),
    "mse_batch_mean_only": each("scale:K", ["dJdy_hat"]),
    "mse_missing_two": each("scale:1/2", ["dJdy_hat"]),
    "mse_sign": each("scale:-1", ["dJdy_hat"]),
    "mse_sum": each("scale:NK", ["J", "dJdy_hat"]),
    "sigmoid_prime_of_output": each("sigmoid_derivative_at_output", ALL_GRADS),
    "tanh_erratum": each("tanh_derivative_of_square", ["dJdW1", "dJdb1"]),
    "bce_erratum": each("bce_second_term", ["J", "dJdy_hat"]),
    "bce_no_mean_over_outputs": each("scale:K", ["dJdy_hat"]),
    "accumulate": each("gradients_not_zeroed", ALL_GRADS),
    "bias_mean": each("bias_averaged_over_batch", ["dJdb1", "dJdb2"]),
    "bias_not_summed": each("bias_not_summed", ["dJdb1", "dJdb2"]),
    "dW2_pre_activation": each("dW2_from_pre_activation", ["dJdW2"]),
    "stale_cache": each("stale_cache", ALL_GRADS),
    "f_slope_missing": each("f_derivative_missing", ["dJdW1", "dJdb1"]),
    "g_not_applied": each("g_not_applied", ["y_hat"]) | each("sigmoid_derivative_formula_on_input@g", ALL_GRADS),
}


# mistakes that only show on an optional activation (tanh): named when the check is extended
ON_OPTIONAL = {"tanh_erratum"}


def write(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return str(path)


# ---------------------------------------------------------------------- the sweep and the reference
def test_sweep_covers_the_homework_and_is_seeded():
    configs = sweep(seed=3)
    pairs = {(c.f, c.g) for c in configs if c.loss == "mse"}
    assert {(f, g) for f in REQUIRED for g in REQUIRED} <= pairs
    assert all(c.g == "sigmoid" for c in configs if c.loss == "bce")
    assert {f for f in REQUIRED} <= {c.f for c in configs if c.loss == "bce"}
    assert any(c.N == 1 for c in configs) and any(c.K == 1 for c in configs)
    assert any(c.N == 1 and c.K == 1 for c in configs)
    for c in configs:  # distinct sizes, so transposes change shapes and factors are told apart
        assert len({c.n, c.m, c.K}) == 3
        assert c.N == 1 or c.K == 1 or c.N != c.K
    assert sweep(seed=3) == configs
    assert sweep(seed=4) != configs
    assert len(sweep(seed=3, quick=True)) == 4


@pytest.mark.parametrize("f,g,loss", [("relu", "identity", "mse"), ("sigmoid", "sigmoid", "bce"),
                                      ("tanh", "relu", "mse"), ("gelu", "softplus", "mse")])
def test_reference_chain_matches_hw1(rng, f, g, loss):
    """The hypotheses' chain rule, with the correct slopes, reproduces hw1's own gradients."""
    ref = Reference(Config(f, g, loss, N=4, n=3, m=5, K=2), rng)
    for call in ref.calls:
        got = ref.chain(call, call.grad_fed, *ref.slopes(call))
        for q in GRADS:
            np.testing.assert_allclose(got[q], call.expected[q], rtol=1e-12, atol=1e-15)
    assert len(ref.calls) == CALLS
    np.testing.assert_array_equal(ref.calls[0].x, ref.calls[1].x)
    assert not np.array_equal(ref.calls[0].x, ref.calls[2].x)


def test_reference_inputs_are_float32_exact(rng):
    ref = Reference(Config("relu", "identity", "mse", N=3, n=2, m=4, K=5), rng)
    for a in [*ref.weights.values(), ref.calls[0].x, ref.calls[0].y_hat_fed, ref.calls[0].grad_fed]:
        np.testing.assert_array_equal(a.astype(np.float32).astype(np.float64), a)


def test_reference_matches_torch_autograd(rng):
    torch = pytest.importorskip("torch")
    ref = Reference(Config("tanh", "sigmoid", "bce", N=4, n=3, m=5, K=2), rng)
    call = ref.calls[0]
    W1, b1, W2, b2 = (torch.tensor(ref.weights[k], requires_grad=True) for k in ("W1", "b1", "W2", "b2"))
    x, y = torch.tensor(call.x), torch.tensor(call.y)
    y_hat = torch.sigmoid(torch.tanh(x @ W1.T + b1) @ W2.T + b2)
    y_hat.backward(torch.tensor(call.grad_fed))  # backward is fed its own dJ/dŷ
    np.testing.assert_allclose(call.expected["y_hat"], y_hat.detach().numpy(), rtol=1e-12)
    for q, t in zip(GRADS, (W1, b1, W2, b2)):
        np.testing.assert_allclose(call.expected[q], t.grad.numpy(), rtol=1e-10, atol=1e-14)
    # the loss is fed a ŷ of its own, independent of the forward's
    p = torch.tensor(call.y_hat_fed, requires_grad=True)
    J = torch.nn.BCELoss()(p, y)
    J.backward()
    np.testing.assert_allclose(call.expected["J"], J.item(), rtol=1e-10)
    np.testing.assert_allclose(call.expected["dJdy_hat"], p.grad.numpy(), rtol=1e-10)
    assert not np.allclose(call.y_hat_fed, call.expected["y_hat"])


# ---------------------------------------------------------------------- compare
def test_compare_reports_the_worst_entry():
    expected = np.array([[1.0, 2.0], [3.0, 4.0]])
    received = expected.copy()
    received[1, 0] = 3.3
    c = compare(received, expected)
    assert c.index == (1, 0) and c.expected == 3.0 and c.received == pytest.approx(3.3)
    assert c.rel_error == pytest.approx(0.1)


def test_compare_shape_mismatch_nan_and_floor():
    assert compare(np.zeros((2, 3)), np.zeros((3, 2))).rel_error == np.inf
    assert "shape (2, 3)" in compare(np.zeros((2, 3)), np.zeros((3, 2))).note
    c = compare(np.array([1.0, np.nan]), np.array([1.0, 2.0]))
    assert c.rel_error == np.inf and c.index == (1,) and "non-finite" in c.note
    # a rounding error next to an exact 0 is measured against 1e-3 of the largest entry
    c = compare(np.array([1.0, 1e-12]), np.array([1.0, 0.0]))
    assert c.rel_error == pytest.approx(1e-9)


# ---------------------------------------------------------------------- the correct implementations pass
def test_correct_numpy_passes_the_full_sweep():
    report = check_implementation(gallery("correct_numpy"))
    assert report.passed, report.render()
    assert (report.backend, report.dtype) == ("numpy", "float64")
    assert not report.findings
    ran = [c for c in report.configs if c.status == "pass"]
    assert len(ran) >= 14 and all(len(c.quantities) == len(QUANTITIES) for c in ran)
    unsupported = [c for c in report.configs if c.status == "unsupported"]
    assert unsupported and all(c.config.optional and "unknown activation" in c.note for c in unsupported)


def test_correct_torch_passes_the_full_sweep():
    pytest.importorskip("torch")
    report = check_implementation(gallery("correct_torch"), seed=1)
    assert report.passed, report.render()
    assert (report.backend, report.dtype) == ("torch", "float32")
    assert any(c.config.f == "leaky_relu" and c.status == "pass" for c in report.configs)


# ---------------------------------------------------------------------- every planted mistake, named
@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_gallery_mistake_is_caught_and_named(name):
    report = check_implementation(gallery(name), quick=True, extended=name in ON_OPTIONAL)
    assert not report.passed
    assert report.named() == MISTAKES[name], report.render()
    assert all(f.hypothesis for f in report.findings), report.render()
    for f in report.findings:
        assert f.fix and f.title


@pytest.mark.parametrize("name,expected", [
    ("torch_accumulate", each("gradients_not_zeroed", ALL_GRADS)),
    ("torch_bce_no_mean_over_outputs", each("scale:K", ["dJdy_hat"])),
])
def test_torch_gallery_mistake_is_named(name, expected):
    pytest.importorskip("torch")
    report = check_implementation(gallery(name), quick=True)
    assert report.backend == "torch" and not report.passed
    assert report.named() == expected, report.render()


def test_mistakes_are_named_across_the_full_sweep():
    """With every configuration (batch 1, one output, N = K collisions excluded), still one name."""
    for name in ("mse_batch_mean_only", "bias_not_summed", "sigmoid_prime_of_output"):
        report = check_implementation(gallery(name), seed=2)
        assert report.named() == MISTAKES[name], report.render()


def test_corrected_formula_comes_from_the_derivation_records():
    report = check_implementation(gallery("tanh_erratum"), quick=True, extended=True)
    finding = report.finding("dJdW1")
    assert "1 − tanh(z1²)" in finding.title
    assert "dJ/dz1 = dJ/dz2 ⊙ (1 − tanh²(z1))" in finding.fix
    assert "dJ/dW1 = (dJ/dz1)ᵀ x" in finding.fix
    report = check_implementation(gallery("bce_erratum"), quick=True)
    assert any("log(1 − ŷ_nk)" in x for x in report.finding("J").fix)


def test_the_worst_entry_is_reported(tmp_path):
    report = check_implementation(gallery("transposed_reshaped"), quick=True)
    qr = next(q for q in report.configs[0].quantities if q.name == "dJdW1")
    assert not qr.passed and qr.index is not None and qr.expected != qr.received
    assert 1 <= qr.call <= CALLS and qr.diagnosis == "transposed_reshaped"
    assert len(qr.index) == 2 and np.isfinite(qr.rel_error) and qr.rel_error > report.rtol
    accumulate = check_implementation(gallery("accumulate"), quick=True)
    qr = next(q for q in accumulate.configs[0].quantities if q.name == "dJdW2")
    assert qr.call > 1 and "call 1 was right" in qr.note


def test_nothing_fits_is_said_plainly(tmp_path):
    path = write(tmp_path, "impl_weird", """
        from impl_correct_numpy import MLP as Correct, bce_loss, mse_loss

        class MLP(Correct):
            def weight_grad(self, dJdz, inputs):
                return 3 * (dJdz.T @ inputs) + 0.25
    """)
    (tmp_path / "impl_correct_numpy.py").write_text((GALLERY / "impl_correct_numpy.py").read_text())
    report = check_implementation(path, quick=True)
    assert not report.passed
    assert not report.named()
    assert {f.quantity for f in report.findings} == {"dJdW1", "dJdW2"}
    assert all("none of the known mistakes fits" in f.title for f in report.findings)


# ---------------------------------------------------------------------- safety: hangs, crashes, exits
def test_hanging_implementation_times_out():
    report = check_implementation(gallery("hang"), quick=True, timeout=2)
    first = report.configs[0]
    assert first.status == "timeout" and "within 2 s" in first.note and "forward(x)" in first.note
    assert all(c.status == "not run" for c in report.configs[1:])
    assert not report.passed


def test_crashing_implementation_is_reported():
    report = check_implementation(gallery("crash"), quick=True)
    first = report.configs[0]
    assert first.status == "crash" and "exited with status 3" in first.note and "forward(x)" in first.note
    assert not report.passed
    assert "last lines the implementation wrote to stderr" in report.render()
    assert "about to leave" in report.stderr_tail


def test_sys_exit_is_reported_per_quantity():
    report = check_implementation(gallery("sys_exit"), quick=True)
    assert all(c.status == "fail" for c in report.configs if c.required)
    assert all(c.status == "unsupported" for c in report.configs if not c.required)
    grads = [q for q in report.configs[0].quantities if q.name in GRADS]
    assert all(q.raised and "sys.exit('giving up')" in q.note and "impl_sys_exit.py:" in q.note for q in grads)
    assert all(q.passed for q in report.configs[0].quantities if q.name not in GRADS)


def test_exception_in_backward_names_the_line():
    report = check_implementation(gallery("raises"), quick=True)
    grads = [q for q in report.configs[0].quantities if q.name == "dJdW1"]
    assert "ValueError while calling backward(dJdy_hat)" in grads[0].note
    assert "impl_raises.py:" in grads[0].note and not report.passed


def test_import_error_is_reported():
    report = check_implementation(gallery("import_error"), quick=True)
    assert "RuntimeError while importing the module: this homework does not import" in report.error
    assert "impl_import_error.py:5" in report.error and not report.passed
    assert all(c.status == "not run" for c in report.configs)


def test_sys_exit_at_import_and_missing_names(tmp_path):
    report = check_implementation(write(tmp_path, "bye", "import sys\nsys.exit(4)\n"), quick=True)
    assert "sys.exit(4)" in report.error and not report.passed
    report = check_implementation(write(tmp_path, "empty", "x = 1\n"), quick=True)
    assert "no MLP class" in report.error


def test_prints_do_not_disturb_the_check(tmp_path):
    (tmp_path / "impl_correct_numpy.py").write_text((GALLERY / "impl_correct_numpy.py").read_text())
    path = write(tmp_path, "chatty", """
        import os
        from impl_correct_numpy import MLP as Correct, bce_loss, mse_loss
        print('{"event": "finished"}')
        os.write(1, b"raw bytes on fd 1\\n")

        class MLP(Correct):
            def forward(self, x):
                print("forward!", x.shape)
                return super().forward(x)
    """)
    report = check_implementation(path, quick=True)
    assert report.passed, report.render()


def test_missing_loss_and_required_activation(tmp_path):
    (tmp_path / "impl_correct_numpy.py").write_text((GALLERY / "impl_correct_numpy.py").read_text())
    path = write(tmp_path, "no_bce", """
        from impl_correct_numpy import ACTIVATIONS, MLP, mse_loss
        del ACTIVATIONS["identity"]
    """)
    report = check_implementation(path, quick=True)
    bce = [c for c in report.configs if c.config.loss == "bce"]
    assert all(c.status == "fail" for c in bce)
    j = next(q for q in bce[0].quantities if q.name == "J")
    assert j.raised and "has no bce_loss" in j.note
    no_identity = [c for c in report.configs if "identity" in (c.config.f, c.config.g)]
    assert no_identity and all(c.status == "error" and "unknown activation" in c.note for c in no_identity)


def test_transposed_weight_layout_is_noted(tmp_path):
    path = write(tmp_path, "layout", """
        import numpy as np

        class MLP:
            def __init__(self, n, m, f, m2, K, g):
                self.parameters = dict(W1=np.zeros((n, m)), b1=np.zeros(m), W2=np.zeros((m, K)), b2=np.zeros(K))
                self.grads = {}
            def forward(self, x):
                p = self.parameters
                self.x, self.h = x, np.maximum(x @ p["W1"] + p["b1"], 0)
                return self.h @ p["W2"] + p["b2"]
            def backward(self, d):
                p = self.parameters
                dz1 = (d @ p["W2"].T) * (self.h > 0)
                self.grads = dict(dJdW1=self.x.T @ dz1, dJdb1=dz1.sum(0), dJdW2=self.h.T @ d, dJdb2=d.sum(0))
            def clear_grad_and_cache(self):
                self.grads = {}

        def mse_loss(y, y_hat):
            return ((y_hat - y) ** 2).mean(), 2 * (y_hat - y) / y.size
    """)
    report = check_implementation(path, quick=True)
    first = report.configs[0]
    assert first.config.f == "relu" and "stored transposed" in first.note
    assert first.quantities[0].passed  # y_hat is right with the weights copied in transposed
    assert ("dJdW1", "transposed") in report.named() and ("dJdW2", "transposed") in report.named()


def test_module_name_target(tmp_path, monkeypatch):
    (tmp_path / "homework_mlp.py").write_text((GALLERY / "impl_correct_numpy.py").read_text())
    monkeypatch.chdir(tmp_path)
    assert resolve_target("homework_mlp") == ("module", "homework_mlp")
    assert check_implementation("homework_mlp", quick=True).passed


def test_bad_targets_and_arguments(tmp_path):
    with pytest.raises(ValueError, match="no such Python file"):
        resolve_target(str(tmp_path / "missing.py"))
    with pytest.raises(ValueError, match="no file or importable module named 'surely_not_a_module_xyz'"):
        resolve_target("surely_not_a_module_xyz")
    with pytest.raises(ValueError, match="expected a Python file, a folder, a zip or a module name"):
        resolve_target("not a name!")
    with pytest.raises(ValueError, match=r"timeout must be a number of seconds in \(0, 3600\]"):
        check_implementation(gallery("correct_numpy"), timeout=0)
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        check_implementation(gallery("correct_numpy"), seed=-1)


# ---------------------------------------------------------------------- the command line
def test_cli_exit_codes(tmp_path, capsys):
    assert main(["check", gallery("correct_numpy"), "--quick"]) == 0
    out = capsys.readouterr().out
    assert "Result: PASS" in out and "dJdb2" not in out
    assert main(["check", gallery("correct_numpy"), "--quick", "--verbose"]) == 0
    assert "dJdb2     pass" in capsys.readouterr().out
    assert main(["check", gallery("mse_sign"), "--quick", "--no-color"]) == 1
    out = capsys.readouterr().out
    assert "Result: FAIL" in out and "the sign of dJdy_hat is flipped" in out and "\033[" not in out
    assert "correct (configuration 1): dJ/dŷ = 2(ŷ − y)/(N·K)" in out
    assert main(["check", str(tmp_path / "missing.py")]) == 2
    assert "no such Python file" in capsys.readouterr().err
    assert main(["check", "surely_not_a_module_xyz"]) == 2
    assert main(["check", gallery("correct_numpy"), "--timeout", "0"]) == 2
    assert main(["check", gallery("correct_numpy"), "--seed", "-2"]) == 2


def test_cli_json(capsys):
    assert main(["check", gallery("bias_mean"), "--quick", "--json", "--seed", "5"]) == 1
    text = capsys.readouterr().out

    def no_constants(name):
        raise AssertionError(f"JSON must not contain {name}")

    data = json.loads(text, parse_constant=no_constants)
    assert data["passed"] is False and data["seed"] == 5 and data["backend"] == "numpy"
    assert {(f["quantity"], f["hypothesis"]) for f in data["findings"]} == MISTAKES["bias_mean"]
    q = data["configs"][0]["quantities"]
    assert [x["name"] for x in q] == list(QUANTITIES)
    assert "label" in data["configs"][0]["config"]


def test_cli_hang_and_colour():
    report = check_implementation(gallery("hang"), quick=True, timeout=1)
    text = report.render(color=True)
    assert "\033[31m" in text and "timeout" in text and "configurations 2–4 not run" in text
    assert "\033[" not in report.render(color=False)


def test_threads_left_running_do_not_hold_the_check(tmp_path):
    (tmp_path / "impl_correct_numpy.py").write_text((GALLERY / "impl_correct_numpy.py").read_text())
    path = write(tmp_path, "threads", """
        import threading, time
        from impl_correct_numpy import MLP, bce_loss, mse_loss

        threading.Thread(target=lambda: time.sleep(3600)).start()
    """)
    report = check_implementation(path, quick=True, timeout=5)
    assert report.passed, report.render()
