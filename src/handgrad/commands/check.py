"""``handgrad check PATH``: grade a hand-written homework MLP and name its mistakes.

Exit status: 0 when every configuration passes, 1 when one fails (or the code
cannot be imported, hangs or crashes), 2 for usage errors such as a missing file.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

COLORS = {"pass": "32", "FAIL": "31", "skipped": "33", "error": "31", "timeout": "31", "crash": "31",
          "not run": "2", "bold": "1", "dim": "2"}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "check",
        help="grade a hand-written MLP (the homework interface) and name its mistakes",
        description=(
            "Run a file or module exposing MLP, mse_loss and bce_loss (the interface of handgrad.hw1, on "
            "PyTorch tensors or NumPy arrays) against handgrad's reference over a seeded sweep of "
            "configurations, in a subprocess with a time limit. Reports every quantity (y_hat, J, dJdy_hat, "
            "dJdW1, dJdb1, dJdW2, dJdb2) and names the mistake behind each failure when one fits. "
            "Exit status 0: pass, 1: fail, 2: usage error."
        ),
    )
    p.add_argument("target", metavar="PATH", help="a .py file, or an importable module name")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-color", action="store_true", help="never colour the report (default: colour on a terminal)")
    p.add_argument("--timeout", type=float, default=20.0,
                   help="seconds allowed for the import and for each configuration (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seeds sizes, weights and data (default 0)")
    p.add_argument("--quick", action="store_true", help="four configurations instead of the full sweep")
    p.add_argument("--verbose", "-v", action="store_true", help="show every quantity of passing configurations too")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..check import check_implementation, resolve_target
    from ..cli import UsageError

    if not args.timeout > 0 or args.timeout == float("inf"):
        raise UsageError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative int, got {args.seed}")
    try:
        resolve_target(args.target)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    report = check_implementation(args.target, seed=args.seed, timeout=args.timeout, quick=args.quick)
    if args.json:
        print(report.to_json())
    else:
        color = not args.no_color and sys.stdout.isatty()
        print(report.render(color=color, verbose=args.verbose))
    return 0 if report.passed else 1


# ---------------------------------------------------------------------- the terminal report
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
    head = f"  {c.index:>2}  {c.config.label():<52} {_paint(status, status, color)}"
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
            lines.append(f"      {names}  {_paint('FAIL', 'FAIL', color)}  call {qr.call}: {qr.note}")
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
    lines = [_paint(f"handgrad check {report.target}", "bold", color),
             f"  ({where}seed {report.seed}, {n} configurations, 3 calls each{tol})", ""]
    if report.error:
        lines += [_paint("  the implementation could not be checked:", "FAIL", color), f"  {report.error}"]
    not_run = [c.index for c in report.configs if c.status == "not run"]
    for c in report.configs:
        if c.status != "not run":
            lines.extend(_config_lines(c, color, verbose))
    if not_run:
        span = f"configuration {not_run[0]}" if len(not_run) == 1 else f"configurations {not_run[0]}–{not_run[-1]}"
        lines.append("      " + _paint(f"{span} not run", "not run", color))
    if report.stderr_tail and (report.error or any(c.status in ("crash", "timeout", "error") for c in report.configs)):
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
    counts = {s: sum(c.status == s for c in report.configs) for s in ("pass", "fail", "skipped", "error", "timeout",
                                                                       "crash", "not run")}
    summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    verdict = _paint("PASS", "pass", color) if report.passed else _paint("FAIL", "FAIL", color)
    lines += ["", f"Result: {verdict} ({summary or 'nothing ran'})"]
    return "\n".join(lines)
