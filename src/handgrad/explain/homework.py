"""The seed's homework, question by question: handgrad's wording, an answer computed at a point,
the seed's answer beside the correction (with a numeric counterexample), and the command that
reproduces it. Rendered as text, a Markdown or LaTeX answer key, or hints that give nothing away.

>>> [q.id for q in questions()][:3]
['1.1(a)', '1.1(b)', '1.1(c)']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import build_network, derive, one_hot_argmax, softargmax
from .seed import ERRATA


@dataclass
class Question:
    id: str
    asks: str  # in handgrad's own words
    hint: str  # what to check, not the answer
    answer: str = ""
    seed: str = ""  # the seed's answer, where it is wrong
    correction: str = ""
    evidence: str = ""  # numbers at the point
    command: str = ""
    picture: str = ""  # a drawn answer's file (handgrad homework --draw)


def _f(a: Any) -> str:
    """An array on one line: rows of a matrix side by side."""
    text = np.array2string(np.asarray(a), precision=4, suppress_small=True, separator=", ", max_line_width=10_000)
    return " ".join(part.strip() for part in text.splitlines())


def sgd_step(lr: float = 0.02, seed: int = 0) -> dict[str, Any]:
    """One SGD step of the regression network at a drawn point, each of the five steps with its numbers."""
    from . import draw_point

    net, loss = build_network("regression", seed=seed)
    x, y = draw_point(net, loss, seed=seed)
    y_hat = net.forward(x)                       # 1. forward
    J, dJ_dy_hat = loss(y, y_hat)                # 2. loss
    net.zero_grad()                              # 3. zero the gradients
    net.backward(dJ_dy_hat)                      # 4. backward: the chain rule, no update yet
    W2 = np.array(net.linears[1].params["W"])
    g = np.array(net.linears[1].grads["dJ_dW"])
    for layer, key, grad in [(lin, k, lin.grads[f"dJ_d{k}"]) for lin in net.linears for k in lin.params]:
        layer.params[key] -= lr * grad           # 5. update: θ ← θ − lr · dJ/dθ
    J_after = float(loss(y, net.forward(x))[0])
    return {"x": x, "y": y, "y_hat": y_hat, "J": float(J), "W2": W2, "dJ_dW2": g,
            "W2_new": np.array(net.linears[1].params["W"]), "J_after": J_after, "lr": lr}


def sgd_steps_text(s: dict[str, Any]) -> str:
    """The five steps of :func:`sgd_step` as math with their numbers, one line each."""
    lr = s["lr"]
    return "\n".join([
        f"1. forward:  ŷ = W2 · 5(W1 x + b1)⁺ + b2 = {_f(s['y_hat'][0])}   (x = {_f(s['x'][0])})",
        f"2. loss:     J = ‖y − ŷ‖² = {s['J']:.6g}   (y = {_f(s['y'][0])})",
        "3. zero:     every dJ/dθ ← 0 (gradients accumulate otherwise)",
        f"4. backward: dJ/dW2 = (dJ/dz3)ᵀ z2ᵀ = {_f(s['dJ_dW2'])}   (no parameter changes)",
        f"5. update:   W2′ = W2 − {lr}·dJ/dW2 = {_f(s['W2_new'])}   (SGD: the only step that changes θ)",
        f"   J after the step: {s['J_after']:.6g} < {s['J']:.6g}",
    ])


def gradient_flow(depth: int = 10, width: int = 16, seed: int = 0) -> dict[str, list[float]]:
    """‖dJ/dz‖ layer by layer (input side first) through a deep stack, for sigmoid, tanh and ReLU,
    and the share of dead ReLU units (slope 0) per ReLU layer.

    Weights are drawn N(0, gain²/width), gain √2 for ReLU (He) and 1 otherwise, biases 0,
    so that the weights keep the norm on average and the activations' slopes decide:
    sigmoid's slope ≤ 1/4 shrinks the gradient at every layer, ReLU's slope of 1 does not.
    """
    from handgrad import MLP, make_loss

    out: dict[str, list[float]] = {}
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((64, width))
    y = rng.standard_normal((64, 1))
    for f in ("sigmoid", "tanh", "relu"):
        net = MLP(width, [width] * depth, 1, f=f, g="identity", seed=seed, dtype=np.float64)
        gain = np.sqrt(2.0) if f == "relu" else 1.0
        for lin in net.linears:
            W = lin.params["W"]
            W[...] = rng.standard_normal(W.shape) * gain / np.sqrt(W.shape[1])
            lin.params["b"][...] = 0.0
        acts = [x]
        for layer in net.layers:
            acts.append(np.asarray(layer.forward(acts[-1])))
        _, g = make_loss("mse")(y, acts[-1])
        norms, dead = [], []
        for i in range(len(net.layers) - 1, -1, -1):
            layer = net.layers[i]
            g = np.asarray(layer.backward(g))
            if layer.params:  # g is now dJ/d(input of a Linear): the gradient reaching that layer
                norms.append(float(np.linalg.norm(g)))
            elif f == "relu" and layer.derivation is not None and layer.derivation.name == "ReLU":
                dead.append(float(np.mean(acts[i] <= 0)))
        out[f] = norms[::-1]
        if f == "relu":
            out["dead_relu"] = dead[::-1]
    return out


def flow_table(flow: dict[str, list[float]]) -> str:
    """:func:`gradient_flow` as a table: ‖dJ/dz‖ at each Linear's input, and the dead share of the ReLU
    feeding it; then the ratio first / last layer for each activation."""
    dead = [float("nan"), *flow["dead_relu"]]
    rows = ["layer   sigmoid    tanh       ReLU       dead ReLUs"]
    for i, (a, b, c) in enumerate(zip(flow["sigmoid"], flow["tanh"], flow["relu"])):
        share = "" if np.isnan(dead[i]) else f"{dead[i]:.0%}"
        rows.append(f"{i:>5}   {a:.2e}   {b:.2e}   {c:.2e}   {share}")
    rows.append("‖dJ/dz‖ first / last: " + ", ".join(
        f"{f} {flow[f][0] / flow[f][-1]:.1e}" for f in ("sigmoid", "tanh", "relu")))
    return "\n".join(rows)


def questions(seed: int = 0) -> list[Question]:
    """The twelve questions, each answered at a point drawn with ``seed``."""
    ex = derive("regression", at="random", seed=seed, torch=False)
    v = ex.values
    K, m = v["z3"].shape[1], v["z2"].shape[1]
    dz3 = v["dJ/dz3"][0]
    z2 = v["z2"][0]
    step = sgd_step(seed=seed)
    flow = gradient_flow(seed=seed)
    qs = [
        Question("1.1(a)", "Name the five steps of one SGD training step, in order.",
                 "Which step changes θ? Which only computes numbers? Run one step and compare J before and after.",
                 "forward; loss; zero the gradients; backward (the chain rule computes dJ/dθ, nothing changes); "
                 "update θ ← θ − lr·dJ/dθ (the only step that is SGD)",
                 "",
                 "",
                 sgd_steps_text(step),
                 "handgrad homework --only 1.1(a)"),
        Question("1.1(b)", "Write each layer's input and output for x → Linear → 5·ReLU → Linear → identity.",
                 "Write the shape of every z; check z3 = W2 z2 + b2 numerically.",
                 "z1 = W(1)x + b(1), z2 = 5(z1)⁺, z3 = W(2)z2 + b(2), ŷ = z3",
                 "", "", f"z1 = {_f(v['z1'][0])}, z2 = {_f(z2)}, ŷ = {_f(v['ŷ'][0])}",
                 "handgrad explain --preset regression --at random"),
        Question("1.1(c)", "Give dℓ/dW1, dℓ/db1, dℓ/dW2, dℓ/db2.",
                 "Every gradient has its parameter's shape (W2: K × m). Check the product's shape, then one entry by "
                 "finite differences.",
                 "dℓ/dW2 = (dℓ/dz3)ᵀ z2ᵀ (K × m), dℓ/db2 = (dℓ/dz3)ᵀ, dℓ/dW1 = (dℓ/dz1)ᵀ xᵀ (m × n); "
                 "∂z3_i/∂W2_jk = δ_ij z2_k",
                 "",
                 "",
                 f"K = {K}, m = {m}: (dℓ/dz3)ᵀ z2ᵀ = {_f(np.outer(dz3, z2))} equals backward's dJ/dW2 = "
                 f"{_f(v['dJ/dW2'])}; z2 dℓ/dz3 has shape {np.outer(z2, dz3).shape}",
                 "handgrad explain --preset regression --at random"),
        Question("1.1(d)", "Give dz2/dz1, dŷ/dz3 and dℓ/dŷ.",
                 "A Jacobian of an m-vector by an m-vector is m × m. Which entries can be non-zero?",
                 "dz2/dz1 = diag(5·1[z1_j > 0]) (m × m), dŷ/dz3 = I_K, dℓ/dŷ = −2(y − ŷ)ᵀ (1 × K)",
                 "", "",
                 f"m = {m}, K = {K}: dz2/dz1 = diag({_f(np.diag(ex.jacobian_values['∂z2/∂z1']))})",
                 "handgrad homework --only 1.1(d)"),
        Question("1.2(a)", "Same network with f = tanh, g = sigmoid and the squared loss: what changes?",
                 "Differentiate tanh at z = 1 both ways and compare with a finite difference.",
                 "dz2/dz1 = diag(1 − tanh(z1)²) (m × m), dŷ/dz3 = diag(σ(z3)(1 − σ(z3))) (K × K)",
                 "",
                 "",
                 f"at z = 2: 1 − tanh(2)² = {1 - np.tanh(2.0) ** 2:.6f} vs 1 − tanh(4) = {1 - np.tanh(4.0):.6f}; "
                 f"finite difference {(np.tanh(2 + 1e-6) - np.tanh(2 - 1e-6)) / 2e-6:.6f}",
                 "handgrad explain --preset classification-mse --at random"),
        Question("1.2(b)", "Now with binary cross-entropy: the loss and dℓ/dŷ.",
                 "Evaluate the loss at y = 0, ŷ = 0.3 by hand; check dℓ/dŷ's factor 1/K by a finite difference.",
                 "ℓ = −(1/K) Σ [y_i log ŷ_i + (1 − y_i) log(1 − ŷ_i)], dℓ/dŷ_i = −(1/K)(y_i/ŷ_i − (1 − y_i)/(1 − ŷ_i)); "
                 "with sigmoid, dℓ/dz3 = (ŷ − y)ᵀ/K",
                 "",
                 "",
                 f"y = 0, ŷ = 0.3: −log(0.7) = {-np.log(0.7):.6f}, the worked answers' term gives {-(1 - np.log(0.3)):.6f}",
                 "handgrad explain --preset classification-bce --at random"),
        Question("1.2(c)", "Why does ReLU help in a deeper network?",
                 "Compute ‖dJ/dz‖ layer by layer through ten layers of each activation. Is sigmoid's output negative?",
                 "ReLU's slope is exactly 1 where active, so products of slopes do not shrink with depth; sigmoid's "
                 "slope is ≤ 1/4 and tanh's < 1 away from 0, so their products vanish (a dead ReLU, slope 0, is "
                 "ReLU's own failure)",
                 "", "",
                 flow_table(flow),
                 "handgrad homework --only 1.2(c)"),
        Question("1.3(a)", "What is softmax's relation to arg max?",
                 "Compute softmax(βx) for growing β; try a vector with a tie.",
                 "softmax(βx) is a smooth arg max: it tends to the one-hot vector of the largest entry as β → ∞ "
                 "(with ties, to the uniform vector over the tied maxima)",
                 "",
                 "",
                 f"x = [1, 3, 2], β = 50: {_f(softargmax([1.0, 3.0, 2.0], 50.0))}; tie [1, 3, 3]: limit "
                 f"{_f(one_hot_argmax([1.0, 3.0, 3.0]))}",
                 "handgrad plot softmax"),
        Question("1.3(b)", "Draw the computational graph of the network and its loss.",
                 "Every function is a node; every variable an edge with its shape.",
                 "drawn by handgrad graph (boxes: functions, circles: variables)", "", "",
                 "", "handgrad graph --preset regression --grad -o graph.svg"),
        Question("1.3(c)", "Plot the derivatives of GELU, LeakyReLU(0.01), ReLU and tanh.",
                 "What is each derivative at 0? Where does it jump?",
                 "drawn by handgrad plot activations", "", "", "",
                 "handgrad plot activations --range -3,3"),
        Question("1.3(d)", "Which transformations are linear? Why are non-linear ones needed?",
                 "Check T(a + b) = T(a) + T(b) and T(0) = 0 numerically.",
                 "rotation, reflection, scaling, shearing are linear; translation is affine; stacked linear/affine "
                 "maps are one affine map, so non-linearities are needed",
                 "", "",
                 "T(x) = x + 1: T(0) = 1 ≠ 0, T(1 + 1) = 3 ≠ T(1) + T(1) = 4", "handgrad plot linear-maps"),
        Question("1.3(e)", "Write the MSE training objective.",
                 "How many networks are there? Count the θ's.",
                 "argmin_θ (1/N) Σ_i ‖F(x_i; θ) − y_i‖²: one network F for every sample",
                 "", "", "",
                 "handgrad train --help"),
    ]
    for q in qs:  # the seed's answer and the correction come from the one errata table
        if q.id in ERRATA:
            q.seed, q.correction = ERRATA[q.id]
    return qs


def render(qs: list[Question], fmt: str = "text", hints: bool = False) -> str:
    """The questions with answers (an answer key) or, with ``hints``, only what to check."""
    if fmt == "latex":
        return _latex(qs, hints)
    md = fmt == "markdown"
    lines = ["# The homework, answered by handgrad" if md else "handgrad homework", ""]
    for q in qs:
        lines.append(f"## {q.id} {q.asks}" if md else f"{q.id}  {q.asks}")
        rows = [("hint", q.hint)] if hints else [
            ("answer", q.answer), ("the worked answers say", q.seed), ("correct", q.correction), ("at the point", q.evidence),
            ("reproduce", q.command)]
        for key, val in rows:
            if val and md:
                lines.append(f"- **{key}**: " + val.replace("\n", "  \n  "))
            elif val:
                lines.append(f"    {key}: " + val.replace("\n", "\n      "))
        if q.picture and not hints:
            lines.append(f"\n![{q.id}]({q.picture})" if md else f"    drawn: {q.picture}")
        lines.append("")
    return "\n".join(lines)


def _latex(qs: list[Question], hints: bool) -> str:
    from . import latex_document, latex_text

    body = [r"\section*{The homework, answered by handgrad}"]
    for q in qs:
        body.append(rf"\subsection*{{{latex_text(q.id + ' ' + q.asks)}}}")
        rows = [("hint", q.hint)] if hints else [
            ("answer", q.answer), ("the worked answers say", q.seed), ("correct", q.correction), ("at the point", q.evidence),
            ("reproduce", q.command)] + ([("drawn", q.picture)] if q.picture and not hints else [])
        body.append(r"\begin{itemize}")
        body += [rf"\item \textbf{{{k}}}: {latex_text(v)}" for k, v in rows if v]
        body.append(r"\end{itemize}")
    return latex_document("\n".join(body))


__all__ = ["Question", "gradient_flow", "questions", "render", "flow_table", "sgd_step", "sgd_steps_text"]
