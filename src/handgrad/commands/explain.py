"""``handgrad explain``, ``handgrad plot`` and ``handgrad graph``.

- ``explain``: the forward pass, the backward pass (chain of Jacobians and matrix form)
  and every Jacobian of a configured network, as text, Markdown or LaTeX; ``--at`` a
  point evaluates and checks everything; ``--diff`` shows only what another
  configuration changes. Exit status 1 when a check fails.
- ``plot``: activations, softmax, loss-curve, decision-boundary, linear-maps.
- ``graph``: the computational graph of a network or of expressions, as DOT, SVG or PNG.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

PRESET_HELP = ("regression (5relu/identity/squared error), classification-mse (tanh/sigmoid/squared error), "
               "classification-bce (tanh/sigmoid/BCE), classification-relu (relu/sigmoid/BCE)")


def register(subparsers: Any) -> None:
    _register_explain(subparsers)
    _register_plot(subparsers)
    _register_graph(subparsers)


# ====================================================================== shared options
def _network_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("network (as for 'handgrad train')")
    g.add_argument("--preset", metavar="NAME", help=f"one of the seed's configurations: {PRESET_HELP}")
    g.add_argument("--f", metavar="NAME", help="hidden activation: relu, 5relu, tanh, gelu, leaky_relu, ...")
    g.add_argument("--g", metavar="NAME", help="output activation: identity, sigmoid, softmax, ...")
    g.add_argument("--loss", metavar="NAME", help="mse, squared_error, bce, bce_with_logits, cross_entropy")
    g.add_argument("--n", type=int, metavar="N", help="inputs (default 3)")
    g.add_argument("--m", type=int, metavar="M", help="hidden units of the one hidden layer (default 4)")
    g.add_argument("--K", type=int, metavar="K", help="outputs (default 2)")
    g.add_argument("--hidden", type=int, action="append", metavar="M",
                   help="width of a hidden layer; repeat for depth (instead of --m)")
    g.add_argument("--seed", type=int, default=0, help="seed of the weights and of drawn points (default 0)")
    g.add_argument("--model", metavar="FILE",
                   help="a model saved by 'handgrad train --out DIR' (DIR/model.safetensors, or DIR) instead of "
                        "--preset and the sizes; its loss comes from the file (else --loss)")


SIZE_OPTIONS = ("preset", "f", "g", "n", "m", "K", "hidden")


def _model_path(path: str) -> str:
    """FILE as given, or DIR/model.safetensors when DIR is a 'handgrad train --out' directory."""
    import os

    from .train import MODEL_FILE

    inner = os.path.join(path, MODEL_FILE)
    return inner if os.path.isdir(path) and os.path.isfile(inner) else path


def _load(args: argparse.Namespace, need_loss: bool = True) -> tuple[Any, Any, str]:
    """(net, loss, one line on the file) for --model; a bad file raises ModelFileError (exit 1)."""
    from ..cli import UsageError
    from ..errors import ModelFileError
    from ..explain import describe_model, load_network

    given = [f"--{name}" for name in SIZE_OPTIONS if getattr(args, name) is not None]
    if given:
        raise UsageError(f"--model takes the network from the file; leave out {', '.join(given)}")
    path = _model_path(args.model)
    try:
        net, loss, meta = load_network(path, args.loss, need_loss=need_loss)
    except ModelFileError:
        raise
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--model: {exc}") from None
    return net, loss, describe_model(path, net, meta)


def _network(args: argparse.Namespace, need_loss: bool = True) -> tuple[Any, Any, str]:
    """(net, loss, source line): from --model, else built from --preset and the sizes."""
    if args.model is not None:
        return _load(args, need_loss)
    return (*_build(args), "")


def _build(args: argparse.Namespace, overrides: dict[str, Any] | None = None) -> Any:
    from ..cli import UsageError
    from ..explain import build_network

    spec = {"preset": args.preset, "f": args.f, "g": args.g, "loss": args.loss, "n": args.n, "m": args.m,
            "K": args.K, "hidden": args.hidden}
    spec.update(overrides or {})
    try:  # an unknown preset, size or name: build_network's message, as a usage error
        return build_network(spec.pop("preset"), seed=args.seed, **spec)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def _numbers(text: str, what: str) -> list[list[float]]:
    """'1,2,3' -> [[1, 2, 3]]; rows separated by ';'."""
    from ..cli import UsageError

    rows = []
    for row in text.split(";"):
        if not row.strip():
            continue
        try:
            rows.append([float(v) for v in row.replace(" ", ",").split(",") if v])
        except ValueError:
            raise UsageError(f"{what} must be numbers separated by commas (rows by ';'), got {text!r}") from None
    if not rows:
        raise UsageError(f"{what} is empty")
    return rows


def _write(text: str, output: str | None, quiet: bool = False) -> None:
    if output is None or output == "-":
        sys.stdout.write(text)
        return
    from pathlib import Path

    path = Path(output)
    if path.is_dir():
        from ..cli import UsageError

        raise UsageError(f"--output {output!r} is a directory; give a file name")
    path.write_text(text, encoding="utf-8")
    if not quiet:
        print(f"wrote {path}", file=sys.stderr)


# ====================================================================== explain
def _register_explain(sub: Any) -> None:
    p = sub.add_parser(
        "explain", help="derive the forward pass, the gradients and the Jacobians of a network",
        description=("Print the derivation of a network and loss: each layer's equation with shapes, every "
                     "parameter gradient as a chain of Jacobians and in matrix form, and each Jacobian element "
                     "by element, rendered from the layers' own derivation records. --at evaluates everything "
                     "at a point and checks each gradient against finite differences and PyTorch (exit 1 if a "
                     "check fails). --diff shows only the equations another configuration changes."),
    )
    _network_options(p)
    p.add_argument("--format", choices=("text", "markdown", "latex"), default="text", help="output format")
    p.add_argument("--at", metavar="X|random",
                   help="evaluate at x: numbers such as '0.5,-1,2' (rows separated by ';'), or 'random' (drawn with --seed)")
    p.add_argument("--target", metavar="Y", help="the targets y at --at (default: drawn with --seed)")
    p.add_argument("--batch", type=int, default=1, help="rows drawn by --at random (default 1)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--diff", metavar="SPEC",
                   help="compare with another configuration: a preset name, or overrides like 'loss=bce' or "
                        "'f=relu,g=sigmoid'")
    p.add_argument("--check-formula", metavar="FORMULA",
                   help="judge your derivation, e.g. 'dJdW2 = dJdz3.T @ z2' (names: x, z1.., y_hat, y, W1, b1.., "
                        "dJdz3, dJdW2 ...; @ .T * + - / ** sum diag outer tanh sigmoid exp log); parsed, never run; "
                        "exit 1 if wrong")
    p.add_argument("--notation", choices=("batch", "homework"), default="batch",
                   help="batch: samples as rows, x W1ᵀ + b1 (the code's layout, default); homework: one sample as a "
                        "column, W(1)x + b(1), numerator layout, with the bridge between the two")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(handler=run_explain)


def _diff_overrides(spec: str) -> dict[str, Any]:
    from ..cli import UsageError
    from ..explain import PRESETS

    if spec in PRESETS:
        return {"preset": spec, "f": None, "g": None, "loss": None}
    out: dict[str, Any] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in ("f", "g", "loss", "n", "m", "K", "hidden", "preset"):
            raise UsageError(f"--diff expects a preset ({', '.join(PRESETS)}) or key=value pairs with keys f, g, "
                             f"loss, n, m, K, hidden, preset; got {spec!r}")
        value = value.strip()
        if key in ("n", "m", "K"):
            try:
                out[key] = int(value)
            except ValueError:
                raise UsageError(f"--diff: {key} must be an int, got {value!r}") from None
        elif key == "hidden":
            try:
                out["hidden"], out["m"] = [int(v) for v in value.split("x")], None
            except ValueError:
                raise UsageError(f"--diff: hidden must be widths like 8x8, got {value!r}") from None
        else:
            out[key] = value
    return out


def _diff_other(args: argparse.Namespace, net: Any) -> tuple[Any, Any]:
    """The configuration --diff compares with; for --model only the loss can change."""
    from ..cli import UsageError
    from ..losses import LOSSES, make_loss

    if args.model is None:
        return _build(args, _diff_overrides(args.diff))
    key, sep, value = args.diff.partition("=")
    if key.strip() != "loss" or not sep:
        raise UsageError(f"with --model, --diff compares another loss only: loss=NAME ({', '.join(sorted(LOSSES))}); "
                         f"got {args.diff!r}")
    try:
        return net, make_loss(value.strip())
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--diff: {exc}") from None


def _check_width(args: argparse.Namespace, net: Any, rows: list[list[float]]) -> None:
    """--at numbers against the loaded model's input width, naming both."""
    from ..cli import UsageError

    bad = sorted({len(r) for r in rows} - {net.in_features})
    if bad:
        raise UsageError(f"--at gives {bad[0]} number(s) per row, but the model {_model_path(args.model)} takes "
                         f"{net.in_features} inputs (n = {net.in_features})")


def run_explain(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..explain import derive, render_diff

    net, loss, source = _network(args)
    if args.check_formula is not None:
        from ..explain.formula import check_formula

        try:
            verdict = check_formula(net, args.check_formula, loss, notation=args.notation, seed=args.seed)
        except ValueError as exc:
            raise UsageError(f"--check-formula: {exc}") from None
        _write(str(verdict) + "\n", args.output)
        return 0 if verdict.right else 1
    if args.diff:
        other_net, other_loss = _diff_other(args, net)
        a, b = derive(net, loss), derive(other_net, other_loss)
        _write(render_diff(a, b, args.format) + ("\n" if args.format != "latex" else ""), args.output)
        return 0
    at = None
    if args.at is not None:
        at = "random" if args.at.strip().lower() == "random" else _numbers(args.at, "--at")
        if args.model is not None and at != "random":
            _check_width(args, net, at)
    target = _numbers(args.target, "--target") if args.target else None
    if target is not None and at is None:
        raise UsageError("--target needs --at")
    try:
        ex = derive(net, loss, at=at, target=target, seed=args.seed, batch=args.batch,
                    torch=False if args.no_torch else None)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    ex.source = source
    if args.notation == "homework":
        from ..explain.notation import render_homework

        text = render_homework(net, loss, ex.values or None)
        if ex.checks:
            text += f"\nChecks: {sum(c.passed for c in ex.checks)}/{len(ex.checks)} pass\n"
            text += "".join(f"  {c.line()}\n" for c in ex.checks)
        _write(text, args.output)
        return 0 if ex.passed else 1
    _write(ex.render(args.format), args.output)
    return 0 if ex.passed else 1


# ====================================================================== plot
PLOT_KINDS = ("activations", "softmax", "loss-curve", "decision-boundary", "linear-maps")


def _image_options(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--output", "-o", metavar="FILE", default=default, help=f"image file, .png or .svg (default {default})")
    p.add_argument("--size", metavar="WxH", help="figure size in inches, e.g. 8x5")
    p.add_argument("--dpi", type=float, default=100, help="pixels per inch (default 100)")


def _register_plot(sub: Any) -> None:
    p = sub.add_parser("plot", help="draw activations, softmax, a loss curve, a decision boundary or linear maps",
                       description="Save a figure as PNG or SVG (chosen by the file's suffix).")
    kinds = p.add_subparsers(dest="kind", metavar="KIND")
    a = kinds.add_parser("activations", help="activations and their derivatives on one figure (seed 1.3(c))")
    a.add_argument("--names", default="gelu,leaky_relu,relu,tanh",
                   help="comma-separated activation names (default gelu,leaky_relu,relu,tanh)")
    a.add_argument("--range", default="-4,4", metavar="LO,HI", help="x range (default -4,4)")
    _image_options(a, "activations.png")
    s = kinds.add_parser("softmax", help="softmax(βx) approaching the one-hot arg max as β grows (1.3(a))")
    s.add_argument("--x", default="1,3,2,0.5", help="the input vector (default 1,3,2,0.5)")
    s.add_argument("--betas", default="0.25,1,2,5,20", help="values of β (default 0.25,1,2,5,20)")
    _image_options(s, "softmax.png")
    c = kinds.add_parser("loss-curve", help="loss per epoch from a history file (JSON, JSON lines or CSV)")
    c.add_argument("history", metavar="HISTORY", help="a history file with per-epoch 'loss' (and 'val_loss')")
    _image_options(c, "loss.png")
    d = kinds.add_parser("decision-boundary", help="decision regions of a 2-D classifier")
    d.add_argument("--model", required=True, metavar="FILE", help="a model file from 'handgrad train --out'")
    d.add_argument("--data", required=True, metavar="NAME|PATH", help="a built-in dataset name or a data file")
    d.add_argument("--target", metavar="COL", help="target column of a CSV file")
    _image_options(d, "decision_boundary.png")
    m = kinds.add_parser("linear-maps", help="linear maps, a translation and non-linear layers on a grid (1.3(d))")
    m.add_argument("--seed", type=int, default=0, help="seed of the stacked layers (default 0)")
    _image_options(m, "linear_maps.png")
    p.set_defaults(handler=run_plot, plot_parser=p)


def _size(args: argparse.Namespace) -> dict[str, Any]:
    from ..cli import UsageError

    out: dict[str, Any] = {"dpi": args.dpi}
    if args.size:
        try:
            w, h = (float(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise UsageError(f"--size must be WIDTHxHEIGHT in inches, e.g. 8x5, got {args.size!r}") from None
        out["size"] = (w, h)
    return out


def run_plot(args: argparse.Namespace) -> int:
    from .. import plots
    from ..cli import UsageError

    if not args.kind:
        args.plot_parser.print_help()
        return 2
    kw = _size(args)
    try:
        if args.kind == "activations":
            lo, hi = _numbers(args.range, "--range")[0]
            names = [n for n in args.names.split(",") if n.strip()]
            result = plots.plot_activations(args.output, names, x_range=(lo, hi), **kw)
        elif args.kind == "softmax":
            result = plots.plot_softmax(args.output, _numbers(args.x, "--x")[0], betas=_numbers(args.betas, "--betas")[0],
                                        **kw)
        elif args.kind == "loss-curve":
            result = plots.plot_loss_curve(args.history, args.output, **kw)
        elif args.kind == "linear-maps":
            result = plots.plot_linear_maps(args.output, seed=args.seed, **kw)
        else:
            result = _decision_boundary(args, kw)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {result.path} ({result.format}, {result.size_px[0]}×{result.size_px[1]} px)")
    return 0


def _decision_boundary(args: argparse.Namespace, kw: dict[str, Any]) -> Any:
    import os

    from .. import plots
    from ..cli import UsageError
    from ..data import load_data

    if not os.path.exists(args.model):
        raise UsageError(f"no such model file: {args.model!r}")
    data = load_data(args.data, target=args.target, seed=args.seed if hasattr(args, "seed") else 0)
    if data.task != "classification":
        raise UsageError(f"a decision boundary needs classification data; {args.data!r} is {data.task}")
    if data.X.shape[1] != 2:
        raise UsageError(f"a decision boundary needs 2 input features; {args.data!r} has {data.X.shape[1]}")
    from ..errors import ModelFileError
    from ..io import load_model

    try:  # a model from 'handgrad train' knows its input scaling; a bare saved network does not
        from .train import Predictor

        model: Any = Predictor.load(args.model)
    except (ImportError, ModelFileError):
        model = load_model(args.model)[0]
    return plots.plot_decision_boundary(model, data.X, data.y, args.output, **kw)


# ====================================================================== graph
def _register_graph(sub: Any) -> None:
    p = sub.add_parser(
        "graph", help="draw the computational graph of a network or of expressions (Graphviz)",
        description=("Boxes are functions, circles are variables (filled: parameters); edges carry shapes. "
                     "--grad adds the backward edges with their Jacobians. Writes DOT to standard output, or "
                     "to --output (.dot, or .svg/.png/.pdf rendered with Graphviz's dot when installed)."),
    )
    _network_options(p)
    p.add_argument("--expr", metavar="TEXT", help="expressions instead of a network, e.g. 'a = x*y + x; w = sigmoid(a) * y'")
    p.add_argument("--values", metavar="NAME=V,...", help="values of the expression's variables, e.g. x=1.5,y=-2")
    p.add_argument("--grad", action="store_true", help="add backward edges labelled with the Jacobians")
    p.add_argument("--no-loss", action="store_true", help="draw the network without its loss")
    p.add_argument("--output", "-o", metavar="FILE", help="graph.dot, graph.svg, graph.png ... (default: DOT to stdout)")
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
            net, loss, source = _network(args, need_loss=not args.no_loss)
            g = graph.network_graph(net, None if args.no_loss else loss, grad=args.grad, title=source)
        if not args.output or args.output == "-":
            sys.stdout.write(g.to_dot())
            return 0
        result = graph.save(g, args.output)
    except ModelFileError:  # a bad --model file: its one line, exit 1
        raise
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    print(result.message, file=sys.stderr if not result.rendered and result.format == "dot" and
          not args.output.endswith((".dot", ".gv")) else sys.stdout)
    return 0
