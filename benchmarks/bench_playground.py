"""Steps per second of the playground's trainer against a plain JavaScript loop in headless Chromium.

The network is 2-4-4-1 (x1, x2 -> tanh -> tanh -> sigmoid, BCE) on the spiral, batch 10,
plain SGD. Printed:

- handgrad, in process: Session.train_update in a loop (no server);
- handgrad, served: updates per second while the page plays (the trainer thread, with the
  server sending frames and Chromium drawing them), the frames per second the page drew,
  the longest gap of a 10 ms timer in the page (input delay), and the server process's CPU
  time over 2 s while paused;
- JavaScript: benchmarks/bench_playground_loop.js, the same network, batches and starting
  weights, per-sample loops over Float64Arrays, in the same Chromium; its weights after 200
  updates are compared with handgrad's to show it computes the same thing.

With ``--tf-nn FILE``, also TensorFlow Playground's own network code: its ``src/nn.ts``
compiled to one script that defines a global ``tfnn`` (for example
``esbuild src/nn.ts --format=iife --global-name=tfnn --outfile=nn.js``; that code is not part
of handgrad). The loop below mirrors the training part of its ``oneStep``: forwardProp and
backProp per point, updateWeights every batch (its network: tanh output, squared error).

Needs the playground extra, playwright and Debian's chromium (/usr/bin/chromium).
Usage: python benchmarks/bench_playground.py [--seconds 3] [--tf-nn nn.js]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np

from handgrad.playground.protocol import Config
from handgrad.playground.session import Session

HERE = Path(__file__).resolve().parent
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
CONFIG = Config(dataset="spiral", features=["x1", "x2"], hidden=[4, 4], activation="tanh", batch_size=10,
                learning_rate=0.03, loss="bce")


def handgrad_in_process(seconds: float) -> float:
    s = Session(Config(**CONFIG.to_dict()))
    for _ in range(200):
        s.train_update()  # warm up the fast path's buffers
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(100):
            s.train_update()
        n += 100
    return n / (time.perf_counter() - t0)


def start_server():
    import uvicorn

    from handgrad.playground.server import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app({f"127.0.0.1:{port}"}), log_level="warning", lifespan="off"))
    threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not srv.started:
        time.sleep(0.05)
    return srv, f"http://127.0.0.1:{port}/"


def served(browser, url: str, seconds: float) -> dict:
    page = browser.new_page()
    c = CONFIG
    page.goto(url + f"#dataset={c.dataset}&hidden=4,4&activation=tanh&batch_size=10&features=x1,x2&loss=bce")
    page.wait_for_function("window.playground && window.playground.framesDrawn > 0")
    page.evaluate("""() => { window.maxGap = 0; let last = performance.now();
        setInterval(() => { const t = performance.now(); window.maxGap = Math.max(window.maxGap, t - last); last = t; }, 10); }""")
    page.click("#play")
    page.wait_for_function("window.playground.frame.playing && window.playground.frame.updates > 0")
    f0, u0, t0 = page.evaluate("[window.playground.framesDrawn, window.playground.frame.updates, performance.now()]")
    page.evaluate("() => { window.maxGap = 0; }")
    time.sleep(seconds)
    f1, u1, t1, gap = page.evaluate("[window.playground.framesDrawn, window.playground.frame.updates, "
                                    "performance.now(), window.maxGap]")
    page.click("#play")
    page.wait_for_function("!window.playground.frame.playing")
    time.sleep(0.5)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    time.sleep(2)
    cpu = time.process_time() - cpu0
    page.close()
    dt = (t1 - t0) / 1000
    return {"ups": (u1 - u0) / dt, "fps": (f1 - f0) / dt, "gap_ms": gap, "paused_cpu": cpu,
            "paused_wall": time.perf_counter() - wall0}


def javascript(browser, seconds: float) -> tuple[float, float]:
    s = Session(Config(**CONFIG.to_dict()))
    params = [{"W": layer.params["W"].tolist(), "b": layer.params["b"].tolist()} for layer in s.net.linears]
    X, Y = s.X_train.tolist(), s.y_train[:, 0].tolist()
    page = browser.new_page()
    page.add_script_tag(path=str(HERE / "bench_playground_loop.js"))
    check = page.evaluate("([p, X, Y]) => benchLoop(p, X, Y, 10, 0.03, 200, 0)", [params, X, Y])
    for _ in range(200):
        s.train_update()
    diff = max(float(np.abs(np.array(js["W"]) - layer.params["W"].ravel()).max())
               for js, layer in zip(check["params"], s.net.linears))
    page.evaluate("([p, X, Y]) => benchLoop(p, X, Y, 10, 0.03, 0, 0.5)", [params, X, Y])  # JIT warm-up
    run = page.evaluate("([p, X, Y, s]) => benchLoop(p, X, Y, 10, 0.03, 0, s)", [params, X, Y, seconds])
    page.close()
    return run["updates"] / run["seconds"], diff


TF_LOOP = """([X, Y, bs, seconds]) => {
    const nn = tfnn, net = nn.buildNetwork([2, 4, 4, 1], nn.Activations.TANH, nn.Activations.TANH, null, ["x1", "x2"]);
    const run = (secs) => {
        let updates = 0, i = 0;
        const t0 = performance.now(), stop = t0 + 1000 * secs;
        while (true) {
            nn.forwardProp(net, X[i]);
            nn.backProp(net, Y[i], nn.Errors.SQUARE);
            i = (i + 1) % X.length;
            if (i % bs === 0) {
                nn.updateWeights(net, 0.03, 0);
                updates++;
                if ((updates & 255) === 0 && performance.now() > stop) break;
            }
        }
        return updates / ((performance.now() - t0) / 1000);
    };
    run(0.5);  // JIT warm-up
    return run(seconds);
}"""


def tensorflow_playground(browser, script: str, seconds: float) -> float:
    s = Session(Config(**CONFIG.to_dict()))
    X, Y = s.X_train.tolist(), (2 * s.y_train[:, 0] - 1).tolist()  # its labels are ±1
    page = browser.new_page()
    page.add_script_tag(path=script)
    rate = page.evaluate(TF_LOOP, [X, Y, 10, seconds])
    page.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per measurement (default 3)")
    parser.add_argument("--tf-nn", metavar="FILE", help="TensorFlow Playground's nn.ts compiled to a script with a "
                        "global 'tfnn' (see the module docstring)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("bench_playground: Debian's chromium is needed (apt-get install chromium)")
    inproc = handgrad_in_process(args.seconds)
    srv, url = start_server()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        version = browser.version
        live = served(browser, url, args.seconds)
        js, diff = javascript(browser, args.seconds)
        tf = tensorflow_playground(browser, args.tf_nn, args.seconds) if args.tf_nn else None
        browser.close()
    srv.should_exit = True
    print("2-4-4-1 (tanh, tanh, sigmoid; BCE), spiral, batch 10, SGD lr 0.03, float64")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"Chromium {version}; load average {os.getloadavg()[0]:.2f}")
    print()
    print("| what | updates/s |")
    print("|---|---|")
    print(f"| handgrad, in process (Session.train_update loop) | {inproc:,.0f} |")
    print(f"| handgrad, served while the page plays | {live['ups']:,.0f} |")
    print(f"| plain JavaScript loop in headless Chromium | {js:,.0f} |")
    if tf is not None:
        print(f"| TensorFlow Playground's nn.js in headless Chromium | {tf:,.0f} |")
    print()
    print(f"JS loop vs handgrad after 200 updates from the same weights: max |ΔW| = {diff:.2e}")
    print(f"while playing: {live['fps']:.1f} frames/s drawn; longest gap of a 10 ms page timer {live['gap_ms']:.0f} ms")
    print(f"paused: the server process used {live['paused_cpu']:.3f} s CPU in {live['paused_wall']:.1f} s")


if __name__ == "__main__":
    main()
