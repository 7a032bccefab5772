"""ONNX export: the exported graph, run by onnxruntime, gives handgrad's outputs."""

from __future__ import annotations

import numpy as np
import pytest

from handgrad import GELU, MLP, LeakyReLU, Linear, Scale, Sequential, Softmax
from handgrad.onnx_export import DEFAULT_OPSET, export_onnx, run_onnx

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

HIDDEN = ["relu", "5relu", "leaky_relu", "tanh", "sigmoid", "softplus", "gelu", "gelu_tanh", "identity", "2.5tanh"]
OUTPUT = ["identity", "sigmoid", "softmax", "log_softmax"]
TOL = dict(rtol=1e-6, atol=1e-6)  # float32; onnxruntime's kernels (MLAS) round differently from NumPy's


@pytest.mark.parametrize("opset", [17, DEFAULT_OPSET])  # 17: GELU as its Erf/Tanh formula; 21: the Gelu op
@pytest.mark.parametrize("f", HIDDEN)
@pytest.mark.parametrize("g", OUTPUT)
def test_onnxruntime_matches_handgrad(f, g, opset, rng, tmp_path):
    net = MLP(6, [12, 8], 3, f=f, g=g, seed=rng)
    path = tmp_path / "net.onnx"
    export_onnx(net, path, opset=opset)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    out = run_onnx(path, x)
    assert out.dtype == np.float32 and out.shape == (40, 3)
    np.testing.assert_allclose(out, net.forward(x), **TOL)


def test_the_graph_uses_standard_operators(rng):
    net = Sequential(Linear(4, 5, seed=rng), LeakyReLU(0.2, scale=3.0), Linear(5, 5, seed=rng), GELU("tanh"),
                     Linear(5, 3, bias=False, seed=rng), Scale(2.0), Softmax(beta=0.5))
    model = export_onnx(net)
    ops = [node.op_type for node in model.graph.node]
    assert ops == ["Gemm", "LeakyRelu", "Mul", "Gemm", "Gelu", "Gemm", "Mul", "Mul", "Softmax", "Identity"]
    assert [i.name for i in model.graph.initializer if i.name[0].isdigit() and "/" not in i.name] == \
        ["0.weight", "0.bias", "3.weight", "3.bias", "5.weight"]  # the key names of handgrad.torch_interop
    gemm = model.graph.node[0]
    assert {a.name: a.i for a in gemm.attribute} == {"transB": 1}
    assert model.opset_import[0].version == DEFAULT_OPSET
    x = rng.normal(size=(9, 4)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(model, x), net.forward(x), **TOL)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and dims[1].dim_value == 4


@pytest.mark.parametrize("f", ["relu", "tanh", "sigmoid", "gelu", "leaky_relu", "softplus"])
def test_float64_export(f, rng):
    net = MLP(5, [7], 2, f=f, g="softmax", seed=rng, dtype=np.float64)
    model = export_onnx(net)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    x = rng.normal(size=(6, 5))
    # onnxruntime has float64 kernels for Relu, Tanh, Sigmoid, Gemm and Softmax, not for Gelu,
    # LeakyRelu or Softplus; ONNX's reference evaluator runs them all
    out = run_onnx(model, x, reference=f in ("gelu", "leaky_relu", "softplus"))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, net.forward(x), rtol=1e-7, atol=1e-12)


def test_trained_estimator_network_exports(rng):
    pytest.importorskip("sklearn")
    from handgrad.sklearn import HandgradClassifier

    X = rng.normal(size=(60, 4)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    clf = HandgradClassifier((8,), max_iter=20, learning_rate_init=0.05, tol=1.0, random_state=0).fit(X, y)
    proba = run_onnx(export_onnx(clf.net_), X)
    np.testing.assert_allclose(proba, clf.predict_proba(X), **TOL)


def test_export_refuses_bad_arguments(rng, tmp_path):
    net = MLP(3, [4], 2, seed=rng)
    with pytest.raises(ValueError, match="opset must be an int >= 13, got 11"):
        export_onnx(net, opset=11)
    with pytest.raises(TypeError, match="expects a handgrad network"):
        export_onnx("net")
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        export_onnx(net, dtype="int8")
    with pytest.raises(ValueError, match=r"run_onnx expects X of shape \(N, features\)"):
        run_onnx(export_onnx(net), np.zeros(3))
    assert not list(tmp_path.iterdir())


def test_write_is_atomic_and_loadable(rng, tmp_path):
    net = MLP(3, [4], 2, seed=rng)
    path = tmp_path / "model.onnx"
    export_onnx(net, str(path))
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no temporary file left behind
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded)
    assert loaded.producer_name == "handgrad"


def test_a_trained_model_exports_with_its_scaling(tmp_path, rng):
    """export_onnx(Predictor): Sub/Div of the training split's scaling open the graph, Mul/Add close it."""
    pytest.importorskip("onnxruntime")
    from handgrad import MLP, Predictor
    from handgrad.data import Standardizer
    from handgrad.onnx_export import export_onnx, run_onnx

    X = rng.normal(1000.0, 50.0, size=(40, 3))
    y = rng.normal(20000.0, 3000.0, size=(40, 1))
    model = Predictor(MLP(3, [5], 1, f="tanh", seed=0, dtype="float64"), task="regression", loss="mse",
                      feature_names=["a", "b", "c"], x_scaler=Standardizer().fit(X), y_scaler=Standardizer().fit(y))
    proto = export_onnx(model, tmp_path / "m.onnx")
    ops = [node.op_type for node in proto.graph.node]
    assert ops[:2] == ["Sub", "Div"] and ops[-3:] == ["Mul", "Add", "Identity"]
    np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", X), model.predict(X), rtol=1e-12)
