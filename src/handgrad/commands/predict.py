"""``handgrad predict MODEL --data ...``: a saved model's predictions as CSV."""

from __future__ import annotations

import argparse
from typing import Any

from .common import (
    MODEL_HELP,
    data_options,
    examples,
    force_option,
    load_features_arg,
    load_model_arg,
    note,
    plural,
    usage,
)

# significant digits of a predicted value: float32's precision and a little more, never 17 digits of float64 noise
DIGITS = 8


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "predict", help="predictions of a saved model as CSV",
        description="Write a saved model's predictions as CSV (one row per input row, in order): class labels, or "
                    f"regression values in the target's units ({DIGITS} significant digits).",
        **examples(
            ("handgrad datasets --export moons new.csv", "write a built-in data set as a CSV file"),
            ("handgrad predict runs/m/model.safetensors --data new.csv", "labels (or values) as CSV on stdout"),
            ("handgrad predict runs/m --data new.csv --proba -o p.csv", "with one probability column per class"),
        ))
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    data_options(p, required=True)
    p.add_argument("--output", "-o", metavar="CSV", help="write to this file instead of standard output")
    p.add_argument("--proba", action="store_true", help="add one probability column per class")
    force_option(p)
    p.set_defaults(handler=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    import csv
    import io

    model = load_model_arg(args.model)
    X, _, _ = load_features_arg(args, model, None)
    if model.task == "regression":
        if args.proba:
            raise usage("--proba applies to classification models; this model does regression")
        header, rows = _values(model, X)
    else:
        header, rows = _classes(args, model, X)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    from ..outputs import emit, write_text

    if args.output:
        write_text(args.output, buffer.getvalue(), force=args.force, kind="csv", inputs=[args.model, args.data],
                   what="--output")
        note(args, f"wrote {args.output} ({plural(len(rows), 'row')})")
    else:
        emit(buffer.getvalue(), end="")
    return 0


def _values(model: Any, X: Any) -> tuple[list[str], list[list[Any]]]:
    values = model.predict(X)
    name = model.target_name or "prediction"
    header = [name] if values.shape[1] == 1 else [f"{name}_{k + 1}" for k in range(values.shape[1])]
    return header, [[f"{float(v):.{DIGITS}g}" for v in row] for row in values]


def _classes(args: argparse.Namespace, model: Any, X: Any) -> tuple[list[str], list[list[Any]]]:
    from ..inference import labels

    out = model.outputs(X)
    header = [model.target_name or "prediction"]
    rows: list[list[Any]] = [[model.class_labels[i]] for i in labels(out, model.output)]
    if args.proba:
        proba = model.probabilities(out)
        if proba is None:
            raise usage(f"--proba: this model's outputs (g = {model.g}, loss {model.loss_name}) are scores, "
                        "not probabilities")
        header += [f"p_{label}" for label in model.class_labels]
        rows = [[*row, *(f"{p:.6g}" for p in prow)] for row, prow in zip(rows, proba)]
    return header, rows
