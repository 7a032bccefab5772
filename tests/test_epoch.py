"""An epoch of ``fit``: the seeded shuffle's batches, in order, gathered in the loop or one step ahead
in a background thread (``handgrad.train.GATHER_AHEAD``), train the same network bit for bit; every
divergence is still caught at its step, and an interrupted epoch leaves no thread behind."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from helpers import InfGradLoss

import handgrad as hg
import handgrad.train as T
from handgrad.errors import DivergenceError
from handgrad.losses import BCELoss, MSELoss

WAYS = {"in the loop": False, "ahead": True, "measured": None}


@pytest.fixture(params=list(WAYS))
def way(request, monkeypatch):
    """Each way of gathering; 'measured' with the size threshold off, so small test batches take part."""
    monkeypatch.setattr(T, "GATHER_AHEAD", WAYS[request.param])
    monkeypatch.setattr(T, "BACKGROUND_GATHER_MIN_BYTES", 0)
    return request.param


def _gather_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("handgrad-gather")]


def _by_hand(net, X, Y, loss, opt, seed, epochs, batch_size):
    """fit's loop written out: a permutation per epoch from default_rng(seed), each batch's rows
    gathered with take, one train_step per batch; the mean mini-batch loss per epoch."""
    shuffle, n, means = np.random.default_rng(seed), X.shape[0], []
    for _ in range(epochs):
        order, total = shuffle.permutation(n), 0.0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            J = net.train_step(X.take(idx, axis=0), Y.take(idx, axis=0), loss, optimizer=opt, before_update=float)
            total += J * len(idx)
        means.append(total / n)
    return means


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_fit_trains_as_its_loop_written_out_bit_for_bit(way, optimizer, rng):
    # 1,100 rows in batches of 8: 138 steps, enough for the measured way to try both ways
    # and choose, and a last batch of 4 rows
    X = rng.standard_normal((1100, 20)).astype(np.float32)
    Y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 1100)]
    seed = int(rng.integers(1 << 30))
    net = hg.MLP(20, [16], 3, f="relu", g="sigmoid", seed=seed, dtype=np.float32)
    ref = hg.MLP(20, [16], 3, f="relu", g="sigmoid", seed=seed, dtype=np.float32)
    h = T.fit(net, X, Y, "bce", optimizer=optimizer, lr=0.05, epochs=2, batch_size=8, seed=11, train_metrics=False)
    means = _by_hand(ref, X, Y, BCELoss(), hg.optim.make_optimizer(optimizer, ref, lr=0.05), 11, 2, 8)
    assert h["loss"] == means  # the same losses, in the same order of summation
    for name, value in net.params.items():
        np.testing.assert_array_equal(value, ref.params[name], err_msg=name)
    assert not _gather_threads()


def test_mse_fit_trains_as_its_loop_written_out_bit_for_bit(way, rng):
    # 280 steps: the measured way measures twice in an epoch (every 256 steps)
    X = rng.standard_normal((1400, 5))
    y = np.sin(X[:, :1]) + 0.1 * X[:, 1:2]
    net = hg.MLP(5, [12], 1, f="tanh", seed=3, dtype=np.float64)
    ref = hg.MLP(5, [12], 1, f="tanh", seed=3, dtype=np.float64)
    h = T.fit(net, X, y, "mse", lr=0.02, epochs=2, batch_size=5, seed=4, train_metrics=False)
    assert h["loss"] == _by_hand(ref, X, y, MSELoss(), hg.SGD(ref, lr=0.02), 4, 2, 5)
    for name, value in net.params.items():
        np.testing.assert_array_equal(value, ref.params[name], err_msg=name)


def test_ahead_gathers_in_a_background_thread_that_ends_with_the_epoch(monkeypatch, rng):
    monkeypatch.setattr(T, "GATHER_AHEAD", True)
    seen = []

    class Watching(MSELoss):
        def _compute(self, y, y_hat):
            seen.append(len(_gather_threads()))
            return super()._compute(y, y_hat)

    X, y = rng.standard_normal((64, 3)), rng.standard_normal(64)
    T.fit(hg.MLP(3, [4], 1, seed=0, dtype=np.float64), X, y, Watching(), lr=0.01, epochs=2, batch_size=8,
          train_metrics=False)
    assert seen and all(k == 1 for k in seen)
    assert not _gather_threads()


def test_in_the_loop_starts_no_thread(monkeypatch, rng):
    monkeypatch.setattr(T, "GATHER_AHEAD", False)
    seen = []

    class Watching(MSELoss):
        def _compute(self, y, y_hat):
            seen.append(len(_gather_threads()))
            return super()._compute(y, y_hat)

    X, y = rng.standard_normal((64, 3)), rng.standard_normal(64)
    T.fit(hg.MLP(3, [4], 1, seed=0, dtype=np.float64), X, y, Watching(), lr=0.01, epochs=1, batch_size=8)
    assert seen and not any(seen)


def test_a_non_finite_gradient_is_caught_at_its_step_whichever_way_batches_are_gathered(way, rng):
    X, y = rng.standard_normal((32, 3)), rng.standard_normal(32)
    net = hg.MLP(3, [4], 1, seed=2, dtype=np.float64)
    with pytest.raises(DivergenceError, match=r"epoch 2/3, step 1/4: the gradient of W1, b1, W2, b2 is non-finite"):
        T.fit(net, X, y, InfGradLoss(k=5), lr=0.05, epochs=3, batch_size=8, train_metrics=False)
    ref = hg.MLP(3, [4], 1, seed=2, dtype=np.float64)
    T.fit(ref, X, y, "mse", lr=0.05, epochs=1, batch_size=8, train_metrics=False)  # the 4 good steps
    for name, value in net.params.items():
        np.testing.assert_array_equal(value, ref.params[name], err_msg=name)
    assert not _gather_threads()


def test_a_non_finite_loss_is_caught_at_its_step_mid_epoch(way, rng):
    X, y = rng.standard_normal((1100, 3)), rng.standard_normal(1100)

    class NaNAt(MSELoss):
        calls = 0

        def _compute(self, y, y_hat):
            NaNAt.calls += 1
            J, g = super()._compute(y, y_hat)
            return (np.nan, g) if NaNAt.calls == 150 else (J, g)

    net = hg.MLP(3, [4], 1, seed=2, dtype=np.float64)
    with pytest.raises(DivergenceError, match=r"epoch 2/2, step 12/138: the loss is nan"):
        T.fit(net, X, y, NaNAt(), lr=0.01, epochs=2, batch_size=8, train_metrics=False)
    assert not _gather_threads()


def test_interrupting_an_epoch_rolls_back_and_ends_the_gathering_thread(way, rng):
    X, y = rng.standard_normal((1100, 3)), rng.standard_normal(1100)

    class StopAt(MSELoss):
        calls = 0

        def _compute(self, y, y_hat):
            StopAt.calls += 1
            if StopAt.calls == 200:
                raise KeyboardInterrupt
            return super()._compute(y, y_hat)

    net = hg.MLP(3, [4], 1, seed=2, dtype=np.float64)
    ref = hg.MLP(3, [4], 1, seed=2, dtype=np.float64)
    with pytest.raises(KeyboardInterrupt, match="during epoch 2/3"):
        T.fit(net, X, y, StopAt(), lr=0.01, epochs=3, batch_size=8, train_metrics=False)
    T.fit(ref, X, y, "mse", lr=0.01, epochs=1, batch_size=8, train_metrics=False)
    for name, value in net.params.items():
        np.testing.assert_array_equal(value, ref.params[name], err_msg=name)
    assert not _gather_threads()


class _ScaledGradLoss(MSELoss):
    """MSE whose gradient is multiplied by ``scale`` on the k-th call (a finite but huge gradient)."""

    def __init__(self, k, scale):
        self.k, self.scale, self.calls = k, scale, 0

    def _compute(self, y, y_hat):
        self.calls += 1
        J, g = super()._compute(y, y_hat)
        return (J, g * self.scale) if self.calls == self.k else (J, g)


def test_a_huge_finite_float32_gradient_is_not_divergence(rng):
    # its squares overflow float32, so the one dot over the flat gradient is inf; the check then
    # asks grad_norm, which sums in float64 and finds it finite, as it always did
    X, y = rng.standard_normal((32, 3)).astype(np.float32), rng.standard_normal(32).astype(np.float32)
    g = np.full(5, 1e20, np.float32)  # the premise: float32 squares overflow, float64 ones do not
    assert np.isinf(np.vdot(g, g)) and np.isfinite(np.vdot(g.astype(np.float64), g.astype(np.float64)))
    net = hg.MLP(3, [4], 1, seed=2, dtype=np.float32)
    h = T.fit(net, X, y, _ScaledGradLoss(k=3, scale=np.float32(1e21)), lr=1e-30, epochs=1, batch_size=8,
              train_metrics=False)
    assert len(h) == 1 and all(np.isfinite(v).all() for v in net.params.values())


def test_a_float64_gradient_norm_that_overflows_is_divergence_at_its_step(rng):
    # finite gradients whose squared norm overflows float64: grad_norm is inf, so fit stops there,
    # naming no parameter (none holds a non-finite value)
    X, y = rng.standard_normal((32, 3)), rng.standard_normal(32)
    net = hg.MLP(3, [4], 1, seed=2, dtype=np.float64)
    with pytest.raises(DivergenceError, match=r"epoch 1/2, step 3/4: the gradient of the parameters is non-finite"):
        T.fit(net, X, y, _ScaledGradLoss(k=3, scale=1e160), lr=0.01, epochs=2, batch_size=8, train_metrics=False)
    assert all(np.isfinite(v).all() for v in net.params.values())


class _NotPlainSGD(hg.SGD):
    """The same SGD, under another type: fit then takes the optimizer's own step and its hook."""


@pytest.mark.parametrize("hidden", [[8], [8, 7]], ids=["two layers", "three layers"])
@pytest.mark.parametrize("case", ["normal", "huge but finite gradient", "diverging"])
def test_fit_checks_plain_sgd_inside_the_step_as_its_hook_does(case, hidden, rng, monkeypatch):
    """Plain SGD: fit hands train_step its lr and flat.limit, and the whole-step closure checks J
    and the gradient's sum of squares before its update. The result -- losses, parameters, the
    optimizer's count of updates, the divergence and its message -- is the optimizer path's bit
    for bit, including a gradient whose float32 sum of squares overflows though every value is
    finite (the closure declines, the hook's exact norm lets it through)."""
    X = rng.standard_normal((96, 6)).astype(np.float32)
    y = rng.standard_normal((96, 2)).astype(np.float32)
    lr = 0.01
    if case == "huge but finite gradient":  # inputs ~1e10: J ~1e20, gradients ~1e19, their float32 sum of squares inf
        X, lr = X * np.float32(1e10), 1e-30
    if case == "diverging":
        lr = 50.0
    runs = {}
    for way in ("closure", "optimizer"):
        net = hg.MLP(6, hidden, 2, f="relu", seed=5, dtype=np.float32)
        opt = (hg.SGD if way == "closure" else _NotPlainSGD)(net, lr=lr)
        try:
            h = T.fit(net, X, y, "mse", optimizer=opt, epochs=3, batch_size=16, seed=2, train_metrics=False)
            outcome = list(h["loss"])
        except DivergenceError as exc:
            outcome = str(exc)
        runs[way] = (outcome, {k: v.copy() for k, v in net.params.items()}, opt.t)
    (a, pa, ta), (b, pb, tb) = runs["closure"], runs["optimizer"]
    assert a == b and ta == tb
    for name in pa:
        np.testing.assert_array_equal(pa[name], pb[name], err_msg=name)
    if case == "diverging":
        assert isinstance(a, str) and "no update was applied" in a
    else:  # every step updated, the huge ones through the hook's exact norm
        assert ta == 3 * 6 and not isinstance(a, str)


def test_the_closure_declines_a_gradient_it_cannot_vouch_for(rng):
    """finite_below: J or the sum of squares not below the bound -- nothing is updated and the
    usual path runs the hook, which decides."""
    if hg.fast.blas.blas_axpy(np.dtype(np.float32)) is None:
        pytest.skip("the whole-step closure needs NumPy's bundled BLAS")
    net = hg.MLP(3, [4], 1, seed=0, dtype=np.float32)
    x, y = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((4, 1)).astype(np.float32)
    loss = MSELoss()
    net.train_step(x, y, loss, 0.1)
    assert net._plan.step is not None
    calls = []

    def hook(J):
        calls.append(float(J))
        return float(J)

    net.train_step(x, y, loss, 0.1, before_update=hook, finite_below=1e30)
    assert calls == []  # vouched for: the hook is not needed
    before = {k: v.copy() for k, v in net.params.items()}
    net.train_step(x, y, loss, 0.1, before_update=hook, finite_below=0.0)  # nothing is below 0
    assert len(calls) == 1  # the usual path ran the hook, then updated
    assert any(not np.array_equal(before[k], v) for k, v in net.params.items())
