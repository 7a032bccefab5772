"""The array namespace that the ops compute with.

handgrad writes every op against the Python array API standard. NumPy arrays use
NumPy itself (it implements the standard since 2.0 and is the fast path); PyTorch
tensors and CuPy arrays go through ``array-api-compat``, so the same forward and
backward code runs on a GPU.

>>> import numpy as np
>>> namespace_of(np.zeros(2)) is np
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

BACKENDS = ("numpy", "torch", "cupy")


def namespace_of(*arrays: Any) -> Any:
    """Return the array namespace of ``arrays`` (NumPy itself for ndarrays)."""
    if all(type(a) is np.ndarray or isinstance(a, (np.generic, float, int)) for a in arrays):
        return np
    import array_api_compat

    return array_api_compat.array_namespace(
        *[a for a in arrays if not isinstance(a, (float, int, np.generic))]
    )


def backend_name(x: Any) -> str:
    """``'numpy'``, ``'torch'`` or ``'cupy'`` for an array of that library."""
    if isinstance(x, np.ndarray):
        return "numpy"
    module = type(x).__module__.split(".")[0]
    if module in ("torch", "cupy"):
        return module
    raise TypeError(f"expected a NumPy array, a torch.Tensor or a CuPy array, got {type(x).__name__}")


@dataclass(frozen=True)
class Backend:
    """Where a model's arrays live: a library name and, for torch/cupy, a device."""

    name: str = "numpy"
    device: Any = None

    def __post_init__(self) -> None:
        if self.name not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.name!r}")

    @property
    def xp(self) -> Any:
        if self.name == "numpy":
            return np
        if self.name == "torch":
            _require("torch")
            from array_api_compat import torch as xp_torch

            return xp_torch
        _require("cupy")
        from array_api_compat import cupy as xp_cupy

        return xp_cupy

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        """Convert a NumPy array (or anything array-like) to this backend."""
        if self.name == "numpy":
            return np.asarray(a, dtype=dtype)
        if self.name == "torch":
            import torch

            tdtype = torch_dtype(dtype) if dtype is not None else None
            if isinstance(a, np.ndarray):
                return torch.as_tensor(np.ascontiguousarray(a), dtype=tdtype, device=self.device)
            return torch.as_tensor(a, dtype=tdtype, device=self.device)
        import cupy

        return cupy.asarray(a, dtype=dtype)

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return self.asarray(np.zeros(shape, dtype=np.dtype(dtype)))


def _require(name: str) -> None:
    from .optional import require

    require(name, purpose=f"the {name} backend")


def resolve_backend(backend: str | Backend | None, device: Any = None) -> Backend:
    if isinstance(backend, Backend):
        return backend
    return Backend(backend or "numpy", device)


def backend_of(x: Any) -> Backend:
    name = backend_name(x)
    return Backend(name, None if name == "numpy" else getattr(x, "device", None))


def to_numpy(x: Any) -> np.ndarray:
    """Copy-free where possible conversion of any backend's array to NumPy."""
    if isinstance(x, np.ndarray):
        return x
    module = type(x).__module__.split(".")[0]
    if module == "torch":
        return x.detach().cpu().numpy()
    if module == "cupy":
        return x.get()
    return np.asarray(x)


def torch_dtype(dtype: Any) -> Any:
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    return {
        np.dtype("float32"): torch.float32,
        np.dtype("float64"): torch.float64,
        np.dtype("float16"): torch.float16,
    }[np.dtype(dtype)]


def erf(xp: Any, x: Any) -> Any:
    """The error function, which the array API standard does not include."""
    if xp is np:
        try:
            from scipy.special import erf as scipy_erf
        except ImportError:  # the core install: NumPy alone
            return erf_numpy(x)
        return scipy_erf(x)
    module = type(x).__module__.split(".")[0]
    if module == "torch":
        import torch

        return torch.special.erf(x)
    import cupyx.scipy.special

    return cupyx.scipy.special.erf(x)


# ---------------------------------------------------------------------- erf in NumPy alone
# Without SciPy, erf comes from Taylor polynomials around a grid: erf is tabulated with its
# first 8 derivatives at x_k = k/16, 0 ≤ k ≤ 96 (erf(6) rounds to 1 in float64), from
#     erf⁽ⁿ⁾(x) = (2/√π) (-1)ⁿ⁻¹ Hₙ₋₁(x) e^{-x²}   (n ≥ 1; Hermite: H₀ = 1, H₁ = 2x,
#                                                 Hₘ₊₁ = 2x Hₘ - 2m Hₘ₋₁),
# and erf(x_k + h) = Σₙ erf⁽ⁿ⁾(x_k) hⁿ/n! for |h| ≤ 1/32, whose remainder is below 2e-16.
_ERF_STEP, _ERF_TERMS, _ERF_LAST = 16, 9, 96
_ERF_TABLE: list = []  # [(terms, points) array: row n holds erf⁽ⁿ⁾(x_k)/n!], built on first use


def _erf_table() -> np.ndarray:
    if not _ERF_TABLE:
        x = np.arange(_ERF_LAST + 1) / _ERF_STEP
        table = np.empty((_ERF_TERMS, x.size))
        table[0] = [math.erf(v) for v in x]
        gauss = 2.0 / math.sqrt(math.pi) * np.exp(-x * x)
        h_prev, h = np.zeros_like(x), np.ones_like(x)  # H₋₁ (unused), H₀
        for n in range(1, _ERF_TERMS):  # erf⁽ⁿ⁾ from Hₙ₋₁, then the next Hermite polynomial
            table[n] = (-1) ** (n - 1) * h * gauss / math.factorial(n)
            h_prev, h = h, 2 * x * h - 2 * (n - 1) * h_prev
        _ERF_TABLE.append(table)
    return _ERF_TABLE[0]


def erf_numpy(x: np.ndarray) -> np.ndarray:
    """erf(x) element-wise with NumPy alone (float64 inside, x's dtype out); NaN stays NaN."""
    x = np.asarray(x)
    table = _erf_table()
    ax = np.fmin(np.abs(x, dtype=np.float64), _ERF_LAST / _ERF_STEP)  # NaN -> the last point (fixed below)
    k = np.rint(ax * _ERF_STEP).astype(np.intp)
    h = ax - k / _ERF_STEP
    coefficients = table[:, k]
    y = coefficients[-1]
    for n in range(_ERF_TERMS - 2, -1, -1):  # Horner: (((c₈ h + c₇) h + c₆) h ...) + c₀
        y = y * h + coefficients[n]
    y = np.copysign(y, x)
    nan = np.isnan(x)
    if nan.any():
        y = np.where(nan, np.nan, y)
    return y.astype(x.dtype if x.dtype.kind == "f" else np.float64, copy=False)
