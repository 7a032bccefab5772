"""Run the checked code where it can reach nothing worth having, and read back what it hands over.

The worker (:mod:`handgrad.check.worker`, copied in as a plain script) runs under
bubblewrap where it works: no network, its own process (pid) namespace, so ending
the sandbox ends every process it started; a read-only view of the interpreter and
of the site-packages *without handgrad*; no grader files and no reference values
(there are none in its inputs); its own writable work and temporary folders; when
the check runs as root, the code runs as ``nobody``. Resource limits (CPU time,
address space, file size, number of processes) apply in either mode.

Without bubblewrap, the fallback is a plain subprocess in its own session with the
same resource limits, and :data:`FALLBACK_NOTE` says plainly what it does not protect.

What comes back is validated here: events are JSON lines of bounded size read with a
deadline; result files must be regular files under a size cap, uncompressed ``.npz``
with float64 arrays only, loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import resource
import selectors
import shutil
import signal
import site
import stat
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .grading import escape

INSIDE = "/hg"  # where the sandbox's own folders appear inside bubblewrap
NOBODY = 65534
BWRAP_NOTE = ("bubblewrap sandbox (no network, own process namespace, no handgrad, no grader files, "
              "limits on CPU time, memory, file size and processes)")
FALLBACK_NOTE = ("fallback without bubblewrap: a separate process with limits on CPU time, memory, file size and "
                 "processes; it does NOT hide handgrad or other readable files, does NOT cut the network, and a "
                 "process that leaves its process group may outlive the check")


@dataclass
class Limits:
    """Resource limits for the sandboxed process tree."""

    timeout: float  # wall-clock seconds for the import, and again for each configuration
    memory: int = 6 << 30  # address space, bytes (torch maps a lot of it)
    file_size: int = 64 << 20  # largest file it may write, bytes
    processes: int = 256  # processes and threads (of the sandbox's user)
    events: int = 8 << 20  # bytes of events it may send
    stderr: int = 64 << 10  # the last bytes of its stderr that are kept


@dataclass
class WorkerOutcome:
    loaded: dict | None = None
    load_error: dict | None = None
    done: dict[int, dict] = field(default_factory=dict)
    timed_out: str | int | None = None  # "import" or the configuration index
    crashed: tuple[str | int, int] | None = None  # (phase, exit status)
    finished: bool = False
    step: str = ""  # the call in progress ("calling forward(x) (call 1)")
    stderr_tail: str = ""
    overflow: str = ""  # the worker said too much: why it was stopped


@lru_cache(maxsize=1)
def bubblewrap() -> str | None:
    """The path of a working ``bwrap``, or None."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    try:
        ok = subprocess.run([path, "--ro-bind", "/", "/", "--unshare-pid", "true"], capture_output=True,
                            timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return path if ok else None


def site_entries() -> list[Path]:
    """The entries of this interpreter's site-packages that the checked code may import (handgrad left out)."""
    dirs = [Path(p) for p in [*site.getsitepackages(), site.getusersitepackages()] if Path(p).is_dir()]
    for name in ("numpy", "torch"):  # wherever this interpreter finds them, site-packages or not
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            dirs.append(Path(spec.origin).parents[1])
    out = []
    for d in dict.fromkeys(dirs):
        for entry in sorted(d.iterdir()):
            name = entry.name.lower()
            if name.startswith(("handgrad", "__editable__", "_handgrad")) or name.endswith(".pth"):
                continue
            out.append(entry)
    return out


def _bwrap_command(bwrap: str, root: Path, python: str) -> tuple[list[str], list[str]]:
    """(the bwrap command line up to the interpreter, the site folders as seen inside)."""
    cmd = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
           "--die-with-parent", "--new-session", "--clearenv"]
    if os.geteuid() != 0:
        cmd += ["--unshare-user"]
    for d in ("/usr", "/lib", "/lib64", "/bin"):
        if os.path.islink(d):
            cmd += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            cmd += ["--ro-bind", d, d]
    if os.path.exists("/etc/ld.so.cache"):
        cmd += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    made: set[str] = set()

    def bind(src: Path | str, dst: str, writable: bool = False) -> None:
        parents = Path(dst).parents
        for parent in reversed(parents):  # readable by the sandbox's user even where the host's are not
            if str(parent) not in ("/", "/usr") and not str(parent).startswith("/usr/") and str(parent) not in made:
                made.add(str(parent))
                cmd.extend(["--perms", "0755", "--dir", str(parent)])
        cmd.extend(["--bind" if writable else "--ro-bind", str(src), dst])

    prefix = Path(sys.base_prefix).resolve()
    if not str(prefix).startswith("/usr"):
        bind(prefix, str(prefix))
    real = os.path.realpath(python)
    if not real.startswith(("/usr/", str(prefix) + "/")):
        bind(real, real)
    for name, writable in (("in", False), ("submission", False), ("work", True), ("out", True)):
        bind(root / name, f"{INSIDE}/{name}", writable)
    sites = []
    for i, entry in enumerate(site_entries()):  # one folder, so the checked code sees one site-packages
        bind(entry, f"{INSIDE}/site/{entry.name}")
        if i == 0:
            sites.append(f"{INSIDE}/site")
    cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--chdir", f"{INSIDE}/work",
            "--setenv", "HOME", f"{INSIDE}/work", "--setenv", "TMPDIR", "/tmp", "--setenv", "PATH", "/usr/bin:/bin",
            "--setenv", "OMP_NUM_THREADS", "1", "--setenv", "PYTHONDONTWRITEBYTECODE", "1"]
    if os.geteuid() == 0:  # drop to nobody inside, so the limit on processes holds and nothing is root's
        cmd += ["--", "/usr/bin/setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    else:
        cmd += ["--"]
    return [*cmd, real], sites


def make_box(root: Path) -> dict[str, Path]:
    """The sandbox's folders under ``root``: in (read-only), submission (read-only), work and out (writable)."""
    os.chmod(root, 0o711)
    dirs = {name: root / name for name in ("in", "submission", "work", "out")}
    for name, path in dirs.items():
        path.mkdir(exist_ok=True)
        if name in ("work", "out") and os.geteuid() == 0:
            os.chown(path, NOBODY, NOBODY)
            os.chmod(path, 0o700)
    return dirs


def _world_reachable(path: str) -> bool:
    """True when user nobody can reach ``path`` (every parent folder searchable by others)."""
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in Path(os.path.realpath(path)).parents)


def run_worker(root: Path, request: dict, n_configs: int, limits: Limits, mode: str = "auto",
               python: str | None = None) -> tuple[WorkerOutcome, str, Path]:
    """Run the worker on ``request`` in the box under ``root``; returns (outcome, sandbox note, out folder).

    ``mode``: "auto" (bubblewrap when it works), "bubblewrap" (required) or "none" (the fallback)."""
    python = python or sys.executable
    bwrap = bubblewrap() if mode != "none" else None
    if mode == "bubblewrap" and bwrap is None:
        raise RuntimeError("bubblewrap (bwrap) is not installed or does not work here; install Debian's "
                           "`bubblewrap` package, or run with the fallback")
    drop = os.geteuid() == 0 and bwrap is None and _world_reachable(python)
    if bwrap:
        cmd, sites = _bwrap_command(bwrap, root, python)
        base, note = INSIDE, BWRAP_NOTE + (", runs as nobody" if os.geteuid() == 0 else "")
    else:
        cmd, sites = [python], [str(p) for p in dict.fromkeys(e.parent for e in site_entries())]
        base = str(root)
        note = FALLBACK_NOTE + ("; it runs as nobody" if drop else "; it runs as this user and can write the "
                                                                   "files this user can")
    request = {**request, "site": sites, "inputs": f"{base}/in/inputs.npz", "outdir": f"{base}/out",
               "path": f"{base}/submission"}
    if request.get("file"):
        request["file"] = f"{base}/submission/{request['file']}"
    (root / "in" / "request.json").write_text(json.dumps(request))
    cmd += ["-I", "-S", "-B", f"{base}/in/worker.py", f"{base}/in/request.json"]
    cpu = int(limits.timeout * (n_configs + 1)) + 5

    def limit() -> None:  # in the child, before exec: inherited by everything it starts
        for which, value in ((resource.RLIMIT_CPU, cpu), (resource.RLIMIT_AS, limits.memory),
                             (resource.RLIMIT_FSIZE, limits.file_size), (resource.RLIMIT_NPROC, limits.processes),
                             (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(which, (value, value))

    extra: dict = {"user": NOBODY, "group": NOBODY, "extra_groups": []} if drop else {}
    info_r = info_w = -1
    if bwrap:  # bubblewrap tells the host pid of the namespace's first process, to wait for its end
        info_r, info_w = os.pipe()
        cmd[1:1] = ["--info-fd", str(info_w)]
        extra["pass_fds"] = (info_w,)
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "HOME": str(root / "work"),
           "TMPDIR": str(root / "work"), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=root / "work", env=env, preexec_fn=limit, start_new_session=True, **extra)
    if info_w >= 0:
        os.close(info_w)
    try:
        outcome = _read_events(proc, n_configs, limits)
    finally:
        _end(proc, _child_pid(info_r) if info_r >= 0 else None)
    return outcome, note, root / "out"


def _child_pid(fd: int) -> int | None:
    """The host pid of the sandbox's first process, from bubblewrap's --info-fd (None if not said)."""
    try:
        os.set_blocking(fd, False)
        data = os.read(fd, 4096)
        return int(json.loads(data)["child-pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    finally:
        os.close(fd)


def _end(proc: subprocess.Popen, child: int | None = None) -> None:
    """End the sandbox: bubblewrap's namespace takes every process with it; the fallback kills its group.

    The namespace's first process exits only once every other process in it is gone, so waiting
    for it means nothing the checked code started is left when this returns."""
    for kill in (lambda: os.killpg(proc.pid, signal.SIGKILL), proc.kill):
        try:
            kill()
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait()
    deadline = time.monotonic() + 10
    while child and time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            break
        if state in ("Z", "X"):
            break
        time.sleep(0.01)
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()


def _read_events(proc: subprocess.Popen, n_configs: int, limits: Limits) -> WorkerOutcome:
    """Read events (stdout) and keep the tail of stderr, with a deadline per phase and caps on size."""
    outcome = WorkerOutcome()
    sel = selectors.DefaultSelector()
    for stream in (proc.stdout, proc.stderr):
        os.set_blocking(stream.fileno(), False)  # type: ignore[union-attr]
        sel.register(stream, selectors.EVENT_READ)  # type: ignore[arg-type]
    buffer, tail, total = b"", b"", 0
    phase: str | int = "import"
    deadline = time.monotonic() + limits.timeout
    open_streams = 2
    while open_streams:
        left = deadline - time.monotonic()
        ready = sel.select(timeout=max(0.0, left)) if left > 0 else []
        if not ready:
            outcome.timed_out = phase
            break
        stop = False
        for key, _ in ready:
            chunk = os.read(key.fileobj.fileno(), 1 << 16)  # type: ignore[union-attr]
            if not chunk:
                sel.unregister(key.fileobj)
                open_streams -= 1
                continue
            if key.fileobj is proc.stderr:
                tail = (tail + chunk)[-limits.stderr:]
                continue
            total += len(chunk)
            buffer += chunk
            if total > limits.events or len(buffer) > 1 << 20:
                outcome.overflow = f"it sent more than {min(limits.events, 1 << 20)} bytes of events"
                stop = True
                break
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                phase, deadline, stop = _event(outcome, line, phase, deadline, n_configs, limits.timeout)
                if stop:
                    break
            if stop:
                break
        if stop:
            break
    else:
        code = proc.wait()
        if not outcome.finished and outcome.load_error is None:
            outcome.crashed = (phase, code)
    sel.close()
    outcome.stderr_tail = tail.decode("utf-8", "replace")
    return outcome


def _event(outcome: WorkerOutcome, line: bytes, phase: str | int, deadline: float, n_configs: int,
           timeout: float) -> tuple[str | int, float, bool]:
    """Apply one event line; returns (phase, deadline, stop). Malformed events are ignored."""
    try:
        event = json.loads(line)
    except ValueError:
        return phase, deadline, False
    if not isinstance(event, dict):
        return phase, deadline, False
    kind = event.get("event")
    config: Any = event.get("config")  # checked to be an int below wherever it is used
    if kind in ("start", "done") and not (isinstance(config, int) and 0 <= config < n_configs):
        return phase, deadline, False
    if kind == "loaded":
        outcome.loaded = _clean(event)
        return phase, time.monotonic() + timeout, False
    if kind in ("load_error", "fatal"):
        outcome.load_error = _clean(event)
        return phase, deadline, True
    if kind == "start":
        outcome.step = ""
        return config, time.monotonic() + timeout, False
    if kind == "step":
        call = str(event.get("call", ""))
        outcome.step = escape(event.get("what", ""), 200) + (f" (call {int(call[1:]) + 1})"
                                                             if re.fullmatch(r"t\d", call) else "")
    elif kind == "done":
        outcome.done[config] = _clean(event)
    elif kind == "finished":
        outcome.finished = True
        return phase, deadline, True
    return phase, deadline, False


def _clean(obj: Any) -> Any:
    """An event from the checked process with every string escaped and every container checked."""
    if isinstance(obj, str):
        return escape(obj)
    if isinstance(obj, dict):
        return {escape(k, 100): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj[:100]]
    if isinstance(obj, (bool, int, float)) or obj is None:
        return obj
    return escape(repr(obj))


RESULT_NAME = re.compile(r"t\d_(y_hat|J|dJdy_hat|dJdW1|dJdb1|dJdW2|dJdb2)")


class ResultError(ValueError):
    """A result file that is not what the worker writes: refused before (or instead of) reading it."""


def read_results(path: Path, cap: int, deadline: float) -> dict[str, np.ndarray]:
    """The arrays of one ``out_<i>.npz``: a regular file, at most ``cap`` bytes, stored (not compressed)
    float64 arrays under the expected names, read by a deadline; ResultError otherwise."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return {}
    if not stat.S_ISREG(info.st_mode):
        raise ResultError(f"{path.name} is not a regular file; refused")
    if info.st_size > cap:
        raise ResultError(f"{path.name} holds {info.st_size} bytes, more than the {cap} allowed; refused")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ResultError(f"{path.name} is not a regular file; refused")
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            size += len(chunk)
            if size > cap or time.monotonic() > deadline:
                raise ResultError(f"{path.name} could not be read within the limits; refused")
    finally:
        os.close(fd)
    data = b"".join(chunks)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.infolist():
                if member.compress_type != zipfile.ZIP_STORED or member.file_size > cap:
                    raise ResultError(f"{path.name} holds a compressed or oversized array; refused")
        arrays = {}
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            for name in npz.files:
                if not RESULT_NAME.fullmatch(name):
                    raise ResultError(f"{path.name} holds an unexpected entry {escape(name, 80)!r}; refused")
                array = npz[name]
                if array.dtype != np.float64:
                    raise ResultError(f"{path.name} holds {name} of dtype {array.dtype}, not float64; refused")
                arrays[name] = array
        return arrays
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        if isinstance(exc, ResultError):
            raise
        raise ResultError(f"{path.name} is not a valid result file ({escape(exc, 200)}); refused") from None
