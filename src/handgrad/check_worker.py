"""The subprocess side of ``handgrad check``: run a user's homework code, record what it returns.

Started by :mod:`handgrad.check` as ``python -m handgrad.check_worker REQUEST.json``.
It imports the user's file or module, and for each configuration of the request
builds ``MLP(n, m, f, m, K, g)``, copies the given weights in, and per call runs
``clear_grad_and_cache()``, ``forward(x)``, the loss on the reference ``y_hat`` and
``backward`` with the reference ``dJdy_hat``. Received values go to
``out_<i>.npz`` (float64, no pickle); events go out as one JSON object per line on
the original stdout, which the parent reads with a deadline per configuration.
The user's own prints are sent to stderr so they cannot corrupt that channel.

This module only *records*: every comparison and diagnosis happens in the parent,
which the user's code cannot reach. It imports nothing but NumPy (and torch only
when the user's code already did).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

PARAMS = ("W1", "b1", "W2", "b2")
GRADS = ("dJdW1", "dJdb1", "dJdW2", "dJdb2")


class InterfaceError(Exception):
    """The user's object does not follow the homework interface (shape, type, missing key)."""


_CHANNEL: Any = None  # the event stream, once main() has set it up


def main(argv: list[str]) -> int:
    global _CHANNEL
    channel = _CHANNEL = _private_channel()
    if len(argv) != 1:
        _emit(channel, {"event": "fatal", "message": "usage: python -m handgrad.check_worker REQUEST.json"})
        return 2
    request = json.loads(Path(argv[0]).read_text())
    module = _load(request, channel)
    if module is None:
        return 0
    inputs = np.load(request["inputs"], allow_pickle=False)
    for i, config in enumerate(request["configs"]):
        _emit(channel, {"event": "start", "config": i})
        record = run_config(module, config, i, inputs, Path(request["outdir"]))
        _emit(channel, {"event": "done", "config": i, **record})
    _emit(channel, {"event": "finished"})
    return 0


def _private_channel() -> Any:
    """Keep the real stdout for events; point fd 1 and sys.stdout at stderr for the user's prints."""
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def _emit(channel: Any, event: dict) -> None:
    channel.write(json.dumps(event) + "\n")
    channel.flush()


def _load(request: dict, channel: Any) -> Any:
    """Import the target; report an error (with the user's line) instead of dying."""
    target, kind = request["target"], request["kind"]
    try:
        if kind == "file":
            path = Path(target).resolve()
            sys.path.insert(0, str(path.parent))
            spec = importlib.util.spec_from_file_location(f"_handgrad_check_{path.stem}", path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import {target} as a Python module")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            sys.path.insert(0, os.getcwd())
            module = importlib.import_module(target)
    except BaseException as exc:  # SystemExit and friends from the user's module body
        if isinstance(exc, KeyboardInterrupt):
            raise
        _emit(channel, {"event": "load_error", **describe_exception(exc, "importing the module")})
        return None
    names = {name: callable(getattr(module, name, None)) for name in ("MLP", "mse_loss", "bce_loss")}
    _emit(channel, {"event": "loaded", "has": names})
    return module if names["MLP"] else None


def describe_exception(exc: BaseException, during: str) -> dict:
    """A one-line account of an exception, with the deepest frame outside handgrad."""
    if isinstance(exc, SystemExit):
        text = f"called sys.exit({exc.code!r}) while {during}"
    else:
        text = f"{type(exc).__name__} while {during}: {exc}"
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    own = str(Path(__file__).resolve())
    for frame in reversed(frames):
        if str(Path(frame.filename).resolve()) != own and "importlib" not in frame.filename:
            where = f"{_short(frame.filename)}:{frame.lineno} in {frame.name}"
            break
    return {"message": text, "where": where}


def _short(filename: str) -> str:
    """A path relative to the working directory when it lies below it."""
    try:
        return str(Path(filename).resolve().relative_to(Path.cwd()))
    except ValueError:
        return filename


def _guard(errors: dict, key: str, during: str, fn: Any) -> Any:
    """Call ``fn``; on any exception (sys.exit included) record it under ``key`` and return None.

    The step is announced first, so a hang or a crash inside it can be reported by name."""
    if _CHANNEL is not None:
        _emit(_CHANNEL, {"event": "step", "what": during, "call": key.split("_")[0]})
    try:
        return fn()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        info = describe_exception(exc, during)
        if isinstance(exc, InterfaceError):
            info["message"] = str(exc)
        errors[key] = info
        return None


# ---------------------------------------------------------------- one configuration
def run_config(module: Any, config: dict, i: int, inputs: Any, outdir: Path) -> dict:
    """Build the user's MLP for one configuration and run every call; returns the event fields."""
    n, m, K, f, g = config["n"], config["m"], config["K"], config["f"], config["g"]
    errors: dict[str, dict] = {}
    notes: list[str] = []
    net = _guard(errors, "construct", f"constructing MLP({n}, {m}, {f!r}, {m}, {K}, {g!r})",
                 lambda: module.MLP(n, m, f, m, K, g))
    if net is None:
        return {"status": "construct_error", "errors": errors}
    kind = _guard(errors, "construct", "reading parameters['W1']", lambda: array_kind(net))
    if kind is None:
        return {"status": "construct_error", "errors": errors}
    backend, dtype = kind
    device = getattr(net.parameters["W1"], "device", None)
    weights = {p: inputs[f"c{i}_{p}"] for p in PARAMS}
    if _guard(errors, "construct", "copying the weights in", lambda: copy_weights(net, weights, backend, notes)) is None:
        return {"status": "construct_error", "errors": errors, "backend": backend, "dtype": dtype, "notes": notes}
    loss = getattr(module, "mse_loss" if config["loss"] == "mse" else "bce_loss", None)
    received: dict[str, np.ndarray] = {}
    for t in range(config["calls"]):
        data = {k: inputs[f"c{i}_t{t}_{k}"] for k in ("x", "y", "y_hat", "dJdy_hat")}
        call = _call(net, loss, config["loss"], data, (backend, dtype, device), errors, t)
        received.update({f"t{t}_{k}": v for k, v in call.items()})
    np.savez(outdir / f"out_{i}.npz", **received)
    return {"status": "ran", "errors": errors, "backend": backend, "dtype": dtype, "notes": notes}


def array_kind(net: Any) -> tuple[str, str]:
    """('numpy' | 'torch', dtype name) from the type of ``net.parameters['W1']``."""
    W1 = net.parameters["W1"]
    if isinstance(W1, np.ndarray):
        return "numpy", str(W1.dtype)
    if type(W1).__module__.split(".")[0] == "torch":
        return "torch", str(W1.dtype).replace("torch.", "")
    raise InterfaceError(f"parameters['W1'] is a {type(W1).__name__}; expected a NumPy array or a torch tensor")


def copy_weights(net: Any, weights: dict, backend: str, notes: list[str]) -> bool:
    """Write the given weights into the user's own arrays, in place where the shapes allow."""
    for name, value in weights.items():
        current = net.parameters[name]
        shape = tuple(current.shape)
        if shape != value.shape:
            if shape == value.T.shape and value.ndim == 2:
                notes.append(f"parameters[{name!r}] is stored transposed, shape {shape}; the homework's layout "
                             f"(that of torch.nn.Linear) is {value.shape}; its transpose was copied in")
                value = value.T
            elif int(np.prod(shape)) == value.size:
                notes.append(f"parameters[{name!r}] has shape {shape}; the homework's layout is {value.shape}")
                value = value.reshape(shape)
            else:
                raise InterfaceError(f"parameters[{name!r}] has shape {shape}; the homework's layout is {value.shape}")
        if backend == "torch":
            import torch

            with torch.no_grad():
                current.copy_(torch.as_tensor(np.ascontiguousarray(value), dtype=current.dtype, device=current.device))
        else:
            current[...] = value
    return True


def _to_user(a: np.ndarray, kind: tuple) -> Any:
    """A NumPy array as the user's kind of array: (backend, dtype name, device)."""
    backend, dtype, device = kind
    if backend == "torch":
        import torch

        return torch.as_tensor(np.ascontiguousarray(a), dtype=getattr(torch, dtype), device=device)
    return np.array(a, dtype=dtype)


def to_float64(value: Any, what: str) -> np.ndarray:
    """Any array, tensor or number the user returned, as a float64 NumPy copy."""
    if type(value).__module__.split(".")[0] == "torch":
        value = value.detach().cpu().numpy()
    try:
        out = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InterfaceError(f"{what} is a {type(value).__name__}, not an array of numbers") from None
    return out


def _call(net: Any, loss: Any, loss_name: str, data: dict, kind: tuple, errors: dict, t: int) -> dict:
    """One clear / forward / loss / backward round; returns the received arrays of this call."""
    got: dict[str, np.ndarray] = {}
    tag = f"t{t}"
    _guard(errors, f"{tag}_clear", "calling clear_grad_and_cache()", net.clear_grad_and_cache)
    x = _to_user(data["x"], kind)
    y_hat = _guard(errors, f"{tag}_y_hat", "calling forward(x)", lambda: net.forward(x))
    if y_hat is not None:
        _store(got, errors, tag, "y_hat", lambda: to_float64(y_hat, "forward(x)'s result"))
    if loss is None:
        errors[f"{tag}_loss"] = {"message": f"the module has no {loss_name}_loss function", "where": ""}
    else:
        pair = _guard(errors, f"{tag}_loss", f"calling {loss_name}_loss(y, y_hat)",
                      lambda: loss(_to_user(data["y"], kind), _to_user(data["y_hat"], kind)))
        if pair is not None:
            _store(got, errors, tag, "J", lambda: _pair(pair, loss_name)[0])
            _store(got, errors, tag, "dJdy_hat", lambda: _pair(pair, loss_name)[1])
    if y_hat is None:
        return got  # backward would read a cache the failed forward never filled
    upstream = _to_user(data["dJdy_hat"], kind)
    if _guard(errors, f"{tag}_backward", "calling backward(dJdy_hat)", lambda: net.backward(upstream) or True):
        for name in GRADS:
            _store(got, errors, tag, name, lambda name=name: to_float64(net.grads[name], f"grads[{name!r}]"))
    return got


def _pair(pair: Any, loss_name: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise InterfaceError(f"{loss_name}_loss returned a {type(pair).__name__}; expected a pair (J, dJdy_hat)")
    return to_float64(pair[0], f"{loss_name}_loss's J"), to_float64(pair[1], f"{loss_name}_loss's dJdy_hat")


def _store(got: dict, errors: dict, tag: str, name: str, fn: Any) -> None:
    value = _guard(errors, f"{tag}_{name}", f"reading {name}", fn)
    if value is not None:
        got[name] = value


if __name__ == "__main__":  # pragma: no cover - run as a subprocess
    code = main(sys.argv[1:])
    sys.stderr.flush()
    os._exit(code)  # do not wait for threads or atexit handlers the user's code left behind
