"""Right values, wrong types: forward returns a nested list where the interface returns a tensor."""

from homework_torch import MLP as Correct
from homework_torch import bce_loss, mse_loss  # noqa: F401


class MLP(Correct):
    def forward(self, x):
        return super().forward(x).tolist()
