"""Exceptions raised by handgrad beyond the built-in ``ValueError`` / ``TypeError``.

Each one subclasses the built-in a caller would already catch, so ``except
ValueError`` keeps working; callers that need to tell the cases apart (the
command line maps a wrong data source to a usage error) catch the class, never
the message text.
"""

from __future__ import annotations

from typing import Any


class ModelFileError(ValueError):
    """A model or checkpoint file is missing, corrupt, or does not match the architecture."""


class DataSourceError(ValueError):
    """The data source itself is wrong, before any of its content is read.

    An unknown built-in dataset name, a directory where a file was expected, an
    unsupported file extension, or an option that does not apply to this source
    (a target column for a built-in dataset). A missing file raises
    ``FileNotFoundError``; bad content (a text cell in a feature column) raises a
    plain ``ValueError``.
    """


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss, gradient or parameter.

    The model is left at its last finite parameters; ``history`` holds the
    records of the finished epochs when ``fit`` raised it.
    """

    history: Any = None
    lr: float | None = None        # the learning rate when it diverged
    summary: str | None = None     # what happened and where, without the advice (a CLI adds its own options)


class ConvergenceWarning(UserWarning):
    """Training ended at the epoch cap while the validation loss was still improving.

    Like scikit-learn's ``ConvergenceWarning``: more epochs (or a larger learning rate) may help.
    """


__all__ = ["ConvergenceWarning", "DataSourceError", "DivergenceError", "ModelFileError"]
