"""Running the gateway: uvicorn (uvloop + httptools) serving `worker_app` as a factory,
so `--workers N` starts N processes that each build their own services. SIGTERM and
SIGINT shut down cleanly: in-flight requests finish, then sessions and store close.
Once a worker has started, its startup heap is frozen out of the cyclic GC's reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import math
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

import uvicorn
from uvicorn.supervisors import Multiprocess

from nxs.gateway.connections import ConnectionLimits, GuardedHttpTools
from nxs.ops import logs

APP: Final = "nxs.gateway.server:worker_app"
# Young-generation threshold: above what c64+ requests keep alive at once (default 700),
# so the collector no longer runs hundreds of times a second under load.
GC_YOUNG_THRESHOLD: Final = 10_000
METRICS_FOLDER_PREFIX: Final = "nxs-metrics-"  # then the pid of the `nxs serve` owning it
STARTUP_FAILURE: Final = 3  # uvicorn's exit status when the app did not start
Receive = Any
Send = Any


class SettledHeap:
    """The gateway app, with the heap built by imports and startup (modules, the admin
    app, settings: ~75k objects) frozen once the lifespan startup completed. Without
    this, every full collection rescans them: ~45 ms pauses, twice a second at c64."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_and_settle(message: dict[str, Any]) -> None:
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                settle_heap()

        await self.app(scope, receive, send_and_settle)


def settle_heap() -> None:
    """Collect once, freeze what survived (it lives as long as the process), and make
    young collections rarer."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def worker_app() -> SettledHeap:
    """uvicorn's factory, run in each worker: logging, then the gateway from the `NXS_`
    environment."""
    from nxs.gateway.app import app_from_env  # here: `nxs keys …` needn't import the app

    logs.configure(logs.LogOptions.from_env(os.environ))
    return SettledHeap(app_from_env())


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    graceful_seconds: float = 30.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None  # a second listener answering only /metrics and health
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)  # on request headers
    keep_alive_seconds: int = 5
    max_connections: int | None = None  # per worker; uvicorn's limit_concurrency (503)


def serve(options: ServeOptions) -> int:
    """Serve until signalled; returns the process exit status."""
    os.environ["NXS_WORKERS"] = str(options.workers)  # each worker's Settings: shared limits
    if options.metrics_port is not None:
        os.environ["NXS_METRICS_PORT"] = str(options.metrics_port)
    with _metrics_folder():
        _run_uvicorn(options)
    return 0


@contextmanager
def _metrics_folder() -> Iterator[None]:
    """A folder where this replica's workers add up their metrics (`NXS_METRICS_DIR`,
    else a new temporary one, removed when the server stops)."""
    if os.environ.get("NXS_METRICS_DIR"):
        yield
        return
    _remove_orphaned_metrics_folders(Path(tempfile.gettempdir()))
    prefix = f"{METRICS_FOLDER_PREFIX}{os.getpid()}-"
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        os.environ["NXS_METRICS_DIR"] = folder
        try:
            yield
        finally:
            del os.environ["NXS_METRICS_DIR"]


def _remove_orphaned_metrics_folders(temporary: Path) -> None:
    """The metrics folders of `nxs serve` processes that were killed (SIGKILL: no cleanup),
    known by the process id in their name; a folder whose process still runs is kept."""
    for folder in temporary.glob(f"{METRICS_FOLDER_PREFIX}*-*"):
        pid = folder.name.removeprefix(METRICS_FOLDER_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _run_uvicorn(options: ServeOptions) -> None:
    """uvicorn on the customer socket (and the metrics one): its supervisor with
    `--workers N`, else one server in this process. uvicorn's records go through the
    logging `nxs.ops.logs` configured (`log_config=None`)."""
    config = uvicorn.Config(
        APP,
        factory=True,
        host=options.host,
        port=options.port,
        workers=options.workers,
        loop="uvloop",
        http=_protocol(options.limits),
        lifespan="on",
        access_log=False,
        log_config=None,
        log_level="warning",
        backlog=4096,
        timeout_keep_alive=options.keep_alive_seconds,
        limit_concurrency=options.max_connections,
        ssl_certfile=options.ssl_certfile,
        ssl_keyfile=options.ssl_keyfile,
        timeout_graceful_shutdown=math.ceil(options.graceful_seconds),
        proxy_headers=False,
        server_header=False,
        date_header=False,
    )
    sockets = [config.bind_socket()]
    if options.metrics_port is not None:
        sockets.append(_bind(options.metrics_host, options.metrics_port))
    if options.workers > 1:
        Multiprocess(config, sockets=sockets).run()
        return
    server = uvicorn.Server(config)
    # uvicorn raises the signal that stopped it again once it has shut down; a SIGTERM
    # that drained cleanly then ends the process with status 0, not by the signal.
    signal.signal(signal.SIGTERM, lambda number, frame: None)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=sockets)
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


def _protocol(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """httptools with `limits` on headers, as the class uvicorn instantiates (a partial:
    it pickles into `--workers` processes)."""
    return cast("type[asyncio.Protocol]", functools.partial(GuardedHttpTools, limits=limits))


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket for the metrics port (IPv6 when `host` is)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        raise SystemExit(f"nxs serve: --metrics-port {port}: {error.strerror}") from None
    sock.set_inheritable(True)
    return sock
