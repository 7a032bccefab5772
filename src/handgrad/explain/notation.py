r"""The homework's notation: one sample, column vectors, ``z1 = W(1) x + b(1)``, numerator layout.

The batched code (and the rest of :mod:`handgrad.explain`) writes samples as rows,
``z1 = x W1ᵀ + b1``, as PyTorch does. The homework writes one sample as a column and
its Jacobians in numerator layout: the derivative of a scalar by a column vector is a
row, and ``∂z3/∂W2`` is a K × (K·m) matrix with entries ``∂z3_i/∂W2_jk = δ_ij z2_k``.
This module renders a network in that notation and bridges the two: how the
1 × (K·m) row of the chain becomes the K × m gradient, and how the batch form follows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PER_SAMPLE_LOSS = {
    "squared_error": ("ℓ = ‖y − ŷ‖²", "∂ℓ/∂ŷ = −2 (y − ŷ)ᵀ"),
    "mse": ("ℓ = (1/K) ‖y − ŷ‖²", "∂ℓ/∂ŷ = −(2/K) (y − ŷ)ᵀ"),
    "bce": ("ℓ = −(1/K) Σ_i [y_i log ŷ_i + (1 − y_i) log(1 − ŷ_i)]",
            "∂ℓ/∂ŷ_i = −(1/K) (y_i/ŷ_i − (1 − y_i)/(1 − ŷ_i))"),
    "bce_with_logits": ("ℓ = −(1/K) Σ_i [y_i log σ(z_i) + (1 − y_i) log(1 − σ(z_i))]", "∂ℓ/∂z = (σ(z) − y)ᵀ / K"),
    "cross_entropy": ("ℓ = −Σ_i y_i log ŷ_i  (y one-hot)", "∂ℓ/∂z = (ŷ − y)ᵀ  (softmax and cross-entropy fused)"),
}


def _fmt(a: Any) -> str:
    return np.array2string(np.asarray(a), precision=4, suppress_small=True, separator=", ", max_line_width=10_000)


def render_homework(net: Any, loss: Any, values: dict[str, np.ndarray] | None = None) -> str:
    """The network and its gradients in the homework's notation, evaluated on the first sample when
    ``values`` (an :class:`~handgrad.explain.Explanation`'s values) are given."""
    from handgrad import Linear

    from . import layer_steps, param_jacobian

    steps = layer_steps(net)
    lines = ["handgrad explain --notation homework: one sample, column vectors, numerator layout", ""]
    lines.append("Forward pass (x ∈ ℝⁿ a column vector):")
    k = 0
    for st in steps:
        x, y = st.x.text, st.y.text
        if isinstance(st.layer, Linear):
            k += 1
            lines.append(f"  {y} = W({k}) {x} + b({k})        {y} ∈ ℝ^{st.dim_out}, W({k}) ∈ ℝ^({st.dim_out}×{st.dim_in})")
        else:
            lines.append(f"  {y} = {st.layer.derivation_record().forward.render('text', **st.symbols()).split(' = ', 1)[-1]}"
                         f"        element-wise, {y} ∈ ℝ^{st.dim_out}")
    loss_text, grad_text = PER_SAMPLE_LOSS.get(getattr(loss, "name", ""), (f"ℓ = {loss!r}", ""))
    lines += [f"  {loss_text}", ""]
    lines.append("Jacobians (numerator layout: rows index the output, columns the input):")
    lines.append(f"  {grad_text}        a 1 × {steps[-1].dim_out} row: the derivative of a scalar by a column")
    for st in reversed(steps):
        entries = st.layer.derivation_record().jacobian.render("text", **st.symbols())
        lines.append(f"  ∂{st.y.text}/∂{st.x.text}   {st.dim_out} × {st.dim_in}, {st.layer.derivation_record().structure}: {entries}")
    lin = [st for st in steps if isinstance(st.layer, Linear)]
    last = lin[-1]
    z, zin, Kd, md = last.y.text, last.x.text, last.dim_out, last.dim_in
    L = len(lin)
    lines += [
        f"  ∂{z}/∂W({L})   {Kd} × ({Kd}·{md}): W({L}) flattened row by row; entries ∂{z}_i/∂W({L})_jk = δ_ij {zin}_k",
        "",
        "The chain, as a product of those matrices:",
        f"  dℓ/dW({L}) = ∂ℓ/∂{z} · ∂{z}/∂W({L})      (1 × {Kd}) ({Kd} × {Kd}·{md}) = 1 × ({Kd}·{md})",
        f"  entry (j, k): Σ_i ∂ℓ/∂{z}_i δ_ij {zin}_k = ∂ℓ/∂{z}_j · {zin}_k",
        "",
        "Bridge 1: from the 1 × (K·m) row to the K × m gradient",
        f"  the row's entry j·{md} + k is (dℓ/dW({L}))_jk; reshaped to {Kd} × {md} it is (∂ℓ/∂{z})ᵀ {zin}ᵀ,",
        f"  the gradient in W({L})'s shape (what backward stores). {zin} ∂ℓ/∂{z} is its {md} × {Kd} transpose:",
        "  both layouts are conventions; equating them (the seed's 1.1(c)) is the mistake.",
        "",
        "Bridge 2: from one column to a batch of rows (the code's layout, as in PyTorch)",
        "  stack the N samples as rows: X is N × n, and z1ᵀ = xᵀ W(1)ᵀ + b(1)ᵀ for each row gives",
        "  Z1 = X W1ᵀ + b1; summing the per-sample gradients gives dJ/dW = (dJ/dZ)ᵀ Z_in over the N samples.",
    ]
    if values:
        g = np.asarray(values[f"dJ/d{z}"])[:1]
        P = param_jacobian(last.layer, "W", np.asarray(values[zin])[:1])
        if P is None:
            raise ValueError(f"the homework notation needs a Linear output layer, got {last.layer!r}")
        row = np.einsum("no,nop->p", g, P)
        lines += ["", "At the point (first sample):",
                  f"  ∂ℓ/∂{z} = {_fmt(g[0])}",
                  f"  {zin} = {_fmt(np.asarray(values[zin])[0])}",
                  f"  ∂{z}/∂W({L}) = {_fmt(P[0])}",
                  f"  the 1 × ({Kd}·{md}) row = {_fmt(row)}",
                  f"  reshaped to {Kd} × {md} = {_fmt(row.reshape(int(g.shape[1]), -1))}"]
        if np.asarray(values["x"]).shape[0] == 1:
            lines.append(f"  equals dJ/dW{L} from backward: {np.allclose(row.reshape(values[f'dJ/dW{L}'].shape), values[f'dJ/dW{L}'])}")
    return "\n".join(lines) + "\n"


def render_homework_as(text: str, fmt: str) -> str:
    """:func:`render_homework`'s text as Markdown (a titled text block) or a LaTeX document
    (each line in words, its formulas set in math)."""
    from .render import latex_document, note_latex

    title, _, body = text.partition("\n")
    if fmt == "markdown":
        return f"# {title}\n\n```text\n{body.strip()}\n```\n"
    if fmt == "latex":
        lines = [rf"\section*{{{note_latex(title)}}}"]
        for line in body.strip("\n").splitlines():
            stripped = line.strip()
            if not stripped:
                lines.append(r"\medskip")
            elif not line.startswith(" "):
                lines.append(rf"\subsection*{{{note_latex(stripped.rstrip(':'))}}}")
            else:
                lines.append(r"\noindent\hspace*{1em}" + note_latex(stripped) + r"\par")
        return latex_document("\n".join(lines))
    return text


__all__ = ["PER_SAMPLE_LOSS", "render_homework", "render_homework_as"]
