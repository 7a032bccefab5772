r"""Data: built-in datasets by name, user files (CSV, NPZ, Parquet), splits and scaling.

One module per concern: :mod:`.dataset` (the :class:`Dataset`), :mod:`.builtin`
(datasets by name), :mod:`.readers` (files, one reader per extension in
``READERS``), :mod:`.columns` (named columns -> features and a typed target) and
:mod:`.preprocessing` (splits, the :class:`Standardizer`).

A :class:`Dataset` holds ``X`` (float64, ``(n_samples, n_features)``; float32 when read with
``load_data(..., dtype="float32")``) and ``y``:
for regression a float64 ``(n_samples, n_targets)`` array (always 2-D, so a loss
never broadcasts ``(n,)`` against ``(n, 1)``), for classification int64 class
indices ``(n_samples,)`` into ``class_labels``.

>>> ds = load_dataset("moons", n_samples=100)
>>> ds.X.shape, ds.task, ds.class_labels
((100, 2), 'classification', [0, 1])

Every built-in dataset is generated (seeded, no download) or shipped by
scikit-learn (``digits``, ``iris``, ...; an optional dependency). User files go
through :func:`load_data`; a bad file raises ``ValueError`` naming the file, the
column and the 1-based line (the header is line 1); a wrong source (a directory,
an unknown name or file type) raises :class:`~handgrad.errors.DataSourceError`.
"""

from __future__ import annotations

from .builtin import (
    DEFAULT_DATASET,
    DatasetInfo,
    builtin_names,
    is_builtin,
    list_datasets,
    load_dataset,
    make_circles,
    make_cubic,
    make_friedman,
    make_moons,
    make_seed_regression,
    make_sin,
    make_spirals,
    make_xor,
)
from .columns import MAX_INFERRED_CLASSES, MISSING_TOKENS, Table, encode_labels, infer_task, regression_targets
from .dataset import TASKS, Dataset
from .preprocessing import Standardizer, train_val_test_split
from .readers import DELIMITERS, READERS, load_csv, load_data, load_features, load_npz, load_parquet

__all__ = [
    "DEFAULT_DATASET", "DELIMITERS", "MAX_INFERRED_CLASSES", "MISSING_TOKENS", "READERS", "TASKS", "Dataset",
    "DatasetInfo", "Standardizer", "Table", "builtin_names", "encode_labels", "infer_task", "is_builtin",
    "list_datasets", "load_csv", "load_data", "load_dataset", "load_features", "load_npz", "load_parquet",
    "make_circles", "make_cubic", "make_friedman", "make_moons", "make_seed_regression", "make_sin",
    "make_spirals", "make_xor", "regression_targets", "train_val_test_split",
]
