"""The playground's web server: static page over HTTP, training over a WebSocket.

Each WebSocket connection is one :class:`~handgrad.playground.session.Session`
(two tabs, two sessions). While playing, a background thread runs SGD updates
as fast as handgrad allows, and an asyncio task sends the page a frame every
1/30 s. A frame is sent only after the page has acknowledged the previous one,
so when the page falls behind, frames are dropped, never queued. Paused, there
is no thread and no task: nothing uses the CPU. A closed tab stops its thread.

Every message passes :func:`~handgrad.playground.protocol.parse_message` before
it reaches the session; a refused message gets ``{"type": "error"}`` back on
that connection only. The WebSocket accepts a connection only when its Host is
one the server serves and its Origin is that same host (a page from another
site, or a DNS-rebound name, cannot drive the trainer).
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from handgrad import DivergenceError

from .data import DATASETS, FEATURES
from .derive import derivation, verify
from .protocol import ACTIVATION_NAMES, MAX_BATCH, MAX_HIDDEN_LAYERS, MAX_NEURONS, Config, MessageError, parse_message
from .session import Session
from .walkthrough import walkthrough

STATIC = Path(__file__).parent / "static"
FRAME_INTERVAL = 1 / 30  # seconds between frames while playing (30 per second)
ACK_TIMEOUT = 2.0  # a frame whose acknowledgement never came stops blocking the next after this
TRAIN_CHUNK = 0.005  # seconds of updates per hold of the session's lock


class Runner:
    """The training thread of one session: updates until stopped, in short chunks under the lock."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: str | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self.stop_event.clear()
        self.error = None
        self.thread = threading.Thread(target=self._run, name="handgrad-playground-trainer", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join()
        self.thread = None

    def _run(self) -> None:
        session, stop = self.session, self.stop_event
        while not stop.is_set():
            with session.lock:
                deadline = time.perf_counter() + TRAIN_CHUNK
                try:
                    while time.perf_counter() < deadline:
                        session.train_update()
                except DivergenceError as exc:
                    self.error = str(exc)
                    return
            time.sleep(0.0002)  # let a waiting frame or message take the lock


class Connection:
    """One page: its session, training thread and frame pump."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.session = Session()
        self.runner = Runner(self.session)
        self.pump: asyncio.Task | None = None
        self.ready = True
        self.sent_at = 0.0
        self.frames_sent = self.frames_dropped = 0

    async def locked(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run fn under the session's lock in a worker thread (the event loop never waits on training)."""
        def call() -> Any:
            with self.session.lock:
                return fn(*args)
        return await asyncio.to_thread(call)

    async def send(self, obj: dict[str, Any]) -> None:
        await self.ws.send_text(json.dumps(obj, allow_nan=False))

    async def send_frame(self) -> None:
        frame = await self.locked(self.session.frame)
        frame["playing"] = self.runner.running
        frame["frames_dropped"] = self.frames_dropped
        self.ready, self.sent_at = False, time.monotonic()
        self.frames_sent += 1
        await self.send(frame)

    async def run_pump(self) -> None:
        while self.runner.running:
            if self.ready or time.monotonic() - self.sent_at > ACK_TIMEOUT:
                await self.send_frame()
            else:
                self.frames_dropped += 1  # the page is still drawing the last one: skip this frame
            await asyncio.sleep(FRAME_INTERVAL)
        if self.runner.error:
            await self.send({"type": "error", "message": self.runner.error})
        await self.send_frame()

    async def play(self) -> None:
        self.runner.start()
        if self.pump is None or self.pump.done():
            self.pump = asyncio.create_task(self.run_pump())

    async def pause(self) -> None:
        await asyncio.to_thread(self.runner.stop)
        if self.pump is not None:
            await self.pump
            self.pump = None

    async def close(self) -> None:
        await asyncio.to_thread(self.runner.stop)
        if self.pump is not None:
            self.pump.cancel()

    async def handle(self, kind: str, payload: Any) -> None:
        s = self.session
        if kind == "ack":
            self.ready = True
        elif kind == "play":
            await self.play()
        elif kind == "pause":
            await self.pause()
        elif kind == "config":
            await self.locked(s.apply, payload)
            await self.send({"type": "config", "config": s.config.to_dict()})
            await self.send(await self.locked(s.points))
            await self.send_frame()
        elif kind in ("step", "walkthrough"):
            await self.pause()
            if kind == "step":
                await self.locked(s.train_epoch)
            else:
                await self.send(await self.locked(walkthrough, s))
            await self.send_frame()
        elif kind in ("reset", "regenerate"):
            await self.locked(s.reset if kind == "reset" else s.regenerate)
            await self.send({"type": "config", "config": s.config.to_dict()})
            await self.send(await self.locked(s.points))
            await self.send_frame()
        elif kind in ("derive", "verify"):
            await self.send(await self.locked(self._derive, kind, payload))
        elif kind == "download_model":
            data = await self.locked(s.model_file)
            await self.send({"type": "model", "filename": "playground.safetensors",
                             "data": base64.b64encode(data).decode("ascii")})

    def _derive(self, kind: str, target: Any) -> dict[str, Any]:
        s = self.session
        s.check_target(target)
        x, y = s.current_batch()
        return (derivation if kind == "derive" else verify)(s.net, s.loss, x, y, target)


def options() -> dict[str, Any]:
    """What the page may choose from (the server checks every choice again)."""
    return {
        "datasets": {name: problem for name, (problem, _) in DATASETS.items()},
        "features": {name: label for name, (label, _) in FEATURES.items()},
        "activations": list(ACTIVATION_NAMES), "max_hidden_layers": MAX_HIDDEN_LAYERS,
        "max_neurons": MAX_NEURONS, "max_batch": MAX_BATCH, "defaults": Config().to_dict(),
    }


def origin_allowed(ws: WebSocket, allowed_hosts: set[str] | None) -> bool:
    """Host is served here and Origin is that same host over http."""
    host, origin = ws.headers.get("host", ""), ws.headers.get("origin")
    if allowed_hosts is not None and host not in allowed_hosts:
        return False
    return origin == f"http://{host}"


def create_app(allowed_hosts: Iterable[str] | None = None) -> Starlette:
    """The ASGI app. ``allowed_hosts``: the ``host:port`` values of the Host header accepted for the
    WebSocket (None accepts any host, but the Origin must still be the page's own)."""
    hosts = None if allowed_hosts is None else set(allowed_hosts)

    async def index(request: Any) -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def options_route(request: Any) -> JSONResponse:
        return JSONResponse(options())

    async def socket(ws: WebSocket) -> None:
        if not origin_allowed(ws, hosts):
            await ws.close(code=1008)  # before accept: the handshake is refused (HTTP 403)
            return
        await ws.accept()
        conn = Connection(ws)
        try:
            await conn.send({"type": "hello", "options": options()})
            while True:
                text = await ws.receive_text()
                try:
                    kind, payload = parse_message(text)
                    await conn.handle(kind, payload)
                except (MessageError, DivergenceError) as exc:
                    await conn.send({"type": "error", "message": str(exc)})
                except WebSocketDisconnect:
                    raise
                except Exception as exc:  # a bug must not take the server (or other tabs) down
                    await conn.send({"type": "error", "message": f"server error: {type(exc).__name__}: {exc}"})
        except (WebSocketDisconnect, RuntimeError):
            pass  # the tab closed (RuntimeError: a send raced the close)
        finally:
            await conn.close()

    return Starlette(routes=[
        Route("/", index), Route("/options", options_route), WebSocketRoute("/ws", socket),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ])


def serve(host: str = "127.0.0.1", port: int = 8765, open_browser: bool = True,
          announce: Callable[[str], None] | None = None) -> None:
    """Serve the playground until Ctrl-C; port 0 picks a free port."""
    import socket as socketlib
    import webbrowser

    import uvicorn

    family = socketlib.AF_INET6 if ":" in host else socketlib.AF_INET
    sock = socketlib.socket(family, socketlib.SOCK_STREAM)
    sock.setsockopt(socketlib.SOL_SOCKET, socketlib.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)  # connections wait in the backlog from now on, even before uvicorn starts accepting
    port = sock.getsockname()[1]
    every_interface = host in ("0.0.0.0", "::", "")
    shown = "127.0.0.1" if every_interface else (f"[{host}]" if ":" in host else host)
    allowed = None if every_interface else {f"{shown}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"}
    url = f"http://{shown}:{port}/"
    config = uvicorn.Config(create_app(allowed), log_level="warning", ws_max_size=65536, lifespan="off")
    server = uvicorn.Server(config)
    (announce or (lambda line: print(line, flush=True)))(f"handgrad playground: {url}  (Ctrl-C to stop)")
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    server.run(sockets=[sock])
