"""One-hot encoding of text feature columns (``handgrad train --categorical auto``).

A feature column with any non-numeric cell is categorical: it becomes one 0/1 column per
category seen in the training file, named ``column=category`` (categories sorted as
text), in the place the column had. The categories are stored with the model, so new
data is encoded the same way; a category the training data never held is encoded as all
zeros and reported (which column, which values, how many rows), as scikit-learn's
``OneHotEncoder(handle_unknown="ignore")`` encodes it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .columns import MISSING_TOKENS, Table, cell_number


def read_table(path: str, delimiter: str | None = None) -> Table | None:
    """The named columns of a CSV/TSV/Parquet file, or None for a format without them (NPZ)."""
    from .readers import READERS, ReadOptions

    reader = READERS.get(os.path.splitext(path)[1].lower())
    if reader is None:
        return None
    result = reader(path, ReadOptions(delimiter=delimiter, min_columns=1))
    return result if isinstance(result, Table) else None


def _text(value: Any) -> str:
    return str(value).strip()


def _is_missing(value: Any) -> bool:
    return value is None or _text(value).lower() in MISSING_TOKENS


def text_columns(table: Table, skip: Sequence[str] = ()) -> list[str]:
    """The columns (other than ``skip``) holding at least one cell that is not a number."""
    return [name for name, cells in table.columns.items() if name not in skip
            and any(not _is_missing(v) and cell_number(v, table.text_cells) is None for v in cells)]


def fit_categories(table: Table, skip: Sequence[str] = ()) -> dict[str, list[str]]:
    """{column: its categories, sorted} for each text feature column; a missing cell raises naming its row."""
    categories = {}
    for name in text_columns(table, skip):
        cells = table.columns[name]
        for i, value in enumerate(cells):
            if _is_missing(value):
                raise ValueError(f"{table.path!r}: missing value at {table.where[i]}, column {name!r} (a text column, "
                                 "one-hot encoded by --categorical auto: every row needs a category)")
        categories[name] = sorted({_text(v) for v in cells})
    return categories


def one_hot(table: Table, categories: dict[str, list[str]]) -> tuple[Table, dict[str, dict[str, int]]]:
    """``table`` with each categorical column replaced by its 0/1 columns; and the unseen categories found,
    {column: {value: rows}} (those rows are all zeros in the column's block)."""
    columns: dict[str, Any] = {}
    unseen: dict[str, dict[str, int]] = {}
    for name, cells in table.columns.items():
        if name not in categories:
            columns[name] = cells
            continue
        known = categories[name]
        values = [_text(v) for v in cells]
        for value in values:
            if value not in known:
                unseen.setdefault(name, {})
                unseen[name][value] = unseen[name].get(value, 0) + 1
        for category in known:
            columns[f"{name}={category}"] = [1.0 if v == category else 0.0 for v in values]
    return Table(table.path, columns, table.where, table.text_cells), unseen


def unseen_note(unseen: dict[str, dict[str, int]]) -> str | None:
    """One line naming the categories new data holds that training never saw, or None."""
    if not unseen:
        return None
    parts = []
    for name, values in unseen.items():
        shown = ", ".join(f"{v!r} ({n} row{'s' if n != 1 else ''})" for v, n in sorted(values.items())[:5])
        more = f" and {len(values) - 5} more" if len(values) > 5 else ""
        parts.append(f"column {name!r}: {shown}{more}")
    return ("note: categories not seen in training, encoded as all zeros: " + "; ".join(parts))


__all__ = ["fit_categories", "one_hot", "read_table", "text_columns", "unseen_note"]
