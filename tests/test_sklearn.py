"""handgrad.sklearn: scikit-learn's own estimator checks, parity with MLPRegressor /
MLPClassifier from the same weights, the hand-derived training gradient against finite
differences, and the sklearn API (Pipeline, GridSearchCV, pickle, clone, partial_fit, ...)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from handgrad import DivergenceError
from handgrad.estimator import HandgradClassifier as ReexportedClassifier
from handgrad.sklearn import HandgradClassifier, HandgradRegressor

# Small networks and few epochs keep the whole suite of checks to a few seconds.
# No check is skipped or marked as expected to fail: the classifier's multi_label tag and
# the regressor's multi_output tag only *add* checks (see __sklearn_tags__ in the module).
# early_stopping=True is not among them: like MLPClassifier, it refuses data too small to
# split off a validation set (the checks fit on 1-3 samples) and partial_fit refuses it.
CHECKED = [
    HandgradRegressor(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=50, random_state=0),
    HandgradClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=50, random_state=0),
    HandgradRegressor(hidden_layer_sizes=(16,), solver="sgd", activation="tanh", learning_rate_init=0.05,
                      max_iter=50, random_state=0),
    HandgradClassifier(hidden_layer_sizes=(16, 8), solver="sgd", activation="tanh", learning_rate_init=0.05,
                       max_iter=50, random_state=0),
    HandgradClassifier(hidden_layer_sizes=(), learning_rate_init=0.05, max_iter=50, random_state=0),
]


@parametrize_with_checks(CHECKED)
def test_sklearn_estimator_checks(estimator, check, monkeypatch):
    # check_array_api_input (NumPy namespace only) runs only when this is set
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def _blobs(rng, n=120, d=4, k=3, dtype=np.float64):
    centers = rng.normal(0, 3, (k, d))
    y = rng.integers(0, k, n)
    X = centers[y] + rng.normal(0, 1, (n, d))
    return X.astype(dtype), y


def _regression(rng, n=100, d=5, k=1):
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(d, k))
    Y = np.tanh(X @ W) + 0.05 * rng.normal(size=(n, k))
    return X, (Y[:, 0] if k == 1 else Y)


def _quiet_fit(est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kw)


# ---------------------------------------------------------------- parity with scikit-learn's MLP
def _copy_weights(ours, theirs):
    theirs.coefs_ = [layer.params["W"].T.copy() for layer in ours.net_.linears]
    theirs.intercepts_ = [layer.params["b"].copy() for layer in ours.net_.linears]


PARITY = [
    ("regression", {"solver": "adam"}),
    ("regression", {"solver": "sgd", "momentum": 0.9, "nesterovs_momentum": True}),
    ("regression-3", {"solver": "sgd", "momentum": 0.5, "nesterovs_momentum": False, "learning_rate": "invscaling"}),
    ("binary", {"solver": "adam", "activation": "tanh"}),
    ("multiclass", {"solver": "sgd", "momentum": 0.0}),
    ("multiclass", {"solver": "adam", "activation": "logistic"}),
    ("multilabel", {"solver": "adam"}),
]


@pytest.mark.parametrize("task, params", PARITY)
def test_same_updates_as_sklearn_mlp_from_the_same_weights(task, params, rng):
    """Same weights, same batches (shuffle=False): every epoch's weights and loss match MLP*."""
    if task.startswith("regression"):
        X, y = _regression(rng, k=3 if task.endswith("3") else 1)
        Ours, Theirs = HandgradRegressor, MLPRegressor
    else:
        X, y = _blobs(rng, k=2 if task == "binary" else 3)
        if task == "multilabel":
            y = np.stack([y == 0, y != 1, X[:, 0] > 0], axis=1).astype(int)
        Ours, Theirs = HandgradClassifier, MLPClassifier
    common = dict(hidden_layer_sizes=(7, 5), alpha=1e-3, batch_size=32, learning_rate_init=0.01, shuffle=False,
                  warm_start=True, max_iter=1, n_iter_no_change=100, **params)
    ours = _quiet_fit(Ours(random_state=0, **common), X, y)
    theirs = _quiet_fit(Theirs(random_state=0, **common), X, y)
    _copy_weights(ours, theirs)
    ours.set_params(max_iter=6)
    theirs.set_params(max_iter=6)
    _quiet_fit(ours, X, y)
    _quiet_fit(theirs, X, y)
    for W_ours, W_theirs in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(W_ours, W_theirs, rtol=1e-9, atol=1e-12)
    if task != "regression-3":  # MLPRegressor reports the loss averaged over outputs too (not its gradient's loss)
        np.testing.assert_allclose(ours.loss_curve_[-6:], theirs.loss_curve_[-6:], rtol=1e-9)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- the training gradient
class _Recorder:
    """Stands in for the optimizer: keeps the gradients of one step, updates nothing."""

    def __init__(self, net):
        self.params = [layer.params[key] for _, layer, key, _ in net.parameter_slots()]
        self.net, self.grads = net, None

    def step(self):
        self.grads = [layer.grads[gkey].copy() for _, layer, _, gkey in self.net.parameter_slots()]


def _documented_loss(est, X, Y, alpha):
    """The loss in the module docstring, written out from the forward pass alone."""
    z = est._logits(X)
    n = X.shape[0]
    if est.out_activation_ == "identity":
        J = 0.5 * np.sum((z - Y) ** 2) / n
    elif est.out_activation_ == "softmax":
        zs = z - z.max(axis=1, keepdims=True)
        log_p = zs - np.log(np.exp(zs).sum(axis=1, keepdims=True))
        J = -np.mean(log_p[np.arange(n), Y])  # Y: class indices
    else:
        J = np.sum(np.logaddexp(0, z) - Y * z) / n
    return J + 0.5 * alpha / n * sum(np.sum(layer.params["W"] ** 2) for layer in est.net_.linears)


@pytest.mark.parametrize("kind", ["regression", "binary", "multiclass", "multilabel"])
def test_training_gradient_matches_finite_differences(kind, rng):
    alpha = 0.3
    if kind == "regression":
        X, y = _regression(rng, n=12, k=2)
        est = HandgradRegressor(hidden_layer_sizes=(5,), activation="tanh", random_state=0)
    else:
        X, y = _blobs(rng, n=12, k=2 if kind == "binary" else 3)
        if kind == "multilabel":
            y = np.stack([y == 0, y != 1], axis=1).astype(int)
        est = HandgradClassifier(hidden_layer_sizes=(5,), activation="tanh", random_state=0)
    est.partial_fit(X, y, **({} if kind in ("regression", "multilabel") else {"classes": np.unique(y)}))
    _, Y = est._validate_training_data(X, y, False)
    est._optimizer = _Recorder(est.net_)
    J = est._train_step(X, Y, alpha)
    assert J == pytest.approx(_documented_loss(est, X, Y, alpha), rel=1e-10)
    eps = 1e-6
    for theta, grad in zip(est._optimizer.params, est._optimizer.grads):
        numeric = np.zeros_like(theta)
        for index in np.ndindex(theta.shape):
            old = theta[index]
            theta[index] = old + eps
            up = _documented_loss(est, X, Y, alpha)
            theta[index] = old - eps
            down = _documented_loss(est, X, Y, alpha)
            theta[index] = old
            numeric[index] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


# ---------------------------------------------------------------- dtypes, shapes, targets
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_dtype_is_kept(dtype, rng):
    X, y = _blobs(rng, dtype=dtype)
    clf = _quiet_fit(HandgradClassifier((8,), max_iter=5, random_state=0), X, y)
    assert clf.net_.dtype == dtype
    assert clf.predict_proba(X).dtype == dtype
    reg = _quiet_fit(HandgradRegressor((8,), max_iter=5, random_state=0), X, y.astype(float))
    assert reg.predict(X).dtype == dtype


def test_integer_X_trains_in_float64(rng):
    X, y = _blobs(rng)
    clf = _quiet_fit(HandgradClassifier((8,), max_iter=5, random_state=0), np.round(X).astype(np.int32), y)
    assert clf.net_.dtype == np.float64


def test_multioutput_regression_shapes(rng):
    X, Y = _regression(rng, k=3)
    reg = _quiet_fit(HandgradRegressor((16,), max_iter=200, learning_rate_init=0.01, random_state=0), X, Y)
    assert reg.predict(X).shape == (100, 3)
    assert reg.score(X, Y) > 0.8
    reg1 = _quiet_fit(clone(reg), X, Y[:, :1])
    assert reg1.predict(X).shape == (100, 1)
    assert _quiet_fit(clone(reg), X, Y[:, 0]).predict(X).shape == (100,)


def test_multiclass_binary_and_string_labels(rng):
    X, y = _blobs(rng, k=3)
    names = np.array(["cat", "dog", "emu"])[y]
    clf = _quiet_fit(HandgradClassifier((16,), max_iter=100, learning_rate_init=0.01, random_state=0), X, names)
    assert clf.out_activation_ == "softmax"
    assert list(clf.classes_) == ["cat", "dog", "emu"]
    assert clf.score(X, names) > 0.9
    P = clf.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_array_equal(clf.classes_[P.argmax(axis=1)], clf.predict(X))
    np.testing.assert_array_equal(clf.decision_function(X).argmax(axis=1), P.argmax(axis=1))

    Xb, yb = X[y < 2], y[y < 2]
    binary = _quiet_fit(clone(clf), Xb, yb)
    assert binary.out_activation_ == "logistic" and binary.n_outputs_ == 1
    assert binary.predict_proba(Xb).shape == (len(yb), 2)
    np.testing.assert_array_equal(binary.predict(Xb), (binary.decision_function(Xb) > 0).astype(int))


def test_multilabel(rng):
    X, y = _blobs(rng, k=3)
    Y = np.stack([y == 0, y != 1, y == 2], axis=1).astype(int)
    clf = _quiet_fit(HandgradClassifier((16,), max_iter=200, learning_rate_init=0.01, random_state=0), X, Y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 3
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    P = clf.predict_proba(X)
    assert P.shape == (120, 3)
    np.testing.assert_array_equal(clf.predict(X), (P > 0.5).astype(int))
    assert clf.score(X, Y) > 0.9


def test_one_class_and_multioutput_multiclass_are_refused(rng):
    X, _ = _blobs(rng)
    with pytest.raises(ValueError, match="at least 2 classes"):
        HandgradClassifier(max_iter=1).fit(X, np.ones(len(X)))
    with pytest.raises(ValueError, match="multiclass-multioutput"):
        HandgradClassifier(max_iter=1).fit(X, rng.integers(0, 3, (len(X), 2)))
    with pytest.raises(ValueError, match="Unknown label type"):
        HandgradClassifier(max_iter=1).fit(X, rng.normal(size=len(X)))


# ---------------------------------------------------------------- parameters are checked in fit
@pytest.mark.parametrize("param, value, error, match", [
    ("activation", "rleu", ValueError, "did you mean 'relu'"),
    ("activation", "softmax", ValueError, "elementwise activation"),
    ("solver", "lbfgs", ValueError, "unknown solver 'lbfgs'; known: adam, sgd"),
    ("learning_rate", "fast", ValueError, "unknown learning_rate"),
    ("init", "zeros", ValueError, "unknown init"),
    ("hidden_layer_sizes", (10, 0), ValueError, r"hidden_layer_sizes\[1\] must be an int >= 1, got 0"),
    ("hidden_layer_sizes", "10", TypeError, "hidden_layer_sizes must be an int or a sequence"),
    ("max_iter", 0, ValueError, "max_iter must be an int >= 1, got 0"),
    ("max_iter", 2.5, TypeError, "max_iter must be an int"),
    ("alpha", -1.0, ValueError, r"alpha must be in \[0, inf\], got -1.0"),
    ("learning_rate_init", 0.0, ValueError, "learning_rate_init must be in"),
    ("batch_size", "big", ValueError, "batch_size must be 'auto' or an int"),
    ("momentum", 1.5, ValueError, "momentum must be in"),
    ("validation_fraction", 1.0, ValueError, "validation_fraction must be in"),
    ("beta_2", 1.0, ValueError, "beta_2 must be in"),
    ("shuffle", "yes", TypeError, "shuffle must be True or False"),
    ("random_state", "seed", TypeError, "random_state must be None, an int"),
])
def test_bad_parameters_are_accepted_by_set_params_and_refused_by_fit(param, value, error, match, rng):
    X, y = _blobs(rng)
    for est in (HandgradClassifier(), HandgradRegressor()):
        est.set_params(**{param: value})  # never raises (clone and grid search rely on it)
        with pytest.raises(error, match=match):
            est.fit(X, y)


def test_predict_before_fit_and_wrong_width(rng):
    X, y = _blobs(rng)
    with pytest.raises(NotFittedError):
        HandgradRegressor().predict(X)
    reg = _quiet_fit(HandgradRegressor((4,), max_iter=2), X, y.astype(float))
    with pytest.raises(ValueError, match="X has 3 features, but HandgradRegressor is expecting 4"):
        reg.predict(X[:, :3])
    with pytest.raises(ValueError, match="2D array"):
        reg.predict(X[0])


def test_divergence_raises(rng):
    X, y = _regression(rng)
    reg = HandgradRegressor((8,), solver="sgd", learning_rate_init=10.0, max_iter=50, random_state=0)
    with warnings.catch_warnings(), np.errstate(all="ignore"), pytest.raises(DivergenceError, match="scale your inputs"):
        warnings.simplefilter("ignore")
        reg.fit(X * 1e150, y * 1e150)


# ---------------------------------------------------------------- partial_fit, warm_start, early stopping
def test_partial_fit_is_one_epoch_of_fit(rng):
    X, y = _blobs(rng)
    a = HandgradClassifier((8,), random_state=3).partial_fit(X, y, classes=[0, 1, 2])
    b = _quiet_fit(HandgradClassifier((8,), random_state=3, max_iter=1), X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert a.loss_curve_ == b.loss_curve_ and a.n_iter_ == 1
    a.partial_fit(X[:40], y[:40])
    assert len(a.loss_curve_) == 2 and a.t_ == len(X) + 40
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        HandgradClassifier().partial_fit(X, y)
    with pytest.raises(ValueError, match="not the same as classes_"):
        a.partial_fit(X, y, classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        HandgradRegressor(early_stopping=True).partial_fit(X, y.astype(float))


def test_warm_start_continues_and_cold_start_restarts(rng):
    X, y = _regression(rng)
    cold = HandgradRegressor((8,), max_iter=5, random_state=1, n_iter_no_change=100)
    _quiet_fit(cold, X, y)
    first = cold.coefs_[0].copy()
    _quiet_fit(cold, X, y)
    np.testing.assert_array_equal(cold.coefs_[0], first)  # refit from the same seed: same result
    assert len(cold.loss_curve_) == 5
    warm = _quiet_fit(clone(cold).set_params(warm_start=True), X, y)
    _quiet_fit(warm, X, y)
    assert len(warm.loss_curve_) == 10
    assert warm.loss_curve_[5] < warm.loss_curve_[0]
    assert not np.array_equal(warm.coefs_[0], first)


def test_early_stopping_keeps_the_best_epoch(rng):
    X, y = _blobs(rng, n=300)
    clf = HandgradClassifier((16,), early_stopping=True, validation_fraction=0.2, n_iter_no_change=3,
                             learning_rate_init=0.05, max_iter=200, random_state=0)
    _quiet_fit(clf, X, y)
    assert clf.n_iter_ < 200
    assert len(clf.validation_scores_) == clf.n_iter_ == len(clf.loss_curve_)
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None
    assert clf.score(X, y) > 0.9


def test_adaptive_learning_rate_divides_by_five(rng):
    X, y = _regression(rng)
    reg = HandgradRegressor((8,), solver="sgd", learning_rate="adaptive", learning_rate_init=0.01, tol=10.0,
                            n_iter_no_change=1, max_iter=20, random_state=0)
    _quiet_fit(reg, X, y)
    assert reg._optimizer.lr < 0.01 and np.isclose(np.log(0.01 / reg._optimizer.lr) / np.log(5), round(
        np.log(0.01 / reg._optimizer.lr) / np.log(5)))


# ---------------------------------------------------------------- the sklearn ecosystem
def test_pipeline_cross_val_score_and_grid_search(rng):
    X, y = _blobs(rng, n=150)
    pipe = make_pipeline(StandardScaler(), HandgradClassifier((8,), max_iter=30, learning_rate_init=0.02,
                                                              random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipe, X, y, cv=3)
        search = GridSearchCV(pipe, {"handgradclassifier__hidden_layer_sizes": [(4,), (16,)],
                                     "handgradclassifier__activation": ["relu", "tanh"]}, cv=2).fit(X, y)
    assert scores.shape == (3,) and scores.min() > 0.8
    assert set(search.best_params_) == {"handgradclassifier__hidden_layer_sizes", "handgradclassifier__activation"}
    assert search.best_estimator_.score(X, y) > 0.8


def test_pickle_and_clone(rng):
    X, y = _regression(rng)
    reg = _quiet_fit(HandgradRegressor((8,), max_iter=10, random_state=0), X, y)
    again = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(again.predict(X), reg.predict(X))
    fresh = clone(reg)
    assert fresh.get_params() == reg.get_params() and not hasattr(fresh, "net_")


def test_feature_names_in(rng):
    pd = pytest.importorskip("pandas")
    X, y = _blobs(rng)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = _quiet_fit(HandgradClassifier((4,), max_iter=2), frame, y)
    np.testing.assert_array_equal(clf.feature_names_in_, ["a", "b", "c", "d"])
    assert clf.n_features_in_ == 4
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(frame.rename(columns={"a": "z"}))


def test_estimator_module_reexports():
    assert ReexportedClassifier is HandgradClassifier
