r"""Grade a hand-written homework MLP against handgrad's reference, and name the mistake.

:func:`check_implementation` loads a user's file or module exposing the homework
interface (``MLP``, ``mse_loss``, ``bce_loss``, as in :mod:`handgrad.hw1`) in a
subprocess (:mod:`handgrad.check_worker`) with a time limit, runs it over a seeded
sweep of configurations with the reference's weights copied in, and compares every
quantity — ``y_hat``, ``J``, ``dJdy_hat``, ``dJdW1``, ``dJdb1``, ``dJdW2``, ``dJdb2`` —
with :mod:`handgrad.hw1` computed in float64 on the same inputs.

Each quantity is tested on its own: the loss receives the reference ŷ and
``backward`` the reference dJ/dŷ, so a wrong loss never hides a right backward.
Each configuration runs three calls — (x₁, y₁) twice, then (x₂, y₂) — each after
``clear_grad_and_cache()``, so gradients that accumulate or a stale cache show up.

For every failing quantity the usual mistakes are tested as hypotheses: each one's
prediction is computed with handgrad's own ops from the reference's cached z1, z2,
z3 and compared with what was received, with the same tolerance. A mistake is named
only when its prediction fits every failing call (and, across configurations, when
exactly one fits); otherwise the report says that no known mistake fits.

    >>> report = check_implementation("mlp.py", quick=True)   # doctest: +SKIP
    >>> report.passed, [f.hypothesis for f in report.findings]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import functional as F
from . import hw1
from .losses import BCELoss, MSELoss

QUANTITIES = ("y_hat", "J", "dJdy_hat", "dJdW1", "dJdb1", "dJdW2", "dJdb2")
GRADS = ("dJdW1", "dJdb1", "dJdW2", "dJdb2")
REQUIRED = ("relu", "sigmoid", "identity")
EXTRA = ("tanh", "leaky_relu", "softplus", "gelu")
KINKED = ("relu", "leaky_relu")
CALLS = 3  # (x1, y1), (x1, y1) again, (x2, y2): each after clear_grad_and_cache()
RTOL = {"float64": 1e-7, "float32": 1e-3}  # worst relative error allowed, per received dtype
FLOOR = 1e-3  # entries below FLOOR·max|expected| are measured against that floor
FIT_FACTOR = 5.0  # a hypothesis fits within FIT_FACTOR·rtol of its prediction ...
DISTINCT_FACTOR = 20.0  # ... and is only tried where its prediction is DISTINCT_FACTOR·rtol away from the truth


# ====================================================================== configurations
@dataclass(frozen=True)
class Config:
    """One network and loss to run: MLP(n, m, f, m, K, g) on batches of N, loss ``loss``."""

    f: str
    g: str
    loss: str
    N: int
    n: int
    m: int
    K: int

    @property
    def optional(self) -> bool:
        """True when it uses an activation the homework does not require (skipped if refused)."""
        return self.f not in REQUIRED or self.g not in REQUIRED

    def label(self) -> str:
        return f"f={self.f} g={self.g} loss={self.loss} N={self.N} n={self.n} m={self.m} K={self.K}"


def _sizes(rng: np.random.Generator, N: int | None = None, K: int | None = None) -> dict[str, int]:
    """n, m, K distinct (so transposes change shapes) and N ∉ {2, K} (so factors are told apart)."""
    while True:
        s = {"N": N or int(rng.integers(3, 8)), "n": int(rng.integers(2, 6)), "m": int(rng.integers(2, 7)),
             "K": K or int(rng.integers(3, 6))}
        if len({s["n"], s["m"], s["K"]}) == 3 and (s["N"] == 1 or s["K"] == 1 or s["N"] != s["K"]):
            return s


def sweep(seed: int = 0, quick: bool = False) -> list[Config]:
    """The seeded configurations: every f, g among relu/sigmoid/identity with MSE, BCE after a
    sigmoid, each extra activation as f and as g, with batch 1 and one output among them.
    ``quick`` keeps four that between them exercise every diagnosis."""
    rng = np.random.default_rng(seed)
    if quick:
        plan = [("relu", "identity", "mse", {}), ("sigmoid", "sigmoid", "bce", {}),
                ("tanh", "sigmoid", "bce", {"N": 1}), ("relu", "sigmoid", "mse", {"K": 1})]
    else:
        special = [{"N": 1}, {"K": 1}, {"N": 1, "K": 1}]
        plan = [(f, g, "mse", special.pop(0) if (f, g) in (("relu", "identity"), ("sigmoid", "relu"),
                                                             ("identity", "sigmoid")) else {})
                for f in REQUIRED for g in REQUIRED]
        plan += [(f, "sigmoid", "bce", {"K": 1} if f == "identity" else {}) for f in REQUIRED]
        plan += [(a, "identity", "mse", {}) for a in EXTRA] + [("relu", a, "mse", {}) for a in EXTRA]
        plan += [("tanh", "sigmoid", "bce", {"N": 1})]
    return [Config(f, g, loss, **_sizes(rng, **fixed)) for f, g, loss, fixed in plan]


# ====================================================================== the reference
def _f32(a: np.ndarray) -> np.ndarray:
    """Round to float32 and back: exact in both dtypes, so the user and the reference see the same numbers."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


@dataclass
class RefCall:
    """The reference pass for one call: inputs, cached tensors and expected values (float64)."""

    x: np.ndarray
    y: np.ndarray
    z1: np.ndarray
    z2: np.ndarray
    z3: np.ndarray
    expected: dict[str, np.ndarray]
    y_hat_fed: np.ndarray  # what the user's loss receives
    grad_fed: np.ndarray  # what the user's backward receives


class Reference:
    """handgrad.hw1's MLP in float64 NumPy with one configuration's weights, and its calls."""

    def __init__(self, config: Config, rng: np.random.Generator) -> None:
        c = self.config = config
        self.net = hw1.MLP(c.n, c.m, c.f, c.m, c.K, c.g, backend="numpy", dtype=np.float64)
        self.weights = {
            "W1": _f32(rng.normal(0, 1 / np.sqrt(c.n), (c.m, c.n))), "b1": _f32(rng.normal(0, 0.5, c.m)),
            "W2": _f32(rng.normal(0, 1 / np.sqrt(c.m), (c.K, c.m))), "b2": _f32(rng.normal(0, 0.5, c.K)),
        }
        for name, value in self.weights.items():
            self.net.parameters[name] = value
        self.loss = MSELoss() if c.loss == "mse" else BCELoss()
        self.linear1, self.f_layer, self.linear2, self.g_layer = self.net.net.layers
        first = self._draw(rng)
        self.calls = [self.run(*first), self.run(*first), self.run(*self._draw(rng))]

    def _draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A batch (x, y) whose ReLU-family pre-activations keep 1e-3 away from the kink at 0, where
        float32 and float64 could disagree on the slope."""
        c = self.config
        for _ in range(100):
            x = _f32(rng.normal(0, 1, (c.N, c.n)))
            z1 = x @ self.weights["W1"].T + self.weights["b1"]
            z3 = self.f_layer.forward(z1) @ self.weights["W2"].T + self.weights["b2"]
            if all(np.min(np.abs(z)) > 1e-3 for z, a in ((z1, c.f), (z3, c.g)) if a in KINKED):
                break
        y = rng.normal(0, 1, (c.N, c.K)) if c.loss == "mse" else rng.integers(0, 2, (c.N, c.K)).astype(np.float64)
        return x, _f32(y)

    def run(self, x: np.ndarray, y: np.ndarray) -> RefCall:
        net = self.net
        net.clear_grad_and_cache()
        y_hat = np.array(net.forward(x))
        cache = net.cache
        y_hat_fed = _f32(y_hat)
        J, dJdy_hat = self.loss(y, y_hat_fed)
        grad_fed = _f32(dJdy_hat)
        net.backward(grad_fed)
        expected = {"y_hat": y_hat, "J": np.asarray(J, dtype=np.float64), "dJdy_hat": np.asarray(dJdy_hat),
                    **{k: np.array(net.grads[k]) for k in GRADS}}
        return RefCall(x, y, cache["z1"], cache["z2"], cache["z3"], expected, y_hat_fed, grad_fed)

    def chain(self, call: RefCall, dJdy_hat: np.ndarray, g_slope: np.ndarray, f_slope: np.ndarray,
              w2_input: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The four gradients by the chain rule with the given activation slopes, with handgrad's
        linear backward: a hypothesis swaps one slope (or one cached tensor) for a wrong one."""
        dJdz3 = dJdy_hat * g_slope
        dJdz2, dJdW2, dJdb2 = F.linear_backward(dJdz3, (call.z2 if w2_input is None else w2_input, self.weights["W2"]))
        dJdz1 = dJdz2 * f_slope
        _, dJdW1, dJdb1 = F.linear_backward(dJdz1, (call.x, self.weights["W1"]))
        return {"dJdW1": dJdW1, "dJdb1": dJdb1, "dJdW2": dJdW2, "dJdb2": dJdb2, "dJdz1": dJdz1, "dJdz3": dJdz3}

    def slopes(self, call: RefCall) -> tuple[np.ndarray, np.ndarray]:
        """The correct slopes: g'(z3) and f'(z1), from the layers' own derivative()."""
        return self.g_layer.derivative(call.z3), self.f_layer.derivative(call.z1)


# ====================================================================== comparing
@dataclass
class Comparison:
    """Received against expected for one quantity and call."""

    rel_error: float
    index: tuple[int, ...] | None
    expected: float | None
    received: float | None
    note: str = ""

    def within(self, rtol: float) -> bool:
        return self.rel_error <= rtol


def compare(received: np.ndarray, expected: np.ndarray) -> Comparison:
    """Worst entry-wise relative error |r − e| / max(|e|, FLOOR·max|e|), with its index and values.

    Entries far below the array's largest are measured against that floor, so a
    rounding error next to an exact 0 is not an "infinite" relative error.
    """
    received, expected = np.asarray(received, np.float64), np.asarray(expected, np.float64)
    if received.shape != expected.shape:
        return Comparison(np.inf, None, None, None, f"shape {received.shape}, expected {expected.shape}")
    if expected.size == 0:
        return Comparison(0.0, (), None, None)
    scale = float(np.max(np.abs(expected)))
    floor = max(FLOOR * scale, np.finfo(np.float64).tiny)
    with np.errstate(invalid="ignore", over="ignore"):
        rel = np.abs(received - expected) / np.maximum(np.abs(expected), floor)
    rel = np.where(np.isfinite(rel), rel, np.inf)
    worst = np.unravel_index(int(np.argmax(rel)), rel.shape)
    note = "received a non-finite value" if not np.isfinite(received[worst]) else ""
    return Comparison(float(rel[worst]), tuple(int(i) for i in worst), float(expected[worst]),
                      float(received[worst]), note)


# ====================================================================== hypotheses
@dataclass(frozen=True)
class Hypothesis:
    """A named mistake and its prediction for one quantity."""

    id: str
    title: str
    prediction: np.ndarray
    fix: tuple[str, ...] = ()


SCALES = (("2", lambda N, K: 2.0), ("1/2", lambda N, K: 0.5), ("-1", lambda N, K: -1.0),
          ("N", lambda N, K: N), ("1/N", lambda N, K: 1 / N), ("K", lambda N, K: K), ("1/K", lambda N, K: 1 / K),
          ("NK", lambda N, K: N * K), ("1/NK", lambda N, K: 1 / (N * K)))


def _scale_title(q: str, key: str, config: Config) -> tuple[str, str]:
    """(id, title) of 'received = c · expected' for quantity q."""
    titles = {
        "2": f"{q} is twice the correct value",
        "1/2": f"{q} is half the correct value" + (": the factor 2 of d(ŷ − y)²/dŷ is missing"
                                                   if q == "dJdy_hat" and config.loss == "mse" else ""),
        "-1": f"the sign of {q} is flipped" + (": (y − ŷ) written where (ŷ − y) belongs"
                                               if q == "dJdy_hat" and config.loss == "mse" else ""),
        "N": f"{q} is N times too large: the 1/N of the batch mean is missing",
        "1/N": (f"{q} is averaged over the batch (divided by N) where the sum over the batch is right: "
                "the 1/N is already in dJ/dŷ" if q in GRADS else f"{q} is divided by N once too often"),
        "K": f"{q} is K times too large: divided by N only, the 1/K of the mean over the K outputs is missing",
        "1/K": f"{q} is divided by K once too often",
        "NK": f"{q} is N·K times too large: a sum where the mean over all N·K elements belongs",
        "1/NK": f"{q} is divided by N·K once too often",
    }
    hid = "bias_averaged_over_batch" if (q in ("dJdb1", "dJdb2") and key == "1/N") else f"scale:{key}"
    return hid, titles[key]


def generic_hypotheses(q: str, expected: np.ndarray, received: np.ndarray, config: Config) -> list[Hypothesis]:
    """Shape and scale mistakes that apply to any quantity."""
    out = []
    if expected.ndim == 2:
        out.append(Hypothesis("transposed", f"{q} is transposed: received ({q})ᵀ, shape {expected.T.shape} "
                              f"instead of {expected.shape}", expected.T))
        if expected.shape[0] != expected.shape[1] and received.shape == expected.shape:
            out.append(Hypothesis("transposed_reshaped", f"{q} is the transpose reshaped to {expected.shape}: "
                                  ".reshape does not transpose", expected.T.reshape(expected.shape)))
    if received.shape != expected.shape and received.size == expected.size:
        out.append(Hypothesis("reshaped", f"{q} has the right values in the wrong shape: {received.shape} "
                              f"instead of {expected.shape}", expected.reshape(received.shape)))
    for key, factor in SCALES:
        hid, title = _scale_title(q, key, config)
        out.append(Hypothesis(hid, title, factor(config.N, config.K) * expected))
    return out


def _site_names(ref: Reference, site: str) -> dict[str, str]:
    if site == "f":
        return {"act": ref.config.f, "x": "z1", "y": "z2"}
    return {"act": ref.config.g, "x": "z3", "y": "ŷ"}


def _slope_variants(act: str) -> list[tuple[str, str, Any]]:
    """(id suffix, title template, wrong slope(layer, x)) for an activation's usual slope mistakes.
    Templates use {x} and {y}, the activation's input and output at one site."""
    out = [("derivative_at_output", act + "' evaluated at the activation's output instead of its input: "
            + act + "'({y}) where " + act + "'({x}) belongs", lambda layer, x: layer.derivative(layer.forward(x)))]
    if act == "sigmoid":
        out.append(("derivative_formula_on_input", "sigmoid' written y(1 − y) but given the input: {x}(1 − {x}) "
                    "where {y}(1 − {y}) belongs", lambda layer, x: F.sigmoid_derivative_from_output(x)))
    if act == "tanh":
        out.append(("derivative_formula_on_input", "tanh' written 1 − y² but given the input: 1 − {x}² where "
                    "1 − {y}² belongs", lambda layer, x: F.tanh_derivative_from_output(x)))
        out.append(("derivative_of_square", "tanh' written 1 − tanh({x}²) (the seed's erratum) where "
                    "1 − tanh({x})² belongs", lambda layer, x: 1 - np.tanh(x * x)))
    return out


def activation_hypotheses(ref: Reference, call: RefCall, dJdy_hat: np.ndarray) -> list[tuple[str, str, dict, tuple]]:
    """(id, title, predicted gradients, sites) for each wrong activation slope.

    A slope mistake usually lives in the activation's helper, so it is applied at every
    site using that activation (id ``sigmoid_derivative_at_output``); when f and g are the
    same activation, each site alone is tried too (``...@g``). A missing slope is per site.
    """
    g_ok, f_ok = ref.slopes(call)
    ok = {"f": f_ok, "g": g_ok}
    sites = {"f": (ref.f_layer, call.z1), "g": (ref.g_layer, call.z3)}
    out = []
    for s in sites:
        nm = _site_names(ref, s)
        wrong = {**ok, s: np.ones_like(ok[s])}
        out.append((f"{s}_derivative_missing", f"the slope {nm['act']}'({nm['x']}) of {s} is missing from the "
                    f"chain rule (dJ/d{nm['x']} = dJ/d{nm['y']}, as if {s} were the identity)",
                    ref.chain(call, dJdy_hat, wrong["g"], wrong["f"]), (s,)))
    for act in dict.fromkeys([ref.config.f, ref.config.g]):
        at = tuple(s for s in sites if _site_names(ref, s)["act"] == act)
        for suffix, template, slope in _slope_variants(act):
            for subset in [at] + ([(s,) for s in at] if len(at) == 2 else []):
                wrong = dict(ok)
                for s in subset:
                    wrong[s] = slope(*sites[s])
                hid = f"{act}_{suffix}" + ("" if subset == at else f"@{subset[0]}")
                title = template.format(**_site_names(ref, subset[-1]))
                grads = ref.chain(call, dJdy_hat, wrong["g"], wrong["f"])
                if subset != at:
                    title += f" (at {subset[0]} only)"
                elif len(at) == 1:  # the same mistake as seen from a configuration where f = g (an alias)
                    out.append((f"{hid}@{at[0]}", f"{title} (at {at[0]} only)", grads, subset))
                out.append((hid, title, grads, subset))
    return out


def gradient_hypotheses(ref: Reference, calls: list[RefCall], t: int) -> dict[str, list[Hypothesis]]:
    """Model-based mistakes for the four gradients of call t, each quantity's prediction."""
    call = calls[t]
    out: dict[str, list[Hypothesis]] = {q: [] for q in GRADS}
    for hid, title, grads, subset in activation_hypotheses(ref, call, call.grad_fed):
        fix = tuple(explain_activation(ref, s) for s in subset)
        for q in GRADS:
            out[q].append(Hypothesis(hid, title, grads[q], fix))
    g_ok, f_ok = ref.slopes(call)
    right = ref.chain(call, call.grad_fed, g_ok, f_ok)
    wrong_w2 = ref.chain(call, call.grad_fed, g_ok, f_ok, w2_input=call.z1)
    out["dJdW2"].append(Hypothesis("dW2_from_pre_activation", "dJdW2 used z1, the activation's input, instead of "
                                   "its output z2: (dJ/dz3)ᵀ z1", wrong_w2["dJdW2"]))
    for q, per_sample, names in (("dJdb1", right["dJdz1"], "dJ/dz1 (N, m)"), ("dJdb2", right["dJdz3"], "dJ/dz3 (N, K)")):
        out[q].append(Hypothesis("bias_not_summed", f"{q} is the per-sample gradient {names}, not summed over "
                                 "the batch", per_sample))
    if t > 0:
        so_far = {q: sum(c.expected[q] for c in calls[: t + 1]) for q in GRADS}
        stale = ref.chain(calls[0], call.grad_fed, *ref.slopes(calls[0]))
        for q in GRADS:
            out[q].append(Hypothesis("gradients_not_zeroed", "gradients accumulate across calls: "
                                     "clear_grad_and_cache() does not set them to 0 (each call "
                                     "received the sum of the gradients of every call so far)", so_far[q],
                                     ("clear_grad_and_cache() must set every gradient to 0: backward adds into "
                                      "them, as torch's .grad does",)))
            out[q].append(Hypothesis("stale_cache", "backward read the cache of an earlier forward pass: "
                                     "forward(x) did not replace the cached x, z1, z2, z3 (and "
                                     "clear_grad_and_cache() did not clear them)", stale[q],
                                     ("forward(x) must cache this call's x, z1, z2, z3, and clear_grad_and_cache() "
                                      "must empty the cache",)))
    return out


def loss_hypotheses(ref: Reference, call: RefCall) -> dict[str, list[Hypothesis]]:
    """The seed's BCE errata, as predictions for J and dJdy_hat."""
    if ref.config.loss != "bce":
        return {}
    y, p = call.y, call.y_hat_fed
    numel = y.size
    with np.errstate(divide="ignore", invalid="ignore"):
        J_bad = -np.sum(y * np.log(p) + (1 - y) * (1 - np.log(p))) / numel
        d_bad = -(y / p - (1 - y) / p) / numel
    title = ("BCE's second term written (1 − y)(1 − log ŷ) (the seed's erratum) instead of (1 − y) log(1 − ŷ)")
    return {"J": [Hypothesis("bce_second_term", title, np.asarray(J_bad))],
            "dJdy_hat": [Hypothesis("bce_second_term", title + "; its derivative −(1/(N·K))(y/ŷ − (1 − y)/ŷ)", d_bad)]}


def forward_hypotheses(ref: Reference, call: RefCall) -> list[Hypothesis]:
    out = [Hypothesis("g_not_applied", "ŷ is z3: the output activation g is not applied", call.z3)]
    z3_no_f = F.linear_forward(call.z1, ref.weights["W2"], ref.weights["b2"])[0]
    out.append(Hypothesis("f_not_applied", "the hidden activation f is not applied (z2 = z1)",
                          ref.g_layer.forward(z3_no_f)))
    return out


# ====================================================================== corrected formulas
def explain_activation(ref: Reference, site: str) -> str:
    layer = ref.f_layer if site == "f" else ref.g_layer
    nm = _site_names(ref, site)
    return layer.derivation.backward.render("text", x=nm["x"], y=nm["y"], **layer.symbols())


def correct_formulas(ref: Reference, q: str) -> tuple[str, ...]:
    """The right formula for quantity q, rendered from the derivation records ``explain`` prints."""
    lin = ref.linear1.derivation
    loss_symbols = {"y": "y", "p": ("ŷ", r"\hat{y}"), "N": "N", "K": "K"}
    if q == "y_hat":
        return (lin.forward.render("text", x="x", y="z1", W="W1", b="b1"),
                ref.f_layer.derivation.forward.render("text", x="z1", y="z2", **ref.f_layer.symbols()),
                lin.forward.render("text", x="z2", y="z3", W="W2", b="b2"),
                ref.g_layer.derivation.forward.render("text", x="z3", y="ŷ", **ref.g_layer.symbols()))
    if q == "J":
        return (ref.loss.derivation.forward.render("text", **loss_symbols),)
    if q == "dJdy_hat":
        return (ref.loss.derivation.backward.render("text", **loss_symbols),)
    layer = {"1": ("x", "z1"), "2": ("z2", "z3")}[q[-1]]
    formula = lin.param_grads[0 if q[3] == "W" else 1]
    return (formula.render("text", x=layer[0], y=layer[1], W=f"W{q[-1]}", b=f"b{q[-1]}"),)


# ====================================================================== diagnosis
def hypotheses_for(q: str, ref: Reference, t: int, received: np.ndarray) -> list[Hypothesis]:
    call = ref.calls[t]
    expected = call.expected[q]
    out = generic_hypotheses(q, expected, received, ref.config)
    if q in GRADS:
        out += gradient_hypotheses(ref, ref.calls, t)[q]
    elif q == "y_hat":
        out += forward_hypotheses(ref, call)
    else:
        out += loss_hypotheses(ref, call).get(q, [])
    return out


def diagnose(q: str, ref: Reference, received: list[np.ndarray | None], failing: list[int],
             rtol: float) -> dict[str, Hypothesis]:
    """The hypotheses whose prediction fits every failing call of quantity q (id -> hypothesis).

    A hypothesis is only considered in a call where its prediction differs from the
    correct value by more than DISTINCT_FACTOR·rtol; it fits where the received value is
    within FIT_FACTOR·rtol of that prediction.
    """
    fits: dict[str, Hypothesis] | None = None
    for t in failing:
        r = received[t]
        if r is None:
            return {}
        expected = ref.calls[t].expected[q]
        here = {}
        for h in hypotheses_for(q, ref, t, r):
            if compare(h.prediction, expected).within(DISTINCT_FACTOR * rtol):
                continue  # this mistake would not show in this call
            if compare(r, h.prediction).within(FIT_FACTOR * rtol):
                here.setdefault(h.id, h)
        fits = here if fits is None else {k: v for k, v in fits.items() if k in here}
    return fits or {}


# ====================================================================== the report
@dataclass
class QuantityResult:
    """One quantity of one configuration, over all its calls (the worst call is shown)."""

    name: str
    passed: bool
    rel_error: float
    call: int | None = None  # 1-based
    index: list[int] | None = None
    expected: float | None = None
    received: float | None = None
    note: str = ""
    raised: bool = False  # the user's code raised (or returned nothing) instead of giving a value
    diagnosis: str | None = None  # the id of the named mistake
    title: str = ""
    fix: list[str] = field(default_factory=list)  # the correct formula(s), from the derivation records
    candidates: dict[str, dict] = field(default_factory=dict)  # id -> {title, fix} of every mistake that fits


@dataclass
class ConfigResult:
    index: int  # 1-based
    config: Config
    status: str  # pass, fail, skipped, error, timeout, crash, not run
    note: str = ""
    quantities: list[QuantityResult] = field(default_factory=list)


@dataclass
class Finding:
    """One mistake named for one quantity (hypothesis None: nothing fits; several candidates: ambiguous)."""

    quantity: str
    hypothesis: str | None
    title: str
    fix: list[str]
    configs: list[int]
    candidates: list[str] = field(default_factory=list)


@dataclass
class CheckReport:
    """The result of :func:`check_implementation`; ``passed`` when every configuration that ran passed."""

    target: str
    seed: int
    backend: str | None = None
    dtype: str | None = None
    rtol: float | None = None
    error: str = ""  # the implementation could not be loaded or run at all
    configs: list[ConfigResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    stderr_tail: str = ""

    @property
    def passed(self) -> bool:
        ran = [c for c in self.configs if c.status != "skipped"]
        return not self.error and bool(ran) and all(c.status == "pass" for c in ran)

    def finding(self, quantity: str) -> Finding | None:
        return next((f for f in self.findings if f.quantity == quantity), None)

    def named(self) -> set[tuple[str, str]]:
        """{(quantity, hypothesis id)} of every mistake named without ambiguity."""
        return {(f.quantity, f.hypothesis) for f in self.findings if f.hypothesis}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["passed"] = self.passed
        for c in out["configs"]:
            c["config"]["label"] = Config(**c["config"]).label()
        return _finite(out)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def render(self, color: bool = False, verbose: bool = False) -> str:
        from .commands.check import render_report

        return render_report(self, color=color, verbose=verbose)


def _finite(obj: Any) -> Any:
    """JSON has no inf/NaN: write them as strings."""
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


# ====================================================================== grading
def _call_error(errors: dict, t: int, q: str) -> str | None:
    keys = [f"t{t}_{q}"]
    if q in ("J", "dJdy_hat"):
        keys.insert(0, f"t{t}_loss")
    if q in GRADS:
        keys[:0] = [f"t{t}_y_hat", f"t{t}_backward"]
    for key in keys:
        if key in errors:
            info = errors[key]
            where = f" ({info['where']})" if info.get("where") else ""
            prefix = "not computed: " if key == f"t{t}_y_hat" and q in GRADS else ""
            return f"{prefix}{info['message']}{where}"
    return None


def grade_quantity(q: str, ref: Reference, received: dict, errors: dict, rtol: float) -> QuantityResult:
    values: list[np.ndarray | None] = []
    results: list[tuple[float, int, Comparison | None, str]] = []
    for t in range(CALLS):
        err = _call_error(errors, t, q)
        r = received.get(f"t{t}_{q}")
        if q == "J" and r is not None and r.size == 1:
            r = r.reshape(())
        values.append(None if err else r)
        if err or r is None:
            results.append((np.inf, t, None, err or f"{q} was not received"))
            continue
        c = compare(r, ref.calls[t].expected[q])
        results.append((c.rel_error, t, c, c.note))
    failing = [t for rel, t, _, _ in results if not rel <= rtol]
    rel, t, c, note = max(results, key=lambda item: (item[0], -item[1]))
    out = QuantityResult(q, not failing, rel, t + 1, list(c.index) if c and c.index is not None else None,
                         c.expected if c else None, c.received if c else None, note, raised=c is None)
    if failing and t > 0 and results[0][0] <= rtol:
        out.note = (out.note + "; " if out.note else "") + "call 1 was right: the error appears on a repeated call"
    if failing and all(values[k] is not None for k in failing):
        fits = diagnose(q, ref, values, failing, rtol)
        right = list(correct_formulas(ref, q))
        out.candidates = {k: {"title": h.title, "fix": [*h.fix, *right]} for k, h in sorted(fits.items())}
        out.fix = right
        named = resolve(set(fits))
        if named:
            _name(out, named)
    return out


def resolve(ids: set[str]) -> str | None:
    """The one mistake among ``ids``: the only one, or ``X`` when the others are its aliases ``X@site``."""
    if len(ids) == 1:
        return next(iter(ids))
    bases = {i.split("@")[0] for i in ids}
    if len(bases) == 1 and (base := bases.pop()) in ids:
        return base
    return None


def grade_config(i: int, ref: Reference, event: dict | None, received: dict, rtol: float) -> ConfigResult:
    result = ConfigResult(i + 1, ref.config, "not run")
    if event is None:
        return result
    notes = list(event.get("notes", []))
    if event["status"] == "construct_error":
        info = event["errors"]["construct"]
        where = f" ({info['where']})" if info.get("where") else ""
        if ref.config.optional:
            result.status = "skipped"
            result.note = f"{info['message']}{where}; this implementation does not seem to offer it, so it is skipped"
        else:
            result.status, result.note = "error", f"{info['message']}{where}"
        return result
    errors = event.get("errors", {})
    result.quantities = [grade_quantity(q, ref, received, errors, rtol) for q in QUANTITIES]
    clear = [errors[k] for k in sorted(errors) if k.endswith("_clear")]
    if clear:
        notes.append(clear[0]["message"])
    y_hat = result.quantities[0]
    if not y_hat.passed:
        for qr in result.quantities[3:]:
            if not qr.passed:
                qr.note = (qr.note + "; " if qr.note else "") + "the forward pass is already wrong (see y_hat)"
    result.note = "; ".join(notes)
    result.status = "pass" if all(qr.passed for qr in result.quantities) and not clear else "fail"
    return result


def summarize(configs: list[ConfigResult]) -> list[Finding]:
    """Per quantity, the mistake that fits every failing configuration; ambiguities resolved across them.

    Where a quantity cannot tell a mistake from its site-specific alias (dJdW2 does not
    see f's slope, so ``X`` and ``X@g`` predict the same), the one that another gradient
    names on its own is taken.
    """
    failing = {q: [(c, qr) for c in configs for qr in c.quantities if qr.name == q and not qr.passed
                   and not qr.raised] for q in QUANTITIES}
    common = {q: set.intersection(*(set(qr.candidates) for _, qr in pairs)) for q, pairs in failing.items() if pairs}
    strong = {next(iter(ids)) for q, ids in common.items() if q in GRADS and len(ids) == 1}
    findings = []
    for q, pairs in failing.items():
        if not pairs:
            continue
        preferred = common[q] & strong
        hid = next(iter(preferred)) if len(preferred) == 1 else resolve(common[q])
        if hid:
            for _, qr in pairs:  # name it where this configuration alone was ambiguous
                _name(qr, hid)
            qr = pairs[0][1]
            findings.append(Finding(q, hid, qr.title, qr.fix, [c.index for c, _ in pairs]))
            continue
        groups: dict[tuple[str, ...], list[tuple[ConfigResult, QuantityResult]]] = {}
        for c, qr in pairs:
            groups.setdefault(tuple(sorted(qr.candidates)), []).append((c, qr))
        for ids, members in groups.items():
            qr, idx = members[0][1], [c.index for c, _ in members]
            if resolve(set(ids)):
                findings.append(Finding(q, qr.diagnosis, qr.title, qr.fix, idx))
            elif ids:
                findings.append(Finding(q, None, f"{q}: several mistakes fit equally well, so none is named: "
                                        + "; ".join(qr.candidates[k]["title"] for k in ids), qr.fix, idx, list(ids)))
            else:
                findings.append(Finding(q, None, f"{q} is wrong, and none of the known mistakes fits; compare "
                                        "it with the correct formula", qr.fix, idx))
    return findings


def _name(qr: QuantityResult, hid: str) -> None:
    info = qr.candidates[hid]
    qr.diagnosis, qr.title, qr.fix = hid, info["title"], list(info["fix"])


# ====================================================================== running the user's code
@dataclass
class WorkerOutcome:
    loaded: dict | None = None
    load_error: dict | None = None
    done: dict[int, dict] = field(default_factory=dict)
    timed_out: str | int | None = None  # "import" or the configuration index
    crashed: tuple[str | int, int] | None = None  # (phase, exit status)
    finished: bool = False
    step: str = ""  # the user call in progress ("calling forward(x)", call "t0")


def resolve_target(target: str | os.PathLike) -> tuple[str, str]:
    """('file', absolute path) or ('module', dotted name); ValueError when neither exists."""
    import importlib.machinery
    import re

    text = os.fspath(target)
    path = Path(text)
    if path.is_file():
        return "file", str(path.resolve())
    if path.suffix == ".py" or os.sep in text or "/" in text or path.exists():
        raise ValueError(f"no such Python file: {text}")
    if re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", text):
        top = text.split(".")[0]
        if importlib.machinery.PathFinder.find_spec(top, [os.getcwd(), *sys.path]) is None:
            raise ValueError(f"no file or importable module named {text!r} (looked in the current directory and "
                             "on sys.path)")
        return "module", text
    raise ValueError(f"expected a Python file or a module name, got {text!r}")


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)  # the worker and anything it started
        else:  # pragma: no cover - not POSIX
            proc.kill()
    except ProcessLookupError:  # pragma: no cover - exited in between
        pass
    proc.wait()


def run_worker(kind: str, target: str, n_configs: int, workdir: Path, timeout: float,
               python: str | None = None) -> WorkerOutcome:
    """Run :mod:`handgrad.check_worker` on the request in ``workdir``, ``timeout`` seconds per phase
    (the import, then each configuration); a phase that overruns ends the run."""
    request = workdir / "request.json"
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    outcome = WorkerOutcome()
    with open(workdir / "stderr.txt", "w") as err:
        proc = subprocess.Popen([python or sys.executable, "-m", "handgrad.check_worker", str(request)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True, env=env,
                                start_new_session=os.name == "posix")
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    phase: str | int = "import"
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                outcome.timed_out = phase
                break
            if line is None:
                code = proc.wait()
                if not outcome.finished and outcome.load_error is None and not (outcome.loaded and phase == "import"):
                    outcome.crashed = (phase, code)
                break
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            kind_ = event.get("event")
            if kind_ == "loaded":
                outcome.loaded = event
                deadline = time.monotonic() + timeout
            elif kind_ in ("load_error", "fatal"):
                outcome.load_error = event
                break
            elif kind_ == "start":
                phase, deadline, outcome.step = event["config"], time.monotonic() + timeout, ""
            elif kind_ == "step":
                call = event.get("call", "")
                outcome.step = event["what"] + (f" (call {int(call[1:]) + 1})" if call[1:].isdigit() else "")
            elif kind_ == "done":
                outcome.done[event["config"]] = event
            elif kind_ == "finished":
                outcome.finished = True
                break
    finally:
        _kill(proc)
        if proc.stdout:
            proc.stdout.close()
    return outcome


def _tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _signal_name(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


# ====================================================================== the entry point
def check_implementation(target: str | os.PathLike, *, seed: int = 0, timeout: float = 20.0, quick: bool = False,
                         python: str | None = None) -> CheckReport:
    """Grade a homework implementation (a .py file or a module name) against handgrad's reference.

    Parameters
    ----------
    target : a Python file, or an importable module name, exposing ``MLP``, ``mse_loss``, ``bce_loss``.
    seed : seeds the sizes, weights, inputs and targets of every configuration.
    timeout : seconds allowed for importing the target, and again for each configuration.
    quick : run four configurations instead of the full sweep (21).
    python : the interpreter that runs the user's code (default: this one).

    Returns
    -------
    CheckReport, with per-configuration, per-quantity results and the named mistakes.
    """
    kind, resolved = resolve_target(target)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0 or not np.isfinite(timeout):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    configs = sweep(int(seed), quick)
    rng = np.random.default_rng([int(seed), 1])
    refs = [Reference(c, rng) for c in configs]
    report = CheckReport(target=os.fspath(target), seed=int(seed))
    with tempfile.TemporaryDirectory(prefix="handgrad-check-") as tmp:
        workdir = Path(tmp)
        _write_request(workdir, kind, resolved, refs)
        outcome = run_worker(kind, resolved, len(refs), workdir, float(timeout), python)
        received = {i: _load_npz(workdir / f"out_{i}.npz") for i in outcome.done}
        report.stderr_tail = _tail(workdir / "stderr.txt")
    _fill(report, outcome, refs, received, float(timeout))
    return report


def _write_request(workdir: Path, kind: str, target: str, refs: list[Reference]) -> None:
    arrays: dict[str, np.ndarray] = {}
    for i, ref in enumerate(refs):
        for name, value in ref.weights.items():
            arrays[f"c{i}_{name}"] = value
        for t, call in enumerate(ref.calls):
            arrays.update({f"c{i}_t{t}_x": call.x, f"c{i}_t{t}_y": call.y, f"c{i}_t{t}_y_hat": call.y_hat_fed,
                           f"c{i}_t{t}_dJdy_hat": call.grad_fed})
    np.savez(workdir / "inputs.npz", **arrays)
    configs = [{**asdict(ref.config), "calls": CALLS} for ref in refs]
    (workdir / "request.json").write_text(json.dumps({
        "target": target, "kind": kind, "configs": configs, "inputs": str(workdir / "inputs.npz"),
        "outdir": str(workdir)}))


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {k: np.array(data[k]) for k in data.files}


def _fill(report: CheckReport, outcome: WorkerOutcome, refs: list[Reference], received: dict, timeout: float) -> None:
    """Turn the worker's events into graded configurations, findings and a top-level error."""
    if outcome.load_error is not None:
        info = outcome.load_error
        report.error = info["message"] + (f" ({info['where']})" if info.get("where") else "")
    elif outcome.timed_out == "import":
        report.error = f"importing the implementation did not finish within {timeout:g} s (an endless loop?)"
    elif outcome.crashed and outcome.crashed[0] == "import":
        report.error = f"the process running the implementation {_signal_name(outcome.crashed[1])} while importing it"
    elif outcome.loaded and not outcome.loaded["has"].get("MLP"):
        report.error = "the implementation has no MLP class (expected MLP, mse_loss and bce_loss, as in handgrad.hw1)"
    rtol = None
    for event in outcome.done.values():
        if event.get("dtype"):
            report.backend, report.dtype = event["backend"], event["dtype"]
            rtol = RTOL.get(event["dtype"], 1e-2)
            break
    report.rtol = rtol
    for i, ref in enumerate(refs):
        result = grade_config(i, ref, outcome.done.get(i), received.get(i, {}), rtol or RTOL["float32"])
        during = f" while {outcome.step}" if outcome.step else ""
        if i == outcome.timed_out:
            result.status = "timeout"
            result.note = f"did not finish within {timeout:g} s{during} (an endless loop?); the check stopped here"
        elif outcome.crashed and i == outcome.crashed[0]:
            result.status = "crash"
            result.note = (f"the process running the implementation {_signal_name(outcome.crashed[1])}{during}; "
                           "the check stopped here")
        report.configs.append(result)
    report.findings = summarize(report.configs)
