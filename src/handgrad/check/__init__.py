r"""Grade a hand-written homework MLP against handgrad's reference, name the mistake, and grade a class.

:func:`check_implementation` copies a submission (the homework interface: ``MLP``,
``mse_loss``, ``bce_loss``, as in :mod:`handgrad.hw1`) into a sandbox
(:mod:`~handgrad.check.sandbox`), runs it there over a seeded sweep of
configurations (:mod:`~handgrad.check.sweep`) with the reference's weights copied
in, and grades every quantity in this process (:mod:`~handgrad.check.grading`),
naming the usual mistakes (:mod:`~handgrad.check.mistakes`).
:func:`check_class` grades many submissions in parallel and writes a gradebook.

    >>> report = check_implementation("mlp.py", quick=True)   # doctest: +SKIP
    >>> report.passed, report.verdict, report.named()          # doctest: +SKIP
"""

from __future__ import annotations

from ..comparison import compare_entrywise as compare
from .classroom import Rubric, check_class
from .grading import RTOL, CheckReport, ConfigResult, Finding, QuantityResult, escape
from .report import render_report
from .runner import MAX_TIMEOUT, check_implementation
from .sandbox import Limits, bubblewrap
from .submission import resolve_target, scan_autograd
from .sweep import CALLS, GRADS, QUANTITIES, REQUIRED, Config, Reference, optional_activations, sweep
from .template import TEMPLATE, write_template

__all__ = [
    "CALLS", "GRADS", "MAX_TIMEOUT", "QUANTITIES", "REQUIRED", "RTOL", "TEMPLATE", "CheckReport",
    "Config", "ConfigResult", "Finding", "Limits", "QuantityResult", "Reference", "Rubric", "bubblewrap",
    "check_class", "check_implementation", "compare", "escape", "optional_activations", "render_report", "resolve_target",
    "scan_autograd", "sweep", "write_template",
]
