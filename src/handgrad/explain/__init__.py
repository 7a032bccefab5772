r"""Explain a network: its forward pass, its backward pass and its Jacobians, as equations.

Every equation is rendered from the op objects that compute: a layer's
``derivation`` record (forward formula, Jacobian entries, backward rule, parameter
gradients) with the layer's own ``symbols()``, and the loss's ``derivation`` and
``fused_formula``. Nothing is written per configuration, so a new activation
explains itself as soon as it declares its record.

Names follow the seed: ``x -> z1 -> z2 -> z3 -> ŷ`` for two layers, and
``z1 ... z_{2L-1}, ŷ`` for L linear layers; parameters ``W1, b1, W2, b2 ...``.

>>> print(explain("regression").splitlines()[0])  # doctest: +ELLIPSIS
handgrad explain: x → Linear(3→4) → 5·ReLU → Linear(4→2) → Identity → ŷ; loss: squared error ...

With ``at=`` a data point, every quantity is evaluated, the gradients are computed
as the chain of Jacobians (each layer's explicit ``jacobian()``), and each is checked
against the network's own ``backward``, central finite differences
(:mod:`handgrad.gradcheck`) and, where installed, PyTorch autograd.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend import to_numpy
from ..derivation import FORMATS, Formula
from ..layers import Layer, Linear, Scale, Softmax, make_rng
from ..losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, Loss, make_loss
from ..model import MLP, Sequential

PRESETS: dict[str, dict[str, str]] = {
    "regression": {"f": "5relu", "g": "identity", "loss": "squared_error"},
    "classification-mse": {"f": "tanh", "g": "sigmoid", "loss": "squared_error"},
    "classification-bce": {"f": "tanh", "g": "sigmoid", "loss": "bce"},
    "classification-relu": {"f": "relu", "g": "sigmoid", "loss": "bce"},
}
DEFAULT_SIZES = {"n": 3, "m": 4, "K": 2}
SECTIONS = ("forward", "composed", "chain", "backward", "expanded", "jacobian")
KEY_TITLES = {"forward": "forward pass", "composed": "composed", "chain": "chain of Jacobians",
              "backward": "matrix form", "expanded": "expanded", "jacobian": "Jacobian"}


# ====================================================================== building
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
    from .._checks import lookup_name
    from ..errors import ModelFileError
    from ..io import load_model
    from ..losses import LOSSES, SquaredErrorLoss

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


# ====================================================================== symbols
@dataclass(frozen=True)
class Sym:
    """A name in Unicode text and in LaTeX."""

    text: str
    latex: str

    @property
    def pair(self) -> tuple[str, str]:
        return (self.text, self.latex)

    def pick(self, fmt: str) -> str:
        return self.latex if fmt == "latex" else self.text


def _var(i: int, last: bool) -> Sym:
    if i == 0:
        return Sym("x", r"\mathbf{x}")
    if last:
        return Sym("ŷ", r"\hat{\mathbf{y}}")
    return Sym(f"z{i}", rf"\mathbf{{z}}_{{{i}}}")


def _param(key: str, k: str) -> Sym:
    return Sym(f"{key}{k}", rf"\mathbf{{{key}}}^{{({k})}}")


def _partial(a: Sym, b: Sym) -> Sym:
    return Sym(f"∂{a.text}/∂{b.text}", rf"\frac{{\partial {a.latex}}}{{\partial {b.latex}}}")


def _grad(b: Sym) -> Sym:
    return Sym(f"dJ/d{b.text}", rf"\frac{{\partial J}}{{\partial {b.latex}}}")


def _dims(net: Sequential) -> list[tuple[str, int]]:
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


def _shape(*names: str, fmt: str = "text") -> str:
    if fmt == "latex":
        dims = [rf"{_sub(d)}" for d in names]
        return r"\mathbb{R}^{" + r" \times ".join(dims) + "}" if dims else r"\mathbb{R}"
    return "(" + ", ".join(names) + ("," if len(names) == 1 else "") + ")"


def _sub(d: str) -> str:
    m = re.fullmatch(r"([A-Za-z]+)(\d+)", d)
    return f"{m.group(1)}_{{{m.group(2)}}}" if m else d


# ====================================================================== records
@dataclass
class Equation:
    """One rendered equation of an explanation.

    ``key`` is stable across configurations (``"forward:z2"``, ``"backward:dJ/dW1"``,
    ``"jacobian:∂z2/∂z1"``) so two explanations can be compared; ``text`` and ``latex``
    are the two renderings; ``shape`` describes the sizes.
    """

    key: str
    section: str
    text: str
    latex: str
    shape: str = ""
    shape_latex: str = ""
    note: str = ""
    structure: str = ""
    why: str = ""

    def render(self, fmt: str) -> str:
        return self.latex if fmt == "latex" else self.text

    def signature(self) -> tuple[str, str, str]:
        """What makes two equations the same: the formula, its shape and its structure (not a note's wording)."""
        return (self.text, self.shape, self.structure)

    @property
    def title(self) -> str:
        """A reader's name for the equation: 'matrix form: dJ/dz3', never the internal key."""
        section, _, name = self.key.partition(":")
        return f"{KEY_TITLES.get(section, section)}: {name}"


@dataclass
class Check:
    """One numerical check of an explained quantity: its value against a reference."""

    quantity: str
    against: str
    rel_error: float
    max_abs_error: float
    passed: bool
    note: str = ""
    verdict: str = ""  # "kink" or "clamp" where finite differences met one (the check still passes)

    @property
    def word(self) -> str:
        return "FAIL" if not self.passed else (self.verdict or "pass")

    def line(self, mark: bool = True) -> str:
        sign = ("✓ " if self.passed else "✗ ") if mark else ""
        word = self.word
        if self.note and not np.isfinite(self.rel_error):
            return f"{sign}{word}  {self.quantity:<9} vs {self.against:<24} {self.note}"
        extra = f"  ({self.note})" if self.note else ""
        return (f"{sign}{word}  {self.quantity:<9} vs {self.against:<24} rel {self.rel_error:8.1e}  "
                f"max abs {self.max_abs_error:8.1e}{extra}")


@dataclass
class Explanation:
    """The structured result of :func:`derive`; ``render(fmt)`` gives the text."""

    title: str
    config: dict[str, Any]
    sizes: dict[str, int]
    equations: list[Equation]
    values: dict[str, np.ndarray] = field(default_factory=dict)
    jacobian_values: dict[str, np.ndarray] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    point: str = ""
    source: str = ""  # where the network came from (a model file), shown under the title

    def section(self, name: str) -> list[Equation]:
        if name not in SECTIONS:
            raise ValueError(f"section must be one of {', '.join(SECTIONS)}, got {name!r}")
        return [e for e in self.equations if e.section == name]

    def equation(self, key: str) -> Equation:
        for e in self.equations:
            if e.key == key:
                return e
        raise KeyError(f"no equation {key!r}; have {[e.key for e in self.equations]}")

    @property
    def keys(self) -> list[str]:
        return [e.key for e in self.equations]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def render(self, fmt: str = "text", standalone: bool = True) -> str:
        """Unicode text, Markdown, or LaTeX (a complete document unless ``standalone=False``)."""
        _check_fmt(fmt)
        if fmt == "latex":
            return _render_latex(self, standalone)
        return _render_markdown(self) if fmt == "markdown" else _render_text(self)

    def __str__(self) -> str:
        return self.render("text")

    # ------------------------------------------------------------------ notebooks
    def _repr_markdown_(self) -> str:
        """In Jupyter: the Markdown rendering, with the checks as a table."""
        return self.render("markdown")

    def _repr_latex_(self) -> str:
        """In Jupyter: every equation typeset (MathJax), one aligned block per section."""
        rows = []
        for sec in SECTIONS:
            eqs = self.section(sec)
            if eqs:
                rows.append(r"&\text{" + _section_title(sec, self.config.get("question", "")).replace("→", "to") + "}")
                rows += [" &= ".join(e.latex.partition(" = ")[::2]) if " = " in e.latex else "&" + e.latex for e in eqs]
        return "$$\\begin{aligned}" + r" \\ ".join(rows).replace(r"\mathbb{1}", r"\mathbf{1}") + r"\end{aligned}$$"


def checks_table(checks: Sequence[Check]) -> str:
    """The checks as a Markdown table: quantity, reference, verdict, errors, note."""
    lines = ["| quantity | against | verdict | rel. error | max abs. error | note |", "|---|---|---|---|---|---|"]
    for c in checks:
        rel = f"{c.rel_error:.1e}" if np.isfinite(c.rel_error) else "–"
        mx = f"{c.max_abs_error:.1e}" if np.isfinite(c.max_abs_error) else "–"
        note = c.note.replace("|", "\\|")
        lines.append(f"| {c.quantity} | {c.against} | {'✓ ' if c.passed else '✗ '}{c.word} | {rel} | {mx} | {note} |")
    return "\n".join(lines)


def _check_fmt(fmt: Any) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")


# ====================================================================== derivation
@dataclass
class _Step:
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


def _steps(net: Sequential) -> list[_Step]:
    dims = _dims(net)
    suffix = {id(layer): k for k, layer in net.named_layers()}
    last = len(net.layers)
    steps = []
    for i, layer in enumerate(net.layers):
        if layer.derivation is None:
            raise ValueError(f"{layer!r} declares no derivation record, so it cannot be explained; "
                             "give its class a `derivation = activation_record(...)` (handgrad.derivation)")
        params = {key: _param(key, suffix[id(layer)]) for key in layer.params} if layer.params else {}
        steps.append(_Step(i, layer, _var(i, False), _var(i + 1, i + 1 == last), dims[i][0], dims[i + 1][0], params))
    return steps


# The symbol and formula helpers other teaching tools (the graph) share, under public names.
def grad_symbol(b: Sym) -> Sym:
    """dJ/d(b) as a symbol."""
    return _grad(b)


def partial_symbol(a: Sym, b: Sym) -> Sym:
    """∂a/∂b as a symbol."""
    return _partial(a, b)


def layer_label(layer: Layer) -> str:
    """A layer's short label: Linear(3→4), 5·ReLU, Sigmoid ..."""
    return _label(layer)


def loss_symbols(psym: Sym, zsym: Sym | None = None) -> dict[str, Any]:
    """The names a loss's formulas take: y, p (the prediction), N, K (and z, the logits)."""
    return _loss_symbols(psym, zsym)


def param_formula(layer: Layer, key: str) -> Formula:
    """The gradient formula a layer declares for its parameter ``key``."""
    return _param_formula(layer, key)


def render_formula(f: Formula, syms: dict[str, Any]) -> tuple[str, str]:
    """A formula rendered as (text, LaTeX) with ``syms``."""
    return _render(f, syms)


def rhs(s: str) -> str:
    """The right-hand side of 'a = b' (the whole string when there is no ' = ')."""
    return _rhs(s)


def is_atomic(expr: str) -> bool:
    """True when ``expr`` needs no parentheses as an operand (a name, a number, a call)."""
    return _atomic(expr)


def layer_steps(net: Sequential) -> list[_Step]:
    """Each layer with its input/output symbols, widths and parameter symbols (x → z1 → ... → ŷ)."""
    return _steps(net)


def _render(f: Formula, syms: dict[str, Any]) -> tuple[str, str]:
    return f.render("text", **syms), f.render("latex", **syms)


def _rhs(s: str) -> str:
    return s.split(" = ", 1)[1] if " = " in s else s


def _lhs(s: str) -> str:
    return s.split(" = ", 1)[0] if " = " in s else ""


def _atomic(expr: str) -> bool:
    depth = 0
    for ch in expr:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0 and ch in " +−-·/⊙,":
            return False
    return True


def _enclosed(template: str, start: int, end: int) -> bool:
    """Is template[start:end] already the whole argument of a call or parenthesis?"""
    before, after = template[:start].rstrip(), template[end:].lstrip()
    return (before.endswith("(") or before.endswith(",")) and (after.startswith(")") or after.startswith(","))


def _substitute(rendered: tuple[str, str], pattern: tuple[str, str], expr: tuple[str, str]) -> tuple[str, str]:
    """Replace ``pattern`` (a rendered name) by ``expr``, parenthesised where precedence needs it."""
    wrap_needed = not _atomic(expr[0])
    out = []
    for s, pat, e, (lo, hi) in zip(rendered, pattern, expr, (("(", ")"), (r"\left(", r"\right)"))):
        regex = re.escape(pat) + (r"(?![\w\d])" if pat[-1:].isalnum() else "")
        pieces, pos = [], 0
        for m in re.finditer(regex, s):
            wrap = wrap_needed and not _enclosed(s, m.start(), m.end())
            pieces.append(s[pos:m.start()] + (f"{lo}{e}{hi}" if wrap else e))
            pos = m.end()
        out.append("".join(pieces) + s[pos:])
    return out[0], out[1]


def _loss_symbols(psym: Sym, zsym: Sym | None = None) -> dict[str, Any]:
    syms: dict[str, Any] = {"y": ("y", r"\mathbf{y}"), "p": psym.pair, "N": "N", "K": "K"}
    if zsym is not None:
        syms["z"] = zsym.pair
    return syms


def _label(layer: Layer) -> str:
    if isinstance(layer, Linear):
        return f"Linear({layer.in_features}→{layer.out_features})"
    if isinstance(layer, Scale):
        return repr(layer)
    name = layer.derivation.name if layer.derivation is not None else type(layer).__name__
    scale = getattr(layer, "scale", 1.0)
    return (f"{scale:g}·" if scale != 1.0 else "") + name


def _reads_logits(net: Sequential, loss: Loss) -> bool:
    """True when the loss is defined on the output layer's input (the logits), as
    cross-entropy after a Softmax: the pair fuses and J is computed from z, not ŷ."""
    return net.fused_pair(loss) and isinstance(loss, CrossEntropyLoss)


def _loss_step(steps: list[_Step], logits: bool) -> tuple[Sym, str]:
    """The variable the loss reads, and its width symbol."""
    return (steps[-1].x, steps[-1].dim_in) if logits else (steps[-1].y, steps[-1].dim_out)


def _forward_equations(steps: list[_Step], loss: Loss, logits: bool = False) -> list[Equation]:
    eqs = []
    for st in steps:
        text, latex = _render(st.layer.derivation.forward, st.symbols())
        shape = f"{st.x.text} {_shape('N', st.dim_in)} → {st.y.text} {_shape('N', st.dim_out)}"
        shape_l = rf"{st.y.latex} \in {_shape('N', st.dim_out, fmt='latex')}"
        if st.params:
            w = st.params.get("W")
            parts = [f"{p.text} {_shape(st.dim_out, st.dim_in) if k == 'W' else _shape(st.dim_out)}" for k, p in st.params.items()]
            shape += ";  " + ", ".join(parts)
            if w is not None:
                shape_l += rf",\ {w.latex} \in {_shape(st.dim_out, st.dim_in, fmt='latex')}"
        eqs.append(Equation(f"forward:{st.y.text}", "forward", text, latex, shape, shape_l))
    psym = _loss_step(steps, logits)[0]
    text, latex = _render(loss.derivation.forward, _loss_symbols(psym))
    note = f"the loss reads the logits {psym.text}: {_label(steps[-1].layer)} is folded into it" if logits else ""
    eqs.append(Equation("forward:J", "forward", text, latex, "() a scalar", r"J \in \mathbb{R}", note=note))
    return eqs


def _composed_equations(steps: list[_Step], loss: Loss, logits: bool = False) -> list[Equation]:
    expr = before_last = steps[0].x.pair
    for st in steps:
        before_last = expr
        syms = st.symbols()
        if not _atomic(expr[0]) and _needs_parens(st.layer.derivation.forward, syms):
            syms["x"] = (f"({expr[0]})", rf"\left({expr[1]}\right)")
        else:
            syms["x"] = expr
        text, latex = _render(st.layer.derivation.forward, syms)
        expr = (_rhs(text), _rhs(latex))
    last = steps[-1].y
    eqs = [Equation(f"composed:{last.text}", "composed", f"{last.text} = {expr[0]}", f"{last.latex} = {expr[1]}")]
    syms = _loss_symbols(last)
    expr = before_last if logits else expr
    wrapped = (f"({expr[0]})", rf"\left({expr[1]}\right)") if not _atomic(expr[0]) else expr
    syms["p"] = wrapped
    text, latex = _render(loss.derivation.forward, syms)
    eqs.append(Equation("composed:J", "composed", text, latex))
    return eqs


def _needs_parens(f: Formula, syms: dict[str, Any]) -> bool:
    """Does substituting a compound expression for $x in ``f`` need parentheses?"""
    mark = "\ue000"
    rhs = _rhs(f.render("text", **{**syms, "x": mark}))
    if rhs.strip() == mark:
        return False
    return not all(_enclosed(rhs, m.start(), m.end()) for m in re.finditer(mark, rhs))


def _chain_equations(steps: list[_Step], loss: Loss, fused: bool, logits: bool = False) -> list[Equation]:
    """dJ/dθ = ∂J/∂ŷ · ∂ŷ/∂z_{2L-1} · ... · ∂z_k/∂θ, one sample, numerator layout."""
    eqs = []
    top, top_dim = _loss_step(steps, logits)
    end = len(steps) - 1 if logits else len(steps)
    for st in reversed(steps[:end]):
        for key, p in st.params.items():
            factors = [(_partial(Sym("J", "J"), top), f"1×{top_dim}")]
            for later in reversed(steps[st.index + 1:end]):
                factors.append((_partial(later.y, later.x), f"{later.dim_out}×{later.dim_in}"))
            pshape = f"{st.dim_out}·{st.dim_in}" if key == "W" else st.dim_out
            factors.append((_partial(st.y, p), f"{st.dim_out}×{pshape}" if key == "W" else f"{st.dim_out}×{st.dim_out}"))
            text = f"{_grad(p).text} = " + " · ".join(f.text for f, _ in factors)
            latex = f"{_grad(p).latex} = " + r" \, ".join(f.latex for f, _ in factors)
            shape = " ".join(f"({s})" for _, s in factors)
            note = "summed over the N samples of the batch"
            if fused and not logits:
                fused_lhs = _grad(steps[-1].x).text
                note += (f"; the first two factors fuse: ∂J/∂{top.text} · ∂{top.text}/∂{steps[-1].x.text} = {fused_lhs}, "
                         "given directly by the loss (see the matrix form)")
            eqs.append(Equation(f"chain:{_grad(p).text}", "chain", text, latex, shape, note=note))
    return eqs


def _backward_equations(steps: list[_Step], loss: Loss, fused: bool,
                        logits: bool = False) -> tuple[list[Equation], list[Equation]]:
    """The batch (matrix) form that ``backward`` computes, and each gradient fully expanded."""
    top = steps[-1].y
    lsyms = _loss_symbols(top, steps[-1].x)
    matrix, expanded = [], []
    if not logits:
        text, latex = _render(loss.derivation.backward, lsyms)
        matrix.append(Equation(f"backward:dJ/d{top.text}", "backward", text, latex, _shape("N", steps[-1].dim_out),
                               _shape("N", steps[-1].dim_out, fmt="latex")))
        upstream = (_rhs(text), _rhs(latex))
    remaining = list(reversed(steps))
    if fused:
        st = remaining.pop(0)
        text, latex = _render(loss.fused_formula, lsyms)
        unfused = _render(st.layer.derivation.backward, st.symbols())[0]
        matrix.append(Equation(f"backward:dJ/d{st.x.text}", "backward", text, latex, _shape("N", st.dim_in),
                               _shape("N", st.dim_in, fmt="latex"),
                               note=f"{_label(st.layer)} and the {loss.derivation.name} fuse; unfused: {unfused}"))
        upstream = (text.split(" = ")[-1], latex.split(" = ")[-1])
    for st in remaining:
        syms = st.symbols()
        pattern = _grad(st.y).pair
        for key, p in st.params.items():
            f = _param_formula(st.layer, key)
            text, latex = _render(f, syms)
            shape = _shape(st.dim_out, st.dim_in) if key == "W" else _shape(st.dim_out)
            shape_l = _shape(st.dim_out, st.dim_in, fmt="latex") if key == "W" else _shape(st.dim_out, fmt="latex")
            matrix.append(Equation(f"backward:{_grad(p).text}", "backward", text, latex, shape, shape_l))
            et, el = _substitute((text, latex), pattern, upstream)
            expanded.append(Equation(f"expanded:{_grad(p).text}", "expanded", et, el, shape, shape_l))
        if st.index == 0:
            break
        text, latex = _render(st.layer.derivation.backward, syms)
        matrix.append(Equation(f"backward:{_grad(st.x).text}", "backward", text, latex, _shape("N", st.dim_in),
                               _shape("N", st.dim_in, fmt="latex")))
        sub = _substitute((_rhs(text), _rhs(latex)), pattern, upstream)
        upstream = sub
    return matrix, expanded


def _param_formula(layer: Layer, key: str) -> Formula:
    grads = layer.derivation.param_grads
    for f in grads:
        if _lhs(f.text).replace("{", "").replace("}", "") == f"dJ/d${key}":
            return f
    keys = list(layer.params)
    if key in keys and keys.index(key) < len(grads):
        return grads[keys.index(key)]
    raise ValueError(f"{layer!r} declares no gradient formula for its parameter {key!r}")


def _jacobian_equations(steps: list[_Step], loss: Loss, sizes: dict[str, int], logits: bool = False) -> list[Equation]:
    eqs = []
    for st in steps:
        d = st.layer.derivation
        lab = _partial(st.y, st.x)
        entries = _render(d.jacobian, st.symbols())
        dims = f"{st.dim_out} × {st.dim_in}"
        nums = f"{sizes.get(st.dim_out, '?')} × {sizes.get(st.dim_in, '?')}"
        if d.structure == "weight" and "W" in st.params:
            head = f"{lab.text} = {st.params['W'].text}  ({dims} = {nums}), the weight matrix"
            head_l = rf"{lab.latex} = {st.params['W'].latex} \in \mathbb{{R}}^{{{_sub(st.dim_out)} \times {_sub(st.dim_in)}}}"
        else:
            head = f"{lab.text}  ({dims} = {nums}), {d.structure}"
            head_l = rf"{lab.latex} \in \mathbb{{R}}^{{{_sub(st.dim_out)} \times {_sub(st.dim_in)}}}"
        eqs.append(Equation(f"jacobian:{lab.text}", "jacobian", f"{head}\n{entries[0]}", rf"{head_l}: \quad {entries[1]}",
                            f"{dims} ({nums}) per sample", structure=d.structure, why=d.why))
    top, top_dim = _loss_step(steps, logits)
    lab = _partial(Sym("J", "J"), top)
    entries = _render(loss.derivation.jacobian, _loss_symbols(top))
    # J reads the whole batch, so its entries carry the sample index n: row n (1 × K) belongs to sample n
    head = (f"{lab.text}  (N × {top_dim} for the batch; row n, 1 × {top_dim} = 1 × {sizes.get(top_dim, '?')}, is "
            f"sample n's row: the gradient of a scalar)")
    head_l = rf"{lab.latex} \in \mathbb{{R}}^{{N \times {_sub(top_dim)}}}"
    eqs.append(Equation(f"jacobian:{lab.text}", "jacobian", f"{head}\n{entries[0]}", rf"{head_l}: \quad {entries[1]}",
                        f"N × {top_dim}; 1 × {top_dim} per sample", structure=loss.derivation.structure, why=loss.derivation.why))
    return eqs


def derive(net: Any, loss: Any = None, *, at: Any = None, target: Any = None, seed: Any = 0, batch: int = 1,
           check: bool = True, torch: bool | None = None) -> Explanation:
    """The structured explanation of ``loss(y, net(x))``; see :func:`explain`."""
    net, loss = _resolve(net, loss)
    steps = _steps(net)
    dims = _dims(net)
    sizes = {name: size for name, size in dims}
    fused, logits = net.fused_pair(loss), _reads_logits(net, loss)
    equations = _forward_equations(steps, loss, logits) + _composed_equations(steps, loss, logits)
    equations += _chain_equations(steps, loss, fused, logits)
    matrix, expanded = _backward_equations(steps, loss, fused, logits)
    equations += matrix + expanded + _jacobian_equations(steps, loss, sizes, logits)
    arch = " → ".join(["x", *(_label(layer) for layer in net.layers), "ŷ"])
    title = f"{arch}; loss: {loss.derivation.name}" + (f" ({loss.reduction})" if hasattr(loss, "reduction") else "")
    config = {"layers": [_label(layer) for layer in net.layers], "loss": repr(loss), "sizes": sizes,
              "question": seed_question(net, loss)}
    ex = Explanation(title, config, sizes, equations)
    if at is not None and at is not False:
        _evaluate(ex, net, loss, at=at, target=target, seed=seed, batch=batch, check=check, torch=torch)
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
    _check_fmt(fmt)
    return derive(net, loss, at=at, target=target, seed=seed, batch=batch, check=check, torch=torch).render(
        fmt, standalone)


# ====================================================================== evaluation at a point
FD_RTOL, FD_ATOL = 1e-6, 1e-9
EXACT_RTOL, EXACT_ATOL = 1e-10, 1e-12
MAX_JACOBIAN_ENTRIES = 20000


def _point(net: Sequential, loss: Loss, at: Any, target: Any, seed: Any, batch: int) -> tuple[np.ndarray, Any, str]:
    """(x, y, description) from ``at`` / ``target`` / ``seed``."""
    from .._checks import check_finite

    if isinstance(at, str) and at.strip().lower() in ("random", "seed", "draw") or at is True:
        x, y = draw_point(net, loss, batch=batch, seed=seed)
        point = f"x ~ N(0, 1) drawn with seed {seed} (N = {batch})"
        if target is None:
            return x, y, point + ", y drawn with the same seed"
        return x, _target(net, loss, target, x.shape[0]), point + ", the given y"
    if isinstance(at, str):
        raise ValueError(f"at must be 'random', an array of inputs or a pair (x, y), got the string {at!r}")
    if isinstance(at, tuple) and len(at) == 2 and np.ndim(at[0]) >= 1 and target is None:
        at, target = at
    try:
        x = np.array(to_numpy(at) if not isinstance(at, (list, tuple)) else at, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"at: expected numbers for the input x, got {at!r} ({exc})") from None
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.ndim != 2 or x.shape[1] != net.in_features:
        raise ValueError(f"at: expected x of shape ({net.in_features},) or (N, {net.in_features}), got {x.shape}")
    check_finite(x, "x (at)")
    if target is None:
        y = draw_target(net, loss, x.shape[0], make_rng(seed))
        return x, y, f"the given x (N = {x.shape[0]}), y drawn with seed {seed}"
    return x, _target(net, loss, target, x.shape[0]), f"the given x and y (N = {x.shape[0]})"


def _target(net: Sequential, loss: Loss, target: Any, n_rows: int) -> Any:
    from .._checks import check_finite

    y = np.array(to_numpy(target) if not isinstance(target, (list, tuple)) else target)
    if isinstance(loss, CrossEntropyLoss) and y.ndim <= 1:
        return y.reshape(-1)
    try:
        y = y.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"target: expected numbers, got {target!r}") from None
    if y.ndim <= 1 and y.size == net.out_features * n_rows:
        y = y.reshape(n_rows, net.out_features)
    check_finite(y, "y (target)")
    return y


def _evaluate(ex: Explanation, net: Sequential, loss: Loss, *, at: Any, target: Any,
              seed: Any, batch: int, check: bool, torch: bool | None) -> None:
    from ..gradcheck import float64_copy

    net64 = float64_copy(net)
    steps = _steps(net64)  # every Jacobian and check in float64, whatever the network's own dtype
    x, y, ex.point = _point(net64, loss, at, target, seed, batch)
    vals = [x]
    for layer in net64.layers:
        vals.append(np.asarray(to_numpy(layer.forward(vals[-1])), dtype=np.float64))
    logits = _reads_logits(net64, loss)
    J, dJ_dp = loss.fused(y, vals[-2]) if logits else loss(y, vals[-1])
    values: dict[str, np.ndarray] = {st.y.text: vals[st.index + 1] for st in steps}
    values = {"x": x, **values, "y": np.asarray(y), "J": np.asarray(float(J))}
    top = _loss_step(steps, logits)[0]
    values[_grad(top).text] = np.asarray(dJ_dp)
    fused_g = None
    if net64.fused_pair(loss) and not logits:
        fused_g = np.asarray(loss.fused(y, vals[-2])[1], dtype=np.float64)
    grads, jacobians, chain_checks = _chain(steps[:-1] if logits else steps, vals, np.asarray(dJ_dp), values, fused_g)
    if logits:  # shown and checked, though the fused gradient skips it
        last = steps[-1]
        jacobians = {_partial(last.y, last.x).text: np.asarray(to_numpy(last.layer.jacobian(vals[-2]))), **jacobians}
    values.update(grads)
    ex.values = values
    ex.jacobian_values = {k: v[0] for k, v in reversed(list(jacobians.items()))}
    ex.jacobian_values[_partial(Sym("J", "J"), top).text] = np.asarray(dJ_dp)[0]
    if check:
        ex.checks = chain_checks + _checks_at(net64, loss, steps, x, y, vals, float(J), grads, jacobians, torch,
                                              logits)


def _chain(steps: list[_Step], vals: list[np.ndarray], dJ_dp: np.ndarray, values: dict[str, np.ndarray],
           fused_g: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[Check]]:
    """Every gradient as the product of the Jacobians the chain names, formed explicitly.

    Per sample n: dJ/dθ = ∂J/∂ŷ · ∂ŷ/∂z · ... · ∂z_k/∂θ, where ∂z_k/∂W is the
    out × (out·in) matrix with entries ∂z_i/∂W_jk = δ_ij x_k (W flattened row by row,
    numerator layout); the 1 × (out·in) product is reshaped to W's (out, in) and summed
    over the N samples. ``fused_g`` is the loss's fused dJ/dz (sigmoid + BCE): where ŷ
    rounds to 0 or 1 in float64, ∂J/∂ŷ · ∂ŷ/∂z loses the product, as backward does not.
    """
    grads: dict[str, np.ndarray] = {}
    jacobians: dict[str, np.ndarray] = {}
    notes: list[Check] = []
    g = dJ_dp  # (N, out): row n is ∂J/∂(output) for sample n
    for st in reversed(steps):
        x_in = vals[st.index]
        Jk = np.asarray(to_numpy(st.layer.jacobian(x_in)), dtype=np.float64)  # (N, out, in)
        jacobians[_partial(st.y, st.x).text] = Jk
        for key, p in st.params.items():
            P = param_jacobian(st.layer, key, x_in)
            if P is None:
                grads[_grad(p).text] = _param_grad(st, key, g, x_in)
                continue
            jacobians[_partial(st.y, p).text] = P
            row = np.einsum("no,nop->np", g, P)  # (1 × out)(out × out·in) per sample
            shape = np.shape(to_numpy(st.layer.params[key]))
            grads[_grad(p).text] = row.sum(axis=0).reshape(shape)
        g = np.einsum("no,noi->ni", g, Jk)  # the vector-Jacobian product, sample by sample
        if fused_g is not None and st is steps[-1]:
            notes.append(_fused_check(_grad(st.x).text, g, fused_g))
            g = fused_g
        if st.index > 0:
            values[_grad(st.x).text] = g
    order = [_grad(p).text for st in steps for p in st.params.values()]
    return {k: grads[k] for k in order}, jacobians, notes


def param_jacobian(layer: Layer, key: str, x_in: np.ndarray) -> np.ndarray | None:
    """∂(output)/∂(parameter) per sample, (N, out, size of the parameter), for Linear; else None.

    For W (out × in, flattened row by row): entry [n, i, j·in + k] = δ_ij x_nk.
    For b: the identity. Other layers with parameters use their own backward.
    """
    if not isinstance(layer, Linear):
        return None
    N, out = x_in.shape[0], layer.out_features
    eye = np.eye(out)
    if key == "b":
        return np.broadcast_to(eye, (N, out, out)).copy()
    return np.einsum("ij,nk->nijk", eye, x_in).reshape(N, out, out * x_in.shape[1])


def _param_grad(st: _Step, key: str, g: np.ndarray, x_in: np.ndarray) -> np.ndarray:
    """A non-Linear layer's parameter gradient from dJ/d(output): its own backward (a vector-Jacobian product)."""
    layer = copy.deepcopy(st.layer)
    layer.zero_grad()
    layer.forward(x_in)
    layer.backward(g)
    return np.asarray(to_numpy(layer.grads[f"dJ_d{key}"]))


def _fused_check(name: str, product: np.ndarray, fused: np.ndarray) -> Check:
    """The unfused product ∂J/∂ŷ · ∂ŷ/∂z against the loss's fused dJ/dz; a saturated ŷ is a clamp."""
    from ..gradcheck import compare

    c = compare(name, product, fused, EXACT_RTOL * 1e3, 1e-12)
    if c.passed:
        return Check(name, "fused loss gradient", c.rel_error, c.max_abs_error, True,
                     "∂J/∂ŷ · ∂ŷ/∂z formed explicitly equals the fused form")
    return Check(name, "fused loss gradient", c.rel_error, c.max_abs_error, True,
                 "ŷ rounds to 0 or 1 in float64 here, so ∂J/∂ŷ (clamped, as in PyTorch's BCELoss) times "
                 "∂ŷ/∂z loses the product; the fused (σ(z) − y)/(N·K), which backward uses, is exact", "clamp")


KINK_CONVENTION = ("the value handgrad and PyTorch both use at a kink is one of these one-sided slopes, "
                   "e.g. ReLU′(0) = 0, so the backward value is right")


def _checks_at(net64: Sequential, loss: Loss, steps: list[_Step], x: np.ndarray, y: Any, vals: list[np.ndarray],
               J: float, grads: dict[str, np.ndarray], jacobians: dict[str, np.ndarray],
               torch: bool | None, logits: bool = False) -> list[Check]:
    from ..gradcheck import compare, loss_value
    from . import numeric as fd

    def add(quantity: str, against: str, analytic: Any, reference: Any, rtol: float, atol: float) -> None:
        c = compare(quantity, analytic, reference, rtol, atol)
        checks.append(Check(quantity, against, c.rel_error, c.max_abs_error, c.passed, c.note))

    checks: list[Check] = []
    top = steps[-1].y.text
    ref = copy.deepcopy(net64)
    ref.zero_grad()
    add(top, "network forward", vals[-1], to_numpy(ref.forward(x)), EXACT_RTOL, EXACT_ATOL)
    J_net = ref.backward_loss(loss, y)
    add("J", "network loss", np.asarray(J), np.asarray(float(J_net)), 1e-8, 1e-12)
    backward = {f"dJ/d{k[len('dJ_d'):]}": np.asarray(to_numpy(v)) for k, v in ref.grads.items()}
    for name, value in grads.items():
        add(name, "handgrad backward", value, backward[name], EXACT_RTOL, 1e-12)
    fd_net = copy.deepcopy(net64)
    for name, layer, key, _ in fd_net.parameter_slots():
        theta = layer.params[key]
        j = fd.judge(fd.looped(lambda: loss_value(fd_net, loss, x, y), theta), theta.copy(), grads[f"dJ/d{name}"])
        checks.append(judged_check(f"dJ/d{name}", j))
    checks.extend(_torch_checks(net64, loss, x, y, grads, torch, logits))
    loss_in = _loss_step(steps, logits)[0].text
    checks.append(judged_check(f"dJ/d{loss_in}", _loss_judgement(loss, y, vals[-2] if logits else vals[-1], logits)))
    for st in steps:
        label = _partial(st.y, st.x).text
        checks.append(_jacobian_check(st, label, vals[st.index], jacobians[label]))
    return checks


def judged_check(quantity: str, j: Any, against: str = "finite differences") -> Check:
    """A :class:`Check` from a finite-difference judgement: kinks and clamps named, not failed."""
    verdict = "kink" if j.count("kink") else ("clamp" if j.count("clamp") else "")
    return Check(quantity, against, j.rel_error(), j.max_abs_error(), j.passed, j.note(KINK_CONVENTION),
                 verdict if j.passed else "")


def _loss_judgement(loss: Loss, y: Any, p: np.ndarray, logits: bool) -> Any:
    """dJ/d(the loss's input) by finite differences inside the loss's domain (ŷ ∈ (0, 1) for BCE)."""
    from . import numeric as fd

    p64 = np.array(p, dtype=np.float64)
    y_np = np.asarray(y)
    y64 = np.array(y_np, dtype=np.float64) if y_np.dtype.kind == "f" else np.array(y_np)
    fn = (lambda: float(loss.fused(y64, p64)[0])) if logits else (lambda: float(loss(y64, p64)[0]))
    analytic = np.asarray((loss.fused(y64, p64) if logits else loss(y64, p64))[1], dtype=np.float64)
    if isinstance(loss, BCELoss) and not logits:  # nn.BCELoss clamps log at -100 and p(1 - p) at 1e-12
        return fd.judge(fd.looped(fn, p64), p64.copy(), analytic, lo=0.0, hi=1.0, clamped=p64 * (1 - p64) < 1e-12)
    return fd.judge(fd.looped(fn, p64), p64.copy(), analytic)


def _jacobian_check(st: _Step, label: str, x_in: np.ndarray, Jk: np.ndarray) -> Check:
    """The explicit Jacobian against finite differences (kinks named), and its stated structure."""
    from . import numeric as fd

    n, out, inn = Jk.shape
    if n * out * inn > MAX_JACOBIAN_ENTRIES:
        return Check(label, "finite differences", float("nan"), float("nan"), True, "skipped: too large to difference")
    layer = copy.deepcopy(st.layer)
    parts = []
    for i in range(inn):  # samples are independent, so perturb column i of every row at once
        def phi(d: np.ndarray, i: int = i) -> np.ndarray:
            moved = x_in.copy()
            moved[:, i] += d
            return np.asarray(to_numpy(layer.forward(moved)), dtype=np.float64)

        parts.append(fd.judge(phi, x_in[:, i].copy(), Jk[:, :, i]))
    j = fd.merge(parts, axis=-1)
    check = judged_check(label, j)
    if st.layer.derivation.structure == "diagonal" and out == inn:
        numeric = np.where(np.isfinite(j.numeric), j.numeric, 0.0)
        off = numeric * (1 - np.eye(out))[None]
        diag = "diagonal confirmed" if np.max(np.abs(off), initial=0.0) < 1e-9 else "NOT diagonal numerically"
        check.note = f"{diag}; {check.note}" if check.note else diag
        check.passed = check.passed and not diag.startswith("NOT")
    return check


def _torch_checks(net64: Sequential, loss: Loss, x: np.ndarray, y: Any, grads: dict[str, np.ndarray],
                  want: bool | None, logits: bool = False) -> list[Check]:
    if want is False:
        return []
    try:
        import torch
    except ImportError:
        if want:
            raise ImportError("PyTorch is not installed: pip install 'handgrad[torch]'") from None
        return [Check("gradients", "PyTorch autograd", float("nan"), float("nan"), True, "skipped: PyTorch not installed")]
    from ..gradcheck import compare, without_last
    from ..torch_interop import to_torch, torch_loss

    try:
        tnet = to_torch(without_last(net64) if logits else net64, dtype=torch.float64)
        fn = torch_loss(loss)
    except ValueError as exc:
        if want:
            raise
        return [Check("gradients", "PyTorch autograd", float("nan"), float("nan"), True, f"skipped: {exc}")]
    xt = torch.tensor(x, dtype=torch.float64)
    y_np = np.asarray(y)
    yt = torch.as_tensor(y_np.astype(np.int64)) if y_np.dtype.kind in "iu" else torch.tensor(y_np, dtype=torch.float64)
    fn(tnet(xt), yt).backward()
    linears = [m for m in tnet if isinstance(m, torch.nn.Linear)]
    out = []
    for mod, (suffix, _layer) in zip(linears, net64.named_layers()):
        for key, tparam in (("W", mod.weight), ("b", mod.bias)):
            name = f"dJ/d{key}{suffix}"
            if tparam is None or name not in grads:
                continue
            c = compare(name, grads[name], tparam.grad.numpy(), EXACT_RTOL, 1e-12)
            out.append(Check(name, "PyTorch autograd", c.rel_error, c.max_abs_error, c.passed, c.note))
    return out


# ====================================================================== diff
def diff(a: Explanation, b: Explanation) -> list[tuple[str, Equation | None, Equation | None]]:
    """The equations that differ between two explanations, by key, in ``a``'s order."""
    out = []
    bmap = {e.key: e for e in b.equations}
    for e in a.equations:
        other = bmap.pop(e.key, None)
        if other is None or other.signature() != e.signature():
            out.append((e.key, e, other))
    out.extend((key, None, e) for key, e in bmap.items())
    return out


def render_diff(a: Explanation, b: Explanation, fmt: str = "text", standalone: bool = True) -> str:
    """Only the equations of ``b`` that differ from ``a`` (1.2: what changes with f, g or the loss)."""
    _check_fmt(fmt)
    changes = diff(a, b)
    if fmt == "latex":
        body = [rf"\section*{{{_latex_text('What changes')}}}", _latex_text(f"A: {a.title}") + r"\\",
                _latex_text(f"B: {b.title}")]
        for _key, ea, eb in changes:
            body.append(rf"\subsection*{{{_latex_text((ea or eb).title)}}}")
            for tag, e in (("A", ea), ("B", eb)):
                body.append(rf"\noindent {tag}: " + (rf"$\displaystyle {e.latex}$" if e else "(absent)") + r"\\")
        if not changes:
            body.append("The two configurations give the same equations.")
        return _latex_document("\n".join(body)) if standalone else "\n".join(body)
    lines = [f"--- A: {a.title}", f"+++ B: {b.title}"] if fmt == "text" else \
        ["# What changes", "", f"- **A:** {a.title}", f"- **B:** {b.title}", ""]
    for _key, ea, eb in changes:
        title = (ea or eb).title
        lines += [f"@@ {title}"] if fmt == "text" else [f"## {title}", "", "```diff"]
        lines += [f"- {line}" for line in _diff_lines(ea, eb)]
        lines += [f"+ {line}" for line in _diff_lines(eb, ea)]
        lines += [] if fmt == "text" else ["```", ""]
    if not changes:
        lines.append("(the two configurations give the same equations)")
    return "\n".join(lines)


def _diff_lines(e: Equation | None, other: Equation | None) -> list[str]:
    """The lines of ``e`` to show against ``other``: its text, plus shape, note or why where they differ."""
    if e is None:
        return ["(absent)"]
    lines = e.text.splitlines()
    for attr in ("shape", "note", "why"):
        value = getattr(e, attr)
        if value and (other is None or getattr(other, attr) != value):
            lines.append(f"  {attr}: {value}")
    return lines


# ====================================================================== softargmax (1.3(a))
def softargmax(x: Any, beta: float = 1.0) -> np.ndarray:
    """softmax(βx) along the last axis: a smooth arg max.

    As β grows it tends to the one-hot vector of the largest entry (the arg max),
    not to the largest entry itself; ``softargmax(x, β) · x`` tends to max(x).

    >>> np.round(softargmax([1.0, 3.0, 2.0], beta=50.0), 6)
    array([0., 1., 0.])
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"softargmax expects a non-empty vector, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("softargmax expects finite values")
    layer = Softmax(beta)
    return np.asarray(to_numpy(layer.forward(x.reshape(-1, x.shape[-1])))).reshape(x.shape)


def one_hot_argmax(x: Any) -> np.ndarray:
    """The limit of softargmax(x, β) as β → ∞: the one-hot vector of the largest entry.

    With ties the limit is the uniform vector over the tied maxima (softmax treats equal
    inputs equally at every β), not a one-hot vector of the first of them.

    >>> one_hot_argmax([1.0, 3.0, 3.0])
    array([0. , 0.5, 0.5])
    """
    x = np.asarray(x, dtype=np.float64)
    top = x == np.max(x, axis=-1, keepdims=True)
    return top / np.sum(top, axis=-1, keepdims=True)


# ====================================================================== linear maps (1.3(d))
def compose_affine(layers: Any) -> tuple[np.ndarray, np.ndarray]:
    """One affine map (W, b) equal to a stack of Linear layers with nothing between them.

    x W1ᵀ + b1 then (·) W2ᵀ + b2 is x (W2 W1)ᵀ + (b1 W2ᵀ + b2): the product of the
    weights and the pushed-through biases. Raises if a non-linear layer is in the stack.
    """
    seq = layers.layers if isinstance(layers, Sequential) else list(layers)
    W, b = None, None
    for layer in seq:
        if not isinstance(layer, Linear):
            raise ValueError(f"compose_affine needs Linear layers only; {layer!r} is not linear, "
                             "which is why a stack with activations is not one affine map")
        Wk = np.asarray(to_numpy(layer.params["W"]), dtype=np.float64)
        bk = np.asarray(to_numpy(layer.params["b"]), dtype=np.float64) if "b" in layer.params else np.zeros(Wk.shape[0])
        W, b = (Wk, bk) if W is None else (Wk @ W, b @ Wk.T + bk)
    if W is None:
        raise ValueError("compose_affine needs at least one Linear layer")
    return W, b


# ====================================================================== rendering
def _fmt_value(a: Any, indent: int = 0, width: int = 100) -> str:
    a = np.asarray(a)
    return np.array2string(a, precision=4, suppress_small=True, max_line_width=width, threshold=24, edgeitems=3,
                           separator=", ").replace("\n", "\n" + " " * indent)


def _section_title(name: str, question: str = "") -> str:
    """A section's heading, naming the seed's question it answers: 1.1 for regression, 1.2 for classification."""
    refs = {"1.1": ("seed 1.1(b)", "1.1(c)", "1.1(d)"), "1.2": ("seed 1.2(a)", "1.2(a)-(b)", "1.2(a)")}.get(question)
    fwd, chain, jac = (f" ({r})" for r in refs) if refs else ("", "", "")
    chain = f" ({chain[2:-1]}; one sample, numerator layout)" if refs else " (one sample, numerator layout)"
    return {
        "forward": f"Forward pass, layer by layer{fwd}",
        "composed": "The whole network as one expression",
        "chain": f"Backward pass as a chain of Jacobians{chain}",
        "backward": "Backward pass in matrix form (the whole batch, as backward computes it)",
        "expanded": "Each parameter gradient, expanded",
        "jacobian": f"The Jacobians, element by element{jac}",
    }[name]


def seed_question(net: Sequential, loss: Loss) -> str:
    """Which of the seed's questions a two-layer configuration answers: "1.1" (regression:
    identity output, squared error), "1.2" (classification: a sigmoid output), else ""."""
    if len(net.linears) != 2:
        return ""
    last = net.layers[-1].derivation.name if net.layers[-1].derivation is not None else ""
    if last == "Identity" and not isinstance(loss, (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss)):
        return "1.1"
    return "1.2" if last == "Sigmoid" else ""


def _sizes_line(ex: Explanation) -> str:
    parts = [f"{k} = {v}" for k, v in ex.sizes.items()]
    return "sizes: " + ", ".join(parts) + "; N = batch size"


def _render_text(ex: Explanation) -> str:
    lines = [f"handgrad explain: {ex.title}", *([ex.source] if ex.source else []), _sizes_line(ex)]
    for sec in SECTIONS:
        eqs = ex.section(sec)
        if not eqs:
            continue
        lines += ["", _section_title(sec, ex.config.get('question', ''))]
        width = min(max((len(e.text.splitlines()[0]) for e in eqs), default=0), 56)
        for e in eqs:
            first, *rest = e.text.splitlines()
            if sec == "jacobian":
                lines.append(f"  {first}")
                lines += [f"      {r}" for r in rest]
                lines.append(f"      why: {e.why}")
                continue
            lines.append(f"  {first:<{width}}   {e.shape}".rstrip())
            if e.note:
                lines.append(f"      ({e.note})")
    lines += _seed_lines(ex, "text")
    lines += _text_values(ex)
    return "\n".join(lines) + "\n"


def _seed_lines(ex: Explanation, fmt: str) -> list[str]:
    """The seed's mistakes in the question this configuration answers, beside the corrections."""
    from .seed import errata_for

    question = ex.config.get("question", "")
    rows = errata_for(question) if question else []
    if not rows:
        return []
    if fmt == "markdown":
        out = ["", f"## The seed's mistakes in {question}, corrected", ""]
        return out + [f"- **{qid}** the seed says: {said}  \n  correct: {right}" for qid, said, right in rows]
    if fmt == "latex":
        heading = _latex_text(f"The seed's mistakes in {question}, corrected")
        out = [rf"\subsection*{{{heading}}}",
               r"\begin{itemize}"]
        out += [rf"\item \textbf{{{qid}}} the seed says: {_latex_text(said)}; correct: {_latex_text(right)}"
                for qid, said, right in rows]
        return out + [r"\end{itemize}"]
    out = ["", f"The seed's mistakes in {question}, corrected (handgrad homework shows each at a point)"]
    for qid, said, right in rows:
        out += [f"  {qid} the seed says: {said}", f"         correct: {right}"]
    return out


def _text_values(ex: Explanation) -> list[str]:
    if not ex.values:
        return []
    lines = ["", f"Evaluated at {ex.point}"]
    w = max(len(k) for k in ex.values)
    for k, v in ex.values.items():
        lines.append(f"  {k:<{w}} = {_fmt_value(v, w + 5)}")
    lines.append("  Jacobians of the first sample:")
    w = max(len(k) for k in ex.jacobian_values)
    for k, v in ex.jacobian_values.items():
        lines.append(f"  {k:<{w}} = {_fmt_value(v, w + 5)}")
    if ex.checks:
        n_pass = sum(c.passed for c in ex.checks)
        lines += ["", f"Checks: {n_pass}/{len(ex.checks)} pass"]
        lines += [f"  {c.line()}" for c in ex.checks]
    return lines


def _render_markdown(ex: Explanation) -> str:
    lines = [f"# handgrad explain: {ex.title}", "", *([ex.source, ""] if ex.source else []), _sizes_line(ex)]
    for sec in SECTIONS:
        eqs = ex.section(sec)
        if not eqs:
            continue
        lines += ["", f"## {_section_title(sec, ex.config.get('question', ''))}", ""]
        for e in eqs:
            first, *rest = e.text.splitlines()
            if sec == "jacobian":
                lines.append(f"- **`{first}`**")
                lines += [f"  - `{r}`" for r in rest]
                lines.append(f"  - *why*: {e.why}")
                continue
            lines.append(f"- `{first}`" + (f" — shape `{e.shape}`" if e.shape else ""))
            if e.note:
                lines.append(f"  - {e.note}")
    lines += _seed_lines(ex, "markdown")
    if ex.values:
        values = _text_values(ex)[2:]
        if ex.checks:  # the checks as a table, below the values
            values = values[:next(i for i, line in enumerate(values) if line.startswith("Checks:")) - 1]
        lines += ["", f"## Evaluated at {ex.point}", "", "```text", *values, "```"]
        if ex.checks:
            lines += ["", f"### Checks: {sum(c.passed for c in ex.checks)}/{len(ex.checks)} pass", "",
                      checks_table(ex.checks)]
    return "\n".join(lines) + "\n"


_LATEX_TEXT = {
    "ŷ": r"$\hat{y}$", "ᵀ": r"$^\top$", "−": "-", "×": r"$\times$", "·": r"$\cdot$", "→": r"$\to$",
    "∂": r"$\partial$", "β": r"$\beta$", "σ": r"$\sigma$", "δ": r"$\delta$", "⊙": r"$\odot$", "Σ": r"$\Sigma$",
    "φ": r"$\varphi$", "Φ": r"$\Phi$", "π": r"$\pi$", "√": r"$\surd$", "²": r"$^2$", "³": r"$^3$", "½": r"$\frac12$",
    "≤": r"$\le$", "≥": r"$\ge$", "‖": r"$\|$", "✓": r"$\checkmark$", "✗": r"$\times$", "—": "---", "–": "--",
    "α": r"$\alpha$", "ε": r"$\varepsilon$", "θ": r"$\theta$", "ℝ": r"$\mathbb{R}$",
    "≠": r"$\neq$", "←": r"$\gets$", "ℓ": r"$\ell$", "⁺": r"$^+$", "′": "'", "∞": r"$\infty$",
}
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "|": r"$|$",
                  "<": r"$<$", ">": r"$>$"}


def _latex_text(s: str) -> str:
    """Plain text (with Unicode math symbols) made safe for a LaTeX paragraph."""
    out = []
    for ch in s:
        if ch in _LATEX_SPECIAL:
            out.append(_LATEX_SPECIAL[ch])
        elif ch in _LATEX_TEXT:
            out.append(_LATEX_TEXT[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            ascii_form = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            out.append(ascii_form or "?")
    return "".join(out)


def _latex_align(eqs: list[Equation], with_shape: bool) -> list[str]:
    rows = []
    for e in eqs:
        lhs, _, rhs = e.latex.partition(" = ")
        row = f"{lhs} &= {rhs}" if rhs else f"&{e.latex}"
        if with_shape and e.shape_latex:
            row += rf" && {e.shape_latex}"
        rows.append(row)
    return [r"\begin{align*}", " \\\\\n".join(rows), r"\end{align*}"]


def _render_latex(ex: Explanation, standalone: bool) -> str:
    body = [rf"\section*{{{_latex_text('handgrad explain')}}}", _latex_text(ex.title) + r"\\",
            *([_latex_text(ex.source) + r"\\"] if ex.source else []), _latex_text(_sizes_line(ex))]
    for sec in SECTIONS:
        eqs = ex.section(sec)
        if not eqs:
            continue
        body.append(rf"\subsection*{{{_latex_text(_section_title(sec, ex.config.get('question', '')))}}}")
        if sec == "jacobian":
            for e in eqs:
                body += [rf"\[ {e.latex} \]", r"\noindent " + _latex_text(f"{e.structure}: {e.why}.") + r"\par"]
            continue
        if sec == "chain":
            for e in eqs:
                body += [rf"\[ {e.latex} \]", r"\noindent " + _latex_text(f"shapes {e.shape}; {e.note}.") + r"\par"]
            continue
        body += _latex_align(eqs, with_shape=sec in ("forward", "backward"))
        body += [r"\noindent $" + e.latex.partition(" = ")[0] + "$: " + _latex_text(e.note) + r"\par"
                 for e in eqs if e.note]
    body += _seed_lines(ex, "latex")
    if ex.values:
        body.append(rf"\subsection*{{{_latex_text('Evaluated at ' + ex.point)}}}")
        ascii_lines = [_ascii(line) for line in _text_values(ex)[2:]]
        body += [r"\begin{verbatim}", *ascii_lines, r"\end{verbatim}"]
    text = "\n".join(body)
    return _latex_document(text) if standalone else text


def _ascii(s: str) -> str:
    table = {"ŷ": "y_hat", "∂": "d", "✓": "[ok]", "✗": "[X]", "·": "*", "×": "x", "−": "-", "→": "->"}
    s = "".join(table.get(ch, ch) for ch in s)
    return unicodedata.normalize("NFKD", s).encode("ascii", "replace").decode()


def _latex_document(body: str) -> str:
    # amssymb has no blackboard 1: the indicator 1[z > 0] is set as a bold 1, which base LaTeX renders
    body = body.replace(r"\mathbb{1}", r"\mathbf{1}")
    return "\n".join([
        r"\documentclass[10pt]{article}",
        r"\usepackage[margin=1.6cm,landscape]{geometry}",
        r"\usepackage{amsmath,amssymb}",
        r"\allowdisplaybreaks",
        r"\begin{document}",
        body,
        r"\end{document}",
        "",
    ])


def latex_text(s: str) -> str:
    """Plain text with Unicode math symbols, made safe for a LaTeX paragraph."""
    return _latex_text(s)


def latex_document(body: str) -> str:
    """A complete LaTeX document (base packages only: amsmath, amssymb, geometry) around ``body``."""
    return _latex_document(body)


def draw_point(net: Sequential, loss: Loss, *, batch: int = 1, seed: Any = 0) -> tuple[np.ndarray, np.ndarray]:
    """An input batch x ~ N(0, 1) of ``batch`` rows and matching targets for ``loss``, drawn with ``seed``."""
    from .._checks import check_size

    batch = check_size("batch", batch)
    rng = make_rng(seed)
    x = rng.standard_normal((batch, net.in_features))
    return x, draw_target(net, loss, batch, rng)


def draw_target(net: Sequential, loss: Loss, batch: int, rng: np.random.Generator) -> np.ndarray:
    K = net.out_features
    if isinstance(loss, (BCELoss, BCEWithLogitsLoss)):
        return rng.integers(0, 2, (batch, K)).astype(np.float64)
    if isinstance(loss, CrossEntropyLoss):
        return rng.integers(0, K, batch)
    return rng.standard_normal((batch, K))


__all__ = ["DEFAULT_SIZES", "PRESETS", "Check", "Equation", "Explanation", "build_network", "compose_affine",
           "derive", "describe_model", "diff", "draw_point", "explain", "checks_table", "grad_symbol", "is_atomic", "latex_document", "latex_text", "layer_label", "layer_steps", "loss_symbols",
           "param_formula", "param_jacobian", "partial_symbol", "render_formula", "rhs",
           "seed_question", "load_network", "one_hot_argmax", "render_diff",
           "softargmax"]
