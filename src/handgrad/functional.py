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
    """y = max(0, x). NaN propagates; relu(-inf) = 0."""
    xp = namespace_of(x)
    return xp.maximum(x, xp.zeros_like(x)), x


def relu_derivative(x: Array) -> Array:
    """1 where x > 0, else 0 (0 at the kink, as PyTorch and JAX)."""
    xp = namespace_of(x)
    return xp.astype(x > 0, x.dtype)


def relu_backward(dJ_dy: Array, x: Array) -> Array:
    """dJ/dx = dJ/dy ⊙ 1[x > 0]."""
    return dJ_dy * relu_derivative(x)


# ---------------------------------------------------------------- LeakyReLU
def leaky_relu_forward(x: Array, negative_slope: float = 0.01) -> tuple[Array, Array]:
    """y = x if x > 0 else negative_slope · x."""
    xp = namespace_of(x)
    return xp.where(x > 0, x, x * negative_slope), x


def leaky_relu_derivative(x: Array, negative_slope: float = 0.01) -> Array:
    """1 where x > 0, else negative_slope (the slope at 0 is negative_slope, as PyTorch)."""
    xp = namespace_of(x)
    one = xp.ones_like(x)
    return xp.where(x > 0, one, one * negative_slope)


def leaky_relu_backward(dJ_dy: Array, x: Array, negative_slope: float = 0.01) -> Array:
    return dJ_dy * leaky_relu_derivative(x, negative_slope)


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
def sigmoid(x: Array) -> Array:
    """σ(x) = 1/(1+e^-x) for x ≥ 0 and e^x/(1+e^x) for x < 0: exp never overflows."""
    xp = namespace_of(x)
    e = xp.exp(-xp.abs(x))  # in (0, 1]
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


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


# ---------------------------------------------------------------- NumPy fast path
# The same losses and gradients as above, for NumPy arrays, written into a reused
# buffer; each returns J. ``Sequential.backward_loss`` uses them once shapes are known.
def mse_into(y: np.ndarray, y_hat: np.ndarray, dJ_dy_hat: np.ndarray, two_over_numel: Any = None) -> Any:
    """J = (1/(N·K)) Σ (ŷ - y)²;  dJ/dŷ = 2(ŷ - y)/(N·K) into dJ_dy_hat.

    ``two_over_numel``: 2/(N·K) as a 0-d array of the dtype, if the caller keeps one (a ufunc
    takes it faster than a Python float, with the same float32 rounding)."""
    return _squared_error_into(y, y_hat, dJ_dy_hat, y_hat.size, two_over_numel)


def squared_error_into(y: np.ndarray, y_hat: np.ndarray, dJ_dy_hat: np.ndarray, reduction: str = "sum") -> Any:
    """J = ||y - ŷ||² [/ N];  dJ/dŷ = -2 (y - ŷ) [/ N] = 2 (ŷ - y) [/ N] into dJ_dy_hat."""
    return _squared_error_into(y, y_hat, dJ_dy_hat, y_hat.shape[0] if reduction == "mean" else 1)


def _squared_error_into(y: np.ndarray, y_hat: np.ndarray, dJ_dy_hat: np.ndarray, n: int, two_over_n: Any = None) -> Any:
    """J = (r·r)/n with r = ŷ - y (vdot reads r as one flat vector); dJ/dŷ = (2/n) r, in place of r."""
    r = np.subtract(y_hat, y, out=dJ_dy_hat)
    J = vdot(r, r) / n
    np.multiply(r, 2.0 / n if two_over_n is None else two_over_n, out=r)
    return J


def bce_with_logits_into(y: np.ndarray, z: np.ndarray, p: np.ndarray, dJ_dz: np.ndarray, scratch: np.ndarray) -> Any:
    """Sigmoid + BCE from the logits z, with p = σ(z) already computed by the forward pass.

    J = (1/(N·K)) Σ [log(1 + e^z) - z y]  (as max(z, 0) + log1p(e^{-|z|}) - z y, which never
    overflows; NumPy's logaddexp computes the same but is several times slower here);
    dJ/dz = (p - y)/(N·K), the 1/(N·K) folded in, written into dJ_dz.
    """
    numel = p.size
    s = np.abs(z, out=scratch)
    np.log1p(np.exp(np.negative(s, out=s), out=s), out=s)
    s += np.maximum(z, 0.0, out=dJ_dz)
    s -= np.multiply(z, y, out=dJ_dz)
    J = s.sum() / numel
    np.subtract(p, y, out=dJ_dz)
    np.multiply(dJ_dz, 1.0 / numel, out=dJ_dz)
    return J


def cross_entropy_with_logits_into(labels: np.ndarray | None, onehot: np.ndarray | None, z: np.ndarray,
                                   p: np.ndarray, dJ_dz: np.ndarray, row_starts: np.ndarray,
                                   flat_index: np.ndarray, scratch: np.ndarray) -> Any:
    """Softmax + cross-entropy from the logits z (N, K), with p = softmax(z) already computed
    by the forward pass; targets as class indices ``labels`` (N,) or rows ``onehot`` (N, K).

    J = (1/N) Σ_n Σ_k y_nk (log Σ_j e^{z_nj} - z_nk), with log Σ_j e^{z_nj} = m_n + log s_n
    (m_n = max_j z_nj, s_n = Σ_j e^{z_nj - m_n}). The forward's p holds e^0/s_n = 1/s_n at the
    arg max, so log s_n = -log max_k p_nk: s_n ∈ [1, K] never under- or overflows. Each
    term is formed as (m_n - z_nk) + log s_n, per row (per entry for target rows) before
    summing, so large logits cancel exactly where the target is the arg max and never across
    the batch.
    dJ/dz = (p - y)/N, the 1/N folded in, written into dJ_dz. ``row_starts`` holds n·K for each
    row n and ``flat_index`` is scratch, both (N,) int64: the targets' positions in the
    flattened (N, K) arrays; ``scratch`` is (N, K) of z's dtype.
    """
    n = z.shape[0]
    row_max = np.maximum.reduce(z, axis=1)  # m_n
    minus_log_s = np.log(np.maximum.reduce(p, axis=1))  # log(1/s_n) = -log s_n
    np.copyto(dJ_dz, p)
    if labels is not None:
        np.add(row_starts, labels, out=flat_index, casting="unsafe")  # row n's target: n·K + y_n
        terms = np.subtract(row_max, z.reshape(-1)[flat_index], out=row_max)  # m_n - z_ny first: exact near 0
        J = np.add.reduce(np.subtract(terms, minus_log_s, out=terms)) / n
        flat = dJ_dz.reshape(-1)
        flat[flat_index] -= 1.0
    else:
        np.subtract(row_max[:, None], z, out=scratch)  # m_n - z_nk, then + log s_n: -log softmax(z)
        np.subtract(scratch, minus_log_s[:, None], out=scratch)
        J = vdot(onehot, scratch) / n
        dJ_dz -= onehot
    np.multiply(dJ_dz, 1.0 / n, out=dJ_dz)
    return J


# ---------------------------------------------------------------- NumPy's products, undispatched
# np.dot and np.vdot first run a Python dispatcher (for __array_function__ overrides) that
# costs ~0.2 µs a call; the fast path hands them nothing but NumPy arrays, so it calls the
# C functions behind them (the same routines, the same results).
dot = getattr(np.dot, "_implementation", np.dot)
vdot = getattr(np.vdot, "_implementation", np.vdot)


# ---------------------------------------------------------------- BLAS routines NumPy does not expose
# NumPy has no fused "θ += α·g": as ufuncs it is a multiply into a scratch array and an
# add, two passes over memory; and "z += b" across rows runs about 3x slower than BLAS's
# rank-1 update. NumPy's wheels bundle OpenBLAS (built as "scipy-openblas", 64-bit
# integers), whose saxpy (θ ← θ + α·g, one pass) and sger (z ← z + 1·bᵀ, the bias add;
# the same sums, bit for bit) we call through ctypes. It is the very library and thread
# pool NumPy's matrix products run on, so the threads do not compete. float32 only:
# axpy rounds θ + α·g once (a fused multiply-add) where the ufuncs round α·g first, so
# results can differ in the last bit; float64, the dtype of gradient checks, keeps the
# textbook rounding of θ - round(lr·g). Where the library is not found (another BLAS or
# build), or ``USE_BLAS`` is False, callers use the ufuncs.
USE_BLAS = True
_BLAS: list = []  # [{"axpy": routine, "ger": routine} or {}], filled on first use
ROW_MAJOR = 101  # CBLAS's CblasRowMajor


def blas_axpy(dtype: np.dtype) -> Any:
    """``saxpy(n, α, g_ptr, 1, θ_ptr, 1)``: θ ← θ + α·g over n contiguous float32 elements;
    None for another dtype or when unavailable."""
    return _blas_routine("axpy", dtype)


def blas_ger(dtype: np.dtype) -> Any:
    """``sger(ROW_MAJOR, N, M, α, u_ptr, 1, v_ptr, 1, z_ptr, M)``: z ← z + α·u vᵀ for a
    C-contiguous float32 z (N, M); None for another dtype or when unavailable."""
    return _blas_routine("ger", dtype)


def _blas_routine(name: str, dtype: np.dtype) -> Any:
    if dtype != np.float32 or not USE_BLAS:
        return None
    if not _BLAS:
        _BLAS.append(_load_blas())
    return _BLAS[0].get(name)


def _load_blas() -> dict:
    import ctypes
    import glob
    import os

    try:
        blas = np.__config__.CONFIG["Build Dependencies"]["blas"]
        if blas.get("name") != "scipy-openblas" or "USE64BITINT" not in str(blas.get("openblas configuration")):
            return {}
        root = os.path.dirname(os.path.abspath(np.__file__))
        paths = sorted(glob.glob(os.path.join(root + ".libs", "*scipy_openblas64_*"))
                       + glob.glob(os.path.join(root, ".dylibs", "*scipy_openblas64_*")))
        if not paths:
            return {}
        lib = ctypes.CDLL(paths[0])
        i64, ptr = ctypes.c_int64, ctypes.c_void_p
        axpy, ger = lib.scipy_cblas_saxpy64_, lib.scipy_cblas_sger64_
        axpy.restype = ger.restype = None
        axpy.argtypes = [i64, ctypes.c_float, ptr, i64, ptr, i64]
        ger.argtypes = [ctypes.c_int, i64, i64, ctypes.c_float, ptr, i64, ptr, i64, ptr, i64]
        # check both on known cases before trusting them
        theta, g = np.arange(6, dtype=np.float32), np.full(6, 2.0, np.float32)
        axpy(6, -0.5, g.ctypes.data, 1, theta.ctypes.data, 1)
        z, u, v = np.zeros((2, 3), np.float32), np.array([1, 2], np.float32), np.array([1, 2, 3], np.float32)
        ger(ROW_MAJOR, 2, 3, 1.0, u.ctypes.data, 1, v.ctypes.data, 1, z.ctypes.data, 3)
        if np.array_equal(theta, np.arange(6, dtype=np.float32) - 1.0) and np.array_equal(z, np.outer(u, v)):
            return {"axpy": axpy, "ger": ger}
        return {}
    except Exception:  # noqa: BLE001 - any failure to find or check them means: use the ufuncs
        return {}
