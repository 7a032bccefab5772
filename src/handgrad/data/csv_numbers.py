"""Decimal numbers in CSV bytes -> float64, a block of whole lines in a few dozen NumPy calls.

The core install's fast reader for a CSV of numbers (:mod:`handgrad.data.readers` tries it
first, then pyarrow's reader when that is installed, then :func:`numpy.loadtxt`). NumPy's
own reader converts one field at a time (about 200 ns each); here each step is one NumPy
call over all the fields of a block (about 100,000), so that a field costs a few dozen
vector element operations instead.

**What it reads.** A field ``[+|-] digits [. digits]`` of at most 16 characters after the
sign (``-0.1285347``, ``3``, ``.5``, ``5.``) is read by the word arithmetic below. A field
of other bytes from ``0-9 + - . e E`` (an exponent, more digits) is read by Python's
``float``, one by one (a block where more than 1,024 fields and more than one in 16 need
it declines: such a file is read faster by ``numpy.loadtxt``). Anything else (a space, a
quote, a letter, an empty field, a row of another width, a ``\r`` outside a CRLF ending, a
field ``float`` refuses) declines the block, and the caller's next reader decides, with its
own messages. Blank lines are skipped, as the other readers skip them.

**How a field becomes a number.** For a field ending at byte e, the 16 bytes before e are
read as two little-endian 64-bit words (``lo``: columns 0-7, ``hi``: columns 8-15, the field
right-aligned, column 15 its last character). Then, on all fields at once:

A block whose fields have at most 8 characters after the sign reads the hi word alone.

1. the bytes left of the field become 0 (a mask: all ones shifted left by 8 bits a column);
2. the dot is found exactly (a byte equal to ``'.'``, without carries between bytes); its
   column gives k, the number of digits after it, and the bytes left of it move one column
   right, over it: the 16 columns now hold the digits of the integer m, 0s on the left;
3. every byte must now be a digit or 0 (below); m = 10^8 · value(lo) + value(hi), each
   word's eight digits combined in three multiplications (pairs, fours, eights);
4. x = ±m / 10^k.

**Exactness.** When m < 2^53, m and 10^k (k ≤ 16) are exact float64 values and IEEE
division rounds once: m / 10^k is the correctly rounded float64 of the decimal (Clinger's
fast path), the value ``float``, pyarrow and ``numpy.loadtxt`` give. A field whose m is 2^53
or more is read by ``float``. The tests hold the reader to ``float`` bit for bit.

**Checks.** Each line must hold ``width`` fields, and no byte below ``'+'`` may stand in a
block but newlines and the delimiter. After step 2, setting 0x30 in every byte must leave a
digit '0'-'9' in each; a byte from ``'+'`` up that is not a digit does not (a second dot, a
sign inside a field, an exponent, a letter, any byte from 0x80), and the bytes below ``'+'``
that would have are refused already. Fields that fail go to ``float``, after a check that
they hold only bytes of a number.
"""

from __future__ import annotations

import io

import numpy as np

BLOCK_BYTES = 1 << 20  # bytes read per block: 1 MiB parsed fastest in two threads (256 KiB to 4 MiB measured)
# a block where more than FLOAT_FIELDS fields, and more than 1 in FLOAT_SHARE, need float() declines (slow)
FLOAT_FIELDS, FLOAT_SHARE = 1024, 16
WINDOW = 16  # characters after the sign that the word arithmetic reads; longer fields go to float()
_EXACT = np.uint64(1 << 53)  # digits forming an integer below this are exact in float64
_DIGIT_BYTES = np.uint64(0x0F0F0F0F0F0F0F0F)
_BYTES_7F = np.uint64(0x7F7F7F7F7F7F7F7F)
_DOTS = np.uint64(0x2E2E2E2E2E2E2E2E)
_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)
_LOW_BITS = np.uint64(0x0101010101010101)
_ZEROS = np.uint64(0x3030303030303030)
_HIGH_NIBBLES = np.uint64(0xF0F0F0F0F0F0F0F0)
_BYTE_INDEX = np.uint64(0x0102030405060708)  # times a word with one byte 1 at byte b: b + 1 in the top byte
ALLOWED = b"0123456789+-.eE"  # the bytes of a number: a field of others declines the block


# x = m / DIVISOR[c + (WINDOW + 1) * negative], c the dot's column + 1 (0: no dot, k = 0; else k = WINDOW - c
# digits after it); the sign goes with the power of ten, so that -0 stays -0.0
_POWERS = 10.0 ** np.array([0] + [WINDOW - c for c in range(1, WINDOW + 1)])
DIVISOR = np.concatenate([_POWERS, -_POWERS])


def _last_newline(block: np.ndarray) -> int:
    """The index of the last newline byte in ``block``, -1 if none (looked for from the end, 64 KiB at a time)."""
    end = block.size
    while end > 0:
        start = max(0, end - (1 << 16))
        at = block[start:end].tobytes().rfind(b"\n")
        if at >= 0:
            return start + at
        end = start
    return -1


class BlockParser:
    """Parses blocks of whole lines of a CSV of ``width`` numeric columns into float64 rows.

    One parser owns its buffers (reused from block to block, so that no call allocates and
    touches fresh memory): :meth:`fill` reads the next block from a binary file into them,
    :meth:`parse` turns it into a (rows, width) float64 array, a view of those buffers that
    stays valid until the next :meth:`fill`.
    """

    def __init__(self, width: int, delimiter: str, block_bytes: int = BLOCK_BYTES) -> None:
        taken = ALLOWED + b"\n\r"
        if len(delimiter.encode()) != 1 or delimiter.encode() in taken:
            raise ValueError(f"the delimiter must be one byte other than {taken!r}, got {delimiter!r}")
        self.width, self.delimiter, self.block_bytes = width, np.uint8(ord(delimiter)), block_bytes
        self.size = 0  # bytes of the current block, which ends with a newline
        self._features = np.empty((0, 0))  # parse_columns' result, grown as needed
        self.read_by_float = 0  # fields of the last parsed block read by float() (they may exceed float32)
        self._allocate(block_bytes * 2)

    def _allocate(self, capacity: int) -> None:
        capacity = -(-capacity // 8) * 8  # text.view(uint64) needs a whole number of words
        self.capacity = capacity
        # the block lives at text[WINDOW:]; the WINDOW bytes before it are '0's (read as padding). The
        # array's whole 8-byte words, text.view(uint64), are what the fields' bytes are gathered from.
        self.text = np.full(capacity + 3 * WINDOW, ord("0"), np.uint8)
        fields = capacity // 2 + 1  # every field has a byte and its separator
        self.flags = np.empty((2, capacity), np.bool_)
        self.starts = np.empty(fields, np.intp)
        self.span = np.empty(fields, np.intp)
        self.first_byte = np.empty(fields, np.uint8)
        self.sign = np.empty((2, fields), np.bool_)
        self.words = np.empty((2, fields), np.uint64)
        self.spare = np.empty((2, fields), np.uint64)
        self.dot_at = np.empty((2, fields), np.uint64)
        self.shift = np.empty((2, fields), np.uint64)
        self.index = np.empty(fields, np.intp)
        self.mantissa = np.empty(fields, np.uint64)
        self.values = np.empty(fields, np.float64)
        self.divisor = np.empty(fields, np.float64)

    # ------------------------------------------------------------------ reading
    def fill(self, fh: io.BufferedIOBase, carry: bytes) -> bytes:
        """Reads ``carry`` (the unfinished line of the block before) and then about ``block_bytes``
        of ``fh`` into the buffers, up to the last newline; returns the bytes after it (the next
        block's carry). At the end of the file the block gets a final newline if it lacks one,
        and trailing blank lines are dropped. ``self.size`` is 0 when nothing is left."""
        end = len(carry)
        if end + self.block_bytes > self.capacity:
            self._allocate(2 * (end + self.block_bytes))
        self.text[WINDOW:WINDOW + end] = np.frombuffer(carry, np.uint8)
        last_newline = -1
        while last_newline < 0:  # more than one block while a line is longer than a block
            if end + self.block_bytes > self.capacity:
                kept = self.text[WINDOW:WINDOW + end].copy()
                self._allocate(2 * (end + self.block_bytes))
                self.text[WINDOW:WINDOW + end] = kept
            got = fh.readinto(memoryview(self.text)[WINDOW + end:WINDOW + end + self.block_bytes])  # type: ignore[arg-type]
            if not got:  # the end of the file: the rest is the last line(s)
                tail = self.text[WINDOW:WINDOW + end].tobytes().rstrip(b"\r\n")
                tail += b"\n" if tail else b""
                self.text[WINDOW:WINDOW + len(tail)] = np.frombuffer(tail, np.uint8)
                self.size = len(tail)
                return b""
            at = _last_newline(self.text[WINDOW + end:WINDOW + end + got])
            last_newline = end + at if at >= 0 else -1
            end += got
        self.size = last_newline + 1
        return self.text[WINDOW + self.size:WINDOW + end].tobytes()

    # ------------------------------------------------------------------ parsing
    def parse(self) -> np.ndarray | None:
        """The current block as (rows, width) float64, or None when it is not a CSV of numbers
        this reader takes (see the module's docstring)."""
        crlf = self.size >= 2 and self.text[WINDOW + self.size - 2] == 13  # its last line ends in CRLF: all do, mostly
        split = None if crlf else self._split()
        if split is None and self._normalize_line_ends():  # CRLF endings, blank lines
            if self.size == 0:  # only blank lines
                self.read_by_float = 0
                return self.values[:0].reshape(0, self.width)
            split = self._split()
        if split is None:
            return None
        ends, fields, rows = split
        text = self.text[WINDOW:WINDOW + self.size]
        starts = self.starts[:fields]
        starts[0] = 0
        np.add(ends[:-1], 1, out=starts[1:])
        span = np.subtract(ends, starts, out=self.span[:fields])
        first = np.take(text, starts, out=self.first_byte[:fields])
        negative, signed = self.sign[0, :fields], self.sign[1, :fields]
        np.equal(first, np.uint8(ord("-")), out=negative)
        np.equal(first, np.uint8(ord("+")), out=signed)
        signed |= negative
        span -= signed  # characters after the sign
        long_fields = np.flatnonzero(span > WINDOW)
        # a block of short fields (at most 8 characters after the sign: integers, pixels, 0/1) reads only
        # the hi word, its lo word being all 0s: half the work
        n_words = 1 if long_fields.size == 0 and span.max() <= 8 else 2
        rows_of = slice(2 - n_words, 2)  # the words read: (lo, hi) or (hi,)

        # the 16 bytes before each field's end, as two words; the bytes left of the field become 0
        words = self._gather_words(ends, fields, n_words)
        first_column = self.index[:fields]
        np.subtract(WINDOW, span, out=first_column)
        first_column[long_fields] = WINDOW  # read by float() below
        words &= self._columns_from(first_column, self.spare[rows_of, :fields])

        # the dot: 1 in each byte that held one (exact: no carry crosses a byte), then its column + 1
        dot_at, spare = self.dot_at[rows_of, :fields], self.spare[rows_of, :fields]
        np.bitwise_xor(words, _DOTS, out=dot_at)
        np.bitwise_and(dot_at, _BYTES_7F, out=spare)
        spare += _BYTES_7F
        spare |= dot_at
        np.invert(spare, out=dot_at)
        dot_at >>= np.uint64(7)
        dot_at &= _LOW_BITS
        dot_at *= _BYTE_INDEX
        dot_at >>= np.uint64(56)  # the dot's byte + 1 in its word (two dots: garbage, refused below), 0 in the other
        dot_column = self.index[:fields]  # first_column is not needed again
        hi = dot_at[-1]
        np.add(hi, (hi != 0) * np.uint64(8), out=dot_column, casting="unsafe")  # the dot's column + 1, 0 without one
        if n_words == 2:
            np.add(dot_column, dot_at[0], out=dot_column, casting="unsafe")
        np.minimum(dot_column, WINDOW, out=dot_column)  # two dots: any column; a dot stays and fails below
        if (span - (dot_column != 0) < 1).any():
            return None  # a field without a digit: "", "-", "."

        # the dot dropped: the bytes left of it move one column right (d = the dot's column + 1; left of
        # it: not the columns from d - 1 on; right of it: the columns from d on, all when d = 0)
        right = self._columns_from(dot_column, dot_at)
        dot_itself = np.subtract(dot_column, 1, out=starts)  # starts is not needed again
        np.maximum(dot_itself, 0, out=dot_itself)
        left = self._columns_from(dot_itself, spare)
        np.invert(left, out=left)
        left &= words
        words &= right
        if n_words == 2:
            words[1] |= left[0] >> np.uint64(56)  # lo's last byte moves into hi
        left <<= np.uint64(8)
        words |= left

        # every byte must now be a digit or 0 (left of the field): with 0x30 set in each byte, the low
        # nibble must be 0-9 and the high one 3. A second dot, a sign inside, an exponent, a space or a
        # letter fails; the few such fields, and the long ones, are read by float() if ALLOWED admits them.
        # (Bytes below '+' (0x2B) other than newlines and the delimiter have been refused in _split, so
        # that setting 0x30 cannot make a digit of them.)
        np.bitwise_or(words, _ZEROS, out=spare)
        spare ^= _ZEROS  # a digit's value in each byte, if it was a digit
        np.add(spare, np.uint64(0x0606060606060606), out=dot_at)
        dot_at |= spare
        dot_at &= _HIGH_NIBBLES  # 0 in each byte that held a digit or 0
        if n_words == 2:
            dot_at[0] |= dot_at[1]
        others = np.union1d(long_fields, np.flatnonzero(dot_at[0])) if dot_at[0].any() else long_fields

        # eight digits a word: pairs, fours, then the word's value (first digit in the lowest byte)
        words &= _DIGIT_BYTES
        words *= np.uint64(10 * 256 + 1)
        words >>= np.uint64(8)
        words &= np.uint64(0x00FF00FF00FF00FF)
        words *= np.uint64(100 * 65536 + 1)
        words >>= np.uint64(16)
        words &= np.uint64(0x0000FFFF0000FFFF)
        words *= np.uint64(10000 * (1 << 32) + 1)
        words >>= np.uint64(32)
        mantissa = self.mantissa[:fields]
        if n_words == 2:
            np.multiply(words[0], np.uint64(10 ** 8), out=mantissa)
            mantissa += words[1]
        else:
            np.copyto(mantissa, words[0])

        # x = ±m / 10^k, k = the digits after the dot
        dot_column += negative * (WINDOW + 1)
        values = self.values[:fields]
        np.copyto(values, mantissa, casting="unsafe")
        values /= np.take(DIVISOR, dot_column, out=self.divisor[:fields])
        inexact = np.flatnonzero(mantissa >= _EXACT)
        if inexact.size:
            others = np.union1d(others, inexact)
        self.read_by_float = int(others.size)
        if others.size > max(FLOAT_FIELDS, fields // FLOAT_SHARE):
            return None  # mostly exponents or 17 digits: NumPy's loadtxt reads such a file faster than float() here
        if others.size:
            cells = [self.text[WINDOW + s:WINDOW + e].tobytes()
                     for s, e in zip((ends[others] - span[others] - signed[others]).tolist(), ends[others].tolist())]
            if any(cell.translate(None, ALLOWED) for cell in cells):
                return None  # a byte no number of this grammar holds (a space, a letter, "_")
            try:
                values[others] = [float(cell) for cell in cells]
            except ValueError:
                return None  # "e5", "1e", "--1", "1.2.3": not a number
            if not np.isfinite(values[others]).all():
                return None  # 1e400: not a finite number
        return values.reshape(rows, self.width)

    def parse_columns(self, target: int | None, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray | None] | None:
        """:meth:`parse`, then the features (every column but ``target``) as one C-contiguous (rows, columns)
        array of ``dtype`` (each value its float64 reading rounded, as ``astype`` rounds) and the target
        column as float64 (None without one); views of this parser's buffers, valid until the next
        :meth:`fill`. Done here, in the parser's thread, so that the caller only copies whole rows."""
        block = self.parse()
        if block is None:
            return None
        rows, columns = block.shape[0], self.width - (target is not None)
        if self._features.shape[0] < rows or self._features.shape[1] != columns or self._features.dtype != dtype:
            self._features = np.empty((max(rows, 2 * self._features.shape[0]), columns), dtype)
        features = self._features[:rows]
        with np.errstate(over="ignore"):  # beyond float32: the caller checks the fields read by float()
            if target is None:
                np.copyto(features, block, casting="unsafe")
                return features, None
            np.copyto(features[:, :target], block[:, :target], casting="unsafe")
            np.copyto(features[:, target:], block[:, target + 1:], casting="unsafe")
        return features, block[:, target]

    def _split(self) -> tuple[np.ndarray, int, int] | None:
        """(each field's end, fields, rows) when every line of the block has ``width`` fields, else None."""
        n, width = self.size, self.width
        text = self.text[WINDOW:WINDOW + n]
        newline, separator = self.flags[0, :n], self.flags[1, :n]
        np.equal(text, np.uint8(10), out=newline)
        np.equal(text, self.delimiter, out=separator)
        separator |= newline
        ends = np.flatnonzero(separator)
        fields = ends.size
        rows = fields // width
        if rows == 0 or fields != rows * width or not newline[ends[width - 1::width]].all():
            return None  # a row of another width, or whose newline is not after its last field
        low_delimiter = self.delimiter < ord("+")  # a tab
        if low_delimiter and int(np.count_nonzero(newline)) != rows:
            return None  # a newline where a tab belongs
        # the bytes below '+' must be the newlines (and tabs): no space, quote, CR, control byte. With a
        # delimiter from '+' up, rows newlines found at the rows' ends and rows such bytes in all mean
        # there is no other newline either.
        low = int(np.count_nonzero(np.less(text, np.uint8(ord("+")), out=newline)))
        if low != rows + (fields - rows) * low_delimiter:
            return None
        return ends, fields, rows

    def _columns_from(self, column: np.ndarray, out: np.ndarray) -> np.ndarray:
        """(lo, hi) masks, or the hi one where ``out`` has one row, of the bytes at columns >= ``column``
        (0..16) of each field: all ones shifted left by 8·c bits in lo and by 8·max(c - 8, 0) in hi (NumPy
        gives 0 for a shift by 64 or more)."""
        shift = self.shift[:, :column.size]
        np.multiply(column, 8, out=shift[0], casting="unsafe")
        np.maximum(shift[0], np.uint64(64), out=shift[1])
        shift[1] -= np.uint64(64)
        out[...] = _ALL_ONES
        out <<= shift[2 - out.shape[0]:]
        return out

    def _gather_words(self, ends: np.ndarray, fields: int, n_words: int) -> np.ndarray:
        """(lo, hi): the 16 bytes before each field's end (text[e:e + 16] for a field ending at block byte e),
        or (hi,), its last 8, for ``n_words`` 1. Each word comes from the two aligned words it straddles (a
        byte offset b: word b // 8 shifted right by 8·(b % 8), and the next shifted left by what is left;
        NumPy gives 0 for a shift by 64)."""
        aligned = self.text.view(np.uint64)
        word = self.index[:fields]
        rows_of = slice(2 - n_words, 2)
        words, spare, shift = self.words[rows_of, :fields], self.spare[rows_of, :fields], self.shift[:, :fields]
        right, left = shift[0], shift[1]
        np.bitwise_and(ends, 7, out=word)
        np.multiply(word, 8, out=right, casting="unsafe")  # 8·(b % 8)
        np.subtract(np.uint64(64), right, out=left)
        np.right_shift(ends, 3, out=word)  # b // 8
        if n_words == 1:
            word += 1  # hi starts 8 bytes on
        for h in range(n_words):  # the aligned word each starts in
            np.take(aligned, word, out=words[h])
            word += 1
        np.take(aligned, word, out=spare[-1])  # the one after the last
        if n_words == 2:
            np.left_shift(words[1], left, out=spare[0])
        spare[-1] <<= left
        words >>= right
        words |= spare
        return words

    def _normalize_line_ends(self) -> bool:
        """CRLF endings made LF and blank lines (nothing between two newlines) removed, as NumPy's and the
        csv module's readers skip them; False if the block had neither (or a CR elsewhere)."""
        text = self.text[WINDOW:WINDOW + self.size]
        cr = np.flatnonzero(text == np.uint8(13))  # a CRLF file's every block comes here: NumPy, not bytes methods
        if cr.size and not (text[cr + 1] == np.uint8(10)).all():  # the block ends in LF, so cr + 1 is inside
            return False  # a CR that ends no line
        kept = np.delete(text, cr) if cr.size else text
        newline = kept == np.uint8(10)
        if kept.size and (newline[0] or (newline[1:] & newline[:-1]).any()):  # blank lines: Python's split, rarely
            lines = [line for line in kept.tobytes().split(b"\n") if line]
            kept = np.frombuffer(b"\n".join(lines) + b"\n" if lines else b"", np.uint8)
        if kept.size == text.size:
            return False
        self.text[WINDOW:WINDOW + kept.size] = kept
        self.size = kept.size
        return True
