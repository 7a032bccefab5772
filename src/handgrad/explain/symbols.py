"""Names in Unicode and LaTeX (x, z1, ŷ, W1, ∂z2/∂z1, dJ/dW1), each layer's step with its symbols and widths, and the text substitutions that compose formulas."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .. import CrossEntropyLoss, Layer, Linear, Loss, Scale, Sequential
from ..derivation import Formula


@dataclass(frozen=True)
class Sym:
    """A name in Unicode text and in LaTeX."""

    text: str
    latex: str

    @property
    def pair(self) -> tuple[str, str]:
        return (self.text, self.latex)


def var_symbol(i: int, last: bool) -> Sym:
    if i == 0:
        return Sym("x", r"\mathbf{x}")
    if last:
        return Sym("ŷ", r"\hat{\mathbf{y}}")
    return Sym(f"z{i}", rf"\mathbf{{z}}_{{{i}}}")


def param_symbol(key: str, k: str) -> Sym:
    return Sym(f"{key}{k}", rf"\mathbf{{{key}}}^{{({k})}}")


def partial_symbol(a: Sym, b: Sym) -> Sym:
    return Sym(f"∂{a.text}/∂{b.text}", rf"\frac{{\partial {a.latex}}}{{\partial {b.latex}}}")


def grad_symbol(b: Sym) -> Sym:
    return Sym(f"dJ/d{b.text}", rf"\frac{{\partial J}}{{\partial {b.latex}}}")


def variable_widths(net: Sequential) -> list[tuple[str, int]]:
    """The width of every variable x, z1, ..., ŷ as (symbol, size): n, m (m1, m2 ...), K."""
    linears = net.linears
    n_hidden = len(linears) - 1
    widths: list[tuple[str, int]] = []
    first = linears[0].in_features if linears else None
    widths.append(("n", first if first is not None else 0))
    k = 0
    for layer in net.layers:
        if isinstance(layer, Linear):
            k += 1
            name = "K" if k == len(linears) else ("m" if n_hidden == 1 else f"m{k}")
            widths.append((name, layer.out_features))
        else:
            widths.append(widths[-1])
    return widths


def shape_text(*names: str, fmt: str = "text") -> str:
    if fmt == "latex":
        dims = [rf"{sub_index(d)}" for d in names]
        return r"\mathbb{R}^{" + r" \times ".join(dims) + "}" if dims else r"\mathbb{R}"
    return "(" + ", ".join(names) + ("," if len(names) == 1 else "") + ")"


def sub_index(d: str) -> str:
    m = re.fullmatch(r"([A-Za-z]+)(\d+)", d)
    return f"{m.group(1)}_{{{m.group(2)}}}" if m else d


@dataclass
class Step:
    index: int
    layer: Layer
    x: Sym
    y: Sym
    dim_in: str
    dim_out: str
    params: dict[str, Sym]

    def symbols(self) -> dict[str, Any]:
        syms = dict(self.layer.symbols())
        syms.update({"x": self.x.pair, "y": self.y.pair})
        syms.update({k: v.pair for k, v in self.params.items()})
        return syms


def layer_steps(net: Sequential) -> list[Step]:
    dims = variable_widths(net)
    suffix = {id(layer): k for k, layer in net.named_layers()}
    last = len(net.layers)
    steps = []
    for i, layer in enumerate(net.layers):
        if layer.derivation is None:
            raise ValueError(f"{layer!r} declares no derivation record, so it cannot be explained; "
                             "give its class a `derivation = activation_record(...)` (handgrad.derivation)")
        params = {key: param_symbol(key, suffix[id(layer)]) for key in layer.params} if layer.params else {}
        steps.append(Step(i, layer, var_symbol(i, False), var_symbol(i + 1, i + 1 == last), dims[i][0], dims[i + 1][0], params))
    return steps


def render_formula(f: Formula, syms: dict[str, Any]) -> tuple[str, str]:
    return f.render("text", **syms), f.render("latex", **syms)


def rhs(s: str) -> str:
    return s.split(" = ", 1)[1] if " = " in s else s


def lhs(s: str) -> str:
    return s.split(" = ", 1)[0] if " = " in s else ""


def is_atomic(expr: str) -> bool:
    depth = 0
    for ch in expr:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0 and ch in " +−-·/⊙,":
            return False
    return True


def enclosed(template: str, start: int, end: int) -> bool:
    """Is template[start:end] already the whole argument of a call or parenthesis?"""
    before, after = template[:start].rstrip(), template[end:].lstrip()
    return (before.endswith("(") or before.endswith(",")) and (after.startswith(")") or after.startswith(","))


def substitute(rendered: tuple[str, str], pattern: tuple[str, str], expr: tuple[str, str]) -> tuple[str, str]:
    """Replace ``pattern`` (a rendered name) by ``expr``, parenthesised where precedence needs it."""
    wrap_needed = not is_atomic(expr[0])
    out = []
    for s, pat, e, (lo, hi) in zip(rendered, pattern, expr, (("(", ")"), (r"\left(", r"\right)"))):
        regex = re.escape(pat) + (r"(?![\w\d])" if pat[-1:].isalnum() else "")
        pieces, pos = [], 0
        for m in re.finditer(regex, s):
            wrap = wrap_needed and not enclosed(s, m.start(), m.end())
            pieces.append(s[pos:m.start()] + (f"{lo}{e}{hi}" if wrap else e))
            pos = m.end()
        out.append("".join(pieces) + s[pos:])
    return out[0], out[1]


def loss_symbols(psym: Sym, zsym: Sym | None = None) -> dict[str, Any]:
    syms: dict[str, Any] = {"y": ("y", r"\mathbf{y}"), "p": psym.pair, "N": "N", "K": "K"}
    if zsym is not None:
        syms["z"] = zsym.pair
    return syms


def layer_label(layer: Layer) -> str:
    if isinstance(layer, Linear):
        return f"Linear({layer.in_features}→{layer.out_features})"
    if isinstance(layer, Scale):
        return repr(layer)
    name = layer.derivation.name if layer.derivation is not None else type(layer).__name__
    scale = getattr(layer, "scale", 1.0)
    return (f"{scale:g}·" if scale != 1.0 else "") + name


def reads_logits(net: Sequential, loss: Loss) -> bool:
    """True when the loss is defined on the output layer's input (the logits), as
    cross-entropy after a Softmax: the pair fuses and J is computed from z, not ŷ."""
    return net.fused_pair(loss) and isinstance(loss, CrossEntropyLoss)


def loss_step(steps: list[Step], logits: bool) -> tuple[Sym, str]:
    """The variable the loss reads, and its width symbol."""
    return (steps[-1].x, steps[-1].dim_in) if logits else (steps[-1].y, steps[-1].dim_out)


def param_formula(layer: Layer, key: str) -> Formula:
    grads = layer.derivation_record().param_grads
    for f in grads:
        if lhs(f.text).replace("{", "").replace("}", "") == f"dJ/d${key}":
            return f
    keys = list(layer.params)
    if key in keys and keys.index(key) < len(grads):
        return grads[keys.index(key)]
    raise ValueError(f"{layer!r} declares no gradient formula for its parameter {key!r}")


__all__ = ['Step', 'Sym', 'enclosed', 'grad_symbol', 'is_atomic', 'layer_label', 'layer_steps', 'lhs', 'loss_step', 'loss_symbols', 'param_formula', 'param_symbol', 'partial_symbol', 'reads_logits', 'render_formula', 'rhs', 'shape_text', 'sub_index', 'substitute', 'var_symbol', 'variable_widths']
