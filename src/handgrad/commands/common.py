"""What the model commands share: file names, the data options, typed errors turned into usage errors.

Imports of NumPy and the library happen inside the functions, so ``handgrad --help``
stays fast.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

MODEL_FILE = "model.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"
METRICS_FILE = "metrics.json"
PLOT_FILE = "loss_curve.png"
MODEL_HELP = f"a model file ({MODEL_FILE} from 'handgrad train --out')"


def usage(message: str) -> Exception:
    """A command-line usage mistake (exit code 2)."""
    from ..cli import UsageError

    return UsageError(message)


def data_options(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--data", metavar="PATH|NAME", required=required,
                   help="a built-in dataset name (see 'handgrad datasets') or a .csv/.tsv/.npz/.parquet file"
                   + ("" if required else " (default: the built-in 'seed' data)"))
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
        return load_features(args.data, model.feature_names, target=target, delimiter=args.delimiter)
    except (FileNotFoundError, DataSourceError) as exc:
        raise usage(f"--data: {exc}") from None


def load_model_arg(path: str) -> Any:
    """The :class:`~handgrad.inference.Predictor` in MODEL; a missing file is a usage error."""
    from ..inference import load_predictor

    try:
        return load_predictor(path)
    except FileNotFoundError as exc:
        raise usage(str(exc)) from None


def echo(args: argparse.Namespace, *lines: str) -> None:
    """Print unless --quiet; a closed standard output (``| head -1``) stops the printing, not the command."""
    from ..outputs import emit

    if not getattr(args, "quiet", False):
        emit(*lines)


def force_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="replace an output file that handgrad wrote before")


def json_dump(path: str, obj: Any, *, force: bool = False, inputs: Any = (), what: str = "output") -> None:
    """Write JSON to ``path`` under handgrad.outputs' rule (never a device, link, directory or an input)."""
    from ..outputs import write_bytes

    write_bytes(path, (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode(), force=force, kind="json",
                inputs=inputs, what=what)


def metric_columns(task: str) -> list[str]:
    return ["loss", "accuracy"] if task == "classification" else ["loss", "mse", "mae", "r2"]
