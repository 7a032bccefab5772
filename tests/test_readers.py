"""The CSV reader's two routes agree: NumPy's C reader for files of finite numbers, the csv
module cell by cell for everything else (whose messages test_data.py checks)."""

from __future__ import annotations

import numpy as np
import pytest

from handgrad.data import load_data
from handgrad.data.columns import table_to_dataset
from handgrad.data.readers import ReadOptions, _read_rows, load_features, read_csv


def _write(tmp_path, text: str, name: str = "d.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return str(path)


def _cell_by_cell(path: str):
    """The same file through the csv-module route."""
    from handgrad.data.columns import Table

    with open(path, encoding="utf-8-sig", newline="") as fh:
        text = fh.read()
    header, rows, lines = _read_rows(text, path, None, 2)
    columns = {name: [row[j] for row in rows] for j, name in enumerate(header)}
    return Table(path, columns, [f"line {n}" for n in lines], text_cells=True)


@pytest.mark.parametrize("text", [
    "a,b,y\n1.5,-2,0\n3e-3,4,1\n",
    "\ufeffa;b;y\r\n1;2;3.5\r\n\r\n4;5;6.25\r\n",      # BOM, CRLF, a blank line, ';'
    "a,b,y\n\"1.5\",2,1\n3,\"4\",0\n",               # quoted numbers
    "a,b,y\n1e308,-1e308,2\n3,4,5\n",                # finite, near float64's limit
    "a,b,y\n 1 , 2 ,1\n3,4,0\n",                     # spaces around numbers
])
def test_numeric_files_read_the_same_by_both_routes(tmp_path, text):
    path = _write(tmp_path, text)
    fast = read_csv(path, ReadOptions())
    assert fast.matrix is not None, "expected NumPy's reader to take this file"
    ds_fast, ds_slow = table_to_dataset(fast), table_to_dataset(_cell_by_cell(path))
    np.testing.assert_array_equal(ds_fast.X, ds_slow.X)
    np.testing.assert_array_equal(ds_fast.y, ds_slow.y)
    assert ds_fast.task == ds_slow.task and ds_fast.feature_names == ds_slow.feature_names
    assert ds_fast.class_labels == ds_slow.class_labels
    assert list(fast.where) == _cell_by_cell(path).where


def test_a_quoted_newline_stays_inside_its_cell_and_is_not_a_number(tmp_path):
    path = _write(tmp_path, 'a,b,y\n"2\n5",1,0\n3,4,1\n')
    with pytest.raises(ValueError, match=r"non-numeric value '2\\n5' at line 2, column 'a'"):
        load_data(path)


@pytest.mark.parametrize("cell, message", [
    ("1e400", r"infinity \('1e400'\) at line 3, column 'a'"),
    ("nan", r"missing value at line 3, column 'a'"),
    ("", r"missing value at line 3, column 'a'"),
    ("inf", r"infinity \('inf'\) at line 3, column 'a'"),
])
def test_non_finite_and_missing_cells_keep_their_messages(tmp_path, cell, message):
    path = _write(tmp_path, f"a,b,y\n1,2,0\n{cell},4,1\n")
    with pytest.raises(ValueError, match=message):
        load_data(path)


def test_text_targets_and_ragged_rows_take_the_cell_by_cell_route(tmp_path):
    ds = load_data(_write(tmp_path, "a,b,species\n1,2,cat\n3,4,dog\n5,6,cat\n"))
    assert ds.class_labels == ["cat", "dog"] and ds.y.tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match=r"line 3: 2 field\(s\), but the header has 3"):
        load_data(_write(tmp_path, "a,b,y\n1,2,0\n3,4\n", "r.csv"))


def test_line_numbers_count_blank_lines_in_a_fast_read_file(tmp_path):
    path = _write(tmp_path, "a,b,y\n1,2,0.5\n\n3,4,1.5\n")
    assert list(read_csv(path, ReadOptions()).where) == ["line 2", "line 4"]
    assert read_csv(path, ReadOptions()).where[-1] == "line 4"


def test_adjacent_features_are_a_view_not_a_copy(tmp_path):
    path = _write(tmp_path, "a,b,y\n1,2,0\n3,4,1\n")
    table = read_csv(path, ReadOptions())
    ds = table_to_dataset(table)
    assert np.shares_memory(ds.X, table.matrix)
    X, y, where = load_features(path, ["b", "a"], target="y")
    np.testing.assert_array_equal(X, [[2, 1], [4, 3]])
    assert [float(v) for v in y] == [0.0, 1.0] and list(where) == ["line 2", "line 3"]


def test_parquet_numeric_columns_are_numbers_and_others_keep_their_cells(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = str(tmp_path / "d.parquet")
    pq.write_table(pa.table({"a": [1.5, 2.5, 3.5], "n": [1, 2, 3], "y": ["x", "z", "x"]}), path)
    from handgrad.data.readers import read_parquet

    table = read_parquet(path, ReadOptions())
    # numeric feature columns are read into one float matrix, column by column (integers as their float64 value)
    assert table.columns["a"].dtype == np.float64 and table.columns["n"].dtype == np.float64
    assert table.columns["n"].tolist() == [1, 2, 3] and np.shares_memory(table.columns["a"], table.matrix)
    assert table.columns["y"].dtype == object
    ds = load_data(path)
    np.testing.assert_array_equal(ds.X, [[1.5, 1], [2.5, 2], [3.5, 3]])
    assert ds.class_labels == ["x", "z"]
    pq.write_table(pa.table({"a": [1.0, float("nan")], "y": [0, 1]}), path)
    with pytest.raises(ValueError, match=r"missing value at row 2, column 'a'"):
        load_data(path)
