"""``handgrad datasets``: list the built-in datasets."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("datasets", help="list the built-in datasets",
                              description="List the built-in datasets (generated, or shipped by scikit-learn).")
    p.set_defaults(handler=run_datasets)


def run_datasets(args: argparse.Namespace) -> int:
    from ..data import list_datasets

    infos = list_datasets()
    width = max(len(i.name) for i in infos)
    print(f"{'name':<{width}}  {'task':<14}  {'source':<12}  description")
    for i in infos:
        print(f"{i.name:<{width}}  {i.task:<14}  {i.source:<12}  {i.description}")
    print("\nuse one with: handgrad train --data NAME   (scikit-learn ones need: pip install scikit-learn)")
    return 0
