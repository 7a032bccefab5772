"""``handgrad explain``: the forward pass, the backward pass (chain of Jacobians and matrix form)
and every Jacobian of a configured network, as text, Markdown or LaTeX; ``--at`` a point
evaluates and checks everything; ``--diff`` shows only what another configuration changes;
``--notation homework`` writes one sample in the homework's column notation;
``--check-formula`` judges a student's derivation. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import examples
from .options import build, model_path, network, network_options, numbers, write


def register(subparsers: Any) -> None:
    _register_explain(subparsers)


def _register_explain(sub: Any) -> None:
    p = sub.add_parser(
        "explain", help="derive the forward pass, the gradients and the Jacobians of a network",
        **examples(
            ("handgrad explain", "the homework's network: every equation and gradient"),
            ("handgrad explain --preset classification-bce", "tanh, sigmoid and binary cross-entropy"),
            ("handgrad explain --at random", "evaluate it at a point and check every gradient"),
            ("handgrad explain --model runs/m", "a network trained with 'handgrad train --out runs/m'"),
        ),
        description=("Print the derivation of a network and loss: each layer's equation with shapes, every "
                     "parameter gradient as a chain of Jacobians and in matrix form, and each Jacobian element "
                     "by element, rendered from the layers' own derivation records. --at evaluates everything "
                     "at a point and checks each gradient against finite differences and PyTorch (exit 1 if a "
                     "check fails). --diff shows only the equations another configuration changes."),
    )
    network_options(p)
    p.add_argument("--format", choices=("text", "markdown", "latex"), default="text", help="output format")
    p.add_argument("--at", metavar="X|random",
                   help="evaluate at x: numbers such as '0.5,-1,2' (rows separated by ';'), or 'random' (drawn with --seed)")
    p.add_argument("--target", metavar="Y", help="the targets y at --at (default: drawn with --seed)")
    p.add_argument("--batch", type=int, default=1, help="rows drawn by --at random (default 1)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--diff", metavar="SPEC",
                   help="compare with another configuration: a preset name, or overrides like 'loss=bce' or "
                        "'f=relu,g=sigmoid'")
    p.add_argument("--check-formula", metavar="FORMULA",
                   help="judge your derivation, e.g. 'dJdW2 = dJdz3.T @ z2' (names: x, z1.., y_hat, y, W1, b1.., "
                        "dJdz3, dJdW2 ...; @ .T * + - / ** sum diag outer tanh sigmoid exp log); parsed, never run; "
                        "exit 1 if wrong")
    p.add_argument("--notation", choices=("batch", "homework"), default="batch",
                   help="batch: samples as rows, x W1ᵀ + b1 (the code's layout, default); homework: one sample as a "
                        "column, W(1)x + b(1), numerator layout, with the bridge between the two")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    p.add_argument("--force", action="store_true", help="replace an output file that handgrad wrote before")
    p.set_defaults(handler=run_explain)


def _diff_overrides(spec: str) -> dict[str, Any]:
    from ..cli import UsageError
    from ..explain import PRESETS

    if spec in PRESETS:
        return {"preset": spec, "f": None, "g": None, "loss": None}
    out: dict[str, Any] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in ("f", "g", "loss", "n", "m", "K", "hidden", "preset"):
            raise UsageError(f"--diff expects a preset ({', '.join(PRESETS)}) or key=value pairs with keys f, g, "
                             f"loss, n, m, K, hidden, preset; got {spec!r}")
        value = value.strip()
        if key in ("n", "m", "K"):
            try:
                out[key] = int(value)
            except ValueError:
                raise UsageError(f"--diff: {key} must be an int, got {value!r}") from None
        elif key == "hidden":
            try:
                out["hidden"], out["m"] = [int(v) for v in value.split("x")], None
            except ValueError:
                raise UsageError(f"--diff: hidden must be widths like 8x8, got {value!r}") from None
        else:
            out[key] = value
    return out


def _diff_other(args: argparse.Namespace, net: Any) -> tuple[Any, Any]:
    """The configuration --diff compares with; for --model only the loss can change."""
    from ..cli import UsageError
    from ..losses import LOSSES, make_loss

    if args.model is None:
        return build(args, _diff_overrides(args.diff))
    key, sep, value = args.diff.partition("=")
    if key.strip() != "loss" or not sep:
        raise UsageError(f"with --model, --diff compares another loss only: loss=NAME ({', '.join(sorted(LOSSES))}); "
                         f"got {args.diff!r}")
    try:
        return net, make_loss(value.strip())
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--diff: {exc}") from None


def _check_width(args: argparse.Namespace, net: Any, rows: list[list[float]]) -> None:
    """--at numbers against the loaded model's input width, naming both."""
    from ..cli import UsageError

    bad = sorted({len(r) for r in rows} - {net.in_features})
    if bad:
        raise UsageError(f"--at gives {bad[0]} number(s) per row, but the model {model_path(args.model)} takes "
                         f"{net.in_features} inputs (n = {net.in_features})")


def run_explain(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..explain import derive, render_diff

    net, loss, source = network(args)
    if args.check_formula is not None:
        from ..explain.formula import check_formula

        try:
            verdict = check_formula(net, args.check_formula, loss, notation=args.notation, seed=args.seed)
        except ValueError as exc:
            raise UsageError(f"--check-formula: {exc}") from None
        write(str(verdict) + "\n", args.output, force=args.force, inputs=[getattr(args, "model", None)])
        return 0 if verdict.right else 1
    if args.diff:
        other_net, other_loss = _diff_other(args, net)
        a, b = derive(net, loss), derive(other_net, other_loss)
        write(render_diff(a, b, args.format) + ("\n" if args.format != "latex" else ""), args.output, force=args.force, inputs=[getattr(args, "model", None)])
        return 0
    at = None
    if args.at is not None:
        at = "random" if args.at.strip().lower() == "random" else numbers(args.at, "--at")
        if args.model is not None and isinstance(at, list):
            _check_width(args, net, at)
    target = numbers(args.target, "--target") if args.target else None
    if target is not None and at is None:
        raise UsageError("--target needs --at")
    try:
        ex = derive(net, loss, at=at, target=target, seed=args.seed, batch=args.batch,
                    torch=False if args.no_torch else None)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    ex.source = source
    if args.notation == "homework":
        from ..explain import check_line
        from ..explain.notation import render_homework, render_homework_as

        text = render_homework(net, loss, ex.values or None)
        if ex.checks:
            text += f"\nChecks: {sum(c.passed for c in ex.checks)}/{len(ex.checks)} pass\n"
            text += "".join(f"  {check_line(c)}\n" for c in ex.checks)
        write(render_homework_as(text, args.format), args.output, force=args.force, inputs=[getattr(args, "model", None)])
        return 0 if ex.passed else 1
    write(ex.render(args.format), args.output, force=args.force, inputs=[getattr(args, "model", None)])
    return 0 if ex.passed else 1


