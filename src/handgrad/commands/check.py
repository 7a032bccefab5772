"""``handgrad check``: grade a hand-written homework MLP (or a class of them) and name the mistakes.

This module only parses arguments and prints; the grader is :mod:`handgrad.check`.
Exit status: 0 when the check passes (for a class: when it ran), 1 when it fails
(or the code cannot be imported, hangs, crashes or uses autograd), 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .common import examples


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "check",
        help="grade a hand-written MLP (the homework interface), or a class of them, and name the mistakes",
        **examples(
            ("handgrad check --template mlp.py", "write a file to fill in"),
            ("handgrad check mlp.py", "grade it and name the mistakes"),
            ("handgrad check submissions/ --out grades", "grade a class into a gradebook"),
        ),
        description=(
            "Run a file, folder, zip or module exposing MLP, mse_loss and bce_loss (the interface of handgrad.hw1, "
            "on PyTorch tensors or NumPy arrays) in a sandbox, against handgrad's reference over a seeded sweep of "
            "configurations. Reports every quantity (y_hat, J, dJdy_hat, dJdW1, dJdb1, dJdW2, dJdb2), names the "
            "mistake behind each failure when one fits, and says when autograd is used. Several submissions, or "
            "a folder of them, are graded as a class into a gradebook. "
            "Exit status 0: pass, 1: fail, 2: usage error."
        ),
    )
    p.add_argument("targets", metavar="SUBMISSION", nargs="*",
                   help="a .py file, a folder or zip holding mlp.py, or a module name; several (or a folder of "
                        "them) grade a class")
    p.add_argument("--template", nargs="?", const="mlp.py", metavar="PATH",
                   help="write a starter file with the homework's interface (default mlp.py) and exit")
    p.add_argument("--json", action="store_true", help="print the report as JSON (same as --format json)")
    p.add_argument("--format", choices=("text", "json", "gradescope"), default="text",
                   help="text (default), json, or Gradescope's autograder results.json")
    p.add_argument("--no-color", action="store_true", help="never colour the report (default: colour on a terminal)")
    p.add_argument("--timeout", type=float, default=20.0,
                   help="seconds allowed for the import and for each configuration (default 20, at most 3600)")
    p.add_argument("--seed", type=int, default=0, help="seeds sizes, weights and data (default 0)")
    p.add_argument("--quick", action="store_true", help="four configurations instead of the full sweep")
    p.add_argument("--extended", action="store_true",
                   help="require tanh, leaky_relu, softplus and gelu too (the homework requires relu, sigmoid, "
                        "identity)")
    p.add_argument("--precision", choices=("float32", "float64"),
                   help="grade at this precision's tolerance (default: the dtype of parameters['W1'])")
    p.add_argument("--sandbox", choices=("auto", "bubblewrap", "none"), default="auto",
                   help="auto: bubblewrap when it works (default); none: the weaker fallback")
    p.add_argument("--verbose", "-v", action="store_true", help="show every quantity of passing configurations too")
    p.add_argument("--out", metavar="DIR", help="class mode: where the gradebook goes (default handgrad-grades)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="class mode: submissions at a time")
    p.add_argument("--rubric", metavar="FILE", help="class mode: TOML or JSON weights per quantity")
    p.add_argument("--force", action="store_true", help="class mode: replace a gradebook that handgrad wrote before")
    p.add_argument("--dask", metavar="ADDRESS", help="class mode: run each submission's check on the workers of the "
                                                      "Dask scheduler at ADDRESS (tcp://host:8786)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError

    try:
        return _run(args)
    except (ValueError, FileExistsError) as exc:
        if isinstance(exc, UsageError):
            raise
        raise UsageError(str(exc)) from None


def _run(args: argparse.Namespace) -> int:
    from .. import check
    from ..cli import UsageError

    if args.template:
        from ..outputs import check_output

        check_output(args.template, force=True, kind="text", what="--template")  # never a link or a device
        path = check.write_template(args.template)
        print(f"wrote {path}: fill in forward, backward, mse_loss and bce_loss, then run `handgrad check {path}`", file=sys.stderr)
        return 0
    if not args.targets:
        raise UsageError("give a submission to check (a .py file, folder, zip or module), or --template")
    if not 0 < args.timeout <= check.MAX_TIMEOUT:  # NaN fails this too
        raise UsageError(f"--timeout must be a number of seconds in (0, {check.MAX_TIMEOUT:g}], got {args.timeout:g}")
    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative int, got {args.seed}")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be a positive int, got {args.jobs}")
    options = dict(seed=args.seed, timeout=args.timeout, quick=args.quick, extended=args.extended,
                   precision=args.precision, sandbox=args.sandbox)
    if _is_class(args):
        return _run_class(args, options)
    check.resolve_target(args.targets[0])  # a missing file is a usage error
    report = check.check_implementation(args.targets[0], **options)
    fmt = "json" if args.json else args.format
    if fmt == "json":
        _print(report.to_json())
    elif fmt == "gradescope":
        rubric = check.Rubric.load(args.rubric) if args.rubric else check.Rubric()
        _print(json.dumps(check.classroom.gradescope(report, rubric), indent=2, ensure_ascii=False))
    else:
        _print(report.render(color=not args.no_color and sys.stdout.isatty(), verbose=args.verbose))
    return 0 if report.passed else 1


def _is_class(args: argparse.Namespace) -> bool:
    if len(args.targets) > 1 or args.out or args.dask:
        return True
    folder = Path(args.targets[0])
    return folder.is_dir() and not (folder / "mlp.py").is_file()


def _run_class(args: argparse.Namespace, options: dict) -> int:
    from .. import check
    from ..outputs import check_output, lock_directory

    rubric = check.Rubric.load(args.rubric) if args.rubric else check.Rubric()
    out = args.out or "handgrad-grades"
    with lock_directory(out):  # one grading run per gradebook folder; never a link or a submission
        for name in ("gradebook.csv", "summary.txt"):
            check_output(os.path.join(out, name), force=args.force, what="--out", inputs=args.targets)
        result = check.check_class(args.targets, out, jobs=args.jobs, rubric=rubric, dask=args.dask, **options)
    _print(result.summary)
    print(f"\nwrote {result.out / 'gradebook.csv'}, {result.out / 'summary.txt'}, reports/ and gradescope/ "
          f"({len(result.rows)} students)", file=sys.stderr)
    return 0


def _print(text: str) -> None:
    """Print; when the reader has gone (`| head -1`), say nothing more and keep the grade's exit status."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
