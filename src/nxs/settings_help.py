"""The `NXS_*` variables an operator can set, for `nxs serve --help`: one table, each
row naming its `Settings` field, so the defaults shown are the ones `Settings` holds.

A test checks that every variable `Settings.from_env` reads has a row here, and back.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from nxs.config import Settings
from nxs.relay.worker import DEFAULT_RETRY_DELAYS

WIDTH = 78  # columns of the listing (argparse wraps its own at 78 too)
NAME_COLUMN = 33  # where the default starts (after the longest name)
MEANING_INDENT = 6


@dataclass(frozen=True)
class Variable:
    """One `NXS_*` variable: the `Settings` field it sets, what it means, and the default
    as shown (None: rendered from `Settings()`)."""

    name: str
    field: str
    meaning: str
    default: str | None = None


VARIABLES: tuple[Variable, ...] = (
    Variable(
        "NXS_STRIPE_SECRET_KEY",
        "stripe_secret_key",
        "Stripe secret key: portal top-ups and plan subscriptions (with the webhook secret)",
    ),
    Variable(
        "NXS_STRIPE_WEBHOOK_SECRET",
        "stripe_webhook_secret",
        "signing secret of Stripe's events to POST /webhooks/stripe",
    ),
    Variable("NXS_STRIPE_API_URL", "stripe_api_url", "base URL of Stripe's API"),
    Variable(
        "NXS_DATABASE_URL",
        "database_url",
        "the store the gateway and the CLI share: sqlite:///rel.db, sqlite:////abs.db "
        "or postgresql://user:password@host/db",
    ),
    Variable("NXS_DATABASE_POOL_SIZE", "database_pool_size", "PostgreSQL connections per process"),
    Variable(
        "NXS_DATABASE_BUSY_SECONDS",
        "database_busy_seconds",
        "SQLite: longest wait for another process's write lock; then billable calls get 503 "
        "(the gateway waits on its event loop: keep it short)",
    ),
    Variable(
        "NXS_SECRET_KEY",
        "secret_key",
        "encrypts upstream keys and NXS's signing key at rest",
    ),
    Variable(
        "NXS_SECRET_KEY_FILE",
        "secret_key_file",
        "its file when NXS_SECRET_KEY is unset (created with mode 0600 if absent)",
        "nxs.secret next to the database",
    ),
    Variable(
        "NXS_UPSTREAM_URL",
        "upstream_url",
        "reach fal host H at URL/H (the emulator's layout) rather than https://H",
    ),
    Variable(
        "NXS_PUBLIC_URL",
        "public_url",
        "base of the URLs handed out; also turns on the webhook relay",
        "X-Forwarded-*, else Host",
    ),
    Variable(
        "NXS_KNOWN_OWNERS",
        "known_owners",
        "comma list of first path segments that are owners (others get fal-ai/)",
    ),
    Variable(
        "NXS_REFRESH_SECONDS",
        "refresh_seconds",
        "how often each worker picks up CLI and admin changes (new keys work at once)",
    ),
    Variable("NXS_PROBE_SECONDS", "probe_seconds", "how often suspended upstream keys are probed"),
    Variable("NXS_ACCESS_LOG", "access_log", "one JSON line per request on stdout (false: none)"),
    Variable(
        "NXS_ADMIN_TOKEN",
        "admin_token",
        "bearer token of the /admin/v1 API (unset: the admin API is off)",
    ),
    Variable(
        "NXS_BILLING",
        "billing",
        "off: no plans, limits or ledger (benchmarks only)",
        "on",
    ),
    Variable(
        "NXS_RECONCILE_AFTER_SECONDS",
        "reconcile_after_seconds",
        "first reconciler poll of a queued request whose result nobody fetched",
    ),
    Variable(
        "NXS_RECONCILE_BACKOFF_SECONDS",
        "reconcile_backoff_seconds",
        "the reconciler's first backoff, doubling up to 300 s",
    ),
    Variable(
        "NXS_RECONCILE_MAX_CHECKS",
        "reconcile_max_checks",
        "polls without a verdict before a request is left to the operator",
    ),
    Variable(
        "NXS_RESERVATION_TTL_SECONDS",
        "reservation_ttl_seconds",
        "age at which a credit hold never answered (its process died) is refunded",
    ),
    Variable(
        "NXS_WEBHOOK_ALLOW_PRIVATE",
        "webhook_allow_private",
        "true: relay webhooks to loopback and private addresses (development)",
    ),
    Variable(
        "NXS_WEBHOOK_RETRY_DELAYS",
        "webhook_retry_delays",
        "comma list of webhook delivery retry delays, seconds",
        ",".join(f"{delay:g}" for delay in DEFAULT_RETRY_DELAYS),
    ),
    Variable(
        "NXS_REALTIME_MAX_FRAME_BYTES",
        "realtime_max_frame_bytes",
        "largest realtime WebSocket frame, bytes (a larger one closes the session)",
    ),
    Variable(
        "NXS_REALTIME_IDLE_SECONDS",
        "realtime_idle_seconds",
        "a realtime session without a frame this long is closed",
    ),
    Variable(
        "NXS_REDIS_URL",
        "redis_url",
        "state every worker and replica shares (limits, cooldowns); required with "
        "PostgreSQL; unset: a file beside the SQLite database, or in process",
    ),
    Variable(
        "NXS_LIMITS_WHEN_REDIS_DOWN",
        "limits_when_redis_down",
        "while Redis is unreachable: closed answers 503, open admits uncounted",
    ),
    Variable(
        "NXS_WORKERS",
        "workers",
        "worker processes sharing the limits: set by `nxs serve` from --workers",
    ),
    Variable(
        "NXS_RUN_WAIT_SECONDS",
        "run_wait_seconds",
        "how long a run waits for a free upstream slot before its 429 with Retry-After",
    ),
    Variable(
        "NXS_MAX_BODY_BYTES",
        "max_body_bytes",
        "largest request body the gateway reads (a larger one is a 413)",
    ),
    Variable(
        "NXS_UPSTREAM_TIMEOUT_SECONDS",
        "upstream_timeout_seconds",
        "longest wait for fal's next bytes; a run's in-flight lease is this + 30 s",
    ),
    Variable(
        "NXS_METRICS_DIR",
        "metrics_dir",
        "folder where this replica's workers add up /metrics",
        "a new temporary folder per `nxs serve`",
    ),
    Variable(
        "NXS_METRICS_TOKEN",
        "metrics_token",
        "bearer token that opens /metrics on the customer port (unset: 404 there)",
    ),
    Variable(
        "NXS_METRICS_PORT",
        "metrics_port",
        "a loopback port answering /metrics, /healthz and /readyz only (--metrics-port)",
    ),
    Variable("NXS_LOG_FORMAT", "log_format", "json: one JSON object per line; text: for people"),
    Variable("NXS_LOG_LEVEL", "log_level", "debug, info, warning or error"),
    Variable(
        "NXS_TRUSTED_PROXIES",
        "trusted_proxies",
        "comma list of addresses or CIDRs whose X-Forwarded-For/-Host/-Proto are believed",
        "none",
    ),
    Variable(
        "NXS_CORS_ORIGINS",
        "cors_origins",
        "comma list of browser origins answered with CORS headers and preflights, or *",
        "none",
    ),
    Variable(
        "NXS_UPSTREAM_CA_FILE",
        "upstream_ca_file",
        "PEM bundle of the CAs that fal's (or NXS_UPSTREAM_URL's) TLS certificate is checked "
        "against",
        "the system's CAs",
    ),
    Variable(
        "NXS_DRAIN_SECONDS",
        "drain_seconds",
        "at SIGTERM: longest wait for runs and streams in flight before exiting",
    ),
    Variable(
        "NXS_HEADER_TIMEOUT_SECONDS",
        "header_timeout_seconds",
        "a request's headers must arrive within this long of the connection opening or the "
        "previous response ending: else 408 (or a close if nothing came) — slow-loris clients",
    ),
    Variable("NXS_MAX_HEADER_BYTES", "max_header_bytes", "larger request headers are a 431"),
    Variable(
        "NXS_KEEP_ALIVE_SECONDS",
        "keep_alive_seconds",
        "an idle keep-alive connection is closed after this many seconds",
    ),
    Variable(
        "NXS_MAX_CONNECTIONS",
        "max_connections",
        "connections and requests one worker takes at once; beyond them a 503",
        "no limit",
    ),
)


def default_text(variable: Variable, defaults: Settings) -> str:
    """The default as shown: the row's own text, else the `Settings` field's value."""
    if variable.default is not None:
        return variable.default
    value = getattr(defaults, variable.field)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value[:3]) + f",… ({len(value)} in all)"
    return str(value)


def environment_help() -> str:
    """The listing `nxs serve --help` ends with: each variable, its default, its meaning."""
    defaults = Settings()
    lines = ["environment (read when the gateway starts; each default on the right):"]
    for variable in VARIABLES:
        lines.append(f"  {variable.name:<{NAME_COLUMN - 2}}{default_text(variable, defaults)}")
        lines += textwrap.wrap(
            variable.meaning,
            WIDTH,
            initial_indent=" " * MEANING_INDENT,
            subsequent_indent=" " * MEANING_INDENT,
        )
    return "\n".join(lines)
