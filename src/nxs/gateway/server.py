"""Running the gateway: uvicorn (uvloop + httptools) serving `app_from_env` as a factory,
so `--workers N` starts N processes that each build their own services. SIGTERM and
SIGINT shut down cleanly: in-flight requests finish, then sessions and store close.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import uvicorn

APP: Final = "nxs.gateway.app:app_from_env"


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    graceful_seconds: float = 30.0


def serve(options: ServeOptions) -> int:
    """Serve until signalled; returns the process exit status."""
    uvicorn.run(
        APP,
        factory=True,
        host=options.host,
        port=options.port,
        workers=options.workers if options.workers > 1 else None,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        backlog=4096,
        ssl_certfile=options.ssl_certfile,
        ssl_keyfile=options.ssl_keyfile,
        timeout_graceful_shutdown=int(options.graceful_seconds),
        proxy_headers=False,
        server_header=False,
        date_header=False,
    )
    return 0
