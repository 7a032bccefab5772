"""What the model commands share: file names, the data options, typed errors turned into usage errors.

Imports of NumPy and the library happen inside the functions, so ``handgrad --help``
stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

MODEL_FILE = "model.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"
METRICS_FILE = "metrics.json"
PLOT_FILE = "loss_curve.png"
HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
MODEL_HELP = f"a model file ({MODEL_FILE} from 'handgrad train --out DIR'), or DIR"


class ExampleFormatter(argparse.HelpFormatter):
    """Wraps the description as argparse does, and keeps the examples epilog's lines as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def examples(*pairs: tuple[str, str]) -> dict[str, Any]:
    """``add_parser`` keywords for an 'examples:' epilog: (command, what it does) pairs."""
    width = max(len(command) for command, _ in pairs) + 3
    lines = ["examples:"] + [f"  {command:<{width}}{what}".rstrip() for command, what in pairs]
    return {"epilog": "\n".join(lines) + "\n", "formatter_class": ExampleFormatter}


def usage(message: str) -> Exception:
    """A command-line usage mistake (exit code 2)."""
    from ..cli import UsageError

    return UsageError(message)


def data_options(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--data", metavar="PATH|NAME", required=required,
                   help="a built-in dataset name (see 'handgrad datasets') or a .csv/.tsv/.npz/.parquet file"
                   + ("" if required else " (default: 'homework_regression', the data of the homework's network: NYU DS-GA 1008 homework 1, see the README)"))
    p.add_argument("--target", metavar="COL", help="target column of a CSV/Parquet file (default: the last column)")
    p.add_argument("--delimiter", metavar="CHAR", help="CSV delimiter (default: detected from the header)")


def load_data_arg(args: argparse.Namespace, source: str, **kwargs: Any) -> Any:
    """``load_data`` for --data: a missing file or a wrong source (directory, unknown name) is a usage error."""
    from ..data import load_data
    from ..errors import DataSourceError

    try:
        return load_data(source, target=args.target, delimiter=args.delimiter, **kwargs)
    except (FileNotFoundError, DataSourceError) as exc:
        raise usage(f"--data: {exc}") from None


def load_features_arg(args: argparse.Namespace, model: Any, target: str | None) -> tuple[Any, Any, Any]:
    """The model's feature columns from --data (and the raw target cells when ``target`` is present)."""
    from ..data import load_features
    from ..errors import DataSourceError

    try:
        if model.info.get("categories"):
            return _encoded_features(args, model, target)
        return load_features(args.data, model.feature_names, target=target, delimiter=args.delimiter)
    except (FileNotFoundError, DataSourceError) as exc:
        raise usage(f"--data: {exc}") from None


def _encoded_features(args: argparse.Namespace, model: Any, target: str | None) -> tuple[Any, Any, Any]:
    """The model's one-hot columns from a file's text columns, with the categories stored in the model;
    categories it never saw are reported on standard error (their rows are all zeros there)."""
    from ..data.categorical import one_hot, read_table, unseen_note
    from ..data.columns import feature_matrix, raw_cells

    table = read_table(args.data, args.delimiter) if os.path.isfile(args.data) else None
    if table is None:
        raise usage(f"--data: this model one-hot encodes text columns ({', '.join(model.info['categories'])}); "
                    "give a CSV or Parquet file holding them")
    missing = [name for name in model.info["categories"] if name not in table.columns]
    if missing:
        raise usage(f"--data: {args.data!r} lacks the model's text column(s) {', '.join(map(repr, missing))}")
    encoded, unseen = one_hot(table, model.info["categories"])
    note_text = unseen_note(unseen)
    if note_text:
        note(args, note_text)
    X = feature_matrix(encoded, list(model.feature_names))
    y = raw_cells(table, target) if target is not None and target in table.columns else None
    return X, y, table.where


def load_model_arg(path: str) -> Any:
    """The :class:`~handgrad.inference.Predictor` in MODEL (a file, or a 'train --out' folder holding one);
    a missing file is a usage error."""
    from ..inference import load_predictor
    from .options import model_path

    try:
        return load_predictor(model_path(path))
    except FileNotFoundError as exc:
        raise usage(str(exc)) from None


def echo(args: argparse.Namespace, *lines: str) -> None:
    """Print unless --quiet; a closed standard output (``| head -1``) stops the printing, not the command."""
    from ..outputs import emit

    if not getattr(args, "quiet", False):
        emit(*lines)


def force_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="replace an output file that handgrad wrote before")


def note(args: argparse.Namespace, *lines: str) -> None:
    """Messages about the run ("wrote X", notes) go to standard error, so standard output stays data."""
    import sys

    if not getattr(args, "quiet", False):
        for line in lines:
            print(line, file=sys.stderr)


def history_rows(history: Any) -> list[dict[str, Any]]:
    """One row per epoch: epoch, lr, the losses and metrics (val_ prefixed for validation), seconds."""
    rows = []
    for i, record in enumerate(history.records):
        row: dict[str, Any] = dict(record)
        row["epoch"] = int(row.get("epoch", i + 1))
        if i < len(history.epoch_seconds):
            row["seconds"] = history.epoch_seconds[i]
        rows.append(row)
    return rows


def write_history(directory: str, history: Any) -> list[str]:
    """DIR/history.csv and DIR/history.json (what 'handgrad plot loss-curve' reads); the files written."""
    import csv
    import io
    import os

    from ..outputs import write_text

    rows = history_rows(history)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: repr(v) if isinstance(v, float) else v for k, v in row.items()} for row in rows)
    csv_path, json_path = os.path.join(directory, HISTORY_CSV), os.path.join(directory, HISTORY_JSON)
    # both files are claimed with the rest of --out before training (handgrad.outputs' rule)
    write_text(csv_path, buffer.getvalue(), force=True, kind="csv", what="--out")
    json_dump(json_path, {"records": rows, "best_epoch": history.best_epoch, "stopped_early": history.stopped_early,
                          "stop_reason": history.stop_reason}, force=True, what="--out")
    return [f"{csv_path} (history)", f"{json_path} (history)"]


def json_dump(path: str, obj: Any, *, force: bool = False, inputs: Any = (), what: str = "output") -> None:
    """Write JSON to ``path`` under handgrad.outputs' rule (never a device, link, directory or an input)."""
    from ..outputs import write_bytes

    write_bytes(path, (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode(), force=force, kind="json",
                inputs=inputs, what=what)


def metric_columns(task: str) -> list[str]:
    return ["loss", "accuracy"] if task == "classification" else ["loss", "mse", "mae", "r2"]


COLUMN = 12  # every number in a table: 5 significant digits in 12 characters, so columns never touch


def number(value: Any, width: int = COLUMN) -> str:
    """A number to 5 significant digits, right-aligned in ``width`` characters (at most 11 used: a space remains)."""
    if value is None:
        return f"{'-':>{width}}"
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return f"{value:>{width}d}"
    return f"{float(value):>{width}.5g}"


def plural(n: int, word: str, plural_word: str | None = None) -> str:
    """'1 feature', '2 features'."""
    return f"{n} {word if n == 1 else plural_word or word + 's'}"


def units_note(model: Any) -> str:
    """What the regression columns are measured in: the loss on the scale the network trained on, the rest raw."""
    target = f"units of {model.target_name!r}" if model.target_name else "the target's units"
    scale = "standardised targets" if model.y_scaler is not None else "the targets as given"
    return f"loss: {model.loss_name} on {scale}; mse in {target}, squared; mae in {target}; r2 unitless"


REGRESSION_UNITS = {"loss": "training loss on the scale the network trained on (standardised targets when "
                            "'standardized' is true)", "mse": "target units squared", "mae": "target units",
                    "r2": "unitless"}


def class_report(model: Any, X: Any, y: Any) -> dict[str, Any]:
    """The confusion matrix (rows: true class, columns: predicted) and each class's precision, recall, F1, support."""
    from ..metrics import confusion_matrix, per_class

    labels = [str(label) for label in (model.class_labels or range(model.net.out_features))]
    predicted = model.predict_index(X)
    return {"labels": labels, "confusion_matrix": confusion_matrix(y, predicted, len(labels)).tolist(),
            "per_class": per_class(y, predicted, len(labels))}


def class_report_lines(report: dict[str, Any]) -> list[str]:
    """The per-class table and the confusion matrix, as text."""
    labels, pc = report["labels"], report["per_class"]
    w = max(12, *(len(label) + 2 for label in labels))
    lines = ["", f"{'class':<{w}}" + "".join(f"{c:>{COLUMN}}" for c in ("precision", "recall", "f1", "support"))]
    for k, label in enumerate(labels):
        lines.append(f"{label:<{w}}" + number(pc["precision"][k]) + number(pc["recall"][k]) + number(pc["f1"][k])
                     + number(int(pc["support"][k])))
    cw = max(8, *(len(label) + 2 for label in labels))
    lines += ["", "confusion matrix (rows: true class, columns: predicted)",
              f"{'':<{w}}" + "".join(f"{label:>{cw}}" for label in labels)]
    for label, row in zip(labels, report["confusion_matrix"]):
        lines.append(f"{label:<{w}}" + "".join(f"{v:>{cw}d}" for v in row))
    return lines
