r"""Check a student's formula: ``dJdW2 = dJdz3.T @ z2`` judged against the network's own values.

The text is parsed with :mod:`ast` and walked over a whitelist (names of the configured
network's quantities, numbers, ``@ * + - / **``, ``.T``, and the functions ``sum diag outer
tanh sigmoid exp log sqrt``); it is never executed or ``eval``'d. It is evaluated at several
random points and compared with the value handgrad derives; a wrong formula gets the shape
mismatch or the numeric difference and, where one fits, a named mistake: a transpose, a
constant factor (a missing 1/K, the 5 counted twice, a sign), ``tanh(z²)`` for ``tanh(z)²``.

Batch notation (default): samples are rows, ``x`` is N × n, ``dJdz3`` is N × K. Homework
notation: one sample, vectors are columns (``z2`` is m × 1) and the derivative of a scalar
by a vector is a row (``dJdz3`` is 1 × K); ``W(2)``, ``dl/dW2`` and ``ŷ`` are accepted.

>>> check_formula("regression", "dJdW2 = dJdz3.T @ z2").right
True
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_DEPTH = 40
MAX_LENGTH = 2000
POINTS = 4
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sum": lambda a, axis=None: np.sum(a, axis=None if axis is None else int(axis)),
    "diag": lambda a: np.diag(np.ravel(a)) if min(np.shape(a) or (1,)) == 1 else np.diag(a),
    "outer": lambda a, b: np.outer(np.ravel(a), np.ravel(b)),
    "tanh": np.tanh, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
    "sigmoid": lambda a: 1 / (1 + np.exp(-a)),
}
BINOPS = {ast.MatMult: np.matmul, ast.Mult: np.multiply, ast.Add: np.add, ast.Sub: np.subtract,
          ast.Div: np.divide, ast.Pow: np.power}


class FormulaError(ValueError):
    """A formula that cannot be judged: a syntax error, a name or construct not allowed, too deep."""


@dataclass
class Verdict:
    """The judgement of one formula: right, or wrong with the reason and a named mistake."""

    formula: str
    target: str
    right: bool
    reason: str
    mistake: str = ""
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)  # point, expected shape, got shape, rel diff

    def __str__(self) -> str:
        head = f"{'right' if self.right else 'wrong'}: {self.formula}"
        lines = [head, f"  {self.reason}"] + ([f"  the mistake: {self.mistake}"] if self.mistake else [])
        if self.rows:
            lines.append("  point  expected shape  your shape  rel. difference")
            lines += [f"  {p:<5}  {e:<14}  {g:<10}  {d}" for p, e, g, d in self.rows]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        out = [f"**{'right' if self.right else 'wrong'}**: `{self.formula}`", "", self.reason]
        if self.mistake:
            out += ["", f"*the mistake*: {self.mistake}"]
        if self.rows:
            out += ["", "| point | expected shape | your shape | rel. difference |", "|---|---|---|---|"]
            out += [f"| {p} | {e} | {g} | {d} |" for p, e, g, d in self.rows]
        return "\n".join(out)


def _normalise(text: str) -> str:
    """The homework's spellings to names: W(2) → W2, dl/dW2 → dJdW2, ŷ → y_hat, ᵀ → .T, ² → **2."""
    s = text.replace("ŷ", "y_hat").replace("ᵀ", ".T").replace("²", "**2").replace("·", "*").replace("−", "-")
    s = re.sub(r"([Wb])\((\d+)\)", r"\1\2", s)
    s = re.sub(r"\b(?:dJ|dl|dL|dℓ)\s*/\s*d\s*([A-Za-z_]\w*)", r"dJd\1", s)
    s = re.sub(r"\b(?:dJ|dl|dL)_d([A-Za-z_]\w*)", r"dJd\1", s)
    s = re.sub(r"\bdld([A-Za-z_]\w*)", r"dJd\1", s)
    return s


def _depth(tree: ast.AST) -> int:
    """The nesting depth, measured without recursion."""
    best, stack = 0, [(tree, 1)]
    while stack:
        node, d = stack.pop()
        best = max(best, d)
        stack.extend((child, d + 1) for child in ast.iter_child_nodes(node))
    return best


def parse(text: str) -> tuple[str | None, ast.expr]:
    """(the left-hand name or None, the right-hand expression), checked against the whitelist."""
    if not isinstance(text, str):
        raise FormulaError(f"a formula must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"the formula is too long ({len(text)} characters; at most {MAX_LENGTH})")
    src = _normalise(text)
    if "[" in src:
        raise FormulaError("indexing with [ ] is not supported; use whole quantities, sum, diag and outer")
    try:
        tree = ast.parse(src, mode="exec")
    except (RecursionError, MemoryError):
        raise FormulaError("the formula is too deeply nested") from None
    except SyntaxError as exc:
        if "nested" in str(exc.msg) or "too many" in str(exc.msg):
            raise FormulaError("the formula is too deeply nested") from None
        raise FormulaError(f"not a formula: {exc.msg} in {text!r}") from None
    if _depth(tree) > MAX_DEPTH:
        raise FormulaError(f"the formula is too deeply nested (more than {MAX_DEPTH} levels)")
    if len(tree.body) != 1:
        raise FormulaError("give one formula, e.g. 'dJdW2 = dJdz3.T @ z2'")
    stmt = tree.body[0]
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        lhs, expr = stmt.targets[0].id, stmt.value
    elif isinstance(stmt, ast.Expr):
        lhs, expr = None, stmt.value
    else:
        raise FormulaError("write NAME = EXPRESSION, e.g. 'dJdW2 = dJdz3.T @ z2'")
    for node in ast.walk(expr):
        _allowed(node)
    return lhs, expr


def _allowed(node: ast.AST) -> None:
    ok = (ast.Expression, ast.Name, ast.Load, ast.BinOp, ast.UnaryOp, ast.USub, ast.UAdd, ast.Constant,
          ast.Attribute, ast.Call, ast.keyword, *BINOPS)
    if not isinstance(node, ok):
        raise FormulaError(f"{type(node).__name__} is not allowed in a formula; use names, numbers, @ * + - / **, "
                           f".T and {', '.join(FUNCTIONS)}")
    if isinstance(node, ast.Constant) and (isinstance(node.value, bool) or not isinstance(node.value, (int, float))):
        raise FormulaError(f"only numbers are allowed as constants, got {node.value!r}")
    if isinstance(node, ast.Attribute) and node.attr != "T":
        raise FormulaError(f"only .T (transpose) is allowed after a name, got .{node.attr}")
    if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS):
        raise FormulaError(f"unknown function; allowed: {', '.join(FUNCTIONS)}")


def evaluate(expr: ast.expr, names: dict[str, np.ndarray]) -> np.ndarray:
    """The value of a whitelisted expression over ``names``, computed by walking the tree (no eval)."""
    if isinstance(expr, ast.Constant):
        value: Any = expr.value  # validate() let through numbers only
        return np.asarray(float(value))
    if isinstance(expr, ast.Name):
        if expr.id not in names:
            raise FormulaError(f"unknown name {expr.id!r}; this network has {', '.join(sorted(names))}")
        return names[expr.id]
    if isinstance(expr, ast.Attribute):
        return np.asarray(evaluate(expr.value, names)).T
    if isinstance(expr, ast.UnaryOp):
        v = evaluate(expr.operand, names)
        return -v if isinstance(expr.op, ast.USub) else v
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
        args = [evaluate(a, names) for a in expr.args]
        kwargs = {str(k.arg): evaluate(k.value, names) for k in expr.keywords}
        return np.asarray(FUNCTIONS[expr.func.id](*args, **kwargs))
    if not isinstance(expr, ast.BinOp):
        raise FormulaError(f"not allowed in a formula: {ast.unparse(expr)}")
    a, b = evaluate(expr.left, names), evaluate(expr.right, names)
    try:
        with np.errstate(all="ignore"):
            return np.asarray(BINOPS[type(expr.op)](a, b))
    except ValueError as exc:
        sym = {ast.MatMult: "@", ast.Mult: "*", ast.Add: "+", ast.Sub: "-", ast.Div: "/", ast.Pow: "**"}[type(expr.op)]
        raise _ShapeError(f"{ast.unparse(expr.left)} {sym} {ast.unparse(expr.right)}: shapes {np.shape(a)} and "
                          f"{np.shape(b)} do not fit ({exc})") from None


class _ShapeError(Exception):
    pass


def quantity_names(values: dict[str, np.ndarray], params: dict[str, np.ndarray], homework: bool) -> dict[str, np.ndarray]:
    """The network's named quantities as a formula sees them: x, z1, ..., y_hat, y, W1, b1, dJdz3, dJdW2 ..."""
    out: dict[str, np.ndarray] = {}
    for key, v in {**values, **params}.items():
        name = key.replace("ŷ", "y_hat").replace("dJ/d", "dJd").replace("∂", "")
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            continue
        v = np.asarray(v, dtype=np.float64)
        if homework and v.ndim == 2 and not re.fullmatch(r"(W|dJdW)\d+", name):
            # one sample: a vector is a column; the derivative of a scalar by a vector is a row
            v = v[:1] if name.startswith("dJd") else v[:1].T
        if homework and v.ndim == 1:  # a bias or its gradient
            v = v.reshape(1, -1) if name.startswith("dJd") else v.reshape(-1, 1)
        out[name] = v
    return out


def check_formula(net: Any, formula: str, loss: Any = None, *, notation: str = "batch", points: int = POINTS,
                  batch: int = 3, seed: int = 0) -> Verdict:
    """Judge ``formula`` (``'dJdW2 = dJdz3.T @ z2'``) at ``points`` random points; see the module docstring."""
    from handgrad import make_loss

    from . import build_network, derive

    if isinstance(net, str):
        net, preset_loss = build_network(net)
        loss = make_loss(loss) if loss is not None else preset_loss
    if notation not in ("batch", "homework"):
        raise ValueError(f"notation must be 'batch' or 'homework', got {notation!r}")
    lhs, expr = parse(formula)
    homework = notation == "homework"
    rows: list[tuple[str, str, str, str]] = []
    worst, named = 0.0, ""
    if lhs is None:
        raise FormulaError("name what the formula gives: 'dJdW2 = ...'")
    target = lhs
    for k in range(points):
        ex = derive(net, loss, at="random", seed=seed + k, batch=1 if homework else batch, check=False)
        params = _params(net)
        names = quantity_names(ex.values, params, homework)
        if target not in names:
            raise FormulaError(f"unknown quantity {target!r} on the left; known: {', '.join(sorted(names))}")
        expected = names[target]
        try:
            got = evaluate(expr, names)
        except _ShapeError as exc:
            return Verdict(formula, target, False, f"the shapes do not fit: {exc}", "", rows)
        if got.shape != expected.shape:
            mistake = "a transpose: the formula gives the transpose of the gradient" if (
                got.T.shape == expected.shape and np.allclose(got.T, expected, rtol=1e-8, atol=1e-12)) else ""
            if not mistake and got.shape == expected.T.shape:
                mistake = "the transpose's shape: (numerator vs. gradient layout)"
            rows.append((str(k), str(expected.shape), str(got.shape), "-"))
            return Verdict(formula, target, False, f"shape {got.shape}, but {target} is {expected.shape}"
                           f" ({_shape_words(target, expected.shape)})", mistake or _catalogue(expr, got, expected, ex), rows)
        diff = float(np.max(np.abs(got - expected)) / max(np.max(np.abs(expected)), 1e-300))
        rows.append((str(k), str(expected.shape), str(got.shape), f"{diff:.1e}"))
        if not diff < 1e-8:
            named = named or _catalogue(expr, got, expected, ex)
        worst = max(worst, diff if np.isfinite(diff) else np.inf)
    if worst < 1e-8:
        return Verdict(formula, target, True, f"matches handgrad's {target} at {points} random points "
                       f"(largest relative difference {worst:.1e})", "", rows)
    return Verdict(formula, target, False, f"the shape fits but the values differ (relative difference up to "
                   f"{worst:.2g})", named, rows)


def _params(net: Any) -> dict[str, np.ndarray]:
    from handgrad.backend import to_numpy

    return {f"{key}{suffix}": np.asarray(to_numpy(value)) for suffix, layer in net.named_layers()
            for key, value in layer.params.items()}


def _shape_words(name: str, shape: tuple[int, ...]) -> str:
    return "its parameter's shape" if re.fullmatch(r"dJd[Wb]\d+", name) else "as handgrad computes it"


def _catalogue(expr: ast.expr, got: np.ndarray, expected: np.ndarray, ex: Any) -> str:
    """The named mistake that explains the difference, if one does."""
    for node in ast.walk(expr):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "tanh" and node.args and isinstance(node.args[0], ast.BinOp) \
                and isinstance(node.args[0].op, ast.Pow):
            return "tanh(z²) where (tanh z)² is meant: tanh′(z) = 1 − tanh(z)²"
    if got.shape != expected.shape:
        return ""
    with np.errstate(all="ignore"):
        mask = np.abs(expected) > 1e-12
        ratios = got[mask] / expected[mask]
    if ratios.size and np.allclose(ratios, ratios[0], rtol=1e-6):
        c = float(ratios[0])
        K = ex.sizes.get("K", 0)
        N = int(np.shape(ex.values["x"])[0])
        for value, words in ((N * K if N > 1 else 0, "a missing 1/(N·K): the loss is the mean over every element"),
                             (N if N > 1 else 0, "a missing 1/N"), (K, "a missing 1/K"), (1 / K if K else 0, "an extra factor 1/K"), (-1.0, "a sign"),
                             (5.0, "a factor 5: the 5 of 5·ReLU counted twice"), (0.2, "a missing factor 5"),
                             (2.0, "a factor 2"), (0.5, "a missing factor 2")):
            if value and np.isclose(c, value, rtol=1e-6):
                return words
        return f"a constant factor {c:.6g}"
    return ""


__all__ = ["FUNCTIONS", "MAX_DEPTH", "FormulaError", "Verdict", "check_formula", "evaluate", "parse",
           "quantity_names"]
