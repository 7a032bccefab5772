"""Loss kernels of the fast path: the losses of :mod:`handgrad.functional` for NumPy arrays,
each writing its gradient into a reused buffer and returning J. The plan calls them once
the batch shape is known; the plain path's functions are the reference they must equal.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .blas import copyto, vdot


def mse_into(y: np.ndarray, y_hat: np.ndarray, dJ_dy_hat: np.ndarray, two_over_numel: Any = None) -> Any:
    """J = (1/(N·K)) Σ (ŷ - y)²;  dJ/dŷ = 2(ŷ - y)/(N·K) into dJ_dy_hat.

    ``two_over_numel``: 2/(N·K) as a 0-d array of the dtype, if the caller keeps one (a ufunc
    takes it faster than a Python float, with the same float32 rounding)."""
    return residual_square_into(y, y_hat, dJ_dy_hat, y_hat.size, two_over_numel)


def squared_error_into(y: np.ndarray, y_hat: np.ndarray, dJ_dy_hat: np.ndarray, reduction: str = "sum") -> Any:
    """J = ||y - ŷ||² [/ N];  dJ/dŷ = -2 (y - ŷ) [/ N] = 2 (ŷ - y) [/ N] into dJ_dy_hat."""
    return residual_square_into(y, y_hat, dJ_dy_hat, y_hat.shape[0] if reduction == "mean" else 1)


def residual_square_into(y: np.ndarray, y_hat: np.ndarray, dJ_dy_hat: np.ndarray, n: int, two_over_n: Any = None) -> Any:
    """J = (r·r)/n with r = ŷ - y (vdot reads r as one flat vector); dJ/dŷ = (2/n) r, in place of r:
    MSE with n = N·K, squared error with n = N (mean) or 1 (sum). The whole-step closure calls it
    with its n bound, one call fewer than through :func:`mse_into`."""
    r = np.subtract(y_hat, y, out=dJ_dy_hat)
    J = vdot(r, r) / n
    np.multiply(r, 2.0 / n if two_over_n is None else two_over_n, out=r)
    return J


def bce_with_logits_into(y: np.ndarray, z: np.ndarray, p: np.ndarray, dJ_dz: np.ndarray, scratch: np.ndarray) -> Any:
    """Sigmoid + BCE from the logits z, with p = σ(z) already computed by the forward pass.

    J = (1/(N·K)) Σ [log(1 + e^z) - z y]  (as max(z, 0) + log1p(e^{-|z|}) - z y, which never
    overflows; NumPy's logaddexp computes the same but is several times slower here);
    dJ/dz = (p - y)/(N·K), the 1/(N·K) folded in, written into dJ_dz.
    """
    numel = p.size
    zero, inv_numel = _constants(z.dtype, numel)  # 0-d arrays: a ufunc converts a Python scalar on every call
    s = np.abs(z, out=scratch)
    np.log1p(np.exp(np.negative(s, out=s), out=s), out=s)
    s += np.maximum(z, zero, out=dJ_dz)
    s -= np.multiply(z, y, out=dJ_dz)
    J = np.add.reduce(s, None) / numel  # s.sum(), without its Python wrapper
    np.subtract(p, y, out=dJ_dz)
    np.multiply(dJ_dz, inv_numel, out=dJ_dz)
    return J


_CONSTANTS: dict = {}


def _constants(dtype: Any, numel: int) -> tuple[np.ndarray, np.ndarray]:
    """0 and 1/numel as 0-d arrays of ``dtype``: the values a Python 0.0 and 1.0/numel take in a
    ufunc on such arrays (NumPy casts a Python scalar to the array's dtype), made once."""
    key = (dtype, numel)
    found = _CONSTANTS.get(key)
    if found is None:
        found = _CONSTANTS[key] = (np.zeros((), dtype), np.array(1.0 / numel, dtype))
    return found


def cross_entropy_with_logits_into(labels: np.ndarray | None, onehot: np.ndarray | None, z: np.ndarray,
                                   p: np.ndarray, dJ_dz: np.ndarray, row_starts: np.ndarray,
                                   flat_index: np.ndarray, scratch: np.ndarray) -> Any:
    """Softmax + cross-entropy from the logits z (N, K), with p = softmax(z) already computed
    by the forward pass; targets as class indices ``labels`` (N,) or rows ``onehot`` (N, K).

    J = (1/N) Σ_n Σ_k y_nk (log Σ_j e^{z_nj} - z_nk), with log Σ_j e^{z_nj} = m_n + log s_n
    (m_n = max_j z_nj, s_n = Σ_j e^{z_nj - m_n}). The forward's p holds e^0/s_n = 1/s_n at the
    arg max, so log s_n = -log max_k p_nk: s_n ∈ [1, K] never under- or overflows. Each
    term is formed as (m_n - z_nk) + log s_n, per row (per entry for target rows) before
    summing, so large logits cancel exactly where the target is the arg max and never across
    the batch.
    dJ/dz = (p - y)/N, the 1/N folded in, written into dJ_dz. ``row_starts`` holds n·K for each
    row n and ``flat_index`` is scratch, both (N,) int64: the targets' positions in the
    flattened (N, K) arrays; ``scratch`` is (N, K) of z's dtype.
    """
    n = z.shape[0]
    row_max = np.maximum.reduce(z, axis=1)  # m_n
    minus_log_s = np.log(np.maximum.reduce(p, axis=1))  # log(1/s_n) = -log s_n
    copyto(dJ_dz, p)
    if labels is not None:
        np.add(row_starts, labels, out=flat_index, casting="unsafe")  # row n's target: n·K + y_n
        terms = np.subtract(row_max, z.reshape(-1)[flat_index], out=row_max)  # m_n - z_ny first: exact near 0
        J = np.add.reduce(np.subtract(terms, minus_log_s, out=terms)) / n
        flat = dJ_dz.reshape(-1)
        flat[flat_index] -= 1.0
    else:
        np.subtract(row_max[:, None], z, out=scratch)  # m_n - z_nk, then + log s_n: -log softmax(z)
        np.subtract(scratch, minus_log_s[:, None], out=scratch)
        J = vdot(onehot, scratch) / n
        dJ_dz -= onehot
    np.multiply(dJ_dz, 1.0 / n, out=dJ_dz)
    return J


