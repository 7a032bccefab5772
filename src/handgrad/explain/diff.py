"""What changes between two configurations (1.2: another f, g or loss), equation by equation."""

from __future__ import annotations

from .records import Equation, Explanation, check_format
from .render import latex_document, latex_text


def diff(a: Explanation, b: Explanation) -> list[tuple[str, Equation | None, Equation | None]]:
    """The equations that differ between two explanations, by key, in ``a``'s order."""
    out: list[tuple[str, Equation | None, Equation | None]] = []
    bmap = {e.key: e for e in b.equations}
    for e in a.equations:
        other = bmap.pop(e.key, None)
        if other is None or other.signature() != e.signature():
            out.append((e.key, e, other))
    out.extend((key, None, e) for key, e in bmap.items())
    return out


def _title(a: Equation | None, b: Equation | None) -> str:
    return a.title if a is not None else b.title if b is not None else ""


def render_diff(a: Explanation, b: Explanation, fmt: str = "text", standalone: bool = True) -> str:
    """Only the equations of ``b`` that differ from ``a`` (1.2: what changes with f, g or the loss)."""
    check_format(fmt)
    changes = diff(a, b)
    if fmt == "latex":
        body = [rf"\section*{{{latex_text('What changes')}}}", latex_text(f"A: {a.title}") + r"\\",
                latex_text(f"B: {b.title}")]
        for _key, ea, eb in changes:
            body.append(rf"\subsection*{{{latex_text(_title(ea, eb))}}}")
            for tag, e in (("A", ea), ("B", eb)):
                body.append(rf"\noindent {tag}: " + (rf"$\displaystyle {e.latex}$" if e else "(absent)") + r"\\")
        if not changes:
            body.append("The two configurations give the same equations.")
        return latex_document("\n".join(body)) if standalone else "\n".join(body)
    lines = [f"--- A: {a.title}", f"+++ B: {b.title}"] if fmt == "text" else \
        ["# What changes", "", f"- **A:** {a.title}", f"- **B:** {b.title}", ""]
    for _key, ea, eb in changes:
        title = _title(ea, eb)
        lines += [f"@@ {title}"] if fmt == "text" else [f"## {title}", "", "```diff"]
        lines += [f"- {line}" for line in _diff_lines(ea, eb)]
        lines += [f"+ {line}" for line in _diff_lines(eb, ea)]
        lines += [] if fmt == "text" else ["```", ""]
    if not changes:
        lines.append("(the two configurations give the same equations)")
    return "\n".join(lines)


def _diff_lines(e: Equation | None, other: Equation | None) -> list[str]:
    """The lines of ``e`` to show against ``other``: its text, plus shape, note or why where they differ."""
    if e is None:
        return ["(absent)"]
    lines = e.text.splitlines()
    for attr in ("shape", "note", "why"):
        value = getattr(e, attr)
        if value and (other is None or getattr(other, attr) != value):
            lines.append(f"  {attr}: {value}")
    return lines


__all__ = ['diff', 'render_diff']
