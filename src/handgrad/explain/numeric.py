r"""Finite differences that know where they stand: scaled steps, domains, kinks and clamps.

A fixed step of 1e-6 raises false alarms in three places: where a value is large (the
step is lost in rounding), next to the edge of a domain (ŷ ∈ (0, 1) for BCE: the step
leaves it), and at a kink (ReLU at 0: the central difference averages two slopes). Here
every entry gets

- a step scaled to the point, ``h = ε^(1/3) · max(1, |x|)``, shrunk to stay inside the
  domain; where there is no room on one side, a one-sided second-order difference;
- an error estimate for the difference itself (steps h and 2h, plus rounding), so that a
  disagreement is called a failure only when it exceeds what finite differences can resolve;
- a kink test: left and right slopes that disagree beyond their own error, again with a
  1000× smaller step, are a kink (both slopes are reported, and the analytic value must
  lie between them: handgrad and PyTorch take one of the one-sided slopes, e.g. ReLU′(0) = 0);
- a clamp test: a function that does not move at all under the step while the analytic
  derivative is non-zero is flat in float64 (a clamped log, a saturated sigmoid).

Everything is vectorised over entries, so a sweep of many points costs a few array calls.

>>> import numpy as np
>>> r = judge(lambda d: np.abs(np.array([0.0, 2.0]) + d), np.array([0.0, 2.0]), np.array([0.0, 1.0]))
>>> r.verdict.tolist()
['kink', 'ok']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

STEP = np.finfo(np.float64).eps ** (1 / 3)  # ≈ 6e-6: balances truncation (h²) and rounding (ε/h)
ROUND = 64 * np.finfo(np.float64).eps  # rounding of a value computed through a few dozen ops
RTOL, ATOL = 1e-6, 1e-9
VERDICTS = ("ok", "kink", "clamp", "fail")


@dataclass
class Judgement:
    """Per-entry finite-difference estimates and verdicts (arrays of the analytic's shape)."""

    analytic: np.ndarray
    numeric: np.ndarray
    error_bound: np.ndarray
    left: np.ndarray
    right: np.ndarray
    verdict: np.ndarray  # of str: "ok", "kink", "clamp", "fail"
    one_sided: np.ndarray  # bool: the domain allowed only one side

    @property
    def passed(self) -> bool:
        return not np.any(self.verdict == "fail")

    def count(self, verdict: str) -> int:
        return int(np.sum(self.verdict == verdict))

    def rel_error(self) -> float:
        ok = self.verdict != "kink"
        if not np.any(ok):
            return 0.0
        a, n = self.analytic[ok], self.numeric[ok]
        finite = np.isfinite(n)
        diff = np.abs(a[finite] - n[finite])
        return float(np.max(diff / np.maximum(np.abs(n[finite]), 1e-300), initial=0.0)) if diff.size else 0.0

    def max_abs_error(self) -> float:
        ok = (self.verdict == "ok") | (self.verdict == "fail")
        return float(np.max(np.abs(self.analytic[ok] - self.numeric[ok]), initial=0.0))

    def first(self, verdict: str) -> tuple[int, ...] | None:
        idx = np.argwhere(self.verdict == verdict)
        return tuple(int(i) for i in idx[0]) if len(idx) else None

    def note(self, convention: str = "") -> str:
        """One line: kinks with both slopes, clamps, one-sided steps, the first failure."""
        parts = []
        k = self.first("kink")
        if k is not None:
            parts.append(f"{self.count('kink')} entr{'y' if self.count('kink') == 1 else 'ies'} at a kink, e.g. {k}: "
                         f"one-sided slopes {self.left[k]:.6g} (left) and {self.right[k]:.6g} (right), "
                         f"backward gives {self.analytic[k]:.6g}" + (f" ({convention})" if convention else ""))
        c = self.first("clamp")
        if c is not None:
            parts.append(f"{self.count('clamp')} clamped/saturated entr{'y' if self.count('clamp') == 1 else 'ies'}, "
                         f"e.g. {c}: the function does not move in float64 (finite differences see 0, backward gives "
                         f"{self.analytic[c]:.6g})")
        n_one = int(np.sum(self.one_sided & (self.verdict != "kink")))
        if n_one:
            parts.append(f"{n_one} one-sided difference(s) next to the domain's edge")
        f = self.first("fail")
        if f is not None:
            parts.append(f"first failure at {f}: analytic {self.analytic[f]:.6g}, numeric {self.numeric[f]:.6g} "
                         f"± {self.error_bound[f]:.2g}")
        return "; ".join(parts)


def _steps(x0: np.ndarray, lo: float, hi: float, eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(h, side, room): h scaled to the point, side = 0 central, +1 forward, -1 backward.

    The step is ε·max(1, |x|), but never more than ε times the distance to the domain's
    edge, so a central difference stays inside (0, 1) even at ŷ = 1e-26. Where that step
    would be lost in rounding (x within a few ulps of the edge), the difference is
    one-sided, into the domain.
    """
    room = np.minimum(x0 - lo, hi - x0)
    h = eps * np.minimum(np.maximum(1.0, np.abs(x0)), room)
    resolvable = h > 1e3 * np.spacing(np.maximum(np.abs(x0), 1e-300))
    side = np.zeros(x0.shape, dtype=np.int8)
    fwd = (hi - x0) >= (x0 - lo)
    side = np.where(~resolvable, np.where(fwd, 1, -1), side).astype(np.int8)
    wide = np.where(fwd, hi - x0, x0 - lo)
    tiny = 64 * np.spacing(np.maximum(np.abs(x0), 1e-300))  # the smallest step rounding leaves usable
    h = np.where(resolvable, h, np.minimum(np.maximum(h, tiny), wide / 4))
    h = np.where(np.isfinite(x0), (x0 + h) - x0, h)  # the step float64 actually takes, so x0 ± h is exact
    return h, side, room


def _expand(a: np.ndarray, ndim: int) -> np.ndarray:
    return a.reshape(a.shape + (1,) * (ndim - a.ndim))


def _estimate(phi: Callable[[np.ndarray], np.ndarray], h: np.ndarray, side: np.ndarray,
              f0: np.ndarray) -> tuple[np.ndarray, ...]:
    """Slope, its error bound, and the left / right one-sided slopes, for steps h."""
    s = side.astype(np.float64)
    # offsets: central uses ±h, ±2h; one-sided uses s·h, s·2h (and the other side where allowed)
    fp, fp2 = phi(np.where(side >= 0, h, 0.0)), phi(np.where(side >= 0, 2 * h, 0.0))
    fm, fm2 = phi(np.where(side <= 0, -h, 0.0)), phi(np.where(side <= 0, -2 * h, 0.0))
    H = _expand(h, f0.ndim)
    S = _expand(s, f0.ndim)
    central = (fp - fm) / (2 * H)
    central2 = (fp2 - fm2) / (4 * H)
    right, right2 = (fp - f0) / H, (fp2 - f0) / (2 * H)
    left, left2 = (f0 - fm) / H, (f0 - fm2) / (2 * H)
    fwd = (-3 * f0 + 4 * fp - fp2) / (2 * H)  # second order, forward
    bwd = (3 * f0 - 4 * fm + fm2) / (2 * H)  # second order, backward
    scale = np.maximum.reduce([np.abs(v) for v in (f0, fp, fm, fp2, fm2)])
    rounding = ROUND * scale / H + 1e-300
    numeric = np.where(S > 0, fwd, np.where(S < 0, bwd, (4 * central - central2) / 3))
    trunc = np.where(S > 0, np.abs(fwd - right2), np.where(S < 0, np.abs(bwd - left2), np.abs(central - central2)))
    bound = 2 * trunc + 8 * rounding
    left = np.where(S > 0, right, left)
    right = np.where(S < 0, left, right)
    one_err = np.abs(right - right2) + np.abs(left - left2) + 8 * rounding
    flat = (fp == f0) & (fm == f0) & (fp2 == f0) & (fm2 == f0)
    return numeric, bound, left, right, one_err, flat


def judge(phi: Callable[[np.ndarray], np.ndarray], x0: np.ndarray, analytic: np.ndarray, *,
          lo: float = -np.inf, hi: float = np.inf, rtol: float = RTOL, atol: float = ATOL,
          eps: float = STEP, clamped: np.ndarray | None = None) -> Judgement:
    """Judge ``analytic`` (∂φ/∂x at x0, entry by entry) by finite differences.

    ``phi(delta)`` evaluates the function with entry ``i`` of x0 moved by ``delta[i]``
    (every entry independently, as for an element-wise function, or one at a time as
    a caller looping over parameters does); its result has x0's shape, optionally followed
    by more axes (then ``analytic`` has those axes too: a Jacobian's column per entry).
    ``lo``/``hi`` bound the domain (open interval). ``clamped`` marks entries where the
    caller's function or its derivative is clamped by design (BCE's log at -100, its
    gradient's denominator at 1e-12, as PyTorch does): a disagreement there is a clamp.
    """
    x0 = np.asarray(x0, dtype=np.float64)
    analytic = np.asarray(analytic, dtype=np.float64)
    f0 = np.asarray(phi(np.zeros_like(x0)), dtype=np.float64)
    h, side, room = _steps(x0, lo, hi, eps)
    shape = analytic.shape
    numeric, bound = np.full(shape, np.nan), np.full(shape, np.inf)
    left, right = np.full(shape, np.nan), np.full(shape, np.nan)
    flat = np.zeros(shape, dtype=bool)
    pending = np.ones(shape, dtype=bool)
    ever_split = np.zeros(shape, dtype=bool)
    last_split = np.zeros(shape, dtype=bool)
    ever_close = np.zeros(shape, dtype=bool)
    lo_s, hi_s = np.full(shape, np.nan), np.full(shape, np.nan)
    # a kink within the step rather than at the point disappears with a smaller step: up to 1e6× smaller
    for shrink in (1.0, 1e-3, 1e-6):
        hs = h * shrink
        if shrink < 1.0:
            usable = hs > 1e3 * np.spacing(np.maximum(np.abs(x0), 1e-300))
            rows = np.any(pending.reshape(x0.shape + (-1,)), axis=-1) & usable
            if not np.any(rows):
                break
            hs = np.where(rows, hs, 0.0)  # settled entries are not moved again
        with np.errstate(divide="ignore", invalid="ignore"):
            n2, b2, l2, r2, e2, fl2 = _estimate(phi, hs, side, f0)
        close = np.abs(analytic - n2) <= b2 + rtol * np.abs(n2) + atol
        if shrink < 1.0:  # a smaller step only settles a point when it is itself precise
            close &= b2 <= 1e-4 * np.maximum(np.abs(n2), 1.0)
        split = np.abs(r2 - l2) > 4 * e2 + rtol * np.maximum(np.abs(r2), np.abs(l2)) + atol
        take = pending
        numeric, bound = np.where(take, n2, numeric), np.where(take, b2, bound)
        left, right, flat = np.where(take, l2, left), np.where(take, r2, right), np.where(take, fl2, flat)
        gap = split | ((np.abs(r2 - l2) > 1e-3 * np.maximum(np.abs(r2), np.abs(l2)) + atol) & ~close)
        ever_split |= take & gap
        last_split = np.where(take, gap, last_split)
        ever_close |= take & close
        lo_s = np.where(take, np.fmin(lo_s, np.minimum(l2, r2)), lo_s)
        hi_s = np.where(take, np.fmax(hi_s, np.maximum(l2, r2)), hi_s)
        # settled: close with both one-sided slopes agreeing; a split that persists is looked at closer
        pending = ~ever_close | last_split
    tol = bound + rtol * np.abs(numeric) + atol
    close = ever_close & ~last_split
    kink = last_split | (ever_split & ~ever_close)
    between = (analytic >= lo_s - tol) & (analytic <= hi_s + tol)
    verdict = np.full(shape, "ok", dtype=object)
    verdict = np.where(~close, "fail", verdict)
    verdict = np.where(~close & kink & between, "kink", verdict)
    verdict = np.where(~close & ~kink & flat & (analytic != 0), "clamp", verdict)
    at_edge = _expand(room <= 0, analytic.ndim) & np.ones(shape, dtype=bool)
    verdict = np.where(at_edge, "clamp", verdict)
    if clamped is not None:
        verdict = np.where(~close & (_expand(np.asarray(clamped), analytic.ndim) & np.ones(shape, dtype=bool)),
                           "clamp", verdict)
    numeric = np.where(at_edge, np.nan, numeric)
    one_sided = _expand(side != 0, analytic.ndim) & np.ones(shape, dtype=bool)
    return Judgement(analytic, numeric, bound, left, right, verdict.astype(str), one_sided)


def looped(f: Callable[[], float], theta: np.ndarray, indices: np.ndarray | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """φ for :func:`judge` over a parameter array that ``f`` reads: one entry moved at a time.

    ``theta`` is perturbed in place and restored. With ``indices`` (flat positions) only
    those entries are moved, and φ's result has one value per index. An offset of 0
    reuses J at the point, so entries already settled cost nothing on a closer look.
    """
    positions = np.arange(theta.size) if indices is None else np.asarray(indices)
    shape = theta.shape if indices is None else positions.shape
    # entry i (in C order) by its index tuple: works on any view, a transposed W included
    where = list(zip(*np.unravel_index(positions, theta.shape))) if theta.ndim else [()] * positions.size
    cache: dict[str, float] = {}

    def base() -> float:
        if "J" not in cache:
            cache["J"] = float(f())
        return cache["J"]

    def phi(delta: np.ndarray) -> np.ndarray:
        d = np.asarray(delta).reshape(-1)
        out = np.empty(positions.size)
        for k, i in enumerate(where):
            if d[k] == 0.0:
                out[k] = base()
                continue
            old = theta[i]
            theta[i] = old + d[k]
            try:
                out[k] = float(f())
            finally:
                theta[i] = old
        return out.reshape(shape)

    return phi


def merge(parts: list[Judgement], axis: int = -1) -> Judgement:
    """Judgements of the columns of one array, stacked along ``axis`` into one."""
    fields = ("analytic", "numeric", "error_bound", "left", "right", "verdict", "one_sided")
    return Judgement(*(np.stack([getattr(p, f) for p in parts], axis=axis) for f in fields))
__all__ = ["ATOL", "RTOL", "STEP", "VERDICTS", "Judgement", "judge", "looped", "merge"]
