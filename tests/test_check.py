"""Tests for handgrad.check: the grader of hand-written homework MLPs, and its diagnoses.

The gallery (tests/gallery/impl_*.py) holds one correct implementation per backend and
one small variation per usual mistake; each must fail and be diagnosed by name.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

import handgrad as hg
from handgrad.check import (
    CALLS,
    GRADS,
    QUANTITIES,
    REQUIRED,
    Config,
    Reference,
    bubblewrap,
    check_implementation,
    compare,
    escape,
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
@pytest.mark.slow
def test_correct_numpy_passes_the_full_sweep():
    report = check_implementation(gallery("correct_numpy"))
    assert report.passed, report.render()
    assert (report.backend, report.dtype) == ("numpy", "float64")
    assert not report.findings
    ran = [c for c in report.configs if c.status == "pass"]
    assert len(ran) >= 14 and all(len(c.quantities) == len(QUANTITIES) for c in ran)
    unsupported = [c for c in report.configs if c.status == "unsupported"]
    assert unsupported and all(c.config.optional and "unknown activation" in c.note for c in unsupported)


@pytest.mark.slow
def test_correct_torch_passes_the_full_sweep():
    pytest.importorskip("torch")
    report = check_implementation(gallery("correct_torch"), seed=1)
    assert report.passed, report.render()
    assert (report.backend, report.dtype) == ("torch", "float32")
    assert any(c.config.f == "leaky_relu" and c.status == "pass" for c in report.configs)


# ---------------------------------------------------------------------- every planted mistake, named
@pytest.mark.slow
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
@pytest.mark.slow
def test_torch_gallery_mistake_is_named(name, expected):
    pytest.importorskip("torch")
    report = check_implementation(gallery(name), quick=True)
    assert report.backend == "torch" and not report.passed
    assert report.named() == expected, report.render()


@pytest.mark.slow
def test_mistakes_are_named_across_the_full_sweep():
    """With every configuration (batch 1, one output, N = K collisions excluded), still one name."""
    for name in ("mse_batch_mean_only", "bias_not_summed", "sigmoid_prime_of_output"):
        report = check_implementation(gallery(name), seed=2)
        assert report.named() == MISTAKES[name], report.render()


@pytest.mark.slow
def test_corrected_formula_comes_from_the_derivation_records():
    report = check_implementation(gallery("tanh_erratum"), quick=True, extended=True)
    finding = report.finding("dJdW1")
    assert "1 − tanh(z1²)" in finding.title
    assert "dJ/dz1 = dJ/dz2 ⊙ (1 − tanh²(z1))" in finding.fix
    assert "dJ/dW1 = (dJ/dz1)ᵀ x" in finding.fix
    report = check_implementation(gallery("bce_erratum"), quick=True)
    assert any("log(1 − ŷ_nk)" in x for x in report.finding("J").fix)


@pytest.mark.slow
def test_the_worst_entry_is_reported(tmp_path):
    report = check_implementation(gallery("transposed_reshaped"), quick=True)
    qr = next(q for q in report.configs[0].quantities if q.name == "dJdW1")
    assert not qr.passed and qr.index is not None and qr.expected != qr.received
    assert 1 <= qr.call <= CALLS and qr.diagnosis == "transposed_reshaped"
    assert len(qr.index) == 2 and np.isfinite(qr.rel_error) and qr.rel_error > report.rtol
    accumulate = check_implementation(gallery("accumulate"), quick=True)
    qr = next(q for q in accumulate.configs[0].quantities if q.name == "dJdW2")
    assert qr.call > 1 and "call 1 was right" in qr.note


@pytest.mark.slow
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
@pytest.mark.slow
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


@pytest.mark.slow
def test_sys_exit_is_reported_per_quantity():
    report = check_implementation(gallery("sys_exit"), quick=True)
    assert all(c.status == "fail" for c in report.configs if c.required)
    assert all(c.status == "unsupported" for c in report.configs if not c.required)
    grads = [q for q in report.configs[0].quantities if q.name in GRADS]
    assert all(q.raised and "sys.exit('giving up')" in q.note and "impl_sys_exit.py:" in q.note for q in grads)
    assert all(q.passed for q in report.configs[0].quantities if q.name not in GRADS)


@pytest.mark.slow
def test_exception_in_backward_names_the_line():
    report = check_implementation(gallery("raises"), quick=True)
    grads = [q for q in report.configs[0].quantities if q.name == "dJdW1"]
    assert "ValueError while calling backward(dJdy_hat)" in grads[0].note
    assert "impl_raises.py:" in grads[0].note and not report.passed


@pytest.mark.slow
def test_import_error_is_reported():
    report = check_implementation(gallery("import_error"), quick=True)
    assert "RuntimeError while importing the module: this homework does not import" in report.error
    assert "impl_import_error.py:5" in report.error and not report.passed
    assert all(c.status == "not run" for c in report.configs)


@pytest.mark.slow
def test_sys_exit_at_import_and_missing_names(tmp_path):
    report = check_implementation(write(tmp_path, "bye", "import sys\nsys.exit(4)\n"), quick=True)
    assert "sys.exit(4)" in report.error and not report.passed
    report = check_implementation(write(tmp_path, "empty", "x = 1\n"), quick=True)
    assert "no MLP class" in report.error


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
@pytest.mark.slow
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


@pytest.mark.slow
def test_cli_hang_and_colour():
    report = check_implementation(gallery("hang"), quick=True, timeout=1)
    text = report.render(color=True)
    assert "\033[31m" in text and "timeout" in text and "configurations 2–4 not run" in text
    assert "\033[" not in report.render(color=False)


@pytest.mark.slow
def test_threads_left_running_do_not_hold_the_check(tmp_path):
    (tmp_path / "impl_correct_numpy.py").write_text((GALLERY / "impl_correct_numpy.py").read_text())
    path = write(tmp_path, "threads", """
        import threading, time
        from impl_correct_numpy import MLP, bce_loss, mse_loss

        threading.Thread(target=lambda: time.sleep(3600)).start()
    """)
    report = check_implementation(path, quick=True, timeout=5)
    assert report.passed, report.render()


# ---------------------------------------------------------------------- correct homework passes
HOMEWORK = ["homework_numpy_init", "homework_numpy_forward", "homework_keyerror", "homework_torch"]


@pytest.mark.slow
@pytest.mark.parametrize("name", HOMEWORK)
def test_homework_only_implementations_pass(name):
    """relu, sigmoid and identity only, raising for the rest in __init__, in forward or by KeyError."""
    for quick in (True, False):
        report = check_implementation(str(GALLERY / f"{name}.py"), quick=quick)
        assert report.passed and report.verdict == "PASS", report.render()
        assert all(c.status == "pass" for c in report.configs if c.required)
        assert all(c.status in ("pass", "unsupported") for c in report.configs if not c.required)
        assert not report.autograd
        if name != "homework_keyerror" or not quick:
            assert any(c.status == "unsupported" and "not supported" in c.note for c in report.configs)


@pytest.mark.slow
def test_optional_wrong_values_never_fail_the_homework(tmp_path):
    """A name it does not know silently taken as the identity: optional configurations fail, the check passes."""
    (tmp_path / "impl_correct_numpy.py").write_text((GALLERY / "impl_correct_numpy.py").read_text())
    path = write(tmp_path, "fallback", """
        from impl_correct_numpy import ACTIVATIONS, MLP as Correct, bce_loss, mse_loss

        class MLP(Correct):
            def __init__(self, n, m, f, m2, K, g):
                super().__init__(n, m, f if f in ACTIVATIONS else "identity", m2, K,
                                 g if g in ACTIVATIONS else "identity")
    """)
    report = check_implementation(path)
    assert report.passed, report.render()
    optional_fail = [c for c in report.configs if not c.required and c.status == "fail"]
    assert optional_fail and "(optional)" in report.render()
    extended = check_implementation(path, extended=True)
    assert not extended.passed and all(c.required for c in extended.configs)


@pytest.mark.slow
def test_extended_requires_every_activation():
    report = check_implementation(str(GALLERY / "homework_numpy_init.py"), quick=True, extended=True)
    assert not report.passed
    assert [c.status for c in report.configs] == ["pass", "pass", "error", "pass"]


# ---------------------------------------------------------------------- the gallery of cheats
CHEATS = sorted(p.stem for p in GALLERY.glob("cheat_*.py"))
needs_bwrap = pytest.mark.skipif(bubblewrap() is None, reason="bubblewrap is not installed or does not work here")
# cheats that would reach outside a process in the fallback (write the grader's files, leave a process)
OUTSIDE = {"cheat_patch_grader", "cheat_grandchild"}


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(c, marks=needs_bwrap) if c in OUTSIDE else c for c in CHEATS])
def test_no_cheat_passes(name):
    report = check_implementation(str(GALLERY / f"{name}.py"), quick=True)
    assert not report.passed, report.render()
    assert not any(ln.startswith("Result: PASS") for ln in report.render().splitlines())


@pytest.mark.slow
def test_cheat_verdicts_name_the_trick():
    cheat = {name: check_implementation(str(GALLERY / f"{name}.py"), quick=True)
             for name in ("cheat_handgrad", "cheat_autograd", "cheat_longdouble", "cheat_complex",
                          "cheat_report_float16", "cheat_report_float32", "cheat_read_inputs", "cheat_fifo",
                          "cheat_dev_zero", "cheat_event_forgery")}
    assert cheat["cheat_handgrad"].verdict == "USES AUTOGRAD" and "No module named 'handgrad'" in \
        cheat["cheat_handgrad"].error
    report = cheat["cheat_autograd"]
    assert report.verdict == "USES AUTOGRAD" and report.values_pass  # the gradients are right, and still compared
    assert "called Tensor.backward()" in report.autograd and "Uses autograd" in report.render()
    assert any("requires_grad_" in e for e in report.autograd)
    for name, dtype in (("cheat_longdouble", "float128"), ("cheat_complex", "complex128")):
        first = cheat[name].configs[0]
        assert first.status == "error" and f"dtype {dtype}" in first.note, cheat[name].render()
    assert "dtype float16" in cheat["cheat_report_float16"].error
    assert cheat["cheat_report_float32"].rtol == 1e-3  # the loosest there is, and 0.5% still fails it
    assert all(c.status == "fail" for c in cheat["cheat_read_inputs"].configs)
    for name in ("cheat_fifo", "cheat_dev_zero"):
        assert all("not a regular file" in c.note for c in cheat[name].configs), cheat[name].render()
    assert all(c.status != "pass" for c in cheat["cheat_event_forgery"].configs)


@pytest.mark.slow
def test_oversized_and_compressed_results_are_refused():
    bomb = check_implementation(str(GALLERY / "cheat_zip_bomb.py"), quick=True)
    assert all("compressed or oversized" in c.note for c in bomb.configs), bomb.render()
    flood = check_implementation(str(GALLERY / "cheat_print_flood.py"), quick=True)
    assert not flood.passed and len(flood.stderr_tail) < 5000
    assert all(c.status == "fail" for c in flood.configs if c.required), flood.render()


@pytest.mark.slow
@needs_bwrap
def test_the_grader_files_are_not_writable_to_the_checked_code():
    import handgrad.check

    package = Path(handgrad.check.__file__).parent
    before = {p.name: p.read_bytes() for p in package.glob("*.py")}
    report = check_implementation(str(GALLERY / "cheat_patch_grader.py"), quick=True)
    assert not report.passed
    assert {p.name: p.read_bytes() for p in package.glob("*.py")} == before
    assert not check_implementation(gallery("mse_sign"), quick=True).passed


@pytest.mark.slow
def test_forged_text_is_escaped():
    report = check_implementation(str(GALLERY / "cheat_forged_result.py"), quick=True)
    text = report.render()
    assert "\x1b" not in text and "\\x1b[8m" in text
    assert [ln for ln in text.splitlines() if ln.startswith("Result:")] == ["Result: FAIL (3 fail; optional: 1 "
                                                                             "unsupported)"]


def _processes_with(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if token.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.mark.slow
@needs_bwrap
def test_the_sandbox_ends_every_process_and_hides_handgrad(tmp_path):
    token = f"handgrad-test-{tmp_path.name}"
    grading = Path(__import__("handgrad.check.grading").check.grading.__file__)
    path = write(tmp_path, "probe", f"""
        import os, subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)  # {token}"],
                         start_new_session=True)
        try:
            import handgrad
            raise SystemExit("handgrad was importable")
        except ModuleNotFoundError:
            pass
        if os.path.exists({str(grading)!r}):
            raise SystemExit("the grader's files are visible")
        raise SystemExit("sandbox ok, uid %d, cwd %s" % (os.getuid(), os.getcwd()))
    """)
    report = check_implementation(path, quick=True)
    assert "sandbox ok" in report.error and "bubblewrap" in report.sandbox, report.render()
    assert not _processes_with(token)


@pytest.mark.slow
def test_the_fallback_says_what_it_does_not_protect(tmp_path):
    report = check_implementation(str(GALLERY / "homework_numpy_init.py"), quick=True, sandbox="none")
    assert report.passed and "does NOT hide handgrad" in report.sandbox
    assert "does NOT hide handgrad" in report.render()
    wrong = check_implementation(gallery("mse_sign"), quick=True, sandbox="none")
    assert wrong.named() == MISTAKES["mse_sign"]
    for name in ("cheat_autograd", "cheat_fifo", "cheat_report_float16", "cheat_forged_result"):
        assert not check_implementation(str(GALLERY / f"{name}.py"), quick=True, sandbox="none").passed


# ---------------------------------------------------------------------- the student's loop
@pytest.mark.slow
def test_template_is_the_interface_with_nothing_written(tmp_path, capsys):
    path = tmp_path / "mlp.py"
    assert main(["check", "--template", str(path)]) == 0 and path.exists()
    assert main(["check", "--template", str(path)]) == 2  # never overwrites
    assert "already exists" in capsys.readouterr().err
    report = check_implementation(str(path), quick=True)
    assert not report.passed and set(report.progress().values()) == {"not written yet"}, report.render()
    partial = check_implementation(str(GALLERY / "template_partial.py"), quick=True)
    progress = partial.progress()
    assert progress["J"] == progress["dJdy_hat"] == "pass" and progress["y_hat"] == "not written yet"
    wrong = check_implementation(gallery("mse_sign"), quick=True).progress()
    assert wrong["dJdy_hat"] == "wrong" and wrong["y_hat"] == "pass"


@pytest.mark.slow
@pytest.mark.parametrize("name,dtype", [("homework_bfloat16", "bfloat16")])
def test_unsupported_dtype_is_named(name, dtype):
    report = check_implementation(str(GALLERY / f"{name}.py"), quick=True)
    assert not report.passed
    assert all(f"dtype {dtype}" in c.note for c in report.configs if c.required), report.render()
    assert f"dtype {dtype}, which the check does not grade" in report.error and report.rtol is None
    assert "Traceback" not in report.render()


@pytest.mark.slow
def test_lists_where_tensors_are_required_fail_clearly():
    report = check_implementation(str(GALLERY / "homework_lists.py"), quick=True)
    y_hat = report.configs[0].quantities[0]
    assert not report.passed and "is a list; the interface returns a torch tensor" in y_hat.note


def test_cli_usage_errors_and_a_closed_pipe(capsys):
    assert main(["check", gallery("correct_numpy"), "--timeout", "1e308"]) == 2
    assert "--timeout must be a number of seconds in (0, 3600]" in capsys.readouterr().err
    assert main(["check", gallery("correct_numpy"), "--timeout", "nan"]) == 2
    assert main(["check"]) == 2


@pytest.mark.slow
def test_head_one_exits_quietly():
    import subprocess
    import sys

    for name, code in (("correct_numpy", 0), ("mse_sign", 1)):  # the exit status is still the grade's
        cmd = f"{sys.executable} -m handgrad check {gallery(name)} --verbose | head -1"
        done = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=120)
        assert done.stdout.startswith("handgrad check") and done.stderr == "" and done.returncode == code


# ---------------------------------------------------------------------- mistakes against planted results
PLANTS = {
    "transposed": ("dJdW1", lambda e, t, ref: e.T),
    "scale:-1": ("dJdy_hat", lambda e, t, ref: -e),
    "scale:NK": ("dJdy_hat", lambda e, t, ref: e * e.size),
    "bias_not_summed": ("dJdb2", lambda e, t, ref: ref.chain(ref.calls[t], ref.calls[t].grad_fed,
                                                             *ref.slopes(ref.calls[t]))["dJdz3"]),
    "gradients_not_zeroed": ("dJdW2", lambda e, t, ref: sum(c.expected["dJdW2"] for c in ref.calls[: t + 1])),
}


@pytest.mark.parametrize("mistake", PLANTS)
def test_mistake_is_named_from_planted_results(rng, mistake):
    """The grading and the catalogue, in-process: received = the reference with one quantity planted wrong."""
    from handgrad.check.grading import grade_config, summarize

    q, plant = PLANTS[mistake]
    ref = Reference(Config("sigmoid", "relu", "mse", N=4, n=3, m=5, K=2), rng)
    received = {f"t{t}_{k}": call.expected[k] for t, call in enumerate(ref.calls) for k in QUANTITIES}
    for t, call in enumerate(ref.calls):
        received[f"t{t}_{q}"] = plant(call.expected[q], t, ref)
    event = {"status": "ran", "errors": {}, "notes": []}
    result = grade_config(0, ref, event, received, 1e-7, required=True)
    assert result.status == "fail"
    assert [qr.name for qr in result.quantities if not qr.passed] == [q]
    findings = summarize([result])
    assert [(f.quantity, f.hypothesis) for f in findings] == [(q, mistake)]


def test_optional_configuration_that_raises_anywhere_is_unsupported(rng):
    from handgrad.check.grading import grade_config

    ref = Reference(Config("gelu", "identity", "mse", N=3, n=2, m=4, K=5), rng)
    for key in ("construct", "t0_y_hat", "t1_backward"):
        event = {"status": "construct_error" if key == "construct" else "ran", "notes": [],
                 "errors": {key: {"message": "KeyError while calling forward(x): 'gelu'", "where": "mlp.py:9",
                                  "type": "KeyError", "interface": False}}}
        assert grade_config(0, ref, event, {}, 1e-7, required=False).status == "unsupported"
        assert grade_config(0, ref, event, {}, 1e-7, required=True).status in ("error", "fail")


def test_escape_writes_control_characters_as_escapes():
    assert escape("ok\n\x1b[8mhidden\r\x07") == "ok\\n\\x1b[8mhidden\\r\\x07"
    assert escape("é ŷ ⊙") == "é ŷ ⊙" and len(escape("x" * 5000)) < 2100


# ---------------------------------------------------------------------- the teacher's loop
@pytest.mark.slow
def test_a_class_is_graded_end_to_end(tmp_path, capsys):
    import csv
    import sys

    sys.path.insert(0, str(GALLERY))
    try:
        from make_class import write_class
    finally:
        sys.path.remove(str(GALLERY))
    expected = write_class(tmp_path / "class", 14)
    (tmp_path / "rubric.toml").write_text("total = 10\n[weights]\ny_hat = 2\n")
    out = tmp_path / "grades"
    assert main(["check", str(tmp_path / "class"), "--out", str(out), "--quick", "--jobs", "2",
                 "--rubric", str(tmp_path / "rubric.toml")]) == 0
    assert "14 submissions" in capsys.readouterr().out
    rows = {r["student"]: r for r in csv.DictReader(open(out / "gradebook.csv"))}
    assert set(rows) == set(expected)
    for student, named in expected.items():
        row = rows[student]
        if student.endswith(("correct", "accumulate")):
            assert row["verdict"] == "PASS" and float(row["score"]) == 10.0, row
        else:
            assert row["verdict"] == "FAIL" and float(row["score"]) < 10.0, row
        if named:
            assert named[1] in row["mistakes"].split(";"), row
        assert (out / "reports" / f"{student}.txt").exists()
        data = json.loads((out / "reports" / f"{student}.json").read_text())
        assert data["verdict"] == row["verdict"]
        results = json.loads((out / "gradescope" / student / "results.json").read_text())
        assert results["score"] == float(row["score"]) and len(results["tests"]) == len(QUANTITIES)
    summary = (out / "summary.txt").read_text()
    assert "transposed" in summary and "Not written yet" in summary


@pytest.mark.slow
def test_rubric_scores_and_rejects_bad_files(tmp_path):
    from handgrad.check import Rubric

    (tmp_path / "bad.toml").write_text("[weights]\nWx = 1\n")
    with pytest.raises(ValueError, match="unknown quantities"):
        Rubric.load(tmp_path / "bad.toml")
    (tmp_path / "neg.json").write_text('{"weights": {"J": -1}}')
    with pytest.raises(ValueError, match="non-negative"):
        Rubric.load(tmp_path / "neg.json")
    report = check_implementation(str(GALLERY / "cheat_autograd.py"), quick=True)
    rubric = Rubric()
    points = rubric.points(report)
    assert points["dJdW1"][0] == 0 and points["y_hat"][0] == points["y_hat"][1]
    assert Rubric(autograd=1.0).score(report) == 100.0


@pytest.mark.slow
def test_gradescope_format(capsys):
    assert main(["check", gallery("correct_numpy"), "--quick", "--format", "gradescope"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["score"] == 100.0 and {t["name"] for t in data["tests"]} == set(QUANTITIES)


@pytest.mark.slow
@needs_bwrap
def test_resource_limits_hold_in_the_sandbox(tmp_path):
    path = write(tmp_path, "limits", """
        import os, threading
        import numpy as np

        started, stop = 0, threading.Event()
        try:
            for _ in range(400):
                threading.Thread(target=stop.wait, daemon=True).start()
                started += 1
        except RuntimeError:
            pass
        stop.set()
        try:
            memory = np.ones(10 * 2**30 // 8).size and "10 GiB allocated"
        except MemoryError:
            memory = "10 GiB refused"
        try:
            open("big", "wb").write(b"x" * (100 << 20))
            size = "100 MiB written"
        except OSError:
            size = "100 MiB refused"
        raise SystemExit(f"threads {started}; {memory}; {size}; network {os.path.exists('/sys/class/net/lo')}")
    """)
    report = check_implementation(path, quick=True)
    assert "10 GiB refused; 100 MiB refused" in report.error, report.error
    if os.geteuid() == 0:  # the limit on processes (256, threads included) holds for nobody, not for root
        assert int(report.error.split("threads ")[1].split(";")[0]) < 256, report.error


def test_optional_activations_read_the_registry():
    from handgrad.check import optional_activations
    from handgrad.functional import sigmoid
    from handgrad.registry import unregister_activation

    assert set(optional_activations()) == set(hg.activation_names(elementwise=True)) - set(REQUIRED)
    hg.register_activation("swish", forward=lambda x: x * sigmoid(x),
                           derivative=lambda x: sigmoid(x) * (1 + x * (1 - sigmoid(x))), formula="x·σ(x)",
                           derivative_formula="σ(x)(1 + x(1 − σ(x)))")
    try:
        assert "swish" in optional_activations() and any(c.f == "swish" for c in sweep(0))
    finally:
        unregister_activation("swish")
