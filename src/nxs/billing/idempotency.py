"""Idempotency-Key decisions: replay the first answer, refuse a reused key, or go ahead.

Pure: the store keeps `(customer, key) → IdempotencyRecord` for 24 h and applies these
decisions in the same transaction as the reservation (docs/billing-design.md §5).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from nxs.billing.errors import (
    IdempotencyKeyReused,
    IdempotentRequestInProgress,
    InvalidBillingInput,
)

IDEMPOTENCY_HEADER = "idempotency-key"
RETENTION_SECONDS = 24 * 3600
MAX_KEY_LENGTH = 255


class Decision(StrEnum):
    PROCEED = "proceed"  # first time (or expired): call upstream, record the answer
    REPLAY = "replay"  # answer with the stored response: no upstream call, no charge


@dataclass(frozen=True)
class IdempotencyRecord:
    fingerprint: str
    created_at: float
    done: bool  # the first request's answer is stored


def validate_key(value: str) -> str:
    """The header's value: 1–255 visible ASCII characters."""
    key = value.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise InvalidBillingInput(
            "Idempotency-Key", "Idempotency-Key must be 1-255 printable ASCII characters"
        )
    return key


def fingerprint(method: str, endpoint: str, query: str, body: bytes) -> str:
    """What makes two requests "the same": method, endpoint, query and exact body bytes."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), endpoint.encode(), query.encode()):
        digest.update(len(part).to_bytes(4, "big") + part)
    digest.update(body)
    return digest.hexdigest()


def decide(existing: IdempotencyRecord | None, request_fingerprint: str, now: float) -> Decision:
    """PROCEED, REPLAY, or raise: 422 for a different request, 409 while the first runs."""
    if existing is None or now - existing.created_at >= RETENTION_SECONDS:
        return Decision.PROCEED
    if existing.fingerprint != request_fingerprint:
        raise IdempotencyKeyReused()
    if not existing.done:
        raise IdempotentRequestInProgress()
    return Decision.REPLAY
