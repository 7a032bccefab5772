"""``handgrad plot``: activations and their derivatives, softmax, a loss curve, a decision boundary,
linear maps; PNG or SVG by the file's suffix."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import examples
from .options import model_path, numbers


def register(subparsers: Any) -> None:
    _register_plot(subparsers)


def _image_options(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--output", "-o", metavar="FILE", default=default, help=f"image file, .png or .svg (default {default})")
    p.add_argument("--size", metavar="WxH", help="figure size in inches, e.g. 8x5")
    p.add_argument("--dpi", type=float, default=100, help="pixels per inch (default 100)")
    p.add_argument("--force", action="store_true", help="replace an image file that handgrad wrote before")


def _register_plot(sub: Any) -> None:
    p = sub.add_parser("plot", help="draw activations, softmax, a loss curve, a decision boundary or linear maps",
                       description="Save a figure as PNG or SVG (chosen by the file's suffix). Needs matplotlib: "
                                   "pip install 'handgrad[plot]'.",
                       **examples(
                           ("handgrad plot activations -o act.png", "activations and their derivatives"),
                           ("handgrad plot loss-curve runs/m -o loss.svg", "the loss per epoch of 'train --out runs/m'"),
                           ("handgrad plot decision-boundary --model runs/m --data moons", "a 2-D classifier's regions"),
                       ))
    kinds = p.add_subparsers(dest="kind", metavar="KIND")
    a = kinds.add_parser("activations", help="activations and their derivatives on one figure (homework 1.3(c))")
    a.add_argument("--names", default="gelu,leaky_relu,relu,tanh",
                   help="comma-separated activation names (default gelu,leaky_relu,relu,tanh)")
    a.add_argument("--range", default="-4,4", metavar="LO,HI", help="x range (default -4,4)")
    _image_options(a, "activations.png")
    s = kinds.add_parser("softmax", help="softmax(βx) approaching the one-hot arg max as β grows (homework 1.3(a))")
    s.add_argument("--x", default="1,3,2,0.5", help="the input vector (default 1,3,2,0.5)")
    s.add_argument("--betas", default="0.25,1,2,5,20", help="values of β (default 0.25,1,2,5,20)")
    _image_options(s, "softmax.png")
    c = kinds.add_parser("loss-curve", help="loss per epoch from a history file, a metrics.json or a 'train --out' folder")
    c.add_argument("history", metavar="HISTORY",
                   help="history.csv / history.json (per-epoch 'loss' and 'val_loss'), or the metrics.json or the "
                        "folder that 'handgrad train --out DIR' wrote")
    _image_options(c, "loss.png")
    d = kinds.add_parser("decision-boundary", help="decision regions of a 2-D classifier")
    d.add_argument("--model", required=True, metavar="FILE", help="a model file from 'handgrad train --out'")
    d.add_argument("--data", required=True, metavar="NAME|PATH", help="a built-in dataset name or a data file")
    d.add_argument("--target", metavar="COL", help="target column of a CSV file")
    _image_options(d, "decision_boundary.png")
    m = kinds.add_parser("linear-maps", help="linear maps, a translation and non-linear layers on a grid (homework 1.3(d))")
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
        from ..outputs import check_output

        check_output(args.output, force=args.force, what="--output",
                     inputs=[getattr(args, k, None) for k in ("history", "model", "data")])
        if args.kind == "activations":
            lo, hi = numbers(args.range, "--range")[0]
            names = [n for n in args.names.split(",") if n.strip()]
            result = plots.plot_activations(args.output, names, x_range=(lo, hi), **kw)
        elif args.kind == "softmax":
            result = plots.plot_softmax(args.output, numbers(args.x, "--x")[0], betas=numbers(args.betas, "--betas")[0],
                                        **kw)
        elif args.kind == "loss-curve":
            result = plots.plot_loss_curve(history_source(args.history), args.output, **kw)
        elif args.kind == "linear-maps":
            result = plots.plot_linear_maps(args.output, seed=args.seed, **kw)
        else:
            result = _decision_boundary(args, kw)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {result.path} ({result.format}, {result.size_px[0]}×{result.size_px[1]} px)", file=sys.stderr)
    return 0


def history_source(path: str) -> str:
    """The history file behind HISTORY: the file itself, or the history.json beside a metrics.json or in a folder."""
    import os

    from .common import HISTORY_JSON, METRICS_FILE

    folder = path if os.path.isdir(path) else os.path.dirname(path) if os.path.basename(path) == METRICS_FILE else None
    if folder is None:
        return path
    found = os.path.join(folder, HISTORY_JSON)
    if not os.path.isfile(found):
        raise FileNotFoundError(f"{path!r}: no {HISTORY_JSON} in {folder or '.'!r} (it is written by "
                                "'handgrad train --out DIR'; give a history file instead)")
    return found


def _decision_boundary(args: argparse.Namespace, kw: dict[str, Any]) -> Any:
    import os

    from .. import plots
    from ..cli import UsageError
    from ..data import load_data

    args.model = model_path(args.model)
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
        from ..inference import Predictor

        model: Any = Predictor.load(args.model)
    except (ImportError, ModelFileError):
        model = load_model(args.model)[0]
    return plots.plot_decision_boundary(model, data.X, data.y, args.output, **kw)


