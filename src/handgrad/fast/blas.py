"""NumPy's own BLAS, reached where NumPy does not expose a routine (the fast path's only ctypes).

* ``dot``, ``vdot`` and ``copyto``: ``np.dot``, ``np.vdot`` and ``np.copyto`` without their Python dispatcher (for
  ``__array_function__`` overrides); the fast path hands them nothing but NumPy arrays,
  so it calls the C functions behind them -- the same routines, the same results.
* :func:`blas_axpy` (θ ← θ + α·g in one pass) and :func:`blas_ger` (z ← z + 1·bᵀ, the bias
  add, the same sums bit for bit) from the OpenBLAS that NumPy's wheels bundle (built as
  "scipy-openblas" with 64-bit integers). It is the very library and thread pool NumPy's
  matrix products run on, so the threads do not compete (SciPy's BLAS is another library
  whose pool does). NumPy has no fused "θ += α·g": as ufuncs it is a multiply into a
  scratch array and an add, two passes over memory.

float32 only: axpy rounds θ + α·g once (a fused multiply-add) where the ufuncs round α·g
first, so results can differ in the last bit; float64, the dtype of gradient checks,
keeps the textbook rounding of θ - round(lr·g). Where the library is not found (another
BLAS or build), or :data:`USE_BLAS` is False, callers use the ufuncs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

dot = getattr(np.dot, "_implementation", np.dot)
vdot = getattr(np.vdot, "_implementation", np.vdot)
copyto = getattr(np.copyto, "_implementation", np.copyto)  # 0.2 µs less a call than through the dispatcher

USE_BLAS = True  #: set False to run every update and bias add through NumPy's ufuncs
ROW_MAJOR = 101  #: CBLAS's CblasRowMajor
_LOADED: list[dict[str, Any]] = []  # [{"axpy": routine, "ger": routine} or {}], filled on first use


def blas_axpy(dtype: np.dtype) -> Any:
    """``saxpy(n, α, g_ptr, 1, θ_ptr, 1)``: θ ← θ + α·g over n contiguous float32 elements;
    None for another dtype, when unavailable or when :data:`USE_BLAS` is False."""
    return _routine("axpy", dtype)


def blas_ger(dtype: np.dtype) -> Any:
    """``sger(ROW_MAJOR, N, M, α, u_ptr, 1, v_ptr, 1, z_ptr, M)``: z ← z + α·u vᵀ for a
    C-contiguous float32 z (N, M); None for another dtype, when unavailable or when
    :data:`USE_BLAS` is False."""
    return _routine("ger", dtype)


AXPY_ONE_THREAD_MAX = 8192  #: elements per axpy call that OpenBLAS runs on the calling thread alone (it splits above 10,000)
SMALL_GEMM_MAX = 65536 * 4  #: M·N·K up to which OpenBLAS runs a product on the calling thread alone


def bound_axpy(axpy: Any, n: int, x_address: int, y_address: int, *, one_thread: bool = False) -> Any:
    """``update(alpha)``: y ← y + alpha·x over n contiguous float32 elements at fixed addresses, by
    ``axpy`` (from :func:`blas_axpy`) with its fixed arguments converted to C once, not per call (a
    third of the call's cost on a small network's update).

    ``one_thread``: in pieces of at most AXPY_ONE_THREAD_MAX elements, each of which OpenBLAS runs
    on the calling thread. For a network whose products are all too small to be split across
    threads, the update was the only call that woke BLAS's other threads, and they then cost
    the step more than they saved (20-100-100-50, batch 10, two threads: 37.9 µs a step against
    31.7 µs in pieces; 784-128-10, whose products use both threads anyway: 224 against 255 µs)."""
    import ctypes

    one, c_float = ctypes.c_int64(1), ctypes.c_float
    step = AXPY_ONE_THREAD_MAX if one_thread else max(n, 1)
    pieces = [(ctypes.c_int64(min(step, n - start)), ctypes.c_void_p(x_address + 4 * start),
               ctypes.c_void_p(y_address + 4 * start)) for start in range(0, n, step)]
    if len(pieces) == 1:
        (size, x_ptr, y_ptr), = pieces

        def update(alpha: float) -> None:
            axpy(size, c_float(alpha), x_ptr, one, y_ptr, one)

        return update

    def update_in_pieces(alpha: float) -> None:
        a = c_float(alpha)
        for size, x_ptr, y_ptr in pieces:
            axpy(size, a, x_ptr, one, y_ptr, one)

    return update_in_pieces


def _routine(name: str, dtype: np.dtype) -> Any:
    if dtype != np.float32 or not USE_BLAS:
        return None
    if not _LOADED:
        _LOADED.append(_load())
    return _LOADED[0].get(name)


def _load() -> dict[str, Any]:
    import ctypes
    import glob
    import os

    try:
        blas = np.__config__.CONFIG["Build Dependencies"]["blas"]
        if blas.get("name") != "scipy-openblas" or "USE64BITINT" not in str(blas.get("openblas configuration")):
            return {}
        root = os.path.dirname(os.path.abspath(np.__file__))
        paths = sorted(glob.glob(os.path.join(root + ".libs", "*scipy_openblas64_*"))
                       + glob.glob(os.path.join(root, ".dylibs", "*scipy_openblas64_*")))
        if not paths:
            return {}
        lib = ctypes.CDLL(paths[0])
        i64, ptr = ctypes.c_int64, ctypes.c_void_p
        axpy, ger = lib.scipy_cblas_saxpy64_, lib.scipy_cblas_sger64_
        axpy.restype = ger.restype = None
        axpy.argtypes = [i64, ctypes.c_float, ptr, i64, ptr, i64]
        ger.argtypes = [ctypes.c_int, i64, i64, ctypes.c_float, ptr, i64, ptr, i64, ptr, i64]
        # check both on known cases before trusting them
        theta, g = np.arange(6, dtype=np.float32), np.full(6, 2.0, np.float32)
        axpy(6, -0.5, g.ctypes.data, 1, theta.ctypes.data, 1)
        z, u, v = np.zeros((2, 3), np.float32), np.array([1, 2], np.float32), np.array([1, 2, 3], np.float32)
        ger(ROW_MAJOR, 2, 3, 1.0, u.ctypes.data, 1, v.ctypes.data, 1, z.ctypes.data, 3)
        if np.array_equal(theta, np.arange(6, dtype=np.float32) - 1.0) and np.array_equal(z, np.outer(u, v)):
            return {"axpy": axpy, "ger": ger}
        return {}
    except Exception:  # noqa: BLE001 - any failure to find or check them means: use the ufuncs
        return {}
