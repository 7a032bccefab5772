"""User files -> data, through one table of readers keyed by file extension.

Each reader takes ``(path, options)`` and returns a :class:`~handgrad.data.columns.Table`
(formats of named columns: CSV, Parquet) or a :class:`~handgrad.data.dataset.Dataset`
(formats of arrays: NPZ). :func:`load_data` turns either into a Dataset;
:func:`load_features` reads the columns a trained model needs. A new format is
one function and one entry in :data:`READERS`.
"""

from __future__ import annotations

import csv
import difflib
import io
import itertools
import os
import stat
import warnings
import zipfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataSourceError
from .builtin import builtin_names, is_builtin, load_dataset
from .columns import Table, feature_matrix, raw_cells, regression_dataset, table_to_dataset, target_dataset
from .csv_numbers import BlockParser
from .dataset import Dataset, check_task

DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class ReadOptions:
    """What a reader may need: the CSV delimiter (None: detected), the fewest columns a table must have;
    ``dtype`` float32 lets a numeric CSV's feature columns be kept as float32 (the target column, named by
    ``target`` or else the last, stays float64)."""

    delimiter: str | None = None
    task: str | None = None
    min_columns: int = 2
    dtype: Any = np.float64
    target: str | None = None


Reader = Callable[[str, ReadOptions], "Table | Dataset"]


# ====================================================================== CSV
def read_csv(path: str, options: ReadOptions) -> Table:
    """A CSV file with a header row: a UTF-8 byte-order mark and CRLF endings are handled, and a ``;``,
    tab or ``|`` delimiter is detected from the header. Rows are named by their line (the header is line 1).

    A file of finite numbers only is read by a fast reader (:func:`_read_numeric_csv`: streamed, no
    copy of the text in memory), about ten times faster, and its columns are float64 arrays. Any
    other file (text cells, missing or non-finite values, ragged rows, a bad encoding) is read
    cell by cell by Python's ``csv`` module, whose cells ``table_to_dataset`` checks and names.
    """
    fast = _read_numeric_csv(path, options)
    if fast is not None:
        return fast
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path!r} is not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise _open_error(path, exc) from None
    if not text.strip():
        raise ValueError(f"{path!r} is empty: no header and no data rows")
    header, rows, lines = _read_rows(text, path, options.delimiter, options.min_columns)
    columns = {name: [row[j] for row in rows] for j, name in enumerate(header)}
    return Table(path, columns, [f"line {n}" for n in lines], text_cells=True)


def _read_numeric_csv(path: str, options: ReadOptions) -> Table | None:
    """The table when every data cell is a finite number, else None.

    Three readers, tried in turn, each of which either reads the whole file or declines: the
    NumPy block parser (:mod:`~handgrad.data.csv_numbers`: plain decimals and exponents, no
    quotes or spaces; within 2x of pandas' time on the core install), pyarrow's streaming CSV
    reader when pyarrow is installed (the ``parquet`` extra), then NumPy's own
    (:func:`numpy.loadtxt`). All agree with the cell-by-cell reader wherever they answer: the
    header is read by the ``csv`` module and checked the same way;
    quoting follows CSV (a quoted field may hold the delimiter or a newline, and such a field
    is one cell, which is then not a number); blank lines are skipped; no comment character.
    Whatever they cannot read as a finite number (text, an empty or NA cell, nan, inf, 1e400,
    a row of another width) returns None, and the cell-by-cell reader reports it with its message.
    """
    try:
        with open(path, encoding="utf-8-sig") as fh:
            header_line, skip = fh.readline(), 1
            while header_line and not header_line.strip():
                header_line, skip = fh.readline(), skip + 1
        if '"' in header_line or not header_line.endswith("\n"):
            return None  # a quoted header (or no data line): the cell-by-cell reader
        delimiter = options.delimiter
        if delimiter is None:
            delimiter = "\t" if path.lower().endswith(".tsv") else _detect_delimiter(header_line)
        header = [cell.strip() for cell in next(csv.reader([header_line], delimiter=delimiter))]
        _check_header(header, path, delimiter, options.min_columns)
    except (ValueError, UnicodeDecodeError, OSError):
        return None  # the cell-by-cell reader reports it
    float32 = np.dtype(options.dtype) == np.float32
    target = options.target if options.target is not None else header[-1]
    # the features in one matrix (float32 if asked), the target float64 on its own: the features are then
    # one C-contiguous block when they are every other column (fit gathers batches ~10x slower from a view)
    names = [name for name in header if name != target]
    target_at = header.index(target) if target in header else None
    read = None
    try:
        read = _blocks_numeric(path, delimiter, skip, len(header), target_at, np.float32 if float32 else np.float64)
    except _BeyondFloat32Error:
        float32 = False  # such data stays float64, and the network reports what it cannot hold
        read = _blocks_numeric(path, delimiter, skip, len(header), target_at, np.float64)
    if read is None and skip == 1:  # pyarrow skips rows, not lines: a header after blank lines goes to NumPy's reader
        try:
            read = _arrow_numeric(path, delimiter, len(header), target_at, np.float32 if float32 else np.float64)
        except _BeyondFloat32Error:
            float32 = False
            read = _arrow_numeric(path, delimiter, len(header), target_at, np.float64)
    if read is None:
        read = _loadtxt_numeric(path, delimiter, skip, len(header), target_at, np.float32 if float32 else np.float64)
        if read is None and float32:  # perhaps a value beyond float32's range: float64 says
            read = _loadtxt_numeric(path, delimiter, skip, len(header), target_at, np.float64)
    if read is None:
        return None
    matrix, y = read
    columns = {name: matrix[:, j] for j, name in enumerate(names)}
    if y is not None:
        columns = {name: (y if name == target else columns[name]) for name in header}
    return Table(path, columns, _CsvLines(path, delimiter, matrix.shape[0]), text_cells=False, matrix=matrix,
                 matrix_columns=names)


def _all_finite(block: np.ndarray) -> bool:
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.add.reduce(block, axis=None)):
            return True  # one pass and no mask: a NaN or an infinity makes the sum non-finite
    return bool(np.isfinite(block).all())


def _loadtxt_numeric(path: str, delimiter: str, skip: int, width: int, target: int | None,
                     dtype: Any) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Every data row by NumPy's C reader (streamed, no copy of the text in memory), or None.

    In one pass, the features as ``dtype`` and the target (column ``target``) as float64: NumPy
    parses each cell to float64 and, for float32, rounds that, the value ``astype`` gives. A
    non-finite value returns None (a NaN or infinity in the file, or, in float32, a value beyond
    its range: the caller asks again in float64).
    """
    fields: list[tuple[str, Any, tuple[int, ...]]] | None = None
    if target is not None:
        fields = [(name, dtype, (k,)) for name, k in (("before", target), ("after", width - target - 1)) if k]
        fields.insert(1 if target else 0, ("target", np.float64, ()))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": None below
            # from the path, not a Python file object: NumPy then reads the file in C, twice as fast
            data: Any = np.loadtxt(path, dtype=dtype if fields is None else np.dtype(fields), delimiter=delimiter,
                                   comments=None, quotechar='"', skiprows=skip, ndmin=2 if fields is None else 1,
                                   encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError, OSError):
        return None
    if data.shape[0] == 0:
        return None
    if fields is None:
        return (data, None) if data.shape[1] == width and _all_finite(data) else None
    names: tuple[str, ...] = data.dtype.names or ()
    parts = [data[name] for name in names if name != "target"]
    y = data["target"].copy()  # before _compact writes over the records
    if not all(_all_finite(part) for part in parts) or not _all_finite(y):
        return None
    return _compact(data, parts, dtype), y


def _compact(records: np.ndarray, parts: list[np.ndarray], dtype: Any) -> np.ndarray:
    """The feature fields of ``records`` as one C-contiguous (n, d) array, moved to the front of the records'
    own buffer (row i from byte i·itemsize to byte i·d·size, a block at a time in ascending order: a block's
    rows are read before any is overwritten, and its new place ends before the next row's old one). A strided
    view of the records would cost no copy either, but ``fit`` gathers its batches about 10x slower from one.
    The caller copies the target out first."""
    n, d, size = records.shape[0], sum(part.shape[1] for part in parts), np.dtype(dtype).itemsize
    out = records.view(np.uint8)[:n * d * size].view(dtype).reshape(n, d)
    for start in range(0, n, ROWS_PER_BLOCK) if d else ():
        rows = slice(start, start + ROWS_PER_BLOCK)
        block = np.concatenate([part[rows] for part in parts], axis=1)  # a copy: read before written over
        out[rows] = block
    return out


ROWS_PER_BLOCK = 1 << 15  # rows moved at a time by _compact
ARROW_BLOCK_BYTES = 1 << 20  # pyarrow parses blocks of this size (its default): the peak is the result plus a few blocks


def _arrow_numeric(path: str, delimiter: str, width: int, target: int | None,
                   dtype: Any) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Every data row by pyarrow's streaming CSV reader, or None (no pyarrow, or a cell that is not a
    finite number, a row of another width, an encoding error; with ``dtype`` float32, a value beyond
    float32's range).

    Block by block, each column is parsed to float64 (pyarrow's parser rounds correctly, as
    Python's ``float`` does, and accepts a subset of what ``float`` accepts) and copied into one
    (n, columns) array of ``dtype`` (float32: rounded from the float64 value, as ``astype``
    rounds), the target column (index ``target``) into its own float64 array. The arrays are
    allocated once from an estimate of the row count (pages never written are never resident)
    and grown if it falls short: the text of the file and Arrow's tables are never whole in
    memory. Empty cells, ``NA`` and the like are not nulls
    here but unparsable, so they decline.
    """
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:
        return None
    names = [f"c{j}" for j in range(width)]
    try:
        rows = _estimate_rows(path)  # the result's first size
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=ARROW_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char='"', double_quote=True,
                                              newlines_in_values=True, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(column_types={name: pa.float64() for name in names}, null_values=[],
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False))
        result = _Rows(rows, width - (target is not None), dtype, target is not None)
        for batch in reader:
            m = batch.num_rows
            block, y_block = result.next_rows(m)
            j = 0
            for c, column in enumerate(batch.columns):
                values = column.to_numpy(zero_copy_only=False)
                if not _all_finite(values):
                    return None
                if c == target and y_block is not None:
                    y_block[:] = values
                else:
                    with np.errstate(over="ignore"):
                        block[:, j] = values
                    j += 1
            result.commit(m)
    except (pa.ArrowException, ValueError, OSError, UnicodeDecodeError):
        return None
    return result.arrays()


PARSER_THREADS = min(2, os.cpu_count() or 1)  # blocks parsed at once by _blocks_numeric (NumPy releases the GIL)


def _blocks_numeric(path: str, delimiter: str, skip: int, width: int, target: int | None,
                    dtype: Any) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Every data row by :class:`~handgrad.data.csv_numbers.BlockParser` (NumPy only: the core
    install's fast reader), or None when a block is not one it reads (it then declines the file).

    The file is read in blocks of whole lines, each parsed by one of ``PARSER_THREADS`` parsers
    (to float64, then the features as ``dtype``: float32 rounded from the float64 value, as
    ``astype`` rounds) while the rows of the one before are copied into the (n, columns) result
    and the float64 target. As in :func:`_arrow_numeric`, the arrays come from an estimate of
    the row count and grow if it falls short, and the file's text is never whole in memory.
    """
    try:
        parsers = [BlockParser(width, delimiter) for _ in range(PARSER_THREADS)]
    except ValueError:
        return None  # a delimiter it cannot take
    result = _Rows(_estimate_rows(path), width - (target is not None), dtype, target is not None)

    def store(parsed: tuple[np.ndarray, np.ndarray | None] | None, read_by_float: bool) -> bool:
        if parsed is None:
            return False
        features, target_column = parsed
        block, y_block = result.next_rows(features.shape[0])
        block[...] = features
        if y_block is not None:
            y_block[...] = target_column
        result.commit(features.shape[0], beyond_float32_possible=read_by_float)  # only float() exceeds float32
        return True

    try:
        with open(path, "rb") as fh, ThreadPoolExecutor(len(parsers)) as pool:
            for _ in range(skip):
                fh.readline()
            pending: deque[tuple[BlockParser, Future]] = deque()
            carry = b""
            for i in itertools.count():
                parser = parsers[i % len(parsers)]
                if len(pending) == len(parsers):  # this parser's block before: into the result first
                    done, future = pending.popleft()
                    if not store(future.result(), done.read_by_float > 0):
                        return None
                carry = parser.fill(fh, carry)
                if parser.size == 0:
                    break
                if i == 0:  # the first block at once: a file it declines costs one block
                    if not store(parser.parse_columns(target, result.dtype), parser.read_by_float > 0):
                        return None
                    continue
                try:
                    pending.append((parser, pool.submit(parser.parse_columns, target, result.dtype)))
                except RuntimeError:  # no thread can be started here: the next reader takes the file
                    return None
            while pending:
                done, future = pending.popleft()
                if not store(future.result(), done.read_by_float > 0):
                    return None
    except OSError:
        return None
    return result.arrays()


class _BeyondFloat32Error(Exception):
    """A finite float64 value that float32 cannot hold."""


def _estimate_rows(path: str) -> int:
    """Somewhat more rows than the file holds, from the length of its first lines (an overestimate costs
    address space, not memory: the unused end of the array is never written)."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        sample = fh.read(1 << 20)
    lines = max(1, sample.count(b"\n"))
    return int(size / (len(sample) / lines) * 1.25) + 1024


class _Rows:
    """The result of a streaming numeric reader: an (n, k) array of ``dtype`` and the float64 target,
    filled a block of rows at a time. Allocated once from an estimate of the row count (an overestimate
    costs address space, not memory: pages never written are never resident) and grown if it falls short."""

    def __init__(self, rows: int, k: int, dtype: Any, with_target: bool) -> None:
        self.out = np.empty((rows, k), dtype=dtype)
        self.y = np.empty(rows, dtype=np.float64) if with_target else None
        self.dtype, self.n = self.out.dtype, 0

    def next_rows(self, m: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Views of the next m rows of the features and the target (None without one), to fill."""
        n = self.n
        if n + m > self.out.shape[0]:
            self.out, self.y = _grow(self.out, n, n + m), (None if self.y is None else _grow(self.y, n, n + m))
        return self.out[n:n + m], (None if self.y is None else self.y[n:n + m])

    def commit(self, m: int, beyond_float32_possible: bool = True) -> None:
        """The m rows from :meth:`next_rows` are filled: raises _BeyondFloat32Error where a float64 value
        became infinite in float32 (the caller reads the file again in float64)."""
        if beyond_float32_possible and self.dtype != np.float64 and not _all_finite(self.out[self.n:self.n + m]):
            raise _BeyondFloat32Error  # finite in float64, not in float32
        self.n += m

    def arrays(self) -> tuple[np.ndarray, np.ndarray | None] | None:
        """(features, target) of the rows filled, or None for none."""
        if self.n == 0:
            return None
        return self.out[:self.n], (None if self.y is None else self.y[:self.n])


def _grow(a: np.ndarray, n: int, need: int) -> np.ndarray:
    bigger = np.empty((max(need, int(a.shape[0] * 1.5)),) + a.shape[1:], dtype=a.dtype)
    bigger[:n] = a[:n]
    return bigger


class _CsvLines(Sequence):
    """``line N`` for each data row of a CSV file, found (by the csv module) only when asked:
    a fast-read file needs them only in an error message."""

    def __init__(self, path: str, delimiter: str, n: int) -> None:
        self.path, self.delimiter, self.n = path, delimiter, n
        self.lines: list[int] | None = None

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        if self.lines is None:
            with open(self.path, encoding="utf-8-sig", newline="") as fh:
                self.lines = [line for line, _ in _rows_with_lines(csv.reader(fh, delimiter=self.delimiter))][1:]
        if isinstance(i, slice):
            return [f"line {n}" for n in self.lines[i]]
        return f"line {self.lines[i]}"


def _read_rows(text: str, path: str, delimiter: str | None,
               min_columns: int) -> tuple[list[str], list[list[str]], list[int]]:
    first = next((line for line in text.splitlines() if line.strip()), "")
    if delimiter is None:
        delimiter = "\t" if path.lower().endswith(".tsv") else _detect_delimiter(first)
    # the csv module splits the lines itself, so that a quoted field keeps its newline ("2\n5" is not 25)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    for line, row in _rows_with_lines(reader):
        if header is None:
            header = [cell.strip() for cell in row]
            _check_header(header, path, delimiter, min_columns)
            continue
        if len(row) != len(header):
            raise ValueError(f"{path!r}, line {line}: {len(row)} field(s), but the header has {len(header)} "
                             f"(delimiter {delimiter!r})")
        rows.append(row)
        line_numbers.append(line)
    if header is None or not rows:
        raise ValueError(f"no data rows in {path!r} (only a header)")
    return header, rows, line_numbers


def _rows_with_lines(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """(the line a row starts on, the row) for every row that is not blank; a row whose quoted
    field holds a newline spans several lines and is named by its first."""
    end = 0
    for row in reader:
        start, end = end + 1, reader.line_num
        if any(cell.strip() for cell in row):
            yield start, row


def _detect_delimiter(header_line: str) -> str:
    if "," in header_line:
        return ","
    counts = {d: header_line.count(d) for d in DELIMITERS[1:]}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _check_header(header: list[str], path: str, delimiter: str, min_columns: int) -> None:
    if len(header) < min_columns:
        others = [d for d in DELIMITERS if d != delimiter and d in header[0]]
        guess = f"; the header contains {others[0]!r}: is that the delimiter?" if others else ""
        raise ValueError(f"only 1 column found in {path!r} with delimiter {delimiter!r}{guess} "
                         "(a data file needs at least one feature column and a target column)")
    seen: set[str] = set()
    for j, name in enumerate(header):
        if not name:
            raise ValueError(f"{path!r}, line 1: column {j + 1} has an empty name in the header")
        if name in seen:
            raise ValueError(f"{path!r}, line 1: column name {name!r} appears twice in the header")
        seen.add(name)


# ====================================================================== NPZ
def read_npz(path: str, options: ReadOptions) -> Dataset:
    """``X`` (n, d) and ``y`` from an ``.npz`` file, never unpickling (``allow_pickle=False``).

    Optional keys: ``feature_names`` (d strings) and ``class_labels``.
    """
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path!r} is not a valid .npz file (not a zip archive of arrays; save with np.savez)")
    X, y, names, labels = _npz_arrays(path)
    if y.ndim not in (1, 2) or (X.ndim == 2 and y.shape[0] != X.shape[0]):
        raise ValueError(f"{path!r}: y must have one row per row of X ({X.shape[0]}), got shape {y.shape}")
    X = _npz_features_array(path, X)
    table = Table(path, {"y": y}, [f"row {i}" for i in range(len(y))], text_cells=False)
    if y.ndim == 2 and y.shape[1] > 1:
        if options.task == "classification":
            raise ValueError(f"{path!r}: y has {y.shape[1]} columns; classification needs one label per row")
        return regression_dataset(X, _numeric_target(y, path), table, "y", names)
    ds = target_dataset(X, y.reshape(-1), table, "y", task=options.task, names=names)
    if labels is not None and ds.task == "classification":
        if len(labels) != ds.n_classes:
            raise ValueError(f"{path!r}: class_labels has {len(labels)} entries for {ds.n_classes} classes")
        ds.class_labels = labels
    return ds


def _npz_features_array(path: str, X: np.ndarray) -> np.ndarray:
    """X as finite float64 (n, d), or a ValueError naming the file and the first bad cell."""
    if X.ndim != 2:
        raise ValueError(f"{path!r}: X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{path!r}: X must hold numbers, got dtype {X.dtype}")
    if X.shape[0] == 0:
        raise ValueError(f"no data rows in {path!r} (X has shape {X.shape})")
    X = X.astype(np.float64)
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        r, c = (int(i) for i in bad[0])
        word = "NaN" if np.isnan(X[r, c]) else "infinity"
        raise ValueError(f"{path!r}: X contains {word} at row {r} (0-based), column {c} "
                         f"({len(bad)} non-finite value(s) in all)")
    return X


def npz_features(path: str, feature_names: Sequence[str], options: ReadOptions) -> tuple[np.ndarray, Any, list[str]]:
    """A model's columns from an ``.npz``: matched by ``feature_names`` when the file has them (as CSV columns
    are matched by name), else by position; ``y`` is optional (predicting needs no target)."""
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path!r} is not a valid .npz file (not a zip archive of arrays; save with np.savez)")
    arrays = _npz_read(path)
    if "X" not in arrays:
        raise ValueError(f"{path!r} has no 'X' array; found keys: {', '.join(map(repr, arrays)) or 'none'} "
                         "(save with np.savez(path, X=X))")
    X = _npz_features_array(path, arrays["X"])
    if "feature_names" in arrays:
        names = _npz_arrays(path, arrays, need_y=False)[2] or []
        missing = [n for n in feature_names if n not in names]
        if missing:
            raise ValueError(f"{path!r} lacks the model's feature column(s) {', '.join(map(repr, missing))}; "
                             f"expected: {', '.join(feature_names)}; found: {', '.join(names)}")
        X = X[:, [names.index(n) for n in feature_names]]
    elif X.shape[1] != len(feature_names):
        raise ValueError(f"{path!r}: X has {X.shape[1]} features, but the model expects {len(feature_names)}")
    if "y" not in arrays:
        return X, None, [f"row {i}" for i in range(X.shape[0])]
    _, y, where = _features_of(read_npz(path, options))
    return X, y, where


def _npz_arrays(path: str, arrays: dict[str, np.ndarray] | None = None,
                need_y: bool = True) -> tuple[np.ndarray, np.ndarray, list[str] | None, list[Any] | None]:
    arrays = _npz_read(path) if arrays is None else arrays
    missing = [k for k in (("X", "y") if need_y else ("X",)) if k not in arrays]
    if missing:
        raise ValueError(f"{path!r} has no {' or '.join(repr(k) for k in missing)} array; found keys: "
                         f"{', '.join(map(repr, arrays)) or 'none'} (save with np.savez(path, X=X, y=y))")
    names = [str(n) for n in arrays["feature_names"]] if "feature_names" in arrays else None
    if names is not None:
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{path!r}: feature_names repeats {', '.join(map(repr, repeated))}; each column needs "
                             "its own name")
        if arrays["X"].ndim == 2 and len(names) != arrays["X"].shape[1]:
            raise ValueError(f"{path!r}: feature_names has {len(names)} names for X's {arrays['X'].shape[1]} columns")
    labels = [_plain(v) for v in arrays["class_labels"].tolist()] if "class_labels" in arrays else None
    return arrays["X"], arrays.get("y", np.empty(0)), names, labels


def _npz_read(path: str) -> dict[str, np.ndarray]:
    """Every array of the archive; any failure of NumPy's reader becomes a ValueError naming the file."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):  # NumPy's own refusal has no error type
            raise ValueError(f"{path!r} holds an object array, which handgrad never loads (pickle); "
                             "save plain numeric arrays") from None
        raise ValueError(f"{path!r} is not a valid .npz file: {exc}") from None
    except OSError as exc:
        if exc.errno:
            raise _open_error(path, exc) from None
        raise ValueError(f"{path!r} is not a valid .npz file: {exc}") from None
    except Exception as exc:  # zipfile.BadZipFile, EOFError, ...
        raise ValueError(f"{path!r} is not a valid .npz file ({type(exc).__name__}: {exc})") from None


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float)) else str(value)


def _numeric_target(y: np.ndarray, path: str) -> np.ndarray:
    if y.dtype.kind not in "biuf":
        raise ValueError(f"{path!r}: a regression target must hold numbers, got dtype {y.dtype}")
    y = y.astype(np.float64)
    if not np.isfinite(y).all():
        r = int(np.argwhere(~np.isfinite(y))[0][0])
        raise ValueError(f"{path!r}: y contains NaN or infinity at row {r} (0-based)")
    return y


# ====================================================================== Parquet
def read_parquet(path: str, options: ReadOptions) -> Table:
    """A Parquet file, read with pyarrow (or pandas). Rows are named 1-based (``row 1`` is the first).

    With pyarrow the file is read column by column: each integer or float column other than the
    target (``options.target``, else the last), without nulls or NaN, is decoded and copied
    straight into one (n, columns) matrix of ``options.dtype`` (float32: rounded from its float64
    value) and its Arrow data dropped, so the peak is the result plus one column.
    """
    columns, matrix, held = _parquet_columns(path, options)
    if not columns:
        raise ValueError(f"{path!r} has no columns")
    n = len(next(iter(columns.values())))
    if n == 0:
        raise ValueError(f"no data rows in {path!r}")
    return Table(path, columns, RowNames(n), text_cells=False, matrix=matrix, matrix_columns=held)


class RowNames(Sequence):
    """``row 1``, ``row 2``, ... for n rows, made only when asked (an error message needs one or two)."""

    def __init__(self, n: int, first: int = 1) -> None:
        self.n, self.first = n, first

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [f"row {j + self.first}" for j in range(*i.indices(self.n))]
        if not -self.n <= i < self.n:
            raise IndexError(i)
        return f"row {i % self.n + self.first}"


def _parquet_columns(path: str, options: ReadOptions) -> tuple[dict[str, Any], np.ndarray | None, Any]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        pq = None
    try:
        if pq is not None:
            return _parquet_by_column(pq.ParquetFile(path), options)
        try:
            import pandas as pd
        except ImportError:
            from ..optional import MissingDependencyError

            raise MissingDependencyError("pyarrow", "parquet", f"reading Parquet ({path!r})") from None
        frame = pd.read_parquet(path)
        return {str(name): frame[name].to_numpy(dtype=object) for name in frame.columns}, None, None
    except ImportError:
        raise
    except OSError as exc:
        if exc.errno:
            raise _open_error(path, exc) from None
        raise ValueError(f"{path!r} is not a valid Parquet file: {exc}") from None
    except Exception as exc:
        raise ValueError(f"{path!r} is not a valid Parquet file ({type(exc).__name__}: {exc})") from None


def _parquet_by_column(pf: Any, options: ReadOptions) -> tuple[dict[str, Any], np.ndarray | None, list[str | None]]:
    """The columns; the matrix holding the numeric non-target ones; the name of each matrix column
    (None where a column could not go in: nulls, NaN, or beyond float32)."""
    import pyarrow.types as pt

    names = [str(name) for name in pf.schema_arrow.names]
    target = options.target if options.target is not None else (names[-1] if names else None)
    numeric = [f.name for f in pf.schema_arrow if f.name != target and (pt.is_integer(f.type) or pt.is_floating(f.type))]
    dtype = np.float32 if np.dtype(options.dtype) == np.float32 else np.float64
    matrix = np.empty((pf.metadata.num_rows, len(numeric)), dtype=dtype) if numeric else None
    held: list[str | None] = [None] * len(numeric)
    columns: dict[str, Any] = {}
    for name in names:
        column = pf.read(columns=[name], use_threads=False).column(0)
        if matrix is not None and name in numeric:
            j = numeric.index(name)
            if _into_matrix(column, matrix[:, j]):
                columns[name], held[j] = matrix[:, j], name
                continue
        columns[name] = _arrow_column(column)
    return columns, matrix, held


def _into_matrix(column: Any, out: np.ndarray) -> bool:
    """Copies an integer or float Arrow column into ``out`` chunk by chunk; False (``out`` then unused) when it
    holds a null, a NaN or an infinity, or a value beyond ``out``'s float32."""
    if column.null_count:
        return False
    start = 0
    for chunk in column.chunks:
        values = chunk.to_numpy()
        if values.dtype.kind == "f" and not _all_finite(values):
            return False
        part = out[start:start + len(values)]
        with np.errstate(over="ignore"):
            part[...] = values if out.dtype == np.float64 else values.astype(np.float64)  # one float64 reading, rounded
        if out.dtype != np.float64 and not _all_finite(part):
            return False
        start += len(values)
    return start == out.shape[0]


def _arrow_column(column: Any) -> np.ndarray:
    """A Parquet column as NumPy: an integer or float column of finite values without nulls as
    its own numbers (no copy where Arrow holds it in one chunk); any other (text, bool, nulls,
    NaN) as Python values, whose cells ``table_to_dataset`` checks and names."""
    import pyarrow.types as pt

    if column.null_count == 0 and (pt.is_integer(column.type) or pt.is_floating(column.type)):
        values = column.to_numpy()
        if values.dtype.kind in "iu" or np.isfinite(values).all():
            return values
    return np.array(column.to_pylist(), dtype=object)


# ====================================================================== the table of readers
READERS: dict[str, Reader] = {
    ".csv": read_csv, ".tsv": read_csv, ".txt": read_csv, ".data": read_csv, "": read_csv,
    ".npz": read_npz,
    ".parquet": read_parquet, ".pq": read_parquet,
}


def _reader(path: str) -> Reader:
    ext = os.path.splitext(path)[1].lower()
    if ext not in READERS:
        raise DataSourceError(f"{path!r}: unsupported file type {ext!r}; handgrad reads .csv, .tsv, .npz and "
                              ".parquet files")
    return READERS[ext]


MAX_FILE_BYTES = 2 * 1024**3  # 2 GiB: larger data files are refused before reading (handgrad holds data in memory)


def check_path(path: str, max_bytes: int | None = None) -> None:
    """A readable data file, checked before any byte is read: a directory, a device, a FIFO or a file larger
    than ``max_bytes`` (default :data:`MAX_FILE_BYTES`) raises DataSourceError, a missing file FileNotFoundError."""
    if os.path.isdir(path):
        raise DataSourceError(f"{path!r} is a directory, not a data file")
    if not os.path.exists(path):
        close = difflib.get_close_matches(path.strip().lower(), builtin_names(), n=1)
        hint = f"; built-in datasets: {', '.join(builtin_names())}" if os.sep not in path and "." not in path else ""
        hint = f"; did you mean the built-in dataset {close[0]!r}?" if close else hint
        raise FileNotFoundError(f"no such file: {path!r}{hint}")
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        kind = "a character device" if stat.S_ISCHR(st.st_mode) else "a FIFO (named pipe)" \
            if stat.S_ISFIFO(st.st_mode) else "not a regular file"
        raise DataSourceError(f"{path!r} is {kind}; handgrad reads data from regular files only")
    limit = MAX_FILE_BYTES if max_bytes is None else max_bytes
    if st.st_size > limit:
        raise DataSourceError(f"{path!r} is {st.st_size:,} bytes, above the {limit:,}-byte limit for a data file "
                              "(handgrad holds the data in memory)")


def _open_error(path: str, exc: OSError) -> OSError:
    reason = exc.strerror or str(exc)
    return type(exc)(f"cannot read {path!r}: {reason} (errno {exc.errno})") if exc.errno else exc


# ====================================================================== entry points
def load_data(source: str | os.PathLike, *, target: str | None = None, task: str | None = None,
              delimiter: str | None = None, drop: Sequence[str] = (), seed: Any = 0,
              dtype: Any = "float64") -> Dataset:
    """A Dataset from a built-in name or a file (``.csv``/``.tsv``/``.txt``, ``.npz``, ``.parquet``).

    Parameters
    ----------
    source : a built-in dataset name ('moons', 'digits', ...) or a path.
    target : the target column of a CSV/Parquet file (default: the last column).
    task : 'regression' or 'classification'; inferred from the target when None
        (text, or integers with at most 20 distinct values, mean classification).
    delimiter : CSV delimiter; detected from the header when None.
    drop : columns to ignore (an id column, a text column).
    seed : seed of generated built-in datasets.
    dtype : 'float64' (default) or 'float32', the features' dtype. float32 is what a float32
        network trains on: each value is its float64 reading rounded to float32 (exactly the
        copy the network would make), and a CSV of numbers is read straight into float32, so
        that the data is in memory once, at half the size. Features beyond float32's range
        (|x| > 3.4e38) stay float64. Targets are float64 (regression) or class indices either way.

    Raises
    ------
    FileNotFoundError : no such file (nor built-in dataset).
    DataSourceError : a directory, an unknown file type, or an option that does not apply to the source.
    ValueError : bad content, naming the file, the column and the row.
    """
    task = check_task(task)
    float32 = _check_dtype(dtype) == np.float32
    path = os.fspath(source)
    if not os.path.exists(path) and is_builtin(path):
        if target is not None:
            raise DataSourceError(f"--target applies to files; built-in dataset {path!r} has its target already")
        ds = load_dataset(path, seed=seed)
        if task is not None and task != ds.task:
            raise DataSourceError(f"built-in dataset {path!r} is a {ds.task} dataset, not {task}")
        return _features_as_float32(ds) if float32 else ds
    check_path(path)
    result = _reader(path)(path, ReadOptions(delimiter=delimiter, task=task, dtype=np.float32 if float32 else np.float64,
                                             target=target))
    ds = result if isinstance(result, Dataset) else table_to_dataset(result, target=target, task=task, drop=drop)
    return _features_as_float32(ds) if float32 else ds


def _check_dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return dt


def _features_as_float32(ds: Dataset) -> Dataset:
    """ds with float32 features (rounded as ``astype`` rounds), unless a value lies beyond float32's range."""
    if ds.X.dtype == np.float32:
        return ds
    with np.errstate(over="ignore"):
        X = ds.X.astype(np.float32)
    if not np.isfinite(X).all():
        return ds
    ds.X = X
    return ds


def load_csv(path: str | os.PathLike, *, target: str | None = None, task: str | None = None,
             delimiter: str | None = None, drop: Sequence[str] = ()) -> Dataset:
    """Read a CSV file with a header row (see :func:`read_csv` and :func:`load_data`)."""
    path = os.fspath(path)
    check_path(path)
    return table_to_dataset(read_csv(path, ReadOptions(delimiter=delimiter)), target=target, task=check_task(task),
                            drop=drop)


def load_npz(path: str | os.PathLike, *, task: str | None = None) -> Dataset:
    """Read ``X`` and ``y`` from an ``.npz`` file (see :func:`read_npz`)."""
    path = os.fspath(path)
    check_path(path)
    return read_npz(path, ReadOptions(task=check_task(task)))


def load_parquet(path: str | os.PathLike, *, target: str | None = None, task: str | None = None,
                 drop: Sequence[str] = ()) -> Dataset:
    """Read a Parquet file with pyarrow (or pandas). Rows in errors are 1-based data rows."""
    path = os.fspath(path)
    check_path(path)
    return table_to_dataset(read_parquet(path, ReadOptions()), target=target, task=check_task(task), drop=drop)


def load_features(source: str | os.PathLike, feature_names: Sequence[str], *, target: str | None = None,
                  delimiter: str | None = None) -> tuple[np.ndarray, list[Any] | np.ndarray | None, Sequence[str]]:
    """X for a trained model, from a file or a built-in name, with the model's columns.

    CSV and Parquet columns are matched by name (their order in the file does not
    matter, extra columns are ignored); a missing column raises listing the
    expected and the found columns. Returns ``(X, y, where)``: ``y`` holds the raw
    target cells when the ``target`` column is present (else None), ``where`` the
    location of each row for error messages.
    """
    path = os.fspath(source)
    if not os.path.exists(path) and is_builtin(path):
        ds = load_dataset(path)
        if list(ds.feature_names) != list(feature_names):
            raise ValueError(f"built-in dataset {ds.name!r} has features {ds.feature_names}, "
                             f"but the model expects {list(feature_names)}")
        return _features_of(ds)
    check_path(path)
    reader = _reader(path)
    if reader is read_npz:
        return npz_features(path, feature_names, ReadOptions(min_columns=1))
    result = reader(path, ReadOptions(delimiter=delimiter, min_columns=1))
    if isinstance(result, Dataset):
        if result.n_features != len(feature_names):
            raise ValueError(f"{path!r}: X has {result.n_features} features, but the model expects "
                             f"{len(feature_names)}")
        return _features_of(result)
    missing = [name for name in feature_names if name not in result.columns]
    if missing:
        raise ValueError(f"{path!r} lacks the model's feature column(s) {', '.join(map(repr, missing))}; "
                         f"expected: {', '.join(feature_names)}; found: {', '.join(result.header)}")
    X = feature_matrix(result, list(feature_names))  # the reader's own matrix where the columns line up: no copy
    y = raw_cells(result, target) if target is not None and target in result.columns else None
    return X, y, result.where


def _features_of(ds: Dataset) -> tuple[np.ndarray, Any, list[str]]:
    y = [ds.class_labels[i] for i in ds.y] if ds.task == "classification" and ds.class_labels else ds.y
    return ds.X, y, [f"row {i}" for i in range(ds.n_samples)]


__all__ = [
    "DELIMITERS", "READERS", "ReadOptions", "check_path", "load_csv", "load_data", "load_features", "load_npz",
    "load_parquet", "read_csv", "read_npz", "read_parquet",
]
