"""The records the store hands out: plain frozen dataclasses, no database types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CustomerStatus = Literal["active", "suspended"]
# active: in the pool; invalid: fal answered 401, out until `nxs upstream enable`;
# suspended: fal answered 403 locked, re-probed and resumed by itself.
UpstreamState = Literal["active", "invalid", "suspended"]


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    status: CustomerStatus
    created_at: float


@dataclass(frozen=True)
class ApiKey:
    """A customer's `nxs_` key as listed: never its plaintext, which is shown once."""

    id: str  # public handle, e.g. key_3f9a…; what `nxs keys revoke` takes
    customer_id: str
    customer_name: str
    prefix: str  # first characters of the key, for recognising it
    created_at: float
    revoked_at: float | None


@dataclass(frozen=True)
class KeyGrant:
    """What authenticating a key yields on the hot path."""

    key_id: str
    customer_id: str
    customer_name: str
    customer_active: bool


@dataclass(frozen=True)
class UpstreamKey:
    """A fal key of the pool, decrypted; `masked` is what may be shown."""

    id: str
    name: str
    secret: str
    weight: int
    state: UpstreamState
    state_reason: str | None
    created_at: float
    concurrency: int = 2  # fal's per-account limit (fal starts accounts at 2)
    last_error: str | None = None
    last_error_at: float | None = None

    @property
    def masked(self) -> str:
        return mask(self.secret)

    def __repr__(self) -> str:
        return f"UpstreamKey(id={self.id!r}, name={self.name!r}, secret={self.masked!r})"


@dataclass(frozen=True)
class QueuedRequest:
    """A queued request bound to the customer and upstream key that submitted it."""

    request_id: str
    customer_id: str
    api_key_id: str
    upstream_key_id: str
    endpoint: str  # the full endpoint id submitted, e.g. fal-ai/flux/dev
    created_at: float


def mask(secret: str) -> str:
    """`abcd…wxyz`-style masking; short secrets show nothing."""
    if len(secret) < 12:
        return "****"
    return f"{secret[:4]}…{secret[-4:]}"
