"""An explanation as Unicode text, Markdown or LaTeX (base packages only, so pdflatex compiles it)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import numpy as np

from .records import SECTIONS, Equation, Explanation, check_line, checks_table


def format_value(a: Any, indent: int = 0, width: int = 100) -> str:
    a = np.asarray(a)
    return np.array2string(a, precision=4, suppress_small=True, max_line_width=width, threshold=24, edgeitems=3,
                           separator=", ").replace("\n", "\n" + " " * indent)


def section_title(name: str, question: str = "") -> str:
    """A section's heading, naming the seed's question it answers: 1.1 for regression, 1.2 for classification."""
    refs = {"1.1": ("homework 1.1(b)", "1.1(c)", "1.1(d)"), "1.2": ("homework 1.2(a)", "1.2(a)-(b)", "1.2(a)")}.get(question)
    fwd, chain, jac = (f" ({r})" for r in refs) if refs else ("", "", "")
    chain = f" ({chain[2:-1]}; one sample, numerator layout)" if refs else " (one sample, numerator layout)"
    return {
        "forward": f"Forward pass, layer by layer{fwd}",
        "composed": "The whole network as one expression",
        "chain": f"Backward pass as a chain of Jacobians{chain}",
        "backward": "Backward pass in matrix form (the whole batch, as backward computes it)",
        "expanded": "Each parameter gradient, expanded",
        "jacobian": f"The Jacobians, element by element{jac}",
    }[name]


def sizes_line(ex: Explanation) -> str:
    parts = [f"{k} = {v}" for k, v in ex.sizes.items()]
    return "sizes: " + ", ".join(parts) + "; N = batch size"


def render_text(ex: Explanation) -> str:
    lines = [f"handgrad explain: {ex.title}", *([ex.source] if ex.source else []), sizes_line(ex)]
    for sec in SECTIONS:
        eqs = ex.section(sec)
        if not eqs:
            continue
        lines += ["", section_title(sec, ex.config.get('question', ''))]
        width = min(max((len(e.text.splitlines()[0]) for e in eqs), default=0), 56)
        for e in eqs:
            first, *rest = e.text.splitlines()
            if sec == "jacobian":
                lines.append(f"  {first}")
                lines += [f"      {r}" for r in rest]
                lines.append(f"      why: {e.why}")
                continue
            lines.append(f"  {first:<{width}}   {e.shape}".rstrip())
            if e.note:
                lines.append(f"      ({e.note})")
    lines += seed_lines(ex, "text")
    lines += text_values(ex)
    return "\n".join(lines) + "\n"


def seed_lines(ex: Explanation, fmt: str) -> list[str]:
    """Mistakes of the worked answers to the question this configuration answers, beside the corrections."""
    from .seed import errata_for

    question = ex.config.get("question", "")
    rows = errata_for(question) if question else []
    if not rows:
        return []
    if fmt == "markdown":
        out = ["", f"## Mistakes of the worked answers to {question}, corrected", ""]
        return out + [f"- **{qid}** the worked answers say: {said}  \n  correct: {right}" for qid, said, right in rows]
    if fmt == "latex":
        heading = latex_text(f"Mistakes of the worked answers to {question}, corrected")
        out = [rf"\subsection*{{{heading}}}",
               r"\begin{itemize}"]
        out += [rf"\item \textbf{{{qid}}} the worked answers say: {note_latex(said)}; correct: {note_latex(right)}"
                for qid, said, right in rows]
        return out + [r"\end{itemize}"]
    out = ["", f"Mistakes of the worked answers to {question}, corrected (handgrad homework shows each at a point)"]
    for qid, said, right in rows:
        out += [f"  {qid} the worked answers say: {said}", f"         correct: {right}"]
    return out


def text_values(ex: Explanation) -> list[str]:
    if not ex.values:
        return []
    lines = ["", f"Evaluated at {ex.point}"]
    w = max(len(k) for k in ex.values)
    for k, v in ex.values.items():
        lines.append(f"  {k:<{w}} = {format_value(v, w + 5)}")
    lines.append("  Jacobians of the first sample:")
    w = max(len(k) for k in ex.jacobian_values)
    for k, v in ex.jacobian_values.items():
        lines.append(f"  {k:<{w}} = {format_value(v, w + 5)}")
    if ex.checks:
        n_pass = sum(c.passed for c in ex.checks)
        lines += ["", f"Checks: {n_pass}/{len(ex.checks)} pass"]
        lines += [f"  {check_line(c)}" for c in ex.checks]
    return lines


def render_markdown(ex: Explanation) -> str:
    lines = [f"# handgrad explain: {ex.title}", "", *([ex.source, ""] if ex.source else []), sizes_line(ex)]
    for sec in SECTIONS:
        eqs = ex.section(sec)
        if not eqs:
            continue
        lines += ["", f"## {section_title(sec, ex.config.get('question', ''))}", ""]
        for e in eqs:
            first, *rest = e.text.splitlines()
            if sec == "jacobian":
                lines.append(f"- **`{first}`**")
                lines += [f"  - `{r}`" for r in rest]
                lines.append(f"  - *why*: {e.why}")
                continue
            lines.append(f"- `{first}`" + (f" — shape `{e.shape}`" if e.shape else ""))
            if e.note:
                lines.append(f"  - {e.note}")
    lines += seed_lines(ex, "markdown")
    if ex.values:
        values = text_values(ex)[2:]
        if ex.checks:  # the checks as a table, below the values
            values = values[:next(i for i, line in enumerate(values) if line.startswith("Checks:")) - 1]
        lines += ["", f"## Evaluated at {ex.point}", "", "```text", *values, "```"]
        if ex.checks:
            lines += ["", f"### Checks: {sum(c.passed for c in ex.checks)}/{len(ex.checks)} pass", "",
                      checks_table(ex.checks)]
    return "\n".join(lines) + "\n"


_LATEX_TEXT = {
    "ŷ": r"$\hat{y}$", "ᵀ": r"$^\top$", "−": "-", "×": r"$\times$", "·": r"$\cdot$", "→": r"$\to$",
    "∂": r"$\partial$", "β": r"$\beta$", "σ": r"$\sigma$", "δ": r"$\delta$", "⊙": r"$\odot$", "Σ": r"$\Sigma$",
    "φ": r"$\varphi$", "Φ": r"$\Phi$", "π": r"$\pi$", "√": r"$\surd$", "²": r"$^2$", "³": r"$^3$", "½": r"$\frac12$",
    "≤": r"$\le$", "≥": r"$\ge$", "‖": r"$\|$", "✓": r"$\checkmark$", "✗": r"$\times$", "—": "---", "–": "--",
    "α": r"$\alpha$", "ε": r"$\varepsilon$", "θ": r"$\theta$", "ℝ": r"$\mathbb{R}$",
    "≠": r"$\neq$", "←": r"$\gets$", "ℓ": r"$\ell$", "⁺": r"$^+$", "′": "'", "∞": r"$\infty$",
}


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "|": r"$|$",
                  "<": r"$<$", ">": r"$>$"}


_MATH = {"∂": r"\partial ", "ŷ": r"\hat{y}", "ᵀ": r"^\top", "·": r"\cdot ", "×": r"\times ", "−": "-",
         "⊙": r"\odot ", "σ": r"\sigma", "δ": r"\delta", "β": r"\beta", "²": "^2", "′": "'", "Σ": r"\sum ",
         "→": r"\to ", "≤": r"\le ", "≥": r"\ge ", "ε": r"\varepsilon", "θ": r"\theta", "⁺": "^+",
         "ℝ": r"\mathbb{R}", "ⁿ": "^n", "ℓ": r"\ell", "‖": r"\|", "≠": r"\neq ", "∞": r"\infty"}
_MATH_MARK = re.compile(r"[∂ŷᵀ·×⊙σδβ²′Σ≤≥εθ⁺ℓ‖≠∞ℝⁿ]|^(?:[zWbxy]\d+|d\w+/d\w+|[A-Za-z]\w*_[a-z]+)$")


def math_text(token: str) -> str:
    """A formula written in Unicode text (∂ŷ/∂z3, W2ᵀ, σ(z)) as LaTeX math: z3 → z_{3}, ∂ → \\partial."""
    token = re.sub(r"_([A-Za-z0-9]+)", r"_{\1}", token)
    token = re.sub(r"([A-Za-z])(\d+)", r"\1_{\2}", token)
    token = re.sub(r"_\{(\w+)\}_\{(\w+)\}", r"_{\1,\2}", token)  # z3_i: one subscript, z_{3,i}
    token = re.sub(r"\b(tanh|log|exp|max|min)\b", r"\\\1 ", token)
    token = re.sub(r"\^\(([^()]*)\)", r"^{\1}", token)  # ℝ^(m×n): the whole exponent raised
    out = []
    for ch in token:
        if ch in _MATH:
            out.append(_MATH[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:  # anything else as its closest ASCII, so pdflatex with base packages always compiles
            out.append(unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode() or "?")
    return "".join(out)


def note_latex(s: str) -> str:
    """A note in words with formulas in it: each formula-like word set in math, the rest as text."""
    pieces = []
    for word in s.split(" "):
        core = word.rstrip(",;:.")
        tail = word[len(core):]
        lead = ""
        while core.startswith("(") and not core.endswith(")"):
            lead, core = lead + "(", core[1:]
        if core and _MATH_MARK.search(core):
            pieces.append(latex_text(lead) + "$" + math_text(core) + "$" + latex_text(tail))
        else:
            pieces.append(latex_text(word))
    return " ".join(pieces)


def latex_text(s: str) -> str:
    """Plain text (with Unicode math symbols) made safe for a LaTeX paragraph."""
    out = []
    for ch in s:
        if ch in _LATEX_SPECIAL:
            out.append(_LATEX_SPECIAL[ch])
        elif ch in _LATEX_TEXT:
            out.append(_LATEX_TEXT[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            ascii_form = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            out.append(ascii_form or "?")
    return "".join(out)


def latex_align(eqs: list[Equation], with_shape: bool) -> list[str]:
    rows = []
    for e in eqs:
        lhs, _, rhs = e.latex.partition(" = ")
        row = f"{lhs} &= {rhs}" if rhs else f"&{e.latex}"
        if with_shape and e.shape_latex:
            row += rf" && {e.shape_latex}"
        rows.append(row)
    return [r"\begin{align*}", " \\\\\n".join(rows), r"\end{align*}"]


def render_latex(ex: Explanation, standalone: bool) -> str:
    body = [rf"\section*{{{latex_text('handgrad explain')}}}", latex_text(ex.title) + r"\\",
            *([latex_text(ex.source) + r"\\"] if ex.source else []), latex_text(sizes_line(ex))]
    for sec in SECTIONS:
        eqs = ex.section(sec)
        if not eqs:
            continue
        body.append(rf"\subsection*{{{latex_text(section_title(sec, ex.config.get('question', '')))}}}")
        if sec == "jacobian":
            for e in eqs:
                body += [rf"\[ {e.latex} \]", r"\noindent " + note_latex(f"{e.structure}: {e.why}.") + r"\par"]
            continue
        if sec == "chain":
            for e in eqs:
                body += [rf"\[ {e.latex} \]", r"\noindent " + note_latex(f"shapes {e.shape}; {e.note}.") + r"\par"]
            continue
        body += latex_align(eqs, with_shape=sec in ("forward", "backward"))
        body += [r"\noindent $" + e.latex.partition(" = ")[0] + "$: " + note_latex(e.note) + r"\par"
                 for e in eqs if e.note]
    body += seed_lines(ex, "latex")
    if ex.values:
        body.append(rf"\subsection*{{{latex_text('Evaluated at ' + ex.point)}}}")
        ascii_lines = [ascii_text(line) for line in text_values(ex)[2:]]
        body += [r"\begin{verbatim}", *ascii_lines, r"\end{verbatim}"]
    text = "\n".join(body)
    return latex_document(text) if standalone else text


def ascii_text(s: str) -> str:
    table = {"ŷ": "y_hat", "∂": "d", "✓": "[ok]", "✗": "[X]", "·": "*", "×": "x", "−": "-", "→": "->"}
    s = "".join(table.get(ch, ch) for ch in s)
    return unicodedata.normalize("NFKD", s).encode("ascii", "replace").decode()


def latex_document(body: str) -> str:
    return "\n".join([
        r"\documentclass[10pt]{article}",
        r"\usepackage[margin=1.6cm,landscape]{geometry}",
        r"\usepackage{amsmath,amssymb}",
        r"\allowdisplaybreaks",
        r"\begin{document}",
        body,
        r"\end{document}",
        "",
    ])


__all__ = ['math_text', 'note_latex', 'ascii_text', 'format_value', 'latex_align', 'latex_document', 'latex_text', 'render_latex', 'render_markdown', 'render_text', 'section_title', 'seed_lines', 'sizes_line', 'text_values']
