"""The catalogue of usual mistakes, each a hypothesis with a prediction.

For a failing quantity, each hypothesis computes what that mistake would have
produced, with handgrad's own ops on the reference's cached z1, z2, z3; a mistake
fits where the received value is within ``FIT_FACTOR``·rtol of its prediction, and
is only tried where its prediction differs from the truth by ``DISTINCT_FACTOR``·rtol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import functional as F
from ..comparison import compare_entrywise as compare
from .sweep import GRADS, Config, RefCall, Reference

FIT_FACTOR = 5.0  # a hypothesis fits within FIT_FACTOR·rtol of its prediction ...
DISTINCT_FACTOR = 20.0  # ... and is only tried where its prediction is DISTINCT_FACTOR·rtol away from the truth


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
    out: list[tuple[str, str, dict[str, np.ndarray], tuple[str, ...]]] = []
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
        so_far = {q: np.sum([c.expected[q] for c in calls[: t + 1]], axis=0) for q in GRADS}
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


def explain_activation(ref: Reference, site: str) -> str:
    layer = ref.f_layer if site == "f" else ref.g_layer
    nm = _site_names(ref, site)
    return layer.derivation_record().backward.render("text", x=nm["x"], y=nm["y"], **layer.symbols())


def correct_formulas(ref: Reference, q: str) -> tuple[str, ...]:
    """The right formula for quantity q, rendered from the derivation records ``explain`` prints."""
    lin = ref.linear_record
    loss_symbols: dict[str, str | tuple[str, str]] = {"y": "y", "p": ("ŷ", r"\hat{y}"), "N": "N", "K": "K"}
    if q == "y_hat":
        return (lin.forward.render("text", x="x", y="z1", W="W1", b="b1"),
                ref.f_layer.derivation_record().forward.render("text", x="z1", y="z2", **ref.f_layer.symbols()),
                lin.forward.render("text", x="z2", y="z3", W="W2", b="b2"),
                ref.g_layer.derivation_record().forward.render("text", x="z3", y="ŷ", **ref.g_layer.symbols()))
    if q == "J":
        return (ref.loss.derivation.forward.render("text", **loss_symbols),)
    if q == "dJdy_hat":
        return (ref.loss.derivation.backward.render("text", **loss_symbols),)
    layer = {"1": ("x", "z1"), "2": ("z2", "z3")}[q[-1]]
    formula = lin.param_grads[0 if q[3] == "W" else 1]
    return (formula.render("text", x=layer[0], y=layer[1], W=f"W{q[-1]}", b=f"b{q[-1]}"),)


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
        here: dict[str, Hypothesis] = {}
        for h in hypotheses_for(q, ref, t, r):
            if compare(h.prediction, expected).within(DISTINCT_FACTOR * rtol):
                continue  # this mistake would not show in this call
            if compare(r, h.prediction).within(FIT_FACTOR * rtol):
                here.setdefault(h.id, h)
        fits = here if fits is None else {k: v for k, v in fits.items() if k in here}
    return fits or {}


def resolve(ids: set[str]) -> str | None:
    """The one mistake among ``ids``: the only one, or ``X`` when the others are its aliases ``X@site``."""
    if len(ids) == 1:
        return next(iter(ids))
    bases = {i.split("@")[0] for i in ids}
    if len(bases) == 1 and (base := bases.pop()) in ids:
        return base
    return None
