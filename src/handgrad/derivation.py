"""Derivation records: each op's forward formula, Jacobian and backward rule, as data.

An op declares one :class:`Derivation` next to its code. ``explain`` renders it for
a concrete network by substituting that layer's variable names (``z1``, ``z2``, ...);
the same record renders as Unicode text, Markdown or LaTeX.

Placeholders (``string.Template`` syntax) used by the records:

- ``$x``, ``$y``: the op's input and output (for a loss: target ``$y``, prediction ``$p``)
- ``$W``, ``$b``: a Linear layer's parameters
- ``$c``: an activation's scale prefix (``5·`` for 5·ReLU, empty for scale 1)
- op constants such as ``$alpha`` (LeakyReLU) and ``$beta`` (softmax)

>>> f = Formula("$y = max(0, $x)", r"$y = \\max(0, $x)")
>>> f.render("text", x="z1", y="z2")
'z2 = max(0, z1)'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from string import Template

Symbol = str | tuple[str, str]
FORMATS = ("text", "markdown", "latex")


@dataclass(frozen=True)
class Formula:
    """One equation, written once in Unicode and once in LaTeX (math mode, no delimiters)."""

    text: str
    latex: str

    def render(self, fmt: str = "text", **symbols: Symbol) -> str:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        use_latex = fmt == "latex"
        values = {k: _pick(v, use_latex) for k, v in symbols.items()}
        template = self.latex if use_latex else self.text
        return Template(template).safe_substitute(values)


def _pick(symbol: Symbol, use_latex: bool) -> str:
    if isinstance(symbol, tuple):
        return symbol[1] if use_latex else symbol[0]
    return symbol


@dataclass(frozen=True)
class Derivation:
    """What an op computes and how its gradient flows, as data.

    Attributes
    ----------
    name : the op's name as shown to users ("Sigmoid").
    forward : the forward formula, output in terms of input.
    jacobian : the entries of the Jacobian d(output)/d(input), per sample.
    backward : the vector-Jacobian product dJ/d(input) from dJ/d(output).
    structure : "diagonal" (elementwise ops), "full" (softmax), "weight" (Linear:
        the Jacobian is W itself), or "gradient" for losses (a scalar output).
    why : one sentence saying why the Jacobian has that structure.
    param_grads : for ops with parameters, dJ/d(parameter) formulas.
    shape_in, shape_out : the shape flow, e.g. "(N, D)".
    """

    name: str
    forward: Formula
    jacobian: Formula
    backward: Formula
    structure: str
    why: str
    param_grads: tuple[Formula, ...] = field(default_factory=tuple)
    shape_in: str = "(N, D)"
    shape_out: str = "(N, D)"

    def formulas(self) -> dict[str, Formula]:
        out = {"forward": self.forward, "jacobian": self.jacobian, "backward": self.backward}
        for i, f in enumerate(self.param_grads):
            out[f"param_grad_{i}"] = f
        return out

    def render(self, fmt: str = "text", **symbols: Symbol) -> str:
        """All formulas of this op, one per line, with ``symbols`` substituted."""
        lines = [f"{self.name}:"] if fmt != "latex" else [rf"\text{{{self.name}}}:"]
        for key, f in self.formulas().items():
            label = key.replace("param_grad_", "gradient ").replace("_", " ")
            body = f.render(fmt, **symbols)
            lines.append(f"  {label}: {body}" if fmt != "latex" else rf"\quad {body}")
        return "\n".join(lines)


def activation_record(
    name: str,
    forward: tuple[str, str],
    derivative: tuple[str, str],
    *,
    uses_output: bool = False,
) -> Derivation:
    """The record of an elementwise activation y = c·φ(x), from φ and φ′.

    ``derivative`` is φ′ written in ``$x`` (or in ``$y`` when ``uses_output``, as
    for tanh and sigmoid whose backward reads the cached output).
    """
    d_text, d_latex = derivative
    # the Jacobian entry is written per element: x -> x_i
    d_text_i = d_text.replace("$x", "${x}_i")
    d_latex_i = d_latex.replace("$x", "{$x}_i")
    return Derivation(
        name=name,
        forward=Formula(f"$y = ${{c}}{forward[0]}", f"$y = ${{c}}{forward[1]}"),
        jacobian=Formula(
            f"∂${{y}}_i/∂${{x}}_j = δ_ij · ${{c}}{d_text_i}",
            rf"\frac{{\partial {{$y}}_i}}{{\partial {{$x}}_j}} = \delta_{{ij}}\, ${{c}}{d_latex_i}",
        ),
        backward=Formula(
            f"dJ/d$x = dJ/d$y ⊙ ${{c}}{d_text}",
            rf"\frac{{\partial J}}{{\partial $x}} = \frac{{\partial J}}{{\partial $y}} \odot ${{c}}{d_latex}",
        ),
        structure="diagonal",
        why=(
            "each output element depends only on the input element at the same position, "
            "so every off-diagonal entry is 0"
            + (" (the backward reads the cached output)" if uses_output else "")
        ),
    )
