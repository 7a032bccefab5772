"""--check-formula: a student's derivation parsed (never executed) and judged at random points."""

import pytest

from handgrad.cli import main
from handgrad.explain.formula import FormulaError, check_formula, parse


@pytest.mark.parametrize("preset,formula", [
    ("regression", "dJdW2 = dJdz3.T @ z2"),
    ("regression", "dJdb2 = sum(dJdz3, 0)"),
    ("regression", "dJdW1 = dJdz1.T @ x"),
    ("classification-bce", "dJdz3 = dJdy_hat * y_hat * (1 - y_hat)"),
    ("classification-mse", "dJdz1 = dJdz2 * (1 - tanh(z1)**2)"),
])
def test_right_formulas(preset, formula):
    v = check_formula(preset, formula)
    assert v.right, str(v)


@pytest.mark.parametrize("preset,formula,mistake", [
    ("regression", "dJdW2 = z2.T @ dJdz3", "transpose"),
    ("regression", "dJdW2 = 5 * dJdz3.T @ z2", "5"),
    ("classification-mse", "dJdz1 = dJdz2 * (1 - tanh(z1**2))", "tanh(z²)"),
    ("classification-bce", "dJdz3 = y_hat - y", "1/(N·K)"),
    ("regression", "dJdW2 = -(dJdz3.T @ z2)", "sign"),
])
def test_wrong_formulas_name_the_mistake(preset, formula, mistake):
    v = check_formula(preset, formula)
    assert not v.right and mistake in v.mistake, str(v)


def test_homework_notation():
    assert check_formula("regression", "dl/dW(2) = dl/dz3.T @ z2.T", notation="homework").right
    v = check_formula("regression", "dl/dW(2) = z2 @ dl/dz3", notation="homework")
    assert not v.right and "transpose" in v.mistake


@pytest.mark.parametrize("text,match", [
    ("dJdW2 = __import__('os').system('echo hi')", "not allowed|unknown function|only numbers"),
    ("dJdW2 = z2.__class__", "only .T"),
    ("dJdW2 = " + "tanh(" * 300 + "x" + ")" * 300, "too deeply nested"),
    ("dJdW2 = " + "(" * 900 + "x" + ")" * 900, "too deeply nested"),
    ("dJdW2 = " + "-" * 500 + "x", "too deeply nested"),
    ("dJdW2 = lambda: 1", "not allowed"),
    ("dJdW2 = z2[0]", "indexing"),
    ("dJdW2 = nope @ z2", "unknown name"),
])
def test_unsafe_or_bad_input_is_refused(text, match):
    with pytest.raises(FormulaError, match=match):
        v = check_formula("regression", text)
        raise AssertionError(str(v))


def test_shape_mismatch_in_the_middle():
    v = check_formula("regression", "dJdW2 = dJdz3 @ z2")
    assert not v.right and "do not fit" in v.reason


def test_parse_never_evaluates():
    lhs, expr = parse("dJdW2 = dJdz3.T @ z2")
    assert lhs == "dJdW2"


def test_cli_check_formula(capsys):
    assert main(["explain", "--preset", "regression", "--check-formula", "dJdW2 = dJdz3.T @ z2"]) == 0
    assert capsys.readouterr().out.startswith("right")
    assert main(["explain", "--preset", "regression", "--check-formula", "dJdW2 = z2.T @ dJdz3"]) == 1
    assert "transpose" in capsys.readouterr().out
    assert main(["explain", "--preset", "regression", "--check-formula", "dJdW2 = import os"]) == 2
