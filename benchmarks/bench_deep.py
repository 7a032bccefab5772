"""One SGD step of MLPs with two hidden layers: handgrad's whole-step closure against its
per-layer calls and PyTorch eager, in the same run.

"handgrad" is ``net.train_step(x, y, loss, lr)`` (``fit``'s step), which runs the whole step as
one closure (``handgrad.fast.step.bind_deep_step``); "handgrad per-layer calls" is the same
``train_step`` with that closure switched off, so each layer's kernel is called and checked on
its own, as before the closure existed; "PyTorch eager" is the same network, loss and SGD.
float32, fixed batch, lr 0.01; each round resets the parameters (a fixed batch trained for
long drives the gradients into subnormal floats, which slows every contender). Fastest of
the interleaved rounds.

    python benchmarks/bench_deep.py                 # 2 BLAS threads, 9 rounds
    python benchmarks/bench_deep.py --threads 1 --rounds 15
"""

from __future__ import annotations

import argparse
import os
import sys
import time

THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv[:-1] else 2
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)
# PyTorch's OpenMP threads spin for a while after each step; on 2 cores that steals them from
# the next contender's BLAS threads, so each round pauses after PyTorch's block (waiting
# passively instead, OMP_WAIT_POLICY=PASSIVE, made PyTorch's own steps 2.5x slower).

import numpy as np  # noqa: E402

LR = 0.01
CONFIGS = {  # name: (n_in, hidden, n_out, batch, f, g, loss)
    "D1 20→100→100→50 b10 relu/mse": (20, [100, 100], 50, 10, "relu", "identity", "mse"),
    "D2 8→64→64→1 b32 tanh/mse": (8, [64, 64], 1, 32, "tanh", "identity", "mse"),
    "D3 784→256→128→10 b64 relu/bce": (784, [256, 128], 10, 64, "relu", "sigmoid", "bce"),
}


def batch(cfg: tuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n_in, _, n_out, n, _, _, loss = cfg
    x = rng.standard_normal((n, n_in)).astype(np.float32)
    y = (rng.random((n, n_out)) < 0.5).astype(np.float32) if loss == "bce" else \
        rng.standard_normal((n, n_out)).astype(np.float32)
    return x, y


def handgrad_steps(cfg: tuple, x: np.ndarray, y: np.ndarray, closure: bool):
    import handgrad.fast.plan as plan_module
    from handgrad import MLP, make_loss

    n_in, hidden, n_out, _, f, g, loss_name = cfg
    real = plan_module.bind_deep_step
    if not closure:  # plans built now get no whole-step closure: the per-layer calls
        plan_module.bind_deep_step = lambda plan: None
    try:
        net = MLP(n_in, hidden, n_out, f=f, g=g, seed=0, dtype=np.float32)
        loss = make_loss(loss_name)
        net.train_step(x, y, loss, LR)  # builds the plan
    finally:
        plan_module.bind_deep_step = real
    assert (net._plan.step is not None) == closure
    start = {key: value.copy() for key, value in net.params.items()}

    def reset() -> None:
        for key, value in net.params.items():
            value[...] = start[key]

    return (lambda: net.train_step(x, y, loss, LR)), reset


def torch_steps(cfg: tuple, x: np.ndarray, y: np.ndarray):
    try:
        import torch
        from torch import nn
    except ImportError:
        return None
    torch.set_num_threads(THREADS)
    n_in, hidden, n_out, _, f, g, loss_name = cfg
    torch.manual_seed(0)
    sizes, layers = [n_in, *hidden], []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU() if f == "relu" else nn.Tanh()]
    layers.append(nn.Linear(sizes[-1], n_out))
    if g == "sigmoid":
        layers.append(nn.Sigmoid())
    model = nn.Sequential(*layers)
    loss_fn = nn.BCELoss() if loss_name == "bce" else nn.MSELoss()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    start = {k: v.clone() for k, v in model.state_dict().items()}

    def step() -> None:
        J = loss_fn(model(xt), yt)
        opt.zero_grad()
        J.backward()
        opt.step()

    return step, (lambda: model.load_state_dict(start))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads (set before NumPy loads)")
    args = parser.parse_args(argv)
    try:
        from threadpoolctl import threadpool_info
        blas = ", ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads)"
                         for i in threadpool_info() if i.get("user_api") == "blas")
    except ImportError:
        blas = "unknown (threadpoolctl not installed)"
    print(f"BLAS: {blas}; float32, lr {LR}, fastest of {args.rounds} interleaved rounds\n")
    rows: dict[str, dict[str, float]] = {}
    for name, cfg in CONFIGS.items():
        rng = np.random.default_rng(0)
        x, y = batch(cfg, rng)
        contenders = {"handgrad": handgrad_steps(cfg, x, y, True),
                      "handgrad per-layer calls": handgrad_steps(cfg, x, y, False)}
        torch_pair = torch_steps(cfg, x, y)
        if torch_pair is not None:
            contenders["PyTorch eager"] = torch_pair
        n = max(20, int(2000 * 200 / (cfg[0] * cfg[3] + 200)))  # fewer repetitions for the large network
        best = {key: float("inf") for key in contenders}
        for _ in range(args.rounds):
            for key, (step, reset) in contenders.items():
                reset()
                step()
                t0 = time.perf_counter()
                for _ in range(n):
                    step()
                best[key] = min(best[key], (time.perf_counter() - t0) / n)
                if key == "PyTorch eager":
                    time.sleep(0.3)
        rows[name] = best
        print(f"  {name}: done")
    keys = ["handgrad", "handgrad per-layer calls", "PyTorch eager"]
    print("\n| per step | " + " | ".join(rows) + " |")
    print("|---|" + "---:|" * len(rows))
    for key in keys:
        cells = [f"{r[key] * 1e6:.1f} µs" if key in r else "–" for r in rows.values()]
        print(f"| {key} | " + " | ".join(cells) + " |")
    for key in keys[1:]:
        cells = [f"{r[key] / r['handgrad']:.2f}x" if key in r else "–" for r in rows.values()]
        print(f"| {key} / handgrad | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
