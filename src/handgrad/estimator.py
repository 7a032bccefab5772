"""scikit-learn-compatible estimators (the STYLE guide's name); see :mod:`handgrad.sklearn`."""

from __future__ import annotations

from .sklearn import HandgradClassifier, HandgradRegressor

__all__ = ["HandgradClassifier", "HandgradRegressor"]
