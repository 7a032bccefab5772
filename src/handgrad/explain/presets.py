"""The seed's configurations as networks: presets, building and loading a network, drawing a point, and which question of the homework a configuration answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import MLP, BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, Loss, Sequential, make_loss
from ..validation import make_rng

PRESETS: dict[str, dict[str, str]] = {
    "regression": {"f": "5relu", "g": "identity", "loss": "squared_error"},
    "classification-mse": {"f": "tanh", "g": "sigmoid", "loss": "squared_error"},
    "classification-bce": {"f": "tanh", "g": "sigmoid", "loss": "bce"},
    "classification-relu": {"f": "relu", "g": "sigmoid", "loss": "bce"},
}


DEFAULT_SIZES = {"n": 3, "m": 4, "K": 2}


def build_network(preset: str | None = None, *, f: Any = None, g: Any = None, loss: Any = None,
                  n: int | None = None, m: int | None = None, K: int | None = None,
                  hidden: Sequence[int] | None = None, seed: Any = 0) -> tuple[MLP, Loss]:
    """A float64 MLP and its loss, configured as on the ``train`` command line.

    ``preset`` is one of :data:`PRESETS` (the seed's configurations); ``f``, ``g`` and
    ``loss`` override it. Sizes: ``n`` inputs, ``m`` hidden units (or ``hidden``, one
    width per hidden layer, for depth), ``K`` outputs; defaults n=3, m=4, K=2.
    """
    base = dict(PRESETS["regression"])
    if preset is not None:
        if not isinstance(preset, str) or preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        base = dict(PRESETS[preset])
    for key, value in (("f", f), ("g", g), ("loss", loss)):
        if value is not None:
            base[key] = value
    if m is not None and hidden is not None:
        raise ValueError(f"give either m (one hidden layer) or hidden (one width per layer), not both: m={m}, hidden={hidden}")
    widths = list(hidden) if hidden is not None else [m if m is not None else DEFAULT_SIZES["m"]]
    net = MLP(n if n is not None else DEFAULT_SIZES["n"], widths, K if K is not None else DEFAULT_SIZES["K"],
              f=base["f"], g=base["g"], seed=seed, dtype=np.float64)
    return net, make_loss(base["loss"])


def load_network(path: Any, loss: Any = None, *, need_loss: bool = True) -> tuple[Sequential, Loss | None, dict]:
    """The network saved at ``path`` and the loss to explain it with: ``(net, loss, metadata)``.

    The file is read by :func:`handgrad.io.load_model`, which never executes code and
    raises :class:`~handgrad.errors.ModelFileError` for a missing or damaged file. The
    loss is the one the metadata records (``handgrad train`` records it; its squared
    error is averaged over the batch, as it trained); ``loss`` is used when none is
    recorded and must agree with a recorded one. Without either, ValueError names the
    choices (unless ``need_loss`` is False; the loss is then None).
    """
    from .. import LOSSES, SquaredErrorLoss
    from ..errors import ModelFileError
    from ..io import load_model
    from ..validation import lookup_name

    net, meta = load_model(path)
    recorded = meta.get("loss")
    if recorded is not None:
        try:
            cls = lookup_name("loss", recorded, LOSSES)
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}: the metadata records a loss handgrad does not know ({exc})") from None
        if loss is not None and lookup_name("loss", loss, LOSSES) is not cls:
            raise ValueError(f"{path} was trained with loss {recorded!r}; loss {loss!r} differs (leave it out, "
                             f"or compare the two with a diff)")
        if cls is SquaredErrorLoss and "cli_format" in meta:  # 'handgrad train' averages it over the batch
            return net, SquaredErrorLoss("mean"), meta
        return net, cls(), meta
    if loss is None:
        if need_loss:
            raise ValueError(f"{path} records no loss; give one: {', '.join(sorted(LOSSES))}")
        return net, None, meta
    return net, make_loss(loss), meta


def describe_model(path: Any, net: Sequential, meta: dict[str, Any]) -> str:
    """One line on a loaded model: file, task, loss source, classes, and what x means."""
    parts = [f"model {path}"]
    if meta.get("task"):
        parts.append(str(meta["task"]))
    labels = meta.get("class_labels")
    if isinstance(labels, list) and labels:
        shown = ", ".join(map(str, labels[:10])) + (", ..." if len(labels) > 10 else "")
        parts.append(f"classes {shown}")
    names = meta.get("feature_names")
    if isinstance(names, list) and names and len(names) == net.in_features:
        shown = ", ".join(map(str, names[:10])) + (", ..." if len(names) > 10 else "")
        parts.append(f"features {shown}")
    pre = meta.get("preprocessing")
    if isinstance(pre, dict) and pre.get("x"):
        parts.append("x is the network's input, after the standardisation saved with the model")
    return "; ".join(parts)


def seed_question(net: Sequential, loss: Loss) -> str:
    """Which of the seed's questions a two-layer configuration answers: "1.1" (regression:
    identity output, squared error), "1.2" (classification: a sigmoid output), else ""."""
    if len(net.linears) != 2:
        return ""
    last = net.layers[-1].derivation.name if net.layers[-1].derivation is not None else ""
    if last == "Identity" and not isinstance(loss, (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss)):
        return "1.1"
    return "1.2" if last == "Sigmoid" else ""


def draw_point(net: Sequential, loss: Loss, *, batch: int = 1, seed: Any = 0) -> tuple[np.ndarray, np.ndarray]:
    """An input batch x ~ N(0, 1) of ``batch`` rows and matching targets for ``loss``, drawn with ``seed``."""
    from ..validation import check_size

    batch = check_size("batch", batch)
    rng = make_rng(seed)
    x = rng.standard_normal((batch, _width(net.in_features, "in")))
    return x, draw_target(net, loss, batch, rng)


def _width(n: int | None, side: str) -> int:
    if n is None:
        raise ValueError(f"the network has no Linear layer, so its {side}put width is unknown")
    return n


def draw_target(net: Sequential, loss: Loss, batch: int, rng: np.random.Generator) -> np.ndarray:
    K = _width(net.out_features, "out")
    if isinstance(loss, (BCELoss, BCEWithLogitsLoss)):
        return rng.integers(0, 2, (batch, K)).astype(np.float64)
    if isinstance(loss, CrossEntropyLoss):
        return rng.integers(0, K, batch)
    return rng.standard_normal((batch, K))


__all__ = ['DEFAULT_SIZES', 'PRESETS', 'build_network', 'describe_model', 'draw_point', 'draw_target', 'load_network', 'seed_question']
