"""What an explanation is made of: its equations, its numerical checks, and the Explanation that holds them (rendered by :mod:`.render`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..comparison import Comparison
from ..derivation import FORMATS

SECTIONS = ("forward", "composed", "chain", "backward", "expanded", "jacobian")


KEY_TITLES = {"forward": "forward pass", "composed": "composed", "chain": "chain of Jacobians",
              "backward": "matrix form", "expanded": "expanded", "jacobian": "Jacobian"}


@dataclass
class Equation:
    """One rendered equation of an explanation.

    ``key`` is stable across configurations (``"forward:z2"``, ``"backward:dJ/dW1"``,
    ``"jacobian:∂z2/∂z1"``) so two explanations can be compared; ``text`` and ``latex``
    are the two renderings; ``shape`` describes the sizes.
    """

    key: str
    section: str
    text: str
    latex: str
    shape: str = ""
    shape_latex: str = ""
    note: str = ""
    structure: str = ""
    why: str = ""

    def render(self, fmt: str) -> str:
        return self.latex if fmt == "latex" else self.text

    def signature(self) -> tuple[str, str, str]:
        """What makes two equations the same: the formula, its shape and its structure (not a note's wording)."""
        return (self.text, self.shape, self.structure)

    @property
    def title(self) -> str:
        """A reader's name for the equation: 'matrix form: dJ/dz3', never the internal key."""
        section, _, name = self.key.partition(":")
        return f"{KEY_TITLES.get(section, section)}: {name}"


Check = Comparison  # explain's name for a comparison: ``quantity`` checked ``against`` a reference


def check_line(c: Comparison, mark: bool = True) -> str:
    """One line of the checks list: ✓/✗, verdict, quantity, what it was checked against, the errors."""
    sign = ("✓ " if c.passed else "✗ ") if mark else ""
    if c.note and not np.isfinite(c.rel_error):
        return f"{sign}{c.word}  {c.quantity:<9} vs {c.against:<24} {c.note}"
    extra = f"  ({c.note})" if c.note else ""
    return (f"{sign}{c.word}  {c.quantity:<9} vs {c.against:<24} rel {c.rel_error:8.1e}  "
            f"max abs {c.max_abs_error:8.1e}{extra}")


@dataclass
class Explanation:
    """The structured result of :func:`derive`; ``render(fmt)`` gives the text."""

    title: str
    config: dict[str, Any]
    sizes: dict[str, int]
    equations: list[Equation]
    values: dict[str, np.ndarray] = field(default_factory=dict)
    jacobian_values: dict[str, np.ndarray] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    point: str = ""
    source: str = ""  # where the network came from (a model file), shown under the title

    def section(self, name: str) -> list[Equation]:
        if name not in SECTIONS:
            raise ValueError(f"section must be one of {', '.join(SECTIONS)}, got {name!r}")
        return [e for e in self.equations if e.section == name]

    def equation(self, key: str) -> Equation:
        for e in self.equations:
            if e.key == key:
                return e
        raise KeyError(f"no equation {key!r}; have {[e.key for e in self.equations]}")

    @property
    def keys(self) -> list[str]:
        return [e.key for e in self.equations]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def render(self, fmt: str = "text", standalone: bool = True) -> str:
        """Unicode text, Markdown, or LaTeX (a complete document unless ``standalone=False``)."""
        check_format(fmt)
        if fmt == "latex":
            from .render import render_latex

            return render_latex(self, standalone)
        from .render import render_markdown, render_text

        return render_markdown(self) if fmt == "markdown" else render_text(self)

    def __str__(self) -> str:
        return self.render("text")

    # ------------------------------------------------------------------ notebooks
    def _repr_markdown_(self) -> str:
        """In Jupyter: the Markdown rendering, with the checks as a table."""
        return self.render("markdown")

    def _repr_latex_(self) -> str:
        """In Jupyter: every equation typeset (MathJax), one aligned block per section."""
        from .render import section_title

        rows = []
        for sec in SECTIONS:
            eqs = self.section(sec)
            if eqs:
                rows.append(r"&\text{" + section_title(sec, self.config.get("question", "")).replace("→", "to") + "}")
                rows += [" &= ".join(e.latex.partition(" = ")[::2]) if " = " in e.latex else "&" + e.latex for e in eqs]
        return "$$\\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}$$"


def checks_table(checks: Sequence[Check]) -> str:
    """The checks as a Markdown table: quantity, reference, verdict, errors, note."""
    lines = ["| quantity | against | verdict | rel. error | max abs. error | note |", "|---|---|---|---|---|---|"]
    for c in checks:
        rel = f"{c.rel_error:.1e}" if np.isfinite(c.rel_error) else "–"
        mx = f"{c.max_abs_error:.1e}" if np.isfinite(c.max_abs_error) else "–"
        note = c.note.replace("|", "\\|")
        lines.append(f"| {c.quantity} | {c.against} | {'✓ ' if c.passed else '✗ '}{c.word} | {rel} | {mx} | {note} |")
    return "\n".join(lines)


def check_format(fmt: Any) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")


__all__ = ['Check', 'check_line', 'Equation', 'Explanation', 'KEY_TITLES', 'SECTIONS', 'check_format', 'checks_table']
