r"""scikit-learn estimators over handgrad networks: ``HandgradRegressor`` and ``HandgradClassifier``.

They take :class:`sklearn.neural_network.MLPRegressor` / ``MLPClassifier``'s parameter
names and follow its losses and its SGD (momentum, Nesterov) and Adam update rules, so
the two can be compared like for like. The network is a handgrad
:class:`~handgrad.model.MLP` (``net_``); every gradient comes from its hand-derived
backward pass.

Losses, for a batch of N samples and K outputs (scikit-learn's MLP uses the same):

- regression, identity output:  J = (1/2N) Σ_n ||ŷ_n - y_n||²,  dJ/dz = (ŷ - y)/N
- multi-class, softmax output:  J = -(1/N) Σ_n log ŷ_n[y_n],   dJ/dz = (softmax(z) - y)/N
- binary and multi-label, one sigmoid per label: BCE summed over the K labels and averaged
  over the samples,  dJ/dz = (σ(z) - y)/N

plus the L2 penalty (α/2N) Σ_l ||W_l||² on the weights (not the biases), gradient α W/N.
z is the output layer's input; the output activation and its loss are fused.

>>> from handgrad.sklearn import HandgradClassifier
>>> clf = HandgradClassifier(hidden_layer_sizes=(16,), max_iter=50, random_state=0)
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np

from .optional import require

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d, validate_data
except ImportError:  # the same one-line message as every other optional import
    require("sklearn", extra="sklearn", purpose="handgrad.sklearn's estimators")
    raise

from .errors import DivergenceError
from .inference import labels, logits_and_outputs, output_kind, probabilities
from .layers import Activation, Linear
from .losses import BCELoss, CrossEntropyLoss, SquaredErrorLoss
from .model import MLP
from .optim import SGD, Adam
from .registry import make_activation
from .storage import flat_base
from .validation import check_bool, check_int, check_real, lookup_name, make_rng

SOLVERS = ("sgd", "adam")
LEARNING_RATES = ("constant", "invscaling", "adaptive")


# ====================================================================== parameter checks
def _hidden_sizes(value: Any) -> list[int]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return [check_int("hidden_layer_sizes", value)]
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"hidden_layer_sizes must be an int or a sequence of ints, got {type(value).__name__} {value!r}")
    return [check_int(f"hidden_layer_sizes[{i}]", h) for i, h in enumerate(value)]


# ====================================================================== input diagnosis
def _diagnose_X(X: Any, exc: Exception) -> None:
    """After scikit-learn's validation refused X: if X is ragged or holds a non-numeric cell,
    raise the same kind of error naming the row lengths or the cell's value and position
    (scikit-learn's own text is kept at the end). Otherwise return, and the caller re-raises."""
    arr = X
    if isinstance(X, (list, tuple)):
        try:
            arr = np.asarray(X)
        except ValueError:
            lengths = [len(row) if hasattr(row, "__len__") else 1 for row in X]
            bad = next((i for i, n in enumerate(lengths) if n != lengths[0]), None)
            if bad is None:
                return
            raise ValueError(f"X has inhomogeneous row lengths (ragged): row {bad} has {lengths[bad]} value(s), "
                             f"row 0 has {lengths[0]} ({exc})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "OUS":
        return
    for index, value in np.ndenumerate(arr):
        try:
            float(value)
        except (TypeError, ValueError) as err:
            where = f"row {index[0]}, column {index[1]}" if len(index) == 2 else f"index {index}"
            raise type(err)(f"X must hold numbers; got {value!r} ({type(value).__name__}) at {where} "
                            f"({exc})") from None


# ====================================================================== divergence
class _NonFiniteError(Exception):
    """A minibatch produced a non-finite loss or gradient; raised before any update."""


def _check_step_finite(J: float, names: list, grads: list) -> None:
    if not math.isfinite(J):
        raise _NonFiniteError(f"the loss became {J}")
    with np.errstate(over="ignore", invalid="ignore"):
        total = sum(float(np.sum(g)) for g in grads)  # one cheap pass; a sum that overflows is re-checked exactly
    if math.isfinite(total):
        return
    for name, g in zip(names, grads):
        if not np.all(np.isfinite(g)):
            raise _NonFiniteError(f"the gradient of {name} is non-finite ({int(np.sum(~np.isfinite(g)))} "
                             f"entr(y/ies)) while the loss was {J:g}")


def _surely_finite(grads: list) -> bool:
    """True when the gradients tile one flat array (an MLP's packed storage) whose sum of squares,
    one dot, is finite: then every entry and its square are finite, and neither check below can
    fail. False: ask them (four reductions and, for Adam, four squares per step)."""
    flat = flat_base(grads)
    return flat is not None and math.isfinite(float(np.vdot(flat, flat)))


def _check_adam_squares(grads: list) -> None:
    """Adam's second moment takes g²: refuse a gradient whose square overflows, which would
    silently freeze those weights."""
    with np.errstate(over="ignore"):
        if not all(np.isfinite(float(np.max(g * g, initial=0.0))) for g in grads):
            raise _NonFiniteError("the squared gradient overflowed in Adam's second moment (|g| > 1e154), "
                                  "which would silently freeze those weights")


# ====================================================================== shared base
class _HandgradMLP(BaseEstimator):
    """Shared parameters, validation and the minibatch loop (not for direct use)."""

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 1e-4,
        batch_size: Any = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 1e-3,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        init: str = "xavier",
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.init = init

    # ------------------------------------------------------------ validation
    def _check_params(self) -> dict[str, Any]:
        """Validate every parameter (scikit-learn's rule: in fit, never in __init__)."""
        act = make_activation(self.activation)
        if not isinstance(act, Activation):
            raise ValueError(f"activation must be an elementwise activation (relu, tanh, logistic, gelu, ...), "
                             f"got {self.activation!r}")
        if isinstance(self.batch_size, str):
            if self.batch_size != "auto":
                raise ValueError(f"batch_size must be 'auto' or an int >= 1, got {self.batch_size!r}")
        else:
            check_int("batch_size", self.batch_size)
        for name in ("shuffle", "verbose", "warm_start", "nesterovs_momentum", "early_stopping"):
            check_bool(name, getattr(self, name))
        return {
            "hidden": _hidden_sizes(self.hidden_layer_sizes),
            "solver": lookup_name("solver", self.solver, {s: s for s in SOLVERS}),
            "schedule": lookup_name("learning_rate", self.learning_rate, {s: s for s in LEARNING_RATES}),
            "init": lookup_name("init", self.init, {s: s for s in Linear.INITS}),
            "alpha": check_real("alpha", self.alpha, 0.0),
            "lr": check_real("learning_rate_init", self.learning_rate_init, 0.0, open_low=True),
            "power_t": check_real("power_t", self.power_t, 0.0),
            "max_iter": check_int("max_iter", self.max_iter),
            "tol": check_real("tol", self.tol, 0.0),
            "momentum": check_real("momentum", self.momentum, 0.0, 1.0),
            "validation_fraction": check_real("validation_fraction", self.validation_fraction, 0.0, 1.0,
                                          open_low=True, open_high=True),
            "beta_1": check_real("beta_1", self.beta_1, 0.0, 1.0, open_high=True),
            "beta_2": check_real("beta_2", self.beta_2, 0.0, 1.0, open_high=True),
            "epsilon": check_real("epsilon", self.epsilon, 0.0, open_low=True),
            "n_iter_no_change": check_int("n_iter_no_change", self.n_iter_no_change),
        }

    def _validate_X(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        try:
            X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        except (TypeError, ValueError) as exc:
            _diagnose_X(X, exc)
            raise
        return X.astype(self.net_.dtype, copy=False)

    # ------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _HandgradMLP:
        """Train on (X, y) for up to ``max_iter`` epochs (continuing if ``warm_start``).

        ``sample_weight`` (n,), as scikit-learn's MLP takes it: each minibatch's loss and
        gradient are the weighted mean Σ wᵢ Jᵢ / Σ wᵢ (the L2 term is divided by Σ wᵢ), so a
        weight of 2 counts a row twice.
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def _fit(self, X: Any, y: Any, *, incremental: bool, classes: Any = None,
             sample_weight: Any = None) -> _HandgradMLP:
        p = self._check_params()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        fresh = not hasattr(self, "net_") or not (self.warm_start or incremental)
        X, Y = self._validate_training_data(X, y, fresh, classes, incremental)
        weights = None
        if sample_weight is not None:  # scikit-learn's own checks and messages: shape, finite, >= 0, not all 0
            weights = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if fresh:
            self._initialize(p, X.shape[1], Y, X.dtype)
        elif X.dtype != self.net_.dtype:
            X = X.astype(self.net_.dtype)
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer(p)
        self._run_epochs(p, X, Y, incremental, weights)
        return self

    def _initialize(self, p: dict, n_features: int, Y: np.ndarray, dtype: np.dtype) -> None:
        self._rng = make_rng(self.random_state, "random_state")
        self.n_outputs_ = self._n_net_outputs(Y)
        self.out_activation_ = self._out_activation()
        g = {"identity": "identity", "softmax": "softmax", "logistic": "sigmoid"}[self.out_activation_]
        self.net_ = MLP(n_features, p["hidden"], self.n_outputs_, f=self.activation, g=g, init=p["init"],
                        seed=self._rng, dtype=dtype)
        self.n_layers_ = len(p["hidden"]) + 2
        self._loss, self._loss_scale = self._core_loss()
        self.loss_curve_: list[float] = []
        self.t_ = 0
        self._no_improvement_count = 0
        self.best_loss_: Any = np.inf
        self.validation_scores_: Any = None
        self.best_validation_score_: Any = None
        if self.early_stopping:
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -np.inf, None

    def _make_optimizer(self, p: dict) -> Any:
        """handgrad's optimizer with scikit-learn's update formulas."""
        if p["solver"] == "adam":
            return Adam(self.net_, p["lr"], (p["beta_1"], p["beta_2"]), p["epsilon"], convention="sklearn")
        return SGD(self.net_, p["lr"], p["momentum"], self.nesterovs_momentum and p["momentum"] > 0,
                   convention="sklearn")

    def _params(self) -> list[np.ndarray]:
        return [theta for _, layer, key, _ in self.net_.parameter_slots() for theta in [layer.params[key]]]

    def _epoch_end(self, p: dict) -> None:
        """scikit-learn's 'invscaling' rate: lr = lr₀ / (samples seen + 1)^power_t."""
        if p["solver"] == "sgd" and p["schedule"] == "invscaling":
            self._optimizer.lr = p["lr"] / (self.t_ + 1) ** p["power_t"]

    def _stalled(self, p: dict) -> bool:
        """After n_iter_no_change epochs without progress: True means stop; the 'adaptive'
        rate is divided by 5 instead while it stays above 1e-6."""
        if p["solver"] != "sgd" or p["schedule"] != "adaptive" or self._optimizer.lr <= 1e-6:
            return True
        self._optimizer.lr /= 5.0
        return False

    def _batch_size(self, n_samples: int) -> int:
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(f"batch_size={self.batch_size} is larger than the {n_samples} training samples; "
                          f"using {n_samples}", UserWarning, stacklevel=5)
        return min(self.batch_size, n_samples)

    def _split_validation(self, p: dict, X: np.ndarray, Y: np.ndarray, W: Any = None) -> tuple:
        stratify = None
        if is_classifier(self) and self._label_kind != "multilabel":  # one label per sample: keep class shares
            stratify = Y if self._label_kind == "multiclass" else Y[:, 0]
        seed = int(self._rng.integers(np.iinfo(np.int32).max))
        arrays = (X, Y) if W is None else (X, Y, W)
        parts = train_test_split(*arrays, test_size=p["validation_fraction"], random_state=seed, stratify=stratify)
        X_tr, X_val, Y_tr, Y_val = parts[:4]
        if X_val.shape[0] < 2:
            raise ValueError(f"the validation set has {X_val.shape[0]} sample(s); early stopping needs at least 2 "
                             "(increase validation_fraction or give more samples)")
        return X_tr, Y_tr, X_val, Y_val, (parts[4] if W is not None else None)

    def _run_epochs(self, p: dict, X: np.ndarray, Y: np.ndarray, incremental: bool, W: Any = None) -> None:
        X_val = Y_val = None
        if self.early_stopping:
            X, Y, X_val, Y_val, W = self._split_validation(p, X, Y, W)
        n, bs = X.shape[0], self._batch_size(X.shape[0])
        max_iter = 1 if incremental else p["max_iter"]
        self.n_iter_ = 0
        for _ in range(max_iter):
            order = self._rng.permutation(n) if self.shuffle else None
            Xs, Ys = (X[order], Y[order]) if order is not None else (X, Y)
            Ws = None if W is None else (W[order] if order is not None else W)
            total = 0.0
            for start in range(0, n, bs):
                wb = None if Ws is None else Ws[start:start + bs]
                try:
                    J = self._train_step(Xs[start:start + bs], Ys[start:start + bs], p["alpha"], wb)
                except _NonFiniteError as exc:
                    self._diverged(str(exc), start // bs + 1, -(-n // bs), p)
                total += J * (min(bs, n - start) if wb is None else float(wb.sum()))
            self.n_iter_ += 1
            self.t_ += n
            loss = total / (n if W is None else float(W.sum()))
            if not np.isfinite(loss):
                raise DivergenceError(f"training diverged: the loss became {loss} at epoch {self.n_iter_}; "
                                      "scale your inputs (e.g. StandardScaler) or lower learning_rate_init")
            self.loss_curve_.append(loss)
            self.loss_ = loss
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
            self._track_progress(p, X_val, Y_val)
            self._epoch_end(p)
            if self._no_improvement_count > p["n_iter_no_change"]:
                if self._stalled(p):
                    break
                self._no_improvement_count = 0
            if not incremental and self.n_iter_ == max_iter:
                warnings.warn(f"Stochastic optimizer: maximum iterations ({max_iter}) reached and the "
                              "optimization has not converged yet.", ConvergenceWarning, stacklevel=4)
        if self.early_stopping:
            self._restore_best()
        self.net_.clear_cache()

    def _diverged(self, what: str, batch: int, n_batches: int, p: dict) -> None:
        last = f"{self.loss_curve_[-1]:g}" if self.loss_curve_ else "none (first epoch)"
        raise DivergenceError(
            f"training diverged at epoch {self.n_iter_ + 1}, batch {batch}/{n_batches}: {what}, with "
            f"learning_rate_init={p['lr']:g} (solver {p['solver']!r}). The last finite epoch loss was {last}; "
            "no update was applied from the non-finite state (the weights are the last finite ones); "
            "scale your inputs (e.g. StandardScaler) or lower learning_rate_init")

    def _track_progress(self, p: dict, X_val: Any, Y_val: Any) -> None:
        tol = p["tol"]
        if self.early_stopping:
            score = self._validation_score(X_val, Y_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            self._no_improvement_count = self._no_improvement_count + 1 \
                if score < self.best_validation_score_ + tol else 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = [a.copy() for a in self._params()]
        else:
            loss = self.loss_curve_[-1]
            self._no_improvement_count = self._no_improvement_count + 1 if loss > self.best_loss_ - tol else 0
            self.best_loss_ = min(self.best_loss_, loss)

    def _restore_best(self) -> None:
        for arr, best in zip(self._params(), getattr(self, "_best_params", [])):
            arr[...] = best

    # ------------------------------------------------------------ one minibatch
    def _train_step(self, xb: np.ndarray, yb: np.ndarray, alpha: float, wb: Any = None) -> float:
        """One minibatch through the network's one training step: forward, the core's loss
        gradient (fused with the output layer), backward, then -- before the update -- the
        scale to this estimator's loss, the L2 term and the finite check. Returns J.
        With sample weights ``wb``, the weighted mean (:meth:`_weighted_backward`)."""
        net, s = self.net_, self._loss_scale
        n = xb.shape[0] if wb is None else float(wb.sum())

        def to_estimator_loss(J_core: Any) -> float:
            J = s * float(J_core)
            grads = []
            slots = net.parameter_slots()
            for _, layer, key, gkey in slots:
                grad = layer.grads[gkey]
                if s != 1.0:
                    grad *= s  # ∇(s·J_core) = s·∇J_core
                if key == "W" and alpha:
                    # through Wᵀ: C-contiguous where W is stored folded (handgrad.storage), so that
                    # ravel is a view, not a copy of W each step
                    Wt, grad_t = layer.params[key].T, grad.T
                    grad_t += (alpha / n) * Wt
                    J += 0.5 * alpha / n * float(np.dot(Wt.ravel(), Wt.ravel()))
                grads.append(grad)
            if math.isfinite(J) and _surely_finite(grads):
                return J  # else the checks below say what is not finite
            _check_step_finite(J, [name for name, _, _, _ in slots], grads)
            if isinstance(self._optimizer, Adam):
                _check_adam_squares(grads)
            return J

        if wb is None:
            return net.train_step(xb, yb, self._loss, optimizer=self._optimizer, before_update=to_estimator_loss)
        J = to_estimator_loss(self._weighted_backward(xb, yb, wb))
        self._optimizer.step()
        return J

    def _weighted_backward(self, xb: np.ndarray, yb: np.ndarray, wb: np.ndarray) -> float:
        """Σ wᵢ Jᵢ / Σ wᵢ of the core loss, with its gradients in the layers.

        The core's mean loss gives row i the gradient (1/N)·∂Jᵢ; backward is linear in it, so
        scaling row i by N·wᵢ/Σw gives the weighted mean's gradient (a weight of 2 = the row twice).
        """
        net, loss = self.net_, self._loss
        fused = net.fused_pair(loss)
        body = net.layers[:-1] if fused else net.layers
        z = xb
        for layer in body:
            z = layer.forward(z)
        net.layers[-1].forward(z) if fused else None  # the fused gradient starts below the output layer
        per_row = loss.fused if fused else loss
        _, g = per_row(yb, z)
        rows = np.array([float(per_row(yb[i:i + 1], z[i:i + 1])[0]) for i in range(xb.shape[0])])
        total = float(wb.sum())
        scale = (wb * (xb.shape[0] / total)).astype(g.dtype).reshape(-1, *([1] * (g.ndim - 1)))
        net.zero_grad()
        g = g * scale
        for layer in reversed(body):
            g = layer.backward(g)
        return float(np.dot(wb, rows)) / total

    def _forward(self, X: np.ndarray) -> np.ndarray:
        out = self.net_.forward(X)
        self.net_.clear_cache()
        return out

    def _logits(self, X: np.ndarray) -> np.ndarray:
        return logits_and_outputs(self.net_, X)[0]

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "net_")

    # ------------------------------------------------------------ views
    @property
    def coefs_(self) -> list[np.ndarray]:
        """The weight matrices as scikit-learn lays them out, (in, out): views Wᵀ of ``net_``."""
        check_is_fitted(self)
        return [layer.params["W"].T for layer in self.net_.linears]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        check_is_fitted(self)
        return [layer.params["b"] for layer in self.net_.linears]


def _target_dtype(X: np.ndarray) -> np.dtype:
    return X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)


# ====================================================================== regressor
class HandgradRegressor(RegressorMixin, _HandgradMLP):
    """Multi-layer perceptron regressor trained with handgrad's hand-derived gradients.

    Parameters are those of :class:`sklearn.neural_network.MLPRegressor` (without
    'lbfgs'), plus ``init`` ('xavier', 'he', 'pytorch'). ``activation`` takes any
    elementwise handgrad activation name ('relu', 'tanh', 'logistic', 'gelu',
    'leaky_relu', 'softplus', '5relu', ...). The output layer is the identity and the
    loss J = (1/2N) Σ ||ŷ - y||² (plus the L2 term α/2N Σ||W||²).

    float32 and float64 X train a network of that dtype; any other X becomes float64.
    y of shape (n,) gives predictions of shape (n,); y of shape (n, K), K ≥ 1, gives (n, K).

    Attributes
    ----------
    net_ : the trained :class:`~handgrad.model.MLP`.
    loss_curve_ : the mean training loss of each epoch.  loss_ : the last one.
    n_iter_, t_ : epochs run by the last fit call; samples seen in all.
    validation_scores_, best_validation_score_ : R² on the held-out split (early_stopping).
    n_features_in_, feature_names_in_, n_outputs_, n_layers_, out_activation_, coefs_, intercepts_.
    """

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> HandgradRegressor:
        """One epoch of minibatch updates over (X, y), starting from the current weights (``sample_weight``
        as in :meth:`fit`)."""
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def predict(self, X: Any) -> np.ndarray:
        """ŷ for each row of X: shape (n,) if fitted on 1-D y, else (n, K)."""
        out = self._forward(self._validate_X(X))
        return out.ravel() if self._y_1d else out

    def _validate_training_data(self, X: Any, y: Any, fresh: bool, classes: Any = None,
                                incremental: bool = False) -> tuple:
        try:
            X, y = validate_data(self, X, y, reset=fresh, dtype=[np.float64, np.float32], multi_output=True,
                                 y_numeric=True)
        except (TypeError, ValueError) as exc:
            _diagnose_X(X, exc)
            raise
        dtype = _target_dtype(X) if fresh else self.net_.dtype
        if y.ndim > 2:
            raise ValueError(f"y must be 1-D or 2-D, got shape {y.shape}")
        if fresh:
            self._y_1d = y.ndim == 1
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if not fresh and Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} output(s), but {type(self).__name__} was fitted with "
                             f"{self.n_outputs_}")
        return X.astype(dtype, copy=False), Y.astype(dtype, copy=False)

    def _n_net_outputs(self, Y: np.ndarray) -> int:
        return Y.shape[1]

    def _out_activation(self) -> str:
        return "identity"

    def _core_loss(self) -> tuple[Any, float]:
        # SquaredErrorLoss("mean") is (1/N) Σ ||y - ŷ||²: this estimator's loss is half of it
        return SquaredErrorLoss("mean"), 0.5

    def _validation_score(self, X: np.ndarray, Y: np.ndarray) -> float:
        from sklearn.metrics import r2_score

        return float(r2_score(Y, self._forward(X)))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # y of shape (n, K) trains K linear outputs
        return tags


# ====================================================================== classifier
class HandgradClassifier(ClassifierMixin, _HandgradMLP):
    """Multi-layer perceptron classifier trained with handgrad's hand-derived gradients.

    Parameters are those of :class:`sklearn.neural_network.MLPClassifier` (without
    'lbfgs'), plus ``init``. Targets decide the output layer and the loss:

    - two classes: one sigmoid output and binary cross-entropy;
    - three or more classes: a softmax output and cross-entropy;
    - a multi-label indicator matrix (n, L): L sigmoid outputs, BCE summed over the labels.

    ``predict_proba`` returns (n, n_classes) rows summing to 1 for single-label
    problems and (n, L) independent probabilities for multi-label ones.

    Attributes
    ----------
    classes_ : the class labels (0..L-1 for multi-label).  net_, loss_curve_, n_iter_, ... as
    for :class:`HandgradRegressor`; validation scores are accuracies.
    """

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None) -> HandgradClassifier:
        """One epoch over (X, y). The first call needs ``classes`` (all labels that will ever occur);
        ``sample_weight`` as in :meth:`fit` (the argument order is scikit-learn's)."""
        return self._fit(X, y, incremental=True, classes=classes, sample_weight=sample_weight)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities: (n, n_classes), or (n, L) for multi-label targets."""
        return probabilities(self._forward(self._validate_X(X)), self._output_kind(), multilabel=self._multilabel)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        return np.log(self.predict_proba(X))

    def decision_function(self, X: Any) -> np.ndarray:
        """The logits z that enter the output sigmoid/softmax: (n,) for two classes, else (n, n_outputs)."""
        z = self._logits(self._validate_X(X))
        return z.ravel() if self._label_kind == "binary" else z

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row (an indicator matrix for multi-label targets)."""
        decided = labels(self._forward(self._validate_X(X)), self._output_kind(), multilabel=self._multilabel)
        return decided if self._multilabel else self.classes_[decided]

    def _validate_training_data(self, X: Any, y: Any, fresh: bool, classes: Any = None,
                                incremental: bool = False) -> tuple:
        try:
            X, y = validate_data(self, X, y, reset=fresh, dtype=[np.float64, np.float32], multi_output=True)
        except (TypeError, ValueError) as exc:
            _diagnose_X(X, exc)
            raise
        check_classification_targets(y)
        kind = type_of_target(y)
        if kind not in ("binary", "multiclass", "multilabel-indicator"):
            raise ValueError(f"{type(self).__name__} supports binary, multi-class and multi-label (indicator) "
                             f"targets, got y of type {kind!r} and shape {y.shape}")
        if kind != "multilabel-indicator" and y.ndim == 2:
            y = column_or_1d(y, warn=True)
        dtype = _target_dtype(X) if fresh else self.net_.dtype
        if fresh:
            self._set_classes(y, kind, classes, incremental)
        elif classes is not None and not np.array_equal(unique_labels(np.asarray(classes)), self.classes_):
            raise ValueError(f"classes={list(classes)!r} is not the same as classes_ {self.classes_.tolist()} "
                             "seen in the earlier call to partial_fit/fit")
        return X.astype(dtype, copy=False), self._encode(y, kind, dtype)

    def _set_classes(self, y: np.ndarray, kind: str, classes: Any, incremental: bool) -> None:
        if kind == "multilabel-indicator":
            self._label_kind, self.classes_ = "multilabel", np.arange(y.shape[1])
            return
        if classes is None and incremental:
            raise ValueError("classes must be passed on the first call to partial_fit")
        labels = unique_labels(y) if classes is None else unique_labels(np.asarray(classes))
        if len(labels) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in y; got 1 class: "
                             f"{labels[0]!r}")
        self.classes_ = labels
        self._label_kind = "binary" if len(labels) == 2 else "multiclass"

    def _encode(self, y: np.ndarray, kind: str, dtype: np.dtype) -> np.ndarray:
        if kind == "multilabel-indicator":
            if self._label_kind != "multilabel" or y.shape[1] != len(self.classes_):
                raise ValueError(f"y is a {y.shape[1]}-label indicator matrix, but {type(self).__name__} was "
                                 f"fitted on {self._describe_targets()}")
            return y.astype(dtype)
        if self._label_kind == "multilabel":
            raise ValueError(f"y has one label per sample, but {type(self).__name__} was fitted on "
                             f"{self._describe_targets()}")
        unseen = np.setdiff1d(unique_labels(y), self.classes_)
        if unseen.size:
            raise ValueError(f"y contains labels not in classes_ {self.classes_.tolist()}: {unseen.tolist()}")
        index = np.searchsorted(self.classes_, y)
        if self._label_kind == "binary":
            return index.astype(dtype).reshape(-1, 1)
        return index  # class indices: CrossEntropyLoss builds the one-hot rows (cheaper than checking given ones)

    def _describe_targets(self) -> str:
        if self._label_kind == "multilabel":
            return f"a {len(self.classes_)}-label indicator matrix"
        return f"single labels with classes {self.classes_.tolist()}"

    def _n_net_outputs(self, Y: np.ndarray) -> int:
        return len(self.classes_) if self._label_kind == "multiclass" else (1 if Y.ndim == 1 else Y.shape[1])

    def _out_activation(self) -> str:
        return "softmax" if self._label_kind == "multiclass" else "logistic"

    def _core_loss(self) -> tuple[Any, float]:
        if self._label_kind == "multiclass":
            return CrossEntropyLoss(), 1.0  # fused with the softmax output: dJ/dz = (softmax(z) - y)/N
        # fused with the sigmoid output; BCELoss averages over the N·L entries, this loss sums the L labels
        return BCELoss(), float(self.n_outputs_)

    def _validation_score(self, X: np.ndarray, Y: np.ndarray) -> float:
        decided = labels(self._forward(X), self._output_kind(), multilabel=self._multilabel)
        if self._label_kind == "multiclass":
            return float(np.mean(decided == Y))
        return float(np.mean(np.all(decided.reshape(Y.shape) == (Y >= 0.5), axis=1)))

    @property
    def _multilabel(self) -> bool:
        return self._label_kind == "multilabel"

    def _output_kind(self) -> str:
        return output_kind(self.net_, self._loss)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True  # indicator-matrix targets train one sigmoid per label
        return tags


__all__ = ["HandgradClassifier", "HandgradRegressor"]
