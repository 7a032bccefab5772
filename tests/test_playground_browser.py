"""The playground in a real browser: Debian's headless Chromium driven by Python's Playwright.

Skipped, with the reason, when chromium (``apt-get install chromium``) or the
``playwright`` package is missing. Playwright's own browser downloads are not used.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import handgrad as hg

CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
pytest.importorskip("uvicorn", reason="the playground extra is not installed")

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
XOR_SECONDS = 30  # the stated time for XOR to reach test loss < 0.05
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server():
    import uvicorn

    from handgrad.playground.server import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app({f"127.0.0.1:{port}"}), log_level="warning", lifespan="off", ws_max_size=65536)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    page.close()


def open_page(page, url, hash_=""):
    page.goto(url + hash_)
    page.wait_for_function("window.playground && window.playground.framesDrawn > 0", timeout=15000)
    return page


def trainer_threads():
    return [t for t in threading.enumerate() if t.name == "handgrad-playground-trainer"]


def state(page):
    return page.evaluate("window.playground.state")


def test_page_loads_without_console_errors(page, server, tmp_path):
    open_page(page, server)
    assert page.title() == "handgrad playground"
    assert page.locator(".node").count() == 7 + 4 + 2 + 1  # the features, 4 and 2 hidden neurons, the output
    assert page.locator("#edges line").count() == 2 * 4 + 4 * 2 + 2 * 1
    shot = tmp_path / "playground.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    assert page.errors == []


def test_xor_reaches_test_loss_below_005(page, server):
    open_page(page, server, "#dataset=xor&hidden=4,4&learning_rate=0.1&activation=tanh")
    page.click("#play")
    page.wait_for_function("window.playground.frame.test_loss !== null && window.playground.frame.test_loss < 0.05",
                           timeout=XOR_SECONDS * 1000)
    page.click("#play")
    page.wait_for_function("!window.playground.frame.playing")
    assert float(page.inner_text("#test_loss")) < 0.05
    assert not trainer_threads()  # paused: no training thread
    assert page.errors == []


def python_gradient(d, activation):
    """The same entry from a fresh hg.MLP given the page's weights and batch."""
    params = {k: np.array(v) for k, v in d["params"].items()}
    n_layers = len(params) // 2
    sizes = [params["W1"].shape[1]] + [params[f"W{k}"].shape[0] for k in range(1, n_layers + 1)]
    net = hg.MLP(sizes[0], sizes[1:-1], 1, f=activation, g="sigmoid", dtype=np.float64)
    for k, v in params.items():
        net.params[k][...] = v
    net.forward(np.array(d["batch"]["x"]))
    net.backward_loss(hg.BCELoss(), np.array(d["batch"]["y"]), zero_grad=True)
    t = d["target"]
    if t["kind"] == "W":
        return net.grads[f"dJ_dW{t['layer']}"][t["row"], t["col"]]
    return net.grads[f"dJ_db{t['layer']}"][t["row"]]


@pytest.mark.parametrize("what", ["weight", "neuron"])
def test_clicked_derivation_equals_python_backward(page, server, what):
    open_page(page, server, "#dataset=spiral&hidden=4,3&activation=tanh&features=x1,x2,sin_x1")
    for _ in range(3):
        page.click("#step")
    page.wait_for_function("window.playground.frame.epoch === 3")
    if what == "weight":
        page.locator('#edges line[data-layer="2"][data-row="1"][data-col="2"]').dispatch_event("click")
    else:
        page.locator('.node[data-layer="1"][data-row="3"]').click()
    page.wait_for_function("window.playground.lastDerivation !== null")
    d = page.evaluate("window.playground.lastDerivation")
    expected = python_gradient(d, "tanh")
    shown_chain, shown_backward = float(page.inner_text("#deriv-chain")), float(page.inner_text("#deriv-backward"))
    assert abs(shown_chain - expected) < 1e-6 and abs(shown_backward - expected) < 1e-6, (shown_chain, expected)
    assert len(d["batch"]["x"]) == 10 and expected != 0
    page.click("#verify")
    page.wait_for_function("window.playground.lastVerify !== null")
    assert "✓" in page.inner_text("#verify-result")
    assert page.errors == []


def test_url_round_trips_the_state(page, server, browser):
    hash_ = ("#problem=regression&dataset=multigauss&noise=10&train_ratio=70&batch_size=5&seed=42"
             "&features=x1,x2,x1_x2&hidden=3,5,2&activation=relu&learning_rate=0.01&regularization=l2"
             "&reg_rate=0.001&loss=mse")
    open_page(page, server, hash_)
    st = state(page)
    assert st["hidden"] == [3, 5, 2] and st["dataset"] == "multigauss" and st["regularization"] == "l2"
    assert page.input_value("#activation") == "relu" and page.input_value("#noise") == "10"
    page.select_option("#activation", "sigmoid")
    page.wait_for_function("location.hash.includes('activation=sigmoid')")
    url = page.url
    other = browser.new_page()
    open_page(other, url)
    assert state(other) == {**st, "activation": "sigmoid"}
    other.close()


def test_architecture_change_mid_training(page, server):
    open_page(page, server, "#dataset=circle&hidden=2")
    page.click("#play")
    page.wait_for_function("window.playground.frame.playing && window.playground.frame.updates > 100")
    page.click("#add-layer")
    page.wait_for_function("window.playground.frame.weights.length === 3 && window.playground.frame.playing")
    page.locator(".layer-head button[title='add a neuron']").first.click()
    page.wait_for_function("window.playground.frame.weights[0].W.length === 3")
    before = page.evaluate("window.playground.frame.updates")
    page.wait_for_function(f"window.playground.frame.updates > {before} + 100")
    assert page.locator("#edges line").count() == 2 * 3 + 3 * 2 + 2 * 1
    page.click("#play")
    page.wait_for_function("!window.playground.frame.playing")
    assert page.errors == []


def test_hostile_messages_are_refused_and_the_server_survives(page, server, browser):
    open_page(page, server)
    page.evaluate("""() => {
        const ws = window.playground.ws;
        ws.send('{"type": "config", "config": {"hidden": [100000000]}}');
        ws.send('not json at all');
        ws.send(JSON.stringify({type: "derive", target: {kind: "W", layer: 1, row: 99, col: 0}}));
        ws.send('x'.repeat(9000));
    }""")
    page.wait_for_function("window.playground.errors.length >= 4")
    errors = page.evaluate("window.playground.errors")
    assert any("too large" in e for e in errors) and any("not valid JSON" in e for e in errors)
    page.click("#step")
    page.wait_for_function("window.playground.frame.epoch === 1")  # the same session still trains
    other = browser.new_page()
    open_page(other, server)  # and the server serves new pages
    assert other.evaluate("window.playground.errors") == []
    other.close()


def test_closed_tab_stops_its_training_loop(browser, server):
    page = browser.new_page()
    open_page(page, server)
    page.click("#play")
    page.wait_for_function("window.playground.frame.playing")
    assert trainer_threads()
    page.close()
    deadline = time.monotonic() + 5
    while trainer_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not trainer_threads()


def test_walkthrough_shows_the_five_steps(page, server):
    open_page(page, server, "#hidden=2")
    page.click("#walk")
    page.wait_for_function("window.playground.lastWalk !== null")
    seen = [page.inner_text("#walk-pos")]
    for _ in range(4):
        page.click("#walk-next")
        seen.append(page.inner_text("#walk-pos"))
    assert [re.sub(r".*: ", "", s) for s in seen] == ["forward", "loss", "clear", "backward", "update"]
    assert page.errors == []


@pytest.mark.slow
def test_page_works_from_an_installed_wheel(tmp_path, browser):
    """Build the wheel, install it into a fresh venv, start `handgrad playground` from there and load the page.

    The venv borrows the test environment's dependencies (NumPy, Starlette, uvicorn) through a
    .pth line, so the test needs no network; handgrad itself comes from the wheel alone."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q",
                    "-w", str(wheels)], check=True, timeout=300)
    wheel = next(wheels.glob("handgrad-*.whl"))
    assert any(n.endswith("playground/static/app.js") for n in zipfile.ZipFile(wheel).namelist())
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    deps = [os.path.dirname(os.path.dirname(m.__file__)) for m in map(__import__, ("numpy", "starlette", "uvicorn"))]
    Path(site, "zz_test_deps.pth").write_text("\n".join(sorted(set(deps))) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True, timeout=300)
    where = subprocess.run([str(py), "-c", "import handgrad; print(handgrad.__file__)"], capture_output=True,
                           text=True, check=True, cwd=tmp_path).stdout
    assert where.startswith(str(venv)), where
    proc = subprocess.Popen([str(venv / "bin" / "handgrad"), "playground", "--no-browser", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    line = proc.stdout.readline()
    try:
        url = re.search(r"http://\S+", line).group(0)
        page = browser.new_page()
        open_page(page, url)
        assert page.locator(".node").count() == 14
        page.close()
    except Exception:
        proc.terminate()
        pytest.fail(f"the installed command printed {line!r} then {proc.communicate(timeout=10)[0]!r}")
    finally:
        proc.terminate()
        proc.wait(10)


def test_downloads_the_model_and_the_derivation(page, server, tmp_path):
    from handgrad.io import load_model

    open_page(page, server, "#dataset=xor&hidden=3")
    page.click("#step")
    page.wait_for_function("window.playground.frame.epoch === 1")
    with page.expect_download() as info:
        page.click("#download-model")
    path = tmp_path / "model.safetensors"
    info.value.save_as(str(path))
    net, meta = load_model(path)
    assert [tuple(p.shape) for p in net.params.values()] == [(3, 2), (3,), (1, 3), (1,)]
    W1 = np.array(page.evaluate("window.playground.frame.weights[0].W"))
    np.testing.assert_allclose(net.params["W1"], W1)
    page.locator('.node[data-layer="2"][data-row="0"]').click()
    page.wait_for_function("window.playground.lastDerivation !== null")
    for button, marker in (("#download-md", "## Chain of Jacobians"), ("#download-tex", "\\begin{document}")):
        with page.expect_download() as info:
            page.click(button)
        text = Path(info.value.path()).read_text(encoding="utf-8")
        assert marker in text and page.evaluate("window.playground.lastDerivation.chain.toPrecision(12)") in text
    assert page.errors == []


@pytest.mark.slow
def test_benchmark_prints_its_table():
    """benchmarks/bench_playground.py runs end to end (it measures speed; this checks only that it reports)."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_playground.py"), "--seconds", "0.3"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    for expected in ("| handgrad, in process", "| handgrad, served while the page plays |",
                     "| plain JavaScript loop in headless Chromium |", "max |ΔW| = ", "frames/s drawn",
                     "CPU in"):
        assert expected in done.stdout, expected
    diff = float(re.search(r"max \|ΔW\| = (\S+)", done.stdout).group(1))
    assert diff < 1e-12  # the JavaScript loop computes what handgrad computes


@pytest.mark.parametrize("preset, expected", [
    ("hw11", {"problem": "regression", "dataset": "plane", "activation": "5relu", "hidden": [4], "loss": "mse"}),
    ("hw12", {"problem": "classification", "dataset": "gauss", "activation": "tanh", "hidden": [4], "loss": "bce"}),
])
def test_homework_presets(page, server, preset, expected):
    open_page(page, server)
    page.select_option("#preset", preset)
    page.wait_for_function(f"window.playground.state.activation === {expected['activation']!r} && "
                           "window.playground.frame.weights.length === 2")
    st = state(page)
    assert {k: st[k] for k in expected} == expected
    for _ in range(5):
        page.click("#step")
    page.wait_for_function("window.playground.frame.epoch === 5")
    assert page.evaluate("window.playground.frame.test_loss") < 0.1
    assert page.errors == []
