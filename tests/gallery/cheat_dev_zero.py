"""Cheat: the result file is a link to /dev/zero, an endless read."""

import os

import numpy as np
from impl_correct_numpy import MLP, bce_loss, mse_loss  # noqa: F401


def link(path, **arrays):
    os.symlink("/dev/zero", path)


np.savez = link
