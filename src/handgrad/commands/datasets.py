"""``handgrad datasets``: list the built-in datasets, or write one as a CSV file."""

from __future__ import annotations

import argparse
from typing import Any

from .common import examples, note, plural, usage


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "datasets", help="list the built-in datasets, or write one to a CSV file",
        description="List the built-in datasets (generated, or shipped by scikit-learn); --export writes one as a "
                    "CSV file with a header row (the features, then the target), for 'predict' and 'evaluate'.",
        **examples(
            ("handgrad datasets", "the list"),
            ("handgrad datasets --export moons new.csv", "moons as CSV: x1,x2,class"),
            ("handgrad predict runs/m/model.safetensors --data new.csv", "then predict from the file"),
        ))
    p.add_argument("--export", nargs=2, metavar=("NAME", "FILE.csv"), help="write the built-in dataset NAME to FILE.csv")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    p.set_defaults(handler=run_datasets)


def run_datasets(args: argparse.Namespace) -> int:
    from ..data import list_datasets

    if args.export:
        return _export(args, *args.export)
    infos = list_datasets()
    width = max(len(i.name) for i in infos)
    print(f"{'name':<{width}}  {'task':<14}  {'source':<12}  description")
    for i in infos:
        print(f"{i.name:<{width}}  {i.task:<14}  {i.source:<12}  {i.description}")
    print("\nuse one with: handgrad train --data NAME   (scikit-learn ones need: pip install 'handgrad[sklearn]')")
    return 0


def _export(args: argparse.Namespace, name: str, path: str) -> int:
    """The dataset as CSV: its feature columns, then its target column (class labels as text, values as numbers)."""
    import csv
    import io

    from ..data.builtin import is_builtin, load_dataset
    from ..io import atomic_write_bytes

    if not is_builtin(name):
        try:
            load_dataset(name)  # the unknown-name message, with the closest name
        except ValueError as exc:
            raise usage(f"--export: {exc}") from None
    if not path.lower().endswith(".csv"):
        raise usage(f"--export writes CSV; name the file FILE.csv, got {path!r}")
    ds = load_dataset(name)
    y = ds.y.reshape(len(ds.y), -1)
    targets = [ds.target_name or "y"] if y.shape[1] == 1 else [f"{ds.target_name or 'y'}_{k + 1}" for k in range(y.shape[1])]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*ds.feature_names, *targets])
    for x_row, y_row in zip(ds.X, y):
        cells = [ds.class_labels[int(v)] for v in y_row] if ds.task == "classification" and ds.class_labels else \
            [repr(float(v)) for v in y_row]
        writer.writerow([*(repr(float(v)) for v in x_row), *cells])
    atomic_write_bytes(path, buffer.getvalue().encode())
    note(args, f"wrote {path} ({plural(ds.n_samples, 'row')}, {plural(ds.n_features, 'feature')} and the target "
               f"{targets[0]!r})")
    return 0
