"""The derivation as equations: forward pass, the composed network, the chain of Jacobians, the matrix form, the expanded gradients and every Jacobian, each rendered from the layers' own derivation records; :func:`derive` and :func:`explain`."""

from __future__ import annotations

import re
from typing import Any

from .. import Loss, Sequential, make_loss
from ..derivation import Formula
from .evaluation import evaluate_at
from .presets import PRESETS, build_network, seed_question
from .records import Equation, Explanation, check_format
from .symbols import (
    Step,
    Sym,
    enclosed,
    grad_symbol,
    is_atomic,
    layer_label,
    layer_steps,
    loss_step,
    loss_symbols,
    param_formula,
    partial_symbol,
    reads_logits,
    render_formula,
    rhs,
    shape_text,
    sub_index,
    substitute,
    variable_widths,
)


def _forward_equations(steps: list[Step], loss: Loss, logits: bool = False) -> list[Equation]:
    eqs = []
    for st in steps:
        text, latex = render_formula(st.layer.derivation_record().forward, st.symbols())
        shape = f"{st.x.text} {shape_text('N', st.dim_in)} → {st.y.text} {shape_text('N', st.dim_out)}"
        shape_l = rf"{st.y.latex} \in {shape_text('N', st.dim_out, fmt='latex')}"
        if st.params:
            w = st.params.get("W")
            parts = [f"{p.text} {shape_text(st.dim_out, st.dim_in) if k == 'W' else shape_text(st.dim_out)}" for k, p in st.params.items()]
            shape += ";  " + ", ".join(parts)
            if w is not None:
                shape_l += rf",\ {w.latex} \in {shape_text(st.dim_out, st.dim_in, fmt='latex')}"
        eqs.append(Equation(f"forward:{st.y.text}", "forward", text, latex, shape, shape_l))
    psym = loss_step(steps, logits)[0]
    text, latex = render_formula(loss.derivation.forward, loss_symbols(psym))
    note = f"the loss reads the logits {psym.text}: {layer_label(steps[-1].layer)} is folded into it" if logits else ""
    eqs.append(Equation("forward:J", "forward", text, latex, "() a scalar", r"J \in \mathbb{R}", note=note))
    return eqs


def _composed_equations(steps: list[Step], loss: Loss, logits: bool = False) -> list[Equation]:
    expr = before_last = steps[0].x.pair
    for st in steps:
        before_last = expr
        syms = st.symbols()
        if not is_atomic(expr[0]) and _needs_parens(st.layer.derivation_record().forward, syms):
            syms["x"] = (f"({expr[0]})", rf"\left({expr[1]}\right)")
        else:
            syms["x"] = expr
        text, latex = render_formula(st.layer.derivation_record().forward, syms)
        expr = (rhs(text), rhs(latex))
    last = steps[-1].y
    eqs = [Equation(f"composed:{last.text}", "composed", f"{last.text} = {expr[0]}", f"{last.latex} = {expr[1]}")]
    syms = loss_symbols(last)
    expr = before_last if logits else expr
    wrapped = (f"({expr[0]})", rf"\left({expr[1]}\right)") if not is_atomic(expr[0]) else expr
    syms["p"] = wrapped
    text, latex = render_formula(loss.derivation.forward, syms)
    eqs.append(Equation("composed:J", "composed", text, latex))
    return eqs


def _needs_parens(f: Formula, syms: dict[str, Any]) -> bool:
    """Does substituting a compound expression for $x in ``f`` need parentheses?"""
    mark = "\ue000"
    right = rhs(f.render("text", **{**syms, "x": mark}))
    if right.strip() == mark:
        return False
    return not all(enclosed(right, m.start(), m.end()) for m in re.finditer(mark, right))


def _chain_equations(steps: list[Step], loss: Loss, fused: bool, logits: bool = False) -> list[Equation]:
    """dJ/dθ = ∂J/∂ŷ · ∂ŷ/∂z_{2L-1} · ... · ∂z_k/∂θ, one sample, numerator layout."""
    eqs = []
    top, top_dim = loss_step(steps, logits)
    end = len(steps) - 1 if logits else len(steps)
    for st in reversed(steps[:end]):
        for key, p in st.params.items():
            factors = [(partial_symbol(Sym("J", "J"), top), f"1×{top_dim}")]
            for later in reversed(steps[st.index + 1:end]):
                factors.append((partial_symbol(later.y, later.x), f"{later.dim_out}×{later.dim_in}"))
            pshape = f"{st.dim_out}·{st.dim_in}" if key == "W" else st.dim_out
            factors.append((partial_symbol(st.y, p), f"{st.dim_out}×{pshape}" if key == "W" else f"{st.dim_out}×{st.dim_out}"))
            text = f"{grad_symbol(p).text} = " + " · ".join(f.text for f, _ in factors)
            latex = f"{grad_symbol(p).latex} = " + r" \, ".join(f.latex for f, _ in factors)
            shape = " ".join(f"({s})" for _, s in factors)
            note = "summed over the N samples of the batch"
            if key == "W":  # numerator layout gives a row; the gradient has W's shape
                note += (f"; the 1 × ({st.dim_out}·{st.dim_in}) row, reshaped row by row, is the {st.dim_out} × "
                         f"{st.dim_in} gradient in {p.text}'s shape, since ∂{st.y.text}_i/∂{p.text}_jk = "
                         f"δ_ij {st.x.text}_k")
            if fused and not logits:
                fused_lhs = grad_symbol(steps[-1].x).text
                note += (f"; the first two factors fuse: ∂J/∂{top.text} · ∂{top.text}/∂{steps[-1].x.text} = {fused_lhs}, "
                         "given directly by the loss (see the matrix form)")
            eqs.append(Equation(f"chain:{grad_symbol(p).text}", "chain", text, latex, shape, note=note))
    return eqs


def _backward_equations(steps: list[Step], loss: Loss, fused: bool,
                        logits: bool = False) -> tuple[list[Equation], list[Equation]]:
    """The batch (matrix) form that ``backward`` computes, and each gradient fully expanded."""
    top = steps[-1].y
    lsyms = loss_symbols(top, steps[-1].x)
    matrix, expanded = [], []
    if not logits:
        text, latex = render_formula(loss.derivation.backward, lsyms)
        matrix.append(Equation(f"backward:dJ/d{top.text}", "backward", text, latex, shape_text("N", steps[-1].dim_out),
                               shape_text("N", steps[-1].dim_out, fmt="latex")))
        upstream = (rhs(text), rhs(latex))
    remaining = list(reversed(steps))
    if fused and loss.fused_formula is not None:
        st = remaining.pop(0)
        text, latex = render_formula(loss.fused_formula, lsyms)
        unfused = render_formula(st.layer.derivation_record().backward, st.symbols())[0]
        matrix.append(Equation(f"backward:dJ/d{st.x.text}", "backward", text, latex, shape_text("N", st.dim_in),
                               shape_text("N", st.dim_in, fmt="latex"),
                               note=f"{layer_label(st.layer)} and the {loss.derivation.name} fuse; unfused: {unfused}"))
        upstream = (text.split(" = ")[-1], latex.split(" = ")[-1])
    for st in remaining:
        syms = st.symbols()
        pattern = grad_symbol(st.y).pair
        for key, p in st.params.items():
            f = param_formula(st.layer, key)
            text, latex = render_formula(f, syms)
            shape = shape_text(st.dim_out, st.dim_in) if key == "W" else shape_text(st.dim_out)
            shape_l = shape_text(st.dim_out, st.dim_in, fmt="latex") if key == "W" else shape_text(st.dim_out, fmt="latex")
            matrix.append(Equation(f"backward:{grad_symbol(p).text}", "backward", text, latex, shape, shape_l))
            et, el = substitute((text, latex), pattern, upstream)
            expanded.append(Equation(f"expanded:{grad_symbol(p).text}", "expanded", et, el, shape, shape_l))
        if st.index == 0:
            break
        text, latex = render_formula(st.layer.derivation_record().backward, syms)
        matrix.append(Equation(f"backward:{grad_symbol(st.x).text}", "backward", text, latex, shape_text("N", st.dim_in),
                               shape_text("N", st.dim_in, fmt="latex")))
        sub = substitute((rhs(text), rhs(latex)), pattern, upstream)
        upstream = sub
    return matrix, expanded


def _jacobian_equations(steps: list[Step], loss: Loss, sizes: dict[str, int], logits: bool = False) -> list[Equation]:
    eqs = []
    for st in steps:
        d = st.layer.derivation_record()
        lab = partial_symbol(st.y, st.x)
        entries = render_formula(d.jacobian, st.symbols())
        dims = f"{st.dim_out} × {st.dim_in}"
        nums = f"{sizes.get(st.dim_out, '?')} × {sizes.get(st.dim_in, '?')}"
        if d.structure == "weight" and "W" in st.params:
            head = f"{lab.text} = {st.params['W'].text}  ({dims} = {nums}), the weight matrix"
            head_l = rf"{lab.latex} = {st.params['W'].latex} \in \mathbb{{R}}^{{{sub_index(st.dim_out)} \times {sub_index(st.dim_in)}}}"
        else:
            head = f"{lab.text}  ({dims} = {nums}), {d.structure}"
            head_l = rf"{lab.latex} \in \mathbb{{R}}^{{{sub_index(st.dim_out)} \times {sub_index(st.dim_in)}}}"
        eqs.append(Equation(f"jacobian:{lab.text}", "jacobian", f"{head}\n{entries[0]}", rf"{head_l}: \quad {entries[1]}",
                            f"{dims} ({nums}) per sample", structure=d.structure, why=d.why))
    top, top_dim = loss_step(steps, logits)
    lab = partial_symbol(Sym("J", "J"), top)
    entries = render_formula(loss.derivation.jacobian, loss_symbols(top))
    # J reads the whole batch, so its entries carry the sample index n: row n (1 × K) belongs to sample n
    head = (f"{lab.text}  (N × {top_dim} for the batch; row n, 1 × {top_dim} = 1 × {sizes.get(top_dim, '?')}, is "
            f"sample n's row: the gradient of a scalar)")
    head_l = rf"{lab.latex} \in \mathbb{{R}}^{{N \times {sub_index(top_dim)}}}"
    eqs.append(Equation(f"jacobian:{lab.text}", "jacobian", f"{head}\n{entries[0]}", rf"{head_l}: \quad {entries[1]}",
                        f"N × {top_dim}; 1 × {top_dim} per sample", structure=loss.derivation.structure, why=loss.derivation.why))
    return eqs


def derive(net: Any, loss: Any = None, *, at: Any = None, target: Any = None, seed: Any = 0, batch: int = 1,
           check: bool = True, torch: bool | None = None) -> Explanation:
    """The structured explanation of ``loss(y, net(x))``; see :func:`explain`."""
    net, loss = _resolve(net, loss)
    steps = layer_steps(net)
    dims = variable_widths(net)
    sizes = {name: size for name, size in dims}
    fused, logits = net.fused_pair(loss), reads_logits(net, loss)
    equations = _forward_equations(steps, loss, logits) + _composed_equations(steps, loss, logits)
    equations += _chain_equations(steps, loss, fused, logits)
    matrix, expanded = _backward_equations(steps, loss, fused, logits)
    equations += matrix + expanded + _jacobian_equations(steps, loss, sizes, logits)
    arch = " → ".join(["x", *(layer_label(layer) for layer in net.layers), "ŷ"])
    title = f"{arch}; loss: {loss.derivation.name}" + (f" ({loss.reduction})" if hasattr(loss, "reduction") else "")
    config = {"layers": [layer_label(layer) for layer in net.layers], "loss": repr(loss), "sizes": sizes,
              "question": seed_question(net, loss)}
    ex = Explanation(title, config, sizes, equations)
    if at is not None and at is not False:
        evaluate_at(ex, net, loss, at=at, target=target, seed=seed, batch=batch, check=check, torch=torch)
    return ex


def _resolve(net: Any, loss: Any) -> tuple[Sequential, Loss]:
    if isinstance(net, str):
        built, preset_loss = build_network(net)
        return built, make_loss(loss) if loss is not None else preset_loss
    if not isinstance(net, Sequential):
        raise TypeError(f"net must be a handgrad Sequential/MLP or a preset name ({', '.join(PRESETS)}), "
                        f"got {type(net).__name__}")
    if loss is None:
        raise ValueError("a loss is needed to explain the backward pass, e.g. loss='mse' or 'bce'")
    return net, make_loss(loss)


def explain(net: Any, loss: Any = None, fmt: str = "text", at: Any = None, *, target: Any = None, seed: Any = 0,
            batch: int = 1, check: bool = True, torch: bool | None = None, standalone: bool = True) -> str:
    """The derivation of ``loss(y, net(x))`` as text (``fmt``: "text", "markdown" or "latex").

    Parameters
    ----------
    net : a :class:`~handgrad.model.Sequential` / ``MLP``, or a preset name
        ("regression", "classification-mse", "classification-bce", "classification-relu").
    loss : a loss or its name (default: the preset's).
    at : None (symbolic only), ``"random"`` (x drawn with ``seed``, ``batch`` rows),
        an array of inputs (n,) or (N, n), or a pair ``(x, y)``.
    target : the targets y when ``at`` gives only x (else drawn with ``seed``).
    check : with ``at``, check every gradient against the network's backward, finite
        differences and (``torch`` None: where installed) PyTorch.
    standalone : LaTeX only: a complete document (True) or a fragment.
    """
    check_format(fmt)
    return derive(net, loss, at=at, target=target, seed=seed, batch=batch, check=check, torch=torch).render(
        fmt, standalone)


__all__ = ['derive', 'explain']
