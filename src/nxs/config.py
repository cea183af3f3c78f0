"""Settings of the gateway, read once from the environment (`NXS_` prefix) and passed down.

Nothing reads `os.environ` after `Settings.from_env`; tests build `Settings` directly.
A relative path in a setting is relative to the working directory.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from nxs.ops.cors import CorsPolicy
from nxs.ops.proxies import TrustedProxies

DEFAULT_OWNERS = (
    "fal-ai",
    "xai",
    "bytedance",
    "openai",
    "google",
    "black-forest-labs",
    "stability-ai",
    "ideogram",
    "recraft",
    "kling-ai",
    "minimax",
    "luma-ai",
    "runway",
    "pika",
    "tencent",
    "alibaba",
    "wan",
    "elevenlabs",
    "playht",
    "fal",
    "workflows",
    "comfy",
)

MAX_BODY_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Everything the gateway is configured by."""

    database_url: str = "sqlite:///nxs.db"
    database_pool_size: int = 10  # PostgreSQL connections per process (NXS_DATABASE_POOL_SIZE)
    upstream_url: str | None = None  # e.g. http://127.0.0.1:9100 → {upstream_url}/{host}
    public_url: str | None = None  # base of the URLs NXS hands out; else Host/X-Forwarded-*
    secret_key: str | None = None  # encrypts upstream keys at rest
    secret_key_file: Path | None = None  # None: `nxs.secret` next to the SQLite file
    known_owners: tuple[str, ...] = DEFAULT_OWNERS
    max_body_bytes: int = MAX_BODY_BYTES
    refresh_seconds: float = 1.0  # how often CLI changes are picked up
    upstream_timeout_seconds: float = 600.0  # a read from fal longer than this fails
    probe_seconds: float = 30.0  # re-probe interval of suspended upstream keys
    run_wait_seconds: float = 60.0  # a run waits this long for a free upstream slot, then 429
    admin_token: str | None = None
    access_log: bool = True
    billing: bool = True  # NXS_BILLING=off: no plans, limits or ledger (benchmarks)
    reconcile_after_seconds: float = 60.0  # first upstream poll of an unfetched queued request
    reconcile_backoff_seconds: float = 5.0  # then after 5, 10, 20 … (at most 300) seconds
    reconcile_max_checks: int = 300  # polls without a verdict before it is left to the operator
    reservation_ttl_seconds: float = 3600.0  # a hold never answered is released after this
    webhook_allow_private: bool = False  # relay to loopback/private targets (dev, tests)
    webhook_retry_delays: tuple[float, ...] | None = None  # None: the relay's default
    realtime_max_frame_bytes: int = 4 * 1024 * 1024  # larger WebSocket frames → close 1009
    realtime_idle_seconds: float = 300.0  # a realtime session with no frame is closed
    redis_url: str | None = None  # shared state of every worker and replica (nxs.state)
    limits_when_redis_down: str = "closed"  # closed: 503; open: admit without counting
    workers: int = 1  # worker processes of this replica (NXS_WORKERS, set by `nxs serve`)
    metrics_dir: Path | None = None  # where this replica's workers add up their metrics
    stripe_secret_key: str | None = None  # with the webhook secret: portal top-ups, plans
    stripe_webhook_secret: str | None = None  # verifies POST /webhooks/stripe
    stripe_api_url: str = "https://api.stripe.com"  # Stripe's API (a fake one in tests)
    metrics_token: str | None = None  # bearer token of /metrics on the customer port
    metrics_port: int | None = None  # the port answering /metrics without a token
    log_format: str = "json"  # json | text (nxs.ops.logs)
    log_level: str = "info"
    trusted_proxies: tuple[str, ...] = ()  # addresses/CIDRs whose X-Forwarded-* are believed
    cors_origins: tuple[str, ...] = ()  # origins answered with CORS headers; "*" for any
    drain_seconds: float = 30.0  # at SIGTERM: longest wait for runs and streams in flight
    upstream_ca_file: Path | None = None  # CA bundle that fal's TLS is verified with
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        base = cls()
        owners = env.get("NXS_KNOWN_OWNERS")
        return replace(
            base,
            database_url=env.get("NXS_DATABASE_URL", base.database_url),
            database_pool_size=int(
                _positive(env, "NXS_DATABASE_POOL_SIZE", base.database_pool_size)
            ),
            upstream_url=(env.get("NXS_UPSTREAM_URL") or None),
            public_url=(env.get("NXS_PUBLIC_URL") or None),
            secret_key=(env.get("NXS_SECRET_KEY") or None),
            secret_key_file=_path(env.get("NXS_SECRET_KEY_FILE")),
            known_owners=_owners(owners) if owners else base.known_owners,
            refresh_seconds=_positive(env, "NXS_REFRESH_SECONDS", base.refresh_seconds),
            probe_seconds=_positive(env, "NXS_PROBE_SECONDS", base.probe_seconds),
            run_wait_seconds=_positive(
                env, "NXS_RUN_WAIT_SECONDS", base.run_wait_seconds, zero=True
            ),
            upstream_timeout_seconds=_positive(
                env, "NXS_UPSTREAM_TIMEOUT_SECONDS", base.upstream_timeout_seconds
            ),
            admin_token=(env.get("NXS_ADMIN_TOKEN") or None),
            access_log=env.get("NXS_ACCESS_LOG", "true").lower() not in ("0", "false", "no"),
            billing=env.get("NXS_BILLING", "on").lower() not in ("0", "off", "false", "no"),
            reconcile_after_seconds=_positive(
                env, "NXS_RECONCILE_AFTER_SECONDS", base.reconcile_after_seconds, zero=True
            ),
            reconcile_backoff_seconds=_positive(
                env, "NXS_RECONCILE_BACKOFF_SECONDS", base.reconcile_backoff_seconds
            ),
            reconcile_max_checks=int(
                _positive(env, "NXS_RECONCILE_MAX_CHECKS", base.reconcile_max_checks)
            ),
            reservation_ttl_seconds=_positive(
                env, "NXS_RESERVATION_TTL_SECONDS", base.reservation_ttl_seconds
            ),
            webhook_allow_private=env.get("NXS_WEBHOOK_ALLOW_PRIVATE", "").lower() == "true",
            webhook_retry_delays=_floats(env.get("NXS_WEBHOOK_RETRY_DELAYS")),
            realtime_max_frame_bytes=int(
                _positive(env, "NXS_REALTIME_MAX_FRAME_BYTES", base.realtime_max_frame_bytes)
            ),
            realtime_idle_seconds=_positive(
                env, "NXS_REALTIME_IDLE_SECONDS", base.realtime_idle_seconds
            ),
            redis_url=(env.get("NXS_REDIS_URL") or None),
            limits_when_redis_down=_choice(
                env, "NXS_LIMITS_WHEN_REDIS_DOWN", ("closed", "open"), base.limits_when_redis_down
            ),
            workers=int(_positive(env, "NXS_WORKERS", base.workers)),
            metrics_dir=_path(env.get("NXS_METRICS_DIR")),
            stripe_secret_key=(env.get("NXS_STRIPE_SECRET_KEY") or None),
            stripe_webhook_secret=(env.get("NXS_STRIPE_WEBHOOK_SECRET") or None),
            stripe_api_url=env.get("NXS_STRIPE_API_URL") or base.stripe_api_url,
            metrics_token=(env.get("NXS_METRICS_TOKEN") or None),
            metrics_port=_port(env, "NXS_METRICS_PORT"),
            log_format=_choice(env, "NXS_LOG_FORMAT", ("json", "text"), base.log_format),
            log_level=_choice(
                env, "NXS_LOG_LEVEL", ("debug", "info", "warning", "error"), base.log_level
            ),
            trusted_proxies=_listed(env, "NXS_TRUSTED_PROXIES", TrustedProxies.parse),
            cors_origins=_listed(env, "NXS_CORS_ORIGINS", CorsPolicy.parse),
            drain_seconds=_positive(env, "NXS_DRAIN_SECONDS", base.drain_seconds, zero=True),
            upstream_ca_file=_path(env.get("NXS_UPSTREAM_CA_FILE")),
        )

    def upstream_base(self, host: str) -> str:
        """Where fal host `host` is reached: `https://host`, or the emulator's layout."""
        if self.upstream_url:
            return f"{self.upstream_url.rstrip('/')}/{host}"
        return f"https://{host}"


def _positive(env: Mapping[str, str], name: str, default: float, *, zero: bool = False) -> float:
    """A number setting: above 0 (or 0 when `zero`); anything else is a ValueError that
    names the variable (a TTL of 0 would release every live hold)."""
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        least = "0 or more" if zero else "above 0"
        raise ValueError(f"{name} must be a number {least}, got {raw!r}")
    return value


def _port(env: Mapping[str, str], name: str) -> int | None:
    """A TCP port (1-65535), or None when unset; a ValueError naming `name` otherwise."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{name} must be a port number from 1 to 65535, got {raw!r}")
    return int(raw)


def _path(raw: str | None) -> Path | None:
    """A path setting: relative to the working directory, like the SQLite path of
    `NXS_DATABASE_URL`; None when unset or empty."""
    return Path(raw).absolute() if raw else None


def _owners(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _floats(raw: str | None) -> tuple[float, ...] | None:
    """`"1,5,30"` → (1.0, 5.0, 30.0); None when unset."""
    return tuple(float(part) for part in raw.split(",") if part.strip()) if raw else None


def _listed(
    env: Mapping[str, str], name: str, check: Callable[[str, str], object]
) -> tuple[str, ...]:
    """A comma list, checked by `check(raw, name)` (which raises a ValueError naming it)."""
    raw = env.get(name, "")
    check(raw, name)
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    """One of `allowed` (case-insensitive); anything else is a ValueError naming `name`."""
    value = env.get(name, default).strip().lower()
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {env[name]!r}")
    return value
