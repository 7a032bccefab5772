"""``handgrad predict MODEL --data ...``: a saved model's predictions as CSV."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
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
    from ..outputs import check_output, emit, write_bytes

    model = load_model_arg(args.model)
    if args.output:  # a refused --output is said before the data is read
        check_output(args.output, force=args.force, kind="csv", inputs=[args.model, args.data], what="--output")
    X, _, _ = load_features_arg(args, model, None)
    if model.task == "regression":
        if args.proba:
            raise usage("--proba applies to classification models; this model does regression")
        header, cells = _values(model, X)
    else:
        header, cells = _classes(args, model, X)
    del X
    n = len(cells[0])
    chunks = _csv_chunks(header, cells, n)
    if args.output:
        write_bytes(args.output, (chunk.encode("utf-8") for chunk in chunks), force=args.force, kind="csv",
                    inputs=[args.model, args.data], what="--output")
        note(args, f"wrote {args.output} ({plural(n, 'row')})")
    else:
        for chunk in chunks:
            emit(chunk, end="")
    return 0


CSV_CHUNK_ROWS = 1 << 16  # rows turned into text at a time: the output is never whole in memory


def _csv_chunks(header: list[str], cells: list[Any], n: int) -> Iterator[str]:
    """The CSV text, header first, then CSV_CHUNK_ROWS rows at a time; ``cells`` holds one sequence per
    column (a label array, or a float array formatted here)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for start in range(0, max(n, 1), CSV_CHUNK_ROWS):
        rows = slice(start, start + CSV_CHUNK_ROWS)
        writer.writerows(zip(*(_text(column[rows]) for column in cells)))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _text(column: Any) -> list[Any]:
    """A column's cells as CSV text: floats to ``DIGITS`` significant digits, probabilities to 6, labels as they are."""
    if isinstance(column, _Formatted):
        return [f"{float(v):.{column.digits}g}" for v in column.values]
    return column.tolist() if hasattr(column, "tolist") else list(column)


class _Formatted:
    """Float values to print with ``digits`` significant digits; sliced like an array."""

    def __init__(self, values: Any, digits: int) -> None:
        self.values, self.digits = values, digits

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, rows: slice) -> _Formatted:
        return _Formatted(self.values[rows], self.digits)


def _values(model: Any, X: Any) -> tuple[list[str], list[Any]]:
    values = model.predict(X)
    name = model.target_name or "prediction"
    header = [name] if values.shape[1] == 1 else [f"{name}_{k + 1}" for k in range(values.shape[1])]
    return header, [_Formatted(values[:, k], DIGITS) for k in range(values.shape[1])]


def _classes(args: argparse.Namespace, model: Any, X: Any) -> tuple[list[str], list[Any]]:
    import numpy as np

    from ..inference import labels

    out = model.outputs(X)
    header = [model.target_name or "prediction"]
    index = labels(out, model.output)
    cells: list[Any] = [np.asarray(model.class_labels, dtype=object)[index] if model.class_labels else index]
    if args.proba:
        proba = model.probabilities(out)
        if proba is None:
            raise usage(f"--proba: this model's outputs (g = {model.g}, loss {model.loss_name}) are scores, "
                        "not probabilities")
        header += [f"p_{label}" for label in model.class_labels]
        cells += [_Formatted(proba[:, k], 6) for k in range(proba.shape[1])]
    return header, cells
