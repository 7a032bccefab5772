"""``handgrad evaluate MODEL --data ...``: a saved model's metrics on labelled data."""

from __future__ import annotations

import argparse
from typing import Any

from .common import (
    MODEL_HELP,
    data_options,
    echo,
    force_option,
    json_dump,
    load_features_arg,
    load_model_arg,
    metric_columns,
    usage,
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("evaluate", help="metrics of a saved model on labelled data",
                              description="Print a saved model's metrics on labelled data (loss and accuracy for "
                                          "classification; loss, mse, mae and r2 for regression).")
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    data_options(p, required=True)
    p.add_argument("--metrics-json", metavar="PATH", help="also write the metrics as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    force_option(p)
    p.set_defaults(handler=run_evaluate)



def run_evaluate(args: argparse.Namespace) -> int:
    model = load_model_arg(args.model)
    X, y = _labelled(args, model)
    m = model.metrics(X, y)
    report = {"task": model.task, "data": args.data, **m}
    cols = metric_columns(model.task)
    if args.metrics_json:  # saved before anything is printed
        json_dump(args.metrics_json, report, force=args.force, inputs=[args.model, args.data], what="--metrics-json")
    echo(args, f"{args.model} on {args.data} ({m['n_samples']} samples):",
         *(f"  {c:<10}{m[c]:.6g}" for c in cols + (["log_loss"] if "log_loss" in m else [])))
    return 0


def _labelled(args: argparse.Namespace, model: Any) -> tuple[Any, Any]:
    from ..data import encode_labels, regression_targets

    target = args.target or model.target_name
    X, cells, where = load_features_arg(args, model, target)
    if cells is None:
        raise usage(f"--data {args.data!r} has no target column {target!r}; name it with --target COL")
    if model.task == "classification":
        return X, encode_labels(cells, model.class_labels, source=args.data, column=str(target), where=where)
    return X, regression_targets(cells, source=args.data, column=str(target), where=where)
