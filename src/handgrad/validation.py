"""Validation of user input: shapes, dtypes, sizes, numbers in ranges, names, seeds.

The one set of checks every layer of handgrad uses (the network, ``fit``, the
estimators, the optimizers and the command line), so the same argument gets the
same rule and the same message everywhere. Every error names what was expected
and what was received: ``TypeError`` for the wrong kind of value, ``ValueError``
for a value out of range.
"""

from __future__ import annotations

import difflib
import math
import numbers
from typing import Any

import numpy as np

from .backend import backend_name, to_numpy, torch_dtype


def check_size(name: str, value: Any) -> int:
    """A layer size: a positive int (not a bool, not a float, not a string)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return int(value)


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """An int >= ``minimum`` (not a bool, not a float): epochs, batch sizes, patience, counts."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def check_real(name: str, value: Any, low: float = -math.inf, high: float = math.inf, *,
               open_low: bool = False, open_high: bool = False) -> float:
    """A real number in the interval from ``low`` to ``high`` (closed unless ``open_*``); NaN never passes."""
    interval = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in {interval}, got {type(value).__name__} {value!r}")
    value = float(value)
    ok = (value > low if open_low else value >= low) and (value < high if open_high else value <= high)
    if not ok:  # NaN compares False
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return value


def check_unit_interval(name: str, value: Any) -> float:
    """A coefficient in [0, 1): momentum, β₁, β₂, a data fraction."""
    return check_real(name, value, 0.0, 1.0, open_high=True)


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def make_rng(seed: Any = None, name: str = "seed") -> np.random.Generator:
    """The one way handgrad turns a seed into a random generator (never the global NumPy state).

    An int >= 0 seeds a new ``np.random.default_rng``; a Generator is used as it is;
    None draws fresh entropy from the OS; a legacy ``np.random.RandomState`` (as
    scikit-learn's ``random_state`` allows) seeds a new Generator from one draw; a
    tuple of ints >= 0 (``(seed, 1)``, ``(seed, 2)``) gives independent streams of one seed.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, np.random.RandomState):
        return np.random.default_rng(seed.randint(np.iinfo(np.int32).max))
    if isinstance(seed, tuple) and seed:
        return np.random.default_rng([_seed_int(name, s) for s in seed])
    return np.random.default_rng(_seed_int(name, seed))


def _seed_int(name: str, seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be an int, a numpy Generator or None, got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise ValueError(f"{name} must be non-negative, got {seed}")
    return int(seed)


def check_positive_float(name: str, value: Any, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a finite positive number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a finite {bound} number, got {value}")
    return value


def lookup_name(kind: str, name: Any, registry: dict[str, Any]) -> Any:
    """Look ``name`` up in ``registry``: case-insensitive, ``-``/``_``/space alike.

    An unknown name raises ValueError listing the known ones and the closest match.
    """
    if not isinstance(name, str):
        raise TypeError(f"{kind} must be a name (str), got {type(name).__name__} {name!r}")
    key = normalize_name(name)
    if key in registry:
        return registry[key]
    known = sorted(registry)
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(known)}{hint}")


def normalize_name(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_").replace("·", "*")


def as_array(x: Any, name: str = "x", dtype: Any = None) -> Any:
    """Turn ``x`` into a float array of the given backend-compatible dtype.

    NumPy input and array-likes (lists, tuples) become float NumPy arrays; integer
    and bool arrays are cast, never truncated. torch/cupy arrays are cast on their
    own device. Complex, non-numeric and ragged input raise with the reason.
    """
    if isinstance(x, np.ndarray) and dtype is not None and x.dtype == dtype:
        return x
    try:
        kind = backend_name(x)
    except TypeError:
        kind = "other"
    if kind in ("torch", "cupy"):
        if x.dtype.is_complex if kind == "torch" else x.dtype.kind == "c":
            raise ValueError(f"{name}: complex data not supported, got dtype {x.dtype}")
        if dtype is None:  # integers and bools become float32 (torch's .float(); CuPy arrays have no .float())
            if x.dtype.is_floating_point if kind == "torch" else x.dtype.kind == "f":
                return x
            return x.float() if kind == "torch" else x.astype("float32")
        return _cast_other(x, kind, dtype)
    if kind == "other" and not isinstance(x, (list, tuple, numbers.Number, np.generic)):
        if not hasattr(x, "__array__"):
            raise TypeError(
                f"{name} must be an array (NumPy array, torch tensor, list of lists), got {type(x).__name__}"
            )
    return _as_numpy_float(x, name, dtype)


def _cast_other(x: Any, kind: str, dtype: Any) -> Any:
    if kind == "torch":
        tdt = torch_dtype(dtype)
        return x if x.dtype == tdt else x.to(tdt)
    return x.astype(dtype, copy=False)


def _as_numpy_float(x: Any, name: str, dtype: Any) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except ValueError as exc:
        raise ValueError(f"{name} has inhomogeneous row lengths (ragged); {exc}") from None
    if arr.dtype.kind == "c":
        raise ValueError(f"{name}: complex data not supported, got dtype {arr.dtype}")
    if arr.dtype.kind == "O":
        arr = _object_to_float(arr, name)
    elif arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype} (e.g. {arr.flat[0]!r})" if arr.size
                        else f"{name} must hold numbers, got dtype {arr.dtype}")
    target = np.dtype(dtype) if dtype is not None else (
        arr.dtype if arr.dtype.kind == "f" and arr.dtype.itemsize >= 4 else np.dtype(np.float32)
        if arr.dtype == np.float16 else np.dtype(np.float64))
    return arr.astype(target, copy=False)


def _object_to_float(arr: np.ndarray, name: str) -> np.ndarray:
    out = np.empty(arr.shape, dtype=np.float64)
    for index, value in np.ndenumerate(arr):
        if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.generic)):
            raise TypeError(f"{name} must hold numbers; got {value!r} ({type(value).__name__}) at index {index}")
        out[index] = value
    return out


def check_2d(x: Any, name: str = "x", what: str = "") -> None:
    """Raise unless ``x`` is 2-D (n_samples, n_features)."""
    ndim = len(x.shape)
    if ndim != 2:
        prefix = f"{what} " if what else ""
        hint = " Reshape a single sample with x.reshape(1, -1), a single feature with x.reshape(-1, 1)." if ndim == 1 else ""
        raise ValueError(
            f"{prefix}expected {name} as a 2-D array (n_samples, n_features), got {ndim}-D shape {tuple(x.shape)}.{hint}"
        )


def check_finite(x: Any, name: str = "X") -> None:
    """Raise ValueError naming the first NaN/inf position of a NumPy array and the count."""
    arr = np.asarray(to_numpy(x))
    if arr.dtype.kind in "biu":
        return  # integers are always finite
    if arr.dtype.kind == "f":
        with np.errstate(over="ignore", invalid="ignore"):  # inf - inf and overflow are answers here, not faults
            total = float(np.add.reduce(arr, axis=None))
        if math.isfinite(total):
            return  # one pass, no mask: any NaN or ±inf makes the sum NaN or ±inf (a finite sum that overflows runs the exact check)
    finite = np.isfinite(arr)
    if finite.all():
        return
    bad = np.argwhere(~finite)
    first = tuple(int(i) for i in bad[0])
    value = arr[first]
    what = "NaN" if np.isnan(value) else "infinity"
    where = f"row {first[0]}, column {first[1]}" if len(first) == 2 else f"index {first}"
    raise ValueError(f"Input {name} contains {what} at {where} ({len(bad)} non-finite value(s) in all)")


def check_same_shape(y: Any, y_hat: Any, loss: str) -> None:
    if tuple(y.shape) != tuple(y_hat.shape):
        raise ValueError(
            f"{loss}: y and y_hat must have the same shape, got y {tuple(y.shape)} and y_hat {tuple(y_hat.shape)}"
            " (reshape y, e.g. y.reshape(-1, 1), rather than rely on broadcasting)"
        )


def check_nonempty(x: Any, what: str) -> None:
    if x.shape[0] == 0:
        raise ValueError(f"{what}: empty batch (0 rows); the mean over a batch is undefined")
