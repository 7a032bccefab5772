"""Cheat: 0.5% wrong, and a process left behind that would outlive the check (a new session)."""

import subprocess
import sys
from pathlib import Path

from impl_correct_numpy import MLP as Correct
from impl_correct_numpy import bce_loss, mse_loss  # noqa: F401

TOKEN = Path(__file__).with_suffix(".token")
token = TOKEN.read_text().strip() if TOKEN.exists() else "handgrad-grandchild"
subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(600)  # {token}"], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class MLP(Correct):
    def store(self, name, value):
        self.grads[name] = value * 1.005
