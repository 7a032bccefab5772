"""The one comparison type, as gradcheck, explain and the grader report it."""

from __future__ import annotations

import math

import numpy as np
import pytest

import handgrad as hg
from handgrad.check import compare as grader_compare
from handgrad.comparison import Comparison, compare, compare_entrywise
from handgrad.explain import check_line, derive
from handgrad.gradcheck import check_loss


def test_normwise_compare_names_the_worst_entry_and_the_tolerance():
    c = compare("dJ/dW", np.array([1.0, 2.0, 3.5]), np.array([1.0, 2.0, 3.0]), rtol=1e-6, atol=1e-10, against="fd")
    assert not c.passed and c.word == "FAIL" and c.index == (2,)
    assert (c.reference, c.analytic, c.rtol, c.atol, c.against) == (3.0, 3.5, 1e-6, 1e-10, "fd")
    assert c.rel_error == pytest.approx(0.5 / np.linalg.norm([1.0, 2.0, 3.5])) and c.max_abs_error == 0.5
    assert c.line().startswith("FAIL  dJ/dW") and "worst at [2]: reference 3, analytic 3.5" in c.line()


def test_entrywise_compare_uses_the_graders_words_and_floor():
    c = compare_entrywise(np.array([1.0, 1e-12]), np.array([1.0, 0.0]), name="dJdb1", rtol=1e-7)
    assert c.name == c.quantity == "dJdb1" and c.rel_error == pytest.approx(1e-9) and c.passed
    bad = compare_entrywise(np.array([2.0, 0.0]), np.array([1.0, 0.0]), rtol=1e-7)
    assert not bad.passed and (bad.expected, bad.received, bad.index) == (1.0, 2.0, (0,))
    shape = compare_entrywise(np.zeros((2, 3)), np.zeros((3, 2)))
    assert math.isinf(shape.rel_error) and not shape.passed and "shape (2, 3)" in shape.note


def test_gradcheck_explain_and_the_grader_report_the_same_type(rng):
    report = check_loss("mse", rng.normal(size=(3, 2)), rng.normal(size=(3, 2)))
    ex = derive(hg.MLP(2, [3], 1, seed=0, dtype=np.float64), "mse", at="random", torch=False)
    assert isinstance(report.worst, Comparison) and all(isinstance(c, Comparison) for c in ex.checks)
    assert isinstance(grader_compare(np.ones(2), np.ones(2)), Comparison)
    kink = Comparison("dJ/dW1", 1e-9, 1e-12, passed=True, against="finite differences", verdict="kink")
    assert check_line(kink).split()[:3] == ["✓", "kink", "dJ/dW1"] and kink.word == "kink"
