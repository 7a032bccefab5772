"""check_implementation: prepare the box, run the worker in the sandbox, grade in this process."""

from __future__ import annotations

import math
import os
import shutil
import signal
import tempfile
import time
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import submission
from .grading import RTOL, CheckReport, escape, grade_config, summarize
from .sandbox import Limits, ResultError, WorkerOutcome, make_box, read_results, run_worker
from .sweep import AUTODIFF_HINT, CALLS, Reference, sweep

MAX_TIMEOUT = 3600.0
WORKER = Path(__file__).with_name("worker.py")


def check_implementation(target: str | os.PathLike, *, seed: int = 0, timeout: float = 20.0, quick: bool = False,
                         extended: bool = False, precision: str | None = None, sandbox: str = "auto",
                         python: str | None = None, limits: Limits | None = None,
                         siblings: bool = True) -> CheckReport:
    """Grade a homework implementation (a .py file, a folder, a zip or a module name) against handgrad's reference.

    Parameters
    ----------
    target : a Python file, folder or zip holding ``mlp.py``, or an importable module name, exposing
        ``MLP``, ``mse_loss`` and ``bce_loss``.
    seed : seeds the sizes, weights, inputs and targets of every configuration.
    timeout : seconds allowed for importing the target, and again for each configuration (at most 3600).
    quick : run four configurations instead of the full sweep (21).
    extended : make the activations beyond the homework's (tanh, leaky_relu, softplus, gelu) required.
    precision : 'float32' or 'float64' sets the tolerance; None takes it from the parameters' dtype,
        which must be one of the two (no other precision is graded).
    sandbox : 'auto' (bubblewrap when it works), 'bubblewrap' (required) or 'none' (the fallback).
    python : the interpreter that runs the checked code (default: this one).
    siblings : a file target brings the .py files beside it into the sandbox (its own imports).

    Returns
    -------
    CheckReport, with per-configuration, per-quantity results, the named mistakes and any autograd seen.
    """
    kind, resolved = submission.resolve_target(target)
    _validate(seed, timeout, precision, sandbox)
    limits = limits or Limits(timeout=float(timeout))
    refs = references(int(seed), bool(quick))
    report = CheckReport(target=os.fspath(target), seed=int(seed), extended=extended)
    with tempfile.TemporaryDirectory(prefix="handgrad-check-") as tmp:
        root = Path(tmp)
        box = make_box(root)
        fields = submission.prepare(kind, resolved, box["submission"], siblings)
        shutil.copyfile(WORKER, box["in"] / "worker.py")
        np.savez(box["in"] / "inputs.npz", **_inputs(refs))  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
        configs = [{**asdict(ref.config), "calls": CALLS} for ref in refs]
        main = box["submission"] / fields["file"] if fields.get("file") else None
        report.autograd = submission.scan_autograd(main) if main else []
        outcome, report.sandbox, out = run_worker(root, {**fields, "configs": configs}, len(refs), limits, sandbox,
                                                  python)
        received, refused = {}, {}
        deadline = time.monotonic() + limits.timeout
        for i in outcome.done:
            try:
                received[i] = read_results(out / f"out_{i}.npz", limits.file_size, deadline)
            except ResultError as exc:
                refused[i] = str(exc)
    report.stderr_tail = "\n".join(escape(line, 300) for line in outcome.stderr_tail.splitlines()[-12:])
    _fill(report, outcome, refs, received, refused, float(timeout), precision)
    return report


def _validate(seed: object, timeout: object, precision: object, sandbox: object) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT \
            or not math.isfinite(timeout):
        raise ValueError(f"timeout must be a number of seconds in (0, {MAX_TIMEOUT:g}], got {timeout!r}")
    if precision not in (None, *RTOL):
        raise ValueError(f"precision must be 'float32' or 'float64', got {precision!r}")
    if sandbox not in ("auto", "bubblewrap", "none"):
        raise ValueError(f"sandbox must be 'auto', 'bubblewrap' or 'none', got {sandbox!r}")


@lru_cache(maxsize=8)
def references(seed: int, quick: bool) -> tuple[Reference, ...]:
    """The reference passes of a sweep (shared by every submission of a class checked with one seed)."""
    rng = np.random.default_rng([seed, 1])
    return tuple(Reference(c, rng) for c in sweep(seed, quick))


def _inputs(refs: tuple[Reference, ...]) -> dict[str, np.ndarray]:
    """What the checked code receives: weights, x, y, the loss's ŷ and backward's dJ/dŷ; no expected value."""
    arrays: dict[str, np.ndarray] = {}
    for i, ref in enumerate(refs):
        for name, value in ref.weights.items():
            arrays[f"c{i}_{name}"] = value
        for t, call in enumerate(ref.calls):
            arrays.update({f"c{i}_t{t}_x": call.x, f"c{i}_t{t}_y": call.y, f"c{i}_t{t}_y_hat": call.y_hat_fed,
                           f"c{i}_t{t}_dJdy_hat": call.grad_fed})
    return arrays


def _signal_name(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def _precision(report: CheckReport, outcome: WorkerOutcome, precision: str | None) -> float:
    """The tolerance: the precision asked for, else the parameters' dtype (float32 or float64 only)."""
    for event in outcome.done.values():
        if event.get("dtype"):
            report.backend, report.dtype = str(event.get("backend")), str(event["dtype"])
            break
    if precision is None and report.dtype is not None and report.dtype not in RTOL:
        report.error = (f"parameters['W1'] has dtype {report.dtype}, which the check does not grade: the homework "
                        "uses float32 or float64")
    report.rtol = RTOL[precision or (report.dtype if report.dtype in RTOL else "float32")]
    return report.rtol


def _fill(report: CheckReport, outcome: WorkerOutcome, refs: tuple[Reference, ...], received: dict, refused: dict,
          timeout: float, precision: str | None) -> None:
    """Turn the worker's events into graded configurations, findings and a top-level error."""
    if outcome.load_error is not None:
        info = outcome.load_error
        report.error = str(info.get("message", "")) + (f" ({info['where']})" if info.get("where") else "")
        missing = AUTODIFF_HINT.search(report.error)
        if missing:
            report.autograd.append(f"imports {missing.group(1)} (an autodiff library, not available to the check)")
        elif info.get("missing_module") == "torch":
            report.error += "; PyTorch is not installed where handgrad runs: pip install 'handgrad[torch]'"
    elif outcome.timed_out == "import":
        report.error = f"importing the implementation did not finish within {timeout:g} s (an endless loop?)"
    elif outcome.crashed and outcome.crashed[0] == "import":
        report.error = f"the process running the implementation {_signal_name(outcome.crashed[1])} while importing it"
    elif outcome.overflow:
        report.error = f"the check stopped the implementation: {outcome.overflow}"
    elif outcome.loaded and not outcome.loaded.get("has", {}).get("MLP"):
        report.error = "the implementation has no MLP class (expected MLP, mse_loss and bce_loss, as in handgrad.hw1)"
    rtol = _precision(report, outcome, precision)
    seen = [str(e) for ev in [outcome.loaded or {}, *outcome.done.values()] for e in ev.get("autograd", []) or []]
    report.autograd += [e for e in dict.fromkeys(seen) if e not in report.autograd]
    for i, ref in enumerate(refs):
        required = report.extended or not ref.config.optional
        result = grade_config(i, ref, outcome.done.get(i), received.get(i, {}), rtol, required)
        during = f" while {outcome.step}" if outcome.step else ""
        if i in refused:
            result.status, result.note, result.quantities = "error", refused[i], []
        elif i == outcome.timed_out:
            result.status = "timeout"
            result.note = f"did not finish within {timeout:g} s{during} (an endless loop?); the check stopped here"
        elif outcome.crashed and i == outcome.crashed[0]:
            result.status = "crash"
            result.note = (f"the process running the implementation {_signal_name(outcome.crashed[1])}{during}; "
                           "the check stopped here")
        if result.status in ("timeout", "crash") and not required:
            result.required = True  # a hang or a crash stops the whole check, optional or not
        report.configs.append(result)
    notes = {c.note for c in report.configs if c.status != "not run"}
    if not report.error and len(notes) == 1 and "which the check does not grade" in (note := notes.pop()):
        report.error, report.rtol = note, None  # one dtype refused everywhere: say it once, grade nothing
    report.findings = summarize(report.configs)
