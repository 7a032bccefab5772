"""``handgrad evaluate MODEL --data ...``: a saved model's metrics on labelled data.

On the built-in data the model was trained on, the rows scored are one split of the
same division training made (recorded in the model file: the seed and the fractions),
the test split by default, so the figure is not flattered by training rows. A file, or
other built-in data, is scored whole.
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import (
    COLUMN,
    MODEL_HELP,
    REGRESSION_UNITS,
    class_report,
    class_report_lines,
    data_options,
    echo,
    examples,
    force_option,
    json_dump,
    load_features_arg,
    load_model_arg,
    metric_columns,
    number,
    units_note,
    usage,
)

SPLITS = ("test", "validation", "train", "all")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate", help="metrics of a saved model on labelled data",
        description="Print a saved model's metrics on labelled data: loss, accuracy, per-class precision, recall, F1 "
                    "and the confusion matrix for classification; loss, mse, mae and r2 for regression.",
        **examples(
            ("handgrad evaluate runs/digits/model.safetensors --data digits", "the test split of its training data"),
            ("handgrad evaluate runs/digits/model.safetensors --data digits --split all", "every row"),
            ("handgrad evaluate runs/flowers/model.safetensors --data new.csv", "a labelled file, scored whole"),
        ))
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    data_options(p, required=True)
    p.add_argument("--split", choices=SPLITS,
                   help="on the built-in data the model was trained on: which rows of its train/validation/test "
                        "division to score (default: test); files and other data are scored whole (all)")
    p.add_argument("--metrics-json", metavar="PATH", help="also write the metrics as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    force_option(p)
    p.set_defaults(handler=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    model = load_model_arg(args.model)
    X, y, split = _rows(args, model)
    m = model.metrics(X, y)
    if m is None:
        raise usage(f"the {split} split of {args.data!r} is empty (trained with a fraction of 0); choose another --split")
    report: dict[str, Any] = {"task": model.task, "data": args.data, "split": split, **m}
    cols = metric_columns(model.task) + (["log_loss"] if "log_loss" in m else [])
    lines = [f"{args.model} on {args.data}, {split} ({m['n_samples']} samples):", "",
             "".join(f"{c:>{COLUMN}}" for c in cols), "".join(number(m[c]) for c in cols)]
    if model.task == "classification":
        details = class_report(model, X, y)
        report.update(details)
        lines += class_report_lines(details)
    else:
        report["units"] = REGRESSION_UNITS
        lines += ["", units_note(model)]
    if args.metrics_json:  # saved before anything is printed
        json_dump(args.metrics_json, report, force=args.force, inputs=[args.model, args.data], what="--metrics-json")
    echo(args, *lines)
    return 0


def _rows(args: argparse.Namespace, model: Any) -> tuple[Any, Any, str]:
    """(X, y, which rows): a split of the training division on the model's own built-in data, else every row."""
    from ..data.builtin import is_builtin

    if _is_file(args.data) or not is_builtin(args.data):
        if args.split not in (None, "all"):
            raise usage(f"--split {args.split} applies to the built-in data a model was trained on; "
                        f"{args.data!r} is a file, scored whole (leave out --split)")
        X, y = _labelled(args, model)
        return X, y, "all rows"
    return _builtin_split(args, model)


def _is_file(path: str) -> bool:
    import os

    return os.path.isfile(path)


def _builtin_split(args: argparse.Namespace, model: Any) -> tuple[Any, Any, str]:
    from ..data import train_val_test_split
    from ..data.builtin import canonical_name
    from ..validation import make_rng
    from .common import load_data_arg

    if args.target:
        raise usage("--target applies to files; a built-in dataset has its own target")
    split = args.split or "test"
    record = model.info.get("split")
    trained_on = model.info.get("dataset")
    ds = load_data_arg(args, args.data, task=model.task)
    same = trained_on is not None and canonical_name(str(trained_on)) == canonical_name(ds.name)
    if split != "all" and not same:
        raise usage(f"--split {split}: this model was trained on {trained_on or 'other data'!r}, not {ds.name!r}, so "
                    "every row of it is unseen; use --split all")
    if split != "all" and not record:
        raise usage(f"--split {split}: {args.model!r} does not record how its data was split (it predates that "
                    "record); use --split all, or train it again")
    if split == "all":
        return ds.X, ds.y, "all rows"
    parts = train_val_test_split(ds, float(record["val_fraction"]), float(record["test_fraction"]),
                                 seed=make_rng((int(record["seed"]), 1)))
    chosen = dict(zip(("train", "validation", "test"), parts))[split]
    return chosen.X, chosen.y, f"{split} split (random seed {record['seed']})"


def _labelled(args: argparse.Namespace, model: Any) -> tuple[Any, Any]:
    from ..data import encode_labels, regression_targets

    target = args.target or model.target_name
    X, cells, where = load_features_arg(args, model, target)
    if cells is None:
        raise usage(f"--data {args.data!r} has no target column {target!r}; name it with --target COL")
    if model.task == "classification":
        return X, encode_labels(cells, model.class_labels, source=args.data, column=str(target), where=where)
    return X, regression_targets(cells, source=args.data, column=str(target), where=where)
