"""Grade a class: many submissions in parallel, each in its own sandbox, into a gradebook.

:func:`check_class` takes a folder of submissions (``.py`` files, folders or zips)
or a list of them, and writes ``gradebook.csv``, one report per student
(``reports/NAME.txt`` and ``.json``), Gradescope's ``results.json`` per student
(``gradescope/NAME/results.json``) and ``summary.txt``, which counts each named
mistake across the class. A :class:`Rubric` sets the weight of each quantity.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from .grading import CheckReport, escape
from .runner import check_implementation
from .sweep import GRADS, QUANTITIES

DEFAULT_WEIGHTS = {"y_hat": 1.0, "J": 1.0, "dJdy_hat": 1.0, "dJdW1": 2.0, "dJdb1": 1.0, "dJdW2": 2.0, "dJdb2": 1.0}


@dataclass
class Rubric:
    """Points per quantity: a quantity earns its weight times the share of required configurations it passed.

    ``autograd`` is the share of the gradients' points kept when autograd is used (0 by default). A file::

        total = 10
        autograd = 0.0
        [weights]
        y_hat = 1
        dJdW1 = 2
    """

    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    total: float = 100.0
    autograd: float = 0.0

    @classmethod
    def load(cls, path: str | os.PathLike) -> Rubric:
        """A rubric from a TOML or JSON file; ValueError naming the bad key or value."""
        text = Path(path).read_text()
        data = json.loads(text) if str(path).endswith(".json") else tomllib.loads(text)
        unknown = set(data) - {"weights", "total", "autograd"}
        if unknown:
            raise ValueError(f"rubric {path}: unknown keys {sorted(unknown)}; expected weights, total, autograd")
        weights = {**DEFAULT_WEIGHTS, **data.get("weights", {})}
        bad = [k for k in weights if k not in QUANTITIES]
        if bad:
            raise ValueError(f"rubric {path}: unknown quantities {bad}; expected some of {', '.join(QUANTITIES)}")
        values = [*weights.values(), data.get("total", 100.0), data.get("autograd", 0.0)]
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in values) \
                or not 0 <= data.get("autograd", 0.0) <= 1 or sum(weights.values()) <= 0:
            raise ValueError(f"rubric {path}: weights and total must be non-negative numbers (some weight "
                             "positive) and autograd a share in [0, 1]")
        return cls({k: float(v) for k, v in weights.items()}, float(data.get("total", 100.0)),
                   float(data.get("autograd", 0.0)))

    def points(self, report: CheckReport) -> dict[str, tuple[float, float]]:
        """{quantity: (points earned, points possible)}."""
        unit = self.total / sum(self.weights.values())
        required = [c for c in report.configs if c.required]
        out = {}
        for q in QUANTITIES:
            possible = self.weights.get(q, 0.0) * unit
            passed = sum(any(qr.name == q and qr.passed for qr in c.quantities) for c in required)
            share = passed / len(required) if required and not report.error else 0.0
            if q in GRADS and report.uses_autograd:
                share *= self.autograd
            out[q] = (round(possible * share, 4), round(possible, 4))
        return out

    def score(self, report: CheckReport) -> float:
        return round(sum(earned for earned, _ in self.points(report).values()), 2)


def discover(paths: list[str | os.PathLike]) -> list[tuple[str, str]]:
    """(student name, path) of each submission: a single folder argument holds one per entry."""
    if len(paths) == 1 and Path(paths[0]).is_dir():
        folder = Path(paths[0])
        entries = [p for p in sorted(folder.iterdir()) if not p.name.startswith((".", "_"))
                   and (p.is_dir() or p.suffix in (".py", ".zip")) and not p.is_symlink()]
    else:
        entries = [Path(p) for p in paths]
    names: Counter = Counter()
    out = []
    for p in entries:
        name = re.sub(r"[^\w.-]", "_", p.stem if p.is_file() else p.name) or "submission"
        names[name] += 1
        out.append((name if names[name] == 1 else f"{name}-{names[name]}", str(p)))
    return out


@dataclass
class ClassResult:
    rows: list[dict[str, Any]]
    summary: str
    out: Path


def _grade_one(name: str, path: str, options: dict) -> CheckReport:
    try:
        return check_implementation(path, siblings=False, **options)
    except (ValueError, OSError, RuntimeError) as exc:
        report = CheckReport(target=path, seed=options.get("seed", 0))
        report.error = f"could not be checked: {escape(exc, 300)}"
        return report


def _grade_on_dask(dask: Any, students: list[tuple[str, str]], options: dict) -> list[CheckReport]:
    """Map the per-submission check over a Dask cluster; each submission travels as bytes, so
    the workers need handgrad but not this machine's files."""
    from ..optional import require

    Client = require("distributed", extra="distributed", purpose="grading on Dask (--dask)").Client
    try:
        client = Client(dask) if isinstance(dask, str) else dask
    except Exception as exc:  # noqa: BLE001 - a bad address fails as OSError, TimeoutError or a protocol error
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConnectionError(f"cannot reach the Dask scheduler at {dask!r}: {text} (is `dask scheduler` "
                              "running there, and is the address tcp://HOST:PORT?)") from None
    try:
        futures = client.map(_grade_shipped, [n for n, _ in students], [_ship(p) for _, p in students],
                             [options] * len(students), pure=False)
        reports = client.gather(futures)
    finally:
        if client is not dask:
            client.close()
    for (_, path), report in zip(students, reports):
        report.target = path  # the worker saw its own copy
    return list(reports)


def _ship(path: str) -> tuple[str, str, bytes]:
    """(kind, file name, bytes): a .py or .zip as it is, a folder zipped; a module name as its name."""
    import io
    import zipfile

    p = Path(path)
    if p.is_file():
        return "file", p.name, p.read_bytes()
    if not p.is_dir():
        return "module", path, b""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(p.rglob("*")):
            if f.is_file() and not f.is_symlink() and "__pycache__" not in f.parts:
                z.write(f, f.relative_to(p).as_posix())
    return "dir", p.name, buf.getvalue()


def _grade_shipped(name: str, shipped: tuple[str, str, bytes], options: dict) -> CheckReport:
    """On a worker: write the submission into a temporary folder under its own name and grade it."""
    import io
    import tempfile
    import zipfile

    kind, filename, data = shipped
    if kind == "module":
        return _grade_one(name, filename, options)
    with tempfile.TemporaryDirectory(prefix="handgrad-check-") as tmp:
        target = Path(tmp) / filename
        if kind == "dir":
            target.mkdir()
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                z.extractall(target)
        else:
            target.write_bytes(data)
        return _grade_one(name, str(target), options)


def gradescope(report: CheckReport, rubric: Rubric) -> dict[str, Any]:
    """Gradescope's autograder results.json for one report: one test per quantity."""
    progress = report.progress()
    tests = [{"name": q, "score": earned, "max_score": possible, "status": "passed" if earned == possible else
              "failed", "output": progress[q] if not report.error else report.error}
             for q, (earned, possible) in rubric.points(report).items()]
    return {"score": rubric.score(report), "output": report.render(), "tests": tests, "visibility": "visible",
            "stdout_visibility": "hidden"}


def check_class(paths: list[str | os.PathLike], out: str | os.PathLike, *, jobs: int = 2, rubric: Rubric | None = None,
                dask: Any = None, **options: Any) -> ClassResult:
    """Grade every submission under ``paths`` with ``jobs`` sandboxes at a time; write the gradebook to ``out``.

    ``dask``: a Dask scheduler address (``tcp://host:8786``) or ``distributed.Client``; each
    submission's check then runs in a sandbox on the cluster's workers instead of here.
    ``options`` go to :func:`check_implementation` (seed, timeout, quick, extended, sandbox, ...)."""
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive int, got {jobs!r}")
    rubric = rubric or Rubric()
    students = discover(paths)
    if not students:
        raise ValueError(f"no submissions (.py files, folders or zips) in {', '.join(map(str, paths))}")
    out = Path(out)
    (out / "reports").mkdir(parents=True, exist_ok=True)
    if dask is not None:
        reports = _grade_on_dask(dask, students, options)
    else:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            reports = list(pool.map(lambda s: _grade_one(s[0], s[1], options), students))
    rows = []
    for (name, path), report in zip(students, reports):
        (out / "reports" / f"{name}.txt").write_text(report.render() + "\n")
        (out / "reports" / f"{name}.json").write_text(report.to_json() + "\n")
        gs = out / "gradescope" / name
        gs.mkdir(parents=True, exist_ok=True)
        (gs / "results.json").write_text(json.dumps(gradescope(report, rubric), indent=2, ensure_ascii=False))
        rows.append({"student": name, "score": rubric.score(report), "max_score": rubric.total,
                     "verdict": report.verdict, "uses_autograd": int(report.uses_autograd),
                     "required_passed": sum(c.status == "pass" for c in report.configs if c.required),
                     "required": sum(c.required for c in report.configs),
                     "mistakes": ";".join(sorted({h for _, h in report.named()})),
                     "error": report.error[:200], "path": path})
    with open(out / "gradebook.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = class_summary(students, reports)
    (out / "summary.txt").write_text(summary + "\n")
    return ClassResult(rows, summary, out)


def class_summary(students: list[tuple[str, str]], reports: list[CheckReport]) -> str:
    """Counts across the class: verdicts, each named mistake (with its title), what is not written yet."""
    verdicts = Counter(r.verdict for r in reports)
    mistakes: dict[str, set[str]] = {}
    quantities: dict[str, set[str]] = {}
    titles: dict[str, str] = {}
    todo: Counter = Counter()
    for (name, _), r in zip(students, reports):
        for f in r.findings:
            if f.hypothesis:
                mistakes.setdefault(f.hypothesis, set()).add(name)
                quantities.setdefault(f.hypothesis, set()).add(f.quantity)
                titles.setdefault(f.hypothesis, f.title)
        for q, state in r.progress().items():
            if state == "not written yet":
                todo[q] += 1
    lines = [f"{len(reports)} submissions: " + ", ".join(f"{v} {k}" for k, v in verdicts.most_common())]
    errors = sum(bool(r.error) for r in reports)
    if errors:
        lines.append(f"{errors} could not be checked (import error, hang or crash at import, bad archive)")
    if mistakes:
        lines += ["", "Named mistakes (students with each, most common first):"]
        for hid, who in sorted(mistakes.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            qs = ", ".join(q for q in QUANTITIES if q in quantities[hid])
            lines.append(f"  {len(who):>4}  {hid} (in {qs}); for example: {titles[hid]}")
    if todo:
        lines += ["", "Not written yet:"] + [f"  {n:>4}  {q}" for q, n in todo.most_common()]
    return "\n".join(lines)
