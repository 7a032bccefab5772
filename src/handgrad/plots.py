r"""Figures with matplotlib (the Agg renderer; no window, no global pyplot state).

- :func:`plot_activations`: activations and their derivatives, the derivatives taken
  from each layer's own ``derivative()`` (the seed's 1.3(c): GELU, LeakyReLU(0.01),
  ReLU and Tanh on one figure);
- :func:`plot_softmax`: softmax(βx) approaching the one-hot arg max as β grows, beside
  max and arg max (1.3(a));
- :func:`plot_loss_curve`: training (and validation) loss per epoch;
- :func:`plot_decision_boundary`: the decision regions of a 2-D classifier;
- :func:`plot_linear_maps`: what rotation, reflection, scaling, shearing and a
  translation do to a grid, beside a tanh and a ReLU layer, and a stack of linear
  layers collapsing into one affine map (1.3(d)).

Each saves PNG or SVG (from the suffix, or ``fmt``) at ``size`` inches × ``dpi`` and
returns a :class:`Plot` with the data it drew, so tests can check the figure's content.
matplotlib is imported only here.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .backend import to_numpy

FORMATS = ("png", "svg", "pdf")
DEFAULT_ACTIVATIONS = ("gelu", "leaky_relu", "relu", "tanh")


@dataclass
class Plot:
    """A saved figure: where, in which format and size, and what it shows.

    ``series`` maps a label to the (x, y) data drawn; ``titles`` are the panels' titles;
    ``info`` holds numbers the figure states (e.g. the composed affine map's error).
    """

    path: Path
    format: str
    size_px: tuple[int, int]
    series: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    titles: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


# ====================================================================== figure plumbing
MAX_SIDE_PX = 16384  # a larger raster figure exhausts memory inside the renderer (std::bad_alloc)
MAX_PIXELS = 64_000_000


def _figure(size: Sequence[float], dpi: float) -> Any:
    from .optional import require

    Figure = require("matplotlib.figure", extra="plot", purpose="drawing a figure").Figure
    size = _check_size(size)
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not math.isfinite(dpi) or dpi <= 0:
        raise ValueError(f"dpi must be a positive number, got {dpi!r}")
    w, h = size[0] * dpi, size[1] * dpi
    if max(w, h) > MAX_SIDE_PX or w * h > MAX_PIXELS:
        raise ValueError(f"dpi {dpi:g} is too large for a {size[0]:g}x{size[1]:g} inch figure: it would be "
                         f"{w:.0f}×{h:.0f} px; the most is {MAX_SIDE_PX} px a side and {MAX_PIXELS:,} px in all "
                         f"(try dpi <= {int(min(MAX_SIDE_PX / max(size), (MAX_PIXELS / (size[0] * size[1])) ** 0.5))})")
    return Figure(figsize=size, dpi=dpi)


def _check_size(size: Any) -> tuple[float, float]:
    try:
        w, h = (float(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (width, height) in inches, got {size!r}") from None
    if not (math.isfinite(w) and math.isfinite(h) and w > 0 and h > 0):
        raise ValueError(f"size must be two positive numbers of inches, got {size!r}")
    return w, h


def _target(path: str | Path, fmt: str | None) -> tuple[Path, str]:
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".") or "png").lower()
    if fmt not in FORMATS:
        raise ValueError(f"image format must be one of {', '.join(FORMATS)}, got {fmt!r} (from {str(path)!r})")
    if path.is_dir():
        raise ValueError(f"{path} is a directory; give a file name such as plot.png")
    if not path.parent.exists():
        raise FileNotFoundError(f"the folder {path.parent} does not exist")
    return path, fmt


def _save(fig: Any, path: Path, fmt: str, dpi: float) -> tuple[int, int]:
    """Render in memory, then write atomically: never through a link or onto a device (handgrad.outputs)."""
    import io

    from .outputs import replace_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi)
    replace_bytes(path, buffer.getvalue(), what="plot")
    w, h = fig.get_size_inches()
    return int(round(w * dpi)), int(round(h * dpi))


# ====================================================================== activations (1.3(c))
def _activation_label(layer: Any) -> str:
    name = layer.derivation.name if getattr(layer, "derivation", None) else type(layer).__name__
    if hasattr(layer, "negative_slope"):
        name += f"({layer.negative_slope:g})"
    scale = getattr(layer, "scale", 1.0)
    return (f"{scale:g}·" if scale != 1.0 else "") + name


def plot_activations(path: str | Path, names: Sequence[Any] = DEFAULT_ACTIVATIONS, *,
                     x_range: tuple[float, float] = (-4.0, 4.0), size: Sequence[float] = (11, 4.2), dpi: float = 100,
                     fmt: str | None = None) -> Plot:
    """Each activation f (top row) over its derivative f′ (bottom row), one column per function.

    ``names`` are registry names ('gelu', 'leaky_relu', '5relu', ...) or Layer objects;
    the derivative is the layer's own ``derivative(x)``, the diagonal of its Jacobian.
    A jump in f′ is drawn as a gap, not a vertical line; at a jump, open dots mark the
    one-sided limits and a filled dot the value the layer uses there (ReLU′(0) = 0).
    ``info["jumps"]`` lists them as (label, x, left limit, right limit, value).
    """
    from . import make_activation
    from .layers import Activation

    path, fmt = _target(path, fmt)
    lo, hi = (float(v) for v in x_range)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"x_range must be (low, high) with low < high, got {x_range!r}")
    if not names:
        raise ValueError("give at least one activation name")
    x = np.linspace(lo, hi, 801)
    fig = _figure(size, dpi)
    axes = np.asarray(fig.subplots(2, len(names), squeeze=False))
    plot = Plot(path, fmt, (0, 0), titles=["activation f(x)", "derivative f′(x) (the layer's derivative())"])
    plot.info["jumps"] = []
    for i, spec in enumerate(names):
        layer = make_activation(spec)
        if not isinstance(layer, Activation):
            raise ValueError(f"plot_activations draws elementwise activations, got {spec!r}")
        label = _activation_label(layer)
        y = np.asarray(to_numpy(layer.forward(x[None, :])), dtype=np.float64)[0]
        d = np.asarray(to_numpy(layer.derivative(x[None, :])), dtype=np.float64)[0]
        ax_f, ax_d = axes[0, i], axes[1, i]
        ax_f.plot(x, y, lw=2)
        ax_d.plot(x, _gaps(x, d), lw=2)
        plot.series[label] = (x, y)
        plot.series[f"{label}′"] = (x, d)
        _mark_jumps(ax_d, layer, label, x, d, plot.info["jumps"])
        ax_f.set_title(label)
        ax_d.set_title(f"{label}′")
        for ax in (ax_f, ax_d):
            ax.axhline(0, color="0.7", lw=0.8)
            ax.axvline(0, color="0.7", lw=0.8)
            ax.grid(alpha=0.3)
        ax_d.set_xlabel("x")
    fig.tight_layout()
    plot.size_px = _save(fig, path, fmt, dpi)
    return plot


def _gaps(x: np.ndarray, d: np.ndarray) -> np.ndarray:
    """d with NaN between two samples where it jumps, so a jump is a gap, not a vertical line."""
    out = d.astype(np.float64).copy()
    step = np.abs(np.diff(d))
    smooth = np.median(step) + 1e-9
    jumps = np.flatnonzero(step > 50 * smooth + 1e-3)
    out[jumps] = np.nan  # drop the sample before each jump (801 samples: invisible)
    return out


def _mark_jumps(ax: Any, layer: Any, label: str, x: np.ndarray, d: np.ndarray, found: list) -> None:
    """Open dots at the one-sided limits, a filled dot at the value used, where f′ jumps (e.g. at 0)."""
    step = np.abs(np.diff(d))
    for j in np.flatnonzero(step > 50 * (np.median(step) + 1e-9) + 1e-3):
        x0 = 0.0 if x[j] <= 0.0 <= x[j + 1] else float((x[j] + x[j + 1]) / 2)
        probe = np.array([[x0 - 1e-9, x0 + 1e-9, x0]])
        left, right, value = (float(v) for v in np.asarray(to_numpy(layer.derivative(probe)), dtype=np.float64)[0])
        ax.plot([x0, x0], [left, right], "o", mfc="white", mec="C0", ms=6, zorder=3)
        ax.plot([x0], [value], "o", color="C0", ms=6, zorder=4)
        found.append((label, x0, left, right, value))


# ====================================================================== gradient flow (1.2(c))
def plot_gradient_flow(path: str | Path, flow: Mapping[str, Sequence[float]], *, size: Sequence[float] = (10, 4),
                       dpi: float = 100, fmt: str | None = None) -> Plot:
    """‖dJ/dz‖ layer by layer (log scale, input side on the left) for each activation, beside the share
    of dead ReLU units per layer. ``flow`` is :func:`handgrad.explain.homework.gradient_flow`'s result."""
    path, fmt = _target(path, fmt)
    names = [k for k in flow if k != "dead_relu"]
    if not names:
        raise ValueError(f"flow must hold at least one activation's norms, got keys {list(flow)}")
    fig = _figure(size, dpi)
    ax_n, ax_d = fig.subplots(1, 2)
    plot = Plot(path, fmt, (0, 0), titles=["‖dJ/dz‖ by layer (input side first)", "share of dead ReLUs"])
    for name in names:
        norms = np.asarray(flow[name], dtype=np.float64)
        layers = np.arange(1, norms.size + 1)
        ax_n.semilogy(layers, norms, "o-", label=name)
        plot.series[name] = (layers, norms)
    ax_n.set_xlabel("layer")
    ax_n.legend()
    dead = np.asarray(flow.get("dead_relu", []), dtype=np.float64)
    if dead.size:
        ax_d.bar(np.arange(1, dead.size + 1), dead, color="C2")
        plot.series["dead_relu"] = (np.arange(1, dead.size + 1), dead)
    ax_d.set_ylim(0, 1)
    ax_d.set_xlabel("layer")
    for ax, title in zip((ax_n, ax_d), plot.titles):
        ax.set_title(title)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    plot.size_px = _save(fig, path, fmt, dpi)
    return plot


# ====================================================================== softmax (1.3(a))
def plot_softmax(path: str | Path, x: Sequence[float] = (1.0, 3.0, 2.0, 0.5), *,
                 betas: Sequence[float] = (0.25, 1.0, 2.0, 5.0, 20.0), size: Sequence[float] = (13, 4.2),
                 dpi: float = 100, fmt: str | None = None) -> Plot:
    """softmax(βx) for growing β beside its limit, the one-hot arg max; and Σ softmax(βx)_i x_i → max x.

    The seed called softargmax "the largest element out of softmax"; it is a smooth
    *arg max*: a probability vector tending to the one-hot vector of the largest input.
    """
    from .explain import one_hot_argmax, softargmax

    path, fmt = _target(path, fmt)
    xv = np.asarray(x, dtype=np.float64)
    if xv.ndim != 1 or xv.size < 2 or not np.all(np.isfinite(xv)):
        raise ValueError(f"x must be a finite vector of at least 2 numbers, got {x!r}")
    betas = [float(b) for b in betas]
    if not betas or any(not (math.isfinite(b) and b > 0) for b in betas):
        raise ValueError(f"betas must be positive numbers, got {betas!r}")
    fig = _figure(size, dpi)
    ax_bar, ax_beta, ax_max = fig.subplots(1, 3)
    plot = Plot(path, fmt, (0, 0), titles=["softmax(βx) and arg max (one-hot)", "each softmax(βx)_i as β grows",
                                           "Σ_i softmax(βx)_i x_i → max(x)"])
    idx = np.arange(xv.size)
    width = 0.8 / (len(betas) + 1)
    for j, beta in enumerate(betas):
        p = softargmax(xv, beta)
        ax_bar.bar(idx + j * width, p, width, label=f"β = {beta:g}")
        plot.series[f"softmax β={beta:g}"] = (idx.astype(float), p)
    hot = one_hot_argmax(xv)
    ax_bar.bar(idx + len(betas) * width, hot, width, color="black", label="arg max (one-hot)")
    plot.series["arg max (one-hot)"] = (idx.astype(float), hot)
    ax_bar.set_xticks(idx + 0.4 - width / 2, [f"x{i + 1}={v:g}" for i, v in enumerate(xv)])
    ax_bar.legend(fontsize=8)
    grid = np.logspace(-2, 2, 200)
    probs = np.stack([softargmax(xv, b) for b in grid])
    for i in range(xv.size):
        ax_beta.semilogx(grid, probs[:, i], lw=2, label=f"i = {i + 1} (x = {xv[i]:g})")
        plot.series[f"softmax_{i + 1}(β)"] = (grid, probs[:, i])
    ax_beta.set_xlabel("β")
    ax_beta.legend(fontsize=8)
    soft_max = probs @ xv
    ax_max.semilogx(grid, soft_max, lw=2, label="Σ softmax(βx)_i x_i")
    ax_max.axhline(xv.max(), color="black", ls="--", label=f"max(x) = {xv.max():g}")
    ax_max.set_xlabel("β")
    ax_max.legend(fontsize=8)
    plot.series["soft max value"] = (grid, soft_max)
    for ax, title in zip((ax_bar, ax_beta, ax_max), plot.titles):
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    plot.info = {"argmax": int(np.argmax(xv)), "max": float(xv.max()),
                 "distance_to_onehot": {b: float(np.abs(softargmax(xv, b) - hot).max()) for b in betas}}
    plot.size_px = _save(fig, path, fmt, dpi)
    return plot


# ====================================================================== loss curve
def history_records(history: Any) -> list[dict[str, float]]:
    """Per-epoch dicts from a history: a list of dicts, an object with ``.records``, a dict
    with "records" or of columns ({"loss": [...], "val_loss": [...]}), a list of numbers,
    or a JSON / JSON-lines / CSV file holding one of these."""
    if isinstance(history, (str, Path)):
        return history_records(_read_history_file(Path(history)))
    if hasattr(history, "records"):
        history = history.records
    if isinstance(history, dict):
        if "records" in history:
            history = history["records"]
        elif "history" in history:
            history = history["history"]
        else:
            cols = {k: list(v) for k, v in history.items() if isinstance(v, (list, tuple, np.ndarray))}
            if "loss" not in cols:
                raise ValueError(f"a history dict needs a 'loss' column or 'records'; got keys {sorted(history)}")
            history = [{k: v[i] for k, v in cols.items() if i < len(v)} for i in range(len(cols["loss"]))]
    try:
        records = list(history)
    except TypeError:
        raise TypeError(f"history must be a list of per-epoch dicts (or have .records), got {type(history).__name__}") from None
    out = []
    for i, r in enumerate(records):
        if isinstance(r, (int, float, np.floating)) and not isinstance(r, bool):
            r = {"loss": float(r)}
        if not isinstance(r, dict) or "loss" not in r:
            raise ValueError(f"history entry {i} must be a dict with a 'loss' (or a number), got {r!r}")
        out.append({k: float(v) for k, v in r.items() if isinstance(v, (int, float, np.floating)) and not isinstance(v, bool)})
    if not out:
        raise ValueError("the history is empty: nothing to plot")
    return out


MAX_HISTORY_BYTES = 256 * 1024 * 1024


def _read_history_file(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"no such history file: {path}")
    if path.stat().st_size > MAX_HISTORY_BYTES:
        raise ValueError(f"{path}: {path.stat().st_size} bytes is too large for a history file "
                         f"(limit {MAX_HISTORY_BYTES}); give the JSON, JSON lines or CSV history")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        with open(path, "rb") as fh:
            head = fh.read(16)
        what = " (it looks like a model file; plot a history saved as JSON or CSV)" if head[8:10] == b'{"' else ""
        raise ValueError(f"{path}: not a history file: it is binary, not JSON, JSON lines or CSV text{what}") from None
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        try:
            return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in rows]
        except ValueError as exc:
            raise ValueError(f"{path}: non-numeric value in the history CSV ({exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON, JSON lines or CSV ({exc})") from None


def plot_loss_curve(history: Any, path: str | Path, *, size: Sequence[float] = (6.4, 4.2), dpi: float = 100,
                    fmt: str | None = None, title: str = "training loss", log: bool | None = None) -> Plot:
    """The loss per epoch (and 'val_loss' when recorded); the best epoch is marked when known.

    ``log``: a log-scale y axis (default: when all losses are positive and span over 100×).
    """
    path, fmt = _target(path, fmt)
    records = history_records(history)
    best = getattr(history, "best_epoch", None) if not isinstance(history, dict) else history.get("best_epoch")
    epochs = np.array([r.get("epoch", i + 1) for i, r in enumerate(records)], dtype=np.float64)
    fig = _figure(size, dpi)
    ax = fig.subplots()
    plot = Plot(path, fmt, (0, 0), titles=[title])
    for key, label in (("loss", "training loss"), ("val_loss", "validation loss")):
        vals = np.array([r.get(key, np.nan) for r in records], dtype=np.float64)
        if np.all(np.isnan(vals)):
            continue
        ax.plot(epochs, vals, "-o" if len(vals) < 30 else "-", ms=3, lw=1.8, label=label)
        plot.series[label] = (epochs, vals)
    if isinstance(best, (int, np.integer)) and 1 <= best <= len(records):
        ax.axvline(epochs[best - 1], color="0.5", ls=":", label=f"best epoch {best}")
    finite = np.concatenate([v[np.isfinite(v)] for _, v in plot.series.values()])
    if log is None:
        log = finite.size > 0 and finite.min() > 0 and finite.max() / finite.min() > 100
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    plot.size_px = _save(fig, path, fmt, dpi)
    return plot


# ====================================================================== decision boundary
def _decide(model: Any, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(class index per row, a continuous score for 2 classes or None)."""
    from .inference import Predictor, decide
    from .model import Sequential

    if isinstance(model, (Sequential, Predictor)):
        return decide(model, Z)
    if hasattr(model, "predict"):
        pred = np.asarray(model.predict(Z))
        return (pred.reshape(-1) if pred.ndim > 1 and pred.shape[1] == 1 else pred), None
    if callable(model):
        return np.asarray(model(Z)).reshape(-1), None
    raise TypeError(f"model must be a handgrad network, an object with predict(), or a function; got {type(model).__name__}")


def _labels(y: Any, n: int) -> np.ndarray:
    y = np.asarray(to_numpy(y))
    if y.ndim == 2 and y.shape[1] > 1:
        y = np.argmax(y, axis=1)
    y = y.reshape(-1)
    if y.shape[0] != n:
        raise ValueError(f"y has {y.shape[0]} labels for {n} rows of X")
    return y


def plot_decision_boundary(net: Any, X: Any, y: Any, path: str | Path, *, resolution: int = 200,
                           size: Sequence[float] = (5.5, 5), dpi: float = 100, fmt: str | None = None,
                           title: str = "decision boundary") -> Plot:
    """The regions where a 2-D classifier predicts each class, with the data on top.

    ``net``: a handgrad network (one output: class 1 where the sigmoid is ≥ 0.5, or the
    score ≥ 0 without a sigmoid; several outputs: the arg max), any object with
    ``predict(X)`` (an estimator), or a function X -> labels.
    """
    path, fmt = _target(path, fmt)
    X = np.asarray(to_numpy(X), dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary needs 2-D inputs X of shape (N, 2), got {X.shape}")
    if X.shape[0] == 0 or not np.all(np.isfinite(X)):
        raise ValueError("X must be non-empty and finite")
    labels = _labels(y, X.shape[0])
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an int >= 2, got {resolution!r}")
    pad = 0.1 * (X.max(axis=0) - X.min(axis=0)) + 1e-9
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    classes, score = _decide(net, grid)
    fig = _figure(size, dpi)
    ax = fig.subplots()
    cz = classes.reshape(gx.shape).astype(float)
    n_classes = int(max(cz.max(), labels.max() if labels.size else 0)) + 1
    ax.contourf(gx, gy, cz, levels=np.arange(n_classes + 1) - 0.5, cmap="coolwarm" if n_classes == 2 else "tab10",
                alpha=0.25)
    if score is not None:
        ax.contour(gx, gy, score.reshape(gx.shape), levels=[0.0], colors="black", linewidths=1.5)
    ax.scatter(X[:, 0], X[:, 1], c=labels, cmap="coolwarm" if n_classes == 2 else "tab10", s=14,
               edgecolors="black", linewidths=0.3, vmin=0, vmax=max(n_classes - 1, 1))
    ax.set_title(title)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    fig.tight_layout()
    plot = Plot(path, fmt, (0, 0), titles=[title])
    data_pred, _ = _decide(net, X)
    plot.info = {"accuracy": float(np.mean(data_pred.reshape(-1) == labels)), "classes_in_grid": sorted(set(classes.tolist()))}
    plot.series["regions"] = (grid, classes)
    plot.size_px = _save(fig, path, fmt, dpi)
    return plot


# ====================================================================== linear maps (1.3(d))
def linear_maps(angle: float = math.pi / 6) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Named 2-D maps as (A, t), acting as p ↦ A p + t; only the translation has t ≠ 0."""
    c, s = math.cos(angle), math.sin(angle)
    zero = np.zeros(2)
    return {
        f"rotation by {math.degrees(angle):g}° (linear)": (np.array([[c, -s], [s, c]]), zero),
        "reflection across y = x (linear)": (np.array([[0.0, 1.0], [1.0, 0.0]]), zero),
        "scaling by (1.6, 0.5) (linear)": (np.diag([1.6, 0.5]), zero),
        "shearing, x += 0.8 y (linear)": (np.array([[1.0, 0.8], [0.0, 1.0]]), zero),
        "translation by (0.6, 0.3): affine, NOT linear (moves 0)": (np.eye(2), np.array([0.6, 0.3])),
    }


def _grid_lines(n: int = 9, points: int = 60) -> list[np.ndarray]:
    t = np.linspace(-1, 1, points)
    ticks = np.linspace(-1, 1, n)
    return [np.column_stack([np.full_like(t, v), t]) for v in ticks] + [np.column_stack([t, np.full_like(t, v)]) for v in ticks]


def _basis_arrows(ax: Any, fn: Any) -> None:
    pts = fn(np.array([[0.0, 0.0], [0.5, 0.0], [0.0, 0.5]]))
    ax.plot(pts[0, 0], pts[0, 1], "ko", ms=5)
    for k, color in ((1, "tab:red"), (2, "tab:purple")):
        ax.annotate("", xy=pts[k], xytext=pts[0], arrowprops={"arrowstyle": "->", "color": color, "lw": 2})


def plot_linear_maps(path: str | Path, *, seed: Any = 0, size: Sequence[float] = (13, 9.5), dpi: float = 90,
                     fmt: str | None = None) -> Plot:
    """A grid under each linear map and a translation, a tanh and a ReLU layer, and a stack
    of three Linear layers beside the single affine map :func:`handgrad.explain.compose_affine`
    computes from them (their difference is stated in the panel and in ``info``)."""
    from . import Linear, ReLU, Tanh
    from .explain import compose_affine
    from .validation import make_rng

    path, fmt = _target(path, fmt)
    rng = make_rng(seed)
    lines = _grid_lines()
    fig = _figure(size, dpi)
    axes = fig.subplots(3, 3).ravel()
    plot = Plot(path, fmt, (0, 0))
    panels: list[tuple[str, Any]] = [("the grid", lambda p: p)]
    for name, (A, t) in linear_maps().items():
        panels.append((name, lambda p, A=A, t=t: p @ A.T + t))
    layer = Linear(2, 2, seed=rng, dtype=np.float64)
    layer.params["W"][...] = np.array([[1.8, 0.6], [-0.5, 1.5]])
    layer.params["b"][...] = np.array([0.3, -0.2])
    tanh, relu = Tanh(), ReLU()
    panels.append(("tanh layer: tanh(W p + b) bends lines", lambda p: np.asarray(tanh.forward(layer.forward(p)))))
    panels.append(("ReLU layer: max(0, W p + b) folds the plane", lambda p: np.asarray(relu.forward(layer.forward(p)))))
    stack = [Linear(2, 2, seed=rng, dtype=np.float64) for _ in range(3)]
    for lin in stack:  # well-conditioned random maps, so the picture is not a sliver
        lin.params["W"][...] = np.eye(2) + 0.45 * rng.standard_normal((2, 2))
        lin.params["b"][...] = 0.3 * rng.standard_normal(2)
    W, b = compose_affine(stack)

    def through(p: np.ndarray) -> np.ndarray:
        for lin in stack:
            p = np.asarray(lin.forward(p))
        return p

    err = max(float(np.abs(through(seg) - (seg @ W.T + b)).max()) for seg in lines)
    for ax, (name, fn) in zip(axes, panels):
        for k, seg in enumerate(lines):
            out = fn(seg)
            ax.plot(out[:, 0], out[:, 1], color="tab:blue" if k < len(lines) // 2 else "tab:orange", lw=1)
        _basis_arrows(ax, fn)
        plot.series[name] = (lines[0], fn(lines[0]))
    ax = axes[len(panels)]
    for seg in lines:
        a, c = through(seg), seg @ W.T + b
        ax.plot(a[:, 0], a[:, 1], color="tab:green", lw=3, alpha=0.5)
        ax.plot(c[:, 0], c[:, 1], "k--", lw=0.8)
    _basis_arrows(ax, lambda p: p @ W.T + b)
    name = f"3 Linear layers (green) = 1 affine map (dashed)\nW = W3 W2 W1, b = W3(W2 b1 + b2) + b3; max diff {err:.0e}"
    plot.series[name] = (lines[0], through(lines[0]))
    for ax, title in zip(axes, [p[0] for p in panels] + [name]):
        ax.set_title(title, fontsize=9)
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.2)
        plot.titles.append(title)
    fig.suptitle("what maps do to a grid: the dot is where the origin goes, the arrows where e1 (red) and e2 "
                 "(purple) go", fontsize=11)
    fig.tight_layout()
    plot.info = {"composed_W": W, "composed_b": b, "stack_vs_affine_max_error": err}
    plot.size_px = _save(fig, path, fmt, dpi)
    return plot


__all__ = ["DEFAULT_ACTIVATIONS", "FORMATS", "Plot", "history_records", "linear_maps", "plot_activations",
           "plot_decision_boundary", "plot_linear_maps", "plot_loss_curve", "plot_softmax"]
