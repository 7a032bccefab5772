"""The Standardizer scales a block of rows at a time, so that data read as float32 is never copied
whole into float64: its mean, scale and output are those of the one-array formula, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from handgrad.data import Standardizer


def _one_array(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    A = np.asarray(X, dtype=np.float64)
    peak = np.max(np.abs(A), axis=0)
    peak = np.where(peak > 0, peak, 1.0)
    U = A / peak
    mean, std = U.mean(axis=0) * peak, U.std(axis=0) * peak
    return mean, np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)


@pytest.mark.parametrize("layout", ["float64", "strided float64", "float32"])
def test_block_scaling_is_the_one_array_formula(layout):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((150_001, 4)) * [0.1, 3.0, 100.0, 1e-3] + [5.0, -2.0, 1e4, 0.0]
    X = {"float64": X, "strided float64": np.hstack([X, X])[:, ::2], "float32": X.astype(np.float32)}[layout]
    scaler = Standardizer().fit(X)
    mean, scale = _one_array(X)
    assert scaler.mean_.tobytes() == mean.tobytes() and scaler.scale_.tobytes() == scale.tobytes()
    Z = scaler.transform(X)
    assert Z.dtype == X.dtype  # float32 in, float32 out: each value rounded once from its float64 result
    expected = ((np.asarray(X, dtype=np.float64) - mean) / scale).astype(X.dtype)
    assert Z.tobytes() == expected.tobytes()
