"""The ``handgrad`` command line: ``handgrad train | evaluate | predict | datasets | explain | plot | graph | homework | check | playground``.

Each subcommand lives in its own module under :mod:`handgrad.commands` and
registers itself here; heavy imports happen inside the handlers, so
``handgrad --help`` starts fast. Errors print one line and exit non-zero
(2 for usage errors, 1 for runtime errors, 130 on Ctrl-C); ``--debug`` shows
the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence

# (module under handgrad.commands) -- each defines register(subparsers)
COMMAND_MODULES = (
    "train", "evaluate", "predict", "datasets", "export", "explain", "plot", "graph", "homework", "check", "playground",
)


class UsageError(ValueError):
    """A command-line usage mistake (exit code 2)."""


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="handgrad",
        description="Neural networks whose every gradient is derived by hand, checked, and explained.",
    )
    parser.add_argument("--version", action="version", version=f"handgrad {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"handgrad.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"handgrad.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


# options whose value is a comma list of numbers: '--at -0.5,1,2' would read as an option to argparse
NUMBER_LIST_OPTIONS = ("--at", "--target", "--range", "--x", "--betas")
_NUMBER_LIST = re.compile(r"-[0-9.][0-9.,;eE+\- ]*")


def join_number_lists(argv: Sequence[str]) -> list[str]:
    """'--at -0.5,1,2' -> '--at=-0.5,1,2', so a leading minus is a number, not an option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in NUMBER_LIST_OPTIONS and i + 1 < len(argv) and _NUMBER_LIST.fullmatch(argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = join_number_lists(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("handgrad: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, no traceback unless --debug
        if args.debug:
            raise
        code = 2 if isinstance(exc, UsageError) else 1
        print(f"handgrad {args.command}: error: {exc}", file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
