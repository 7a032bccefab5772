"""``handgrad train``: train on built-in or user data from the shell.

``handgrad train`` with no arguments trains the homework's network (NYU DS-GA 1008 homework 1, see the README) (x -> Linear1 ->
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
import dataclasses
import json
import math
import os
import sys
import time
import warnings
from typing import Any

from .common import (
    CHECKPOINT_FILE,
    COLUMN,
    HISTORY_CSV,
    HISTORY_JSON,
    METRICS_FILE,
    MODEL_FILE,
    PLOT_FILE,
    REGRESSION_UNITS,
    class_report,
    data_options,
    echo,
    json_dump,
    load_data_arg,
    metric_columns,
    note,
    number,
    units_note,
    usage,
    write_history,
)

# The defaults, read by the options, their help and the code alike (tests hold the help to them).
# The homework's network (NYU DS-GA 1008 homework 1, see the README) on its own data: x -> Linear1 -> 5·ReLU
# -> Linear2 -> identity -> ŷ, the squared loss, plain SGD.
HOMEWORK_PROFILE: dict[str, Any] = {"hidden": [16], "f": "5relu", "g": "identity", "loss": "squared_error",
                                    "optimizer": "sgd", "epochs": 300}
DEFAULT_LR: dict[str, float] = {"sgd": 0.01, "adam": 0.001}  # the optimizers' own defaults (a test compares)
DEFAULT_HIDDEN = [64]
DEFAULTS: dict[str, Any] = {"batch_size": 32, "seed": 0, "patience": 20, "val_fraction": 0.15, "test_fraction": 0.15,
                            "early_stopping": True, "lr_schedule": "constant", "categorical": "off"}
LR_SCHEDULES = ("constant", "step", "cosine")
# L2 decay for classification: it lifts the worst random seed's test accuracy on digits (benchmarks/csv_vs_sklearn.py)
CLASSIFICATION_WEIGHT_DECAY = 1e-3
MAX_DEFAULT_STEPS = 20000  # default epochs: at most this many mini-batch steps, within the bounds below
MIN_DEFAULT_EPOCHS, MAX_DEFAULT_EPOCHS = 10, 200
# how the built-in data is split, recorded in the model so 'handgrad evaluate --split' takes the same rows
SPLIT_RULE = "train_val_test_split(seed=make_rng((seed, 1)))"

TRAIN_EXAMPLES = """\
examples:
  handgrad train                                   the homework's network on its data (homework_regression)
  handgrad train --data moons                      two moons (handgrad datasets lists them all)
  handgrad train --data digits --out runs/digits   save the model, its metrics and a loss curve
  handgrad train --data my.csv --target species    your CSV: text or integer target -> classes
  handgrad train --data xor --f tanh --g sigmoid --loss bce   the homework's classification network
"""


def register(subparsers: Any) -> None:
    """Add ``train`` to the ``handgrad`` parser."""
    p = subparsers.add_parser(
        "train", help="train a network on built-in or user data",
        description="Train a network with hand-derived gradients and print its metrics. With no arguments: "
                    "the homework's network (NYU DS-GA 1008 homework 1, see the README: 5·ReLU, identity output, squared loss, "
                    "SGD) on its built-in data, 'homework_regression'.",
        epilog=TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    data_options(p, required=False)
    p.add_argument("--task", choices=("regression", "classification"),
                   help="force the task (default: inferred; a text or integer target means classification)")
    p.add_argument("--drop", metavar="COL", action="append", default=[], help="ignore a column (repeatable)")
    p.add_argument("--categorical", choices=("off", "auto"), default=DEFAULTS["categorical"],
                   help="auto: one-hot encode each text feature column of a CSV/Parquet file (one 0/1 column per "
                        "category, stored with the model; unseen categories are reported at predict time); off: "
                        f"text features are an error, drop them with --drop (default {DEFAULTS['categorical']})")
    net = p.add_argument_group("network")
    net.add_argument("--hidden", metavar="N", type=int, action="append",
                     help="hidden layer width; repeat for depth (default: 16 for the homework data, else 64)")
    net.add_argument("--f", metavar="NAME", help="hidden activation: relu, 5relu, tanh, gelu, sigmoid, ...")
    net.add_argument("--g", metavar="NAME", help="output activation: identity, sigmoid, softmax, ...")
    net.add_argument("--loss", metavar="NAME", help="mse, squared_error, bce, bce_with_logits, cross_entropy")
    opt = p.add_argument_group("optimization")
    opt.add_argument("--optimizer", metavar="NAME",
                     help=f"{' or '.join(DEFAULT_LR)} (default: {HOMEWORK_PROFILE['optimizer']} for the homework "
                          "data, else adam)")
    opt.add_argument("--lr", type=float, help="learning rate (default: " + ", ".join(
        f"{lr:g} for {name}" for name, lr in DEFAULT_LR.items()) + ")")
    opt.add_argument("--lr-schedule", metavar="NAME", choices=LR_SCHEDULES, default=DEFAULTS["lr_schedule"],
                     help="learning-rate schedule: constant, step (x0.1 after each third of the epochs) or cosine "
                          f"(annealed to 0.01 of --lr over the epochs) (default {DEFAULTS['lr_schedule']})")
    opt.add_argument("--clip-grad-norm", metavar="MAX", type=float,
                     help="rescale the gradients to this global norm when it is exceeded (default: no clipping)")
    opt.add_argument("--momentum", type=float, default=None, help="SGD momentum (default 0)")
    opt.add_argument("--weight-decay", type=float, default=None,
                     help=f"L2 weight decay λ, added to the gradient as λθ (default: {CLASSIFICATION_WEIGHT_DECAY:g} "
                          "for classification, else 0)")
    opt.add_argument("--epochs", type=int,
                     help=f"passes over the training data (default: {HOMEWORK_PROFILE['epochs']} for the homework "
                          f"data; else {MAX_DEFAULT_STEPS} mini-batch steps' worth, between {MIN_DEFAULT_EPOCHS} and "
                          f"{MAX_DEFAULT_EPOCHS}; early stopping usually ends sooner)")
    opt.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"],
                     help=f"mini-batch size (default {DEFAULTS['batch_size']})")
    opt.add_argument("--seed", type=int, default=DEFAULTS["seed"],
                     help=f"random seed of the split, the weights and the shuffling (default {DEFAULTS['seed']})")
    opt.add_argument("--early-stopping", action=argparse.BooleanOptionalAction, default=DEFAULTS["early_stopping"],
                     help="stop when the validation loss has not improved for --patience epochs and keep the "
                          "best weights (default: on)")
    opt.add_argument("--patience", type=int, default=DEFAULTS["patience"],
                     help=f"early-stopping patience in epochs (default {DEFAULTS['patience']})")
    opt.add_argument("--val-fraction", type=float, default=DEFAULTS["val_fraction"],
                     help=f"validation share of the data (default {DEFAULTS['val_fraction']:g})")
    opt.add_argument("--test-fraction", type=float, default=DEFAULTS["test_fraction"],
                     help=f"test share of the data (default {DEFAULTS['test_fraction']:g})")
    opt.add_argument("--no-standardize", dest="standardize", action="store_false",
                     help="do not standardise the inputs (and regression targets)")
    out = p.add_argument_group("output")
    out.add_argument("--out", metavar="DIR", help=f"write {MODEL_FILE}, {METRICS_FILE}, {HISTORY_CSV}, "
                                                  f"{HISTORY_JSON}, {PLOT_FILE} and {CHECKPOINT_FILE} (after epoch 1, then every few, and at the end) "
                                                  "into DIR (created if needed)")
    out.add_argument("--force", action="store_true", help="overwrite an existing model in --out")
    out.add_argument("--metrics-json", metavar="PATH", help="write train/validation/test metrics as JSON")
    out.add_argument("--checkpoint", metavar="PATH",
                     help=f"checkpoint file written after the first epoch, then as often as keeps its cost near 5%% "
                          f"of the training time, and after the last (default: DIR/{CHECKPOINT_FILE} with --out)")
    out.add_argument("--resume", metavar="PATH", nargs="?", const=True,
                     help="continue from a checkpoint (default: the one in --out)")
    out.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    p.add_argument("--nproc", metavar="N", type=int,
                   help="train data-parallel in N local processes (torch.distributed, gloo on 127.0.0.1); under "
                        "torchrun leave it out: RANK and WORLD_SIZE come from the environment")
    p.set_defaults(handler=run_train)



# ====================================================================== choosing the network


def _is_homework_run(args: argparse.Namespace) -> bool:
    from ..data.builtin import DEFAULT_DATASET, canonical_name

    return args.data is None or (canonical_name(args.data) == DEFAULT_DATASET and not os.path.exists(args.data))


def _choose_head(args: argparse.Namespace, ds: Any) -> dict[str, Any]:
    """Output width, g, loss and how to read the outputs, from the task and the options given."""
    from ..validation import normalize_name

    seed = _is_homework_run(args)
    g = normalize_name(args.g) if args.g else None
    loss = normalize_name(args.loss) if args.loss else None
    if ds.task == "regression":
        if loss in ("bce", "bce_with_logits", "cross_entropy", "ce"):
            raise usage(f"--loss {args.loss} is for classification, but {ds.name} is a regression dataset "
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
            raise usage(f"--loss cross_entropy takes logits (--g identity) or probabilities (--g softmax), "
                         f"not --g {args.g}")
        return {"out": C, "g": g, "loss": "cross_entropy", "output": "softmax" if g == "softmax" else "logits"}
    out = 1 if C == 2 else C
    if loss == "bce":
        g = g or "sigmoid"
        if g != "sigmoid":
            raise usage(f"--loss bce takes probabilities from --g sigmoid, not --g {args.g} "
                         "(for logits use --loss bce_with_logits --g identity)")
        return {"out": out, "g": g, "loss": loss, "output": "sigmoid"}
    if loss == "bce_with_logits":
        g = g or "identity"
        if g not in ("identity", "linear"):
            raise usage(f"--loss bce_with_logits takes logits (--g identity), not --g {args.g} (or use --loss bce)")
        return {"out": out, "g": g, "loss": loss, "output": "sigmoid_logits"}
    return {"out": out, "g": g or "sigmoid", "loss": loss, "output": "scores"}


def _settings(args: argparse.Namespace, ds: Any, n_train: int) -> dict[str, Any]:
    """Every training setting: the options given, else the defaults for this task and data."""
    seed = _is_homework_run(args)
    head = _choose_head(args, ds)
    hidden = args.hidden or (HOMEWORK_PROFILE["hidden"] if seed else DEFAULT_HIDDEN)
    optimizer = (args.optimizer or (HOMEWORK_PROFILE["optimizer"] if seed else "adam")).strip().lower()
    lr = args.lr if args.lr is not None else DEFAULT_LR.get(optimizer, DEFAULT_LR["sgd"])  # unknown: named later
    batch = args.batch_size
    steps = max(1, math.ceil(n_train / max(batch, 1)))
    epochs = args.epochs if args.epochs is not None else (
        HOMEWORK_PROFILE["epochs"] if seed else min(MAX_DEFAULT_EPOCHS, max(MIN_DEFAULT_EPOCHS, MAX_DEFAULT_STEPS // steps)))
    f = args.f or (HOMEWORK_PROFILE["f"] if seed else "relu")
    decay = args.weight_decay if args.weight_decay is not None else (
        CLASSIFICATION_WEIGHT_DECAY if ds.task == "classification" else 0.0)
    return {"hidden": hidden, "f": f, **head, "optimizer": optimizer, "lr": lr, "epochs": epochs,
            "batch_size": batch, "momentum": args.momentum, "weight_decay": decay,
            "lr_schedule": args.lr_schedule, "clip_grad_norm": args.clip_grad_norm}


def _check_args(args: argparse.Namespace) -> None:
    """The library's validators under the options' names: a bad value is a usage error."""
    from ..validation import check_int, check_positive_float, check_unit_interval

    checks: list[tuple[Any, ...]] = [
        (check_int, "--epochs", args.epochs, 0), (check_int, "--batch-size", args.batch_size, 1),
        (check_int, "--patience", args.patience, 1), (check_int, "--seed", args.seed, 0),
        (check_positive_float, "--lr", args.lr), (check_unit_interval, "--momentum", args.momentum),
        (check_positive_float, "--clip-grad-norm", args.clip_grad_norm),
        (check_unit_interval, "--val-fraction", args.val_fraction),
        (check_unit_interval, "--test-fraction", args.test_fraction),
        *((check_int, "--hidden", h, 1) for h in args.hidden or []),
    ]
    try:
        for check, name, value, *rest in checks:
            if value is not None:
                check(name, value, *rest)
        if args.weight_decay is not None:
            check_positive_float("--weight-decay", args.weight_decay, allow_zero=True)
    except (TypeError, ValueError) as exc:
        raise usage(str(exc)) from None
    if args.val_fraction + args.test_fraction >= 1:
        raise usage("--val-fraction + --test-fraction must be below 1 (some data must train)")
    if args.momentum is not None and (args.optimizer or "").strip().lower() == "adam":
        raise usage("--momentum applies to --optimizer sgd (Adam has its own moment estimates)")
    if args.out and os.path.lexists(args.out) and not os.path.isdir(args.out):
        raise usage(f"--out {args.out!r} exists and is not a directory")


def _check_out_free(args: argparse.Namespace, ds: Any, settings: dict[str, Any]) -> None:
    """An existing model in --out is kept unless --force; the message offers only what would work here."""
    if not args.out or args.force or args.resume or not os.path.exists(os.path.join(args.out, MODEL_FILE)):
        return
    path = os.path.join(args.out, MODEL_FILE)
    ways = ["pass --force to overwrite it", "give another --out"]
    if os.path.isfile(os.path.join(args.out, CHECKPOINT_FILE)) and _same_run(path, ds, settings, args.seed):
        ways.append("add --resume with a larger --epochs to continue its run")
    raise usage(f"{path!r} exists; " + ", or ".join(ways))


def _same_run(path: str, ds: Any, settings: dict[str, Any], seed: int) -> bool:
    """Whether the model in ``path`` was trained with these settings (all but the epochs), so --resume would work."""
    try:
        from ..inference import load_predictor

        info = load_predictor(path).info or {}
    except Exception:  # noqa: BLE001 - an unreadable model is simply not offered for resuming
        return False
    saved = dict(info.get("settings") or {})
    now = json.loads(json.dumps(settings, default=str))
    saved.pop("epochs", None)
    now.pop("epochs", None)
    return bool(info.get("dataset") == ds.name and info.get("seed") == seed and saved == now)


def _build(settings: dict[str, Any], ds: Any, seed: Any) -> tuple[Any, Any, Any]:
    """The network, the loss and the optimizer (validated names raise usage errors)."""
    from ..inference import model_loss
    from ..model import MLP
    from ..optim import make_optimizer
    from ..registry import make_activation

    try:
        make_activation(settings["f"])
        make_activation(settings["g"])
        loss = model_loss(settings["loss"])
    except (ValueError, TypeError) as exc:
        raise usage(str(exc)) from None
    net = MLP(ds.n_features, settings["hidden"], settings["out"], settings["f"], settings["g"], seed=seed)
    kwargs: dict[str, Any] = {"lr": settings["lr"], "weight_decay": settings["weight_decay"]}
    if settings["momentum"] is not None:
        kwargs["momentum"] = settings["momentum"]
    try:
        opt = make_optimizer(settings["optimizer"], net, **kwargs)
    except (ValueError, TypeError) as exc:
        raise usage(f"--optimizer: {exc}") from None
    return net, loss, opt


def _describe_net(net: Any, settings: dict[str, Any]) -> str:
    sizes = [net.in_features, *settings["hidden"], net.out_features]
    return (f"{' -> '.join(map(str, sizes))}, f = {settings['f']}, g = {settings['g']}, "
            f"{net.n_parameters()} parameters")


# ====================================================================== train
def run_train(args: argparse.Namespace) -> int:
    import contextlib

    from ..distributed import launched
    from ..outputs import lock_directory

    _check_args(args)
    if args.nproc is not None and not launched():
        return _launch(args)  # each of the N processes runs this command again, as one rank
    writes = not launched() or os.environ["RANK"] == "0"  # of several ranks, rank 0 alone writes into --out
    with lock_directory(args.out) if args.out and writes else contextlib.nullcontext():  # one run per --out at a time
        return _run_train(args)


def _claim_outputs(args: argparse.Namespace, checkpoint: str, temporary: bool, resume: str | None) -> None:
    """Refuse, before training, every output the run may not write (the rule is handgrad.outputs')."""
    from ..outputs import OutputError, check_output

    inputs = [p for p in (args.data, resume) if p and os.path.exists(p)]
    claims = [(args.metrics_json, "json", "--metrics-json", args.force)]
    if args.out:
        claims += [(os.path.join(args.out, name), kind, "--out", args.force or bool(resume))
                   for name, kind in ((MODEL_FILE, "model"), (METRICS_FILE, "json"), (HISTORY_CSV, "csv"),
                                      (HISTORY_JSON, "json"), (PLOT_FILE, "png"))]
    if not temporary:  # a resumed run's own checkpoint is both its input and its output
        claims.append((checkpoint, "checkpoint", "--checkpoint", args.force or resume == checkpoint))
    for path, kind, what, force in claims:
        if not path:
            continue
        try:
            check_output(path, force=force, kind=kind, what=what,
                         inputs=[p for p in inputs if not (resume == p == path)])
        except OutputError as exc:
            raise usage(str(exc)) from None


def _run_train(args: argparse.Namespace) -> int:
    from ..data import DEFAULT_DATASET, Standardizer, train_val_test_split
    from ..distributed import launched
    from ..errors import ConvergenceWarning, DivergenceError
    from ..inference import Predictor
    from ..train import fit, still_improving
    from ..validation import make_rng

    ds, categories = _load(args, args.data or DEFAULT_DATASET)
    train, val, test = train_val_test_split(ds, args.val_fraction, args.test_fraction,
                                            seed=make_rng((args.seed, 1)))
    settings = _settings(args, ds, train.n_samples)
    _check_out_free(args, ds, settings)
    net, loss, opt = _build(settings, ds, make_rng((args.seed, 2)))
    summary = ds.summary()
    # the splits hold their own rows: let the whole table go before the scaled copies are made
    # (a 10,000,000-row file's features are 760 MB as float32)
    ds = _without_rows(ds)
    scale = args.standardize
    model = Predictor(net, task=ds.task, loss=settings["loss"],
                      feature_names=ds.feature_names, target_name=ds.target_name, class_labels=ds.class_labels,
                      x_scaler=Standardizer().fit(train.X) if scale else None,
                      y_scaler=Standardizer().fit(train.y) if scale and ds.task == "regression" else None,
                      g=settings["g"])
    validation = (model.inputs(val.X), model.targets(val.y)) if val.n_samples else None
    early = bool(args.early_stopping and validation is not None)
    checkpoint, temporary = _checkpoint_path(args)
    resume = _resume_path(args, checkpoint)
    if launched() and os.environ["RANK"] != "0":  # rank 0 prints and writes the results
        args.quiet, args.out, args.metrics_json, temporary = True, None, None, False
    else:
        _claim_outputs(args, checkpoint, temporary, resume)
    echo(args, *_header(summary, ds, train, val, test, net, settings, early, args))
    if resume:
        note(args, _resuming(resume, settings["epochs"]))
    # the training rows as the network takes them; the raw ones are not needed again (the final
    # metrics read these), so a large file is in memory once less during fit
    train_inputs, train_y = model.inputs(train.X), train.y
    train = _without_rows(train)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            history = fit(net, train_inputs, model.targets(train_y), loss, optimizer=opt,
                          epochs=settings["epochs"], batch_size=settings["batch_size"], seed=args.seed,
                          validation_data=validation, task=ds.task, early_stopping=early, patience=args.patience,
                          progress=not args.quiet, checkpoint=checkpoint, resume=resume,
                          schedule=None if settings["lr_schedule"] == "constant" else settings["lr_schedule"],
                          clip_grad_norm=settings["clip_grad_norm"], distributed=launched())
        _replay_warnings(args, caught)
    except DivergenceError as exc:
        if temporary and os.path.exists(checkpoint):
            os.remove(checkpoint)
        raise DivergenceError(_divergence_advice(exc, settings, args)) from None
    except KeyboardInterrupt:
        return _interrupted(args, checkpoint)
    except BaseException:
        if temporary and os.path.exists(checkpoint):
            os.remove(checkpoint)  # a failed run (e.g. diverged) leaves no temporary file behind
        raise
    seconds = time.perf_counter() - t0
    report = {"task": ds.task, "train": model.metrics(train_inputs, train_y, scaled=True),
              "validation": model.metrics(val.X, val.y), "test": model.metrics(test.X, test.y),
              "dataset": ds.name, "epochs": len(history), "best_epoch": history.best_epoch,
              "stop_reason": history.stop_reason,
              "still_improving": still_improving(history, settings["epochs"]) if validation is not None else None}
    if ds.task == "classification" and test.n_samples:
        report["test_classes"] = class_report(model, test.X, test.y)
    elif ds.task == "regression":
        report["units"] = REGRESSION_UNITS
    if categories:
        model.info["categories"] = categories
    model.info = {**model.info, "dataset": ds.name, "settings": {k: v for k, v in settings.items()}, "seed": args.seed,
                  "split": {"seed": args.seed, "val_fraction": args.val_fraction, "test_fraction": args.test_fraction,
                            "rule": SPLIT_RULE},
                  "epochs_run": len(history), "best_epoch": history.best_epoch,
                  "standardized": bool(scale), "test_metrics": report["test"]}
    # everything is saved before the summary is printed: a closed stdout (| head -1) loses nothing
    if args.metrics_json:
        json_dump(args.metrics_json, report, force=True, what="--metrics-json")  # claimed before training
    if args.out:
        _write_out(args, model, report, history)
    if temporary and os.path.exists(checkpoint):
        os.remove(checkpoint)  # the run finished: its temporary checkpoint is no longer needed
    echo(args, _ending(history, seconds), *_table(report, model))
    return 0


def _load(args: argparse.Namespace, source: str) -> tuple[Any, dict[str, list[str]]]:
    """The data set, and with --categorical auto the categories of its text feature columns (one-hot encoded)."""
    if args.categorical == "off" or not os.path.isfile(source):
        # a file's features are read as float32, what the network trains on: the data is in memory once, at half
        # the size (a 10,000,000-row CSV trains within 3 GB); built-in data sets are small and stay float64
        dtype = "float32" if os.path.isfile(source) else "float64"
        return load_data_arg(args, source, task=args.task, drop=args.drop, dtype=dtype), {}
    from ..data.categorical import fit_categories, one_hot, read_table
    from ..data.columns import table_to_dataset

    table = read_table(source, args.delimiter)
    if table is None:  # NPZ: arrays of numbers, nothing to encode
        return load_data_arg(args, source, task=args.task, drop=args.drop), {}
    target = args.target or table.header[-1]
    categories = fit_categories(table, skip=[target, *args.drop])
    encoded, _ = one_hot(table, categories)
    return table_to_dataset(encoded, target=target, task=args.task, drop=args.drop), categories


def _resuming(path: str, epochs: int) -> str:
    from ..io import load_checkpoint

    try:
        done = load_checkpoint(path).epoch
    except Exception:  # noqa: BLE001 - fit reports a bad checkpoint in its own words
        return f"resuming from {path}"
    return f"resumed from {path} at epoch {done}; training on to epoch {epochs}"


def _replay_warnings(args: argparse.Namespace, caught: list[Any]) -> None:
    """fit's warnings as one line each on standard error (the ConvergenceWarning names the option to change)."""
    from ..errors import ConvergenceWarning

    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            note(args, f"warning: {w.message} (pass a larger --epochs)")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _divergence_advice(exc: Any, settings: dict[str, Any], args: argparse.Namespace) -> str:
    """fit's account of the divergence, with advice in this command's options (each one exists here)."""
    lr = exc.lr if exc.lr is not None else settings["lr"]
    tips = [f"a smaller --lr (e.g. --lr {lr / 10:g})"]
    if settings["clip_grad_norm"] is None:
        tips.append("gradient clipping (--clip-grad-norm 1.0)")
    if not args.standardize:
        tips.append("standardised inputs (leave out --no-standardize)")
    return f"{exc.summary or exc} Try {', or '.join(tips)}."


def _launch(args: argparse.Namespace) -> int:
    """--nproc N: run this command in N watched local processes, one replica each."""
    from ..distributed import launch
    from ..validation import check_int

    try:
        check_int("--nproc", args.nproc, 1)
    except (TypeError, ValueError) as exc:
        raise usage(str(exc)) from None
    if args.nproc == 1:
        args.nproc = None
        return run_train(args)
    echo(args, f"data-parallel: {args.nproc} processes on 127.0.0.1 (gloo), one all-reduce of the gradients per step")
    launch(_train_rank, args.nproc, (args,))
    return 0


def _train_rank(rank: int, world_size: int, args: argparse.Namespace) -> None:
    code = run_train(args)
    if code:
        raise SystemExit(code)


def _run_key(args: argparse.Namespace) -> str:
    import hashlib

    skip = {"epochs", "resume", "quiet", "metrics_json", "out", "force", "checkpoint", "handler", "debug", "command",
            "nproc"}
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
        raise usage(f"--resume: no checkpoint at {path!r}" + ("" if args.resume is not True else
                     " (pass --resume PATH, or the same --out as the interrupted run)"))
    return path


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


def _without_rows(ds: Any) -> Any:
    """The same data set's facts (name, task, classes, columns) with no rows: new empty arrays,
    not views, so that the rows' memory is released."""
    import numpy as np

    return dataclasses.replace(ds, X=np.empty((0,) + ds.X.shape[1:], ds.X.dtype),
                               y=np.empty((0,) + ds.y.shape[1:], ds.y.dtype))


def _header(summary: str, ds: Any, train: Any, val: Any, test: Any, net: Any, settings: dict[str, Any], early: bool,
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
        f"data: {summary}",
        f"split: {train.n_samples} train / {val.n_samples} validation / {test.n_samples} test (random seed {args.seed}), "
        f"{scaled}",
        f"network: {_describe_net(net, settings)}",
        f"training: loss {loss}, {opt_text}), batch {settings['batch_size']}, up to {settings['epochs']} epochs{stop}",
    ]


def _ending(history: Any, seconds: float) -> str:
    best = f", best epoch {history.best_epoch}" if history.best_epoch else ""
    why = " (early stopping)" if history.stopped_early else ""
    return f"trained {len(history)} epochs{why} in {seconds:.1f} s{best}"


def _table(report: dict[str, Any], model: Any) -> list[str]:
    cols = metric_columns(report["task"])
    lines = ["", f"{'':<12}" + "".join(f"{c:>{COLUMN}}" for c in cols)]
    for split in ("train", "validation", "test"):
        m = report[split]
        if m is None:
            continue
        lines.append(f"{split:<12}" + "".join(number(m[c]) for c in cols))
    if report["task"] == "regression":
        lines += ["", units_note(model)]
    return lines


def _write_out(args: argparse.Namespace, model: Any, report: dict[str, Any], history: Any) -> None:
    """The model, the metrics, the history and the loss curve; a missing matplotlib skips only the picture."""
    from ..optional import MissingDependencyError

    path = model.save(os.path.join(args.out, MODEL_FILE))
    json_dump(os.path.join(args.out, METRICS_FILE), report, force=True, what="--out")  # claimed before training
    written = [f"{path} (model)", f"{os.path.join(args.out, METRICS_FILE)} (metrics)"]
    written += write_history(args.out, history)
    lines: list[str] = []
    if not len(history):
        lines.append("note: no loss curve (0 epochs: the metrics are those of the initial weights)")
    else:
        try:
            from ..plots import plot_loss_curve

            plot_loss_curve(history, os.path.join(args.out, PLOT_FILE))
        except MissingDependencyError as exc:  # training and every other file still succeeded
            lines.append(f"note: {exc}; everything else in {args.out} was saved")
        else:
            written.append(f"{os.path.join(args.out, PLOT_FILE)} (loss curve)")
    note(args, "wrote " + ", ".join(written), *lines)


__all__ = ["MODEL_FILE", "register", "run_train"]
