"""Exceptions raised by handgrad beyond the built-in ``ValueError`` / ``TypeError``."""

from __future__ import annotations


class ModelFileError(ValueError):
    """A model or checkpoint file is missing, corrupt, or does not match the architecture."""


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss, gradient or parameter.

    The model is left at its last finite parameters.
    """
