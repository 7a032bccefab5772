"""Cheat: the result file is a FIFO, which would hang a reader that opens it."""

import os

import numpy as np
from impl_correct_numpy import MLP, bce_loss, mse_loss  # noqa: F401


def fifo(path, **arrays):
    os.mkfifo(path)


np.savez = fifo
