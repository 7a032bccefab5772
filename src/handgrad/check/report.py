"""The terminal report of a check: one block per configuration, the diagnosis, the progress and the verdict.

Everything the checked code said (messages, notes, stderr) was escaped when it
came in, so nothing here can print a control character it sent.
"""

from __future__ import annotations

from typing import Any

from .grading import escape

COLORS = {"pass": "32", "FAIL": "31", "unsupported": "33", "skipped": "33", "error": "31", "timeout": "31",
          "crash": "31", "not run": "2", "bold": "1", "dim": "2", "optional": "33", "USES AUTOGRAD": "35"}
PROGRESS = {"pass": "pass", "wrong": "wrong", "not written yet": "not written yet", "raised": "raises",
            "not run": "not run"}


def _paint(text: str, key: str, color: bool) -> str:
    return f"\033[{COLORS[key]}m{text}\033[0m" if color else text


def _num(v: float | None) -> str:
    return "—" if v is None else f"{v:.6g}"


def _quantity_line(qr: Any, color: bool) -> list[str]:
    mark = _paint("pass", "pass", color) if qr.passed else _paint("FAIL", "FAIL", color)
    if qr.passed:
        return [f"      {qr.name:<9} {mark}  worst relative error {qr.rel_error:.1e}"]
    lines = []
    if qr.raised:
        mark = _paint("not written yet", "skipped", color) if qr.state == "not written yet" else mark
        lines.append(f"      {qr.name:<9} {mark}  call {qr.call}: {qr.note}")
        return lines
    where = f" at [{', '.join(map(str, qr.index))}]" if qr.index is not None else ""
    values = (f": expected {_num(qr.expected)}, received {_num(qr.received)}" if qr.expected is not None else "")
    rel = "inf" if qr.rel_error == float("inf") else f"{qr.rel_error:.1e}"
    lines.append(f"      {qr.name:<9} {mark}  relative error {rel}, call {qr.call}{where}{values}")
    if qr.note:
        lines.append(f"                {qr.note}")
    if qr.diagnosis:
        lines.append(f"                mistake: {qr.title}")
    elif qr.candidates:
        lines.append(f"                several mistakes fit equally: {', '.join(qr.candidates)}")
    else:
        lines.append("                no known mistake fits")
    return lines


def _config_lines(c: Any, color: bool, verbose: bool) -> list[str]:
    status = c.status if c.status != "fail" else "FAIL"
    shown_status = status if c.required or c.status in ("pass", "unsupported") else f"{status} (optional)"
    head = f"  {c.index:>2}  {c.config.label():<52} {_paint(shown_status, status, color)}"
    if c.status == "pass":
        worst = max(qr.rel_error for qr in c.quantities)
        lines = [f"{head}  (worst relative error {worst:.1e})"]
        return lines + ([ln for qr in c.quantities for ln in _quantity_line(qr, color)] if verbose else [])
    lines = [head]
    if c.note:
        lines.append(f"      {c.note}")
    shown = [qr for qr in c.quantities if verbose or not qr.passed]
    i = 0
    while i < len(shown):  # quantities that failed with the same error are listed once
        qr, j = shown[i], i + 1
        while qr.raised and j < len(shown) and shown[j].raised and (shown[j].note, shown[j].call) == (qr.note, qr.call):
            j += 1
        names = ", ".join(s.name for s in shown[i:j])
        if j - i > 1:
            mark = "not written yet" if all(s.state == "not written yet" for s in shown[i:j]) else "FAIL"
            lines.append(f"      {names}  {_paint(mark, 'skipped' if mark != 'FAIL' else 'FAIL', color)}  "
                         f"call {qr.call}: {qr.note}")
        else:
            lines.extend(_quantity_line(qr, color))
        i = j
    return lines


def _grouped_findings(findings: list[Any]) -> list[tuple[Any, list[str], list[str]]]:
    """Findings with the same named mistake in the same configurations, merged: (finding, quantities, fixes)."""
    groups: dict[Any, tuple[Any, list[str], list[str]]] = {}
    for f in findings:
        key = (f.hypothesis, tuple(f.configs)) if f.hypothesis else id(f)
        first, qs, fixes = groups.setdefault(key, (f, [], []))
        qs.append(f.quantity)
        fixes.extend(x for x in f.fix if x not in fixes)
    return list(groups.values())


def render_report(report: Any, color: bool = False, verbose: bool = False) -> str:
    """The human-readable report: one block per configuration, then the named mistakes."""
    n = len(report.configs)
    where = f"{report.backend} {report.dtype}, " if report.backend else ""
    tol = f", pass: relative error ≤ {report.rtol:g}" if report.rtol else ""
    profile = "extended: every activation required" if report.extended else \
        "homework: relu, sigmoid, identity required, others optional"
    lines = [_paint(f"handgrad check {escape(report.target, 300)}", "bold", color),
             f"  ({where}seed {report.seed}, {n} configurations, 3 calls each{tol})", f"  profile: {profile}"]
    if report.sandbox:
        lines.append(f"  ran in: {report.sandbox}")
    lines.append("")
    if report.error:
        lines += [_paint("  the implementation could not be checked:", "FAIL", color), f"  {report.error}"]
    not_run = [c.index for c in report.configs if c.status == "not run"]
    for c in report.configs:
        if c.status != "not run":
            lines.extend(_config_lines(c, color, verbose))
    if not_run:
        span = f"configuration {not_run[0]}" if len(not_run) == 1 else f"configurations {not_run[0]}–{not_run[-1]}"
        lines.append("      " + _paint(f"{span} not run", "not run", color))
    if report.stderr_tail and (report.error or any(
            c.status in ("crash", "timeout", "error") for c in report.configs)):
        lines += ["", "  last lines the implementation wrote to stderr:"]
        lines += [f"    {ln}" for ln in report.stderr_tail.splitlines()]
    if report.findings:
        lines += ["", _paint("Diagnosis", "bold", color)]
        for f, qs, fixes in _grouped_findings(report.findings):
            cfgs = ", ".join(map(str, f.configs))
            label = f"{', '.join(qs)} (configuration{'s' if len(f.configs) > 1 else ''} {cfgs})"
            lines.append(f"  {_paint(label, 'bold', color)}")
            lines.append(f"    {f.title if f.hypothesis else _paint(f.title, 'skipped', color)}")
            lead = f"    correct (configuration {f.configs[0]}): "
            lines += [lead + x if i == 0 else " " * len(lead) + x for i, x in enumerate(fixes)]
    if report.autograd:
        lines += ["", _paint("Uses autograd", "USES AUTOGRAD", color) + " (the homework asks for hand-written "
                  "gradients; they were still compared above)"]
        lines += [f"  {e}" for e in report.autograd]
    progress = report.progress()
    if any(v != "pass" for v in progress.values()) and not report.error:
        lines += ["", _paint("Progress", "bold", color) + " (over the required configurations)"]
        lines += [f"  {q:<9} {PROGRESS[v]}" for q, v in progress.items()]
    counts = {s: sum(c.status == s for c in report.configs if c.required) for s in (
        "pass", "fail", "error", "timeout", "crash", "not run")}
    optional = {s: sum(c.status == s for c in report.configs if not c.required) for s in (
        "pass", "fail", "unsupported", "error", "not run")}
    summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    extra = ", ".join(f"{v} {k}" for k, v in optional.items() if v)
    verdict = _paint(report.verdict, "pass" if report.passed else report.verdict, color)
    lines += ["", f"Result: {verdict} ({summary or 'nothing ran'}" + (f"; optional: {extra})" if extra else ")")]
    return "\n".join(lines)
