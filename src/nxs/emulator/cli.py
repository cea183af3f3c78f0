"""`nxs emulator`: run the local fal on one address, every fal host under a prefix.

Prints the address and an example call on start. With `--ssl-certfile/--ssl-keyfile`
it serves HTTPS, which the official Python client needs (it forces https).
"""

from __future__ import annotations

import argparse
import os
import ssl
from typing import Any

from nxs.ops import logs

LINE_LIMIT = 64 * 1024  # bytes of request line or one header; beyond: a plain 400


def add_commands(subparsers: Any) -> None:
    """Add `emulator` to the `nxs` command line."""
    parser = subparsers.add_parser(
        "emulator",
        help="run the local fal.ai emulator",
        description="Run the local fal: every fal host under a path prefix of one address "
        "(/fal.run/…, /queue.fal.run/…, /rest.fal.ai/…, /v3.fal.media/…).",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="port to listen on (default %(default)s)"
    )
    parser.add_argument("--ssl-certfile", metavar="FILE", help="PEM certificate chain: serve HTTPS")
    parser.add_argument("--ssl-keyfile", metavar="FILE", help="PEM private key of the certificate")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="multiply simulated durations (default 1)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=2,
        metavar="N",
        help="requests in progress per account (default %(default)s)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=100 * 1024 * 1024,
        metavar="BYTES",
        help="largest request body (default 100 MiB)",
    )
    parser.add_argument("--seed", type=int, metavar="N", help="seed the emulator's randomness")
    parser.add_argument(
        "--queue-direct-runs",
        action="store_true",
        help="let fal.run requests beyond the concurrency limit wait (fal answers 429)",
    )
    parser.set_defaults(run=run)


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not args.ssl_certfile:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.ssl_certfile, args.ssl_keyfile)
    return context


def banner(scheme: str, host: str, port: int) -> str:
    base = f"{scheme}://{host}:{port}"
    example = (
        f"curl -s -X POST {base}/fal.run/fal-ai/flux/schnell -H 'Authorization: Key demo' "
        "-H 'Content-Type: application/json' -d '{\"prompt\": \"a red fox\"}'"
    )
    return f"nxs emulator: fal hosts at {base}/<host>/…  try: {example}"


def run(args: argparse.Namespace) -> int:
    try:
        logs.configure(logs.LogOptions.from_env(os.environ))
    except ValueError as error:
        raise SystemExit(f"nxs emulator: {error}") from None
    try:  # here, not at the top: the gateway's install has no emulator extra
        from aiohttp import web

        from nxs.emulator.app import create_app
        from nxs.emulator.state import EmulatorConfig
    except ImportError as error:
        raise SystemExit(
            f"nxs emulator: {error.name} is missing; install the extra: pip install 'nxs[emulator]'"
        ) from None
    config = EmulatorConfig(
        time_scale=args.time_scale,
        concurrency_limit=args.concurrency,
        max_body_bytes=args.max_body_bytes,
        seed=args.seed,
        queue_direct_runs=args.queue_direct_runs,
    )
    context = _ssl_context(args)
    print(banner("https" if context else "http", args.host, args.port), flush=True)
    web.run_app(
        create_app(config),
        host=args.host,
        port=args.port,
        ssl_context=context,
        print=None,
        shutdown_timeout=1.0,  # stop promptly: jobs still running are simulated work
        access_log=None,
        # long query strings and headers reach the routes (and get fal-shaped answers)
        max_line_size=LINE_LIMIT,
        max_field_size=LINE_LIMIT,
    )
    return 0
