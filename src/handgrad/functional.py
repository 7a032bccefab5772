r"""Pure forward/backward pairs: the math of every op, with no state.

Each ``*_forward`` returns ``(out, cache)``; the matching ``*_backward`` takes
``dJ/d(out)`` and the cache and returns ``dJ/d(input)`` (and parameter gradients,
in input order). Every function works on NumPy arrays, torch tensors and CuPy
arrays alike through the array API namespace ``xp``. Elementwise activations also
expose their derivative ``*_derivative`` so layers can build explicit Jacobians.

Notation follows the seed: ``z1 = x W1^T + b1``, ``z2 = f(z1)``, ``z3 = z2 W2^T + b2``,
``y_hat = g(z3)``; gradients are ``dJ_dz3`` and so on.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .backend import erf, namespace_of

Array = Any
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
GELU_TANH_COEF = 0.044715
GELU_CLIP = 50.0  # |x| past which GELU is exactly x or 0 in float64 and float32
BCE_LOG_CLAMP = -100.0  # PyTorch's nn.BCELoss clamps each log term here
BCE_GRAD_EPS = 1e-12  # and divides the gradient by max(p(1-p), 1e-12)
_copyto = getattr(np.copyto, "_implementation", np.copyto)  # without the dispatcher: sigmoid runs every step


# ---------------------------------------------------------------- Linear
def linear_forward(x: Array, W: Array, b: Array | None) -> tuple[Array, tuple]:
    """z = x W^T + b.  x (N, in), W (out, in), b (out,) -> z (N, out)."""
    xp = namespace_of(x, W)
    z = xp.matmul(x, W.T)
    if b is not None:
        z = z + b
    return z, (x, W)


def linear_backward(dJ_dz: Array, cache: tuple, need_input_grad: bool = True) -> tuple[Array | None, Array, Array]:
    """dJ/dx = dJ/dz W,  dJ/dW = (dJ/dz)^T x,  dJ/db = sum over the batch of dJ/dz.

    With ``need_input_grad=False`` (a network's first layer) dJ/dx is not computed: None.
    """
    x, W = cache
    xp = namespace_of(dJ_dz, W)
    dJ_dx = xp.matmul(dJ_dz, W) if need_input_grad else None
    dJ_dW = xp.matmul(dJ_dz.T, x)
    dJ_db = xp.sum(dJ_dz, axis=0)
    return dJ_dx, dJ_dW, dJ_db


# ---------------------------------------------------------------- Scale
def scale_forward(x: Array, c: float) -> tuple[Array, float]:
    """y = c x."""
    return x * c, c


def scale_backward(dJ_dy: Array, c: float) -> Array:
    """dJ/dx = c dJ/dy."""
    return dJ_dy * c


# ---------------------------------------------------------------- Identity
def identity_forward(x: Array) -> tuple[Array, None]:
    """y = x (a copy, so later in-place updates of y never touch x)."""
    xp = namespace_of(x)
    return xp.asarray(x, copy=True), None


def identity_backward(dJ_dy: Array, cache: None = None) -> Array:
    return dJ_dy


def identity_derivative(x: Array) -> Array:
    xp = namespace_of(x)
    return xp.ones_like(x)


# ---------------------------------------------------------------- ReLU
def relu_forward(x: Array) -> tuple[Array, Array]:
    """y = max(0, x) (NaN propagates; relu(-inf) = 0); the cache is the slope 1[x > 0]."""
    xp = namespace_of(x)
    return xp.maximum(x, xp.zeros_like(x)), relu_derivative(x)


def relu_derivative(x: Array) -> Array:
    """1 where x > 0, else 0 (0 at the kink, as PyTorch and JAX)."""
    xp = namespace_of(x)
    return xp.astype(x > 0, x.dtype)


def relu_backward(dJ_dy: Array, slope: Array) -> Array:
    """dJ/dx = dJ/dy ⊙ 1[x > 0], with the forward's cached slope 1[x > 0]."""
    return dJ_dy * slope


# ---------------------------------------------------------------- LeakyReLU
def leaky_relu_forward(x: Array, negative_slope: float = 0.01) -> tuple[Array, Array]:
    """y = x if x > 0 else negative_slope · x; the cache is the slope (1 or negative_slope)."""
    xp = namespace_of(x)
    return xp.where(x > 0, x, x * negative_slope), leaky_relu_derivative(x, negative_slope)


def leaky_relu_derivative(x: Array, negative_slope: float = 0.01) -> Array:
    """1 where x > 0, else negative_slope (the slope at 0 is negative_slope, as PyTorch)."""
    xp = namespace_of(x)
    one = xp.ones_like(x)
    return xp.where(x > 0, one, one * negative_slope)


def leaky_relu_backward(dJ_dy: Array, slope: Array) -> Array:
    """dJ/dx = dJ/dy ⊙ slope, with the forward's cached slope (1 where x > 0, else negative_slope)."""
    return dJ_dy * slope


# ---------------------------------------------------------------- Tanh
def tanh_forward(x: Array) -> tuple[Array, Array]:
    """y = tanh(x); the cache is the output y."""
    xp = namespace_of(x)
    y = xp.tanh(x)
    return y, y


def tanh_derivative_from_output(y: Array) -> Array:
    """tanh'(x) = 1 - tanh(x)^2 (not 1 - tanh(x^2))."""
    return 1 - y * y


def tanh_backward(dJ_dy: Array, y: Array) -> Array:
    return dJ_dy * tanh_derivative_from_output(y)


# ---------------------------------------------------------------- Sigmoid
def sigmoid(x: Array, out: Array | None = None, work: tuple[Array, Array] | None = None) -> Array:
    """σ(x) = 1/(1 + e) for x ≥ 0 and e/(1 + e) for x < 0, with e = exp(-|x|) ∈ (0, 1]: exp
    never overflows.

    The one sigmoid of the library. On NumPy arrays the same steps can run into reused
    buffers (the fast path): ``out`` receives σ(x) (it must not be x) and ``work`` is
    ``(denominator, mask)``, a float array and a bool array shaped like x.
    """
    if not isinstance(x, np.ndarray):
        xp = namespace_of(x)
        e = xp.exp(-xp.abs(x))
        return xp.where(x >= 0, xp.ones_like(e), e) / (1 + e)
    if x.ndim == 0:  # ufuncs return scalars for 0-d input; np.copyto needs an array
        return sigmoid(x.reshape(1)).reshape(())
    denominator, mask = work if work is not None else (None, None)
    mask = np.greater_equal(x, 0, out=mask)
    e = np.exp(np.negative(np.abs(x, out=out), out=out), out=out)  # e = exp(-|x|)
    denominator = np.add(e, 1, out=denominator)  # 1 + e
    _copyto(e, 1, where=mask)  # the numerator: 1 where x ≥ 0, else e
    return np.divide(e, denominator, out=e)


def sigmoid_forward(x: Array) -> tuple[Array, Array]:
    y = sigmoid(x)
    return y, y


def sigmoid_derivative_from_output(y: Array) -> Array:
    """σ'(x) = σ(x)(1 - σ(x))."""
    return y * (1 - y)


def sigmoid_backward(dJ_dy: Array, y: Array) -> Array:
    return dJ_dy * sigmoid_derivative_from_output(y)


# ---------------------------------------------------------------- Softplus
def softplus_forward(x: Array) -> tuple[Array, Array]:
    """y = log(1 + e^x), computed as logaddexp(0, x)."""
    xp = namespace_of(x)
    if xp is np:
        with np.errstate(invalid="ignore"):  # NaN in, NaN out, without a warning
            return np.logaddexp(np.zeros_like(x), x), x
    return xp.logaddexp(xp.zeros_like(x), x), x


def softplus_backward(dJ_dy: Array, x: Array) -> Array:
    """softplus'(x) = σ(x)."""
    return dJ_dy * sigmoid(x)


# ---------------------------------------------------------------- GELU
def gelu_forward(x: Array, approximate: str = "none") -> tuple[Array, Array]:
    """Exact: y = x Φ(x), Φ(x) = ½(1 + erf(x/√2)).
    Tanh approximation: y = ½ x (1 + tanh(√(2/π)(x + 0.044715 x³))).
    At the infinities the limits hold: gelu(-inf) = 0, gelu(inf) = inf (never 0·inf = NaN)."""
    xp = namespace_of(x)
    xf, inf = _finite_part(xp, x)
    cdf = None
    if approximate == "tanh":
        xc = xp.clip(xf, -GELU_CLIP, GELU_CLIP)  # beyond it tanh(u) is exactly ±1: no x³ overflow
        u = SQRT_2_OVER_PI * (xc + GELU_TANH_COEF * xc * xc * xc)
        y = 0.5 * xf * (1 + xp.tanh(u))
    else:
        cdf = _normal_cdf(xp, xf)
        y = xf * cdf
    return xp.where(inf, xp.where(x > 0, x, xp.zeros_like(x)), y), (x, cdf)  # Φ(x) kept for the backward


def gelu_derivative(x: Array, approximate: str = "none", cdf: Array | None = None) -> Array:
    """Exact: Φ(x) + x φ(x), φ(x) = e^{-x²/2}/√(2π) (``cdf``: Φ(x) if already known, with
    ±inf entries of x counted as 0, as the forward computes it).
    Tanh: ½(1 + t) + ½ x (1 - t²) √(2/π)(1 + 3·0.044715 x²), t = tanh(u).
    The limits are 0 at -inf and 1 at inf."""
    xp = namespace_of(x)
    xf, inf = _finite_part(xp, x)
    xc = xp.clip(xf, -GELU_CLIP, GELU_CLIP)  # φ(x) and 1 - t² are exactly 0 beyond it
    if approximate == "tanh":
        t = xp.tanh(SQRT_2_OVER_PI * (xc + GELU_TANH_COEF * xc * xc * xc))
        du_dx = SQRT_2_OVER_PI * (1 + 3 * GELU_TANH_COEF * xc * xc)
        d = 0.5 * (1 + t) + 0.5 * xc * (1 - t * t) * du_dx
    else:
        d = (_normal_cdf(xp, xf) if cdf is None else cdf) + xc * INV_SQRT_2PI * xp.exp(-0.5 * xc * xc)
    one = xp.ones_like(x)
    return xp.where(inf, xp.where(x > 0, one, 0 * one), d)


def _finite_part(xp: Any, x: Array) -> tuple[Array, Array]:
    """(x with ±inf replaced by 0, the mask of ±inf), so no 0·inf is ever formed."""
    inf = xp.isinf(x)
    return xp.where(inf, xp.zeros_like(x), x), inf


def gelu_backward(dJ_dy: Array, cache: Any, approximate: str = "none") -> Array:
    """dJ/dx = dJ/dy ⊙ gelu'(x); ``cache`` is the forward's (x, Φ(x)) (or x alone)."""
    x, cdf = cache if isinstance(cache, tuple) else (cache, None)
    return dJ_dy * gelu_derivative(x, approximate, cdf)


def _normal_cdf(xp: Any, x: Array) -> Array:
    return 0.5 * (1 + erf(xp, x * (1 / math.sqrt(2.0))))


# ---------------------------------------------------------------- Softmax
def _shifted(xp: Any, s: Array) -> Array:
    """s - max(s) along the last axis; a non-finite row max is treated as 0, as JAX's
    logsumexp does. So a row holding +inf gets NaN there and a row of only -inf is all NaN
    (other rows are unaffected); the Model, estimator and CLI boundary rejects non-finite input."""
    m = xp.max(s, axis=-1, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    return s - m


def softmax(x: Array, beta: float = 1.0) -> Array:
    """softmax(βx)_i = e^{βx_i} / Σ_j e^{βx_j} along the last axis, max-shifted."""
    xp = namespace_of(x)
    e = xp.exp(_shifted(xp, x * beta if beta != 1.0 else x))
    return e / xp.sum(e, axis=-1, keepdims=True)


def softmax_forward(x: Array, beta: float = 1.0) -> tuple[Array, Array]:
    y = softmax(x, beta)
    return y, y


def softmax_backward(dJ_dy: Array, y: Array, beta: float = 1.0) -> Array:
    """dJ/dx = β y ⊙ (dJ/dy - Σ_j (dJ/dy)_j y_j)  (row by row)."""
    xp = namespace_of(dJ_dy, y)
    inner = xp.sum(dJ_dy * y, axis=-1, keepdims=True)
    return beta * y * (dJ_dy - inner)


def softmax_jacobian(y: Array, beta: float = 1.0) -> Array:
    """Per-sample Jacobian β(diag(y) - y yᵀ), shape (N, D, D)."""
    xp = namespace_of(y)
    eye = xp.eye(y.shape[-1], dtype=y.dtype)
    if not isinstance(y, np.ndarray):
        eye = xp.asarray(eye, device=getattr(y, "device", None))
    return beta * (y[:, :, None] * eye - y[:, :, None] * y[:, None, :])


def log_softmax(x: Array, beta: float = 1.0) -> Array:
    """log softmax(βx) = βx - max - log Σ e^{βx - max}."""
    xp = namespace_of(x)
    s = _shifted(xp, x * beta if beta != 1.0 else x)
    return s - xp.log(xp.sum(xp.exp(s), axis=-1, keepdims=True))


def log_softmax_forward(x: Array, beta: float = 1.0) -> tuple[Array, Array]:
    y = log_softmax(x, beta)
    return y, y


def log_softmax_backward(dJ_dy: Array, y: Array, beta: float = 1.0) -> Array:
    """dJ/dx = β (dJ/dy - softmax(βx) Σ_j (dJ/dy)_j)."""
    xp = namespace_of(dJ_dy, y)
    return beta * (dJ_dy - xp.exp(y) * xp.sum(dJ_dy, axis=-1, keepdims=True))


def log_softmax_jacobian(y: Array, beta: float = 1.0) -> Array:
    """β(I - 1 softmaxᵀ) per sample, shape (N, D, D)."""
    xp = namespace_of(y)
    p = xp.exp(y)
    eye = xp.eye(y.shape[-1], dtype=y.dtype)
    if not isinstance(y, np.ndarray):
        eye = xp.asarray(eye, device=getattr(y, "device", None))
    return beta * (eye[None, :, :] - p[:, None, :])


# ---------------------------------------------------------------- Losses
# Each returns (J, dJ_dy_hat), y first as in the seed: loss(y, y_hat).
def squared_error(y: Array, y_hat: Array, reduction: str = "sum") -> tuple[Array, Array]:
    """J = ||y - ŷ||² summed over everything ('sum') or averaged over the batch ('mean').
    dJ/dŷ = -2 (y - ŷ) (divided by N for 'mean')."""
    xp = namespace_of(y, y_hat)
    r = y - y_hat
    n = y_hat.shape[0] if reduction == "mean" else 1
    return xp.sum(r * r) / n, (-2.0 / n) * r


def mse(y: Array, y_hat: Array) -> tuple[Array, Array]:
    """J = (1/(N·K)) Σ (ŷ - y)² over every element, as F.mse_loss; dJ/dŷ = 2(ŷ - y)/(N·K)."""
    xp = namespace_of(y, y_hat)
    r = y_hat - y
    numel = _numel(y_hat)
    return xp.sum(r * r) / numel, (2.0 / numel) * r


def bce(y: Array, p: Array) -> tuple[Array, Array]:
    """J = -(1/(N·K)) Σ [y log p + (1 - y) log(1 - p)], each log clamped at -100 (nn.BCELoss).
    dJ/dp = (p - y) / max(p (1 - p), 1e-12) / (N·K), which equals
    -(1/(N·K)) (y/p - (1 - y)/(1 - p)) away from the clamp."""
    xp = namespace_of(y, p)
    log_p = xp.clip(xp.log(p), min=BCE_LOG_CLAMP)
    log_1mp = xp.clip(xp.log1p(-p), min=BCE_LOG_CLAMP)
    numel = _numel(p)
    J = -xp.sum(y * log_p + (1 - y) * log_1mp) / numel
    denom = xp.clip(p * (1 - p), min=BCE_GRAD_EPS)
    return J, (p - y) / denom / numel


def bce_with_logits(y: Array, z: Array) -> tuple[Array, Array]:
    """J = mean of max(z, 0) - z y + log(1 + e^{-|z|}), the stable form of BCE(σ(z), y).
    dJ/dz = (σ(z) - y) / (N·K)."""
    xp = namespace_of(y, z)
    numel = _numel(z)
    J = xp.sum(xp.maximum(z, xp.zeros_like(z)) - z * y + xp.log1p(xp.exp(-xp.abs(z)))) / numel
    return J, (sigmoid(z) - y) / numel


def cross_entropy(y: Array, z: Array) -> tuple[Array, Array]:
    """J = -(1/N) Σ_n Σ_k y_nk log softmax(z_n)_k for one-hot (or probability) targets y (N, K).
    dJ/dz = (softmax(z) - y) / N."""
    xp = namespace_of(y, z)
    n = z.shape[0]
    log_p = log_softmax(z)
    J = -xp.sum(y * log_p) / n
    return J, (xp.exp(log_p) - y) / n


def _numel(a: Array) -> int:
    return int(math.prod(a.shape))
