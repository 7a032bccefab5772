"""Explain a network: its forward pass, its backward pass and its Jacobians, as equations.

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

from .concepts import compose_affine, one_hot_argmax, softargmax
from .diff import diff, render_diff
from .equations import derive, explain
from .evaluation import EXACT_RTOL, FD_RTOL, KINK_CONVENTION, MAX_JACOBIAN_ENTRIES, judged_check, param_jacobian
from .presets import (
    DEFAULT_SIZES,
    PRESETS,
    build_network,
    describe_model,
    draw_point,
    draw_target,
    load_network,
    seed_question,
)
from .records import KEY_TITLES, SECTIONS, Check, Equation, Explanation, check_line, checks_table
from .render import latex_document, latex_text
from .symbols import (
    Step,
    Sym,
    grad_symbol,
    is_atomic,
    layer_label,
    layer_steps,
    loss_symbols,
    param_formula,
    partial_symbol,
    render_formula,
    rhs,
)

__all__ = [
    "DEFAULT_SIZES", "EXACT_RTOL", "FD_RTOL", "KEY_TITLES", "KINK_CONVENTION", "MAX_JACOBIAN_ENTRIES", "PRESETS",
    "SECTIONS", "Check", "Equation", "Explanation", "Step", "Sym", "build_network", "check_line", "checks_table", "compose_affine",
    "derive", "describe_model", "diff", "draw_point", "draw_target", "explain", "grad_symbol", "is_atomic",
    "judged_check", "latex_document", "latex_text", "layer_label", "layer_steps", "load_network", "loss_symbols",
    "one_hot_argmax", "param_formula", "param_jacobian", "partial_symbol", "render_diff", "render_formula", "rhs",
    "seed_question", "softargmax",
]
