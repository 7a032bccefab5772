r"""Losses: ``loss(y, y_hat) -> (J, dJ_dy_hat)``, the seed's signature (target first).

Every loss validates shapes (no silent broadcasting of (n,) against (n, 1)), reduces
by the mean unless it says otherwise (as PyTorch does), and declares its derivation.
Losses that pair with an output layer into a simpler gradient also give
``fused(y, z)``: the loss and dJ/dz from the output layer's *input* z, e.g.
sigmoid + BCE gives dJ/dz = (σ(z) - y)/(N·K), computed stably from the logits.
A network ending in that pair uses it automatically in ``backward_loss``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import functional as F
from .backend import backend_of, namespace_of, to_numpy
from .derivation import Derivation, Formula
from .layers import Sigmoid, Softmax
from .validation import as_array, check_nonempty, check_same_shape, lookup_name

Array = Any


class Loss:
    """Base class. Subclasses implement ``_compute(y, y_hat) -> (J, dJ_dy_hat)``."""

    derivation: Derivation
    fused_output: type | None = None  # output layer whose input gives a fused gradient
    fused_formula: Formula | None = None
    name = "loss"

    def __call__(self, y: Array, y_hat: Array) -> tuple[Array, Array]:
        return self.forward(y, y_hat)

    def forward(self, y: Array, y_hat: Array) -> tuple[Array, Array]:
        """Return ``(J, dJ/dy_hat)``."""
        y, y_hat = self._prepare(y, y_hat)
        return self._compute(y, y_hat)

    def fused(self, y: Array, z: Array) -> tuple[Array, Array]:  # pragma: no cover - overridden
        raise NotImplementedError(f"{type(self).__name__} has no fused gradient")

    def _prepare(self, y: Array, y_hat: Array) -> tuple[Array, Array]:
        y_hat = as_array(y_hat, "y_hat")
        y = _like(y, y_hat, "y")
        check_same_shape(y, y_hat, type(self).__name__)
        check_nonempty(y_hat, type(self).__name__)
        return y, y_hat

    def _compute(self, y: Array, y_hat: Array) -> tuple[Array, Array]:  # pragma: no cover - abstract
        raise NotImplementedError

    def explain(self, fmt: str = "text", **symbols: Any) -> str:
        return self.derivation.render(fmt, **{"y": "y", "p": ("ŷ", r"\hat{y}"), **symbols})

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _like(y: Array, like: Array, name: str) -> Array:
    """Convert the target to the prediction's backend and dtype."""
    if isinstance(like, np.ndarray):
        return as_array(y, name, like.dtype)
    be = backend_of(like)
    if type(y) is type(like):
        return as_array(y, name, like.dtype)
    return be.asarray(to_numpy(as_array(y, name)), like.dtype)


def _check_unit_interval(a: Array, name: str, loss: str) -> None:
    xp = namespace_of(a)
    lo, hi = float(xp.min(a)), float(xp.max(a))
    if not (lo >= 0.0 and hi <= 1.0):  # also catches NaN
        raise ValueError(f"{loss}: {name} must be in [0, 1]; got min={lo:g}, max={hi:g}")


# ---------------------------------------------------------------------- MSE
class MSELoss(Loss):
    r"""Mean squared error over every element, like ``F.mse_loss``.

    J = (1/(N·K)) Σ_nk (ŷ_nk - y_nk)²;   dJ/dŷ = 2 (ŷ - y) / (N·K)
    """

    name = "mse"
    derivation = Derivation(
        name="MSE loss",
        forward=Formula("J = (1/($N·$K)) Σ_nk (${p}_nk − ${y}_nk)²",
                        r"J = \frac{1}{$N $K} \sum_{n,k} \left({$p}_{nk} - {$y}_{nk}\right)^2"),
        jacobian=Formula("∂J/∂${p}_nk = 2(${p}_nk − ${y}_nk)/($N·$K)",
                         r"\frac{\partial J}{\partial {$p}_{nk}} = \frac{2\left({$p}_{nk} - {$y}_{nk}\right)}{$N $K}"),
        backward=Formula("dJ/d$p = 2($p − $y)/($N·$K)",
                         r"\frac{\partial J}{\partial $p} = \frac{2\left($p - $y\right)}{$N $K}"),
        structure="gradient",
        why="J is a scalar: its Jacobian is one row, the gradient, with one entry per element of ŷ",
        shape_in="(N, K)", shape_out="()",
    )

    def _compute(self, y, y_hat):
        return F.mse(y, y_hat)


class SquaredErrorLoss(Loss):
    r"""The seed's loss ||y - ŷ||², summed over the whole batch (``reduction="sum"``,
    PyTorch's ``MSELoss(reduction='sum')``) or averaged over samples (``"mean"``).

    J = Σ_n ||y_n - ŷ_n||² [/ N];   dJ/dŷ = -2 (y - ŷ) [/ N]
    """

    name = "squared_error"
    REDUCTIONS = ("sum", "mean")

    def __init__(self, reduction: str = "sum") -> None:
        self.reduction = lookup_name("reduction", reduction, {k: k for k in self.REDUCTIONS})
        scale = ("", "") if self.reduction == "sum" else ("(1/$N) ", r"\frac{1}{$N}")
        self.derivation = Derivation(
            name="squared error loss",
            forward=Formula(f"J = {scale[0]}Σ_n ||${{y}}_n − ${{p}}_n||²",
                            rf"J = {scale[1]}\sum_n \left\lVert {{$y}}_n - {{$p}}_n \right\rVert^2"),
            jacobian=Formula(f"∂J/∂${{p}}_nk = −2{scale[0]}(${{y}}_nk − ${{p}}_nk)",
                             rf"\frac{{\partial J}}{{\partial {{$p}}_{{nk}}}} = -2{scale[1]}\left({{$y}}_{{nk}} - {{$p}}_{{nk}}\right)"),
            backward=Formula(f"dJ/d$p = −2{scale[0]}($y − $p)",
                             rf"\frac{{\partial J}}{{\partial $p}} = -2{scale[1]}\left($y - $p\right)"),
            structure="gradient",
            why="J is a scalar: its Jacobian is one row, the gradient −2(y − ŷ)ᵀ",
            shape_in="(N, K)", shape_out="()",
        )

    def _compute(self, y, y_hat):
        return F.squared_error(y, y_hat, self.reduction)

    def __repr__(self):
        return f"SquaredErrorLoss(reduction={self.reduction!r})"


# ---------------------------------------------------------------------- BCE
_BCE_FUSED = Formula("dJ/d$z = (σ($z) − $y)/($N·$K) = ($p − $y)/($N·$K)",
                     r"\frac{\partial J}{\partial $z} = \frac{\sigma($z) - $y}{$N $K} = \frac{$p - $y}{$N $K}")


class BCELoss(Loss):
    r"""Binary cross-entropy on probabilities, like ``nn.BCELoss`` (mean over every element).

    J = -(1/(N·K)) Σ [y log ŷ + (1 - y) log(1 - ŷ)], each log clamped at -100, so ŷ of
    exactly 0 or 1 gives a large but finite loss (100 per confidently wrong element).
    dJ/dŷ = -(1/(N·K)) (y/ŷ - (1 - y)/(1 - ŷ)), computed as (ŷ - y)/max(ŷ(1 - ŷ), 1e-12)/(N·K).
    After a sigmoid the pair fuses: dJ/dz = (ŷ - y)/(N·K).
    """

    name = "bce"
    fused_output = Sigmoid
    fused_formula = _BCE_FUSED
    derivation = Derivation(
        name="binary cross-entropy",
        forward=Formula("J = −(1/($N·$K)) Σ_nk [${y}_nk log ${p}_nk + (1 − ${y}_nk) log(1 − ${p}_nk)]",
                        r"J = -\frac{1}{$N $K} \sum_{n,k} \left[{$y}_{nk} \log {$p}_{nk} + (1 - {$y}_{nk}) \log(1 - {$p}_{nk})\right]"),
        jacobian=Formula("∂J/∂${p}_nk = −(1/($N·$K)) (${y}_nk/${p}_nk − (1 − ${y}_nk)/(1 − ${p}_nk))",
                         r"\frac{\partial J}{\partial {$p}_{nk}} = -\frac{1}{$N $K}\left(\frac{{$y}_{nk}}{{$p}_{nk}} - \frac{1 - {$y}_{nk}}{1 - {$p}_{nk}}\right)"),
        backward=Formula("dJ/d$p = −(1/($N·$K)) ($y/$p − (1 − $y)/(1 − $p))",
                         r"\frac{\partial J}{\partial $p} = -\frac{1}{$N $K}\left(\frac{$y}{$p} - \frac{1 - $y}{1 - $p}\right)"),
        structure="gradient",
        why="J is a scalar; each entry of its gradient depends only on the matching ŷ and y",
        shape_in="(N, K)", shape_out="()",
    )

    def _prepare(self, y, y_hat):
        y, y_hat = super()._prepare(y, y_hat)
        _check_unit_interval(y_hat, "y_hat (probabilities)", "BCELoss")
        _check_unit_interval(y, "y (targets)", "BCELoss")
        return y, y_hat

    def _compute(self, y, y_hat):
        with np.errstate(divide="ignore"):  # log(0) = -inf is clamped to -100 (V10): no warning for a valid input
            return F.bce(y, y_hat)

    def fused(self, y: Array, z: Array) -> tuple[Array, Array]:
        """J and dJ/dz from the sigmoid's input z (stable BCE with logits)."""
        z = as_array(z, "z")
        y = _like(y, z, "y")
        check_same_shape(y, z, "BCELoss")
        check_nonempty(z, "BCELoss")
        _check_unit_interval(y, "y (targets)", "BCELoss")
        return F.bce_with_logits(y, z)


class BCEWithLogitsLoss(Loss):
    r"""BCE on logits z, stable for any finite z:
    J = (1/(N·K)) Σ max(z, 0) - z y + log(1 + e^{-|z|});   dJ/dz = (σ(z) - y)/(N·K)."""

    name = "bce_with_logits"
    derivation = Derivation(
        name="binary cross-entropy with logits",
        forward=Formula("J = (1/($N·$K)) Σ_nk [max(${p}_nk, 0) − ${p}_nk ${y}_nk + log(1 + exp(−|${p}_nk|))]",
                        r"J = \frac{1}{$N $K} \sum_{n,k} \left[\max({$p}_{nk}, 0) - {$p}_{nk} {$y}_{nk} + \log\left(1 + e^{-|{$p}_{nk}|}\right)\right]"),
        jacobian=Formula("∂J/∂${p}_nk = (σ(${p}_nk) − ${y}_nk)/($N·$K)",
                         r"\frac{\partial J}{\partial {$p}_{nk}} = \frac{\sigma({$p}_{nk}) - {$y}_{nk}}{$N $K}"),
        backward=Formula("dJ/d$p = (σ($p) − $y)/($N·$K)",
                         r"\frac{\partial J}{\partial $p} = \frac{\sigma($p) - $y}{$N $K}"),
        structure="gradient",
        why="J is a scalar; each gradient entry depends only on the matching logit and target",
        shape_in="(N, K)", shape_out="()",
    )

    def _prepare(self, y, y_hat):
        y, y_hat = super()._prepare(y, y_hat)
        _check_unit_interval(y, "y (targets)", "BCEWithLogitsLoss")
        return y, y_hat

    def _compute(self, y, z):
        return F.bce_with_logits(y, z)


# ---------------------------------------------------------------------- CE
class CrossEntropyLoss(Loss):
    r"""Cross-entropy on logits z (N, C), like ``nn.CrossEntropyLoss`` (mean over N).

    Targets are class indices (N,) or one-hot / probability rows (N, C).
    J = -(1/N) Σ_n log softmax(z_n)_{y_n};   dJ/dz = (softmax(z) - onehot(y))/N.
    After a Softmax layer the same formula is applied to the softmax's input.
    """

    name = "cross_entropy"
    fused_output = Softmax
    fused_formula = Formula("dJ/d$z = (softmax($z) − $y)/$N = ($p − $y)/$N",
                            r"\frac{\partial J}{\partial $z} = \frac{\mathrm{softmax}($z) - $y}{$N} = \frac{$p - $y}{$N}")
    derivation = Derivation(
        name="cross-entropy (on logits)",
        forward=Formula("J = −(1/$N) Σ_n Σ_k ${y}_nk log softmax(${p}_n)_k",
                        r"J = -\frac{1}{$N} \sum_n \sum_k {$y}_{nk} \log \mathrm{softmax}({$p}_n)_k"),
        jacobian=Formula("∂J/∂${p}_nk = (softmax(${p}_n)_k − ${y}_nk)/$N",
                         r"\frac{\partial J}{\partial {$p}_{nk}} = \frac{\mathrm{softmax}({$p}_n)_k - {$y}_{nk}}{$N}"),
        backward=Formula("dJ/d$p = (softmax($p) − $y)/$N",
                         r"\frac{\partial J}{\partial $p} = \frac{\mathrm{softmax}($p) - $y}{$N}"),
        structure="gradient",
        why="J is a scalar; the log-softmax couples the logits of one sample, not across samples",
        shape_in="(N, C)", shape_out="()",
    )

    def _prepare(self, y, z):
        z = as_array(z, "z (logits)")
        if len(z.shape) != 2 or z.shape[1] < 2:
            raise ValueError(f"CrossEntropyLoss expects logits of shape (N, C) with C >= 2 classes, got {tuple(z.shape)}")
        check_nonempty(z, "CrossEntropyLoss")
        return self._targets(y, z), z

    def _targets(self, y: Array, z: Array) -> Array:
        n, n_classes = z.shape
        y_np = to_numpy(y) if not isinstance(y, (list, tuple)) else np.asarray(y)
        if y_np.ndim == 1 or (y_np.ndim == 2 and y_np.shape[1] == 1 and n_classes != 1):
            return self._one_hot(y_np.reshape(-1), n, n_classes, z)
        y_arr = _like(y, z, "y")
        check_same_shape(y_arr, z, "CrossEntropyLoss")
        _check_unit_interval(y_arr, "y (one-hot or probability rows)", "CrossEntropyLoss")
        xp = namespace_of(y_arr)
        sums = to_numpy(xp.sum(y_arr, axis=1))
        if not np.allclose(sums, 1.0, atol=1e-6):
            bad = int(np.argmax(np.abs(sums - 1.0)))
            raise ValueError(f"CrossEntropyLoss: one-hot rows must sum to 1; row {bad} sums to {sums[bad]:g}")
        return y_arr

    @staticmethod
    def _one_hot(labels: np.ndarray, n: int, n_classes: int, like: Array) -> Array:
        if labels.shape[0] != n:
            raise ValueError(f"CrossEntropyLoss: got {labels.shape[0]} targets for {n} rows of logits")
        if labels.dtype.kind == "f":
            if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
                raise ValueError("CrossEntropyLoss: targets must be integer class indices (or one-hot rows)")
        elif labels.dtype.kind not in "iu":
            raise ValueError(f"CrossEntropyLoss: targets must be integer class indices, got dtype {labels.dtype}")
        labels = labels.astype(np.int64)
        bad = labels[(labels < 0) | (labels >= n_classes)]
        if bad.size:
            raise ValueError(f"CrossEntropyLoss: target {int(bad[0])} is out of range for {n_classes} classes")
        onehot = np.zeros((n, n_classes), dtype=np.dtype(str(like.dtype).replace("torch.", "")))
        onehot[np.arange(n), labels] = 1
        return backend_of(like).asarray(onehot, onehot.dtype)

    def _compute(self, y, z):
        return F.cross_entropy(y, z)

    def fused(self, y: Array, z: Array) -> tuple[Array, Array]:
        y, z = self._prepare(y, z)
        return F.cross_entropy(y, z)


LOSSES: dict[str, Any] = {
    "mse": MSELoss,
    "squared_error": SquaredErrorLoss,
    "sse": SquaredErrorLoss,
    "bce": BCELoss,
    "bce_with_logits": BCEWithLogitsLoss,
    "cross_entropy": CrossEntropyLoss,
    "ce": CrossEntropyLoss,
}


def make_loss(spec: Any) -> Loss:
    """A loss from a name ('mse', 'squared_error', 'bce', 'bce_with_logits', 'cross_entropy') or a Loss."""
    if isinstance(spec, Loss):
        return spec
    return lookup_name("loss", spec, LOSSES)()


def loss_symbols(y_hat_shape: tuple) -> dict[str, str]:
    """N and K for a loss derivation, from the prediction's shape."""
    n = y_hat_shape[0] if len(y_hat_shape) else 1
    k = math.prod(y_hat_shape[1:]) if len(y_hat_shape) > 1 else 1
    return {"N": str(n), "K": str(k)}


__all__ = [
    "LOSSES", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "Loss", "MSELoss", "SquaredErrorLoss", "make_loss",
]
