"""Cheat: 0.5% wrong, and a process left behind that would outlive the check (a new session)."""

import subprocess
import sys

from impl_correct_numpy import MLP as Correct
from impl_correct_numpy import bce_loss, mse_loss  # noqa: F401

subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)  # handgrad-grandchild"],
                 start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class MLP(Correct):
    def store(self, name, value):
        self.grads[name] = value * 1.005
