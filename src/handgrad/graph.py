r"""Computational graphs (the seed's 1.3(b)): Graphviz DOT for networks and small expressions.

Functions are boxes, variables are circles (parameters are filled circles), and every
forward edge carries the shape flowing along it. With ``grad=True`` the backward edges
are added, dashed and pointing back, each labelled with its Jacobian.

Two sources of graphs:

- :func:`network_graph` for any handgrad :class:`~handgrad.model.Sequential` (and a loss);
- a tiny expression API, each op with a hand-written local derivative::

      x, y = var("x", 1.5), var("y", -2.0)
      a = x * y + x
      w = sigmoid(a) * y
      grads = backward(w)                 # {"x": ..., "y": ...}
      expression_graph(w, grad=True).to_dot()

  or from text with :func:`parse_expressions` (``"a = x*y + x; w = sigmoid(a) * y"``,
  parsed with :mod:`ast`, never evaluated).

:func:`save` writes ``.dot``/``.gv`` text, or renders ``.svg``/``.png``/``.pdf`` with
Graphviz's ``dot`` when it is installed; without it the DOT text is written and the
returned message says how to render it.
"""

from __future__ import annotations

import ast
import math
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .functional import sigmoid as sigmoid_array

RENDER_FORMATS = ("svg", "png", "pdf")
TEXT_FORMATS = ("dot", "gv")
BACKWARD_COLOR = "#b03a2e"


# ====================================================================== graph data
@dataclass
class Node:
    """A graph node: ``kind`` is "variable", "parameter", "constant" or "function"."""

    id: str
    label: str
    kind: str


@dataclass
class Edge:
    """A directed edge; ``kind`` is "forward" or "backward" (a Jacobian)."""

    src: str
    dst: str
    label: str
    kind: str = "forward"


@dataclass
class Graph:
    """Nodes and edges, and their DOT text."""

    name: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    title: str = ""  # drawn above the graph when set (e.g. the model file it was read from)

    def add_node(self, id: str, label: str, kind: str) -> Node:
        if any(n.id == id for n in self.nodes):
            raise ValueError(f"duplicate node id {id!r}")
        node = Node(id, label, kind)
        self.nodes.append(node)
        return node

    def add_edge(self, src: str, dst: str, label: str = "", kind: str = "forward") -> Edge:
        ids = {n.id for n in self.nodes}
        for end in (src, dst):
            if end not in ids:
                raise ValueError(f"edge end {end!r} is not a node")
        edge = Edge(src, dst, label, kind)
        self.edges.append(edge)
        return edge

    def node(self, label: str) -> Node:
        """The node with this label (ValueError if none or several)."""
        found = [n for n in self.nodes if n.label == label or n.label.split("\n")[0] == label]
        if len(found) != 1:
            raise ValueError(f"{len(found)} nodes labelled {label!r}; labels: {[n.label for n in self.nodes]}")
        return found[0]

    def labels(self, kind: str | None = None) -> list[str]:
        """Node names (a label's first line; values and gradients follow on the next lines)."""
        return [n.label.split("\n")[0] for n in self.nodes if kind is None or n.kind == kind]

    def edge_labels(self, kind: str = "forward") -> list[tuple[str, str, str]]:
        """(source label, destination label, edge label) for every edge of ``kind``."""
        by_id = {n.id: n.label.split("\n")[0] for n in self.nodes}
        return [(by_id[e.src], by_id[e.dst], e.label) for e in self.edges if e.kind == kind]

    def _repr_svg_(self) -> str | None:
        """In Jupyter: the graph drawn by Graphviz's dot, when it is installed (else the text repr is shown)."""
        exe = shutil.which("dot")
        if exe is None:
            return None
        proc = subprocess.run([exe, "-Tsvg"], input=self.to_dot().encode("utf-8"), capture_output=True, timeout=60,
                              check=False)
        return proc.stdout.decode("utf-8") if proc.returncode == 0 else None

    def to_dot(self) -> str:
        lines = [f"digraph {_quote(self.name)} {{", "  rankdir=LR; nodesep=0.45; ranksep=0.8; forcelabels=true;",
                 '  node [fontname="Helvetica", fontsize=11];', '  edge [fontname="Helvetica", fontsize=9];']
        if self.title:
            lines.append(f'  label={_quote(self.title)}; labelloc=t; fontname="Helvetica";')
        style = {
            "variable": 'shape=circle, width=0.55, fixedsize=false',
            "parameter": 'shape=circle, style=filled, fillcolor="#dbe9f6", width=0.55',
            "constant": 'shape=plaintext',
            "function": 'shape=box, style="rounded,filled", fillcolor="#fdf2d0"',
        }
        for n in self.nodes:
            shape = style[n.kind]
            if "\n" in n.label and n.kind == "variable":  # a value and a gradient under the name: an ellipse
                shape = shape.replace("shape=circle", "shape=ellipse")
            lines.append(f"  {_quote(n.id)} [label={_quote(n.label)}, {shape}];")
        for e in self.edges:
            attrs = [f"label={_quote(e.label)}"] if e.label else []
            src, dst = e.src, e.dst
            if e.kind == "backward":
                # drawn as a reversed forward edge (dir=back), so dot ranks it and gives its label room
                # of its own instead of laying it over the forward labels
                src, dst = e.dst, e.src
                attrs += ["dir=back", "style=dashed", f'color="{BACKWARD_COLOR}"', f'fontcolor="{BACKWARD_COLOR}"']
            lines.append(f"  {_quote(src)} -> {_quote(dst)} [{', '.join(attrs)}];")
        lines.append("}")
        return "\n".join(lines) + "\n"


def _quote(s: str) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


# ====================================================================== networks
def network_graph(net: Any, loss: Any = None, *, grad: bool = False, batch: int | str = "N",
                  title: str = "") -> Graph:
    """The computational graph of ``net`` (and ``loss``): x → Linear → f → ... → ŷ → J.

    Forward edges carry shapes such as ``(N, 4)``; parameters W1, b1, ... are filled
    circles feeding their Linear box. With ``grad`` each function gets backward edges
    labelled with its Jacobian, rendered from the layer's derivation record. ``title``
    (say, the model file the network was loaded from) is drawn above the graph.
    """
    from . import Sequential, make_loss
    from .explain import (
        grad_symbol,
        layer_label,
        layer_steps,
        loss_symbols,
        param_formula,
        partial_symbol,
        render_formula,
        rhs,
    )

    if not isinstance(net, Sequential):
        raise TypeError(f"network_graph expects a handgrad Sequential/MLP, got {type(net).__name__}")
    steps = layer_steps(net)
    widths = [net.in_features] + [_width(net, i) for i in range(len(net.layers))]
    g = Graph("network", title=title)
    g.add_node("x", "x", "variable")
    for st in steps:
        fid = f"f{st.index}"
        g.add_node(fid, layer_label(st.layer), "function")
        g.add_edge(st.x.text if st.index else "x", fid, f"({batch}, {widths[st.index]})")
        for key, p in st.params.items():
            g.add_node(p.text, p.text, "parameter")
            shape = tuple(st.layer.params[key].shape)
            g.add_edge(p.text, fid, str(shape))
        g.add_node(st.y.text, st.y.text, "variable")
        g.add_edge(fid, st.y.text, f"({batch}, {widths[st.index + 1]})")
        if grad:
            syms = st.symbols()
            jac = render_formula(st.layer.derivation_record().jacobian, syms)[0]
            structure = st.layer.derivation_record().structure
            g.add_edge(st.y.text, st.x.text, f"{partial_symbol(st.y, st.x).text}: {structure}\n{jac}",
                       "backward")
            for key, p in st.params.items():
                g.add_edge(st.y.text, p.text, render_formula(param_formula(st.layer, key), syms)[0], "backward")
    if loss is not None:
        loss = make_loss(loss)
        top = steps[-1].y
        g.add_node("y", "y", "variable")
        g.add_node("loss", loss.derivation.name, "function")
        g.add_node("J", "J", "variable")
        g.add_edge(top.text, "loss", f"({batch}, {widths[-1]})")
        g.add_edge("y", "loss", f"({batch}, {widths[-1]})")
        g.add_edge("loss", "J", "scalar")
        if grad:
            g.add_edge("J", top.text, f"{grad_symbol(top).text}\n"
                       + rhs(render_formula(loss.derivation.backward, loss_symbols(top))[0]), "backward")
    return g


def _width(net: Any, i: int) -> int:
    shape = (1, net.in_features)
    for layer in net.layers[: i + 1]:
        shape = layer.output_shape(shape)
    return int(shape[1])


# ====================================================================== expressions
@dataclass(frozen=True)
class Op:
    """An elementwise op: its forward and, per input, a hand-written local derivative.

    ``derivative[k](*inputs)`` is ∂out/∂input_k (elementwise); ``formula[k]`` writes it
    with ``{0}``, ``{1}`` standing for the inputs' names.
    """

    name: str
    symbol: str
    forward: Callable[..., Any]
    derivative: tuple[Callable[..., Any], ...]
    formula: tuple[str, ...]
    infix: bool = False


def _sigmoid(a: Any) -> Any:
    return sigmoid_array(np.asarray(a, dtype=np.float64))


OPS: dict[str, Op] = {
    "add": Op("add", "+", lambda a, b: a + b, (lambda a, b: np.ones_like(a + b), lambda a, b: np.ones_like(a + b)),
              ("1", "1"), True),
    "sub": Op("sub", "−", lambda a, b: a - b, (lambda a, b: np.ones_like(a - b), lambda a, b: -np.ones_like(a - b)),
              ("1", "−1"), True),
    "mul": Op("mul", "·", lambda a, b: a * b, (lambda a, b: b + 0 * a, lambda a, b: a + 0 * b), ("{1}", "{0}"), True),
    "div": Op("div", "/", lambda a, b: a / b, (lambda a, b: 1 / b + 0 * a, lambda a, b: -a / b**2),
              ("1/{1}", "−{0}/{1}²"), True),
    "neg": Op("neg", "−", lambda a: -a, (lambda a: -np.ones_like(a),), ("−1",)),
    "sigmoid": Op("sigmoid", "σ", _sigmoid, (lambda a: _sigmoid(a) * (1 - _sigmoid(a)),), ("σ({0})(1 − σ({0}))",)),
    "tanh": Op("tanh", "tanh", np.tanh, (lambda a: 1 - np.tanh(a) ** 2,), ("1 − tanh²({0})",)),
    "relu": Op("relu", "ReLU", lambda a: np.maximum(a, 0.0), (lambda a: (np.asarray(a) > 0).astype(np.float64),),
               ("1[{0} > 0]",)),
    "exp": Op("exp", "exp", np.exp, (np.exp,), ("exp({0})",)),
    "log": Op("log", "log", np.log, (lambda a: 1 / a,), ("1/{0}",)),
    "square": Op("square", "²", lambda a: a * a, (lambda a: 2 * a,), ("2{0}",)),
}
FUNCTIONS = ("sigmoid", "tanh", "relu", "exp", "log", "square")


class Expr:
    """A node of an expression: a leaf variable or constant, or an op applied to parents.

    Values (scalars or NumPy arrays) are computed eagerly when every leaf has one.
    """

    _counter = 0
    value: np.ndarray | None

    def __init__(self, op: Op | None, parents: tuple[Expr, ...] = (), value: Any = None, name: str | None = None,
                 constant: bool = False) -> None:
        self.op, self.parents, self.name, self.constant = op, parents, name, constant
        if op is not None and all(p.value is not None for p in parents):
            with np.errstate(all="ignore"):
                value = np.asarray(op.forward(*(p.value for p in parents)), dtype=np.float64)
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{op.name} gives a non-finite value at {self.text}; check the input values")
        self.value = None if value is None else np.asarray(value, dtype=np.float64)
        Expr._counter += 1
        self.uid = Expr._counter

    # ---------------------------------------------------------------- text
    @property
    def text(self) -> str:
        if self.name is not None:
            return self.name
        if self.op is None:
            return _number(self.value)
        args = [p.text for p in self.parents]
        if self.op.infix:
            return f"{_paren(args[0], self.parents[0], self.op)} {self.op.symbol} {_paren(args[1], self.parents[1], self.op, True)}"
        if self.op.name == "neg":
            return f"−{_paren(args[0], self.parents[0], self.op)}"
        if self.op.name == "square":
            return f"{_paren(args[0], self.parents[0], self.op)}²"
        return f"{self.op.symbol}({args[0]})"

    def __repr__(self) -> str:
        val = "" if self.value is None else f", value={_number(self.value)}"
        return f"Expr({self.text!r}{val})"

    # ---------------------------------------------------------------- operators
    def __add__(self, other: Any) -> Expr:
        return apply("add", self, other)

    def __radd__(self, other: Any) -> Expr:
        return apply("add", other, self)

    def __sub__(self, other: Any) -> Expr:
        return apply("sub", self, other)

    def __rsub__(self, other: Any) -> Expr:
        return apply("sub", other, self)

    def __mul__(self, other: Any) -> Expr:
        return apply("mul", self, other)

    def __rmul__(self, other: Any) -> Expr:
        return apply("mul", other, self)

    def __truediv__(self, other: Any) -> Expr:
        return apply("div", self, other)

    def __rtruediv__(self, other: Any) -> Expr:
        return apply("div", other, self)

    def __neg__(self) -> Expr:
        return apply("neg", self)

    def __pow__(self, power: Any) -> Expr:
        if power != 2:
            raise ValueError(f"only x**2 is supported in expressions, got power {power!r}")
        return apply("square", self)


_PRECEDENCE = {"add": 1, "sub": 1, "mul": 2, "div": 2, "neg": 3, "square": 4}


def _paren(text: str, e: Expr, op: Op, right: bool = False) -> str:
    if e.name is not None or e.op is None or e.op.name not in _PRECEDENCE:
        return text
    mine, theirs = _PRECEDENCE[op.name], _PRECEDENCE[e.op.name]
    need = theirs < mine or (right and theirs == mine and op.name in ("sub", "div"))
    return f"({text})" if need else text


def _number(v: Any) -> str:
    a = np.asarray(v)
    return f"{float(a):g}" if a.ndim == 0 else np.array2string(a, precision=4, separator=", ")


def var(name: str, value: Any = None) -> Expr:
    """A named input variable, with an optional value (scalar or array)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"variable name must be an identifier like 'x', got {name!r}")
    if value is not None:
        value = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(value)):
            raise ValueError(f"variable {name!r}: value must be finite, got {value}")
    return Expr(None, (), value, name)


def _lift(x: Any) -> Expr:
    if isinstance(x, Expr):
        return x
    if isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(x):
        return Expr(None, (), float(x), None, constant=True)
    raise TypeError(f"expressions combine Expr objects and finite numbers, got {type(x).__name__} {x!r}")


def apply(op: str, *args: Any) -> Expr:
    """``op`` (a key of :data:`OPS`) applied to expressions or numbers."""
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; known: {', '.join(OPS)}")
    return Expr(OPS[op], tuple(_lift(a) for a in args))


def sigmoid(a: Any) -> Expr:
    return apply("sigmoid", a)


def tanh(a: Any) -> Expr:
    return apply("tanh", a)


def relu(a: Any) -> Expr:
    return apply("relu", a)


def exp(a: Any) -> Expr:
    return apply("exp", a)


def log(a: Any) -> Expr:
    return apply("log", a)


def _topological(outputs: Iterable[Expr]) -> list[Expr]:
    order: list[Expr] = []
    seen: set[int] = set()

    def visit(e: Expr) -> None:
        if e.uid in seen:
            return
        seen.add(e.uid)
        for p in e.parents:
            visit(p)
        order.append(e)

    for out in outputs:
        visit(out)
    return order


def backward(output: Expr) -> dict[str, np.ndarray]:
    """d(output)/d(every named variable), by the chain rule over the local derivatives.

    Reverse topological order; each node adds ``upstream ⊙ local derivative`` to its
    parents (summing over broadcast axes). Needs every leaf to have a value.
    """
    order = _topological([output])
    grads = accumulated_gradients(output)
    return {e.name: grads.get(e.uid, np.zeros_like(e.value)) for e in order if e.op is None and e.name is not None}


def accumulated_gradients(output: Expr) -> dict[int, np.ndarray]:
    """d(output)/d(node) for every node (by ``uid``), each the sum over the paths from it to the output."""
    order = _topological([output])
    missing = [e.text for e in order if e.op is None and e.value is None]
    if missing:
        raise ValueError(f"backward needs a value for every variable; missing: {', '.join(missing)}")
    grads: dict[int, np.ndarray] = {output.uid: np.ones_like(output.value)}
    for e in reversed(order):
        if e.op is None or e.uid not in grads:
            continue
        inputs = [p.value for p in e.parents]
        for k, p in enumerate(e.parents):
            local = np.asarray(e.op.derivative[k](*inputs), dtype=np.float64)
            contrib = _unbroadcast(grads[e.uid] * local, () if p.value is None else p.value.shape)
            grads[p.uid] = grads.get(p.uid, 0) + contrib
    return grads


def _unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for i, s in enumerate(shape):
        if s == 1 and g.shape[i] != 1:
            g = g.sum(axis=i, keepdims=True)
    return g


def _shape_label(e: Expr) -> str:
    """An edge's label: the shape of a vector or matrix; nothing for a scalar (or an unknown value)."""
    if e.value is None or e.value.ndim == 0:
        return ""
    return str(tuple(e.value.shape))


def expression_graph(outputs: Expr | Iterable[Expr], *, grad: bool = False) -> Graph:
    """The graph of one or more expressions: a circle per value, a box per op.

    Each op's output is a circle labelled with its name (from an assignment) or its
    expression. With ``grad``, backward edges carry the local derivative ∂out/∂input,
    and its value when the inputs have values.
    """
    outs = [outputs] if isinstance(outputs, Expr) else list(outputs)
    if not outs or not all(isinstance(o, Expr) for o in outs):
        raise TypeError("expression_graph expects an Expr or a list of Expr")
    g = Graph("expression")
    order = _topological(outs)
    valued = all(e.value is not None for e in order)
    acc = accumulated_gradients(outs[-1]) if valued and grad else {}
    top = _short(outs[-1]) if outs[-1].name is None else outs[-1].name
    for e in order:
        vid = f"v{e.uid}"
        label = e.text
        if valued and not e.constant:
            label += f"\n= {_number(e.value)}"
            if e.uid in acc:
                label += f"\n∂{top}/∂· = {_number(acc[e.uid])}"
        g.add_node(vid, label, "constant" if e.constant else "variable")
        if e.op is None:
            continue
        fid = f"op{e.uid}"
        g.add_node(fid, {"mul": "×"}.get(e.op.name, e.op.symbol) if e.op.infix or e.op.name == "neg" else e.op.name, "function")
        for p in e.parents:
            g.add_edge(f"v{p.uid}", fid, _shape_label(p))
        g.add_edge(fid, vid, _shape_label(e))
        if grad:
            for k, p in enumerate(e.parents):
                if p.constant:
                    continue
                formula = e.op.formula[k]
                names = [q.text if f"({{{j}}})" in formula else _short(q) for j, q in enumerate(e.parents)]
                label = f"∂{_short(e)}/∂{_short(p)} = {formula.format(*names)}"
                if all(q.value is not None for q in e.parents) and not _is_number(e.op.formula[k]):
                    d = e.op.derivative[k](*(q.value for q in e.parents))
                    label += f" = {_number(d)}"
                g.add_edge(vid, f"v{p.uid}", label, "backward")
    return g


def _is_number(s: str) -> bool:
    try:
        float(s.replace("−", "-"))
    except ValueError:
        return False
    return True


def _short(e: Expr) -> str:
    """The expression's text, parenthesised unless it is a name, a number or a call."""
    from .explain import is_atomic

    t = e.text
    return t if is_atomic(t) else f"({t})"


# ---------------------------------------------------------------- parsing
def parse_expressions(source: str, values: dict[str, Any] | None = None) -> dict[str, Expr]:
    """Expressions from text such as ``"a = x*y + x; w = sigmoid(a) * y"``.

    Statements are separated by ``;`` or newlines; each is ``name = expression`` (or a
    bare expression, named ``out``). Allowed: numbers, names, ``+ - * /``, ``**2``,
    unary minus and the functions sigmoid, tanh, relu, exp, log. The text is parsed with
    :mod:`ast` and never evaluated. Free names become variables with ``values[name]``.
    Returns every assigned name in order (the last is the output).
    """
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"expected expressions such as 'a = x*y + x; w = sigmoid(a) * y', got {source!r}")
    statements = [part.strip() for line in source.splitlines() for part in line.split(";")]
    text = "\n".join(p for p in statements if p)
    _check_nesting(text)
    try:
        tree = ast.parse(text, mode="exec")
    except SyntaxError as exc:
        raise ValueError(f"cannot parse {source!r:.200}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ValueError(f"the expression is too deeply nested (the limit is {MAX_DEPTH} levels)") from None
    _check_depth(tree)
    values = dict(values or {})
    env: dict[str, Expr] = {}
    out: dict[str, Expr] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name, node = stmt.targets[0].id, stmt.value
        elif isinstance(stmt, ast.Expr):
            name, node = "out", stmt.value
        else:
            raise ValueError(f"each statement must be 'name = expression', got {ast.unparse(stmt)!r}")
        e = _build(node, env, values)
        if e.op is None and not e.constant:  # a plain alias: y2 = x
            e = apply("add", e, 0.0)
        e.name = name
        env[name] = out[name] = e
    unused = set(values) - {e.name for e in _topological(out.values()) if e.op is None}
    if unused:
        raise ValueError(f"values given for names not in the expressions: {', '.join(sorted(unused))}")
    return out


MAX_DEPTH = 200  # levels of nesting (brackets, unary signs, chained operators); deeper input is refused


def _check_nesting(text: str) -> None:
    """Refuse, before parsing, brackets or runs of signs deeper than MAX_DEPTH (the parser would recurse)."""
    depth = deepest = run = 0
    for ch in text:
        if ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
        if ch in "+-~":
            run += 1
            deepest = max(deepest, depth + run)
        elif not ch.isspace():
            run = 0
    if deepest > MAX_DEPTH:
        raise ValueError(f"the expression is too deeply nested ({deepest} levels; the limit is {MAX_DEPTH})")


def _check_depth(tree: ast.AST) -> None:
    """The parsed tree's depth, measured without recursion; a long chain of operators nests too."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH + 3:  # Module -> statement -> expression add three levels
            raise ValueError(f"the expression is too deeply nested (over {MAX_DEPTH} levels of operators, "
                             "brackets or calls); split it into named steps: a = ...; b = f(a)")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _build(node: ast.AST, env: dict[str, Expr], values: dict[str, Any]) -> Expr:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        try:
            number = float(node.value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise ValueError(f"the number {ast.unparse(node)[:40]} is beyond the float64 range (±1.8e308)")
        return _lift(number)
    if isinstance(node, ast.Name):
        if node.id not in env:
            if node.id in FUNCTIONS:
                raise ValueError(f"{node.id} is a function; call it as {node.id}(...)")
            env[node.id] = var(node.id, values.get(node.id))
        return env[node.id]
    if isinstance(node, ast.BinOp):
        ops = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div"}
        if isinstance(node.op, ast.Pow):
            if not (isinstance(node.right, ast.Constant) and node.right.value == 2):
                raise ValueError(f"only **2 is supported, got {ast.unparse(node)!r}")
            return apply("square", _build(node.left, env, values))
        if type(node.op) not in ops:
            raise ValueError(f"operator not supported in {ast.unparse(node)!r}; use + - * / **2")
        return apply(ops[type(node.op)], _build(node.left, env, values), _build(node.right, env, values))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _build(node.operand, env, values)
        return apply("neg", inner) if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        if node.func.id not in FUNCTIONS or len(node.args) != 1:
            raise ValueError(f"unknown function call {ast.unparse(node)!r}; known (one argument): {', '.join(FUNCTIONS)}")
        return apply(node.func.id, _build(node.args[0], env, values))
    raise ValueError(f"not supported in an expression: {ast.unparse(node)!r}")


# ====================================================================== saving
@dataclass
class SaveResult:
    """Where a graph went: ``rendered`` is False when only DOT text could be written."""

    path: Path
    format: str
    rendered: bool
    message: str


def save(graph: Graph, path: str | Path, fmt: str | None = None) -> SaveResult:
    """Write ``graph`` to ``path``: DOT text (.dot/.gv) or rendered by Graphviz (.svg/.png/.pdf).

    Without Graphviz's ``dot`` the DOT text is written next to ``path`` (suffix .dot)
    and the message says how to render it.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".") or "dot").lower()
    if fmt not in RENDER_FORMATS + TEXT_FORMATS:
        raise ValueError(f"graph format must be one of {', '.join(RENDER_FORMATS + TEXT_FORMATS)}, got {fmt!r}")
    if path.is_dir():
        raise ValueError(f"{path} is a directory; give a file name such as graph.svg")
    if not path.parent.exists():
        raise FileNotFoundError(f"the folder {path.parent} does not exist")
    from .outputs import replace_bytes  # atomic, never through a link or onto a device

    dot_text = graph.to_dot()
    if fmt in TEXT_FORMATS:
        replace_bytes(path, dot_text.encode("utf-8"), what="graph")
        return SaveResult(path, fmt, False, f"wrote the DOT text to {path}")
    exe = shutil.which("dot")
    if exe is None:
        dot_path = path.with_suffix(".dot")
        replace_bytes(dot_path, dot_text.encode("utf-8"), what="graph")
        return SaveResult(dot_path, "dot", False,
                          f"Graphviz 'dot' was not found, so the graph was written as DOT text to {dot_path}; "
                          f"render it with: dot -T{fmt} {dot_path} -o {path}  "
                          "(install Graphviz: apt-get install graphviz, brew install graphviz, or graphviz.org)")
    proc = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode("utf-8"),
                          capture_output=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"dot failed (exit {proc.returncode}): {proc.stderr.decode(errors='replace').strip()}")
    replace_bytes(path, proc.stdout, what="graph")
    return SaveResult(path, fmt, True, f"wrote {path}")


__all__ = ["OPS", "Edge", "Expr", "Graph", "Node", "SaveResult", "apply", "backward", "exp", "expression_graph",
           "log", "network_graph", "parse_expressions", "relu", "save", "sigmoid", "tanh", "var"]
