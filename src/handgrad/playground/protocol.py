"""Validation of every message the page sends, before anything reaches the trainer.

A message is one JSON object with a ``type``. Each type has a fixed set of keys;
every value is checked for its type and range here, and the size of the raw text
is capped before it is parsed. A bad message raises :class:`MessageError`, whose
text names what was expected and what was received; the server sends that text
back to the one client that sent it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .data import DATASETS, FEATURES

MAX_MESSAGE_BYTES = 8192
MAX_HIDDEN_LAYERS = 6
MAX_NEURONS = 8
MAX_BATCH = 30
PROBLEMS = ("classification", "regression")
LOSS_NAMES = ("mse", "bce")
REGULARIZATIONS = ("none", "l1", "l2")


class MessageError(ValueError):
    """A message from the page that the server refuses; the text goes back to that page."""


def hidden_activations() -> list[str]:
    """handgrad's element-wise activations by registry name (one name per distinct layer), plus 5relu."""
    import handgrad as hg

    names, seen = [], set()
    for name in hg.ACTIVATIONS:
        layer = hg.make_activation(name)
        derivation = layer.derivation
        if derivation is None or derivation.structure != "diagonal" or repr(layer) in seen:
            continue  # softmax mixes a row's entries: not one neuron's own function
        seen.add(repr(layer))
        names.append(name)
    return [*names, "5relu"]


ACTIVATION_NAMES = tuple(hidden_activations())


@dataclass
class Config:
    """Everything that defines a playground setup (the page mirrors it in its URL)."""

    problem: str = "classification"
    dataset: str = "circle"
    noise: int = 0  # percent
    train_ratio: int = 50  # percent of the points used for training
    batch_size: int = 10
    seed: int = 1
    features: list[str] = field(default_factory=lambda: ["x1", "x2"])
    hidden: list[int] = field(default_factory=lambda: [4, 2])
    activation: str = "tanh"
    learning_rate: float = 0.03
    regularization: str = "none"
    reg_rate: float = 0.0
    loss: str = "bce"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _int(d: dict, key: str, lo: int, hi: int) -> int:
    v = d[key]
    if type(v) is not int or not lo <= v <= hi:
        raise MessageError(f"{key} must be an integer in [{lo}, {hi}], got {v!r}")
    return v


def _float(d: dict, key: str, lo: float, hi: float) -> float:
    v = d[key]
    if type(v) not in (int, float) or not math.isfinite(v) or not lo <= v <= hi:
        raise MessageError(f"{key} must be a number in [{lo:g}, {hi:g}], got {v!r}")
    return float(v)


def _choice(d: dict, key: str, options: tuple[str, ...] | list[str]) -> str:
    v = d[key]
    if not isinstance(v, str) or v not in options:
        raise MessageError(f"{key} must be one of {', '.join(options)}, got {_short(v)}")
    return v


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _keys(d: Any, what: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    if not isinstance(d, dict):
        raise MessageError(f"{what} must be a JSON object, got {type(d).__name__}")
    missing = [k for k in required if k not in d]
    extra = [k for k in d if k not in required and k not in optional]
    if missing or extra:
        raise MessageError(f"{what}: expected keys {', '.join(required)}; "
                           + (f"missing {', '.join(missing)}" if missing else f"unknown {_short(extra[:5])}"))
    return d


CONFIG_KEYS = tuple(Config.__dataclass_fields__)


def parse_config(raw: Any) -> Config:
    """A :class:`Config` from the page's JSON, every field checked."""
    d = _keys(raw, "config", CONFIG_KEYS)
    problem = _choice(d, "problem", PROBLEMS)
    datasets = [name for name, (p, _) in DATASETS.items() if p == problem]
    features = d["features"]
    if (not isinstance(features, list) or not 1 <= len(features) <= len(FEATURES)
            or any(not isinstance(f, str) or f not in FEATURES for f in features) or len(set(features)) != len(features)):
        raise MessageError(f"features must be a non-empty list of distinct names from {', '.join(FEATURES)}, "
                           f"got {_short(features)}")
    hidden = d["hidden"]
    if (not isinstance(hidden, list) or len(hidden) > MAX_HIDDEN_LAYERS
            or any(type(n) is not int or not 1 <= n <= MAX_NEURONS for n in hidden)):
        raise MessageError(f"hidden must be a list of at most {MAX_HIDDEN_LAYERS} layer sizes, each an integer in "
                           f"[1, {MAX_NEURONS}], got {_short(hidden)}")
    loss = _choice(d, "loss", LOSS_NAMES)
    if loss == "bce" and problem != "classification":
        raise MessageError("loss bce needs problem classification (targets in {0, 1}); use mse for regression")
    return Config(
        problem=problem, dataset=_choice(d, "dataset", datasets), noise=_int(d, "noise", 0, 50),
        train_ratio=_int(d, "train_ratio", 10, 90), batch_size=_int(d, "batch_size", 1, MAX_BATCH),
        seed=_int(d, "seed", 0, 2**31 - 1), features=[f for f in FEATURES if f in features], hidden=list(hidden),
        activation=_choice(d, "activation", ACTIVATION_NAMES), learning_rate=_float(d, "learning_rate", 1e-5, 10.0),
        regularization=_choice(d, "regularization", REGULARIZATIONS), reg_rate=_float(d, "reg_rate", 0.0, 10.0),
        loss=loss,
    )


@dataclass(frozen=True)
class Target:
    """One clicked thing: a weight W[row, col] or bias b[row] of Linear layer ``layer`` (1-based), or a neuron."""

    kind: str  # "W", "b" or "neuron"
    layer: int
    row: int
    col: int = 0


SIMPLE = ("play", "pause", "step", "reset", "regenerate", "ack", "walkthrough", "download_model")


def parse_message(text: Any) -> tuple[str, Any]:
    """``(type, payload)`` for one raw WebSocket text frame; raises :class:`MessageError`."""
    if not isinstance(text, str):
        raise MessageError("messages must be JSON text frames, got a binary frame")
    if len(text.encode()) > MAX_MESSAGE_BYTES:
        raise MessageError(f"message too large: at most {MAX_MESSAGE_BYTES} bytes, got {len(text.encode())}")
    try:
        msg = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise MessageError(f"message is not valid JSON ({exc})") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise MessageError(f"a message must be a JSON object with a string 'type', got {_short(msg)}")
    kind = msg["type"]
    if kind in SIMPLE:
        _keys(msg, kind, ("type",))
        return kind, None
    if kind == "config":
        return kind, parse_config(_keys(msg, kind, ("type", "config"))["config"])
    if kind in ("derive", "verify"):
        d = _keys(msg, kind, ("type", "target"))["target"]
        _keys(d, "target", ("kind", "layer", "row"), ("col",))
        target_kind = _choice(d, "kind", ("W", "b", "neuron"))
        col = _int(d, "col", 0, len(FEATURES) + MAX_NEURONS) if "col" in d else 0
        return kind, Target(target_kind, _int(d, "layer", 1, MAX_HIDDEN_LAYERS + 1),
                            _int(d, "row", 0, MAX_NEURONS), col)
    raise MessageError(f"unknown message type {_short(kind)}; expected one of config, derive, verify, "
                       + ", ".join(SIMPLE))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")
