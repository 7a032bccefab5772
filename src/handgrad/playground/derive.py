"""The derivation panel: one parameter's gradient as a chain of Jacobians, evaluated.

For the network a₀ = x, z_k = a_{k−1} W_kᵀ + b_k, a_k = f_k(z_k), ŷ = a_L and
the loss J(y, ŷ), one sample n contributes (numerator layout, the homework's
convention: a scalar's derivative by a column vector is a row)::

    dJ/dθ = dJ/dŷ · dŷ/dz_L · dz_L/da_{L−1} · da_{L−1}/dz_{L−1} ⋯ dz_l/dθ
            (1×K)   (K×K)      (K×m)           (m×m)                 (m_l×1)

where every da/dz is diagonal (f′(z) on the diagonal), every dz_k/da_{k−1} is W_k,
and dz_l/dW_l[i,j] is the column with a_{l−1}[n, j] in row i and zeros elsewhere
(dz_l/db_l[i] has a 1 there). The batch's gradient is the sum over its samples.

The factors are computed here from the forward values, independently of
handgrad's backward: dJ/dŷ from the loss's own gradient, f′(z) from each
activation's Jacobian (its backward applied to ones, which for a diagonal
Jacobian is that diagonal), W from the parameters. The panel then shows
backward's value next to the chain's, and :func:`verify` compares both with
central finite differences.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .protocol import Target

FD_EPS = 1e-6  # central-difference step (float64)


def forward_values(net: Any, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """``(a, z, f′(z))``: a[0] = x, then each Linear's z_k and activation output a_k and slope f_k′(z_k)."""
    a, z, slope = [x], [], []
    layers = net.layers
    for k in range(0, len(layers), 2):
        linear, act = layers[k], layers[k + 1]
        W, b = linear.params["W"], linear.params["b"]
        zk = a[-1] @ W.T + b
        out = act.forward(zk)
        slope.append(act.backward(np.ones_like(zk)))  # diagonal Jacobian: VJP with ones gives its diagonal
        act.clear_cache()
        z.append(zk)
        a.append(out)
    return a, z, slope


def _layer_formulas(net: Any) -> list[str]:
    lines = []
    layers = net.layers
    for k in range(0, len(layers), 2):
        i = k // 2 + 1
        lin, act = layers[k], layers[k + 1]
        last = k + 2 == len(layers)
        lines.append(lin.derivation.forward.render("text", x=f"a{i - 1}", y=f"z{i}", W=f"W{i}", b=f"b{i}"))
        syms = {**act.symbols(), "x": f"z{i}", "y": "ŷ" if last else f"a{i}"}
        lines.append(act.derivation.forward.render("text", **syms))
    return lines


def _round(a: np.ndarray) -> list:
    return np.asarray(a, dtype=np.float64).tolist()


def _upstream(net: Any, loss: Any, n: int, a: list, slope: list, dJ_dyhat: np.ndarray,
              ell: int) -> tuple[list[dict[str, Any]], np.ndarray]:
    """The factors from dJ/dŷ down to da_ℓ/dz_ℓ, and their product dJ/dz_ℓ (N, m_ℓ)."""
    L, K = len(slope), a[-1].shape[1]
    note = "from the loss: " + loss.derivation.backward.render("text", y="y", p="ŷ", N=str(n), K=str(K))
    factors = [{"name": "dJ/dŷ", "shape": f"(1×{K}) per sample", "rows": _round(dJ_dyhat), "note": note},
               {"name": f"dŷ/dz{L}", "shape": f"({K}×{K}) diagonal", "rows": _round(slope[-1]),
                "note": "diagonal entries g′(z), one row per sample"}]
    delta = dJ_dyhat * slope[-1]
    for k in range(L - 1, ell - 1, -1):  # k: 1-based index of the layer below W_{k+1}
        W_next = net.linears[k].params["W"]
        factors.append({"name": f"dz{k + 1}/da{k} = W{k + 1}", "shape": f"({W_next.shape[0]}×{W_next.shape[1]})",
                        "rows": _round(W_next), "note": "the same for every sample"})
        factors.append({"name": f"da{k}/dz{k}", "shape": f"({W_next.shape[1]}×{W_next.shape[1]}) diagonal",
                        "rows": _round(slope[k - 1]), "note": "diagonal entries f′(z), one row per sample"})
        delta = (delta @ W_next) * slope[k - 1]
    return factors, delta


def _local(a: list, z: list, kind: str, ell: int, row: int, col: int) -> tuple[dict[str, Any], np.ndarray]:
    """dz_ℓ/dθ: its one non-zero entry (row ``row``) for each sample."""
    m = z[ell - 1].shape[1]
    if kind == "W":
        local = a[ell - 1][:, col]
        return ({"name": f"dz{ell}/dW{ell}[{row},{col}]", "shape": f"({m}×1)", "rows": _round(local[:, None]),
                 "note": f"a{ell - 1}[n,{col}] in row {row}, zeros elsewhere"}, local)
    local = np.ones(len(z[0]))
    return ({"name": f"dz{ell}/db{ell}[{row}]", "shape": f"({m}×1)", "rows": _round(local[:, None]),
             "note": f"1 in row {row}, zeros elsewhere"}, local)


def derivation(net: Any, loss: Any, x: np.ndarray, y: np.ndarray, target: Target) -> dict[str, Any]:
    """The panel's content for one clicked weight, bias or neuron (a neuron shows its bias)."""
    a, z, slope = forward_values(net, x)
    ell, row, col = target.layer, target.row, target.col
    kind = "b" if target.kind == "neuron" else target.kind
    J, dJ_dyhat = loss(y, a[-1])
    factors, delta = _upstream(net, loss, len(x), a, slope, dJ_dyhat, ell)
    last, local = _local(a, z, kind, ell, row, col)
    terms = delta[:, row] * local  # sample n's product of the whole chain
    chain = float(terms.sum())
    backward = backward_value(net, loss, x, y, kind, ell, row, col)
    return {
        "type": "derivation", "target": {"kind": target.kind, "layer": ell, "row": row, "col": col},
        "name": f"W{ell}[{row},{col}]" if kind == "W" else f"b{ell}[{row}]", "J": float(J),
        "forward": _layer_formulas(net),
        "loss": loss.derivation.forward.render("text", y="y", p="ŷ", N=str(len(x)), K=str(a[-1].shape[1])),
        "factors": [*factors, last], "delta": _round(delta[:, row]), "terms": _round(terms), "chain": chain,
        "backward": backward, "difference": abs(chain - backward),
        "batch": {"x": _round(x), "y": _round(y)},
        "params": {key: _round(v) for key, v in net.params.items()},
        "neuron": target.kind == "neuron",
    }


def backward_value(net: Any, loss: Any, x: np.ndarray, y: np.ndarray, kind: str, layer: int, row: int,
                   col: int) -> float:
    """The same gradient entry from handgrad's backward (forward, then backward_loss with cleared gradients)."""
    net.forward(x)
    net.backward_loss(loss, y, zero_grad=True)
    g = net.linears[layer - 1].grads["dJ_dW" if kind == "W" else "dJ_db"]
    value = float(g[row, col] if kind == "W" else g[row])
    net.clear_cache()
    return value


def verify(net: Any, loss: Any, x: np.ndarray, y: np.ndarray, target: Target) -> dict[str, Any]:
    """Central finite differences, (J(θ+ε) − J(θ−ε)) / 2ε with ε = 1e-6, against backward's value."""
    kind = "b" if target.kind == "neuron" else target.kind
    p = net.linears[target.layer - 1].params["W" if kind == "W" else "b"]
    where = (target.row, target.col) if kind == "W" else (target.row,)
    original = float(p[where])
    values = []
    try:
        for shift in (FD_EPS, -FD_EPS):
            p[where] = original + shift
            J, _ = loss(y, net.forward(x))
            values.append(float(J))
    finally:
        p[where] = original
        net.clear_cache()
    numeric = (values[0] - values[1]) / (2 * FD_EPS)
    analytic = backward_value(net, loss, x, y, kind, target.layer, target.row, target.col)
    return {"type": "verify", "target": {"kind": target.kind, "layer": target.layer, "row": target.row,
                                         "col": target.col},
            "numeric": numeric, "backward": analytic, "difference": abs(numeric - analytic), "eps": FD_EPS}
