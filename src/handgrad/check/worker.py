"""The sandboxed side of ``handgrad check``: run the checked code, hand back raw arrays.

This file is copied into the sandbox and run there as a script
(``python -I -S worker.py REQUEST.json``); it imports nothing but the standard
library and NumPy (and torch only when the checked code uses it), so it never
needs handgrad, which is not importable in the sandbox.

It imports the submission, and for each configuration of the request builds
``MLP(n, m, f, m, K, g)``, copies the given weights in, and per call runs
``clear_grad_and_cache()``, ``forward(x)``, the loss on the given ŷ and
``backward`` on the given dJ/dŷ. Received values go to ``out_<i>.npz`` (float64,
uncompressed, no pickle); events go out as one JSON object per line on the
original stdout. The checked code's own prints are sent to stderr.

This process holds nothing worth forging: it records, and the parent judges every
value it sends, with a tolerance the parent chose. What it says about autograd is
evidence the parent adds to its own reading of the source.
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

PARAMS = ("W1", "b1", "W2", "b2")
GRADS = ("dJdW1", "dJdb1", "dJdW2", "dJdb2")
DTYPES = ("float32", "float64")  # the homework's dtypes; anything else is refused by name
AUTODIFF = ("handgrad", "jax", "autograd", "tensorflow", "tinygrad", "micrograd", "mxnet", "paddle", "functorch")


class InterfaceError(Exception):
    """The checked object does not follow the homework interface (shape, type, dtype, missing key)."""


_CHANNEL: Any = None  # the event stream, once main() has set it up
_AUTOGRAD: list[str] = []  # autograd seen while running the checked code


def main(argv: list[str]) -> int:
    global _CHANNEL
    channel = _CHANNEL = _private_channel()
    if len(argv) != 1:
        _emit({"event": "fatal", "message": "usage: python worker.py REQUEST.json"})
        return 2
    request = json.loads(Path(argv[0]).read_text())
    sys.path[:0] = [request["path"]]
    sys.path += request.get("site", [])
    import numpy as np  # after the site folders are on the path

    module = _load(request)
    if module is None:
        _emit({"event": "finished"})
        return 0
    inputs = dict(np.load(request["inputs"], allow_pickle=False))
    for i, config in enumerate(request["configs"]):
        _watch_torch()  # again, for code that imports torch only when it runs
        _emit({"event": "start", "config": i})
        record = run_config(module, config, i, inputs, Path(request["outdir"]))
        _emit({"event": "done", "config": i, "autograd": autograd_evidence(), **record})
    _emit({"event": "finished"})
    channel.flush()
    return 0


def _private_channel() -> Any:
    """Keep the real stdout for events; point fd 1 and sys.stdout at stderr for the checked code's prints."""
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def _emit(event: dict) -> None:
    _CHANNEL.write(json.dumps(event) + "\n")
    _CHANNEL.flush()


def _load(request: dict) -> Any:
    """Import the target; report an error (with the checked code's line) instead of dying."""
    try:
        if request.get("file"):
            path = Path(request["file"])
            spec = importlib.util.spec_from_file_location(f"_checked_{path.stem}", path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import {path.name} as a Python module")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(request["module"])
    except BaseException as exc:  # SystemExit and friends from the module body
        if isinstance(exc, KeyboardInterrupt):
            raise
        _emit({"event": "load_error", **describe_exception(exc, "importing the module")})
        return None
    _watch_torch()
    names = {name: callable(getattr(module, name, None)) for name in ("MLP", "mse_loss", "bce_loss")}
    _emit({"event": "loaded", "has": names, "autograd": autograd_evidence()})
    return module if names["MLP"] else None


# ---------------------------------------------------------------- autograd seen at run time
def _watch_torch() -> None:
    """When the checked code uses torch, record every call into its autograd engine."""
    torch = sys.modules.get("torch")
    if torch is None or getattr(torch.Tensor.backward, "_handgrad_watch", False):
        return

    def recorder(name: str, fn: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if name not in _AUTOGRAD:
                _AUTOGRAD.append(name)
            return fn(*args, **kwargs)
        wrapped._handgrad_watch = True  # type: ignore[attr-defined]
        return wrapped

    torch.Tensor.backward = recorder("called Tensor.backward()", torch.Tensor.backward)
    torch.autograd.backward = recorder("called torch.autograd.backward()", torch.autograd.backward)
    torch.autograd.grad = recorder("called torch.autograd.grad()", torch.autograd.grad)


def autograd_evidence() -> list[str]:
    found = list(_AUTOGRAD)
    found += [f"imported {name}" for name in AUTODIFF if name in sys.modules]
    return found


def _note_requires_grad(value: Any, what: str) -> None:
    if getattr(value, "requires_grad", False) or getattr(value, "grad_fn", None) is not None:
        text = f"{what} is a tensor that requires grad"
        if text not in _AUTOGRAD:
            _AUTOGRAD.append(text)


# ---------------------------------------------------------------- exceptions
def describe_exception(exc: BaseException, during: str) -> dict:
    """A one-line account of an exception, with the deepest frame outside this file."""
    if isinstance(exc, SystemExit):
        text = f"called sys.exit({exc.code!r}) while {during}"
    elif isinstance(exc, InterfaceError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__} while {during}: {exc}"
    where = ""
    own = os.path.realpath(__file__)
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if os.path.realpath(frame.filename) != own and "importlib" not in frame.filename:
            where = f"{os.path.basename(frame.filename)}:{frame.lineno} in {frame.name}"
            break
    missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
    return {"message": text, "where": where, "type": type(exc).__name__, "interface": isinstance(exc, InterfaceError),
            "missing_module": missing}


def _guard(errors: dict, key: str, during: str, fn: Any) -> Any:
    """Call ``fn``; on any exception (sys.exit included) record it under ``key`` and return None.

    The step is announced first, so a hang or a crash inside it can be reported by name."""
    _emit({"event": "step", "what": during, "call": key.split("_")[0]})
    try:
        return fn()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        errors[key] = describe_exception(exc, during)
        return None


# ---------------------------------------------------------------- one configuration
def run_config(module: Any, config: dict, i: int, inputs: dict, outdir: Path) -> dict:
    """Build the checked MLP for one configuration and run every call; returns the event fields."""
    import numpy as np

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
    for p in PARAMS:
        _note_requires_grad(net.parameters.get(p), f"parameters[{p!r}]")
    loss = getattr(module, "mse_loss" if config["loss"] == "mse" else "bce_loss", None)
    received: dict[str, Any] = {}
    for t in range(config["calls"]):
        data = {k: inputs[f"c{i}_t{t}_{k}"] for k in ("x", "y", "y_hat", "dJdy_hat")}
        call = _call(net, loss, config["loss"], data, (backend, dtype, device), errors, t)
        received.update({f"t{t}_{k}": v for k, v in call.items()})
    np.savez(outdir / f"out_{i}.npz", **received)
    return {"status": "ran", "errors": errors, "backend": backend, "dtype": dtype, "notes": notes}


def array_kind(net: Any) -> tuple[str, str]:
    """('numpy' | 'torch', dtype name) from the type of ``net.parameters['W1']``; other dtypes refused by name."""
    import numpy as np

    W1 = net.parameters["W1"]
    if isinstance(W1, np.ndarray):
        backend, dtype = "numpy", str(W1.dtype)
    elif type(W1).__module__.split(".")[0] == "torch":
        backend, dtype = "torch", str(W1.dtype).replace("torch.", "")
    else:
        raise InterfaceError(f"parameters['W1'] is a {type(W1).__name__}; expected a NumPy array or a torch tensor")
    if dtype not in DTYPES:
        raise InterfaceError(f"parameters['W1'] has dtype {dtype}, which the check does not grade: the homework "
                             "uses float32 or float64 (no tolerance is defined for other precisions)")
    return backend, dtype


def copy_weights(net: Any, weights: dict, backend: str, notes: list[str]) -> bool:
    """Write the given weights into the checked code's own arrays, in place where the shapes allow."""
    import numpy as np

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


def _to_user(a: Any, kind: tuple) -> Any:
    """A NumPy array as the checked code's kind of array: (backend, dtype name, device)."""
    import numpy as np

    backend, dtype, device = kind
    if backend == "torch":
        import torch

        return torch.as_tensor(np.ascontiguousarray(a), dtype=getattr(torch, dtype), device=device)
    return np.array(a, dtype=dtype)


def to_float64(value: Any, what: str, backend: str, scalar: bool = False) -> Any:
    """An array (or, for a loss value, a number) the checked code returned, as a float64 NumPy copy.

    The interface asks for the type of parameters['W1']: a list, or a NumPy array from a torch
    implementation, is refused by name; so are complex values and integer or boolean arrays."""
    import numpy as np

    is_torch = type(value).__module__.split(".")[0] == "torch"
    numbers = (int, float, np.floating, np.integer)
    if not (scalar and isinstance(value, numbers) and not isinstance(value, bool)):
        expected = "torch tensor" if backend == "torch" else "NumPy array"
        if backend == "torch" and not is_torch or backend == "numpy" and not isinstance(value, np.ndarray):
            raise InterfaceError(f"{what} is a {type(value).__name__}; the interface returns a {expected} "
                                 "(the type of parameters['W1'])")
    if is_torch:
        _note_requires_grad(value, what)
        if value.is_complex():
            raise InterfaceError(f"{what} has dtype {str(value.dtype).replace('torch.', '')}; expected real numbers")
        import torch

        return value.detach().to("cpu", torch.float64).numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "fiu" or (array.dtype.kind in "iu" and not scalar):
        raise InterfaceError(f"{what} has dtype {array.dtype}; expected real floating-point numbers")
    return np.array(array, dtype=np.float64)


def _call(net: Any, loss: Any, loss_name: str, data: dict, kind: tuple, errors: dict, t: int) -> dict:
    """One clear / forward / loss / backward round; returns the received arrays of this call."""
    got: dict[str, Any] = {}
    tag, backend = f"t{t}", kind[0]
    _guard(errors, f"{tag}_clear", "calling clear_grad_and_cache()", net.clear_grad_and_cache)
    x = _to_user(data["x"], kind)
    y_hat = _guard(errors, f"{tag}_y_hat", "calling forward(x)", lambda: net.forward(x))
    if y_hat is not None:
        _store(got, errors, tag, "y_hat", lambda: to_float64(y_hat, "forward(x)'s result", backend))
    if loss is None:
        errors[f"{tag}_loss"] = {"message": f"the module has no {loss_name}_loss function", "where": "",
                                 "type": "", "interface": True}
    else:
        pair = _guard(errors, f"{tag}_loss", f"calling {loss_name}_loss(y, y_hat)",
                      lambda: loss(_to_user(data["y"], kind), _to_user(data["y_hat"], kind)))
        if pair is not None:
            _store(got, errors, tag, "J", lambda: _pair(pair, loss_name, backend)[0])
            _store(got, errors, tag, "dJdy_hat", lambda: _pair(pair, loss_name, backend)[1])
    if y_hat is None:
        return got  # backward would read a cache the failed forward never filled
    upstream = _to_user(data["dJdy_hat"], kind)
    if _guard(errors, f"{tag}_backward", "calling backward(dJdy_hat)", lambda: net.backward(upstream) or True):
        for name in GRADS:
            _store(got, errors, tag, name, lambda name=name: to_float64(net.grads[name], f"grads[{name!r}]", backend))
    return got


def _pair(pair: Any, loss_name: str, backend: str) -> tuple[Any, Any]:
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise InterfaceError(f"{loss_name}_loss returned a {type(pair).__name__}; expected a pair (J, dJdy_hat)")
    return (to_float64(pair[0], f"{loss_name}_loss's J", backend, scalar=True),
            to_float64(pair[1], f"{loss_name}_loss's dJdy_hat", backend))


def _store(got: dict, errors: dict, tag: str, name: str, fn: Any) -> None:
    value = _guard(errors, f"{tag}_{name}", f"reading {name}", fn)
    if value is not None:
        got[name] = value


if __name__ == "__main__":  # pragma: no cover - run as a subprocess
    code = main(sys.argv[1:])
    sys.stderr.flush()
    os._exit(code)  # do not wait for threads or atexit handlers the checked code left behind
