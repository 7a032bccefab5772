"""``handgrad homework``: the homework's questions 1.1(a) to 1.3(e) (NYU DS-GA 1008 homework 1, see the README),
each answered at a point, with the worked answers' (the seed's) answer beside the correction and the command that reproduces it; ``--answer-key`` for a
teacher (Markdown or LaTeX), ``--hints`` for a student (what to check, not the answer)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import examples


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "homework", help="NYU DS-GA 1008 homework 1 (see the README): every question answered (or hinted) by handgrad",
        **examples(
            ("handgrad homework", "every question of the homework, answered"),
            ("handgrad homework --answer-key markdown -o key.md", "the answer key for a teacher, as Markdown"),
        ),
        description=("List the homework's questions 1.1(a)-1.3(e) in handgrad's words and answer each at a point: "
                     "the numbers, the worked answers' (the seed's) answer beside the correction with a counterexample, and the command "
                     "that reproduces it."))
    p.add_argument("--answer-key", choices=("markdown", "latex"), help="write an answer key for a teacher")
    p.add_argument("--hints", action="store_true", help="what to check for each question, without the answers")
    p.add_argument("--only", metavar="ID", help="one question, e.g. 1.2(c), or a part, e.g. 1.2 (its questions)")
    p.add_argument("--draw", metavar="DIR", help="also draw the pictures the questions ask for into DIR: the graph "
                   "(1.3(b)), the derivative plots (1.3(c)), softmax (1.3(a)), gradient flow (1.2(c)), linear maps (1.3(d))")
    p.add_argument("--seed", type=int, default=0, help="seed of the point the answers are computed at (default 0)")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    p.add_argument("--force", action="store_true", help="replace files that handgrad wrote before")
    p.set_defaults(handler=run_homework)


DRAWINGS = ("graph_1.3b.svg", "derivatives_1.3c.png", "softmax_1.3a.png", "gradient_flow_1.2c.png",
            "linear_maps_1.3d.png")


def draw(folder: str, seed: int = 0, force: bool = False) -> list[tuple[str, str]]:
    """The homework's pictures, drawn into ``folder``: (question, file) pairs."""
    from pathlib import Path

    from .. import graph, plots
    from ..cli import UsageError
    from ..explain import build_network
    from ..explain.homework import gradient_flow

    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--draw {folder!r} is a file; give a folder")
    out.mkdir(parents=True, exist_ok=True)
    from ..outputs import check_output

    for name in DRAWINGS:  # each picture under handgrad.outputs' rule, before any is drawn
        check_output(out / name, force=force, what="--draw")
    net, loss = build_network("regression", seed=seed)
    saved = graph.save(graph.network_graph(net, loss, grad=True), out / "graph_1.3b.svg")
    drawn = [("1.3(b)", str(saved.path))]
    drawn.append(("1.3(c)", str(plots.plot_activations(out / "derivatives_1.3c.png").path)))
    drawn.append(("1.3(a)", str(plots.plot_softmax(out / "softmax_1.3a.png").path)))
    drawn.append(("1.2(c)", str(plots.plot_gradient_flow(out / "gradient_flow_1.2c.png", gradient_flow(seed=seed)).path)))
    drawn.append(("1.3(d)", str(plots.plot_linear_maps(out / "linear_maps_1.3d.png", seed=seed).path)))
    return drawn


def run_homework(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..explain.homework import questions, render

    qs = questions(seed=args.seed)
    if args.only:
        wanted = args.only.strip().replace(" ", "")
        qs = [q for q in qs if q.id == wanted or q.id.startswith(wanted + "(")]
        if not qs:
            raise UsageError(f"--only: no question {args.only!r}; questions are 1.1(a)-(d), 1.2(a)-(c), 1.3(a)-(e)")
    if args.draw:
        drawn = draw(args.draw, seed=args.seed, force=args.force)
        print("\n".join(f"drew {qid}: {path}" for qid, path in drawn), file=sys.stderr)
        for q in qs:
            q.picture = dict(drawn).get(q.id, "")
    text = render(qs, args.answer_key or "text", hints=args.hints)
    if args.output and args.output != "-":
        from ..outputs import write_text

        write_text(args.output, text, force=args.force, what="--output")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        from ..outputs import emit

        emit(text)
    return 0
