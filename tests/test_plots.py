"""plots: every figure is written, non-empty, in the requested format and size, and shows
what it says it shows."""

from __future__ import annotations

import json
import re
import struct

import numpy as np
import pytest

import handgrad as hg
from handgrad import plots
from handgrad.explain import build_network


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return struct.unpack(">II", data[16:24])


def svg_size_pt(path) -> tuple[float, float]:
    head = path.read_text(encoding="utf-8")[:3000]
    assert "<svg" in head, "not an SVG file"
    w = re.search(r'width="([\d.]+)pt"', head).group(1)
    h = re.search(r'height="([\d.]+)pt"', head).group(1)
    return float(w), float(h)


def test_activation_figure_shows_all_four_and_their_derivatives(tmp_path):
    res = plots.plot_activations(tmp_path / "act.png", size=(8, 4), dpi=50)
    assert png_size(res.path) == (400, 200) == res.size_px
    labels = {"GELU", "LeakyReLU(0.01)", "ReLU", "Tanh"}
    assert labels | {f"{k}′" for k in labels} == set(res.series)
    x = res.series["Tanh′"][0]
    for spec, label in (("gelu", "GELU"), ("leaky_relu", "LeakyReLU(0.01)"), ("relu", "ReLU"), ("tanh", "Tanh")):
        layer = hg.make_activation(spec)
        np.testing.assert_allclose(res.series[f"{label}′"][1], np.asarray(layer.derivative(x[None, :]))[0])
    np.testing.assert_allclose(res.series["Tanh′"][1], 1 - np.tanh(x) ** 2, atol=1e-6)  # not 1 - tanh(x²)
    d_leaky = res.series["LeakyReLU(0.01)′"][1]
    assert set(np.unique(d_leaky)) == {0.01, 1.0}


def test_svg_output_and_size(tmp_path):
    res = plots.plot_activations(tmp_path / "act.svg", ["relu", "5relu"], size=(6, 3))
    assert res.format == "svg" and svg_size_pt(res.path) == (432.0, 216.0)  # 72 pt per inch
    assert "5·ReLU" in res.series


def test_softmax_plot_approaches_one_hot(tmp_path, rng):
    x = rng.standard_normal(5)
    res = plots.plot_softmax(tmp_path / "soft.png", x, betas=(0.5, 2, 10, 50), size=(9, 3), dpi=60)
    assert png_size(res.path) == (540, 180)
    d = res.info["distance_to_onehot"]
    assert d[0.5] > d[2] > d[10] > d[50]
    np.testing.assert_array_equal(res.series["arg max (one-hot)"][1], np.eye(5)[np.argmax(x)])
    beta, value = res.series["soft max value"]
    assert value[-1] == pytest.approx(x.max(), abs=1e-3) and value[0] < x.max()


class FakeHistory:
    def __init__(self, records, best_epoch):
        self.records, self.best_epoch = records, best_epoch


@pytest.mark.parametrize("kind", ["list", "object", "columns", "json", "csv", "numbers"])
def test_loss_curve_accepts_histories(tmp_path, kind):
    records = [{"epoch": i + 1, "loss": 2.0 / (i + 1), "val_loss": 2.5 / (i + 1)} for i in range(12)]
    history = {
        "list": records,
        "object": FakeHistory(records, 7),
        "columns": {"loss": [r["loss"] for r in records], "val_loss": [r["val_loss"] for r in records]},
        "numbers": [r["loss"] for r in records],
    }.get(kind)
    if kind == "json":
        history = tmp_path / "h.json"
        history.write_text(json.dumps({"records": records, "best_epoch": 3}), encoding="utf-8")
    if kind == "csv":
        history = tmp_path / "h.csv"
        history.write_text("epoch,loss,val_loss\n" + "\n".join(f"{r['epoch']},{r['loss']},{r['val_loss']}"
                                                               for r in records), encoding="utf-8")
    res = plots.plot_loss_curve(history, tmp_path / "loss.png", size=(4, 3), dpi=50)
    assert png_size(res.path) == (200, 150) and res.path.stat().st_size > 2000
    np.testing.assert_allclose(res.series["training loss"][1], [r["loss"] for r in records])
    assert ("validation loss" in res.series) == (kind != "numbers")


def test_loss_curve_errors(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        plots.plot_loss_curve([], tmp_path / "l.png")
    with pytest.raises(ValueError, match="'loss'"):
        plots.plot_loss_curve([{"acc": 1.0}], tmp_path / "l.png")
    with pytest.raises(ValueError, match="image format"):
        plots.plot_loss_curve([1.0], tmp_path / "l.jpg")
    with pytest.raises(ValueError, match="size must be"):
        plots.plot_loss_curve([1.0], tmp_path / "l.png", size=(0, 3))
    with pytest.raises(FileNotFoundError):
        plots.plot_loss_curve(tmp_path / "none.json", tmp_path / "l.png")


def test_decision_boundary_of_a_trained_classifier(tmp_path, rng):
    X = rng.standard_normal((200, 2))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    net, loss = build_network("classification-relu", n=2, m=8, K=1, seed=rng)
    opt = hg.SGD(net, lr=1.0)
    for _ in range(200):
        net.zero_grad()
        net.forward(X)
        net.backward_loss(loss, y[:, None].astype(float))
        opt.step()
    res = plots.plot_decision_boundary(net, X, y, tmp_path / "db.png", resolution=60, size=(4, 4), dpi=50)
    assert png_size(res.path) == (200, 200)
    assert res.info["accuracy"] > 0.95 and res.info["classes_in_grid"] == [0, 1]
    grid, classes = res.series["regions"]
    np.testing.assert_array_equal(classes, (np.asarray(net.forward(grid))[:, 0] >= 0.5).astype(int))
    res = plots.plot_decision_boundary(lambda Z: (Z[:, 0] > 0).astype(int), X, y, tmp_path / "f.svg", resolution=20)
    assert res.format == "svg"
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        plots.plot_decision_boundary(net, X[:, :1], y, tmp_path / "db.png")
    with pytest.raises(ValueError, match="labels for 200 rows"):
        plots.plot_decision_boundary(net, X, y[:5], tmp_path / "db.png")


def test_linear_maps_and_the_collapsed_stack(tmp_path):
    res = plots.plot_linear_maps(tmp_path / "maps.png", seed=1, size=(9, 7), dpi=40)
    assert png_size(res.path) == (360, 280)
    assert res.info["stack_vs_affine_max_error"] < 1e-12
    assert any("translation" in t and "NOT linear" in t for t in res.titles)
    assert any(t.startswith("tanh layer") for t in res.titles) and any(t.startswith("ReLU layer") for t in res.titles)
    for name, (A, t) in plots.linear_maps().items():
        moved = np.zeros(2) @ A.T + t
        assert np.any(moved != 0) == ("translation" in name)  # only the translation moves the origin


def test_cli_plot(tmp_path, capsys):
    from test_explain import run_cli

    out = tmp_path / "a.png"
    assert run_cli(["plot", "activations", "-o", str(out), "--size", "5x3", "--dpi", "40"]) == 0
    assert png_size(out) == (200, 120)
    assert run_cli(["plot", "softmax", "--x", "1,2,3", "-o", str(tmp_path / "s.svg")]) == 0
    hist = tmp_path / "h.json"
    hist.write_text(json.dumps([{"loss": 1.0}, {"loss": 0.5}]), encoding="utf-8")
    assert run_cli(["plot", "loss-curve", str(hist), "-o", str(tmp_path / "l.png")]) == 0
    assert run_cli(["plot", "linear-maps", "-o", str(tmp_path / "m.png"), "--dpi", "30"]) == 0
    assert run_cli(["plot", "activations", "--names", "rleu", "-o", str(out)]) == 2
    assert run_cli(["plot", "softmax", "-o", str(tmp_path / "s.txt")]) == 2
    assert run_cli(["plot", "decision-boundary", "--model", str(tmp_path / "none.npz"), "--data", "moons"]) == 2
    capsys.readouterr()


def test_cli_decision_boundary_of_a_saved_network(tmp_path, capsys, rng):
    from test_explain import run_cli

    from handgrad.io import save_model

    net, _ = build_network("classification-relu", n=2, m=8, K=1, seed=rng)
    model = save_model(tmp_path / "model.safetensors", net)
    out = tmp_path / "db.png"
    assert run_cli(["plot", "decision-boundary", "--model", str(model), "--data", "moons", "-o", str(out),
                    "--size", "4x4", "--dpi", "40"]) == 0
    assert png_size(out) == (160, 160)
    assert run_cli(["plot", "decision-boundary", "--model", str(model), "--data", "seed", "-o", str(out)]) == 2
    capsys.readouterr()


def test_derivative_plot_one_panel_per_function_jumps_as_gaps(tmp_path):
    res = plots.plot_activations(tmp_path / "act.png", ["relu", "leaky_relu", "tanh"], size=(9, 5), dpi=40)
    jumps = {j[0]: j for j in res.info["jumps"]}
    assert set(jumps) == {"ReLU", "LeakyReLU(0.01)"}  # tanh′ is smooth
    label, x0, left, right, value = jumps["ReLU"]
    assert x0 == 0.0 and (left, right, value) == (0.0, 1.0, 0.0)  # ReLU′(0) = 0, as PyTorch
    assert jumps["LeakyReLU(0.01)"][2:] == (0.01, 1.0, 0.01)
    assert np.isnan(plots._gaps(*res.series["ReLU′"])).sum() == 1
