"""Named columns read from a file -> a :class:`Dataset`: numeric features, a typed target.

A reader returns a :class:`Table` (the columns, the file and where each row came
from); :func:`table_to_dataset` picks the target, checks every feature cell and
infers the task. Errors name the file, the column and the row (``line 7`` for a
CSV file, whose header is line 1; ``row 3`` otherwise).
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .dataset import Dataset

# an integer-valued target with at most this many distinct values is taken as class labels
MAX_INFERRED_CLASSES = 20
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})


@dataclass
class Table:
    """Columns by name (in file order), the file they came from and where each row is in it.

    ``text_cells`` says the cells are text to parse (CSV) rather than typed values (Parquet, NPZ).
    ``matrix``, when a reader has one, is columns of finite numbers as one (n, k) float array
    (float64, or float32 when the reader was asked for it) whose column j is ``columns[matrix_columns[j]]``
    (``matrix_columns`` None: every column, in file order; an entry None: a column it does not hold):
    features that are adjacent in it are taken as a view, not copied.
    """

    path: str
    columns: dict[str, Any]
    where: Sequence[str]
    text_cells: bool
    matrix: np.ndarray | None = None
    matrix_columns: Sequence[str | None] | None = None

    @property
    def header(self) -> list[str]:
        return list(self.columns)


_MISSING = object()


def cell_number(value: Any, text_cells: bool) -> Any:
    """A float, ``_MISSING`` for an empty/NA cell, or None for text."""
    if value is None:
        return _MISSING
    if isinstance(value, str) or text_cells:
        text = str(value).strip()
        if text.lower() in MISSING_TOKENS:
            return _MISSING
        try:
            return float(text)
        except ValueError:
            return None
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return _MISSING if math.isnan(number) else number



def nonfinite_word(value: float) -> str:
    return "NaN" if math.isnan(value) else "a value beyond the float64 range (±1.8e308), read as infinity"


# ====================================================================== features
def feature_column(table: Table, name: str) -> np.ndarray:
    """Column ``name`` as float64; the first missing, text or non-finite cell raises naming its row."""
    values = table.columns[name]
    try:  # every cell a finite number: one conversion
        fast = np.asarray(values, dtype=np.float64)
        if fast.ndim == 1 and np.isfinite(fast).all():
            return fast
    except (TypeError, ValueError):
        pass
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        number = cell_number(value, table.text_cells)
        if number is _MISSING:
            raise ValueError(f"{table.path!r}: missing value at {table.where[i]}, column {name!r}")
        if number is None:
            raise ValueError(f"{table.path!r}: non-numeric value {str(value).strip()!r} at {table.where[i]}, "
                             f"column {name!r} (features must be numbers; drop text columns with --drop)")
        if not math.isfinite(number):
            raise ValueError(f"{table.path!r}: {nonfinite_word(number)} ({str(value).strip()!r}) at {table.where[i]}, "
                             f"column {name!r}; features must be finite numbers")
        out[i] = number
    return out


def table_to_dataset(table: Table, *, target: str | None = None, task: str | None = None,
                     drop: Sequence[str] = ()) -> Dataset:
    """Every column but the target (default: the last) and ``drop`` as a feature; the target typed by ``task``."""
    header = table.header
    for name in drop:
        if name not in table.columns:
            raise ValueError(f"{table.path!r}: cannot drop column {name!r}: no such column; "
                             f"columns: {', '.join(header)}")
    if target is None:
        target = header[-1]
    elif target not in table.columns:
        close = difflib.get_close_matches(target, header, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{table.path!r} has no target column {target!r}; columns: {', '.join(header)}{hint}")
    features = [name for name in header if name != target and name not in drop]
    if not features:
        raise ValueError(f"{table.path!r}: no feature columns left besides the target {target!r}")
    X = feature_matrix(table, features)
    return target_dataset(X, target_cells(table, target), table, target, task=task, names=features)


def target_cells(table: Table, target: str) -> np.ndarray:
    """The target column's cells: the reader's numbers as they are (no copy), else an object array of cells."""
    y = table.columns[target]
    return y if isinstance(y, np.ndarray) and y.dtype.kind in "biuf" else np.asarray(y, dtype=object)


def raw_cells(table: Table, name: str) -> list[Any] | np.ndarray:
    """Column ``name``'s cells as read: the reader's number array as it is (a list of 10,000,000 Python
    floats would take four times its memory), else a list of the cells."""
    cells = table.columns[name]
    return cells if isinstance(cells, np.ndarray) and cells.dtype.kind in "biuf" else list(cells)


def feature_matrix(table: Table, features: list[str]) -> np.ndarray:
    """The feature columns, checked, as one (n, d) array: a view of ``table.matrix`` where they are adjacent
    in it, else a copy in its dtype (its cells were checked by the reader)."""
    if table.matrix is not None:
        names = table.header if table.matrix_columns is None else list(table.matrix_columns)
        if all(name in names for name in features):
            index = [names.index(name) for name in features]
            if index == list(range(index[0], index[0] + len(index))):
                return table.matrix[:, index[0]:index[0] + len(index)]
            return table.matrix[:, index]
    return np.column_stack([feature_column(table, name) for name in features])


# ====================================================================== the target
def target_dataset(X: np.ndarray, y: np.ndarray, table: Table, target: str, *, task: str | None,
                   names: list[str] | None) -> Dataset:
    """A Dataset of features X and target cells y: classes or values, as ``task`` says (or inferred)."""
    values, numbers = _target_values(y, table, target)
    if task is None:
        task = _infer_task(numbers)
    if task == "regression":
        if numbers is None:
            i = next(i for i, v in enumerate(values) if cell_number(v, table.text_cells) is None)
            raise ValueError(f"{table.path!r}: target column {target!r} holds text ({str(values[i]).strip()!r} at "
                             f"{table.where[i]}); regression needs numbers (use --task classification)")
        return regression_dataset(X, numbers, table, target, names)
    labels, index = _classes(values, numbers)
    description = f"{table.path}: target {target!r}, {len(labels)} classes"
    return Dataset(X, index, "classification", names or [], labels, os.path.basename(table.path), description, target)


def regression_dataset(X: np.ndarray, y: np.ndarray, table: Table, target: str,
                       names: list[str] | None) -> Dataset:
    bad = np.argwhere(~np.isfinite(y))
    if bad.size:
        raise ValueError(f"{table.path!r}: target {target!r} contains NaN or infinity at row {int(bad[0][0])} "
                         "(0-based)")
    return Dataset(X, y, "regression", names or [], None, os.path.basename(table.path), f"{table.path}: target {target!r}",
                   target)


def _target_values(y: np.ndarray, table: Table, target: str) -> tuple[Any, np.ndarray | None]:
    """The target's cells, and their float values when every cell is a number (else None)."""
    path, where = table.path, table.where
    if y.dtype.kind in "biuf":
        numbers = y.astype(np.float64, copy=False)  # no copy of a float64 column (read, not written)
        if not np.isfinite(numbers).all():
            i = int(np.argwhere(~np.isfinite(numbers))[0][0])
            raise ValueError(f"{path!r}: missing or non-finite target at {where[i]}, column {target!r}")
        return y, numbers  # the array itself: a list of a Python number per row would cost ~32 bytes a row
    values = list(y.tolist())
    numbers_list: list[float] | None = []
    for i, value in enumerate(values):
        number = cell_number(value, table.text_cells)
        if number is _MISSING:
            raise ValueError(f"{path!r}: missing value at {where[i]}, column {target!r} (the target)")
        if number is None:
            numbers_list = None
        elif numbers_list is not None:
            if not math.isfinite(number):
                raise ValueError(f"{path!r}: {nonfinite_word(number)} at {where[i]}, column {target!r} (the target)")
            numbers_list.append(number)
    if numbers_list is None:
        return [str(v).strip() for v in values], None
    return values, np.asarray(numbers_list, dtype=np.float64)


def _infer_task(numbers: np.ndarray | None) -> str:
    if numbers is None:
        return "classification"
    return "classification" if _integral(numbers) and _few_values(numbers) is not None else "regression"


def _classes(values: Any, numbers: np.ndarray | None) -> tuple[list[Any], np.ndarray]:
    if numbers is not None:
        few = _few_values(numbers) if _integral(numbers) else None
        if few is not None:  # the usual case, without np.unique's sorted copies of the whole column
            return [int(u) for u in few], np.searchsorted(few, numbers).astype(np.int64, copy=False)
        uniq, index = np.unique(numbers, return_inverse=True)
        integral = bool(np.all(uniq == np.round(uniq)))
        labels = [int(u) if integral else float(u) for u in uniq]
        return labels, index.astype(np.int64, copy=False)
    uniq, index = np.unique(np.asarray(values, dtype=str), return_inverse=True)
    return [str(u) for u in uniq], index.astype(np.int64)


_BLOCK = 1 << 16  # rows looked at a time: the temporaries stay small whatever the column's length


def _integral(numbers: np.ndarray) -> bool:
    return all(bool(np.all(b == np.round(b))) for b in (numbers[i:i + _BLOCK] for i in range(0, len(numbers), _BLOCK)))


def _few_values(numbers: np.ndarray, limit: int = MAX_INFERRED_CLASSES) -> np.ndarray | None:
    """The distinct values, sorted (as np.unique gives them), when there are at most ``limit``; else None."""
    seen = np.empty(0)
    for i in range(0, len(numbers), _BLOCK):
        seen = np.union1d(seen, numbers[i:i + _BLOCK])
        if len(seen) > limit:
            return None
    return seen


def infer_task(y: Any) -> str:
    """'classification' for text or integer targets with few distinct values, else 'regression'."""
    arr = np.asarray(y)
    if arr.dtype.kind in "biuf":
        return _infer_task(arr.astype(np.float64).reshape(-1))
    return "classification"


# ====================================================================== labelled data for a trained model
def encode_labels(cells: Sequence[Any], class_labels: Sequence[Any], *, source: str = "data",
                  column: str = "target", where: Sequence[str] | None = None) -> np.ndarray:
    """Class indices of raw label cells ('setosa', 3, '3.0') against a model's class labels.

    A label the model never saw raises ValueError naming it, its row and the known labels.
    """
    lookup = {_label_key(label): k for k, label in enumerate(class_labels)}

    def unknown(i: int, cell: Any) -> ValueError:
        at = f" at {where[i]}" if where is not None else f" at row {i}"
        known = ", ".join(repr(label) for label in class_labels)
        return ValueError(f"{source!r}: label {cell!r}{at}, column {column!r}, is not one of the model's "
                          f"classes ({known})")

    if isinstance(cells, np.ndarray) and cells.dtype.kind in "biuf":
        # a reader's numbers: each distinct value looked up once, not each of millions of cells
        values, inverse = np.unique(cells.reshape(-1), return_inverse=True)
        codes = np.array([lookup.get(_label_key(v), -1) for v in values.tolist()], dtype=np.int64)[inverse.reshape(-1)]
        if (codes < 0).any():
            i = int(np.flatnonzero(codes < 0)[0])
            raise unknown(i, cells.reshape(-1)[i].item())
        return codes
    out = np.empty(len(cells), dtype=np.int64)
    for i, cell in enumerate(cells):
        key = _label_key(cell)
        if key not in lookup:
            raise unknown(i, cell)
        out[i] = lookup[key]
    return out


def _label_key(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        return str(int(number)) if math.isfinite(number) and number == round(number) else repr(number)
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if math.isfinite(number) and number == round(number) else repr(number)


def regression_targets(cells: Any, *, source: str = "data", column: str = "target",
                       where: Sequence[str] | None = None) -> np.ndarray:
    """Float targets (n, k) from raw cells, with missing or text cells named by row."""
    arr = np.asarray(cells, dtype=object) if not isinstance(cells, np.ndarray) else cells
    if arr.dtype.kind in "biuf":
        y = arr.astype(np.float64)
    else:
        y = np.empty(len(arr), dtype=np.float64)
        for i, cell in enumerate(arr):
            number = cell_number(cell, isinstance(cell, str))
            at = where[i] if where is not None else f"row {i}"
            if number is _MISSING or number is None:
                raise ValueError(f"{source!r}: {'missing' if number is _MISSING else 'non-numeric'} target "
                                 f"{cell!r} at {at}, column {column!r}")
            y[i] = number
    if not np.isfinite(y).all():
        i = int(np.argwhere(~np.isfinite(y))[0][0])
        raise ValueError(f"{source!r}: non-finite target at {where[i] if where else f'row {i}'}, column {column!r}")
    return y.reshape(len(y), -1)


__all__ = [
    "MAX_INFERRED_CLASSES", "MISSING_TOKENS", "Table", "encode_labels", "feature_column", "infer_task",
    "regression_targets", "table_to_dataset", "target_cells", "target_dataset", "feature_matrix", "raw_cells",
]
