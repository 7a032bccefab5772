"""Grading: turn what the sandboxed code handed back into verdicts, in the parent.

Every judgement is made here, on arrays the sandbox handed back and this process
validated; the tolerance is that of the precision the check asked for (float32 or
float64), never a looser one the checked code reports.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..comparison import Comparison, compare_entrywise
from .mistakes import correct_formulas, diagnose, resolve
from .sweep import CALLS, GRADS, QUANTITIES, Config, Reference

RTOL = {"float64": 1e-7, "float32": 1e-3}  # worst relative error allowed, per precision
VERDICTS = ("PASS", "FAIL", "USES AUTOGRAD")


def escape(text: Any, limit: int = 2000) -> str:
    """Text from the checked code, safe to print: control characters written as escapes, length capped."""
    text = str(text)
    if len(text) > limit:
        text = text[:limit] + f"... ({len(text) - limit} more characters)"
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


@dataclass
class QuantityResult:
    """One quantity of one configuration, over all its calls (the worst call is shown)."""

    name: str
    passed: bool
    rel_error: float
    call: int | None = None  # 1-based
    index: list[int] | None = None
    expected: float | None = None
    received: float | None = None
    note: str = ""
    raised: bool = False  # the checked code raised (or returned nothing) instead of giving a value
    state: str = "pass"  # pass, wrong, not written yet, raised
    diagnosis: str | None = None  # the id of the named mistake
    title: str = ""
    fix: list[str] = field(default_factory=list)  # the correct formula(s), from the derivation records
    candidates: dict[str, dict] = field(default_factory=dict)  # id -> {title, fix} of every mistake that fits


@dataclass
class ConfigResult:
    index: int  # 1-based
    config: Config
    status: str  # pass, fail, unsupported, error, timeout, crash, not run
    note: str = ""
    required: bool = True
    quantities: list[QuantityResult] = field(default_factory=list)


@dataclass
class Finding:
    """One mistake named for one quantity (hypothesis None: nothing fits; several candidates: ambiguous)."""

    quantity: str
    hypothesis: str | None
    title: str
    fix: list[str]
    configs: list[int]
    candidates: list[str] = field(default_factory=list)


@dataclass
class CheckReport:
    """The result of a check; ``passed`` when every required configuration passed and no autograd was used."""

    target: str
    seed: int
    backend: str | None = None
    dtype: str | None = None
    rtol: float | None = None
    extended: bool = False
    sandbox: str = ""
    error: str = ""  # the implementation could not be loaded or run at all
    autograd: list[str] = field(default_factory=list)  # evidence that the gradients are not hand-written
    configs: list[ConfigResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    stderr_tail: str = ""

    @property
    def uses_autograd(self) -> bool:
        return bool(self.autograd)

    @property
    def values_pass(self) -> bool:
        """Every required configuration passed (optional ones never turn a pass into a fail)."""
        ran = [c for c in self.configs if c.required]
        return not self.error and bool(ran) and all(c.status == "pass" for c in ran)

    @property
    def passed(self) -> bool:
        return self.values_pass and not self.uses_autograd

    @property
    def verdict(self) -> str:
        return "USES AUTOGRAD" if self.uses_autograd else "PASS" if self.passed else "FAIL"

    def finding(self, quantity: str) -> Finding | None:
        return next((f for f in self.findings if f.quantity == quantity), None)

    def named(self) -> set[tuple[str, str]]:
        """{(quantity, hypothesis id)} of every mistake named without ambiguity."""
        return {(f.quantity, f.hypothesis) for f in self.findings if f.hypothesis}

    def progress(self) -> dict[str, str]:
        """Per quantity over the required configurations: pass, wrong, not written yet, raised or not run."""
        out = {}
        for q in QUANTITIES:
            states = [qr.state for c in self.configs if c.required for qr in c.quantities if qr.name == q]
            out[q] = next((s for s in ("not written yet", "wrong", "raised") if s in states),
                          "pass" if states else "not run")
        return out

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(passed=self.passed, verdict=self.verdict, uses_autograd=self.uses_autograd,
                   progress=self.progress())
        for c in out["configs"]:
            c["config"]["label"] = Config(**c["config"]).label()
        return _finite(out)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def render(self, color: bool = False, verbose: bool = False) -> str:
        from .report import render_report

        return render_report(self, color=color, verbose=verbose)


def _finite(obj: Any) -> Any:
    """JSON has no inf/NaN: write them as strings."""
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _call_error(errors: dict, t: int, q: str) -> dict | None:
    keys = [f"t{t}_{q}"]
    if q in ("J", "dJdy_hat"):
        keys.insert(0, f"t{t}_loss")
    if q in GRADS:
        keys[:0] = [f"t{t}_y_hat", f"t{t}_backward"]
    for key in keys:
        if key in errors:
            info = errors[key]
            where = f" ({info['where']})" if info.get("where") else ""
            prefix = "not computed: " if key == f"t{t}_y_hat" and q in GRADS else ""
            return {"text": f"{prefix}{info['message']}{where}", "todo": info.get("type") == "NotImplementedError"}
    return None


def grade_quantity(q: str, ref: Reference, received: dict, errors: dict, rtol: float) -> QuantityResult:
    values: list[np.ndarray | None] = []
    todo = False
    results: list[tuple[float, int, Comparison | None, str]] = []
    for t in range(CALLS):
        err = _call_error(errors, t, q)
        r = received.get(f"t{t}_{q}")
        if q == "J" and r is not None and r.size == 1:
            r = r.reshape(())
        values.append(None if err else r)
        if err or r is None:
            todo = todo or bool(err and err["todo"])
            results.append((np.inf, t, None, err["text"] if err else f"{q} was not received"))
            continue
        call = compare_entrywise(r, ref.calls[t].expected[q], name=q, rtol=rtol)
        results.append((call.rel_error, t, call, call.note))
    failing = [t for rel, t, _, _ in results if not rel <= rtol]
    rel, t, c, note = max(results, key=lambda item: (item[0], -item[1]))
    out = QuantityResult(q, not failing, rel, t + 1, list(c.index) if c and c.index is not None else None,
                         c.expected if c else None, c.received if c else None, note, raised=c is None)
    out.state = "pass" if out.passed else "not written yet" if todo else "raised" if out.raised else "wrong"
    if failing and t > 0 and results[0][0] <= rtol:
        out.note = (out.note + "; " if out.note else "") + "call 1 was right: the error appears on a repeated call"
    if failing and all(values[k] is not None for k in failing):
        fits = diagnose(q, ref, values, failing, rtol)
        right = list(correct_formulas(ref, q))
        out.candidates = {k: {"title": h.title, "fix": [*h.fix, *right]} for k, h in sorted(fits.items())}
        out.fix = right
        named = resolve(set(fits))
        if named:
            _name(out, named)
    return out


def grade_config(i: int, ref: Reference, event: dict | None, received: dict, rtol: float,
                 required: bool) -> ConfigResult:
    """One configuration's verdict. An optional one that raises anywhere is "unsupported"."""
    result = ConfigResult(i + 1, ref.config, "not run", required=required)
    if event is None:
        return result
    notes = list(event.get("notes", []))
    errors = event.get("errors", {})
    own = [e for e in errors.values() if not e.get("interface")]
    if not required and own:  # the checked code raised for this activation, wherever it did
        info = own[0]
        where = f" ({info['where']})" if info.get("where") else ""
        result.status = "unsupported"
        result.note = f"not supported: {info['message']}{where}"
        return result
    if event["status"] == "construct_error":
        info = errors["construct"]
        where = f" ({info['where']})" if info.get("where") else ""
        result.status, result.note = "error", f"{info['message']}{where}"
        return result
    result.quantities = [grade_quantity(q, ref, received, errors, rtol) for q in QUANTITIES]
    clear = [errors[k] for k in sorted(errors) if k.endswith("_clear")]
    if clear:
        notes.append(clear[0]["message"])
    y_hat = result.quantities[0]
    if not y_hat.passed:
        for qr in result.quantities[3:]:
            if not qr.passed and not qr.raised:
                qr.note = (qr.note + "; " if qr.note else "") + "the forward pass is already wrong (see y_hat)"
    result.note = "; ".join(notes)
    result.status = "pass" if all(qr.passed for qr in result.quantities) and not clear else "fail"
    return result


def summarize(configs: list[ConfigResult]) -> list[Finding]:
    """Per quantity, the mistake that fits every failing configuration; ambiguities resolved across them.

    Where a quantity cannot tell a mistake from its site-specific alias (dJdW2 does not
    see f's slope, so ``X`` and ``X@g`` predict the same), the one that another gradient
    names on its own is taken.
    """
    failing = {q: [(c, qr) for c in configs for qr in c.quantities if qr.name == q and not qr.passed and c.required
                   and not qr.raised] for q in QUANTITIES}
    common = {q: set.intersection(*(set(qr.candidates) for _, qr in pairs)) for q, pairs in failing.items() if pairs}
    strong = {next(iter(ids)) for q, ids in common.items() if q in GRADS and len(ids) == 1}
    findings = []
    for q, pairs in failing.items():
        if not pairs:
            continue
        preferred = common[q] & strong
        hid = next(iter(preferred)) if len(preferred) == 1 else resolve(common[q])
        if hid:
            for _, qr in pairs:  # name it where this configuration alone was ambiguous
                _name(qr, hid)
            qr = pairs[0][1]
            findings.append(Finding(q, hid, qr.title, qr.fix, [c.index for c, _ in pairs]))
            continue
        groups: dict[tuple[str, ...], list[tuple[ConfigResult, QuantityResult]]] = {}
        for c, qr in pairs:
            groups.setdefault(tuple(sorted(qr.candidates)), []).append((c, qr))
        for ids, members in groups.items():
            qr, idx = members[0][1], [c.index for c, _ in members]
            if resolve(set(ids)):
                findings.append(Finding(q, qr.diagnosis, qr.title, qr.fix, idx))
            elif ids:
                findings.append(Finding(q, None, f"{q}: several mistakes fit equally well, so none is named: "
                                        + "; ".join(qr.candidates[k]["title"] for k in ids), qr.fix, idx, list(ids)))
            else:
                findings.append(Finding(q, None, f"{q} is wrong, and none of the known mistakes fits; compare "
                                        "it with the correct formula", qr.fix, idx))
    return findings


def _name(qr: QuantityResult, hid: str) -> None:
    info = qr.candidates[hid]
    qr.diagnosis, qr.title, qr.fix = hid, info["title"], list(info["fix"])
