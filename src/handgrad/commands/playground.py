"""``handgrad playground``: train a network in the browser and see its derivations.

Starts a local web server (Starlette on uvicorn, from the ``playground`` extra)
and opens the page. It binds 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import examples


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "playground", help="train a network in the browser and see the derivation underneath",
        **examples(
            ("handgrad playground", "open the playground in the browser"),
            ("handgrad playground --port 8765 --no-browser", "serve it only"),
        ),
        description="Serve the handgrad playground: pick a data set and a network, press play, click a weight "
                    "to see its gradient derived. Needs: pip install 'handgrad[playground]'.")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1, this machine only; 0.0.0.0 exposes it to the network)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--no-browser", action="store_true", help="do not open the page in a browser")
    p.set_defaults(handler=run_playground)


def run_playground(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        from ..cli import UsageError

        raise UsageError(f"--port must be in [0, 65535], got {args.port}")
    from ..optional import require

    for module in ("starlette", "uvicorn"):
        require(module, extra="playground", purpose="handgrad playground (a local web page)")
    from ..playground.server import serve

    try:
        serve(args.host, args.port, open_browser=not args.no_browser)
    except OSError as exc:
        raise RuntimeError(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc})") from None
    return 0
