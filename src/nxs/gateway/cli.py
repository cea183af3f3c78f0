"""`nxs serve`: the gateway's command line (host, port, workers, TLS).

Everything else is configured through the `NXS_` environment (see `nxs.config`).
"""

from __future__ import annotations

import argparse
from typing import Any

from nxs.config import Settings
from nxs.errors import NxsError
from nxs.gateway.connections import ConnectionLimits
from nxs.gateway.server import ServeOptions, serve
from nxs.ops import logs
from nxs.ops.logs import LogOptions
from nxs.settings_help import environment_help
from nxs.store.store import upgrade_schema


def add_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the gateway (configured by NXS_* environment variables)",
        description="Serve the NXS gateway: the options below, and the NXS_* environment.",
        epilog=environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    parser.add_argument(
        "--workers", type=int, default=1, metavar="N", help="worker processes (default %(default)s)"
    )
    parser.add_argument("--ssl-certfile", metavar="FILE", help="TLS certificate chain (PEM)")
    parser.add_argument("--ssl-keyfile", metavar="FILE", help="TLS private key (PEM)")
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="also listen here for /metrics, /healthz and /readyz only (default: "
        "NXS_METRICS_PORT; unset: /metrics only with NXS_METRICS_TOKEN on the main port)",
    )
    parser.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address of --metrics-port (default %(default)s)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        raise SystemExit("nxs serve: --ssl-certfile and --ssl-keyfile go together")
    if args.workers < 1:
        raise SystemExit("nxs serve: --workers must be at least 1")
    try:
        settings = Settings.from_env()  # each worker reads them again; refuse bad ones now
    except ValueError as error:
        raise SystemExit(f"nxs serve: invalid NXS_ setting: {error}") from None
    logs.configure(LogOptions(settings.log_format, settings.log_level))
    metrics_port = args.metrics_port if args.metrics_port is not None else settings.metrics_port
    try:
        upgrade_schema(settings)  # once, here: the workers then find nothing to migrate
    except NxsError as error:
        raise SystemExit(f"nxs serve: {error}") from None
    options = ServeOptions(
        host=args.host,
        port=args.port,
        workers=args.workers,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        metrics_host=args.metrics_host,
        metrics_port=metrics_port,
        graceful_seconds=settings.drain_seconds,
        limits=ConnectionLimits(settings.header_timeout_seconds, settings.max_header_bytes),
        keep_alive_seconds=settings.keep_alive_seconds,
        max_connections=settings.max_connections,
    )
    return serve(options)
