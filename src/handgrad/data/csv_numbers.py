"""Decimal numbers in CSV bytes -> float64, a block of whole lines per few dozen NumPy calls.

The core install's fast reader for a CSV of numbers (:mod:`handgrad.data.readers` tries
pyarrow's reader when it is installed, then this one, then :func:`numpy.loadtxt`). NumPy's
own reader converts one field at a time (about 200 ns each); here every step is one NumPy
call over all the fields of a block (about 100,000), so a field costs a few dozen vector
element operations instead.

**What it reads.** A field is ``[+|-] digits [. digits]`` with at most 16 characters after
the sign (``-0.1285347``, ``3``, ``.5``, ``5.``). Any other field made of digits, signs, dots
and ``e``/``E`` (an exponent, more digits) is read by Python's ``float``, one by one; anything
else in a block (a space, a quote, a letter, an empty field, a blank line, a row of another
width, a ``\\r`` outside a CRLF ending) declines the whole file, and the caller's next reader
decides, with its own messages.

**How a field becomes a number.** For a field ending at byte e, the 16 bytes before e are
read as two little-endian 64-bit words (``lo``: columns 0-7, ``hi``: columns 8-15, the
field right-aligned, column 15 its last character). Then, on all fields at once:

1. columns left of the field become ``'0'`` (a table of masks indexed by the field's first
   column);
2. the dot is found exactly (a byte equal to ``'.'`` in each word, without carries between
   bytes), its column gives k, the number of digits after it, and the bytes left of it move
   one column right, over it: the 16 columns are now the digits of the integer m, padded
   with zeros on the left;
3. m = 10^8 · value(lo) + value(hi), each word's eight digits combined pairwise in three
   multiplications (1-digit pairs to 2-digit, to 4-digit, to the 8-digit value);
4. x = ±m / 10^k.

**Exactness.** When m < 2^53 both m and 10^k (k ≤ 16) are exact float64 values, and IEEE
division rounds once: m / 10^k is the correctly rounded float64 of the decimal (Clinger's
fast path), the value Python's ``float``, pyarrow and ``numpy.loadtxt`` give. A field whose
m is 2^53 or more is read by ``float``. The tests hold this reader equal to
``numpy.loadtxt`` bit for bit.

**Checks, by counting.** Every byte of a block must be a digit, a sign, a dot, an ``e``/``E``,
the delimiter or a newline; each row must have ``width`` fields. A sign is legal only as a
field's first byte and a dot only once per field: the block's count of signs must equal the
count of fields starting with one (plus those inside the fields ``float`` reads), and its
count of dots the count of fields with a dot found in step 2 (plus those ``float`` reads),
which holds only when no field has two. With signs, dots, exponents and separators
accounted for, every other byte of a field is a digit.
"""

from __future__ import annotations

import io

import numpy as np

WINDOW = 16  # characters after the sign that the word arithmetic reads; longer fields go to float()
_EXACT = np.uint64(1 << 53)  # digits forming an integer below this are exact in float64
_DIGIT_BYTES = np.uint64(0x0F0F0F0F0F0F0F0F)
_BYTES_7F = np.uint64(0x7F7F7F7F7F7F7F7F)
_DOTS = np.uint64(0x2E2E2E2E2E2E2E2E)
_BYTE_INDEX = np.uint64(0x0102030405060708)  # times a word with one byte 1 at byte b: b + 1 in the top byte
ALLOWED = b"0123456789+-.eE\n"  # the bytes a block may hold besides the delimiter


def _column_masks() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tables of (lo, hi) words, shape (2, 17), indexed by a column number c = 0..16: KEEP[:, c], the bytes
    at columns >= c; LEFT_OF[:, c], columns < c - 1; RIGHT_OF[:, c], columns >= c (c = the dot's column + 1,
    0: no dot)."""
    columns = np.arange(WINDOW)
    c = np.arange(WINDOW + 1)[:, None]
    keep = columns >= c
    left_of = columns < c - 1
    right_of = (columns >= c) | (c == 0)
    keep, left_of, right_of = (np.ascontiguousarray(np.where(t, 0xFF, 0).astype(np.uint8).view("<u8").T)
                               for t in (keep, left_of, right_of))
    return keep, left_of, right_of


KEEP, LEFT_OF, RIGHT_OF = _column_masks()
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

    def __init__(self, width: int, delimiter: str, block_bytes: int = 1 << 20) -> None:
        if len(delimiter.encode()) != 1 or delimiter.encode() in ALLOWED:
            raise ValueError(f"the delimiter must be one byte other than {ALLOWED!r}, got {delimiter!r}")
        self.width, self.delimiter, self.block_bytes = width, np.uint8(ord(delimiter)), block_bytes
        self.size = 0  # bytes of the current block, which ends with a newline
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
        self.bytes_scratch = np.empty(capacity, np.uint8)
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
        n, width = self.size, self.width
        if n == 0:
            return None
        if np.equal(self.text[WINDOW:WINDOW + n], np.uint8(13), out=self.flags[0, :n]).any() \
                and not self._drop_carriage_returns():
            return None
        split = self._split()
        if split is None and self._drop_blank_lines():
            if self.size == 0:  # only blank lines
                self.read_by_float = 0
                return self.values[:0].reshape(0, width)
            split = self._split()
        if split is None:
            return None
        ends, fields, rows = split
        n = self.size
        text = self.text[WINDOW:WINDOW + n]
        counts = self._byte_counts(text, fields)
        if counts is None:
            return None
        n_sign, n_dot, n_exponent = counts
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
        slow = np.flatnonzero(span > WINDOW)
        if n_exponent:
            lower = np.bitwise_or(text, np.uint8(32), out=self.bytes_scratch[:n])
            exponent_at = np.flatnonzero(np.equal(lower, np.uint8(ord("e")), out=self.flags[0, :n]))
            slow = np.union1d(slow, np.searchsorted(ends, exponent_at))

        # the 16 bytes before each field's end, as two words; the bytes left of the field become 0
        words = self._gather_words(ends, fields)
        first_column = self.index[:fields]
        np.subtract(WINDOW, span, out=first_column)
        first_column[slow] = WINDOW  # read by float() below
        words &= np.take(KEEP, first_column, axis=1, out=self.spare[:, :fields])

        # the dot: 1 in each byte that held one (exact: no carry crosses a byte), then its column + 1
        dot_at, spare = self.dot_at[:, :fields], self.spare[:, :fields]
        np.bitwise_xor(words, _DOTS, out=dot_at)
        np.bitwise_and(dot_at, _BYTES_7F, out=spare)
        spare += _BYTES_7F
        spare |= dot_at
        np.invert(spare, out=dot_at)
        dot_at >>= np.uint64(7)
        dot_at &= np.uint64(0x0101010101010101)
        dot_at *= _BYTE_INDEX
        dot_at >>= np.uint64(56)  # the dot's byte + 1 in its word, 0 in the other
        dot_column = self.index[:fields]  # first_column is not needed again
        np.add(dot_at[0], dot_at[1], out=dot_column, casting="unsafe")
        dot_column += (dot_at[1] != 0) * 8  # the dot's column + 1, 0 without one
        has_dot = dot_column != 0
        slow_fields = [self.text[WINDOW + s:WINDOW + e].tobytes()
                       for s, e in zip((ends[slow] - span[slow] - signed[slow]).tolist(), ends[slow].tolist())]
        dots_read = int(np.count_nonzero(has_dot)) + sum(field.count(b".") for field in slow_fields)
        signs_read = (int(np.count_nonzero(signed)) - int(np.count_nonzero(signed[slow]))
                      + sum(field.count(b"-") + field.count(b"+") for field in slow_fields))
        if dots_read != n_dot or signs_read != n_sign:
            return None  # a second dot in a field, or a sign inside one
        if (span - has_dot < 1).any():
            return None  # a field without a digit

        # the dot dropped: the bytes left of it move one column right
        left = np.take(LEFT_OF, dot_column, axis=1, out=spare)
        left &= words
        words &= np.take(RIGHT_OF, dot_column, axis=1, out=dot_at)
        words[1] |= left[0] >> np.uint64(56)
        left <<= np.uint64(8)
        words |= left

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
        mantissa = np.multiply(words[0], np.uint64(10 ** 8), out=self.mantissa[:fields])
        mantissa += words[1]

        # x = ±m / 10^k, k = the digits after the dot
        dot_column += negative * (WINDOW + 1)
        values = self.values[:fields]
        np.copyto(values, mantissa, casting="unsafe")
        values /= np.take(DIVISOR, dot_column, out=self.divisor[:fields])
        inexact = np.flatnonzero(mantissa >= _EXACT)
        if inexact.size:
            slow = np.union1d(slow, inexact)
            slow_fields = [self.text[WINDOW + s:WINDOW + e].tobytes()
                           for s, e in zip((ends[slow] - span[slow] - signed[slow]).tolist(), ends[slow].tolist())]
        self.read_by_float = int(slow.size)
        if slow.size:
            try:
                values[slow] = [float(field) for field in slow_fields]
            except ValueError:
                return None  # "e5", "1e", "--1": not a number
            if not np.isfinite(values[slow]).all():
                return None  # 1e400: not a finite number
        return values.reshape(rows, width)

    def _split(self) -> tuple[np.ndarray, int, int] | None:
        """(each field's end, fields, rows) when every line of the block has ``width`` fields, else None."""
        n, width = self.size, self.width
        text = self.text[WINDOW:WINDOW + n]
        newline, separator = self.flags[0, :n], self.flags[1, :n]
        np.equal(text, np.uint8(10), out=newline)
        np.equal(text, self.delimiter, out=separator)
        separator |= newline
        fields = int(np.count_nonzero(separator))
        rows = fields // width
        if rows == 0 or fields != rows * width or int(np.count_nonzero(newline)) != rows:
            return None
        ends = np.flatnonzero(separator)
        if not newline[ends[width - 1::width]].all():
            return None  # a row whose newline is not after its last field
        return ends, fields, rows

    def _drop_blank_lines(self) -> bool:
        """Blank lines (nothing between two newlines) removed, as NumPy's and the csv module's readers skip
        them; False if there were none."""
        block = self.text[WINDOW:WINDOW + self.size].tobytes()
        lines = [line for line in block.split(b"\n") if line]
        kept = b"\n".join(lines) + b"\n" if lines else b""
        if kept == block:
            return False
        self.text[WINDOW:WINDOW + len(kept)] = np.frombuffer(kept, np.uint8)
        self.size = len(kept)
        return True

    def _gather_words(self, ends: np.ndarray, fields: int) -> np.ndarray:
        """(lo, hi): the 16 bytes before each field's end (text[e:e + 16] for a field ending at block byte e),
        each 8 from the two aligned words they straddle (a byte offset b: word b // 8 shifted right by
        8·(b % 8), and the next shifted left by what is left; NumPy gives 0 for a shift by 64)."""
        aligned = self.text.view(np.uint64)
        word = self.index[:fields]
        words, spare, shift = self.words[:, :fields], self.spare[:, :fields], self.shift[:, :fields]
        right, left = shift[0], shift[1]
        np.bitwise_and(ends, 7, out=word)
        np.multiply(word, 8, out=right, casting="unsafe")  # 8·(b % 8)
        np.subtract(np.uint64(64), right, out=left)
        np.right_shift(ends, 3, out=word)  # b // 8
        np.take(aligned, word, out=words[0])
        word += 1
        np.take(aligned, word, out=words[1])
        word += 1
        np.take(aligned, word, out=spare[1])
        np.left_shift(words[1], left, out=spare[0])
        spare[1] <<= left
        words >>= right
        words |= spare
        return words

    def _byte_counts(self, text: np.ndarray, fields: int) -> tuple[int, int, int] | None:
        """(signs, dots, e/E) in the block, or None if it holds a byte outside ALLOWED and the delimiter."""
        scratch = self.flags[0, :text.size]  # the newline flags are not needed again
        shifted = np.subtract(text, np.uint8(ord("0")), out=self.bytes_scratch[:text.size])  # digits -> 0..9
        digits = int(np.count_nonzero(np.less(shifted, np.uint8(10), out=scratch)))
        signs = int(np.count_nonzero(np.equal(text, np.uint8(ord("-")), out=scratch)))
        signs += int(np.count_nonzero(np.equal(text, np.uint8(ord("+")), out=scratch)))
        dots = int(np.count_nonzero(np.equal(text, np.uint8(ord(".")), out=scratch)))
        exponents = int(np.count_nonzero(np.equal(text | np.uint8(32), np.uint8(ord("e")), out=scratch)))
        if digits + signs + dots + exponents + fields != text.size:
            return None
        return signs, dots, exponents

    def _drop_carriage_returns(self) -> bool:
        """CRLF endings become LF; False if a carriage return stands anywhere else."""
        block = self.text[WINDOW:WINDOW + self.size].tobytes().replace(b"\r\n", b"\n")
        if b"\r" in block:
            return False
        self.text[WINDOW:WINDOW + len(block)] = np.frombuffer(block, np.uint8)
        self.size = len(block)
        return True
