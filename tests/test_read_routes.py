"""A CSV file of numbers reads the same by each route: pyarrow's streaming reader, NumPy's
reader and the csv module cell by cell; as float64 or, asked for, float32 (the float64 reading
rounded, as a float32 network rounds it); and no route accepts what the cell-by-cell reader rejects."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from handgrad.data import load_data, readers
from handgrad.data.columns import Table, table_to_dataset
from handgrad.data.readers import ReadOptions, _read_rows, read_csv

NUMERIC = [
    "a,b,y\n1.5,-2,0\n3e-3,4,1\n",
    "\ufeffa;b;y\r\n1;2;3.5\r\n\r\n4;5;6.25\r\n",         # BOM, CRLF, a blank line, ';'
    "a,b,y\n\"1.5\",2,1\n3,\"4\",0\n",                  # quoted numbers
    "a,b,y\n1e308,-1e308,2\n3,4,5\n",                   # finite, near float64's limit
    "a,b,y\n 1 , 2 ,1\n3,4,0\n",                        # spaces around numbers
    "a,b,y\n+1,.5,0\n5.,-0,1\n0001,1E+05,0\n",          # signs, bare points, leading zeros
    "a,b,y\n4.9e-324,2.2250738585072011e-308,1\n1e-400,0.1,0\n",  # subnormals, underflow to 0
    "a\tb\ty\n1\t2\t0\n3\t4\t1\n",
    "a,b,y\r1,2,0\r3,4,1\r",                             # old Mac line ends
    "a,b,y\n1,2,0\n3,4,1",                               # no newline at the end
    "\n\na,b,y\n1,2,0\n3,4,1\n",                         # blank lines before the header
]


def _write(tmp_path, text: str, name: str = "d.csv") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return str(path)


def _cell_by_cell(path: str) -> Table:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        text = fh.read()
    header, rows, lines = _read_rows(text, path, None, 2)
    return Table(path, {name: [row[j] for row in rows] for j, name in enumerate(header)},
                 [f"line {n}" for n in lines], text_cells=True)


@pytest.fixture(params=["pyarrow", "blocks", "loadtxt"])
def route(request, monkeypatch):
    """Which reader reads numeric files: the NumPy block parser (csv_numbers; pyarrow hidden, as on the core
    install), pyarrow's (when installed; the block parser declining), or NumPy's loadtxt (both declining)."""
    if request.param == "pyarrow":
        pytest.importorskip("pyarrow.csv")
    else:
        monkeypatch.setitem(sys.modules, "pyarrow", None)
        monkeypatch.setitem(sys.modules, "pyarrow.csv", None)
    if request.param in ("pyarrow", "loadtxt"):
        monkeypatch.setattr(readers, "_blocks_numeric", lambda *a: None)
    return request.param


@pytest.mark.parametrize("text", NUMERIC)
def test_numeric_files_read_the_same_by_every_route(tmp_path, monkeypatch, route, text):
    path = _write(tmp_path, text)
    answered = []
    arrow = readers._arrow_numeric
    monkeypatch.setattr(readers, "_arrow_numeric", lambda *a: answered.append(arrow(*a)) or answered[-1])
    by_blocks: list = []
    blocks = readers._blocks_numeric
    monkeypatch.setattr(readers, "_blocks_numeric", lambda *a: by_blocks.append(blocks(*a)) or by_blocks[-1])
    fast = read_csv(path, ReadOptions())
    assert fast.matrix is not None and fast.matrix.dtype == np.float64
    if route == "pyarrow" and not text.startswith("\n"):  # a header after blank lines: NumPy's reader
        assert answered and answered[0] is not None, "expected pyarrow's reader to take this file"
    if route == "blocks" and not any(mark in text for mark in ('"', " ", "\r1", "\n\r", "\n\n", "\r\n\r\n")):
        assert by_blocks and by_blocks[-1] is not None, "expected the block parser to take this file"
    ds, slow = table_to_dataset(fast), table_to_dataset(_cell_by_cell(path))
    np.testing.assert_array_equal(ds.X, slow.X)
    np.testing.assert_array_equal(ds.y, slow.y)
    assert (ds.task, ds.feature_names, ds.class_labels) == (slow.task, slow.feature_names, slow.class_labels)
    assert list(fast.where) == _cell_by_cell(path).where


@pytest.mark.parametrize("text", NUMERIC)
def test_float32_is_the_float64_reading_rounded(tmp_path, route, text):
    path = _write(tmp_path, text)
    ds64, ds32 = load_data(path), load_data(path, dtype="float32")
    fits = np.abs(ds64.X).max() <= np.finfo(np.float32).max  # else the features stay float64
    assert ds32.X.dtype == (np.float32 if fits else np.float64) and ds64.X.dtype == np.float64
    np.testing.assert_array_equal(ds32.X, ds64.X.astype(ds32.X.dtype))
    np.testing.assert_array_equal(ds32.y, ds64.y)  # the target keeps its float64 value
    assert ds32.y.dtype == ds64.y.dtype and ds32.class_labels == ds64.class_labels


def test_many_random_decimals_parse_as_python_float_does(tmp_path, route):
    rng = np.random.default_rng(5)
    values = rng.standard_normal((3000, 3)) * 10.0 ** rng.integers(-30, 30, (3000, 3))
    digits = rng.integers(1, 18, (3000, 3))
    cells = [[f"{v:.{d}g}" for v, d in zip(row, ds)] for row, ds in zip(values, digits)]
    text = "a,b,c,y\n" + "".join(",".join(row) + f",{i % 2}\n" for i, row in enumerate(cells))
    path = _write(tmp_path, text)
    expected = np.array([[float(c) for c in row] for row in cells])
    ds = load_data(path)
    assert ds.X.tobytes() == expected.tobytes()
    np.testing.assert_array_equal(load_data(path, dtype="float32").X, expected.astype(np.float32))


def _just_above_a_float32_midpoint(x: float) -> str:
    """A decimal a hair above the midpoint of float32 x and the next float32: its float64 reading is the
    midpoint itself, which rounds (ties to even) down to x; a direct decimal-to-float32 parse rounds up."""
    from decimal import Decimal, getcontext

    getcontext().prec = 60
    x32 = np.float32(x)
    mid = (Decimal(float(x32)) + Decimal(float(np.nextafter(x32, np.float32(np.inf))))) / 2
    return format(mid + Decimal(2) ** -80 * abs(Decimal(float(x32))), "f")


@pytest.mark.parametrize("target_last", [True, False])
def test_float32_rounds_the_float64_reading_not_the_decimal(tmp_path, route, target_last):
    cells = [_just_above_a_float32_midpoint(x) for x in (1.0, 3.5, -1234.5677, 2.0**-20)]
    assert np.float32(float(cells[0])) == 1.0  # the rounding today's float64 reading gets
    rows = [f"{c},{c},{i % 2}" if target_last else f"{i % 2},{c},{c}" for i, c in enumerate(cells)]
    path = _write(tmp_path, ("a,b,y\n" if target_last else "y,a,b\n") + "\n".join(rows) + "\n")
    X = load_data(path, target="y", dtype="float32").X
    expected = np.array([[float(c), float(c)] for c in cells]).astype(np.float32)
    np.testing.assert_array_equal(X, expected)
    assert X.flags.c_contiguous  # fit gathers its batches several times slower from a strided view


@pytest.mark.parametrize("header", ["y,a,b,c", "a,y,b,c", "a,b,c,y"])
def test_features_are_one_contiguous_array_wherever_the_target_is(tmp_path, route, header):
    rng = np.random.default_rng(3)
    data = rng.standard_normal((70_000, 4)).round(3)  # more rows than one block of the compaction
    data[:, header.split(",").index("y")] = rng.integers(0, 2, 70_000)
    path = _write(tmp_path, header + "\n" + "\n".join(",".join(f"{v:g}" for v in row) for row in data) + "\n")
    ds64, ds32 = load_data(path), load_data(path, dtype="float32")
    assert ds32.X.flags.c_contiguous and ds32.X.dtype == np.float32 and ds64.X.flags.c_contiguous
    np.testing.assert_array_equal(ds32.X, ds64.X.astype(np.float32))
    np.testing.assert_array_equal(ds32.y, ds64.y)


def test_the_target_may_sit_anywhere_and_dropped_columns_stay_out(tmp_path, route):
    path = _write(tmp_path, "a,t,b,c\n1.1,0.5,2.2,3.3\n4.4,1.5,5.5,6.6\n7.7,2.5,8.8,9.9\n")
    ds64 = load_data(path, target="t", drop=["b"])
    ds32 = load_data(path, target="t", drop=["b"], dtype="float32")
    assert ds32.feature_names == ds64.feature_names == ["a", "c"]
    np.testing.assert_array_equal(ds32.X, ds64.X.astype(np.float32))
    np.testing.assert_array_equal(ds32.y, ds64.y)
    ds = load_data(path, target="t", dtype="float32")
    assert ds.feature_names == ["a", "b", "c"] and ds.X.dtype == np.float32


def test_values_beyond_float32_keep_float64(tmp_path, route):
    path = _write(tmp_path, "a,b,y\n1e39,2,0\n3,4,1\n")
    ds = load_data(path, dtype="float32")
    assert ds.X.dtype == np.float64 and ds.X[0, 0] == 1e39


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("text, message", [
    ("a,b,y\n1,2,0\n1e400,4,1\n", r"infinity \('1e400'\) at line 3, column 'a'"),
    ("a,b,y\n1,2,0\nnan,4,1\n", r"missing value at line 3, column 'a'"),
    ("a,b,y\n1,2,0\nNaN,4,1\n", r"missing value at line 3, column 'a'"),
    ("a,b,y\n1,2,0\n,4,1\n", r"missing value at line 3, column 'a'"),
    ("a,b,y\n1,2,0\nNA,4,1\n", r"missing value at line 3, column 'a'"),
    ("a,b,y\n1,2,0\ninf,4,1\n", r"infinity \('inf'\) at line 3, column 'a'"),
    ("a,b,y\n1,2,0\n3,-Infinity,1\n", r"infinity \('-Infinity'\) at line 3, column 'b'"),
    ("a,b,y\n1,2,0\n3,abc,1\n", r"non-numeric value 'abc' at line 3, column 'b'"),
    ("a,b,y\n1,2,0\n3,4\n", r"line 3: 2 field\(s\), but the header has 3"),
    ("a,b,y\n1,2,0\n3,4,1,5\n", r"line 3: 4 field\(s\), but the header has 3"),
    ('a,b,y\n"2\n5",1,0\n3,4,1\n', r"non-numeric value '2\\n5' at line 2, column 'a'"),
    ("a,b,y\n1,2,0\n3,4,nan\n", r"missing value at line 3, column 'y' \(the target\)"),
    ("a,b,y\n1,2,0\n3,4,1e999\n", r"infinity at line 3, column 'y' \(the target\)"),
    ("a,b,y\n", r"no data rows"),
    ("a,a,y\n1,2,0\n", r"column name 'a' appears twice"),
])
def test_no_route_accepts_what_the_cell_by_cell_reader_rejects(tmp_path, route, dtype, text, message):
    with pytest.raises(ValueError, match=message):
        load_data(_write(tmp_path, text), dtype=dtype)


def test_a_file_across_many_blocks_and_a_low_row_estimate(tmp_path, monkeypatch):
    pytest.importorskip("pyarrow.csv")
    monkeypatch.setattr(readers, "_blocks_numeric", lambda *a: None)  # pyarrow's reader, block by block
    monkeypatch.setattr(readers, "ARROW_BLOCK_BYTES", 64)
    monkeypatch.setattr(readers, "_estimate_rows", lambda path: 1)  # the array must grow, keeping what it holds
    rng = np.random.default_rng(0)
    data = np.column_stack([rng.standard_normal((500, 3)), rng.integers(0, 2, 500)])
    text = "a,b,c,y\n" + "".join(f"{r[0]:.9g},{r[1]:.9g},{r[2]:.9g},{int(r[3])}\n" for r in data)
    path = _write(tmp_path, text)
    table = read_csv(path, ReadOptions())
    assert table.matrix is not None and table.matrix.shape == (500, 3)  # the target on its own
    np.testing.assert_array_equal(table_to_dataset(table).X, table_to_dataset(_cell_by_cell(path)).X)
    ds32 = load_data(path, dtype="float32")
    np.testing.assert_array_equal(ds32.X, table_to_dataset(_cell_by_cell(path)).X.astype(np.float32))
    # a quoted newline in a late block is still one cell, and not a number
    bad = _write(tmp_path, text + '"7\n8",1,2,0\n', "bad.csv")
    with pytest.raises(ValueError, match=r"non-numeric value '7\\n8' at line 502, column 'a'"):
        load_data(bad)


def test_pyarrow_reads_numeric_files_and_declines_the_rest(tmp_path):
    pytest.importorskip("pyarrow.csv")
    good = _write(tmp_path, "a,b,y\n1,2,0\n3,4,1\n")
    matrix, y = readers._arrow_numeric(good, ",", 3, None, np.float64)
    np.testing.assert_array_equal(matrix, [[1, 2, 0], [3, 4, 1]]) and y is None
    for cell in ["nan", "inf", "", "NA", "abc", "1e400", "1_0", "\u0661"]:
        path = _write(tmp_path, f"a,b,y\n1,2,0\n{cell},4,1\n", "bad.csv")
        assert readers._arrow_numeric(path, ",", 3, None, np.float64) is None, cell


def test_features_are_a_view_of_the_float32_matrix(tmp_path, route):
    path = _write(tmp_path, "a,b,y\n1,2,0\n3,4,1\n")
    table = read_csv(path, ReadOptions(dtype=np.float32))
    ds = table_to_dataset(table)
    assert ds.X.dtype == np.float32 and np.shares_memory(ds.X, table.matrix)
    assert table.columns["y"].dtype == np.float64


def test_other_sources_honour_the_dtype(tmp_path):
    path = str(tmp_path / "d.npz")
    np.savez(path, X=np.array([[0.1, 0.2], [0.3, 0.4]]), y=np.array([0, 1]))
    ds = load_data(path, dtype="float32")
    assert ds.X.dtype == np.float32 and ds.X.tolist() == np.array([[0.1, 0.2], [0.3, 0.4]], np.float32).tolist()
    assert load_data("moons", dtype="float32").X.dtype == np.float32
    with pytest.raises(ValueError, match=r"dtype must be 'float32' or 'float64', got 'int8'"):
        load_data(path, dtype="int8")


def _parquet(tmp_path, columns: dict, name: str = "d.parquet", **kwargs) -> str:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = str(tmp_path / name)
    pq.write_table(pa.table(columns), path, **kwargs)
    return path


def test_parquet_columns_go_into_one_matrix_across_row_groups(tmp_path):
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(1000), rng.integers(-5, 5, 1000)
    c32 = rng.standard_normal(1000).astype(np.float32)
    path = _parquet(tmp_path, {"a": a, "b": b, "c": c32, "y": rng.integers(0, 2, 1000)}, row_group_size=64)
    table = readers.read_parquet(path, ReadOptions())
    assert list(table.matrix_columns) == ["a", "b", "c"] and table.columns["y"].dtype == np.int64
    ds = table_to_dataset(table)
    assert np.shares_memory(ds.X, table.matrix)
    expected = np.column_stack([a, b.astype(np.float64), c32.astype(np.float64)])
    np.testing.assert_array_equal(ds.X, expected)
    ds32 = load_data(path, dtype="float32")
    assert ds32.X.dtype == np.float32
    np.testing.assert_array_equal(ds32.X, expected.astype(np.float32))
    np.testing.assert_array_equal(ds32.y, ds.y)
    assert table.where[0] == "row 1" and table.where[-1] == "row 1000" and len(table.where) == 1000


def test_parquet_columns_the_matrix_cannot_hold_keep_their_cells_and_messages(tmp_path):
    path = _parquet(tmp_path, {"a": [1.0, 2.0, 3.0], "b": [1.0, None, 3.0], "y": [0, 1, 0]})
    table = readers.read_parquet(path, ReadOptions())
    assert list(table.matrix_columns) == ["a", None]
    with pytest.raises(ValueError, match=r"missing value at row 2, column 'b'"):
        load_data(path)
    with pytest.raises(ValueError, match=r"missing value at row 2, column 'b'"):
        load_data(path, dtype="float32")
    np.testing.assert_array_equal(load_data(path, drop=["b"]).X, [[1], [2], [3]])
    big = _parquet(tmp_path, {"a": [1.0, 1e39], "b": [2.0, 3.0], "y": [0, 1]}, "big.parquet")
    ds = load_data(big, dtype="float32")  # beyond float32: the features stay float64
    assert ds.X.dtype == np.float64 and ds.X[1, 0] == 1e39
    # the target may sit anywhere; it stays out of the matrix, as its own numbers
    ds = load_data(path, target="a", drop=["b"])
    assert ds.feature_names == ["y"] and ds.task == "classification"


@pytest.mark.parametrize("labels, task", [
    ([3, -1, 0, 3, 7, -1] * 30_000, None),                  # more rows than one block
    (list(range(20)) * 9_000, None),                        # 20 classes: the most inferred
    (list(range(21)) * 5, "classification"),                # 21: only when asked
    ([0.5, 1.5, 0.5, 2.5], "classification"),               # not integral
    ([-0.0, 0.0, 1.0, -0.0], None),
])
def test_class_indices_are_those_of_np_unique(tmp_path, labels, task):
    path = _write(tmp_path, "a,y\n" + "".join(f"{i % 7},{v!r}\n" for i, v in enumerate(labels)))
    ds = load_data(path, task=task)
    uniq, index = np.unique(np.array(labels, dtype=np.float64), return_inverse=True)
    integral = bool(np.all(uniq == np.round(uniq)))
    assert ds.task == "classification"
    assert ds.class_labels == [int(u) if integral else float(u) for u in uniq]
    np.testing.assert_array_equal(ds.y, index)
