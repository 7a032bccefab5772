"""Tests for handgrad.data: built-in datasets, user files, splits and scaling."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from handgrad import data
from handgrad.data import (
    Dataset,
    Standardizer,
    encode_labels,
    list_datasets,
    load_csv,
    load_data,
    load_dataset,
    load_features,
    load_npz,
    regression_targets,
    train_val_test_split,
)
from handgrad.errors import DataSourceError


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


# ---------------------------------------------------------------------- Dataset
def test_dataset_regression_y_is_2d_and_classification_y_is_indices():
    ds = Dataset(np.zeros((3, 2)), [1.0, 2.0, 3.0], "regression")
    assert ds.y.shape == (3, 1) and ds.y.dtype == np.float64
    assert ds.feature_names == ["x1", "x2"]
    ds = Dataset(np.zeros((3, 2)), [0, 2, 1], "classification")
    assert ds.y.dtype == np.int64 and ds.y.shape == (3,) and ds.class_labels == [0, 1, 2]


def test_dataset_rejects_bad_shapes_and_task():
    with pytest.raises(ValueError, match="task must be one of"):
        Dataset(np.zeros((3, 2)), [0, 1, 0], "clustering")
    with pytest.raises(ValueError, match="X has 3 rows but y has 2"):
        Dataset(np.zeros((3, 2)), [0, 1], "classification")
    with pytest.raises(ValueError, match="2-D"):
        Dataset(np.zeros(3), [0, 1, 0], "classification")


# ---------------------------------------------------------------------- built-in
@pytest.mark.parametrize("info", list_datasets(), ids=lambda i: i.name)
def test_every_builtin_loads_finite_with_its_task(info):
    if info.source == "scikit-learn":
        pytest.importorskip("sklearn")
    ds = load_dataset(info.name)
    assert ds.task == info.task and ds.name == info.name
    assert np.isfinite(ds.X).all() and ds.n_samples > 100
    assert info.description
    if ds.task == "classification":
        counts = np.bincount(ds.y, minlength=ds.n_classes)
        assert len(counts) == ds.n_classes >= 2 and counts.min() > 0
    else:
        assert np.isfinite(ds.y).all() and ds.y.std() > 0


def test_list_datasets_covers_the_issue():
    names = {i.name for i in list_datasets()}
    assert {"sin", "friedman", "moons", "circles", "spirals", "xor", "digits", "breast_cancer", "iris", "wine",
            "diabetes", "homework_regression"} <= names


@pytest.mark.parametrize("name", ["sin", "cubic", "friedman", "moons", "circles", "spirals", "xor"])
def test_generated_datasets_are_seeded(name):
    a, b = load_dataset(name, seed=3), load_dataset(name, seed=3)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    c = load_dataset(name, seed=4)
    assert not np.array_equal(a.X, c.X)


def test_generated_options_and_their_errors():
    assert load_dataset("moons", n_samples=50, noise=0.0).n_samples == 50
    with pytest.raises(ValueError, match="n_samples must be an int >= 2"):
        load_dataset("moons", n_samples=1)
    with pytest.raises(ValueError, match="noise must be"):
        load_dataset("sin", noise=-1.0)
    with pytest.raises(ValueError, match="unknown dataset 'moonz'.*did you mean 'moons'"):
        load_dataset("moonz")


def test_seed_dataset_is_deterministic_and_piecewise_linear():
    ds = load_dataset("seed")
    np.testing.assert_array_equal(ds.X, load_dataset("seed", seed=99).X)  # a grid: no randomness
    x1, x2 = ds.X[:, 0], ds.X[:, 1]
    np.testing.assert_allclose(ds.y[:, 0], np.abs(x1) + np.abs(x2) - 1 + 0.5 * x1)


def test_xor_labels_follow_the_quadrants():
    ds = load_dataset("xor")
    np.testing.assert_array_equal(ds.y, (ds.X[:, 0] * ds.X[:, 1] < 0).astype(int))


def test_sklearn_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError, match=r"pip install scikit-learn"):
        load_dataset("digits")


def test_sklearn_dataset_has_names_and_labels():
    pytest.importorskip("sklearn")
    ds = load_dataset("iris")
    assert ds.class_labels == ["setosa", "versicolor", "virginica"]
    assert ds.feature_names[0].startswith("sepal length")


# ---------------------------------------------------------------------- CSV: good files
def test_csv_string_target_becomes_sorted_classes(tmp_path):
    p = write(tmp_path, "a.csv", "a,b,species\n1,2,dog\n3,4,cat\n5,6,dog\n")
    ds = load_data(p, target="species")
    assert ds.task == "classification" and ds.class_labels == ["cat", "dog"]
    np.testing.assert_array_equal(ds.y, [1, 0, 1])
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4], [5, 6]])
    assert ds.feature_names == ["a", "b"] and ds.target_name == "species"


def test_csv_target_defaults_to_last_column_and_can_sit_anywhere(tmp_path):
    p = write(tmp_path, "a.csv", "y,a,b\n1.5,1,2\n2.5,3,4\n0.25,5,6\n")
    assert load_data(p).target_name == "b"
    ds = load_data(p, target="y")
    assert ds.task == "regression" and ds.feature_names == ["a", "b"]
    np.testing.assert_array_equal(ds.y[:, 0], [1.5, 2.5, 0.25])


def test_integer_target_is_classification_unless_many_values(tmp_path):
    p = write(tmp_path, "a.csv", "a,t\n" + "".join(f"{i},{i % 3}\n" for i in range(30)))
    ds = load_data(p, target="t")
    assert ds.task == "classification" and ds.class_labels == [0, 1, 2]
    p = write(tmp_path, "b.csv", "a,t\n" + "".join(f"{i},{i * 7}\n" for i in range(30)))
    assert load_data(p, target="t").task == "regression"


def test_task_can_be_forced(tmp_path):
    p = write(tmp_path, "a.csv", "a,t\n" + "".join(f"{i},{i % 3}\n" for i in range(30)))
    ds = load_data(p, target="t", task="regression")
    assert ds.task == "regression" and ds.y.shape == (30, 1)
    p = write(tmp_path, "b.csv", "a,t\n1,0.5\n2,1.5\n3,0.5\n")
    ds = load_data(p, target="t", task="classification")
    assert ds.class_labels == [0.5, 1.5]
    p = write(tmp_path, "c.csv", "a,t\n1,cat\n2,dog\n")
    with pytest.raises(ValueError, match=r"target column 't' holds text \('cat' at line 2\)"):
        load_data(p, target="t", task="regression")
    with pytest.raises(ValueError, match="unknown task"):
        load_data(p, task="clustering")


def test_bom_crlf_blank_lines_and_spaces(tmp_path):
    p = write(tmp_path, "a.csv", "a, b ,t\r\n1, 2 ,x\r\n\r\n3,4,y\r\n", encoding="utf-8-sig")
    ds = load_data(p, target="t")
    assert ds.feature_names == ["a", "b"]
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4]])


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_other_delimiters_are_detected(tmp_path, sep):
    p = write(tmp_path, "a.csv", sep.join("abt") + "\n" + sep.join(["1", "2", "3.5"]) + "\n")
    ds = load_data(p, target="t")
    np.testing.assert_array_equal(ds.X, [[1, 2]])


def test_wrong_explicit_delimiter_is_explained(tmp_path):
    p = write(tmp_path, "a.csv", "a;b;t\n1;2;3\n")
    with pytest.raises(ValueError, match=r"only 1 column found .* delimiter ','; the header contains ';'"):
        load_csv(p, delimiter=",")


def test_drop_columns(tmp_path):
    p = write(tmp_path, "a.csv", "id,name,a,t\n1,ann,0.5,0\n2,bob,1.5,1\n")
    ds = load_data(p, target="t", drop=["id", "name"])
    assert ds.feature_names == ["a"]
    with pytest.raises(ValueError, match="cannot drop column 'nope'"):
        load_data(p, target="t", drop=["nope"])


# ---------------------------------------------------------------------- CSV: bad files (robustness F11-F16)
def test_missing_value_names_file_line_and_column(tmp_path):  # F11
    p = write(tmp_path, "m.csv", "a,b,t\n1,2,0\n3,,1\n")
    with pytest.raises(ValueError, match=r"m\.csv.*missing value at line 3, column 'b'"):
        load_data(p)


@pytest.mark.parametrize("token", ["NA", "nan", "?", "null"])
def test_missing_tokens(tmp_path, token):
    p = write(tmp_path, "m.csv", f"a,b,t\n1,2,0\n3,{token},1\n")
    with pytest.raises(ValueError, match=r"missing value at line 3, column 'b'"):
        load_data(p)


def test_missing_target_value(tmp_path):
    p = write(tmp_path, "m.csv", "a,t\n1,x\n2,\n")
    with pytest.raises(ValueError, match=r"missing value at line 3, column 't' \(the target\)"):
        load_data(p)


def test_infinite_feature_is_refused(tmp_path):  # F12
    p = write(tmp_path, "m.csv", "a,b,t\n1,2,0\n3,-inf,1\n")
    with pytest.raises(ValueError, match=r"infinity \('-inf'\) at line 3, column 'b'"):
        load_data(p)


def test_missing_target_column_lists_columns(tmp_path):  # F13
    p = write(tmp_path, "m.csv", "a,b,label\n1,2,0\n")
    with pytest.raises(ValueError, match=r"m\.csv' has no target column 'lable'; columns: a, b, label; did you mean"):
        load_data(p, target="lable")


def test_ragged_row(tmp_path):  # F14
    p = write(tmp_path, "m.csv", "a,b,t\n1,2,0\n\n3,4\n")
    with pytest.raises(ValueError, match=r"line 4: 2 field\(s\), but the header has 3"):
        load_data(p)


@pytest.mark.parametrize("text,match", [("", "is empty"), ("a,b,t\n", "no data rows"), ("\n\n", "is empty")])
def test_empty_and_header_only(tmp_path, text, match):  # F15
    p = write(tmp_path, "e.csv", text)
    with pytest.raises(ValueError, match=match):
        load_data(p)


def test_non_numeric_feature_names_value_line_column(tmp_path):  # F16
    p = write(tmp_path, "m.csv", "a,b,t\n1,2,0\n3,4,1\n5,abc,1\n")
    with pytest.raises(ValueError, match=r"non-numeric value 'abc' at line 4, column 'b'"):
        load_data(p)


def test_header_problems(tmp_path):
    with pytest.raises(ValueError, match="appears twice"):
        load_data(write(tmp_path, "d.csv", "a,a,t\n1,2,3\n"))
    with pytest.raises(ValueError, match="empty name"):
        load_data(write(tmp_path, "e.csv", "a,,t\n1,2,3\n"))


def test_not_utf8(tmp_path):
    p = tmp_path / "b.csv"
    p.write_bytes(b"a,b\n\xff\xfe,1\n")
    with pytest.raises(ValueError, match="not a UTF-8 text file"):
        load_data(str(p))


# ---------------------------------------------------------------------- paths (F18, F19)
def test_nonexistent_path_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no such file: '.*nope\.csv'"):
        load_data(str(tmp_path / "nope.csv"))
    with pytest.raises(ValueError, match="is a directory"):
        load_data(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="did you mean the built-in dataset 'digits'"):
        load_data("digit")
    with pytest.raises(ValueError, match="unsupported file type '.xlsx'"):
        load_data(write(tmp_path, "a.xlsx", "x"))


def test_builtin_name_through_load_data():
    ds = load_data("moons")
    assert ds.name == "moons"
    with pytest.raises(ValueError, match="is a classification dataset, not regression"):
        load_data("moons", task="regression")


# ---------------------------------------------------------------------- NPZ (F17)
def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    p = str(tmp_path / "d.npz")
    np.savez(p, X=X, y=rng.integers(0, 3, 20), feature_names=np.array(["u", "v", "w"]),
             class_labels=np.array(["r", "g", "b"]))
    ds = load_npz(p)
    np.testing.assert_array_equal(ds.X, X)
    assert ds.feature_names == ["u", "v", "w"] and ds.class_labels == ["r", "g", "b"]
    np.savez(p, X=X, y=rng.normal(size=(20, 2)))
    ds = load_data(p)
    assert ds.task == "regression" and ds.y.shape == (20, 2)


def test_npz_missing_keys_and_object_arrays(tmp_path):
    p = str(tmp_path / "d.npz")
    np.savez(p, features=np.zeros((2, 2)), labels=np.zeros(2))
    with pytest.raises(ValueError, match=r"has no 'X' or 'y' array; found keys: 'features', 'labels'"):
        load_npz(p)
    np.savez(p, X=np.array([[1, {"a": 1}]], dtype=object), y=np.zeros(1))
    with pytest.raises(ValueError, match="object array"):
        load_npz(p)


def test_npz_bad_content(tmp_path):
    p = str(tmp_path / "d.npz")
    np.savez(p, X=np.array([[1.0, np.nan]]), y=np.zeros(1))
    with pytest.raises(ValueError, match="X contains NaN at row 0"):
        load_npz(p)
    np.savez(p, X=np.zeros((3, 2)), y=np.zeros(2))
    with pytest.raises(ValueError, match="one row per row of X"):
        load_npz(p)
    bad = tmp_path / "t.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a valid .npz file"):
        load_npz(str(bad))


# ---------------------------------------------------------------------- Parquet
def test_parquet_round_trip_and_missing_value(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    p = str(tmp_path / "d.parquet")
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0], "b": [4, 5, 6], "t": ["x", "y", "x"]}), p)
    ds = load_data(p, target="t")
    assert ds.class_labels == ["x", "y"] and ds.feature_names == ["a", "b"]
    np.testing.assert_array_equal(ds.X, [[1, 4], [2, 5], [3, 6]])
    pq.write_table(pa.table({"a": [1.0, None, 3.0], "t": [1.0, 2.0, 3.5]}), p)
    with pytest.raises(ValueError, match=r"missing value at row 2, column 'a'"):
        load_data(p)


def test_parquet_without_readers_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    monkeypatch.setitem(sys.modules, "pandas", None)
    p = write(tmp_path, "d.parquet", "x")
    with pytest.raises(ImportError, match="pip install pyarrow"):
        load_data(p)


# ---------------------------------------------------------------------- splits
def test_split_sizes_disjoint_and_seeded():
    ds = load_dataset("moons", n_samples=200)
    tr, va, te = train_val_test_split(ds, 0.2, 0.1, seed=5)
    assert (tr.n_samples, va.n_samples, te.n_samples) == (140, 40, 20)
    rows = np.concatenate([tr.X, va.X, te.X])
    assert len(np.unique(rows, axis=0)) == 200
    tr2, _, te2 = train_val_test_split(ds, 0.2, 0.1, seed=5)
    np.testing.assert_array_equal(tr.X, tr2.X)
    np.testing.assert_array_equal(te.y, te2.y)
    assert not np.array_equal(train_val_test_split(ds, 0.2, 0.1, seed=6)[0].X, tr.X)


def test_split_is_stratified_for_classification():
    rng = np.random.default_rng(0)
    y = np.array([0] * 90 + [1] * 10)
    ds = Dataset(rng.normal(size=(100, 2)), y, "classification")
    tr, va, te = train_val_test_split(ds, 0.2, 0.2, seed=1)
    assert np.bincount(te.y).tolist() == [18, 2] and np.bincount(va.y).tolist() == [18, 2]
    assert np.bincount(tr.y).tolist() == [54, 6]


def test_split_zero_fractions_and_errors():
    ds = load_dataset("sin", n_samples=50)
    tr, va, te = train_val_test_split(ds, 0.0, 0.0)
    assert tr.n_samples == 50 and va.n_samples == 0 and te.n_samples == 0
    with pytest.raises(ValueError, match="must be below 1"):
        train_val_test_split(ds, 0.5, 0.5)
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        train_val_test_split(ds, -0.1, 0.1)


def test_tiny_classes_keep_a_training_sample():
    ds = Dataset(np.arange(6.0).reshape(3, 2), [0, 1, 2], "classification")
    tr, _, _ = train_val_test_split(ds, 0.3, 0.3)
    assert sorted(tr.y.tolist()) == [0, 1, 2]


# ---------------------------------------------------------------------- Standardizer
def test_standardizer_fit_on_train_only_and_json_round_trip():
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(50, 3))
    X[:, 2] = 7.0  # a constant column
    s = Standardizer().fit(X[:40])
    Z = s.transform(X)
    np.testing.assert_allclose(Z[:40, :2].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z[:40, :2].std(axis=0), 1, rtol=1e-12)
    np.testing.assert_array_equal(Z[:, 2], 0.0)
    state = json.loads(json.dumps(s.to_dict()))
    s2 = Standardizer.from_dict(state)
    np.testing.assert_array_equal(s2.transform(X), Z)
    np.testing.assert_allclose(s2.inverse_transform(Z)[:, :2], X[:, :2], rtol=1e-12)


def test_standardizer_errors():
    with pytest.raises(RuntimeError, match="before fit"):
        Standardizer().transform(np.zeros((2, 2)))
    s = Standardizer().fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="X has 3 features, but the Standardizer was fitted on 2"):
        s.transform(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="scale > 0"):
        Standardizer.from_dict({"type": "standardize", "mean": [0.0], "scale": [0.0]})
    with pytest.raises(ValueError, match="not a Standardizer state"):
        Standardizer.from_dict({"mean": [0.0]})


# ---------------------------------------------------------------------- features of new data
def test_load_features_matches_columns_by_name(tmp_path):
    p = write(tmp_path, "new.csv", "b,extra,a,t\n2,9,1,cat\n4,9,3,dog\n")
    X, y, where = load_features(p, ["a", "b"], target="t")
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])
    assert y == ["cat", "dog"] and where == ["line 2", "line 3"]
    X, y, _ = load_features(p, ["a"], target="missing")
    assert y is None
    with pytest.raises(ValueError, match=r"lacks the model's feature column\(s\) 'c'; expected: a, c; found: b, extra, a, t"):
        load_features(p, ["a", "c"])


def test_load_features_keeps_numeric_cells_and_the_readers_matrix(tmp_path):
    p = write(tmp_path, "n.csv", "a,b,t\n1,2,0\n3,4,1\n5,6,1\n")
    X, y, _ = load_features(p, ["a", "b"], target="t")
    assert isinstance(y, np.ndarray) and y.tolist() == [0.0, 1.0, 1.0]  # not a list of millions of floats
    assert X.flags.c_contiguous and X.base is not None  # the reader's matrix, not a column-by-column copy
    X2, _, _ = load_features(p, ["b", "a"])
    np.testing.assert_array_equal(X2, X[:, ::-1])


@pytest.mark.parametrize("labels", [[0, 1, 2], [0.0, 1.0, 2.0], ["0", "1", "2"], [False, True, 2]])
def test_encode_labels_of_a_number_array_equals_cell_by_cell(labels):
    rng = np.random.default_rng(0)
    cells = rng.integers(0, 3, 500).astype(np.float64)
    np.testing.assert_array_equal(encode_labels(cells, labels), encode_labels(list(cells.tolist()), labels))
    np.testing.assert_array_equal(encode_labels(cells.astype(np.int64), labels), cells.astype(np.int64))
    cells[[7, 9]] = 5.0
    where = [f"line {i + 2}" for i in range(len(cells))]
    with pytest.raises(ValueError, match=r"label 5\.0 at line 9, column 'y', is not one of the model's classes"):
        encode_labels(cells, labels, column="y", where=where)
    with pytest.raises(ValueError, match=r"label 5\.0 at row 7, column 'target'"):
        encode_labels(cells, labels)


def test_encode_labels_and_regression_targets():
    np.testing.assert_array_equal(encode_labels(["3", "1.0", 3, "1"], [1, 3]), [1, 0, 1, 0])
    np.testing.assert_array_equal(encode_labels([" b", "a"], ["a", "b"]), [1, 0])
    with pytest.raises(ValueError, match=r"label 'c' at line 5, column 'y', is not one of the model's classes"):
        encode_labels(["a", "c"], ["a", "b"], column="y", where=["line 4", "line 5"])
    np.testing.assert_array_equal(regression_targets(["1.5", "2"]), [[1.5], [2.0]])
    with pytest.raises(ValueError, match="missing target '' at line 3"):
        regression_targets(["1", ""], where=["line 2", "line 3"])


# ---------------------------------------------------------------------- property: CSV round trip
@settings(deadline=None, max_examples=25)
@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 4)),
              elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)))
def test_csv_round_trip_is_exact(tmp_path_factory, X):
    path = tmp_path_factory.mktemp("rt") / "x.csv"
    names = [f"f{j}" for j in range(X.shape[1])]
    lines = [",".join([*names, "t"])] + [",".join([*(repr(float(v)) for v in row), "0.5"]) for row in X]
    path.write_text("\n".join(lines) + "\n")
    ds = load_data(str(path), target="t")
    np.testing.assert_array_equal(ds.X, X)
    assert ds.task == "regression"


def test_module_exports_exist():
    for name in data.__all__:
        assert hasattr(data, name), name


def test_a_new_file_format_is_one_reader_in_the_table(tmp_path, monkeypatch):
    import json

    from handgrad.data import READERS, Table

    def read_json(path, options):
        rows = json.loads(open(path).read())
        return Table(path, {k: [r[k] for r in rows] for k in rows[0]}, [f"row {i + 1}" for i in range(len(rows))],
                     text_cells=False)

    monkeypatch.setitem(READERS, ".json", read_json)
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"a": 1.0, "b": 2.0, "kind": "x"}, {"a": 3.0, "b": None, "kind": "y"}]))
    with pytest.raises(ValueError, match=r"missing value at row 2, column 'b'"):
        load_data(str(path))
    path.write_text(json.dumps([{"a": 1.0, "b": 2.0, "kind": "x"}, {"a": 3.0, "b": 4.0, "kind": "y"}]))
    ds = load_data(str(path), target="kind")
    assert ds.task == "classification" and ds.class_labels == ["x", "y"] and ds.feature_names == ["a", "b"]


def test_a_wrong_source_raises_a_typed_error(tmp_path):
    from handgrad.errors import DataSourceError

    with pytest.raises(DataSourceError, match="is a directory"):
        load_data(str(tmp_path))
    with pytest.raises(DataSourceError, match="unknown dataset"):
        load_dataset("moonz")
    with pytest.raises(DataSourceError, match="unsupported file type"):
        (tmp_path / "d.xlsx").write_text("")
        load_data(str(tmp_path / "d.xlsx"))
    with pytest.raises(FileNotFoundError, match="did you mean the built-in dataset 'moons'"):
        load_data("moonz")


# ====================================================================== inputs that are not files, or too large
def test_devices_and_fifos_are_refused_before_reading(tmp_path):
    import os

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    for path in ("/dev/zero", str(fifo)):
        with pytest.raises(DataSourceError, match="character device|FIFO"):
            data.load_data(path)
        with pytest.raises(DataSourceError, match="character device|FIFO"):
            data.load_features(path, ["a"])


def test_files_above_the_size_cap_are_refused_before_reading(tmp_path, monkeypatch):
    from handgrad.data import readers

    path = write(tmp_path, "big.csv", "a,b\n" + "1,2\n" * 100)
    monkeypatch.setattr(readers, "MAX_FILE_BYTES", 100)
    with pytest.raises(DataSourceError, match=r"big\.csv' is 404 bytes, above the 100-byte limit"):
        data.load_data(path)


def test_cli_data_dev_zero_is_one_clear_line(capsys):
    from handgrad.cli import main

    assert main(["train", "--data", "/dev/zero", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "/dev/zero' is a character device" in err and err.count("\n") == 1


# ====================================================================== NPZ columns by name; predicting without a target
def test_npz_feature_names_are_matched_by_name(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 3))
    path = tmp_path / "d.npz"
    np.savez(path, X=X[:, [2, 0, 1]], y=np.arange(6.0), feature_names=np.array(["c", "a", "b"]))
    got, y, _ = data.load_features(str(path), ["a", "b", "c"])
    np.testing.assert_array_equal(got, X)
    with pytest.raises(ValueError, match=r"lacks the model's feature column\(s\) 'z'"):
        data.load_features(str(path), ["a", "z", "c"])


def test_npz_duplicate_feature_names_are_refused(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.ones((3, 2)), y=np.arange(3.0), feature_names=np.array(["a", "a"]))
    with pytest.raises(ValueError, match="feature_names repeats 'a'"):
        data.load_data(str(path))
    with pytest.raises(ValueError, match="feature_names repeats 'a'"):
        data.load_features(str(path), ["a", "b"])


def test_npz_without_y_gives_features_for_prediction(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, X=np.ones((4, 2)))
    X, y, where = data.load_features(str(path), ["x1", "x2"])
    assert X.shape == (4, 2) and y is None and where[0] == "row 0"
    with pytest.raises(ValueError, match="has no 'y' array"):
        data.load_data(str(path))  # training still needs a target


# ====================================================================== numbers at the edge of the float range
def test_standardizer_does_not_overflow_near_the_float_limit():
    X = np.array([[1e300, 1.0], [2e300, 2.0], [-1e300, 3.0], [5.0, 4.0]])
    s = data.Standardizer().fit(X)
    assert np.isfinite(s.mean_).all() and np.isfinite(s.scale_).all()
    Z = s.transform(X)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), 1, rtol=1e-12)
    far = s.transform(np.array([[-1.7e308, 0.0]]))  # x − mean beyond the float range, the answer is not
    assert np.isfinite(far).all()


def test_values_beyond_float64_are_named_as_such(tmp_path):
    path = write(tmp_path, "big.csv", "a,b\n1,0\n1e400,1\n2,0\n")
    with pytest.raises(ValueError, match=r"beyond the float64 range.*'1e400'.*line 3, column 'a'"):
        data.load_data(path)
