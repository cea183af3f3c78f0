"""Settings of NXS: one typed, validated object (a pydantic dataclass), read once from the
environment (`NXS_` + the field's name in capitals) by `Settings.from_env` and passed down.

Every value is checked where it is declared: numbers are finite and in range, booleans
read one set of words for every variable (true/false, on/off, yes/no, 1/0), choices are
listed; a bad value is one `ValueError` naming its variable. Nothing reads `os.environ`
after `from_env`; tests build `Settings` directly. A relative path is the working
directory's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import field, fields
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator
from pydantic.dataclasses import dataclass

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
PREFIX = "NXS_"
NOT_FROM_ENV = frozenset({"extra"})  # fields no variable sets
LISTS = frozenset({"known_owners", "webhook_retry_delays", "trusted_proxies", "cors_origins"})
SECRETS = frozenset(
    {"secret_key", "admin_token", "metrics_token", "stripe_secret_key", "stripe_webhook_secret"}
)

Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
SecondsOrNone = Annotated[float, Field(ge=0, allow_inf_nan=False)]  # 0: at once
Count = Annotated[int, Field(gt=0)]
Port = Annotated[int, Field(gt=0, lt=65536)]


@dataclass(frozen=True, config=ConfigDict(arbitrary_types_allowed=True))
class Settings:
    """Everything NXS is configured by; each field is the variable `NXS_<FIELD>`."""

    database_url: str = "sqlite:///nxs.db"
    database_pool_size: Count = 10  # PostgreSQL connections per process
    database_busy_seconds: Seconds = 10.0  # SQLite: longest wait for another writer's lock
    upstream_url: str | None = None  # e.g. http://127.0.0.1:9100 → {upstream_url}/{host}
    public_url: str | None = None  # base of the URLs NXS hands out; else Host/X-Forwarded-*
    secret_key: str | None = None  # encrypts upstream keys at rest
    secret_key_file: Path | None = None  # None: `nxs.secret` next to the SQLite file
    known_owners: tuple[str, ...] = DEFAULT_OWNERS
    max_body_bytes: Count = MAX_BODY_BYTES  # a larger request body is a 413
    refresh_seconds: Seconds = 1.0  # how often CLI changes are picked up
    upstream_timeout_seconds: Seconds = 600.0  # a read from fal longer than this fails
    probe_seconds: Seconds = 30.0  # re-probe interval of suspended upstream keys
    run_wait_seconds: SecondsOrNone = 60.0  # a run waits this long for an upstream slot
    admin_token: str | None = None
    access_log: bool = True
    billing: bool = True  # NXS_BILLING=off: no plans, limits or ledger (benchmarks)
    reconcile_after_seconds: SecondsOrNone = 60.0  # first poll of an unfetched queued request
    reconcile_backoff_seconds: Seconds = 5.0  # then after 5, 10, 20 … (at most 300) seconds
    reconcile_max_checks: Count = 300  # polls without a verdict before the operator's turn
    reservation_ttl_seconds: Seconds = 3600.0  # a hold never answered is released after this
    webhook_allow_private: bool = False  # relay to loopback/private targets (dev, tests)
    webhook_retry_delays: tuple[SecondsOrNone, ...] | None = None  # None: the relay's default
    realtime_max_frame_bytes: Count = 4 * 1024 * 1024  # larger WebSocket frames → close 1009
    realtime_idle_seconds: Seconds = 300.0  # a realtime session with no frame is closed
    redis_url: str | None = None  # shared state of every worker and replica (nxs.state)
    limits_when_redis_down: Literal["closed", "open"] = "closed"  # 503, or admit uncounted
    workers: Count = 1  # worker processes of this replica (NXS_WORKERS, set by `nxs serve`)
    metrics_dir: Path | None = None  # where this replica's workers add up their metrics
    stripe_secret_key: str | None = None  # with the webhook secret: portal top-ups, plans
    stripe_webhook_secret: str | None = None  # verifies POST /webhooks/stripe
    stripe_api_url: str = "https://api.stripe.com"  # Stripe's API (a fake one in tests)
    metrics_token: str | None = None  # bearer token of /metrics on the customer port
    metrics_port: Port | None = None  # the port answering /metrics without a token
    log_format: Literal["json", "text"] = "json"  # nxs.ops.logs
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    trusted_proxies: tuple[str, ...] = ()  # addresses/CIDRs whose X-Forwarded-* are believed
    cors_origins: tuple[str, ...] = ()  # origins answered with CORS headers; "*" for any
    drain_seconds: SecondsOrNone = 30.0  # at SIGTERM: longest wait for runs and streams
    upstream_ca_file: Path | None = None  # CA bundle that fal's TLS is verified with
    header_timeout_seconds: Seconds = 10.0  # a request's headers must be in by then (else 408)
    max_header_bytes: Count = 64 * 1024  # larger request headers are a 431
    keep_alive_seconds: Count = 5  # an idle keep-alive connection is closed after this
    max_connections: Count | None = None  # per worker: beyond it uvicorn answers 503
    extra: Mapping[str, str] = field(default_factory=dict)

    @field_validator("secret_key_file", "metrics_dir")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.absolute() if value is not None else None

    @field_validator("upstream_ca_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{PREFIX}UPSTREAM_CA_FILE must be a PEM file, got {str(value)!r}")
        return value.absolute() if value is not None else None

    @field_validator("known_owners")
    @classmethod
    def _some_owners(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(f"{PREFIX}KNOWN_OWNERS must name at least one owner")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        TrustedProxies.parse(",".join(value))  # a ValueError naming NXS_TRUSTED_PROXIES
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        CorsPolicy.parse(",".join(value))  # a ValueError naming NXS_CORS_ORIGINS
        return value

    @field_validator("limits_when_redis_down", "log_format", "log_level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings the `NXS_*` variables of `environ` (the process's by default)
        give; an unset or empty variable keeps the default. A ValueError names the first
        variable whose value is refused."""
        env = os.environ if environ is None else environ
        raw = {name: env.get(variable(name)) for name in env_fields()}
        given = {name: value.strip() for name, value in raw.items() if value and value.strip()}
        values: dict[str, Any] = {
            name: _split(value) if name in LISTS else value for name, value in given.items()
        }
        try:
            return cls(**values)
        except ValidationError as error:
            raise ValueError(_first_problem(error, given)) from None

    def upstream_base(self, host: str) -> str:
        """Where fal host `host` is reached: `https://host`, or the emulator's layout."""
        if self.upstream_url:
            return f"{self.upstream_url.rstrip('/')}/{host}"
        return f"https://{host}"


def env_fields() -> list[str]:
    """The names of the fields a variable sets, in declaration order."""
    return [f.name for f in fields(Settings) if f.name not in NOT_FROM_ENV]


def variable(name: str) -> str:
    """`reservation_ttl_seconds` → `NXS_RESERVATION_TTL_SECONDS`."""
    return PREFIX + name.upper()


def _split(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


# What a refused value should have been, by pydantic's error type.
EXPECTED = {
    "greater_than": "a number above {gt}",
    "greater_than_equal": "a number {ge} or more",
    "less_than": "a number below {lt}",
    "finite_number": "a finite number",
    "float_parsing": "a number",
    "float_type": "a number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_parsing": "true or false (also on/off, yes/no, 1/0)",
    "literal_error": "one of {expected}",
}


def _first_problem(error: ValidationError, given: Mapping[str, str]) -> str:
    """One line for the first refused field: the validator's own message when it has one
    (it names the variable), else `NXS_X must be …, got '…'`."""
    problem = error.errors()[0]
    name = str(problem["loc"][0]) if problem["loc"] else ""
    if problem["type"] == "value_error":
        return str(problem["ctx"]["error"])
    context = {key: _plain(value) for key, value in problem.get("ctx", {}).items()}
    expected = EXPECTED.get(problem["type"], "a valid value").format(**context)
    expected = expected.replace("'", "")
    if len(problem["loc"]) > 1:  # one item of a list
        expected = f"a comma list, each {expected}"
    return f"{variable(name)} must be {expected}, got {given.get(name, '')!r}"


def _plain(value: Any) -> Any:
    """0.0 → 0 in messages."""
    return int(value) if isinstance(value, float) and value.is_integer() else value
