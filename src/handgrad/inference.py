r"""Inference: from a trained network's outputs to the answers a user reads.

One rule for each question, used by ``fit``'s metrics, :func:`evaluate`,
``handgrad predict`` / ``evaluate``, the scikit-learn estimators and the plots:

- :func:`logits_and_outputs` -- the output layer's input z and the output ŷ, in chunks.
- :func:`loss_of_outputs` -- J from those, fused (from z) exactly as training computes it.
- :func:`output_kind` -- how to read ŷ, from the output layer and the loss:

  ==================  ==========================================================
  ``softmax``         ŷ are class probabilities (a Softmax output layer)
  ``log_softmax``     ŷ are log-probabilities (a LogSoftmax output layer)
  ``sigmoid``         one probability per output (a Sigmoid output layer)
  ``logits``          ŷ are logits for cross-entropy (or the loss is unknown):
                      softmax(ŷ); one output z reads as σ(z) = softmax([0, z])₂
  ``sigmoid_logits``  logits for BCE-with-logits: σ(ŷ) per output
  ``scores``          anything else (a squared loss on 0/1 targets): clipped into
                      [0, 1]; a stand-in for probabilities, not calibrated
  ==================  ==========================================================

- :func:`labels` -- the class decision. One output: class 1 where p ≥ 0.5, which is
  z ≥ 0 for logits (:func:`margin` is the signed distance to that boundary); K
  independent labels (multi-label): each p ≥ 0.5; one class among K: the argmax of
  ŷ (every reading above is monotone in ŷ, so this is the argmax of p).
- :func:`probabilities` -- (n, 2) for one output, (n, K) otherwise.

:class:`Predictor` bundles a network with the input scaling and class labels that
``handgrad train`` saves with it: ``load_predictor(path).predict(raw_X)``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import functional as F
from . import metrics as M
from .backend import to_numpy
from .errors import ModelFileError
from .layers import LogSoftmax, Sigmoid, Softmax
from .losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, Loss, SquaredErrorLoss, make_loss
from .validation import as_array, check_2d, check_finite, normalize_name

Array = Any
EVAL_CHUNK = 8192  # rows per forward pass when evaluating or predicting
INPUT_CHUNK = 8 * EVAL_CHUNK  # raw rows a Predictor scales at a time
OUTPUT_KINDS = ("regression", "softmax", "log_softmax", "logits", "sigmoid", "sigmoid_logits", "scores")
MODEL_FORMAT = 1  # version of the metadata a Predictor writes into model files


# ====================================================================== the network's outputs
def check_network(net: Any) -> None:
    """TypeError unless ``net`` is a handgrad network."""
    if not hasattr(net, "parameter_slots") or not hasattr(net, "layers"):
        raise TypeError(f"expected a handgrad network (Sequential, MLP, TwoLayerNet), got {type(net).__name__}")


def check_features(net: Any, X: Any, name: str = "X") -> np.ndarray:
    """X as a finite 2-D float array of the network's dtype, with the network's width."""
    X = as_array(to_numpy(X) if not isinstance(X, (np.ndarray, list, tuple)) else X, name, net.dtype)
    check_2d(X, name)
    if X.shape[0] == 0:
        raise ValueError(f"{name} has 0 rows; need at least one sample")
    if X.shape[1] != net.in_features:
        raise ValueError(f"{name} has {X.shape[1]} features (columns), but the network expects "
                         f"{net.in_features} (its first Linear has in_features={net.in_features})")
    check_finite(X, name)
    return X


def logits_and_outputs(net: Any, X: Array) -> tuple[np.ndarray, np.ndarray]:
    """(output-layer input z, output ŷ) for all rows, in chunks, as NumPy; leaves no cache behind."""
    zs, outs = [], []
    try:
        for start in range(0, int(X.shape[0]), EVAL_CHUNK):
            z = X[start:start + EVAL_CHUNK]
            for layer in net.layers[:-1]:
                z = layer.forward(z)
            outs.append(to_numpy(net.layers[-1].forward(z)))
            zs.append(to_numpy(z))
    finally:
        net.clear_cache()
    return np.concatenate(zs), np.concatenate(outs)


def check_outputs(out: np.ndarray) -> None:
    """ValueError naming the first row whose outputs are not finite: the input overflowed the network
    (an answer read from NaN would be a class picked by accident)."""
    finite = np.isfinite(out)
    if not finite.all():
        rows = np.flatnonzero(~finite.all(axis=1))
        raise ValueError(f"row {int(rows[0])} (0-based): the network's outputs overflow (NaN or infinity) for this "
                         f"input; {len(rows)} row(s) in all. Its values are far outside the range the model was "
                         "trained on, so no prediction is given")


def loss_of_outputs(net: Any, loss: Loss, y: Any, z: Any, out: Any) -> float:
    """J from the outputs of :func:`logits_and_outputs`: the loss training minimises -- from the
    logits z where the network's output layer and the loss fuse (never double-squashed), else from ŷ."""
    return float(loss.fused(y, z)[0] if net.fused_pair(loss) else loss(y, out)[0])


def predict(net: Any, X: Any) -> np.ndarray:
    """The network's outputs ŷ for X (n, in_features), as a NumPy array (n, K). X is validated first."""
    check_network(net)
    Xn = check_features(net, X, "X")
    be = net.backend
    return logits_and_outputs(net, Xn if be.name == "numpy" else be.asarray(Xn, Xn.dtype))[1]


# ====================================================================== outputs -> answers
def output_kind(net: Any, loss: Any = None) -> str:
    """How to read the outputs of ``net`` trained with ``loss`` (None: unknown); see the module's table."""
    last = net.layers[-1]
    if isinstance(last, Softmax):
        return "softmax"
    if isinstance(last, LogSoftmax):
        return "log_softmax"
    if isinstance(last, Sigmoid):
        return "sigmoid"
    loss = None if loss is None else make_loss(loss)
    if loss is None or isinstance(loss, CrossEntropyLoss):
        return "logits"
    if isinstance(loss, BCEWithLogitsLoss):
        return "sigmoid_logits"
    return "scores"


def is_multilabel(net: Any, loss: Any) -> bool:
    """True when each of several outputs is its own yes/no label (BCE over K > 1 outputs)."""
    return net.out_features > 1 and isinstance(make_loss(loss), (BCELoss, BCEWithLogitsLoss))


def _per_output(out: np.ndarray, kind: str, multilabel: bool) -> np.ndarray:
    """p with ŷ's shape and float dtype: the probability of each output (one class among K, or K labels)."""
    out = np.asarray(out)
    out = out if out.dtype.kind == "f" else out.astype(np.float64)
    one = out.shape[1] == 1
    if kind == "softmax":
        return out
    if kind == "log_softmax":
        return np.exp(out)
    if kind == "logits" and not one:
        return F.softmax(out)
    if kind in ("logits", "sigmoid_logits"):
        p = F.sigmoid(out)
    else:
        p = out if kind == "sigmoid" else np.clip(out, 0.0, 1.0)
    if one or multilabel:
        return p
    total = p.sum(axis=1, keepdims=True)  # one class among K: rows that sum to 1
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])


def probabilities(out: Any, kind: str, *, multilabel: bool = False) -> np.ndarray:
    """Class probabilities: (n, 2) for one output, (n, K) for K classes or K independent labels."""
    p = _per_output(out, kind, multilabel)
    return np.concatenate([1.0 - p, p], axis=1) if p.shape[1] == 1 else p


def margin(out: Any, kind: str) -> np.ndarray:
    """Signed distance of each output to its decision boundary: class 1 (or label on) where it is >= 0."""
    out = np.asarray(out, dtype=np.float64)
    if kind in ("logits", "sigmoid_logits"):
        return out
    if kind == "log_softmax":
        return out - np.log(0.5)
    return out - 0.5


def labels(out: Any, kind: str, *, multilabel: bool = False) -> np.ndarray:
    """Class indices (n,) for one output or one class among K; (n, K) 0/1 for K independent labels."""
    out = np.asarray(out)
    if out.shape[1] == 1 or multilabel:
        decided = (margin(out, kind) >= 0).astype(np.int64)
        return decided[:, 0] if decided.shape[1] == 1 else decided
    return np.argmax(out, axis=1).astype(np.int64)


def predict_proba(net: Any, X: Any, loss: Any = "cross_entropy") -> np.ndarray:
    """Class probabilities: (n, 2) for one binary output, (n, K) for K classes or K binary labels."""
    out = predict(net, X).astype(np.float64)
    return probabilities(out, output_kind(net, loss), multilabel=is_multilabel(net, loss))


def predict_labels(net: Any, X: Any, loss: Any = "cross_entropy") -> np.ndarray:
    """Predicted class indices: (n,) for one binary output or K classes; (n, K) 0/1 for K binary labels."""
    return labels(predict(net, X), output_kind(net, loss), multilabel=is_multilabel(net, loss))


def decide(model: Any, X: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """(class index per row, the margin for one output, else None) of a network or a :class:`Predictor`.

    A bare network knows no loss, so its outputs read as :func:`output_kind` says for an unknown
    loss; a Predictor reads them with the loss it was trained with, after its input scaling.
    """
    if isinstance(model, Predictor):
        out, kind = model.outputs(X), model.output
    else:
        out = np.asarray(to_numpy(model.forward(np.asarray(X).astype(model.dtype))), dtype=np.float64)
        model.clear_cache()
        kind = output_kind(model)
    return labels(out, kind), (margin(out, kind)[:, 0] if out.shape[1] == 1 else None)


def classification_scores(out: np.ndarray, y: np.ndarray, kind: str, *, multilabel: bool) -> dict[str, float]:
    """Accuracy and log-loss of outputs ŷ against targets: class indices (n,), one-hot rows or 0/1 columns."""
    p = _per_output(out, kind, multilabel)
    if out.shape[1] == 1 or multilabel:
        truth = (np.asarray(y).reshape(p.shape) >= 0.5).astype(np.int64).reshape(-1)
        return {"accuracy": M.accuracy(truth, labels(out, kind, multilabel=True).reshape(-1)),
                "log_loss": M.log_loss(truth, p.reshape(-1))}
    truth = y if y.ndim == 1 else np.argmax(y, axis=1)
    return {"accuracy": M.accuracy(truth, labels(out, kind)), "log_loss": M.log_loss(truth, p)}


# ====================================================================== a model with its preprocessing
def model_loss(name: str) -> Loss:
    """The loss a model file names; the squared error averages over the batch (so lr does not depend on
    the batch size)."""
    if normalize_name(name) in ("squared_error", "sse"):
        return SquaredErrorLoss("mean")
    return make_loss(name)


class Predictor:
    """A trained network with what turns raw rows into its inputs and its outputs into answers.

    ``handgrad train`` saves one (the network, its loss, the input and target
    scaling fitted on the training split, the feature names and class labels);
    :func:`load_predictor` reads it back, and :meth:`predict` takes raw rows.

    >>> model = load_predictor("runs/iris/model.safetensors")   # doctest: +SKIP
    >>> model.predict(X_raw)        # class labels, or values in the target's units   # doctest: +SKIP
    """

    def __init__(self, net: Any, *, task: str, loss: str, feature_names: list[str], target_name: str | None = None,
                 class_labels: list[Any] | None = None, x_scaler: Any = None, y_scaler: Any = None,
                 g: str = "identity", info: dict[str, Any] | None = None) -> None:
        self.net, self.task, self.loss_name = net, task, loss
        self.feature_names, self.target_name, self.class_labels = list(feature_names), target_name, class_labels
        self.x_scaler, self.y_scaler, self.g, self.info = x_scaler, y_scaler, g, dict(info or {})
        self.loss = model_loss(loss)
        self.output = "regression" if task == "regression" else output_kind(net, self.loss)

    def __repr__(self) -> str:
        return (f"Predictor(task={self.task!r}, loss={self.loss_name!r}, output={self.output!r}, "
                f"features={len(self.feature_names)}, scaled={self.x_scaler is not None})")

    # ------------------------------------------------------------ files
    def metadata(self) -> dict[str, Any]:
        """What a model file stores besides the weights (plain JSON)."""
        return {
            "cli_format": MODEL_FORMAT, "task": self.task, "loss": self.loss_name, "output": self.output,
            "g": self.g, "feature_names": self.feature_names, "target_name": self.target_name,
            "class_labels": self.class_labels,
            "preprocessing": {"x": self.x_scaler.to_dict() if self.x_scaler else None,
                              "y": self.y_scaler.to_dict() if self.y_scaler else None},
            **self.info,
        }

    @classmethod
    def from_metadata(cls, net: Any, meta: dict[str, Any], path: str) -> Predictor:
        """Rebuild from a network and its file's metadata; ModelFileError when they do not fit."""
        from .data import Standardizer

        needed = ("task", "loss", "output", "feature_names", "preprocessing")
        missing = [k for k in needed if k not in meta]
        if missing or meta.get("output") not in OUTPUT_KINDS:
            raise ModelFileError(f"{path!r} was not saved by 'handgrad train' (metadata lacks "
                                 f"{', '.join(missing) or 'a known output kind'}); load it with handgrad.io.load_model")
        try:
            pre = meta["preprocessing"]
            x_scaler = Standardizer.from_dict(pre["x"]) if pre.get("x") else None
            y_scaler = Standardizer.from_dict(pre["y"]) if pre.get("y") else None
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelFileError(f"{path!r}: invalid preprocessing in the metadata ({exc})") from None
        n_in = net.in_features
        if len(meta["feature_names"]) != n_in or (x_scaler is not None and x_scaler.n_features != n_in):
            raise ModelFileError(f"{path!r}: the metadata names {len(meta['feature_names'])} features, "
                                 f"but the network takes {n_in}")
        info = {k: v for k, v in meta.items() if k not in (*needed, "cli_format", "target_name", "class_labels", "g")}
        try:
            model_loss(meta["loss"])
        except (ValueError, TypeError) as exc:
            raise ModelFileError(f"{path}: metadata field 'loss': {exc}") from None
        return cls(net, task=meta["task"], loss=meta["loss"], feature_names=meta["feature_names"],
                   target_name=meta.get("target_name"), class_labels=meta.get("class_labels"),
                   x_scaler=x_scaler, y_scaler=y_scaler, g=meta.get("g", "identity"), info=info)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Predictor:
        """Read a model file written by ``handgrad train`` (FileNotFoundError, ModelFileError)."""
        from .io import load_model

        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such model file: {path!r}")
        net, meta = load_model(path)
        return cls.from_metadata(net, meta, path)

    def save(self, path: str | os.PathLike) -> Any:
        """Write the network and this metadata to ``path`` (atomically); returns the path."""
        from .io import save_model

        return save_model(path, self.net, self.metadata())

    # ------------------------------------------------------------ raw rows -> answers
    def inputs(self, X: Any, *, first_row: int = 0) -> np.ndarray:
        """Raw rows scaled as in training, in the network's dtype; ValueError naming the first row and
        column whose value leaves that dtype's range (it would overflow the network). ``first_row``: the
        0-based number of X's first row in the whole data, for that message."""
        Z = self.x_scaler.transform(X) if self.x_scaler is not None else np.asarray(X, dtype=np.float64)
        with np.errstate(over="ignore"):
            out = Z.astype(self.net.dtype, copy=False)
        if not np.isfinite(out).all():
            r, c = (int(i) for i in np.argwhere(~np.isfinite(out))[0])
            raw = np.asarray(X, dtype=np.float64)[r, c]
            if not np.isfinite(raw):
                check_finite(np.asarray(X, dtype=np.float64), "X")
            name = self.feature_names[c] if c < len(self.feature_names) else str(c)
            raise ValueError(f"row {first_row + r} (0-based), feature {name!r}: {raw:.6g} is beyond what this model takes: "
                             f"after the training's scaling it is {Z[r, c]:.3g}, outside the range of the network's "
                             f"{np.dtype(self.net.dtype).name} (±{np.finfo(self.net.dtype).max:.3g})")
        return out

    def outputs(self, X: Any) -> np.ndarray:
        """The network's outputs (float64) for raw rows X; ValueError (never NaN read as a class) when a row
        overflows the network."""
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.asarray(self._forward(X)[1], dtype=np.float64)
        check_outputs(out)
        return out

    def _forward(self, X: Any, *, scaled: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(z, ŷ) of :func:`logits_and_outputs` for raw rows X (or, ``scaled``, rows already :meth:`inputs`),
        scaling INPUT_CHUNK rows at a time: besides the outputs, only one chunk's scaled copy is ever made
        (the whole data's took 1.5x the data's memory on a 10,000,000-row file)."""
        if scaled:
            return logits_and_outputs(self.net, X)
        if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[0] > INPUT_CHUNK):
            return logits_and_outputs(self.net, self.inputs(X))
        zs, outs = [], []
        for start in range(0, X.shape[0], INPUT_CHUNK):
            z, out = logits_and_outputs(self.net, self.inputs(X[start:start + INPUT_CHUNK], first_row=start))
            zs.append(z)
            outs.append(out)
        return np.concatenate(zs), np.concatenate(outs)

    def values(self, out: np.ndarray) -> np.ndarray:
        """Regression outputs in the target's units."""
        return self.y_scaler.inverse_transform(out) if self.y_scaler is not None else out

    def predict_index(self, X: Any) -> np.ndarray:
        """Class indices into ``class_labels`` for raw rows X (classification)."""
        return labels(self.outputs(X), self.output)

    def predict(self, X: Any) -> Any:
        """Regression: values (n, k) in the target's units; classification: the class labels (n,)."""
        out = self.outputs(X)
        if self.task == "regression":
            return self.values(out)
        index = labels(out, self.output)
        return np.asarray(self.class_labels)[index] if self.class_labels else index

    @property
    def has_probabilities(self) -> bool:
        """Whether the outputs read as class probabilities (not for regression or plain scores)."""
        return self.task == "classification" and self.output != "scores"

    def probabilities(self, out: np.ndarray) -> np.ndarray | None:
        """Class probabilities (n, C) of outputs, or None when they are not probabilities."""
        return probabilities(out, self.output) if self.has_probabilities else None

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n, C) for raw rows X, columns in ``class_labels`` order."""
        if not self.has_probabilities:
            raise ValueError(f"this model's outputs are not class probabilities (task {self.task}, g = {self.g}, "
                             f"loss {self.loss_name})")
        return probabilities(self.outputs(X), self.output)

    # ------------------------------------------------------------ targets, loss, metrics
    def targets(self, y: Any) -> np.ndarray:
        """y as the loss wants it: standardised values, class indices, a 0/1 column or one-hot rows."""
        if self.task == "regression":
            y = self.y_scaler.transform(y) if self.y_scaler is not None else y
            return np.asarray(y, dtype=self.net.dtype)
        if isinstance(self.loss, CrossEntropyLoss):
            return np.asarray(y, dtype=np.int64)
        n_out = self.net.out_features
        if n_out == 1:
            return np.asarray(y, dtype=self.net.dtype).reshape(-1, 1)
        onehot = np.zeros((len(y), n_out), dtype=self.net.dtype)
        onehot[np.arange(len(y)), y] = 1
        return onehot

    def metrics(self, X: Any, y: Any, *, scaled: bool = False) -> dict[str, Any] | None:
        """loss and accuracy (and log_loss) for classification; loss, mse, mae and r2 for regression.
        The loss is the training loss J, fused exactly as in training where the pair allows.
        ``scaled``: X is already :meth:`inputs` of the raw rows (what the network was trained on)."""
        if len(y) == 0:
            return None
        with np.errstate(over="ignore", invalid="ignore"):
            z, raw = self._forward(X, scaled=scaled)  # one pass: logits and ŷ
        out = np.asarray(raw, dtype=np.float64)
        check_outputs(out)
        result: dict[str, Any] = {"n_samples": len(y),
                                  "loss": loss_of_outputs(self.net, self.loss, self.targets(y), z, raw)}
        if self.task == "regression":
            pred = self.values(out)
            result.update(mse=M.mse(y, pred), mae=M.mae(y, pred), r2=M.r2(y, pred))
        else:
            result["accuracy"] = M.accuracy(y, labels(out, self.output))
            proba = self.probabilities(out)
            if proba is not None:
                result["log_loss"] = M.log_loss(y, proba)
        return result


def load_predictor(path: str | os.PathLike) -> Predictor:
    """A model saved by ``handgrad train --out DIR`` (``DIR/model.safetensors``), ready for raw rows."""
    return Predictor.load(path)


__all__ = [
    "EVAL_CHUNK", "OUTPUT_KINDS", "Predictor", "check_features", "check_outputs", "check_network", "classification_scores", "decide",
    "is_multilabel", "labels", "load_predictor", "logits_and_outputs", "loss_of_outputs", "margin", "model_loss",
    "output_kind", "predict", "predict_labels", "predict_proba", "probabilities",
]
