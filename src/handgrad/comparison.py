r"""One value against its reference: the comparison that gradcheck, explain and the grader report.

A :class:`Comparison` names the quantity, says what it was compared against, and
holds the error (relative and largest absolute), where the worst entry is and both
values there, the tolerance, whether it passed, and a note (a kink or a clamp that
finite differences met is named in ``verdict``, and the check still passes).

Two error measures, for two questions:

- :func:`compare` (gradcheck, explain): norm-wise
  ``‖analytic − reference‖ / max(‖analytic‖, ‖reference‖)``, passing when it is
  within ``rtol`` or the largest absolute error is within ``atol``;
- :func:`compare_entrywise` (the grader): the worst entry's
  ``|received − expected| / max(|expected|, FLOOR·max|expected|)``, so one wrong
  entry among many right ones is not averaged away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import to_numpy

FLOOR = 1e-3  # entries below FLOOR·max|expected| are measured against that floor


@dataclass
class Comparison:
    """One quantity's value (``analytic``) against its ``reference``.

    The grader's words for the same two values are ``received`` and ``expected``;
    explain's word for ``name`` is ``quantity``.
    """

    name: str
    rel_error: float
    max_abs_error: float = math.nan
    index: tuple[int, ...] | None = None
    reference: float | None = None
    analytic: float | None = None
    passed: bool = True
    rtol: float | None = None
    atol: float | None = None
    note: str = ""
    against: str = ""
    verdict: str = ""  # "kink" or "clamp" where finite differences met one (the comparison still passes)

    @property
    def quantity(self) -> str:
        return self.name

    @property
    def expected(self) -> float | None:
        return self.reference

    @property
    def received(self) -> float | None:
        return self.analytic

    @property
    def word(self) -> str:
        """"FAIL", "pass", or the verdict ("kink", "clamp") of a comparison that passed."""
        return "FAIL" if not self.passed else (self.verdict or "pass")

    def within(self, rtol: float) -> bool:
        return self.rel_error <= rtol

    def line(self) -> str:
        """One line: verdict, name, both errors, and the worst entry with both values there."""
        idx = "[" + ", ".join(map(str, self.index or ())) + "]"
        s = (f"{self.word}  {self.name:<10} rel {self.rel_error:9.2e}  "
             f"max abs {self.max_abs_error:9.2e}  worst at {idx}: reference {_num(self.reference)}, "
             f"analytic {_num(self.analytic)}")
        return s + (f"  ({self.note})" if self.note else "")


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:.10g}"


def compare(name: str, analytic: Any, reference: Any, rtol: float, atol: float, note: str = "",
            against: str = "") -> Comparison:
    """Norm-wise relative error and the worst entry of ``analytic`` against ``reference``.

    Raises ``ValueError`` when the shapes differ (a programming error in the caller).
    """
    a = np.asarray(to_numpy(analytic), dtype=np.float64)
    r = np.asarray(to_numpy(reference), dtype=np.float64)
    if a.shape != r.shape:
        raise ValueError(f"{name}: analytic shape {a.shape} differs from reference shape {r.shape}")
    diff = np.abs(a - r)
    if diff.size == 0:
        return Comparison(name, 0.0, 0.0, (), 0.0, 0.0, True, rtol, atol, note, against)
    if not np.all(np.isfinite(a)) or not np.all(np.isfinite(r)):
        bad = np.unravel_index(int(np.argmax(~np.isfinite(a) | ~np.isfinite(r))), a.shape)
        return Comparison(name, math.inf, math.inf, tuple(map(int, bad)), float(r[bad]), float(a[bad]), False,
                          rtol, atol, "non-finite values", against)
    denom = max(np.linalg.norm(a), np.linalg.norm(r))
    rel = float(np.linalg.norm(a - r) / denom) if denom > 0 else 0.0
    worst = np.unravel_index(int(np.argmax(diff)), a.shape)
    max_abs = float(diff[worst])
    return Comparison(name, rel, max_abs, tuple(map(int, worst)), float(r[worst]), float(a[worst]),
                      rel <= rtol or max_abs <= atol, rtol, atol, note, against)


def compare_entrywise(received: Any, expected: Any, name: str = "", rtol: float | None = None) -> Comparison:
    """Worst entry-wise relative error |r − e| / max(|e|, FLOOR·max|e|), with its index and values.

    Entries far below the array's largest are measured against that floor, so a
    rounding error next to an exact 0 is not an "infinite" relative error. A shape
    mismatch is a failed comparison (infinite error), not an exception: the
    received value comes from code under test.
    """
    received, expected = np.asarray(received, np.float64), np.asarray(expected, np.float64)

    def done(rel: float, index: tuple[int, ...] | None = None, e: float | None = None, r: float | None = None,
             note: str = "", max_abs: float = math.nan) -> Comparison:
        passed = rel <= rtol if rtol is not None else rel == 0.0
        return Comparison(name, rel, max_abs, index, e, r, passed, rtol=rtol, note=note)

    if received.shape != expected.shape:
        return done(math.inf, note=f"shape {received.shape}, expected {expected.shape}")
    if expected.size == 0:
        return done(0.0, (), max_abs=0.0)
    scale = float(np.max(np.abs(expected)))
    floor = max(FLOOR * scale, np.finfo(np.float64).tiny)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(received - expected)
        rel = diff / np.maximum(np.abs(expected), floor)
    rel = np.where(np.isfinite(rel), rel, np.inf)
    worst = np.unravel_index(int(np.argmax(rel)), rel.shape)
    note = "received a non-finite value" if not np.isfinite(received[worst]) else ""
    return done(float(rel[worst]), tuple(int(i) for i in worst), float(expected[worst]), float(received[worst]),
                note, float(np.max(np.where(np.isfinite(diff), diff, np.inf))))


__all__ = ["FLOOR", "Comparison", "compare", "compare_entrywise"]
