"""What the JSON in a model or checkpoint file may hold: one table per kind of document.

Each row of :data:`METADATA_FIELDS` and :data:`CHECKPOINT_FIELDS` is one key: what it
must be (said in words, for the message) and the test of a value, which may look at the
network the file describes (its input and output widths). Adding a key is one line.
Keys a table does not name pass through unchecked (they are data for the caller), so
files written by a newer handgrad with extra optional keys still load.

:func:`check_document` runs a table over a document and raises ``ValueError`` naming
the field, what was expected and what was found; :mod:`handgrad.io` adds the file's
name (as a ``ModelFileError``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TASKS = ("regression", "classification")
MAX_EPOCH = 10**9  # an epoch count beyond this is corruption, not a long run
MAX_STEP = 2**53  # optimizer step counters stay exact integers in JSON and float64


@dataclass(frozen=True)
class Shape:
    """What a value is checked against: the widths of the network the file holds (None: unknown)."""

    n_in: int | None = None
    n_out: int | None = None


Test = Callable[[Any, Shape], "str | None"]  # None when valid, else what is wrong (beyond the expectation)


@dataclass(frozen=True)
class Field:
    """One key: ``expected`` in words, ``test(value, shape)`` -> None or the problem, ``required`` or not."""

    expected: str
    test: Test
    required: bool = False


# ====================================================================== small tests
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_type(*types: type) -> Test:
    def test(v: Any, _: Shape) -> str | None:
        ok = isinstance(v, types) and not (isinstance(v, bool) and bool not in types)
        return None if ok else "wrong type"
    return test


def optional(inner: Test) -> Test:
    def test(v: Any, shape: Shape) -> str | None:
        return None if v is None else inner(v, shape)
    test.fields = getattr(inner, "fields", None)  # type: ignore[attr-defined]
    return test


def integer(lo: int = 0, hi: int = MAX_STEP) -> Test:
    return lambda v, _: None if _is_int(v) and lo <= v <= hi else "out of range or not an integer"


def number() -> Test:
    return lambda v, _: None if _is_number(v) else "not a finite number"


def choice(*options: Any) -> Test:
    return lambda v, _: None if isinstance(v, str) and v in options else "unknown value"


def registry_name(kind: str) -> Test:
    """A name the activation registry knows (read lazily). Loss names are only checked to be names: a file
    may record a loss registered in another session, and the reader that needs it says so."""
    def test(v: Any, _: Shape) -> str | None:
        if not isinstance(v, str):
            return "wrong type"
        from .registry import make_activation

        try:
            make_activation(v)
        except (ValueError, TypeError, KeyError):
            return f"unknown {kind}"
        return None
    return test


def output_kind(v: Any, _: Shape) -> str | None:
    from .inference import OUTPUT_KINDS

    return None if isinstance(v, str) and v in OUTPUT_KINDS else "unknown output kind"


def distinct_list(item: Test, count: Callable[[Shape], int | None] | None = None) -> Test:
    """A list of distinct items (each passing ``item``), ``count(shape)`` long when that is known."""
    def test(v: Any, shape: Shape) -> str | None:
        if not isinstance(v, list):
            return "wrong type"
        for i, x in enumerate(v):
            if item(x, shape) is not None:
                return f"entry {i} ({x!r:.40}) is not valid"
        if len({repr(x) for x in v}) != len(v):
            return "entries repeat"
        n = count(shape) if count is not None else None
        if n is not None and len(v) != n:
            return f"{len(v)} entries, but the network needs {n}"
        return None
    return test


def record(fields: dict[str, Field]) -> Test:
    """An object whose keys follow their own small table."""
    def test(v: Any, shape: Shape) -> str | None:
        if not isinstance(v, dict):
            return "wrong type"
        problem = first_problem(fields, v, shape)
        return None if problem is None else f"{problem[0]!r}: expected {problem[1]}{problem[2]}"
    test.fields = fields  # type: ignore[attr-defined]  # lets first_problem name the inner key
    return test


def fraction(v: Any, _: Shape) -> str | None:
    return None if _is_number(v) and 0 <= v < 1 else "not a number in [0, 1)"


def _categories(v: Any, shape: Shape) -> str | None:
    """{column: [its categories]}: each column's one-hot categories, distinct strings."""
    if not isinstance(v, dict):
        return "wrong type"
    for column, values in v.items():
        problem = distinct_list(is_type(str))(values, shape)
        if problem is not None:
            return f"column {column!r}: {problem}"
    return None


def _label(v: Any, _: Shape) -> str | None:
    return None if isinstance(v, str) or _is_number(v) else "not a label"


def _class_count(shape: Shape) -> int | None:
    """One output reads as 2 classes; K outputs as K classes (or K yes/no labels)."""
    if shape.n_out is None:
        return None
    return 2 if shape.n_out == 1 else shape.n_out


def _scaler(width: Callable[[Shape], int | None]) -> Test:
    """A Standardizer's saved state: finite means and positive finite scales, one per column."""
    def test(v: Any, shape: Shape) -> str | None:
        if v is None:
            return None
        if not isinstance(v, dict) or v.get("type") != "standardize":
            return "not a standardize record"
        mean, scale = v.get("mean"), v.get("scale")
        if not (isinstance(mean, list) and isinstance(scale, list) and len(mean) == len(scale)):
            return "'mean' and 'scale' must be lists of equal length"
        if not all(_is_number(m) for m in mean) or not all(_is_number(s) and s > 0 for s in scale):
            return "'mean' must be finite numbers and 'scale' finite positive numbers"
        n = width(shape)
        if n is not None and len(mean) != n:
            return f"{len(mean)} columns, but the network has {n}"
        return None
    return test


def _history(v: Any, shape: Shape) -> str | None:
    if not isinstance(v, dict):
        return "wrong type"
    records = v.get("records", [])
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return "'records' must be a list of objects"
    return record(HISTORY_FIELDS)(v, shape)


def _rng_state(v: Any, _: Shape) -> str | None:
    from .train import RNG_TYPES

    if not isinstance(v, dict) or v.get("bit_generator") not in RNG_TYPES:
        return f"'bit_generator' must be one of {', '.join(RNG_TYPES)}"
    if not isinstance(v.get("state"), dict):
        return "'state' must be an object"
    import numpy as np

    try:  # NumPy is the judge of its own state records
        getattr(np.random, v["bit_generator"])().state = v
    except Exception:  # noqa: BLE001 - any refusal means the record is not a state
        return f"not a valid {v['bit_generator']} state"
    return None


# ====================================================================== the tables
PREPROCESSING_FIELDS: dict[str, Field] = {
    "x": Field("null or a standardize record, one column per input", _scaler(lambda s: s.n_in)),
    "y": Field("null or a standardize record, one column per output", _scaler(lambda s: s.n_out)),
}

SPLIT_FIELDS: dict[str, Field] = {
    "seed": Field("an int or null", optional(integer(0, 2**64))),
    "val_fraction": Field("a number in [0, 1)", fraction),
    "test_fraction": Field("a number in [0, 1)", fraction),
    "rule": Field("a string", is_type(str)),
}

METADATA_FIELDS: dict[str, Field] = {
    "cli_format": Field("an int >= 1", integer(1)),
    "task": Field("'regression' or 'classification'", choice(*TASKS)),
    "loss": Field("a loss name", lambda v, _: None if isinstance(v, str) and v.strip() else "not a name"),
    "output": Field("a known output kind (handgrad.inference.OUTPUT_KINDS)", output_kind),
    "g": Field("a known activation name", registry_name("activation")),
    "feature_names": Field("a list of distinct strings, one per input",
                           distinct_list(is_type(str), lambda s: s.n_in)),
    "target_name": Field("a string or null", optional(is_type(str))),
    "class_labels": Field("null or distinct labels, 2 for one output, else one per output",
                          optional(distinct_list(_label, _class_count))),
    "preprocessing": Field("an object {'x': ..., 'y': ...}", record(PREPROCESSING_FIELDS)),
    "dataset": Field("a string", is_type(str)),
    "settings": Field("an object", is_type(dict)),
    "seed": Field("an int or null", optional(integer(0, 2**64))),
    "epochs_run": Field("an int >= 0", integer(0, MAX_EPOCH)),
    "best_epoch": Field("an int >= 1 or null", optional(integer(1, MAX_EPOCH))),
    "standardized": Field("true or false", is_type(bool)),
    "test_metrics": Field("an object or null", optional(is_type(dict))),
    "split": Field("an object {'seed', 'val_fraction', 'test_fraction', 'rule'}", record(SPLIT_FIELDS)),
    "categories": Field("an object {column: [distinct category strings]}", _categories),
}

HISTORY_FIELDS: dict[str, Field] = {
    "best_epoch": Field("an int >= 1 or null", optional(integer(1, MAX_EPOCH))),
    "stopped_early": Field("true or false", is_type(bool)),
    "stop_reason": Field("a string or null", optional(is_type(str))),
    "seed": Field("an int or null", optional(integer(0, 2**64))),
    "epoch_seconds": Field("a list of numbers", lambda v, s: None if isinstance(v, list) and all(
        _is_number(x) for x in v) else "wrong type"),
}

OPTIMIZER_FIELDS: dict[str, Field] = {
    "type": Field("an optimizer name", is_type(str), required=True),
    "t": Field(f"an int in [0, {MAX_STEP}]", integer(0, MAX_STEP)),
    "hyperparameters": Field("an object", is_type(dict)),
}

TRAINING_STATE_FIELDS: dict[str, Field] = {
    "best_value": Field("a finite number or null", optional(number())),
    "wait": Field(f"an int in [0, {MAX_EPOCH}]", integer(0, MAX_EPOCH)),
}

CHECKPOINT_FIELDS: dict[str, Field] = {
    "epoch": Field(f"an int in [0, {MAX_EPOCH}]", integer(0, MAX_EPOCH), required=True),
    "optimizer": Field("null or an optimizer state", optional(record(OPTIMIZER_FIELDS))),
    "rng_state": Field("null or a NumPy bit generator state", optional(_rng_state)),
    "history": Field("null or a history object", optional(_history)),
    "hyperparameters": Field("an object", optional(is_type(dict))),
    "state": Field("an object", optional(record(TRAINING_STATE_FIELDS))),
    "has_best": Field("true or false", is_type(bool)),
}


# ====================================================================== checking
def first_problem(fields: dict[str, Field], doc: dict[str, Any], shape: Shape) -> tuple[str, str, str] | None:
    """(field, expected, what was found) for the first key that breaks ``fields``, else None."""
    for name, f in fields.items():
        if name not in doc:
            if f.required:
                return name, f.expected, ", but it is missing"
            continue
        inner = getattr(f.test, "fields", None)
        if inner is not None and isinstance(doc[name], dict):
            sub = first_problem(inner, doc[name], shape)
            if sub is not None:
                return f"{name}.{sub[0]}", sub[1], sub[2]
        problem = f.test(doc[name], shape)
        if problem is not None:
            return name, f.expected, f", got {doc[name]!r:.80} ({problem})"
    return None


def check_document(fields: dict[str, Field], doc: Any, shape: Shape = Shape(), what: str = "metadata") -> None:
    """ValueError naming the field, the expectation and the value, for the first key that breaks ``fields``."""
    if not isinstance(doc, dict):
        raise ValueError(f"{what} must be a JSON object, got {type(doc).__name__}")
    problem = first_problem(fields, doc, shape)
    if problem is not None:
        raise ValueError(f"{what} field {problem[0]!r}: expected {problem[1]}{problem[2]}")
    _check_consistency(doc, what, shape)


def _check_consistency(doc: dict[str, Any], what: str, shape: Shape) -> None:
    """Rules between fields of a model's metadata."""
    task, output = doc.get("task"), doc.get("output")
    if task is not None and output is not None and (task == "regression") != (output == "regression"):
        raise ValueError(f"{what} field 'output': {output!r} does not fit task {task!r}")
    if task == "regression" and doc.get("class_labels") is not None:
        raise ValueError(f"{what} field 'class_labels': a regression model has no class labels, "
                         f"got {doc['class_labels']!r:.80}")
    if task == "classification" and output == "regression":  # pragma: no cover - caught above
        raise ValueError(f"{what} field 'output': classification cannot read outputs as regression")


__all__ = ["CHECKPOINT_FIELDS", "Field", "METADATA_FIELDS", "Shape", "check_document"]
