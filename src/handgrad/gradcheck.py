r"""Gradient checking: central finite differences in float64, and PyTorch autograd.

- :func:`check_network`: every parameter gradient (and dJ/dx) of a network + loss
  against central differences of J.
- :func:`check_layer`: a layer's full Jacobians (input and parameters), built row by
  row from backward with one-hot upstream gradients, against numerical Jacobians.
- :func:`check_loss`: dJ/dŷ of a loss against central differences.
- :func:`compare_with_torch`: the same network rebuilt in PyTorch with the same
  weights; outputs, J and every gradient compared with autograd.

Each returns a :class:`GradcheckReport`: per quantity the norm-wise relative error
``‖analytic − reference‖ / max(‖analytic‖, ‖reference‖)``, the largest absolute
error, the index where it occurs and both values there. Inputs are copied before
they are perturbed, so aliased (stride-0) arrays are never perturbed in place.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import to_numpy
from .comparison import Comparison, compare

Array = Any
EPS = 1e-6


@dataclass
class GradcheckReport:
    """The result of a gradient check; ``passed`` when every comparison passed."""

    method: str
    comparisons: list[Comparison] = field(default_factory=list)
    rtol: float = 1e-6
    atol: float = 1e-10

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons)

    def __getitem__(self, name: str) -> Comparison:
        for c in self.comparisons:
            if c.name == name:
                return c
        raise KeyError(f"{name!r} not in report; have {[c.name for c in self.comparisons]}")

    @property
    def worst(self) -> Comparison:
        return max(self.comparisons, key=lambda c: c.rel_error)

    def __str__(self) -> str:
        head = f"gradient check against {self.method} (pass: rel error <= {self.rtol:g} or max abs <= {self.atol:g})"
        return "\n".join([head, *(c.line() for c in self.comparisons)])

    def raise_if_failed(self) -> None:
        if not self.passed:
            raise AssertionError(str(self))


def numerical_gradient(f: Callable[[], float], theta: np.ndarray, eps: float = EPS) -> np.ndarray:
    """dJ/dθ by central differences (J(θ + ε) - J(θ - ε)) / 2ε, perturbing ``theta`` in place.

    ``theta`` must be a float64 array that ``f`` reads; every entry is restored.
    The step is scaled as ε·max(1, |θ_i|).
    """
    grad = np.zeros_like(theta)
    for i in np.ndindex(theta.shape):
        old = theta[i]
        h = eps * max(1.0, abs(old))
        theta[i] = old + h
        plus = float(f())
        theta[i] = old - h
        minus = float(f())
        theta[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def float64_copy(net: Any) -> Any:
    """A deep copy of the network on NumPy in float64 (the original is left as it is)."""
    return copy.deepcopy(net).to("numpy", np.float64)


def loss_value(net: Any, loss: Any, x: np.ndarray, y: Any) -> float:
    """J for the current parameters, through the fused path when the network uses it."""
    from .inference import logits_and_outputs, loss_of_outputs

    z, y_hat = logits_and_outputs(net, x)
    return loss_of_outputs(net, loss, y, z, y_hat)


def check_network(net: Any, x: Array, y: Array, loss: Any, *, eps: float = EPS, rtol: float = 1e-6,
                  atol: float = 1e-10, input_grad: bool = True) -> GradcheckReport:
    """Every gradient of ``loss(y, net(x))`` against central differences, in float64.

    The network is copied and converted to float64 NumPy first; ``net`` itself is not
    changed. Keep ReLU-family pre-activations away from 0 (a kink) for a fair check.
    """
    from .losses import make_loss

    loss = make_loss(loss)
    net64 = float64_copy(net)
    x64 = np.array(to_numpy(x), dtype=np.float64)  # a private copy, never aliased
    y64 = np.array(to_numpy(y), dtype=np.float64 if np.asarray(to_numpy(y)).dtype.kind == "f" else None)
    net64.zero_grad()
    net64.forward(x64)
    net64.backward_loss(loss, y64, input_grad=False)
    analytic = {name: np.array(g) for name, g in net64.grads.items()}
    dJ_dx = _input_gradient(net64, loss, x64, y64) if input_grad else None
    report = GradcheckReport("central finite differences (float64)", rtol=rtol, atol=atol)
    for name, layer, key, _gkey in net64.parameter_slots():
        theta = layer.params[key]
        numeric = numerical_gradient(lambda: loss_value(net64, loss, x64, y64), theta, eps)
        report.comparisons.append(_with_kink_note(compare(f"dJ/d{name}", analytic[f"dJ_d{name}"], numeric, rtol, atol),
                                                  net64, loss, x64, y64, theta, eps))
    if dJ_dx is not None:
        numeric = numerical_gradient(lambda: loss_value(net64, loss, x64, y64), x64, eps)
        report.comparisons.append(compare("dJ/dx", dJ_dx, numeric, rtol, atol))
    return report


def _input_gradient(net: Any, loss: Any, x: np.ndarray, y: Any) -> np.ndarray:
    """dJ/dx by backward; where the output layer fuses with the loss, from dJ/dz through the layers below it."""
    scratch = without_last(net) if net.fused_pair(loss) else copy.deepcopy(net)
    scratch.zero_grad()
    out = scratch.forward(x)
    _, g = loss.fused(y, out) if net.fused_pair(loss) else loss(y, out)
    return to_numpy(scratch.backward(g, input_grad=True))


def _with_kink_note(c: Comparison, net: Any, loss: Any, x: np.ndarray, y: Any, theta: np.ndarray,
                    eps: float) -> Comparison:
    """For a failing entry, compare one-sided differences: disagreement means a kink."""
    if c.passed or not c.index:
        return c
    i, old = c.index, theta[c.index]
    h = eps * max(1.0, abs(old))
    j0 = loss_value(net, loss, x, y)
    theta[i] = old + h
    right = (loss_value(net, loss, x, y) - j0) / h
    theta[i] = old - h
    left = (j0 - loss_value(net, loss, x, y)) / h
    theta[i] = old
    if abs(right - left) > 1e-3 * max(1.0, abs(right), abs(left)):
        c.note = f"the point is at a kink: one-sided slopes {left:.6g} and {right:.6g} differ"
    return c


def check_layer(layer: Any, x: Array, *, eps: float = EPS, rtol: float = 1e-6, atol: float = 1e-10) -> GradcheckReport:
    """The full Jacobian of a layer (w.r.t. its input and each parameter) against numerical ones.

    The analytic Jacobian is built row by row: backward with a one-hot upstream
    gradient per output element, as PyTorch's gradcheck does. Use small shapes.
    """
    layer64 = copy.deepcopy(layer).to("numpy", np.float64)
    x64 = np.array(to_numpy(x), dtype=np.float64)
    y = np.asarray(to_numpy(layer64.forward(x64)))
    targets = {"x": x64, **{k: v for k, v in layer64.params.items()}}
    rows: dict[str, list[np.ndarray]] = {k: [] for k in targets}
    for k_out in np.ndindex(y.shape):
        layer64.zero_grad()
        layer64.forward(x64)
        onehot = np.zeros_like(y)
        onehot[k_out] = 1.0
        dJ_dx = layer64.backward(onehot)
        rows["x"].append(np.asarray(to_numpy(dJ_dx)).ravel().copy())
        for key in layer64.params:
            rows[key].append(np.asarray(to_numpy(layer64.grads[f"dJ_d{key}"])).ravel().copy())
    report = GradcheckReport("central finite differences (float64, full Jacobian)", rtol=rtol, atol=atol)
    for key, theta in targets.items():
        analytic = np.stack(rows[key]) if rows[key] else np.zeros((0, theta.size))
        numeric = _numerical_jacobian(lambda: np.asarray(to_numpy(layer64.forward(x64))), theta, eps, y.size)
        report.comparisons.append(compare(f"dy/d{key}", analytic, numeric, rtol, atol))
    layer64.zero_grad()
    return report


def _numerical_jacobian(f: Callable[[], np.ndarray], theta: np.ndarray, eps: float, n_out: int) -> np.ndarray:
    jac = np.zeros((n_out, theta.size))
    for col, i in enumerate(np.ndindex(theta.shape)):
        old = theta[i]
        h = eps * max(1.0, abs(old))
        theta[i] = old + h
        plus = f().ravel().copy()
        theta[i] = old - h
        minus = f().ravel().copy()
        theta[i] = old
        jac[:, col] = (plus - minus) / (2 * h)
    return jac


def check_loss(loss: Any, y: Array, y_hat: Array, *, eps: float = EPS, rtol: float = 1e-6,
               atol: float = 1e-10) -> GradcheckReport:
    """dJ/dŷ of ``loss(y, y_hat)`` against central differences, in float64."""
    from .losses import make_loss

    loss = make_loss(loss)
    y_hat64 = np.array(to_numpy(y_hat), dtype=np.float64)
    y_np = np.asarray(to_numpy(y))
    y64 = np.array(y_np, dtype=np.float64) if y_np.dtype.kind == "f" else np.array(y_np)
    _, analytic = loss(y64, y_hat64)
    numeric = numerical_gradient(lambda: float(loss(y64, y_hat64)[0]), y_hat64, eps)
    report = GradcheckReport("central finite differences (float64)", rtol=rtol, atol=atol)
    report.comparisons.append(compare("dJ/dy_hat", analytic, numeric, rtol, atol))
    return report


def compare_with_torch(net: Any, x: Array, y: Array, loss: Any, *, dtype: Any = np.float64,
                       rtol: float | None = None, atol: float | None = None) -> GradcheckReport:
    """Rebuild ``net`` in PyTorch with the same weights; compare ŷ, J and every gradient.

    Runs in ``dtype`` (float64 by default: rel errors near 1e-15; float32: about 1e-7).
    """
    import torch

    from .losses import make_loss
    from .torch_interop import to_torch, torch_loss

    loss = make_loss(loss)
    dtype = np.dtype(dtype)
    rtol = rtol if rtol is not None else (1e-10 if dtype == np.float64 else 1e-5)
    atol = atol if atol is not None else (1e-12 if dtype == np.float64 else 1e-6)
    mine = copy.deepcopy(net).to("numpy", dtype)
    x_np = np.array(to_numpy(x), dtype=dtype)
    y_np = np.asarray(to_numpy(y))
    y_mine = y_np.astype(dtype) if y_np.dtype.kind in "f" else y_np
    mine.zero_grad()
    y_hat = mine.forward(x_np)
    J = mine.backward_loss(loss, y_mine, input_grad=False)
    dJ_dx = _input_gradient(mine, loss, x_np, y_mine)

    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    fused = mine.fused_pair(loss)
    theirs = to_torch(mine if not fused else without_last(mine), dtype=tdtype)
    xt = torch.tensor(x_np, dtype=tdtype, requires_grad=True)
    out = theirs(xt)
    yt = torch.as_tensor(y_np.astype(np.int64) if y_np.dtype.kind in "iu" else y_np, dtype=None if y_np.dtype.kind in "iu" else tdtype)
    Jt = _fused_torch_loss(loss)(out, yt) if fused else torch_loss(loss)(out, yt)
    Jt.backward()
    y_hat_t = out.detach() if not fused else _apply_last(mine, out.detach())

    report = GradcheckReport(f"PyTorch autograd ({tdtype})", rtol=rtol, atol=atol)
    report.comparisons.append(compare("y_hat", y_hat, y_hat_t.numpy(), rtol, atol))
    report.comparisons.append(compare("J", np.asarray(J), Jt.detach().numpy(), rtol, atol))
    linears = [m for m in theirs if isinstance(m, torch.nn.Linear)]
    for _k, (mod, (suffix, layer)) in enumerate(zip(linears, mine.named_layers()), start=1):
        report.comparisons.append(compare(f"dJ/dW{suffix}", layer.grads["dJ_dW"], _grad(mod.weight), rtol, atol))
        if "dJ_db" in layer.grads:
            report.comparisons.append(compare(f"dJ/db{suffix}", layer.grads["dJ_db"], _grad(mod.bias), rtol, atol))
    report.comparisons.append(compare("dJ/dx", dJ_dx, _grad(xt), rtol, atol))
    return report


def _grad(tensor: Any) -> np.ndarray:
    """A leaf tensor's .grad as NumPy (zeros where backward never reached it)."""
    return np.zeros(tuple(tensor.shape)) if tensor.grad is None else tensor.grad.numpy()


def _fused_torch_loss(loss: Any) -> Any:
    """The torch loss on the output layer's input (logits) for a fused pair."""
    import torch.nn.functional as TF

    from .losses import BCELoss

    if isinstance(loss, BCELoss):
        return lambda z, y: TF.binary_cross_entropy_with_logits(z, y)
    return lambda z, y: TF.cross_entropy(z, y)


def without_last(net: Any) -> Any:
    """A copy of the network without its output layer (its outputs are the logits)."""
    from .model import Sequential

    return Sequential(*copy.deepcopy(net.layers[:-1]))


def _apply_last(net: Any, logits: Any) -> Any:
    import torch

    from .torch_interop import torch_layers

    for mod in torch_layers(net.layers[-1], logits.dtype):
        logits = mod(logits)
    return torch.as_tensor(logits)


__all__ = ["Comparison", "GradcheckReport", "check_layer", "check_loss", "check_network", "compare",
           "compare_with_torch", "numerical_gradient"]
