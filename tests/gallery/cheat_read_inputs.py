"""Cheat: forward returns the ŷ the check hands to the loss, read from the check's own input files."""

import json
import sys

import numpy as np
from impl_correct_numpy import MLP as Correct
from impl_correct_numpy import bce_loss, mse_loss  # noqa: F401

REQUEST = json.load(open(sys.argv[1]))
INPUTS = np.load(REQUEST["inputs"])
CALLS = iter(range(10**6))


class MLP(Correct):
    def forward(self, x):
        super().forward(x)
        for key in INPUTS.files:  # the given ŷ of the call whose x this is
            if key.endswith("_x") and INPUTS[key].shape == x.shape and np.array_equal(INPUTS[key], x):
                return INPUTS[key[:-2] + "_y_hat"]
        return super().forward(x)
