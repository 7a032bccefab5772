"""Every file handgrad writes for a user goes through here: one rule for what may be replaced.

The rule
--------
A path is written only if

- nothing is there, or
- a regular file is there that handgrad wrote (recognised by its content for the
  output's ``kind``: a handgrad model or checkpoint file, JSON, CSV/DOT/text, PNG, SVG,
  PDF) **and** the caller passes ``force=True`` (the CLI's ``--force``);

and never when the path is a symbolic link, a directory, a device, a FIFO or a
socket, nor when it is one of the run's inputs (compared by device and inode, so
another name for the same file is caught too). The parent directory must exist.

Bytes are written atomically by :func:`handgrad.io.atomic_write_bytes`: a temporary
file in the same directory, fsync, then ``os.replace`` onto the path. ``os.replace``
swaps the directory entry, so even a link planted after the check is replaced, not
followed.

:func:`lock_directory` serialises runs that write into one folder (``train --out``):
the first holds an ``fcntl.flock`` on ``DIR/.handgrad.lock`` until it exits; a second
gets :class:`OutputError` at once.

:func:`emit` prints to standard output and, when the reader has gone (``| head -1``),
stops printing without losing anything else: the command goes on, saves its files and
exits with its own status.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

LOCK_NAME = ".handgrad.lock"
SNIFF_BYTES = 64 * 1024  # enough of a file to recognise what wrote it


class OutputError(ValueError):
    """An output path handgrad refuses to write (it names the path and why)."""


# ====================================================================== what handgrad wrote
def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a cut inside a multi-byte character at the end is still text
        return exc.start >= len(head) - 3
    return True


def _is_handgrad_file(path: Path, kind: str) -> bool:
    from .io import read_metadata

    try:
        return read_metadata(path).get("kind") == kind
    except Exception:  # noqa: BLE001 - any unreadable file is simply not ours
        return False


def _is_json(path: Path, head: bytes) -> bool:
    import json

    if not _is_text(head) or path.stat().st_size > 64 * 1024 * 1024:
        return False
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError, RecursionError):
        return False
    return True


# kind -> test of an existing file's first bytes (and path): True when handgrad could have written it
KINDS: dict[str, Any] = {
    "model": lambda path, head: _is_handgrad_file(path, "model"),
    "checkpoint": lambda path, head: _is_handgrad_file(path, "checkpoint"),
    "json": _is_json,
    "csv": lambda path, head: _is_text(head),
    "text": lambda path, head: _is_text(head),
    "dot": lambda path, head: _is_text(head),
    "png": lambda path, head: head.startswith(b"\x89PNG\r\n\x1a\n"),
    "svg": lambda path, head: _is_text(head) and b"<svg" in head,
    "pdf": lambda path, head: head.startswith(b"%PDF-"),
    "onnx": lambda path, head: head[:1] == b"\x08",  # an ONNX ModelProto opens with its ir_version field
    "pt2": lambda path, head: head.startswith(b"PK\x03\x04"),  # torch.export.save writes a zip archive
}


def kind_of(path: str | os.PathLike[str], default: str = "text") -> str:
    """The output kind for a file name, from its suffix (``.png`` -> ``png``), else ``default``."""
    suffix = Path(path).suffix.lower().lstrip(".")
    aliases = {"safetensors": default if default in ("model", "checkpoint") else "model", "gv": "dot",
               "md": "text", "tex": "text", "txt": "text", "tsv": "csv", "jsonl": "text"}
    suffix = aliases.get(suffix, suffix)
    return suffix if suffix in KINDS else default


def _identity(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _describe(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


# ====================================================================== the rule
def check_output(path: str | os.PathLike[str], *, force: bool = False, kind: str | None = None,
                 inputs: Iterable[Any] = (), what: str = "output") -> Path:
    """Refuse ``path`` as an output unless the module's rule allows it; return it as a Path.

    ``kind`` (a key of :data:`KINDS`, default from the suffix) says what an existing file
    must look like to be replaced under ``force``; ``inputs`` are paths this run reads;
    ``what`` names the option in messages (``--metrics-json``). Raises :class:`OutputError`.
    """
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what} must be a str or os.PathLike path, got {type(path).__name__}")
    target = Path(path)
    if str(path) == "":
        raise OutputError(f"{what}: the path is empty")
    kind = kind or kind_of(target)
    parent = target.parent
    if not parent.is_dir():
        raise OutputError(f"{what} {str(path)!r}: the folder {str(parent)!r} does not exist (it is not created for you)")
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputError(f"{what} {str(path)!r}: cannot be checked ({exc.strerror}, errno {exc.errno})") from None
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{what} {str(path)!r} is {_describe(st.st_mode)}; handgrad writes only to a new "
                              "file or replaces a regular file it wrote")
        me = (st.st_dev, st.st_ino)
        for source in inputs:
            if source is not None and _identity(source) == me:
                raise OutputError(f"{what} {str(path)!r} is also an input of this run ({str(source)!r}); "
                                  "choose another output path")
        if not force:
            raise OutputError(f"{what} {str(path)!r} exists; pass --force to replace it")
        if st.st_size and not _written_by_handgrad(target, kind):
            raise OutputError(f"{what} {str(path)!r} exists and was not written by handgrad as a {kind} file; "
                              "it is left alone (choose another path or remove it yourself)")
    return target


def _written_by_handgrad(path: Path, kind: str) -> bool:
    try:
        with open(path, "rb", opener=_no_follow) as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError:
        return False
    return bool(KINDS.get(kind, KINDS["text"])(path, head))


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))


def write_bytes(path: str | os.PathLike[str], data: bytes | Iterable[bytes], *, force: bool = False, kind: str | None = None,
                inputs: Iterable[Any] = (), what: str = "output") -> Path:
    """Check ``path`` with :func:`check_output`, then write ``data`` (bytes, or parts in turn) there atomically."""
    from .io import atomic_write_bytes

    target = check_output(path, force=force, kind=kind, inputs=inputs, what=what)
    return atomic_write_bytes(target, data)


def write_text(path: str | os.PathLike[str], text: str, **kwargs: Any) -> Path:
    """:func:`write_bytes` of UTF-8 text."""
    return write_bytes(path, text.encode("utf-8"), **kwargs)


def replace_bytes(path: str | os.PathLike[str], data: bytes, *, what: str = "output") -> Path:
    """The library's writer (plots, graphs): replaces a regular file, never a link, device or directory."""
    from .io import atomic_write_bytes

    target = Path(path)
    try:
        st = os.lstat(target)
    except OSError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OutputError(f"{what} {str(path)!r} is {_describe(st.st_mode)}; handgrad writes only to a new "
                          "file or replaces a regular file")
    if not target.parent.is_dir():
        raise OutputError(f"{what} {str(path)!r}: the folder {str(target.parent)!r} does not exist")
    return atomic_write_bytes(target, data)


# ====================================================================== one writer per folder
@contextlib.contextmanager
def lock_directory(directory: str | os.PathLike[str], what: str = "--out") -> Iterator[Path]:
    """Hold an exclusive lock on ``directory`` (created if needed) for the ``with`` block.

    A second holder, in this process or another, gets :class:`OutputError` at once rather
    than waiting: two runs writing into one folder would silently lose one result.
    """
    import fcntl

    folder = Path(directory)
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{what} {str(directory)!r} is {_describe(st.st_mode)}, not a directory")
    try:
        folder.mkdir(parents=True, exist_ok=True)  # like mkdir -p
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        raise OutputError(f"{what} {str(directory)!r}: cannot create or lock the folder "
                          f"({exc.strerror or exc}, errno {exc.errno})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutputError(f"{what} {str(directory)!r} is in use by another handgrad run (it holds "
                                  f"{str(folder / LOCK_NAME)!r}); wait for it to finish or choose another "
                                  f"{what}") from None
            raise
        yield folder
    finally:
        os.close(fd)  # closing the descriptor releases the lock


# ====================================================================== standard output
_stdout_gone = False


def emit(*lines: str, end: str = "\n") -> None:
    """Print ``lines``; if standard output is closed (``| head -1``), print nothing more, quietly."""
    global _stdout_gone
    if _stdout_gone:
        return
    try:
        for line in lines:
            sys.stdout.write(line + end)
        sys.stdout.flush()
    except BrokenPipeError:
        stdout_closed()


def stdout_closed() -> None:
    """Point standard output at /dev/null after the reader went away, so later writes (and the
    interpreter's final flush) neither fail nor print 'Broken pipe'."""
    global _stdout_gone
    _stdout_gone = True
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # pragma: no cover - stdout without a descriptor (captured)
        pass


__all__ = ["KINDS", "LOCK_NAME", "OutputError", "check_output", "emit", "kind_of", "lock_directory",
           "replace_bytes", "stdout_closed", "write_bytes", "write_text"]
