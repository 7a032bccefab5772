"""graph: network and expression graphs, hand-written local derivatives, DOT and rendering."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import handgrad as hg
from handgrad import graph as G
from handgrad.explain import build_network


def test_two_layer_network_graph_has_the_seed_nodes_and_edges():
    net, loss = build_network("regression", n=3, m=4, K=2)
    g = G.network_graph(net, loss)
    assert set(g.labels("variable")) == {"x", "z1", "z2", "z3", "ŷ", "y", "J"}
    assert set(g.labels("parameter")) == {"W1", "b1", "W2", "b2"}
    assert g.labels("function") == ["Linear(3→4)", "5·ReLU", "Linear(4→2)", "Identity", "squared error loss"]
    edges = set(g.edge_labels("forward"))
    assert {("x", "Linear(3→4)", "(N, 3)"), ("W1", "Linear(3→4)", "(4, 3)"), ("b1", "Linear(3→4)", "(4,)"),
            ("Linear(3→4)", "z1", "(N, 4)"), ("z1", "5·ReLU", "(N, 4)"), ("5·ReLU", "z2", "(N, 4)"),
            ("z2", "Linear(4→2)", "(N, 4)"), ("W2", "Linear(4→2)", "(2, 4)"), ("Linear(4→2)", "z3", "(N, 2)"),
            ("Identity", "ŷ", "(N, 2)"), ("ŷ", "squared error loss", "(N, 2)"), ("y", "squared error loss", "(N, 2)"),
            ("squared error loss", "J", "scalar")} <= edges
    assert len(edges) == 15 and g.edge_labels("backward") == []
    # boxes for functions, circles for variables in the DOT text
    dot = g.to_dot()
    assert '[label="5·ReLU", shape=box' in dot and '[label="z1", shape=circle' in dot


def test_network_graph_backward_edges_carry_the_jacobians():
    net, loss = build_network("classification-bce")
    back = G.network_graph(net, loss, grad=True).edge_labels("backward")
    by_pair = {(a, b): label for a, b, label in back}
    assert "∂z2/∂z1: diagonal" in by_pair[("z2", "z1")] and "1 − tanh²(z1_i)" in by_pair[("z2", "z1")]
    assert by_pair[("z3", "W2")] == "dJ/dW2 = (dJ/dz3)ᵀ z2"
    assert "∂ŷ/∂z3: diagonal" in by_pair[("ŷ", "z3")]
    assert by_pair[("J", "ŷ")].startswith("dJ/dŷ")
    assert 'style=dashed' in G.network_graph(net, loss, grad=True).to_dot()


def test_expression_graph_matches_its_expression():
    exprs = G.parse_expressions("a = x*y + x; w = sigmoid(a) * y", {"x": 1.5, "y": -2.0})
    assert list(exprs) == ["a", "w"]
    g = G.expression_graph(exprs["w"])
    assert sorted(g.labels("variable")) == sorted(["x", "y", "x · y", "a", "σ(a)", "w"])
    assert sorted(g.labels("function")) == sorted(["×", "+", "sigmoid", "×"])
    edges = [(a, b) for a, b, _ in g.edge_labels()]
    ids = {n.id: n.label for n in g.nodes}
    # every op box has its inputs in and one output out
    for node in g.nodes:
        if node.kind == "function":
            ins = [e.src for e in g.edges if e.dst == node.id]
            outs = [e.dst for e in g.edges if e.src == node.id]
            assert len(outs) == 1 and len(ins) == (1 if ids[node.id] == "sigmoid" else 2)
    assert ("x", "+") in edges and ("y", "×") in edges and ("a", "sigmoid") in edges
    x, y = 1.5, -2.0
    a = x * y + x
    assert float(exprs["a"].value) == pytest.approx(a)
    assert float(exprs["w"].value) == pytest.approx(y / (1 + np.exp(-a)))
    assert all(label == "" for _, _, label in g.edge_labels())  # scalars: no "()" labels


def test_expression_api_builds_the_same_graph_as_the_text():
    x, y = G.var("x", 1.5), G.var("y", -2.0)
    a = x * y + x
    a.name = "a"
    w = G.sigmoid(a) * y
    w.name = "w"
    parsed = G.parse_expressions("a = x*y + x; w = sigmoid(a) * y", {"x": 1.5, "y": -2.0})["w"]
    g1, g2 = G.expression_graph(w), G.expression_graph(parsed)
    assert sorted(g1.labels()) == sorted(g2.labels())
    assert sorted(g1.edge_labels()) == sorted(g2.edge_labels())


def _numeric(source: str, values: dict, name: str, h: float = 1e-6) -> float:
    plus = dict(values, **{name: values[name] + h})
    minus = dict(values, **{name: values[name] - h})
    out = lambda v: float(list(G.parse_expressions(source, v).values())[-1].value)
    return (out(plus) - out(minus)) / (2 * h)


@pytest.mark.parametrize("source", [
    "a = x*y + x; w = sigmoid(a) * y",
    "u = tanh(x) - exp(y) / x",
    "v = relu(x * y) + log(x) ** 2 - -y",
])
def test_backward_by_local_derivatives_matches_finite_differences(source, rng):
    values = {"x": float(rng.uniform(0.5, 2.0)), "y": float(rng.uniform(-2.0, -0.5))}
    out = list(G.parse_expressions(source, values).values())[-1]
    grads = G.backward(out)
    for name in values:
        assert float(grads[name]) == pytest.approx(_numeric(source, values, name), rel=1e-6, abs=1e-9)


def test_backward_on_arrays_and_the_hand_formula(rng):
    xv, yv = rng.standard_normal(5), rng.standard_normal(5)
    x, y = G.var("x", xv), G.var("y", yv)
    w = G.sigmoid(x * y + x) * y
    grads = G.backward(w)
    a = xv * yv + xv
    s = 1 / (1 + np.exp(-a))
    np.testing.assert_allclose(grads["x"], yv * s * (1 - s) * (yv + 1), rtol=1e-12)
    np.testing.assert_allclose(grads["y"], s + yv * s * (1 - s) * xv, rtol=1e-12)
    g = G.expression_graph(w, grad=True)
    assert all(label == "(5,)" for _, _, label in g.edge_labels())
    assert ("σ(x · y + x) · y", "y", "∂(σ(x · y + x) · y)/∂y = σ(x · y + x)") in [(a, b, lab.split(" = [")[0]) for a, b, lab in g.edge_labels("backward")]


def test_parse_errors_are_clear():
    with pytest.raises(ValueError, match="unknown function call"):
        G.parse_expressions("a = foo(x)")
    with pytest.raises(ValueError, match=r"only \*\*2"):
        G.parse_expressions("a = x ** 3")
    with pytest.raises(ValueError, match="not supported"):
        G.parse_expressions("a = x[0]")
    with pytest.raises(ValueError, match="cannot parse"):
        G.parse_expressions("a = = x")
    with pytest.raises(ValueError, match="values given for names not in"):
        G.parse_expressions("a = x + 1", {"z": 1.0})
    with pytest.raises(ValueError, match="missing: y"):
        G.backward(G.parse_expressions("a = x * y", {"x": 1.0})["a"])
    with pytest.raises(TypeError, match="Expr objects and finite numbers"):
        G.var("x") + "y"
    with pytest.raises(TypeError, match="Sequential"):
        G.network_graph("net")


def test_save_dot_text(tmp_path):
    g = G.network_graph(*build_network("regression"))
    res = G.save(g, tmp_path / "net.dot")
    assert res.path.read_text(encoding="utf-8").startswith('digraph "network"') and not res.rendered
    with pytest.raises(ValueError, match="graph format"):
        G.save(g, tmp_path / "net.jpg")
    with pytest.raises(FileNotFoundError):
        G.save(g, tmp_path / "missing" / "net.svg")


def test_without_graphviz_writes_dot_and_says_how(tmp_path, monkeypatch):
    monkeypatch.setattr(G.shutil, "which", lambda name: None)
    res = G.save(G.network_graph(*build_network("regression")), tmp_path / "net.svg")
    assert res.path == tmp_path / "net.dot" and res.path.exists() and not (tmp_path / "net.svg").exists()
    assert "dot -Tsvg" in res.message and "apt-get install graphviz" in res.message


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_renders_with_graphviz(tmp_path, fmt):
    if shutil.which("dot") is None:
        pytest.skip("Graphviz 'dot' not installed (apt-get install graphviz)")
    res = G.save(G.network_graph(*build_network("classification-bce"), grad=True), tmp_path / f"net.{fmt}")
    data = res.path.read_bytes()
    assert res.rendered and len(data) > 1000
    assert data.startswith(b"\x89PNG") if fmt == "png" else b"<svg" in data[:2000]
    if fmt == "svg":
        assert b"Linear(3" in data and b"z1" in data


def test_cli_graph(tmp_path, capsys):
    from test_explain import run_cli

    assert run_cli(["graph", "--preset", "regression"]) == 0
    assert capsys.readouterr().out.startswith('digraph "network"')
    assert run_cli(["graph", "--expr", "a = x*y + x; w = sigmoid(a) * y", "--values", "x=1.5,y=-2", "--grad",
                    "-o", str(tmp_path / "e.dot")]) == 0
    assert "∂w/∂y" in (tmp_path / "e.dot").read_text(encoding="utf-8")
    assert run_cli(["graph", "--expr", "a = x +"]) == 2
    assert run_cli(["graph", "--values", "x=1"]) == 2
    assert hg.Linear  # the package imports cleanly alongside the graph module


def test_cli_graph_of_a_model_file(tmp_path, capsys, rng):
    from test_explain import run_cli

    from handgrad.io import save_model

    net = hg.MLP(2, [5], 3, f="relu", g="softmax", seed=rng)
    path = save_model(tmp_path / "m.safetensors", net, {"loss": "cross_entropy", "task": "classification",
                                                         "class_labels": ["a", "b", "c"]})
    assert run_cli(["graph", "--model", str(path), "--grad"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith('digraph "network"') and f'label="model {path}; classification; classes a, b, c"' in dot
    for node in ("Linear(2→5)", "Linear(5→3)", "cross-entropy", "W2"):
        assert node in dot
    assert '"x" -> "f0" [label="(N, 2)"]' in dot and '[label="(3, 5)"]' in dot  # shapes of this model
    assert "style=dashed" in dot  # the backward edges
    bare = save_model(tmp_path / "bare.safetensors", net)
    assert run_cli(["graph", "--model", str(bare)]) == 2  # no recorded loss and no --loss
    assert "records no loss" in capsys.readouterr().err
    assert run_cli(["graph", "--model", str(bare), "--no-loss", "-o", str(tmp_path / "g.dot")]) == 0
    assert "Linear(5→3)" in (tmp_path / "g.dot").read_text(encoding="utf-8")
    capsys.readouterr()
    (tmp_path / "junk.safetensors").write_bytes(b"\x80\x04junk" * 4)
    for bad in ("missing.safetensors", "junk.safetensors"):
        assert run_cli(["graph", "--model", str(tmp_path / bad)]) == 1
        assert capsys.readouterr().err.count("\n") == 1
    assert run_cli(["graph", "--model", str(path), "--K", "3"]) == 2
    assert run_cli(["graph", "--model", str(path), "--expr", "a = x*y"]) == 2


def test_expression_graph_values_gradients_and_vectors(capsys):
    from handgrad.cli import main

    exprs = G.parse_expressions("a = x*y + x; w = sigmoid(a) * y", {"x": np.array([1.0, 2.0]), "y": -2.0})
    g = G.expression_graph(list(exprs.values())[-1], grad=True)
    x = g.node("x")
    assert "= [1., 2.]" in x.label and "∂w/∂·" in x.label
    grads = G.backward(exprs["w"])
    assert f"{grads['y']:g}" in g.node("y").label  # the accumulated gradient, summed over the paths
    assert "()" not in [label for _, _, label in g.edge_labels()]
    scalar = G.expression_graph(list(G.parse_expressions("w = x*y", {"x": 1.0, "y": 2.0}).values())[-1])
    assert all(label == "" for _, _, label in scalar.edge_labels())
    assert main(["graph", "--expr", "w = x*y", "--values", "x=1,2,3,y=-2"]) == 0
    assert "(3,)" in capsys.readouterr().out
