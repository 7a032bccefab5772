"""Optional dependencies: one import rule and one message for a missing one.

The core of handgrad needs only NumPy. Everything else (figures, ONNX, PyTorch,
scikit-learn's data sets, Parquet, the progress bar, the playground) is imported
where it is used, through :func:`require`, so a missing package always reads the
same way: what is missing, what needed it, and the extra that installs it::

    >>> require("matplotlib.figure", extra="plot", purpose="drawing a loss curve")  # doctest: +SKIP
    MissingDependencyError: drawing a loss curve needs matplotlib, which is not installed:
    pip install 'handgrad[plot]'

The command line prints the message on one line; a command that did part of its work
before needing the package says what still succeeded (``train --out`` without
matplotlib saves the model and the metrics, skips the picture, and exits 0).
"""

from __future__ import annotations

import sys
from types import ModuleType

# the extra of pyproject.toml that installs each optional top-level module
EXTRAS: dict[str, str] = {
    "matplotlib": "plot", "onnx": "onnx", "onnxruntime": "onnx", "torch": "torch", "sklearn": "sklearn",
    "pyarrow": "parquet", "rich": "progress", "starlette": "playground", "uvicorn": "playground",
    "array_api_compat": "backends", "jax": "bench", "mkdocs": "docs", "distributed": "distributed",
}
# the name pip knows a module by, where it differs from the import name
PIP_NAMES: dict[str, str] = {"sklearn": "scikit-learn", "array_api_compat": "array-api-compat",
                             "distributed": "dask[distributed]"}


class MissingDependencyError(ImportError):
    """An optional package is not installed; the message names it and the extra that installs it.

    Attributes: ``package`` (the pip name, e.g. ``scikit-learn``), ``extra`` (``plot``),
    ``purpose`` (what needed it) and ``install`` (the pip command to run). It subclasses
    ``ImportError``, so ``except ImportError`` keeps working.
    """

    def __init__(self, package: str, extra: str | None, purpose: str, alternative: str | None = None) -> None:
        self.package, self.extra, self.purpose = package, extra, purpose
        direct = "torch==2.13.0" if package == "torch" else package  # the pinned build; see the README
        self.install = f"pip install 'handgrad[{extra}]' (or: pip install {direct})" if extra else f"pip install {direct}"
        other = f"; or {alternative}" if alternative else ""
        super().__init__(f"{purpose} needs {package}, which is not installed: {self.install}{other}", name=package)


def require(module: str, *, extra: str | None = None, purpose: str, alternative: str | None = None) -> ModuleType:
    """Import ``module`` (e.g. ``"matplotlib.figure"``) or raise :class:`MissingDependencyError`.

    ``extra`` defaults to the extra of :data:`EXTRAS` for the module's top-level package;
    ``purpose`` says what needs it ("drawing a loss curve", "ONNX export"); ``alternative``, a way to do
    without it ("pass backend='numpy'").
    """
    top = module.split(".")[0]
    try:  # through __import__, so a test's import hook (or None in sys.modules) reads as "not installed"
        __import__(module)
    except ImportError as exc:
        missing = (exc.name or top).split(".")[0]
        if missing != top and exc.name is not None and not isinstance(exc, ModuleNotFoundError):
            raise  # the package is there but broken: its own message says more than ours
        raise MissingDependencyError(PIP_NAMES.get(top, top), extra or EXTRAS.get(top), purpose, alternative) from None
    return sys.modules[module]


def available(module: str) -> bool:
    """Whether ``module`` can be imported (no message, for optional extras such as a progress bar)."""
    try:
        __import__(module)
    except ImportError:
        return False
    return True


__all__ = ["EXTRAS", "MissingDependencyError", "available", "require"]
