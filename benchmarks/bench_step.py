"""Time one SGD training step of handgrad against PyTorch eager, JAX jit and scikit-learn.

One step = forward, loss, zero grad, backward, plain SGD update (lr 0.01) on one fixed
batch, float32, 2 BLAS/intra-op threads (``--threads``). Every framework is timed in the same process,
in interleaved rounds (each round times a block of steps of every framework in turn),
and the median per-step time over the rounds is reported. The "GEMM floor" is the
step's five matrix products alone (two forward, dJ/dW2, dJ/da1, dJ/dW1) at their exact
shapes, into preallocated outputs: no implementation of the step can do less work.
"hand-tuned NumPy" is the same step written by hand for the two layers (buffers, the
bias folded into the products, five products, lr and 1/n folded into the loss gradient):
the target for handgrad's general fast path on small networks.

"handgrad" is ``net.train_step(x, y, loss, lr)``, the step that ``fit``, ``handgrad
train`` and the scikit-learn estimators run; "handgrad five calls" is the same step as a
user writes it with the layer API (``forward``, ``zero_grad``, ``backward_loss``,
``SGD.step``), each call checked and dispatched on its own.

    python benchmarks/bench_step.py            # C1-C5, 7 rounds, about 70 s
    python benchmarks/bench_step.py --quick    # 3 short rounds, about 30 s
    python benchmarks/bench_step.py --configs C1,C3 --rounds 9 --markdown table.md
    python benchmarks/bench_step.py --baseline /tmp/base/src   # A/B against another handgrad tree

``--baseline DIR`` (a directory holding a ``handgrad`` package, e.g. the ``src`` of a
``git worktree add /tmp/base <commit>``) times that tree's handgrad in the same process,
interleaved with this one, as the rows "baseline handgrad" and "baseline five calls":
on a shared machine an A/B in one run is the only fair comparison.

JAX and scikit-learn are optional: their columns are left out when not installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

# OpenBLAS picks its kernel from the CPU unless told otherwise; an inherited
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE can force a slower one. Drop them for this
# process only (re-exec before NumPy is imported) and report the kernel that ran.
_FORCED = [k for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ]
if _FORCED and os.environ.get("HANDGRAD_BENCH_REEXEC") != "1":
    env = {k: v for k, v in os.environ.items() if k not in _FORCED}
    env["HANDGRAD_BENCH_REEXEC"] = "1"
    env["HANDGRAD_BENCH_UNSET"] = ",".join(f"{k}={os.environ[k]}" for k in _FORCED)
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

def _threads_arg(argv: list[str]) -> int:
    """--threads N, read before NumPy is imported (BLAS sizes its pool when it loads)."""
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv) and argv[i + 1].isdigit():
            return max(1, int(argv[i + 1]))
        if arg.startswith("--threads=") and arg.split("=", 1)[1].isdigit():
            return max(1, int(arg.split("=", 1)[1]))
    return 2


THREADS = _threads_arg(sys.argv[1:])
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")

import numpy as np  # noqa: E402

LR = 0.01


@dataclass(frozen=True)
class Config:
    key: str
    name: str
    n_in: int
    hidden: int
    n_out: int
    batch: int
    f: str
    g: str
    loss: str

    def label(self) -> str:
        return f"{self.key} {self.n_in}→{self.hidden}→{self.n_out} b{self.batch} {self.f}/{self.g}/{self.loss}"


CONFIGS = {
    "C1": Config("C1", "hw1-test", 20, 100, 50, 10, "relu", "identity", "mse"),
    "C2": Config("C2", "regression-1d", 1, 64, 1, 32, "5relu", "identity", "mse"),
    "C3": Config("C3", "mnist-mlp", 784, 128, 10, 64, "relu", "sigmoid", "bce"),
    "C4": Config("C4", "mnist-wide", 784, 1024, 10, 256, "tanh", "sigmoid", "bce"),
    "C5": Config("C5", "large", 1024, 4096, 1024, 512, "relu", "identity", "mse"),
}


def make_batch(cfg: Config, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((cfg.batch, cfg.n_in)).astype(np.float32)
    if cfg.loss == "bce":
        y = (rng.random((cfg.batch, cfg.n_out)) < 0.5).astype(np.float32)
    else:
        y = rng.standard_normal((cfg.batch, cfg.n_out)).astype(np.float32)
    return x, y


# ---------------------------------------------------------------------- handgrad
def handgrad_step(cfg: Config, x: np.ndarray, y: np.ndarray) -> Callable[[], None]:
    """The five steps as a user writes them with the layer API and the SGD optimizer."""
    from handgrad import MLP, SGD, make_loss

    net = MLP(cfg.n_in, [cfg.hidden], cfg.n_out, f=cfg.f, g=cfg.g, seed=0, dtype=np.float32)
    loss = make_loss(cfg.loss)
    opt = SGD(net, lr=LR)

    def step() -> None:
        net.forward(x)                # 1. forward
        net.zero_grad()               # 3. clear the gradients
        net.backward_loss(loss, y)    # 2 + 4. loss and backward (fused where the math allows)
        opt.step()                    # 5. update

    return step


def handgrad_fused_step(cfg: Config, x: np.ndarray, y: np.ndarray) -> Callable[[], None] | None:
    """The step through ``Sequential.train_step``, as fit, the CLI and the estimators run it."""
    from handgrad import MLP, make_loss

    net = MLP(cfg.n_in, [cfg.hidden], cfg.n_out, f=cfg.f, g=cfg.g, seed=0, dtype=np.float32)
    if not hasattr(net, "train_step"):
        return None
    loss = make_loss(cfg.loss)
    return lambda: net.train_step(x, y, loss, LR)


# ---------------------------------------------------------------------- another handgrad tree
BASELINE: list = []  # [the baseline tree's handgrad module], set by --baseline


def load_baseline(src: str) -> None:
    """Import the handgrad package under ``src`` as ``handgrad_baseline`` (a copy in a
    temporary directory: its modules import each other relatively, so the new name holds)."""
    import importlib
    import shutil
    import tempfile

    package = os.path.join(src, "handgrad")
    if not os.path.isfile(os.path.join(package, "__init__.py")):
        raise SystemExit(f"--baseline: no handgrad package in {src!r}")
    root = tempfile.mkdtemp(prefix="handgrad-baseline-")
    shutil.copytree(package, os.path.join(root, "handgrad_baseline"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, root)
    BASELINE.append(importlib.import_module("handgrad_baseline"))


def baseline_step(cfg: Config, x: np.ndarray, y: np.ndarray) -> Callable[[], None] | None:
    if not BASELINE:
        return None
    hg = BASELINE[0]
    net = hg.MLP(cfg.n_in, [cfg.hidden], cfg.n_out, f=cfg.f, g=cfg.g, seed=0, dtype=np.float32)
    loss, opt = hg.make_loss(cfg.loss), hg.SGD(net, lr=LR)

    def step() -> None:
        net.forward(x)
        net.zero_grad()
        net.backward_loss(loss, y)
        opt.step()

    return step


def baseline_fused_step(cfg: Config, x: np.ndarray, y: np.ndarray) -> Callable[[], None] | None:
    if not BASELINE or not hasattr(BASELINE[0].Sequential, "train_step"):
        return None
    hg = BASELINE[0]
    net = hg.MLP(cfg.n_in, [cfg.hidden], cfg.n_out, f=cfg.f, g=cfg.g, seed=0, dtype=np.float32)
    loss = hg.make_loss(cfg.loss)
    return lambda: net.train_step(x, y, loss, LR)


# ---------------------------------------------------------------------- PyTorch
def torch_step(cfg: Config, x: np.ndarray, y: np.ndarray) -> Callable[[], None] | None:
    try:
        import torch
        from torch import nn
    except ImportError:
        return None
    torch.set_num_threads(THREADS)

    class Scale(nn.Module):
        def __init__(self, c: float) -> None:
            super().__init__()
            self.c = c

        def forward(self, t):
            return t * self.c

    def act(name: str) -> list:
        return {"relu": [nn.ReLU()], "5relu": [nn.ReLU(), Scale(5.0)], "tanh": [nn.Tanh()],
                "sigmoid": [nn.Sigmoid()], "identity": []}[name]

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(cfg.n_in, cfg.hidden), *act(cfg.f), nn.Linear(cfg.hidden, cfg.n_out), *act(cfg.g))
    loss_fn = nn.BCELoss() if cfg.loss == "bce" else nn.MSELoss()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step() -> None:
        y_hat = model(xt)
        J = loss_fn(y_hat, yt)
        opt.zero_grad()
        J.backward()
        opt.step()

    return step


# ---------------------------------------------------------------------- JAX
def jax_step(cfg: Config, x: np.ndarray, y: np.ndarray) -> Callable[[], None] | None:
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    f = {"relu": jax.nn.relu, "5relu": lambda z: 5.0 * jax.nn.relu(z), "tanh": jnp.tanh}[cfg.f]
    rng = np.random.default_rng(0)
    b1, b2 = 1 / np.sqrt(cfg.n_in), 1 / np.sqrt(cfg.hidden)
    params = {
        "W1": jnp.asarray(rng.uniform(-b1, b1, (cfg.hidden, cfg.n_in)), jnp.float32),
        "b1": jnp.asarray(rng.uniform(-b1, b1, cfg.hidden), jnp.float32),
        "W2": jnp.asarray(rng.uniform(-b2, b2, (cfg.n_out, cfg.hidden)), jnp.float32),
        "b2": jnp.asarray(rng.uniform(-b2, b2, cfg.n_out), jnp.float32),
    }

    def loss_fn(p, xb, yb):
        z3 = f(xb @ p["W1"].T + p["b1"]) @ p["W2"].T + p["b2"]
        if cfg.loss == "bce":  # sigmoid + BCE, written from the logits as jax users do
            return jnp.mean(jnp.maximum(z3, 0) - z3 * yb + jnp.log1p(jnp.exp(-jnp.abs(z3))))
        return jnp.mean((z3 - yb) ** 2)

    @jax.jit
    def train(p, xb, yb):
        J, g = jax.value_and_grad(loss_fn)(p, xb, yb)
        return jax.tree_util.tree_map(lambda a, da: a - LR * da, p, g), J

    xj, yj = jnp.asarray(x), jnp.asarray(y)
    state = {"p": params}

    def step() -> None:
        state["p"], J = train(state["p"], xj, yj)
        J.block_until_ready()

    return step


# ---------------------------------------------------------------------- scikit-learn
def sklearn_step(cfg: Config, x: np.ndarray, y: np.ndarray) -> Callable[[], None] | None:
    try:
        import warnings

        from sklearn.neural_network import MLPClassifier, MLPRegressor
    except ImportError:
        return None
    act = {"relu": "relu", "5relu": "relu", "tanh": "tanh"}[cfg.f]  # no 5·ReLU in scikit-learn
    common = dict(hidden_layer_sizes=(cfg.hidden,), activation=act, solver="sgd", learning_rate_init=LR,
                  momentum=0.0, batch_size=cfg.batch, alpha=0.0, random_state=0)
    if cfg.loss == "bce":  # multilabel: sigmoid outputs with log-loss
        model = MLPClassifier(**common)
        target = y.astype(int)
    else:
        model = MLPRegressor(**common)
        target = y if y.shape[1] > 1 else y.ravel()

    def step(**first) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.partial_fit(x, target, **first)

    step(**({"classes": np.arange(cfg.n_out)} if cfg.loss == "bce" else {}))
    return step


# ---------------------------------------------------------------------- hand-tuned NumPy
def tuned_numpy_step(cfg: Config, x: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    """The step written by hand for these two layers in NumPy, tuned as far as we know how:
    every intermediate in a preallocated buffer, the bias folded into the products (weights
    stored transposed with the bias as one extra row; [x 1] and [a1 1] as buffers), the
    learning rate and the mean's 1/n folded into the loss gradient, sigmoid + BCE fused into
    p - y, dJ/dx skipped: five matrix products and about a dozen elementwise calls. Like the
    handgrad rows, it takes the batch in every step (a copy into [x 1]) and computes J."""
    rng = np.random.default_rng(1)
    N, n, m, K = cfg.batch, cfg.n_in, cfg.hidden, cfg.n_out
    dt = np.float32
    W1a = (rng.uniform(-1, 1, (n + 1, m)) / np.sqrt(n)).astype(dt)  # [W1ᵀ; b1ᵀ]
    W2a = (rng.uniform(-1, 1, (m + 1, K)) / np.sqrt(m)).astype(dt)  # [W2ᵀ; b2ᵀ]
    xa, a1a = np.ones((N, n + 1), dt), np.ones((N, m + 1), dt)       # [x 1], [a1 1]
    x_view, a1, W2 = xa[:, :n], a1a[:, :m], W2a[:m].T  # W2 (K, m) as a view
    z1, slope, dz1, zeros_m = np.empty((N, m), dt), np.empty((N, m), dt), np.empty((N, m), dt), np.zeros((N, m), dt)
    z3, g, tmp, zeros_k = np.empty((N, K), dt), np.empty((N, K), dt), np.empty((N, K), dt), np.zeros((N, K), dt)
    dW1a, dW2a = np.empty_like(W1a), np.empty_like(W2a)
    zero, one, half, five = (np.array(v, dt) for v in (0, 1, 0.5, 5))
    scale = np.array(LR / (N * K) * (1 if cfg.loss == "bce" else 2), dt)  # lr · the mean's 1/(N·K) (·2 for MSE)
    inv_size = 1.0 / (N * K)
    dot, add_reduce, vdot, f, bce = np.dot, np.add.reduce, np.vdot, cfg.f, cfg.loss == "bce"

    def step() -> float:
        np.copyto(x_view, x)
        dot(xa, W1a, out=z1)                              # z1 = [x 1][W1ᵀ; b1ᵀ]
        if f == "tanh":
            np.tanh(z1, out=a1)
            np.square(a1, out=slope)
            np.subtract(one, slope, out=slope)            # f'(z1) = 1 - a1²
        else:
            np.greater(z1, zero, out=slope)               # f'(z1) = 1[z1 > 0]
            np.maximum(z1, zeros_m, out=a1)
            if f == "5relu":
                np.multiply(a1, five, out=a1)
                np.multiply(slope, five, out=slope)
        dot(a1a, W2a, out=z3)                             # z3 = [a1 1][W2ᵀ; b2ᵀ]
        if bce:  # J = mean(max(z,0) - z·y + log1p(e^-|z|)); dJ/dz3 = (σ(z3) - y)/(N·K)
            np.abs(z3, out=tmp)
            np.negative(tmp, out=tmp)
            np.log1p(np.exp(tmp, out=tmp), out=tmp)
            J = (add_reduce(np.maximum(z3, zeros_k, out=g), None) - vdot(z3, y) + add_reduce(tmp, None)) * inv_size
            np.multiply(z3, half, out=g)                  # σ(z) = (1 + tanh(z/2))/2, stable
            np.tanh(g, out=g)
            np.multiply(g, half, out=g)
            np.add(g, half, out=g)
            np.subtract(g, y, out=g)
        else:    # J = mean((z3 - y)²); dJ/dz3 = 2(z3 - y)/(N·K)
            np.subtract(z3, y, out=g)
            J = vdot(g, g) * inv_size
        np.multiply(g, scale, out=g)                      # lr · dJ/dz3
        dot(a1a.T, g, out=dW2a)                           # lr · dJ/d[W2ᵀ; b2ᵀ]
        dot(g, W2, out=dz1)                                # lr · dJ/da1 (before W2 moves)
        np.multiply(dz1, slope, out=dz1)                  # lr · dJ/dz1
        dot(xa.T, dz1, out=dW1a)                          # lr · dJ/d[W1ᵀ; b1ᵀ]
        np.subtract(W2a, dW2a, out=W2a)
        np.subtract(W1a, dW1a, out=W1a)
        return float(J)

    return step


# ---------------------------------------------------------------------- GEMM floor
def gemm_floor_step(cfg: Config, x: np.ndarray, y: np.ndarray) -> Callable[[], None]:
    """The five matrix products of a step, at their exact shapes, into preallocated outputs."""
    rng = np.random.default_rng(1)
    N, n, m, K = cfg.batch, cfg.n_in, cfg.hidden, cfg.n_out
    W1 = rng.standard_normal((m, n)).astype(np.float32)
    W2 = rng.standard_normal((K, m)).astype(np.float32)
    a1 = np.empty((N, m), np.float32)
    z3 = np.empty((N, K), np.float32)
    dz3 = rng.standard_normal((N, K)).astype(np.float32)
    dz1 = np.empty((N, m), np.float32)
    dW1, dW2 = np.empty_like(W1), np.empty_like(W2)
    dot = np.dot

    def step() -> None:
        dot(x, W1.T, out=a1)        # z1 = x W1ᵀ
        dot(a1, W2.T, out=z3)       # z3 = a1 W2ᵀ
        dot(dz3.T, a1, out=dW2)     # dJ/dW2 = dz3ᵀ a1
        dot(dz3, W2, out=dz1)       # dJ/da1 = dz3 W2
        dot(dz1.T, x, out=dW1)      # dJ/dW1 = dz1ᵀ x

    return step


# ---------------------------------------------------------------------- timing
IMPLEMENTATIONS: list[tuple[str, Callable]] = [
    ("GEMM floor", gemm_floor_step),
    ("hand-tuned NumPy", tuned_numpy_step),
    ("handgrad", handgrad_fused_step),
    ("handgrad five calls", handgrad_step),
    ("baseline handgrad", baseline_fused_step),
    ("baseline five calls", baseline_step),
    ("PyTorch eager", torch_step),
    ("JAX jit", jax_step),
    ("scikit-learn partial_fit", sklearn_step),
]


def time_block(step: Callable[[], None], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t0) / n


def calibrate(step: Callable[[], None], target_s: float) -> int:
    """Steps per block so that one block takes about target_s (after a warm-up)."""
    for _ in range(3):
        step()
    n = 1
    while True:
        t = time_block(step, n) * n
        if t >= target_s / 4 or n >= 1 << 16:
            return max(1, int(n * target_s / max(t, 1e-9)))
        n *= 4


def run_config(cfg: Config, rounds: int, block_s: float, skip: set[str], stat: Callable = statistics.median) -> dict[str, float]:
    x, y = make_batch(cfg, np.random.default_rng(0))
    steps = {}
    for name, factory in IMPLEMENTATIONS:
        if name in skip:
            continue
        step = factory(cfg, x, y)
        if step is not None:
            steps[name] = step
    sizes = {name: calibrate(step, block_s) for name, step in steps.items()}
    times: dict[str, list[float]] = {name: [] for name in steps}
    order = np.random.default_rng(0)
    for _ in range(rounds):  # interleaved: every implementation once per round, in a shuffled order
        for name in order.permutation(list(steps)):
            times[name].append(time_block(steps[name], sizes[name]))
    SPREADS[cfg.key] = {name: max(ts) / min(ts) for name, ts in times.items()}
    return {name: stat(ts) for name, ts in times.items()}


SPREADS: dict[str, dict[str, float]] = {}  # per configuration and row: slowest round / fastest round


# ---------------------------------------------------------------------- report
def machine_report() -> list[str]:
    from threadpoolctl import threadpool_info

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [f"machine: {cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}",
             f"python {platform.python_version()}, numpy {np.__version__}"]
    for mod in ("torch", "jax", "sklearn"):
        try:
            lines[-1] += f", {mod} {__import__(mod).__version__}"
        except ImportError:
            pass
    for pool in threadpool_info():
        if pool["user_api"] != "blas":
            continue
        owner = "NumPy's" if "numpy" in pool["filepath"] else "also loaded"
        lines.append(f"BLAS ({owner}): {pool['internal_api']} {pool.get('version')}, "
                     f"kernel {pool.get('architecture') or '?'}, {pool['num_threads']} threads")
    unset = os.environ.get("HANDGRAD_BENCH_UNSET")
    if unset:
        lines.append(f"unset for this run: {unset}")
    return lines


def fmt_time(t: float) -> str:
    if t < 1e-3:
        return f"{t * 1e6:.1f} µs"
    if t < 1:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"


def fmt_rate(samples_per_s: float) -> str:
    if samples_per_s >= 1e6:
        return f"{samples_per_s / 1e6:.2f} M/s"
    return f"{samples_per_s / 1e3:.0f} k/s"


def table(results: dict[str, dict[str, float]]) -> list[str]:
    keys = list(results)
    names = [name for name, _ in IMPLEMENTATIONS if any(name in results[k] for k in keys)]
    head = "| | " + " | ".join(CONFIGS[k].label() for k in keys) + " |"
    lines = [head, "|---|" + "---:|" * len(keys)]
    for name in names:
        cells = []
        for k in keys:
            t = results[k].get(name)
            cells.append("–" if t is None else f"{fmt_time(t)} ({fmt_rate(CONFIGS[k].batch / t)})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| ratio (handgrad = 1) | " + " | ".join(k for k in keys) + " |")
    lines.append("|---|" + "---:|" * len(keys))
    best = "handgrad"
    for name in names:
        if name == best:
            continue
        cells = []
        for k in keys:
            r = results[k]
            cells.append("–" if name not in r or best not in r else f"{r[name] / r[best]:.2f}x")
        label = "handgrad / GEMM floor" if name == "GEMM floor" else f"{name} / handgrad"
        if name == "hand-tuned NumPy":
            label = "hand-tuned NumPy / handgrad (above 1: handgrad is faster)"
        if name == "GEMM floor":
            cells = ["–" if name not in results[k] else f"{results[k][best] / results[k][name]:.2f}x" for k in keys]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if SPREADS:
        lines.append("")
        lines.append("| spread (slowest round / fastest round) | " + " | ".join(keys) + " |")
        lines.append("|---|" + "---:|" * len(keys))
        for name in names:
            cells = ["–" if name not in SPREADS.get(k, {}) else f"{SPREADS[k][name]:.2f}" for k in keys]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run: 3 rounds of ~0.05 s blocks")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, e.g. C1,C3")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 7, quick 3)")
    parser.add_argument("--skip", default="", help="implementations to leave out, comma-separated")
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    parser.add_argument("--stat", choices=("median", "min"), default="median",
                        help="per-step time reported over the rounds (min: least disturbed by other load)")
    parser.add_argument("--threads", type=int, default=2,
                        help="BLAS threads for every contender (default 2; 1 is steadier on a busy machine)")
    parser.add_argument("--baseline", default=None, metavar="DIR",
                        help="also time the handgrad package in DIR (e.g. another checkout's src), interleaved")
    args = parser.parse_args(argv)
    if args.baseline:
        load_baseline(args.baseline)
    keys = [k.strip().upper() for k in args.configs.split(",") if k.strip()]
    unknown = [k for k in keys if k not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; known: {', '.join(CONFIGS)}")
    rounds = args.rounds or (3 if args.quick else 7)
    block_s = 0.05 if args.quick else 0.25
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    from threadpoolctl import threadpool_limits

    load0 = os.getloadavg()
    results = {}
    with threadpool_limits(limits=THREADS):
        header = machine_report()
        for line in header:
            print(line)
        print(f"float32, {THREADS} threads, lr {LR}, {args.stat} of {rounds} interleaved rounds", flush=True)
        for module, column in (("torch", "PyTorch"), ("jax", "JAX"), ("sklearn", "scikit-learn")):
            if importlib.util.find_spec(module) is None:
                print(f"note: {column} is not installed, so its column is left out: pip install 'handgrad[bench]'",
                      flush=True)
        for k in keys:
            t0 = time.perf_counter()
            results[k] = run_config(CONFIGS[k], rounds, block_s, skip, min if args.stat == "min" else statistics.median)
            print(f"  {CONFIGS[k].label()}: done in {time.perf_counter() - t0:.0f} s", flush=True)
    load1 = os.getloadavg()
    load = f"load average (1 min) before {load0[0]:.2f}, after {load1[0]:.2f} on {os.cpu_count()} CPUs"
    lines = ["", *table(results), "", load]
    print("\n".join(lines))
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write("\n".join([*header, f"float32, {THREADS} threads, {args.stat} of {rounds} interleaved rounds",
                                *lines, ""]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
