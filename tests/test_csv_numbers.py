"""The NumPy block parser (handgrad.data.csv_numbers): every field it reads is Python's float() of the
field, bit for bit, across block boundaries and for every shape of decimal; everything else declines."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from handgrad.data import csv_numbers, load_data, readers
from handgrad.data.csv_numbers import WINDOW, BlockParser


@pytest.fixture(autouse=True)
def float_for_any_share(monkeypatch):
    """These tests mix every shape of field, far more of them read by float() than a real file has: the
    block parser would decline them to loadtxt for speed (test_a_block_mostly_for_float_declines)."""
    monkeypatch.setattr(csv_numbers, "FLOAT_SHARE", 1)


def parse_all(text: bytes, width: int, block_bytes: int = 1 << 20, delimiter: str = ",") -> np.ndarray | None:
    """Every row of ``text`` (no header) through one parser, block by block, or None if a block declines."""
    parser = BlockParser(width, delimiter, block_bytes)
    fh, carry, rows = io.BytesIO(text), b"", []
    while True:
        carry = parser.fill(fh, carry)
        if parser.size == 0:
            break
        block = parser.parse()
        if block is None:
            return None
        rows.append(block.copy())  # a view of the parser's buffers, valid until the next fill
    return np.concatenate(rows) if rows else np.empty((0, width))


def as_python_floats(cells: list[list[str]]) -> np.ndarray:
    return np.array([[float(c) for c in row] for row in cells], dtype=np.float64)


def csv_bytes(cells: list[list[str]], delimiter: str = ",", newline: str = "\n") -> bytes:
    return "".join(delimiter.join(row) + newline for row in cells).encode()


def random_cells(rng: np.random.Generator, n: int, width: int) -> list[list[str]]:
    """Decimals of every shape the parser reads itself or hands to float(): 1 to 20 significant digits,
    fixed and exponent notation, signs, bare dots, leading zeros, zeros, 16 and 17 digit integers."""
    cells = []
    for _ in range(n):
        row = []
        for _ in range(width):
            kind = rng.integers(0, 8)
            value = rng.standard_normal() * 10.0 ** rng.integers(-8, 12)
            digits = int(rng.integers(1, 21))
            if kind == 0:
                cell = f"{value:.{digits}g}"
            elif kind == 1:
                cell = f"{value:.{int(rng.integers(0, 17))}f}"
            elif kind == 2:
                cell = f"{value:.{digits}e}"
            elif kind == 3:
                cell = rng.choice(["", "-"]) + str(int(rng.integers(0, 10**17)))[: int(rng.integers(1, 19))]
            elif kind == 4:
                cell = rng.choice(["+", "-", ""]) + rng.choice(["0", "00", "007", ""]) + "." + "".join(
                    rng.choice(list("0123456789"), int(rng.integers(1, 16))))
            elif kind == 5:
                cell = str(int(rng.integers(0, 10**6))) + "."
            elif kind == 6:
                cell = rng.choice(["0", "-0", "+0", "-0.0", "0.0", "-.0", "1", "-1", "9007199254740993"])
            else:
                cell = repr(float(value))  # up to 17 significant digits
            row.append(cell)
        cells.append(row)
    return cells


def short_cells(rng: np.random.Generator, n: int, width: int) -> list[list[str]]:
    """Fields of at most 8 characters after the sign (integers, pixels, short decimals, bare dots)."""
    shapes = [lambda: str(int(rng.integers(0, 256))), lambda: f"{rng.standard_normal():.{int(rng.integers(0, 6))}f}",
              lambda: "." + str(int(rng.integers(0, 10**6))), lambda: str(int(rng.integers(0, 10**7))) + ".",
              lambda: str(int(rng.integers(0, 10**8)))]
    return [[str(rng.choice(["", "-", "+"])) + shapes[int(rng.integers(0, len(shapes)))]().lstrip("-")
             for _ in range(width)] for _ in range(n)]


@pytest.mark.parametrize("block_bytes", [64, 1000, 1 << 20])
@pytest.mark.parametrize("cells_of", ["every shape", "short"])
def test_random_decimals_read_as_python_float_bit_for_bit(block_bytes, cells_of):
    rng = np.random.default_rng(11)
    cells = (random_cells if cells_of == "every shape" else short_cells)(rng, 2000, 5)
    values = parse_all(csv_bytes(cells), 5, block_bytes)
    assert values is not None
    expected = as_python_floats(cells)
    assert values.tobytes() == expected.tobytes()  # bit for bit: -0.0 keeps its sign


@pytest.mark.parametrize("cell", [
    "0", "-0", "+0", "5", "-5", "+5", ".5", "-.5", "+.5", "5.", "-5.", "0001", "000.000", "-0.0",
    "1.5", "-0.1285347", "1234567890123456", "-1234567890123456", "1.234567890123456", ".1234567890123456",
    "123456789012345.", "9007199254740991", "9007199254740992", "9007199254740993", "9999999999999999",
    "99999999999999999", "0.12345678901234567", "12345678901234567890123", "1e5", "1E+05", "-1.5e-3",
    "2.5E-308", "4.9e-324", "1e-400", "1.7976931348623157e308", "0.1", "0.3", "2.675",
])
def test_each_shape_of_field_reads_as_python_float(cell):
    values = parse_all(f"{cell},1\n1,{cell}\n".encode(), 2, 64)
    assert values is not None
    assert values.tobytes() == np.array([[float(cell), 1.0], [1.0, float(cell)]]).tobytes()


@pytest.mark.parametrize("span", range(1, WINDOW + 3))
def test_fields_at_the_window_edge(span):
    """Fields of WINDOW characters after the sign are read by the words; one more goes to float()."""
    rng = np.random.default_rng(span)
    cells = []
    for _ in range(200):
        digits = "".join(rng.choice(list("0123456789"), span))
        dot = int(rng.integers(0, span + 1))
        with_dot = digits[:dot] + "." + digits[dot:] if span > 1 and rng.random() < 0.7 else digits
        cells.append([rng.choice(["", "-", "+"]) + with_dot[:span], "1"])
    values = parse_all(csv_bytes(cells), 2, 256)
    assert values is not None
    assert values.tobytes() == as_python_floats(cells).tobytes()


@pytest.mark.parametrize("cell", [
    "", "-", "+", ".", "-.", "+.", "1.2.3", "1..2", "1-2", "--1", "+-1", "-+1", "1+", "1-", "e5", "1e", "1e+",
    "1e5e3", "1e400", "-1e400", " 1", "1 ", '"1"', "nan", "NaN", "inf", "-inf", "Infinity", "abc", "1_0",
    "0x10", "\u0661", "1,5",
])
def test_everything_else_declines(cell):
    assert parse_all(f"1,2\n{cell},3\n".encode(), 2) is None


@pytest.mark.parametrize("text", [
    b"1,2\n3\n",             # a short row
    b"1,2\n3,4,5\n",         # a long row
    b"1,2\r3,4\r",           # old Mac line ends
    b"1,2\n3\r,4\n",         # a carriage return inside a line
    b"1,2\n3,4\n5\n,6\n",    # a newline where a delimiter belongs
])
def test_rows_of_another_shape_decline(text):
    assert parse_all(text, 2) is None


def test_line_ends_and_the_end_of_the_file():
    expected = np.array([[1.0, 2.0], [3.0, 4.5]])
    for text in [b"1,2\n3,4.5\n", b"1,2\r\n3,4.5\r\n", b"1,2\n3,4.5", b"1,2\n3,4.5\n\n\n", b"1,2\r\n3,4.5\r\n\r\n",
                 b"1,2\n\n3,4.5\n", b"\n1,2\n\n\n3,4.5\n", b"1,2\r\n\r\n3,4.5"]:  # blank lines are skipped
        values = parse_all(text, 2, 4)
        assert values is not None and values.tobytes() == expected.tobytes(), text


def test_a_line_longer_than_a_block():
    cells = [[f"{i}.{j}" for j in range(300)] for i in range(3)]
    values = parse_all(csv_bytes(cells), 300, block_bytes=64)
    assert values is not None and values.tobytes() == as_python_floats(cells).tobytes()


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_delimiters(delimiter):
    cells = [["1.5", "-2", "3e3"], ["4", ".5", "-0"]]
    values = parse_all(csv_bytes(cells, delimiter), 3, 16, delimiter)
    assert values is not None and values.tobytes() == as_python_floats(cells).tobytes()


@pytest.mark.parametrize("delimiter", [".", "-", "5", "e", "\n", ",,"])
def test_a_delimiter_it_cannot_tell_from_a_number_is_refused(delimiter):
    with pytest.raises(ValueError, match="delimiter"):
        BlockParser(2, delimiter)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_load_data_through_the_block_parser_matches_float(tmp_path, monkeypatch, threads, dtype):
    """The whole reader (pyarrow hidden, as on the core install): blocks in threads, a row estimate that
    falls short, the target in the middle, float32 rounded from the float64 reading."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.csv", None)
    monkeypatch.setattr(readers, "PARSER_THREADS", threads)
    monkeypatch.setattr(readers, "_estimate_rows", lambda path: 7)
    monkeypatch.setattr(readers, "_loadtxt_numeric", lambda *a: pytest.fail("the block parser declined"))
    real = readers.BlockParser
    monkeypatch.setattr(readers, "BlockParser", lambda width, delimiter: real(width, delimiter, 512))
    rng = np.random.default_rng(4)
    cells = random_cells(rng, 800, 4)
    labels = rng.integers(0, 2, 800)
    rows = [[a, str(label), b, c, d] for (a, b, c, d), label in zip(cells, labels)]
    path = tmp_path / "d.csv"
    path.write_bytes(b"a,y,b,c,d\n" + csv_bytes(rows))
    ds = load_data(str(path), target="y", dtype=dtype)
    expected = as_python_floats(cells)
    assert ds.X.dtype == np.dtype(dtype) and ds.X.flags.c_contiguous
    assert ds.X.tobytes() == expected.astype(dtype).tobytes()
    np.testing.assert_array_equal(ds.y, labels)


def test_beyond_float32_keeps_float64_through_the_block_parser(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setattr(readers, "_loadtxt_numeric", lambda *a: pytest.fail("the block parser declined"))
    path = tmp_path / "d.csv"
    path.write_bytes(b"a,b,y\n1,2,0\n3.5e38,4,1\n")
    ds = load_data(str(path), dtype="float32")
    assert ds.X.dtype == np.float64 and ds.X[1, 0] == 3.5e38


def test_a_block_mostly_for_float_declines(monkeypatch):
    """More than one field in FLOAT_SHARE (and more than FLOAT_FIELDS) read by float() (np.savetxt's '%.18e',
    17-digit reprs): the block declines, and loadtxt, faster for such files, reads them."""
    monkeypatch.setattr(csv_numbers, "FLOAT_SHARE", 16)
    monkeypatch.setattr(csv_numbers, "FLOAT_FIELDS", 0)
    plain = [[f"{i}.5", "1"] for i in range(64)]
    assert parse_all(csv_bytes(plain), 2) is not None
    for k in (4, 8):  # 4 of 128 fields by float(): read; 8 of 128: one in 16, still read; 9: declined
        mixed = [[f"{i}e1" if i < k else f"{i}.5", "1"] for i in range(64)]
        assert parse_all(csv_bytes(mixed), 2) is not None
    mixed = [[f"{i}e1" if i < 9 else f"{i}.5", "1"] for i in range(64)]
    assert parse_all(csv_bytes(mixed), 2) is None


def _cell_by_cell(text: bytes) -> np.ndarray | None:
    """The csv module's reading of ``text`` (blank lines skipped) and Python's float() of each stripped cell,
    as the cell-by-cell reader takes them; None where that reader would not give a finite number for every cell
    of a rectangular table."""
    import csv
    import math

    try:
        rows = [row for row in csv.reader(io.StringIO(text.decode("utf-8"), newline="")) if any(c.strip() for c in row)]
        values = [[float(cell.strip()) for cell in row] for row in rows]
    except (ValueError, UnicodeDecodeError):
        return None
    if not values or len({len(row) for row in values}) != 1 or not all(map(math.isfinite, sum(values, []))):
        return None
    return np.array(values)


@pytest.mark.parametrize("seed", range(40))
def test_whatever_it_answers_the_cell_by_cell_reader_answers_too(seed):
    """Fuzz: files of numbers with damage of every kind (a stray byte, a space, a quote, a CR, a second dot,
    an empty field, a missing or extra field, a blank line, 1e400). Where the block parser answers, the
    cell-by-cell reader reads the same numbers bit for bit; where that reader refuses, the parser declines."""
    rng = np.random.default_rng(seed)
    damage = [" ", '"', "\r", ".", "-", "+", "e", "E", "a", "_", ",", "\n", "\t", "\x00", "/", ":", "\u00e9", "1e400"]
    width = int(rng.integers(1, 5))
    for _ in range(25):
        # odd seeds: short fields only, the blocks that read one word a field
        cells = (short_cells if seed % 2 else random_cells)(rng, int(rng.integers(1, 30)), width)
        text = csv_bytes(cells).decode()
        for _ in range(int(rng.integers(0, 3))):
            at = int(rng.integers(0, len(text) + 1))
            text = text[:at] + str(rng.choice(damage)) + text[at:]
        data = text.encode()
        for block_bytes in (16, 1 << 20):
            values = parse_all(data, width, block_bytes)
            expected = _cell_by_cell(data)
            if values is None:
                continue
            assert expected is not None, data
            assert values.shape == expected.shape and values.tobytes() == expected.tobytes(), data


def test_a_process_that_cannot_start_a_thread_still_reads_the_file(tmp_path, monkeypatch):
    """ThreadPoolExecutor.submit raises RuntimeError where no thread can start (a thread limit): the block
    parser declines and the next reader reads the file, with the same values."""
    import concurrent.futures

    path = tmp_path / "d.csv"
    path.write_bytes(b"a,b,y\n" + b"".join(f"{i}.25,{-i}.5,{i % 2}\n".encode() for i in range(3000)))
    expected = load_data(str(path))

    def refuse(*args, **kwargs):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(readers, "BlockParser", lambda width, delimiter: BlockParser(width, delimiter, 256))
    monkeypatch.setattr(concurrent.futures.ThreadPoolExecutor, "submit", refuse)
    ds = load_data(str(path))
    np.testing.assert_array_equal(ds.X, expected.X)
    np.testing.assert_array_equal(ds.y, expected.y)
