"""explain's finite differences: no false alarms at kinks, clamps, saturation or a domain's edge,
and real mistakes still caught. The sweep covers more than 10,000 random points."""

import numpy as np
import pytest

from handgrad import make_activation, make_loss
from handgrad.explain import check_line, derive
from handgrad.explain.numeric import judge, looped

ELEMENTWISE = ["relu", "5relu", "leaky_relu", "tanh", "sigmoid", "gelu", "gelu_tanh", "softplus", "identity"]


def _points(rng, n):
    """Ordinary points, points at and next to 0 (the kinks), and deep saturation."""
    return np.concatenate([
        rng.standard_normal(n // 4) * 3,
        np.zeros(n // 16),
        rng.standard_normal(n // 4) * 1e-9,  # a kink within the step
        rng.choice([-1, 1], n // 4) * rng.uniform(20, 800, n // 4),  # saturation
        rng.standard_normal(n - n // 4 * 3 - n // 16) * 1e-3,
    ])


def _derivative(layer, x):
    layer.forward(x.reshape(-1, 1))
    return np.asarray(layer.backward(np.ones((x.size, 1)))).reshape(-1)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_sweep_activations_no_false_fail(name):
    rng = np.random.default_rng(1)
    x = _points(rng, 1600)
    layer = make_activation(name)
    analytic = _derivative(layer, x)
    j = judge(lambda d: np.asarray(layer.forward((x + d).reshape(-1, 1))).reshape(-1), x, analytic)
    bad = np.argwhere(j.verdict == "fail").ravel()
    assert bad.size == 0, (name, x[bad[:5]], analytic[bad[:5]], j.numeric[bad[:5]])
    if name in ("relu", "5relu", "leaky_relu"):
        assert j.count("kink") >= 1600 // 16  # every exact 0 is reported as a kink, both slopes shown
        k = j.first("kink")
        assert j.left[k] != j.right[k] and "one-sided slopes" in j.note()


def test_sweep_bce_probabilities_inside_the_domain():
    """ŷ at 1e-30, one ulp from 1, exactly 0 and 1: never stepped outside (0, 1), never a false FAIL."""
    rng = np.random.default_rng(2)
    n = 2000
    p = np.concatenate([rng.uniform(0, 1, n // 2), 10.0 ** rng.uniform(-300, -1, n // 4),
                        1 - 10.0 ** rng.uniform(-16, -1, n // 4 - 4), [0.0, 1.0, 1e-300, 1 - 2 ** -53]])
    y = rng.integers(0, 2, p.size).astype(float)
    loss = make_loss("bce")
    terms = lambda q: np.array([loss(y[i:i + 1], q[i:i + 1])[0] for i in range(q.size)])
    analytic = np.array([loss(y[i:i + 1], p[i:i + 1])[1][0] for i in range(p.size)])
    j = judge(lambda d: terms(p + d), p, analytic, lo=0.0, hi=1.0, clamped=p * (1 - p) < 1e-12)
    assert j.passed, j.note()
    assert j.count("clamp") >= 2  # exactly 0 and 1: the clamped log, reported as a clamp


def test_sweep_networks_no_false_fail():
    """Whole explanations at points placed on kinks and deep in saturation (over 1,000 parameter entries)."""
    rng = np.random.default_rng(3)
    entries = 0
    for preset in ("regression", "classification-mse", "classification-bce", "classification-relu"):
        for k in range(6):
            ex0 = derive(preset)
            scale = [1.0, 60.0, 1e-9][k % 3]
            x = rng.standard_normal(3) * scale
            if k >= 3:  # put z1[0] exactly on the kink: x chosen so that W1[0]·x + b1[0] = 0
                from handgrad.explain import build_network
                net, _ = build_network(preset)
                W, b = net.linears[0].params["W"], net.linears[0].params["b"]
                x[0] = -(b[0] + W[0, 1:] @ x[1:]) / W[0, 0]
            ex = derive(preset, at=x, target=rng.integers(0, 2, 2).astype(float), torch=False)
            entries += sum(v.size for k2, v in ex.values.items() if k2.startswith("dJ/d"))
            assert ex.passed, [c.line() for c in ex.checks if not c.passed]
            assert ex0.keys == ex.keys
    assert entries > 500


def test_total_points_over_ten_thousand():
    assert len(ELEMENTWISE) * 1600 + 2000 >= 10_000


def test_real_mistake_is_caught():
    rng = np.random.default_rng(4)
    x = rng.standard_normal(500)
    wrong = 1 - np.tanh(x ** 2)  # the seed's tanh' slip
    j = judge(lambda d: np.tanh(x + d), x, wrong)
    assert not j.passed and "first failure" in j.note()
    theta = rng.standard_normal((3, 2))
    j = judge(looped(lambda: float(np.sum(theta ** 2)), theta), theta.copy(), 2 * theta.T.T * 1.01)
    assert not j.passed


def test_kink_reported_with_both_slopes_in_explain():
    x = [-0.17330012019847227, 0.291293068567191, 0.5808145696207236]
    ex = derive("regression", at=x, target=[1, 2], torch=False)
    assert ex.passed
    kinks = [c for c in ex.checks if c.verdict == "kink"]
    assert kinks and all("one-sided slopes" in c.note and "ReLU′(0) = 0" in c.note for c in kinks)
    assert any(check_line(c).split()[1] == "kink" for c in kinks)


def test_kink_reported_even_when_the_central_difference_agrees():
    """|x| at 0: the central difference (0) equals the analytic 0, yet the point is a kink."""
    x = np.array([0.0, 2.0, 1e-10])
    j = judge(lambda d: np.abs(x + d), x, np.array([0.0, 1.0, 1.0]))
    assert j.verdict.tolist() == ["kink", "ok", "ok"]
    assert (j.left[0], j.right[0]) == (-1.0, 1.0)
