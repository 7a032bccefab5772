r"""Saving and loading models and checkpoints: one safetensors file, written atomically.

Format
------
A handgrad file is a `safetensors <https://github.com/huggingface/safetensors>`_ file::

    8 bytes   N, the header length (unsigned little-endian)
    N bytes   JSON header: every array's dtype, shape and byte range, and
              "__metadata__": {"handgrad": "<JSON document>"}
    the rest  the raw array bytes, nothing else

The handgrad JSON document holds the format name and version, the architecture
(``net.config()``), the dtype, every array's shape and SHA-256, and the caller's
metadata (preprocessing, class labels, task, feature names, ...). A checkpoint adds
the optimizer state, the epoch, the random generator's state and the history.

Why safetensors rather than ``.npz``: the format has no way to carry code (``.npz``
only refuses pickles because ``allow_pickle=False`` is passed), the header is read and
checked before any array is allocated, the weights and the JSON describing them live
in one file that one ``os.replace`` swaps atomically, and PyTorch, JAX and Rust read it.

Writing is atomic: a temporary file from ``tempfile.mkstemp`` in the target directory,
write, flush, ``fsync``, ``os.replace`` onto the requested path, ``fsync`` of the
directory. The temporary file is removed on any failure, KeyboardInterrupt included, so
the previous file stays intact. The path is used exactly as given (no suffix added).

Loading never executes code and checks, in order: the file exists and is a regular
non-empty file; the header length and JSON; the handgrad format and version; every
array's dtype (float32/float64 only) and byte range; the architecture against every
key and shape (listing all mismatches) before building the network; the SHA-256 of
each array; finiteness. Every failure is a :class:`~handgrad.errors.ModelFileError`
naming the path and the reason.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import stat
import struct
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .backend import to_numpy
from .errors import ModelFileError
from .schema import CHECKPOINT_FIELDS, METADATA_FIELDS, Shape, check_document

FORMAT = "handgrad"
FORMAT_VERSION = 2  # 2: the whole JSON document is covered by "doc_sha256" (version 1 files still load)
MAX_HEADER_BYTES = 4 * 1024 * 1024  # our headers are a few kB; refuse anything claiming more
STALE_TEMP_SECONDS = 3600  # orphaned temporary files older than this are removed at the next save
DTYPES: dict[str, np.dtype[Any]] = {"F32": np.dtype(np.float32), "F64": np.dtype(np.float64)}
DTYPE_CODES = {v: k for k, v in DTYPES.items()}


# ====================================================================== atomic writing
def _write_all(f: Any, data: bytes | bytearray | memoryview) -> None:
    """Write ``data`` to the open file ``f`` (a separate function so tests can inject faults)."""
    f.write(data)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse directory fsync
        pass
    finally:
        os.close(fd)


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def check_save_path(path: str | os.PathLike) -> Path:
    """Refuse a directory or a missing parent directory up front; return the path unchanged."""
    _check_path_type(path)
    target = Path(path)
    if str(path) == "" or target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory; give a file path such as DIR/model.safetensors",
                                str(path))
    try:
        mode = os.lstat(target).st_mode
    except OSError:
        mode = None
    if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):  # a link is replaced, never followed
        raise ValueError(f"{path}: is not a regular file (a device, FIFO or socket); handgrad never writes to one")
    parent = target.parent  # Path("model.safetensors").parent is Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "parent directory does not exist (it is not created for you)",
                                str(parent))
    return target


def atomic_write_bytes(path: str | os.PathLike, data: bytes | Iterable[bytes]) -> Path:
    """Write ``data`` (bytes, or an iterable of parts written in turn, so that a long output is never whole
    in memory) to exactly ``path`` so that it holds the old or the new complete content.

    A temporary file in the same directory is written, flushed, fsynced and renamed over
    ``path``; the directory is then fsynced. Any failure (an OSError such as ENOSPC, or a
    KeyboardInterrupt) removes the temporary file and re-raises; the previous file is untouched.
    """
    target = check_save_path(path)
    parent = target.parent
    _remove_stale_temps(parent, target.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "wb") as f:
            for part in (data,) if isinstance(data, (bytes, bytearray, memoryview)) else data:
                _write_all(f, part)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename is None:
            raise type(exc)(exc.errno, f"{exc.strerror}; {target} was not written (any previous file is unchanged)",
                            str(target)) from exc
        raise
    _fsync_dir(parent)
    return target


def _remove_stale_temps(directory: Path, name: str) -> None:
    """Remove our own orphaned temporary files (left by a killed process) older than an hour."""
    now = time.time()
    for p in directory.glob(f".{name}.*.tmp"):
        try:
            if now - p.stat().st_mtime > STALE_TEMP_SECONDS:
                p.unlink()
        except OSError:
            pass


# ====================================================================== container
def _sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).data).hexdigest()  # the array's buffer: no bytes copy


def _to_json(obj: Any, what: str) -> str:
    def default(o: Any) -> Any:
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"{type(o).__name__} is not JSON data")

    try:
        return json.dumps(obj, default=default, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be plain JSON data (dicts, lists, str, finite numbers, arrays): {exc}") from None


def _pack(arrays: dict[str, np.ndarray], doc: dict[str, Any]) -> bytes:
    """The safetensors layout, written with NumPy alone (no dependency, no code in the file).

    Arrays are laid out contiguously in key order; the JSON header is padded with
    spaces to a multiple of 8 bytes, as the format recommends.
    """
    doc = dict(doc)
    doc["arrays"] = {k: {"shape": list(a.shape), "dtype": a.dtype.name, "sha256": _sha256(a)} for k, a in arrays.items()}
    doc = json.loads(_to_json(doc, "metadata"))  # arrays and NumPy scalars -> plain JSON, as a reader sees them
    doc[DIGEST] = _doc_digest(doc)
    header: dict[str, Any] = {"__metadata__": {FORMAT: _to_json(doc, "metadata")}}
    chunks, offset = [], 0
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key], dtype=arrays[key].dtype.newbyteorder("<"))
        raw = a.tobytes()
        header[key] = {"dtype": DTYPE_CODES[a.dtype.newbyteorder("=")], "shape": list(a.shape),
                       "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


DIGEST = "doc_sha256"


def _doc_digest(doc: dict[str, Any]) -> str:
    """SHA-256 of the document without its digest, in one canonical JSON spelling (sorted keys, no spaces):
    a flipped bit in a scaling mean or a class label is caught like one in a weight."""
    body = {k: v for k, v in doc.items() if k != DIGEST}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                                     allow_nan=False).encode()).hexdigest()


def _numpy_params(net: Any, what: str) -> dict[str, np.ndarray]:
    out = {}
    for name, p in net.params.items():
        a = np.array(to_numpy(p), copy=True)
        _check_savable(a, f"{what} {name!r}")
        out[name] = a
    return out


def _check_savable(a: np.ndarray, what: str) -> None:
    if a.dtype not in DTYPE_CODES:
        raise ValueError(f"cannot save {what}: dtype {a.dtype} (handgrad files hold float32 or float64)")
    bad = int(a.size - np.count_nonzero(np.isfinite(a)))
    if bad:
        raise ValueError(f"refusing to save {what}: {bad} non-finite (NaN/inf) value(s)")


# ====================================================================== reading
def _fail(path: Any, reason: str) -> ModelFileError:
    return ModelFileError(f"{path}: {reason}")


def _check_path_type(path: Any) -> None:
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")


def _read_bytes(path: Any) -> bytes:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise _fail(path, "no such file") from None
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror}, errno {exc.errno})") from None
    if stat.S_ISDIR(st.st_mode):
        raise _fail(path, "is a directory, not a model file")
    if not stat.S_ISREG(st.st_mode):
        raise _fail(path, "is not a regular file")
    if st.st_size == 0:
        raise _fail(path, "file is empty (0 bytes)")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror}, errno {exc.errno})") from None


def _sniff(data: bytes) -> str:
    if data[:4] == b"PK\x03\x04":
        return "it is a zip archive (an .npz or a PyTorch .pt file?); handgrad files are safetensors"
    if data[:1] == b"\x80":
        return "it looks like a pickle; pickled payloads are refused and never unpickled"
    if data[:6] == b"\x93NUMPY":
        return "it is a NumPy .npy file; handgrad files are safetensors"
    return "not a safetensors file"


def _read_header(path: Any, data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """(handgrad document, {key: safetensors entry}) after checking the header's structure."""
    if len(data) < 8:
        raise _fail(path, f"not a handgrad model file: only {len(data)} bytes (truncated?); {_sniff(data)}")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES:
        raise _fail(path, f"not a handgrad model file: header claims {n} bytes (limit {MAX_HEADER_BYTES}); {_sniff(data)}")
    if 8 + n > len(data):
        raise _fail(path, f"is corrupt or truncated: header claims {n} bytes, file has {len(data) - 8} after the length")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _fail(path, f"not a handgrad model file: the header is not JSON; {_sniff(data)}") from None
    if not isinstance(header, dict):
        raise _fail(path, "not a handgrad model file: the header is not a JSON object")
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict) or not isinstance(meta.get(FORMAT), str):
        raise _fail(path, "not a handgrad model file: a safetensors file without handgrad metadata")
    try:
        doc = json.loads(meta[FORMAT])
    except (json.JSONDecodeError, RecursionError):
        raise _fail(path, "is corrupt: the handgrad metadata is not JSON") from None
    _check_doc(path, doc)
    _check_entries(path, header, len(data) - 8 - n)
    return doc, header


def _check_doc(path: Any, doc: Any) -> None:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _fail(path, "not a handgrad model file (no handgrad format marker)")
    version = doc.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _fail(path, f"is corrupt: format_version {version!r} is not an integer")
    if version > FORMAT_VERSION:
        raise _fail(path, f"format version {version} is newer than this handgrad reads ({FORMAT_VERSION}); "
                          "upgrade handgrad")
    if version < 1:
        raise _fail(path, f"unknown format version {version}")
    if version >= 2:
        try:
            digest = _doc_digest(doc)
        except (TypeError, ValueError):
            digest = None  # NaN/Infinity tokens: not the JSON handgrad writes
        if doc.get(DIGEST) != digest:
            raise _fail(path, f"is corrupt: checksum mismatch for the metadata (field {DIGEST!r}); the JSON document "
                              "was altered or damaged")
    if not isinstance(doc.get("arrays"), dict) or not isinstance(doc.get("architecture"), dict):
        raise _fail(path, "is corrupt: the handgrad metadata lacks 'arrays' or 'architecture'")


def _check_entries(path: Any, header: dict[str, Any], data_len: int) -> None:
    for key, e in header.items():
        if not isinstance(e, dict):
            raise _fail(path, f"is corrupt: header entry {key!r} is not an object")
        dtype = e.get("dtype")
        if dtype not in DTYPES:
            raise _fail(path, f"array {key!r} has dtype {dtype!r}; handgrad files hold float32 (F32) or float64 (F64) "
                              "only (int, bool, complex and float16 are refused)")
        shape, offsets = e.get("shape"), e.get("data_offsets")
        if (not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                   for s in shape)
                or not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise _fail(path, f"is corrupt: header entry {key!r} has a bad shape or byte range")
        begin, end = offsets
        nbytes = math.prod(shape) * DTYPES[dtype].itemsize
        if not (0 <= begin <= end <= data_len) or end - begin != nbytes:
            raise _fail(path, f"is corrupt or truncated: array {key!r} of shape {tuple(shape)} needs {nbytes} bytes, "
                              f"its byte range is [{begin}, {end}) of {data_len}")


def _expected_param_shapes(path: Any, arch: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes implied by the architecture, computed without allocating."""
    layers = arch.get("layers")
    if arch.get("type") != "Sequential" or not isinstance(layers, list) or not layers:
        raise _fail(path, f"unsupported architecture {arch.get('type')!r} (expected a Sequential with layers)")
    shapes: dict[str, tuple[int, ...]] = {}
    k = 0
    for i, cfg in enumerate(layers):
        if not isinstance(cfg, dict):
            raise _fail(path, f"architecture layer {i} is not an object")
        if cfg.get("type") == "Linear":
            n_in: Any = cfg.get("in_features")
            n_out: Any = cfg.get("out_features")
            if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (n_in, n_out)):
                raise _fail(path, f"architecture layer {i} (Linear) has bad sizes {n_in!r} -> {n_out!r}")
            k += 1
            shapes[f"W{k}"] = (n_out, n_in)
            if cfg.get("bias", True):
                shapes[f"b{k}"] = (n_out,)
    return shapes


def _compare_shapes(path: Any, expected: dict[str, tuple], found: dict[str, tuple], what: str) -> None:
    """Raise listing every mismatch: shapes by key, then missing and unexpected keys."""
    problems = [f"{k!r}: expected shape {expected[k]}, found {found[k]}"
                for k in expected if k in found and tuple(found[k]) != tuple(expected[k])]
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing:
        problems.append(f"missing keys {missing}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected}")
    if problems:
        raise _fail(path, f"{what} do not match the architecture: " + "; ".join(problems))


def _load_arrays(path: Any, data: bytes, doc: dict[str, Any], header: dict[str, Any]) -> dict[str, np.ndarray]:
    recorded = doc["arrays"]
    if set(recorded) != set(header):
        raise _fail(path, f"is corrupt: the metadata lists arrays {sorted(recorded)}, the file holds {sorted(header)}")
    (n,) = struct.unpack("<Q", data[:8])
    body = memoryview(data)[8 + n:]
    arrays = {}
    for key, e in header.items():  # byte ranges and dtypes were checked by _check_entries
        begin, end = e["data_offsets"]
        dtype = DTYPES[e["dtype"]].newbyteorder("<")
        arrays[key] = np.frombuffer(body[begin:end], dtype=dtype).reshape(e["shape"]).astype(DTYPES[e["dtype"]])
    for key, a in arrays.items():
        info = recorded[key]
        if not isinstance(info, dict) or info.get("sha256") != _sha256(a):
            raise _fail(path, f"is corrupt: checksum mismatch for array {key!r} (the file was altered or damaged)")
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        if bad:
            raise _fail(path, f"non-finite values in {key!r} ({bad} entries)")
    return arrays


def _build_net(path: Any, doc: dict[str, Any], header: dict[str, Any], prefix: str = "") -> Any:
    """Build the network after checking every parameter key and shape against the architecture."""
    from .model import Sequential
    from .registry import layer_from_config

    arch = doc["architecture"]
    expected = _expected_param_shapes(path, arch)
    found = {k[len(prefix):]: tuple(e["shape"]) for k, e in header.items() if k.startswith(prefix)}
    _compare_shapes(path, expected, found, "the weights")
    dtypes = {header[prefix + k]["dtype"] for k in expected}
    if len(dtypes) > 1:
        raise _fail(path, f"mixed parameter dtypes {sorted(dtypes)}")
    dtype = DTYPES[dtypes.pop()] if dtypes else np.dtype(np.float32)
    try:
        net = Sequential(*[layer_from_config(c, dtype=dtype) for c in arch["layers"]])
    except (ValueError, TypeError) as exc:
        raise _fail(path, f"bad architecture: {exc}") from None
    _compare_shapes(path, {k: tuple(v.shape) for k, v in net.params.items()}, found, "the weights")
    return net


def _shape(net: Any) -> Shape:
    return Shape(net.in_features, net.out_features)


def _check_fields(path: Any, fields: Any, doc: Any, net: Any, what: str) -> None:
    """The document against its table in handgrad.schema; the error names the file and the field."""
    try:
        check_document(fields, doc, _shape(net), what)
    except ValueError as exc:
        raise _fail(path, str(exc)) from None


def _fill(net: Any, arrays: dict[str, np.ndarray], prefix: str = "") -> None:
    """Copy loaded arrays into the network's parameters, in place."""
    for name, layer, key, _ in net.parameter_slots():
        layer.params[key][...] = arrays[prefix + name]


def _open(path: Any, kind: str) -> tuple[dict, dict, bytes]:
    data = _read_bytes(path)
    doc, header = _read_header(path, data)
    if doc.get("kind") != kind:
        raise _fail(path, f"is a handgrad {doc.get('kind')!r} file, expected a {kind!r} file")
    return doc, header, data


def _guard(path: Any, fn: Any) -> Any:
    """Run ``fn``; any failure other than ModelFileError becomes a ModelFileError naming the path."""
    _check_path_type(path)
    try:
        return fn()
    except ModelFileError:
        raise
    except Exception as exc:  # a file boundary: never a raw traceback for a bad file
        raise _fail(path, f"cannot be read as a handgrad file ({type(exc).__name__}: {exc})") from exc


# ====================================================================== models
def save_model(path: str | os.PathLike, net: Any, metadata: dict[str, Any] | None = None) -> Path:
    """Save ``net``'s architecture and weights (and JSON ``metadata``) to exactly ``path``, atomically.

    ``metadata`` is plain JSON data (NumPy arrays become lists): preprocessing, class
    labels, task, feature names, ... It comes back from :func:`load_model`. Raises
    ValueError for non-finite weights or non-JSON metadata, and OSError (with the path
    and errno) when the file cannot be written; the previous file is then unchanged.

    >>> save_model("model.safetensors", net, {"task": "regression"})   # doctest: +SKIP
    """
    from . import __version__

    target = check_save_path(path)
    arrays = _numpy_params(net, "weight")
    check_document(METADATA_FIELDS, metadata or {}, _shape(net), "metadata")  # never write what load refuses
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": "model", "handgrad_version": __version__,
           "architecture": net.config(), "dtype": _net_dtype(arrays), "metadata": metadata or {}}
    return atomic_write_bytes(target, _pack(arrays, doc))


def _net_dtype(arrays: dict[str, np.ndarray]) -> str:
    return next(iter(arrays.values())).dtype.name if arrays else "float32"


def load_model(path: str | os.PathLike, *, backend: Any = None) -> tuple[Any, dict[str, Any]]:
    """Load a model saved by :func:`save_model`: ``(net, metadata)``.

    The network is a :class:`~handgrad.model.Sequential` on NumPy (or moved to
    ``backend``). Every failure is a :class:`ModelFileError` naming the path and the reason.
    """
    def run() -> tuple[Any, dict[str, Any]]:
        doc, header, data = _open(path, "model")
        net = _build_net(path, doc, header)
        arrays = _load_arrays(path, data, doc, header)
        _fill(net, arrays)
        metadata = doc.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise _fail(path, "is corrupt: metadata is not an object")
        _check_fields(path, METADATA_FIELDS, metadata, net, "metadata")
        return net, metadata

    net, metadata = _guard(path, run)
    if backend is not None:
        net.to(backend)
    return net, metadata


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The file's handgrad JSON document (format, kind, architecture, arrays, metadata) without loading weights."""
    def run() -> dict[str, Any]:
        data = _read_bytes(path)
        doc, _ = _read_header(path, data)
        return doc

    return _guard(path, run)


# ====================================================================== checkpoints
@dataclass
class Checkpoint:
    """Everything a training run needs to continue exactly where it stopped.

    ``epoch`` counts finished epochs; ``optimizer_state`` is :meth:`Optimizer.state_dict`
    data; ``rng_state`` is ``Generator.bit_generator.state``; ``best_params`` are the
    weights of the best epoch so far (early stopping), ``state`` any other JSON data.
    """

    net: Any
    epoch: int
    optimizer_state: dict[str, Any] | None = None
    rng_state: dict[str, Any] | None = None
    history: dict[str, Any] | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    best_params: dict[str, np.ndarray] | None = None
    state: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(path: str | os.PathLike, ckpt: Checkpoint) -> Path:
    """Save a :class:`Checkpoint` to exactly ``path``, atomically (same rules as :func:`save_model`)."""
    from . import __version__

    target = check_save_path(path)
    arrays = {f"params.{k}": v for k, v in _numpy_params(ckpt.net, "weight").items()}
    opt = dict(ckpt.optimizer_state) if ckpt.optimizer_state is not None else None
    if opt is not None:
        for k, v in opt.pop("buffers", {}).items():
            a = np.array(to_numpy(v), copy=True)
            _check_savable(a, f"optimizer buffer {k!r}")
            arrays[f"optimizer.{k}"] = a
    for k, v in (ckpt.best_params or {}).items():
        a = np.array(to_numpy(v), copy=True)
        _check_savable(a, f"best weight {k!r}")
        arrays[f"best.{k}"] = a
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": "checkpoint", "handgrad_version": __version__,
           "architecture": ckpt.net.config(), "dtype": _net_dtype(arrays), "metadata": ckpt.metadata or {},
           "checkpoint": {"epoch": int(ckpt.epoch), "optimizer": opt, "rng_state": ckpt.rng_state,
                          "history": ckpt.history, "hyperparameters": ckpt.hyperparameters,
                          "state": ckpt.state, "has_best": ckpt.best_params is not None}}
    return atomic_write_bytes(target, _pack(arrays, doc))


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load a :class:`Checkpoint`; the same checks as :func:`load_model`, plus the optimizer buffers' shapes."""
    return _guard(path, lambda: _load_checkpoint(path))


def _load_checkpoint(path: Any) -> Checkpoint:
    doc, header, data = _open(path, "checkpoint")
    info = doc.get("checkpoint")
    if not isinstance(info, dict):
        raise _fail(path, "is corrupt: the checkpoint record is missing")
    net = _build_net(path, doc, header, prefix="params.")
    _check_fields(path, CHECKPOINT_FIELDS, info, net, "checkpoint record")
    _check_fields(path, METADATA_FIELDS, doc.get("metadata") or {}, net, "metadata")
    shapes = {k: tuple(v.shape) for k, v in net.params.items()}
    groups: dict[str, dict[str, tuple]] = {}
    for key, e in header.items():
        group, _, rest = key.partition(".")
        if group not in ("params", "optimizer", "best"):
            raise _fail(path, f"unexpected array {key!r}")
        if group != "params":
            pname = rest.rpartition(".")[2] if group == "optimizer" else rest
            if pname not in shapes or tuple(e["shape"]) != shapes[pname]:
                raise _fail(path, f"array {key!r} of shape {tuple(e['shape'])} matches no parameter of the architecture")
            groups.setdefault(group, {})[rest] = tuple(e["shape"])
    if info.get("has_best"):
        _compare_shapes(path, shapes, groups.get("best", {}), "the best-epoch weights")
    arrays = _load_arrays(path, data, doc, header)
    _fill(net, arrays, prefix="params.")
    opt = info.get("optimizer")
    if opt is not None:
        opt = dict(opt)
        opt["buffers"] = {k[len("optimizer."):]: v for k, v in arrays.items() if k.startswith("optimizer.")}
    best = {k[len("best."):]: v for k, v in arrays.items() if k.startswith("best.")} if info.get("has_best") else None
    return Checkpoint(net=net, epoch=info["epoch"], optimizer_state=opt, rng_state=info.get("rng_state"),
                      history=info.get("history"), hyperparameters=info.get("hyperparameters") or {},
                      best_params=best, state=info.get("state") or {}, metadata=doc.get("metadata") or {})


__all__ = [
    "FORMAT_VERSION", "Checkpoint", "atomic_write_bytes", "load_checkpoint", "load_model", "read_metadata",
    "save_checkpoint", "save_model",
]
