"""The admin API's request and response bodies, as pydantic models (they make the OpenAPI).

Request models check what operators send with the store's own rules, so bad input is a
422 naming the field; response models never carry a secret except `KeyCreated.key`,
the one time a customer key is shown.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from nxs.store.ids import NAME_PATTERN
from nxs.store.upstream import MAX_CONCURRENCY, MAX_SECRET_LENGTH, MAX_WEIGHT

NAME_FIELD = Field(
    pattern=f"^{NAME_PATTERN.pattern}$",
    min_length=1,
    max_length=64,
    description="1-64 characters among letters, digits, '.', '_' and '-'",
)


class Strict(BaseModel):
    """Unknown fields are refused (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid")


class CustomerCreate(Strict):
    name: str = NAME_FIELD


class CustomerOut(BaseModel):
    id: str
    name: str
    status: Literal["active", "suspended"]
    created_at: str


class KeyOut(BaseModel):
    id: str = Field(description="the key's public handle, e.g. key_3f9a0c1d2e4b")
    customer: str
    customer_id: str
    prefix: str = Field(description="the first characters of the key, for recognising it")
    status: Literal["active", "revoked"]
    created_at: str
    revoked_at: str | None


class KeyCreated(KeyOut):
    key: str = Field(description="the full nxs_ key: shown only in this answer, store it now")


class UpstreamCreate(Strict):
    name: str = NAME_FIELD
    secret: str = Field(
        min_length=1,
        max_length=MAX_SECRET_LENGTH,
        description="the fal key (KEY_ID:KEY_SECRET); stored encrypted, never shown again",
    )
    weight: int = Field(default=1, ge=1, le=MAX_WEIGHT, description="share of traffic")
    concurrency: int = Field(
        default=2, ge=1, le=MAX_CONCURRENCY, description="requests fal runs at once (fal: 2+)"
    )

    @field_validator("secret")
    @classmethod
    def _one_printable_word(cls, secret: str) -> str:
        secret = secret.strip()
        if not secret or any(ch.isspace() for ch in secret) or not secret.isprintable():
            raise ValueError("must be one line of printable characters without spaces")
        return secret


class UpstreamSet(Strict):
    weight: int | None = Field(default=None, ge=1, le=MAX_WEIGHT, description="share of traffic")
    concurrency: int | None = Field(
        default=None, ge=1, le=MAX_CONCURRENCY, description="requests fal runs at once"
    )


class UpstreamOut(BaseModel):
    id: str
    name: str
    key: str = Field(description="the fal key, masked (first and last 4 characters)")
    weight: int
    concurrency: int = Field(description="configured: requests fal runs at once for it")
    state: Literal["active", "invalid", "suspended"]
    reason: str | None
    created_at: str
    last_error: str | None
    last_error_at: str | None
    live: dict[str, float | int] | None = Field(
        default=None,
        description="as this gateway worker sees it: learned limit, runs in flight, requests"
        " outstanding at fal, cooldown seconds left (absent when not served by a gateway)",
    )


class AuditEntryOut(BaseModel):
    id: int
    at: str
    actor: str = Field(description='who: "admin-api" or "cli"')
    action: str
    target: str | None
    detail: dict[str, Any]


class ErrorOut(BaseModel):
    """Every error, in fal's shape: `detail` is a message or a list of field errors."""

    detail: str | list[dict[str, Any]]
    error_type: str | None = None
