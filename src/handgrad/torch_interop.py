"""PyTorch equivalents of handgrad networks and losses (torch is imported lazily).

``to_torch(net)`` builds an ``nn.Sequential`` with identical weights: handgrad's
Linear stores W as (out, in) like ``nn.Linear``, so the copy is direct.
``torch_loss(loss)`` returns the matching ``torch.nn`` loss. The gradient checks
use both to compare every gradient with autograd.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend import to_numpy
from .layers import GELU, Identity, LeakyReLU, Linear, LogSoftmax, ReLU, Scale, Sigmoid, Softmax, Softplus, Tanh


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError("PyTorch is needed here: pip install 'handgrad[torch]' (torch==2.13.0)") from None
    return torch


def _scale_module(c: float) -> Any:
    torch = _torch()

    class ScaleModule(torch.nn.Module):
        """y = c x (handgrad's Scale, and the c of 5·ReLU)."""

        def __init__(self, c: float) -> None:
            super().__init__()
            self.c = c

        def forward(self, x):
            return x * self.c

        def extra_repr(self) -> str:
            return f"c={self.c:g}"

    return ScaleModule(c)


def torch_layers(layer: Any, dtype: Any) -> list[Any]:
    """The torch module(s) computing the same function as one handgrad layer."""
    nn = _torch().nn
    if isinstance(layer, Linear):
        mod = nn.Linear(layer.in_features, layer.out_features, bias="b" in layer.params, dtype=dtype)
        with _torch().no_grad():
            mod.weight.copy_(_torch().as_tensor(np.array(to_numpy(layer.params["W"])), dtype=dtype))
            if "b" in layer.params:
                mod.bias.copy_(_torch().as_tensor(np.array(to_numpy(layer.params["b"])), dtype=dtype))
        return [mod]
    if isinstance(layer, Scale):
        return [_scale_module(layer.c)]
    if isinstance(layer, (Softmax, LogSoftmax)):
        inner = nn.Softmax(dim=-1) if isinstance(layer, Softmax) else nn.LogSoftmax(dim=-1)
        return ([_scale_module(layer.beta)] if layer.beta != 1.0 else []) + [inner]
    simple = {
        Identity: lambda: nn.Identity(),
        ReLU: lambda: nn.ReLU(),
        Tanh: lambda: nn.Tanh(),
        Sigmoid: lambda: nn.Sigmoid(),
        Softplus: lambda: nn.Softplus(),
        LeakyReLU: lambda: nn.LeakyReLU(layer.negative_slope),
        GELU: lambda: nn.GELU(approximate=layer.approximate),
    }
    if type(layer) not in simple:
        raise ValueError(f"no PyTorch equivalent for {layer!r}")
    mods = [simple[type(layer)]()]
    if getattr(layer, "scale", 1.0) != 1.0:
        mods.append(_scale_module(layer.scale))
    return mods


def to_torch(net: Any, dtype: Any = None) -> Any:
    """An ``nn.Sequential`` with the same layers and weights as ``net`` (float64 by default)."""
    torch = _torch()
    dtype = dtype or torch.float64
    modules = [m for layer in net.layers for m in torch_layers(layer, dtype)]
    return torch.nn.Sequential(*modules)


def torch_loss(loss: Any) -> Any:
    """``fn(y_hat, y) -> J`` computing ``loss`` with torch.nn.functional."""
    from .losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, SquaredErrorLoss

    F = _torch().nn.functional
    if isinstance(loss, MSELoss):
        return lambda y_hat, y: F.mse_loss(y_hat, y)
    if isinstance(loss, SquaredErrorLoss):
        if loss.reduction == "sum":
            return lambda y_hat, y: F.mse_loss(y_hat, y, reduction="sum")
        return lambda y_hat, y: F.mse_loss(y_hat, y, reduction="sum") / y_hat.shape[0]
    if isinstance(loss, BCELoss):
        return lambda y_hat, y: F.binary_cross_entropy(y_hat, y)
    if isinstance(loss, BCEWithLogitsLoss):
        return lambda y_hat, y: F.binary_cross_entropy_with_logits(y_hat, y)
    if isinstance(loss, CrossEntropyLoss):
        return lambda y_hat, y: F.cross_entropy(y_hat, y)
    raise ValueError(f"no PyTorch equivalent for {loss!r}")


__all__ = ["to_torch", "torch_layers", "torch_loss"]
