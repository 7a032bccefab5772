"""``handgrad train | evaluate | predict | datasets``: train on built-in or user data from the shell.

``handgrad train`` with no arguments trains the seed's network (x -> Linear1 ->
5·ReLU -> Linear2 -> identity -> ŷ, squared loss, plain SGD) on the embedded
``seed`` dataset. With ``--data`` the defaults follow the task: a ReLU hidden
layer of 64 units and Adam, with softmax + cross-entropy for more than two
classes, sigmoid + binary cross-entropy for two, and identity + MSE for
regression. Inputs (and regression targets) are standardised on the training
split; the scaling is saved with the model, so ``evaluate`` and ``predict`` take
raw data.

Imports of NumPy and the library happen inside the handlers, so ``handgrad --help``
stays fast.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any

MODEL_FILE = "model.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"
METRICS_FILE = "metrics.json"
PLOT_FILE = "loss_curve.png"
CLI_FORMAT = 1  # version of the metadata this module writes into model files

TRAIN_EXAMPLES = """\
examples:
  handgrad train                                   the seed's network on the built-in 'seed' data
  handgrad train --data moons                      two moons (handgrad datasets lists them all)
  handgrad train --data digits --out runs/digits   save the model, its metrics and a loss curve
  handgrad train --data my.csv --target species    your CSV: text or integer target -> classes
  handgrad train --data xor --f tanh --g sigmoid --loss bce   the seed's classification network
"""


# ====================================================================== argument parsing
def register(subparsers: Any) -> None:
    """Add ``train``, ``evaluate``, ``predict`` and ``datasets`` to the ``handgrad`` parser."""
    _register_train(subparsers)
    _register_evaluate(subparsers)
    _register_predict(subparsers)
    p = subparsers.add_parser("datasets", help="list the built-in datasets",
                              description="List the built-in datasets (generated, or shipped by scikit-learn).")
    p.set_defaults(handler=run_datasets)


def _data_options(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--data", metavar="PATH|NAME", required=required,
                   help="a built-in dataset name (see 'handgrad datasets') or a .csv/.tsv/.npz/.parquet file"
                   + ("" if required else " (default: the built-in 'seed' data)"))
    p.add_argument("--target", metavar="COL", help="target column of a CSV/Parquet file (default: the last column)")
    p.add_argument("--delimiter", metavar="CHAR", help="CSV delimiter (default: detected from the header)")


def _register_train(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train", help="train a network on built-in or user data",
        description="Train a network with hand-derived gradients and print its metrics. With no arguments: "
                    "the seed's network (5·ReLU, identity output, squared loss, SGD) on the built-in 'seed' data.",
        epilog=TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _data_options(p, required=False)
    p.add_argument("--task", choices=("regression", "classification"),
                   help="force the task (default: inferred; a text or integer target means classification)")
    p.add_argument("--drop", metavar="COL", action="append", default=[], help="ignore a column (repeatable)")
    net = p.add_argument_group("network")
    net.add_argument("--hidden", metavar="N", type=int, action="append",
                     help="hidden layer width; repeat for depth (default: 16 for the seed data, else 64)")
    net.add_argument("--f", metavar="NAME", help="hidden activation: relu, 5relu, tanh, gelu, sigmoid, ...")
    net.add_argument("--g", metavar="NAME", help="output activation: identity, sigmoid, softmax, ...")
    net.add_argument("--loss", metavar="NAME", help="mse, squared_error, bce, bce_with_logits, cross_entropy")
    opt = p.add_argument_group("optimization")
    opt.add_argument("--optimizer", metavar="NAME", help="sgd or adam (default: sgd for the seed data, else adam)")
    opt.add_argument("--lr", type=float, help="learning rate (default: 0.05 for sgd, 0.001 for adam)")
    opt.add_argument("--momentum", type=float, default=None, help="SGD momentum (default 0)")
    opt.add_argument("--weight-decay", type=float, default=None,
                     help="L2 weight decay λ, added to the gradient as λθ (default: 0.001 for classification, else 0)")
    opt.add_argument("--epochs", type=int, help="passes over the training data (default: up to 200, fewer on "
                                                "large data; early stopping usually ends sooner)")
    opt.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default 32)")
    opt.add_argument("--seed", type=int, default=0, help="seed of the split, the weights and the shuffling (default 0)")
    opt.add_argument("--early-stopping", action=argparse.BooleanOptionalAction, default=True,
                     help="stop when the validation loss has not improved for --patience epochs and keep the "
                          "best weights (default: on)")
    opt.add_argument("--patience", type=int, default=20, help="early-stopping patience in epochs (default 20)")
    opt.add_argument("--val-fraction", type=float, default=0.15, help="validation share of the data (default 0.15)")
    opt.add_argument("--test-fraction", type=float, default=0.15, help="test share of the data (default 0.15)")
    opt.add_argument("--no-standardize", dest="standardize", action="store_false",
                     help="do not standardise the inputs (and regression targets)")
    out = p.add_argument_group("output")
    out.add_argument("--out", metavar="DIR", help=f"write {MODEL_FILE}, {METRICS_FILE}, {PLOT_FILE} and "
                                                  f"{CHECKPOINT_FILE} (per epoch) into DIR (created if needed)")
    out.add_argument("--force", action="store_true", help="overwrite an existing model in --out")
    out.add_argument("--metrics-json", metavar="PATH", help="write train/validation/test metrics as JSON")
    out.add_argument("--checkpoint", metavar="PATH", help=f"checkpoint file written after every epoch "
                                                          f"(default: DIR/{CHECKPOINT_FILE} with --out)")
    out.add_argument("--resume", metavar="PATH", nargs="?", const=True,
                     help="continue from a checkpoint (default: the one in --out)")
    out.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    p.set_defaults(handler=run_train)


def _register_evaluate(subparsers: Any) -> None:
    p = subparsers.add_parser("evaluate", help="metrics of a saved model on labelled data",
                              description="Print a saved model's metrics on labelled data (loss and accuracy for "
                                          "classification; loss, mse, mae and r2 for regression).")
    p.add_argument("model", metavar="MODEL", help=f"a model file ({MODEL_FILE} from 'handgrad train --out')")
    _data_options(p, required=True)
    p.add_argument("--metrics-json", metavar="PATH", help="also write the metrics as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    p.set_defaults(handler=run_evaluate)


def _register_predict(subparsers: Any) -> None:
    p = subparsers.add_parser("predict", help="predictions of a saved model as CSV",
                              description="Write a saved model's predictions as CSV (one row per input row, "
                                          "in order): class labels, or regression values.")
    p.add_argument("model", metavar="MODEL", help=f"a model file ({MODEL_FILE} from 'handgrad train --out')")
    _data_options(p, required=True)
    p.add_argument("--output", "-o", metavar="CSV", help="write to this file instead of standard output")
    p.add_argument("--proba", action="store_true", help="add one probability column per class")
    p.set_defaults(handler=run_predict)


# ====================================================================== shared helpers
def _usage(message: str) -> Exception:
    from ..cli import UsageError

    return UsageError(message)


def _load(args: argparse.Namespace, source: str, **kwargs: Any) -> Any:
    """load_data, with path mistakes (missing file, directory, unknown name) as usage errors."""
    from ..data import load_data

    try:
        return load_data(source, target=args.target, delimiter=args.delimiter, **kwargs)
    except FileNotFoundError as exc:
        raise _usage(f"--data: {exc}") from None
    except ValueError as exc:
        message = str(exc)
        if ("is a directory" in message or message.startswith("unknown dataset") or "applies to files" in message
                or message.startswith("built-in dataset")):
            raise _usage(f"--data: {message}") from None
        raise


def _echo(args: argparse.Namespace, *lines: str) -> None:
    if not getattr(args, "quiet", False):
        for line in lines:
            print(line)


def _json_dump(path: str, obj: Any) -> None:
    from ..io import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode())


# ====================================================================== the model and its preprocessing
OUTPUT_KINDS = ("regression", "softmax", "logits", "sigmoid", "sigmoid_logits", "scores")


class Predictor:
    """A trained network with what turns raw rows into its inputs and its outputs into answers.

    ``output`` says how to read the network's last layer: 'regression' (values, in
    standardised units when ``y_scaler`` is set), 'softmax' (class probabilities),
    'logits' (softmax of them gives probabilities), 'sigmoid' (P(class) per output),
    'sigmoid_logits' (sigmoid of them) or 'scores' (any other output trained with a
    squared loss: the largest score, or a score >= 0.5 for one output, wins).
    """

    def __init__(self, net: Any, *, task: str, loss: str, output: str, feature_names: list[str],
                 target_name: str | None, class_labels: list[Any] | None, x_scaler: Any = None,
                 y_scaler: Any = None, g: str = "identity", info: dict[str, Any] | None = None) -> None:
        self.net, self.task, self.loss_name, self.output = net, task, loss, output
        self.feature_names, self.target_name, self.class_labels = list(feature_names), target_name, class_labels
        self.x_scaler, self.y_scaler, self.g, self.info = x_scaler, y_scaler, g, dict(info or {})
        self.loss = make_cli_loss(loss)

    # ------------------------------------------------------------ files
    def metadata(self) -> dict[str, Any]:
        return {
            "cli_format": CLI_FORMAT, "task": self.task, "loss": self.loss_name, "output": self.output, "g": self.g,
            "feature_names": self.feature_names, "target_name": self.target_name, "class_labels": self.class_labels,
            "preprocessing": {"x": self.x_scaler.to_dict() if self.x_scaler else None,
                              "y": self.y_scaler.to_dict() if self.y_scaler else None},
            **self.info,
        }

    @classmethod
    def from_metadata(cls, net: Any, meta: dict[str, Any], path: str) -> Predictor:
        from ..data import Standardizer
        from ..errors import ModelFileError

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
        if len(meta["feature_names"]) != n_in or (x_scaler is not None and x_scaler.mean_.shape[0] != n_in):
            raise ModelFileError(f"{path!r}: the metadata names {len(meta['feature_names'])} features, "
                                 f"but the network takes {n_in}")
        info = {k: v for k, v in meta.items() if k not in (*needed, "cli_format", "target_name", "class_labels", "g")}
        return cls(net, task=meta["task"], loss=meta["loss"], output=meta["output"],
                   feature_names=meta["feature_names"], target_name=meta.get("target_name"),
                   class_labels=meta.get("class_labels"), x_scaler=x_scaler, y_scaler=y_scaler,
                   g=meta.get("g", "identity"), info=info)

    @classmethod
    def load(cls, path: str) -> Predictor:
        from ..io import load_model

        if not os.path.exists(path):
            raise _usage(f"no such model file: {path!r}")
        net, meta = load_model(path)
        return cls.from_metadata(net, meta, path)

    # ------------------------------------------------------------ forward
    def inputs(self, X: Any) -> Any:
        import numpy as np

        Z = self.x_scaler.transform(X) if self.x_scaler is not None else np.asarray(X, dtype=np.float64)
        return Z.astype(self.net.dtype, copy=False)

    def outputs(self, X: Any) -> Any:
        """The network's outputs (float64) for raw rows X."""
        import numpy as np

        out = self.net.forward(self.inputs(X))
        self.net.clear_cache()
        return np.asarray(out, dtype=np.float64)

    def predict(self, X: Any) -> Any:
        """Regression: values (n, k) in the target's units; classification: class indices (n,)."""
        out = self.outputs(X)
        if self.task == "regression":
            return self.y_scaler.inverse_transform(out) if self.y_scaler is not None else out
        return self.decide(out)

    def decide(self, out: Any) -> Any:
        import numpy as np

        if out.shape[1] == 1:
            threshold = 0.0 if self.output == "sigmoid_logits" else 0.5
            return (out[:, 0] >= threshold).astype(np.int64)
        return np.argmax(out, axis=1).astype(np.int64)

    def proba(self, X: Any) -> Any:
        """Class probabilities (n, C), or None when the outputs are not probabilities."""
        return self.probabilities(self.outputs(X))

    def probabilities(self, out: Any) -> Any:
        import numpy as np

        from .. import functional as F

        kind = self.output
        if kind == "scores":
            kind = {"sigmoid": "sigmoid", "softmax": "softmax"}.get(self.g)
        if kind is None or self.task != "classification":
            return None
        if kind == "logits":
            return F.softmax(out)
        if kind == "softmax":
            return out
        p = F.sigmoid(out) if kind == "sigmoid_logits" else np.clip(out, 0.0, 1.0)
        if p.shape[1] == 1:
            return np.column_stack([1.0 - p[:, 0], p[:, 0]])
        total = p.sum(axis=1, keepdims=True)
        return np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])

    # ------------------------------------------------------------ targets, loss, metrics
    def targets(self, y: Any) -> Any:
        """y as the loss wants it: standardised values, class indices, a 0/1 column or one-hot rows."""
        import numpy as np

        if self.task == "regression":
            y = self.y_scaler.transform(y) if self.y_scaler is not None else y
            return np.asarray(y, dtype=self.net.dtype)
        if self.output in ("softmax", "logits"):
            return np.asarray(y, dtype=np.int64)
        n_out = self.net.out_features
        if n_out == 1:
            return np.asarray(y, dtype=self.net.dtype).reshape(-1, 1)
        onehot = np.zeros((len(y), n_out), dtype=self.net.dtype)
        onehot[np.arange(len(y)), y] = 1
        return onehot

    def metrics(self, X: Any, y: Any) -> dict[str, Any] | None:
        """loss and accuracy (and log_loss) for classification; loss, mse, mae and r2 for regression.
        The loss is the training loss J, fused exactly as in training where the pair allows."""
        import numpy as np

        from .. import metrics as M
        from ..train import _outputs, loss_of_outputs

        if len(y) == 0:
            return None
        z, raw = _outputs(self.net, self.inputs(X))  # one pass gives both the logits and ŷ
        out = np.asarray(raw, dtype=np.float64)
        loss = loss_of_outputs(self.net, self.loss, self.targets(y), z, raw)
        result: dict[str, Any] = {"n_samples": len(y), "loss": loss}
        if self.task == "regression":
            pred = self.y_scaler.inverse_transform(out) if self.y_scaler is not None else out
            result.update(mse=M.mse(y, pred), mae=M.mae(y, pred), r2=M.r2(y, pred))
        else:
            result["accuracy"] = M.accuracy(y, self.decide(out))
            proba = self.probabilities(out)
            if proba is not None:
                result["log_loss"] = M.log_loss(y, proba)
        return result


def make_cli_loss(name: str) -> Any:
    """A loss by name; the squared error is averaged over the batch (so lr does not depend on --batch-size)."""
    from .._checks import normalize_name
    from ..losses import SquaredErrorLoss, make_loss

    if normalize_name(name) in ("squared_error", "sse"):
        return SquaredErrorLoss("mean")
    return make_loss(name)


# ====================================================================== train: choosing the network
SEED_PROFILE = {"hidden": [16], "f": "5relu", "g": "identity", "loss": "squared_error", "optimizer": "sgd",
                "lr": 0.01, "epochs": 300}
# chosen by benchmarks/csv_vs_sklearn.py: on digits, test accuracy over seeds 0-9 went from a minimum of
# 0.9665 (mean 0.9773) without it to 0.9703 (mean 0.9792); the CSV benchmark moved by less than 1% either way
CLASSIFICATION_WEIGHT_DECAY = 1e-3
MAX_DEFAULT_STEPS = 20000  # default epochs: at most this many mini-batch steps (and 10 <= epochs <= 200)


def _is_seed_run(args: argparse.Namespace) -> bool:
    return args.data is None or (args.data == "seed" and not os.path.exists("seed"))


def _choose_head(args: argparse.Namespace, ds: Any) -> dict[str, Any]:
    """Output width, g, loss and how to read the outputs, from the task and the options given."""
    from .._checks import normalize_name

    seed = _is_seed_run(args)
    g = normalize_name(args.g) if args.g else None
    loss = normalize_name(args.loss) if args.loss else None
    if ds.task == "regression":
        if loss in ("bce", "bce_with_logits", "cross_entropy", "ce"):
            raise _usage(f"--loss {args.loss} is for classification, but {ds.name} is a regression dataset "
                         "(use mse or squared_error, or --task classification)")
        return {"out": ds.n_targets, "g": g or "identity", "loss": loss or ("squared_error" if seed else "mse"),
                "output": "regression"}
    C = ds.n_classes
    if C < 2:
        raise ValueError(f"{ds.name}: the target {ds.target_name!r} has a single class "
                         f"({ds.class_labels[0]!r}); classification needs at least 2")
    if loss is None:
        loss = {"sigmoid": "bce", "softmax": "cross_entropy", "identity": "cross_entropy", "linear": "cross_entropy",
                None: "bce" if C == 2 else "cross_entropy"}.get(g, "mse")
    if loss in ("cross_entropy", "ce"):
        g = g or "softmax"
        if g not in ("softmax", "identity", "linear"):
            raise _usage(f"--loss cross_entropy takes logits (--g identity) or probabilities (--g softmax), "
                         f"not --g {args.g}")
        return {"out": C, "g": g, "loss": "cross_entropy", "output": "softmax" if g == "softmax" else "logits"}
    out = 1 if C == 2 else C
    if loss == "bce":
        g = g or "sigmoid"
        if g != "sigmoid":
            raise _usage(f"--loss bce takes probabilities from --g sigmoid, not --g {args.g} "
                         "(for logits use --loss bce_with_logits --g identity)")
        return {"out": out, "g": g, "loss": loss, "output": "sigmoid"}
    if loss == "bce_with_logits":
        g = g or "identity"
        if g not in ("identity", "linear"):
            raise _usage(f"--loss bce_with_logits takes logits (--g identity), not --g {args.g} (or use --loss bce)")
        return {"out": out, "g": g, "loss": loss, "output": "sigmoid_logits"}
    return {"out": out, "g": g or "sigmoid", "loss": loss, "output": "scores"}


def _settings(args: argparse.Namespace, ds: Any, n_train: int) -> dict[str, Any]:
    """Every training setting: the options given, else the defaults for this task and data."""
    seed = _is_seed_run(args)
    head = _choose_head(args, ds)
    hidden = args.hidden or (SEED_PROFILE["hidden"] if seed else [64])
    optimizer = (args.optimizer or (SEED_PROFILE["optimizer"] if seed else "adam")).strip().lower()
    if args.lr is not None:
        lr = args.lr
    elif seed and optimizer == "sgd":
        lr = SEED_PROFILE["lr"]
    else:
        lr = 0.001 if optimizer == "adam" else 0.01
    batch = args.batch_size
    steps = max(1, math.ceil(n_train / max(batch, 1)))
    epochs = args.epochs if args.epochs is not None else (
        SEED_PROFILE["epochs"] if seed else min(200, max(10, MAX_DEFAULT_STEPS // steps)))
    f = args.f or (SEED_PROFILE["f"] if seed else "relu")
    decay = args.weight_decay if args.weight_decay is not None else (
        CLASSIFICATION_WEIGHT_DECAY if ds.task == "classification" else 0.0)
    return {"hidden": hidden, "f": f, **head, "optimizer": optimizer, "lr": lr, "epochs": epochs,
            "batch_size": batch, "momentum": args.momentum, "weight_decay": decay}


def _check_args(args: argparse.Namespace) -> None:
    for name in ("epochs", "batch_size", "patience"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise _usage(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise _usage(f"--lr must be a finite positive number, got {args.lr}")
    if args.weight_decay is not None and not (math.isfinite(args.weight_decay) and args.weight_decay >= 0):
        raise _usage(f"--weight-decay must be a finite number >= 0, got {args.weight_decay}")
    if args.momentum is not None and not 0 <= args.momentum < 1:
        raise _usage(f"--momentum must be in [0, 1), got {args.momentum}")
    if args.seed < 0:
        raise _usage(f"--seed must be >= 0, got {args.seed}")
    for h in args.hidden or []:
        if h < 1:
            raise _usage(f"--hidden must be >= 1, got {h}")
    for name in ("val_fraction", "test_fraction"):
        value = getattr(args, name)
        if not 0 <= value < 1:
            raise _usage(f"--{name.replace('_', '-')} must be in [0, 1), got {value}")
    if args.val_fraction + args.test_fraction >= 1:
        raise _usage("--val-fraction + --test-fraction must be below 1 (some data must train)")
    if args.momentum is not None and (args.optimizer or "").strip().lower() == "adam":
        raise _usage("--momentum applies to --optimizer sgd (Adam has its own moment estimates)")
    if args.out and os.path.exists(args.out) and not os.path.isdir(args.out):
        raise _usage(f"--out {args.out!r} exists and is not a directory")
    if args.out and not args.force and not args.resume and os.path.exists(os.path.join(args.out, MODEL_FILE)):
        raise _usage(f"{os.path.join(args.out, MODEL_FILE)!r} exists; pass --force to overwrite it "
                     "(or --resume to continue its run)")


def _build(settings: dict[str, Any], ds: Any, seed: int) -> tuple[Any, Any, Any]:
    """The network, the loss and the optimizer (validated names raise usage errors)."""
    from ..layers import make_activation
    from ..model import MLP
    from ..optim import make_optimizer

    try:
        make_activation(settings["f"])
        make_activation(settings["g"])
        loss = make_cli_loss(settings["loss"])
    except (ValueError, TypeError) as exc:
        raise _usage(str(exc)) from None
    net = MLP(ds.n_features, settings["hidden"], settings["out"], settings["f"], settings["g"], seed=seed)
    kwargs: dict[str, Any] = {"lr": settings["lr"], "weight_decay": settings["weight_decay"]}
    if settings["momentum"] is not None:
        kwargs["momentum"] = settings["momentum"]
    try:
        opt = make_optimizer(settings["optimizer"], net, **kwargs)
    except (ValueError, TypeError) as exc:
        raise _usage(f"--optimizer: {exc}") from None
    return net, loss, opt


def _describe_net(net: Any, settings: dict[str, Any]) -> str:
    sizes = [net.in_features, *settings["hidden"], net.out_features]
    return (f"{' -> '.join(map(str, sizes))}, f = {settings['f']}, g = {settings['g']}, "
            f"{net.n_parameters()} parameters")


# ====================================================================== train
def run_train(args: argparse.Namespace) -> int:
    import numpy as np

    from ..data import DEFAULT_DATASET, Standardizer, train_val_test_split
    from ..train import fit

    _check_args(args)
    ds = _load(args, source=args.data or DEFAULT_DATASET, task=args.task, drop=args.drop)
    train, val, test = train_val_test_split(ds, args.val_fraction, args.test_fraction,
                                            seed=np.random.default_rng([args.seed, 1]))
    settings = _settings(args, ds, train.n_samples)
    net, loss, opt = _build(settings, ds, np.random.default_rng([args.seed, 2]))
    scale = args.standardize
    model = Predictor(net, task=ds.task, loss=settings["loss"], output=settings["output"],
                      feature_names=ds.feature_names, target_name=ds.target_name, class_labels=ds.class_labels,
                      x_scaler=Standardizer().fit(train.X) if scale else None,
                      y_scaler=Standardizer().fit(train.y) if scale and ds.task == "regression" else None,
                      g=settings["g"])
    validation = (model.inputs(val.X), model.targets(val.y)) if val.n_samples else None
    early = bool(args.early_stopping and validation is not None)
    checkpoint, temporary = _checkpoint_path(args)
    resume = _resume_path(args, checkpoint)
    if args.out:
        _make_out_dir(args.out)
    _echo(args, *_header(ds, train, val, test, net, settings, early, args))
    t0 = time.perf_counter()
    try:
        history = fit(net, model.inputs(train.X), model.targets(train.y), loss, optimizer=opt,
                      epochs=settings["epochs"], batch_size=settings["batch_size"], seed=args.seed,
                      validation_data=validation, task=ds.task, early_stopping=early, patience=args.patience,
                      progress=not args.quiet, checkpoint=checkpoint, resume=resume)
    except KeyboardInterrupt:
        return _interrupted(args, checkpoint)
    except BaseException:
        if temporary and os.path.exists(checkpoint):
            os.remove(checkpoint)  # a failed run (e.g. diverged) leaves no temporary file behind
        raise
    seconds = time.perf_counter() - t0
    report = {"task": ds.task, "train": model.metrics(train.X, train.y),
              "validation": model.metrics(val.X, val.y), "test": model.metrics(test.X, test.y),
              "dataset": ds.name, "epochs": len(history), "best_epoch": history.best_epoch,
              "stop_reason": history.stop_reason}
    model.info = {"dataset": ds.name, "settings": {k: v for k, v in settings.items()}, "seed": args.seed,
                  "epochs_run": len(history), "best_epoch": history.best_epoch,
                  "standardized": bool(scale), "test_metrics": report["test"]}
    _echo(args, _ending(history, seconds), *_table(report))
    if args.metrics_json:
        _json_dump(args.metrics_json, report)
    if args.out:
        _write_out(args, model, report, history)
    if temporary and os.path.exists(checkpoint):
        os.remove(checkpoint)  # the run finished: its temporary checkpoint is no longer needed
    return 0


def _run_key(args: argparse.Namespace) -> str:
    import hashlib

    skip = {"epochs", "resume", "quiet", "metrics_json", "out", "force", "checkpoint", "handler", "debug", "command"}
    cfg = {k: v for k, v in sorted(vars(args).items()) if k not in skip}
    if cfg.get("data") and os.path.exists(cfg["data"]):
        cfg["data"] = os.path.abspath(cfg["data"])
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _checkpoint_path(args: argparse.Namespace) -> tuple[str, bool]:
    """Where each epoch is saved: --checkpoint, else DIR/checkpoint.safetensors, else a temporary file
    (named from the run's settings and removed when the run finishes)."""
    if args.checkpoint:
        return args.checkpoint, False
    if args.out:
        return os.path.join(args.out, CHECKPOINT_FILE), False
    if isinstance(args.resume, str):
        return args.resume, False
    return os.path.join(_scratch_dir(), f"handgrad-train-{_run_key(args)}.safetensors"), True


def _scratch_dir() -> str:
    """A memory-backed directory when there is one (saving each epoch costs no disk sync), else the temp dir."""
    import tempfile

    for candidate in (os.environ.get("XDG_RUNTIME_DIR"), "/dev/shm"):
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    return tempfile.gettempdir()


def _resume_path(args: argparse.Namespace, checkpoint: str) -> str | None:
    if not args.resume:
        return None
    path = checkpoint if args.resume is True else args.resume
    if not os.path.isfile(path):
        raise _usage(f"--resume: no checkpoint at {path!r}" + ("" if args.resume is not True else
                     " (pass --resume PATH, or the same --out as the interrupted run)"))
    return path


def _make_out_dir(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)  # --out names a directory to create, like mkdir -p
    except OSError as exc:
        raise OSError(f"cannot create --out directory {path!r}: {exc.strerror or exc} (errno {exc.errno})") from None


def _interrupted(args: argparse.Namespace, checkpoint: str) -> int:
    import shlex

    argv = sys.argv[1:]
    if os.path.isfile(checkpoint):
        from ..io import load_checkpoint

        try:
            epoch = load_checkpoint(checkpoint).epoch
        except Exception:  # noqa: BLE001 - the message below still helps
            epoch = None
        done = f"epoch {epoch} is saved" if epoch is not None else "the last finished epoch is saved"
        if "train" in argv:  # run from the shell: show the exact command
            argv = [a for a in argv[argv.index("train"):] if a != "--resume"]
            resume = "resume with: " + shlex.join(["handgrad", *argv, "--resume", checkpoint])
        else:
            resume = f"resume with the same command and --resume {shlex.quote(checkpoint)}"
        print(f"handgrad train: interrupted; {done} in {checkpoint}\n{resume}", file=sys.stderr)
    else:
        print("handgrad train: interrupted before the first epoch finished; nothing was saved", file=sys.stderr)
    return 130


def _header(ds: Any, train: Any, val: Any, test: Any, net: Any, settings: dict[str, Any], early: bool,
            args: argparse.Namespace) -> list[str]:
    opt = settings["optimizer"]
    opt_text = f"{'SGD' if opt == 'sgd' else 'Adam' if opt == 'adam' else opt}(lr={settings['lr']:g}"
    if settings["momentum"]:
        opt_text += f", momentum={settings['momentum']:g}"
    if settings["weight_decay"]:
        opt_text += f", weight_decay={settings['weight_decay']:g}"
    loss = settings["loss"] + (" (mean over the batch)" if settings["loss"] == "squared_error" else "")
    stop = f", early stopping (patience {args.patience})" if early else ""
    scaled = "standardised inputs" + (" and targets" if ds.task == "regression" else "") if args.standardize \
        else "raw inputs"
    return [
        f"data: {ds.summary()}",
        f"split: {train.n_samples} train / {val.n_samples} validation / {test.n_samples} test (seed {args.seed}), "
        f"{scaled}",
        f"network: {_describe_net(net, settings)}",
        f"training: loss {loss}, {opt_text}), batch {settings['batch_size']}, up to {settings['epochs']} epochs{stop}",
    ]


def _ending(history: Any, seconds: float) -> str:
    best = f", best epoch {history.best_epoch}" if history.best_epoch else ""
    why = " (early stopping)" if history.stopped_early else ""
    return f"trained {len(history)} epochs{why} in {seconds:.1f} s{best}"


def _table(report: dict[str, Any]) -> list[str]:
    cols = ["loss", "accuracy"] if report["task"] == "classification" else ["loss", "mse", "mae", "r2"]
    lines = ["", f"{'':<12}" + "".join(f"{c:>12}" for c in cols)]
    for split in ("train", "validation", "test"):
        m = report[split]
        if m is None:
            continue
        lines.append(f"{split:<12}" + "".join(f"{m[c]:>12.4f}" for c in cols))
    return lines


def _write_out(args: argparse.Namespace, model: Predictor, report: dict[str, Any], history: Any) -> None:
    from ..io import save_model

    path = save_model(os.path.join(args.out, MODEL_FILE), model.net, model.metadata())
    _json_dump(os.path.join(args.out, METRICS_FILE), report)
    lines = [f"saved: {path} (model), {os.path.join(args.out, METRICS_FILE)} (metrics)"]
    try:
        from ..plots import plot_loss_curve
    except ImportError as exc:  # matplotlib (or the plots module) missing: training still succeeded
        lines.append(f"note: no loss-curve plot ({exc}); install matplotlib: pip install matplotlib")
    else:
        plot_loss_curve(history, os.path.join(args.out, PLOT_FILE))
        lines.append(f"saved: {os.path.join(args.out, PLOT_FILE)} (loss curve)")
    _echo(args, *lines)


# ====================================================================== evaluate / predict / datasets
def _labelled(args: argparse.Namespace, model: Predictor) -> tuple[Any, Any]:
    from ..data import encode_labels, regression_targets

    target = args.target or model.target_name
    X, cells, where = _features_for(args, model, target)
    if cells is None:
        raise _usage(f"--data {args.data!r} has no target column {target!r}; name it with --target COL")
    if model.task == "classification":
        return X, encode_labels(cells, model.class_labels, source=args.data, column=str(target), where=where)
    return X, regression_targets(cells, source=args.data, column=str(target), where=where)


def _features_for(args: argparse.Namespace, model: Predictor, target: str | None) -> tuple[Any, Any, Any]:
    from ..data import load_features

    try:
        return load_features(args.data, model.feature_names, target=target, delimiter=args.delimiter)
    except FileNotFoundError as exc:
        raise _usage(f"--data: {exc}") from None
    except ValueError as exc:
        if "is a directory" in str(exc) or str(exc).startswith("unknown dataset"):
            raise _usage(f"--data: {exc}") from None
        raise


def run_evaluate(args: argparse.Namespace) -> int:
    model = Predictor.load(args.model)
    X, y = _labelled(args, model)
    m = model.metrics(X, y)
    report = {"task": model.task, "data": args.data, **m}
    cols = ["loss", "accuracy"] if model.task == "classification" else ["loss", "mse", "mae", "r2"]
    _echo(args, f"{args.model} on {args.data} ({m['n_samples']} samples):",
          *(f"  {c:<10}{m[c]:.6g}" for c in cols + (["log_loss"] if "log_loss" in m else [])))
    if args.metrics_json:
        _json_dump(args.metrics_json, report)
    return 0


def run_predict(args: argparse.Namespace) -> int:
    import csv
    import io

    model = Predictor.load(args.model)
    X, _, _ = _features_for(args, model, None)
    rows: list[list[Any]]
    if model.task == "regression":
        if args.proba:
            raise _usage("--proba applies to classification models; this model does regression")
        values = model.predict(X)
        name = model.target_name or "prediction"
        header = [name] if values.shape[1] == 1 else [f"{name}_{k + 1}" for k in range(values.shape[1])]
        rows = [[repr(float(v)) for v in row] for row in values]
    else:
        out = model.outputs(X)
        labels = [model.class_labels[i] for i in model.decide(out)]
        header, rows = [model.target_name or "prediction"], [[label] for label in labels]
        if args.proba:
            proba = model.probabilities(out)
            if proba is None:
                raise _usage(f"--proba: this model's outputs (g = {model.g}, loss {model.loss_name}) are scores, "
                             "not probabilities")
            header += [f"p_{label}" for label in model.class_labels]
            rows = [[*row, *(f"{p:.6g}" for p in prow)] for row, prow in zip(rows, proba)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    if args.output:
        from ..io import atomic_write_bytes

        atomic_write_bytes(args.output, buffer.getvalue().encode())
    else:
        print(buffer.getvalue(), end="")
    return 0


def run_datasets(args: argparse.Namespace) -> int:
    from ..data import list_datasets

    infos = list_datasets()
    width = max(len(i.name) for i in infos)
    print(f"{'name':<{width}}  {'task':<14}  {'source':<12}  description")
    for i in infos:
        print(f"{i.name:<{width}}  {i.task:<14}  {i.source:<12}  {i.description}")
    print("\nuse one with: handgrad train --data NAME   (scikit-learn ones need: pip install scikit-learn)")
    return 0
