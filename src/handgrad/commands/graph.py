"""``handgrad graph``: the computational graph of a network or of expressions, as DOT, SVG or PNG."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import examples
from .options import network, network_options


def register(subparsers: Any) -> None:
    _register_graph(subparsers)


def _register_graph(sub: Any) -> None:
    p = sub.add_parser(
        "graph", help="draw the computational graph of a network or of expressions (Graphviz)",
        **examples(
            ("handgrad graph -o net.svg", "the homework's network as a picture (Graphviz)"),
            ("handgrad graph --grad > net.dot", "with the backward edges, as DOT text"),
        ),
        description=("Boxes are functions, circles are variables (filled: parameters); edges carry shapes. "
                     "--grad adds the backward edges with their Jacobians. Writes DOT to standard output, or "
                     "to --output (.dot, or .svg/.png/.pdf rendered with Graphviz's dot when installed)."),
    )
    network_options(p)
    p.add_argument("--expr", metavar="TEXT", help="expressions instead of a network, e.g. 'a = x*y + x; w = sigmoid(a) * y'")
    p.add_argument("--values", metavar="NAME=V,...", help="values of the expression's variables, e.g. x=1.5,y=-2")
    p.add_argument("--grad", action="store_true", help="add backward edges labelled with the Jacobians")
    p.add_argument("--no-loss", action="store_true", help="draw the network without its loss")
    p.add_argument("--output", "-o", metavar="FILE", help="graph.dot, graph.svg, graph.png ... (default: DOT to stdout)")
    p.add_argument("--force", action="store_true", help="replace a graph file that handgrad wrote before")
    p.set_defaults(handler=run_graph)


def _values(text: str | None) -> dict[str, Any]:
    """'x=1.5,y=-2' -> scalars; 'x=1,2,3,y=-2' or 'x=[1,2,3]' -> x a vector (numbers after a name belong to it)."""
    import numpy as np

    from ..cli import UsageError

    out: dict[str, list[float]] = {}
    name = None
    for part in (text or "").replace("[", "").replace("]", "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        try:
            if sep:
                name = key.strip()
                out[name] = [float(value)]
            elif name is not None:
                out[name].append(float(key))
            else:
                raise ValueError
        except ValueError:
            raise UsageError(f"--values expects NAME=NUMBER pairs like x=1.5,y=-2 (a vector: x=1,2,3), got {text!r}") from None
    return {k: (v[0] if len(v) == 1 else np.array(v)) for k, v in out.items()}


def run_graph(args: argparse.Namespace) -> int:
    from .. import graph
    from ..cli import UsageError
    from ..errors import ModelFileError

    try:
        if args.expr:
            if args.model is not None:
                raise UsageError("give --expr or --model, not both")
            exprs = graph.parse_expressions(args.expr, _values(args.values))
            g = graph.expression_graph(list(exprs.values())[-1], grad=args.grad)
        else:
            if args.values:
                raise UsageError("--values applies to --expr")
            net, loss, source = network(args, need_loss=not args.no_loss)
            g = graph.network_graph(net, None if args.no_loss else loss, grad=args.grad, title=source)
        if not args.output or args.output == "-":
            from ..outputs import emit

            emit(g.to_dot(), end="")
            return 0
        from ..outputs import check_output

        check_output(args.output, force=args.force, what="--output", inputs=[getattr(args, "model", None)])
        result = graph.save(g, args.output)
    except ModelFileError:  # a bad --model file: its one line, exit 1
        raise
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    print(result.message, file=sys.stderr)  # standard output carries only data (the DOT text without -o)
    return 0
