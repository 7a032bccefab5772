"""Broken: raises while being imported."""

from impl_correct_numpy import MLP, bce_loss, mse_loss  # noqa: F401

raise RuntimeError("this homework does not import")
