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
    except BrokenPipeError:  # the reader of standard output went away (| head): nothing more to say
        from .outputs import stdout_closed

        stdout_closed()
        return 0
    except Exception as exc:  # one line, no traceback unless --debug
        if args.debug:
            raise
        from .outputs import OutputError

        code = 2 if isinstance(exc, (UsageError, OutputError)) else 1
        print(f"handgrad {args.command}: error: {error_text(exc)}", file=sys.stderr)
        return code


def error_text(exc: BaseException) -> str:
    """The one line a user reads: the message, or (never an empty line) the error's type and where it came from."""
    text = str(exc).strip()
    if isinstance(exc, KeyError) and exc.args:
        text = f"missing key {exc.args[0]!r}"
    if text and text not in ("None", "''"):
        return text.splitlines()[0] if len(text) > 2000 else text
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f" in {tb.tb_frame.f_code.co_name} ({tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]})" if tb else ""
    cause = exc.__cause__ or exc.__context__
    detail = f": caused by {type(cause).__name__}: {cause}" if cause is not None and str(cause) else ""
    return f"{type(exc).__name__} with no message{where}{detail} (run with --debug for the traceback)"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
