"""``handgrad homework``: the seed's questions 1.1(a) to 1.3(e), each answered at a point, with the
seed's answer beside the correction and the command that reproduces it; ``--answer-key`` for a
teacher (Markdown or LaTeX), ``--hints`` for a student (what to check, not the answer)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "homework", help="the seed's homework, every question answered (or hinted) by handgrad",
        description=("List the homework's questions 1.1(a)-1.3(e) in handgrad's words and answer each at a point: "
                     "the numbers, the seed's answer beside the correction with a counterexample, and the command "
                     "that reproduces it."))
    p.add_argument("--answer-key", choices=("markdown", "latex"), help="write an answer key for a teacher")
    p.add_argument("--hints", action="store_true", help="what to check for each question, without the answers")
    p.add_argument("--only", metavar="ID", help="one question, e.g. 1.2(c)")
    p.add_argument("--seed", type=int, default=0, help="seed of the point the answers are computed at (default 0)")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(handler=run_homework)


def run_homework(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..explain.homework import questions, render

    qs = questions(seed=args.seed)
    if args.only:
        qs = [q for q in qs if q.id == args.only.strip()]
        if not qs:
            raise UsageError(f"--only: no question {args.only!r}; questions are 1.1(a)-(d), 1.2(a)-(c), 1.3(a)-(e)")
    text = render(qs, args.answer_key or "text", hints=args.hints)
    if args.output and args.output != "-":
        from pathlib import Path

        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text + "\n")
    return 0
