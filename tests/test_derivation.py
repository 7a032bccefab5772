"""Derivation records: every op declares one, and it renders in every format."""

from __future__ import annotations

import pytest

import handgrad as hg
from handgrad.derivation import Formula
from handgrad.registry import activation_names, make_activation

LAYERS = [make_activation(name) for name in activation_names()] + [hg.Linear(2, 3), hg.Scale(5.0)]
LOSSES = [hg.make_loss(name) for name in hg.LOSSES]


@pytest.mark.parametrize("layer", LAYERS, ids=repr)
@pytest.mark.parametrize("fmt", ["text", "markdown", "latex"])
def test_every_layer_renders_without_leftover_placeholders(layer, fmt):
    text = layer.explain(fmt, x=("z1", "z_1"), y=("z2", "z_2"), W=("W1", "W^{(1)}"), b=("b1", "b^{(1)}"))
    assert "$" not in text, text
    assert layer.derivation.structure in ("diagonal", "full", "weight")


@pytest.mark.parametrize("loss", LOSSES, ids=repr)
@pytest.mark.parametrize("fmt", ["text", "latex"])
def test_every_loss_renders(loss, fmt):
    text = loss.explain(fmt, N="N", K="K")
    assert "$" not in text, text
    if loss.fused_formula is not None:
        assert "$" not in loss.fused_formula.render(fmt, z="z3", y="y", p="ŷ", N="N", K="K")


def test_latex_braces_balance():
    for layer in LAYERS:
        tex = layer.explain("latex", x="z_1", y="z_2", W="W", b="b")
        assert tex.count("{") == tex.count("}"), tex


def test_scaled_relu_shows_its_factor():
    text = make_activation("5relu").explain(x="z1", y="z2")
    assert "z2 = 5·max(0, z1)" in text and "5·1[z1_i > 0]" in text


def test_bce_record_has_the_corrected_term_and_factor():
    text = hg.BCELoss().explain(N="N", K="K")
    assert "(1 − y_nk) log(1 − ŷ_nk)" in text
    assert "−(1/(N·K))" in text.split("backward:")[1]


def test_linear_record_gives_the_corrected_weight_gradient():
    text = hg.Linear(2, 3).explain(x="z2", y="z3", W="W2", b="b2")
    assert "dJ/dW2 = (dJ/dz3)ᵀ z2" in text
    assert "z3 = z2 W2ᵀ + b2" in text


def test_formula_rejects_unknown_format():
    with pytest.raises(ValueError, match="format must be one of"):
        Formula("a", "a").render("html")


def test_log_softmax_jacobian_reads_softmax_of_beta_x():
    two = hg.LogSoftmax(beta=2)
    assert "∂y_i/∂x_j = 2·(δ_ij − softmax(2·x)_j)" in two.explain()
    assert r"\mathrm{softmax}(2\, x)_j" in two.explain("latex")
    assert "softmax(x)_j" in hg.LogSoftmax().explain() and "·" not in hg.LogSoftmax().explain().split("jacobian")[1]


def test_relu_indicator_is_a_bold_one_in_latex():
    tex = hg.ReLU().explain("latex")
    assert r"\mathbf{1}[x > 0]" in tex and r"\mathbb" not in tex
