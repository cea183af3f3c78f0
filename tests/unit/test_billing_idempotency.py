"""Idempotency-Key: a retry within 24 h replays; a different body is a 422."""

from __future__ import annotations

import pytest

from nxs.billing.errors import (
    IdempotencyKeyReused,
    IdempotentRequestInProgress,
    InvalidBillingInput,
)
from nxs.billing.idempotency import (
    RETENTION_SECONDS,
    Decision,
    IdempotencyRecord,
    decide,
    fingerprint,
    validate_key,
)
from nxs.errors import render

BODY = b'{"prompt":"a cat"}'
FIRST = fingerprint("POST", "fal-ai/flux/dev", "", BODY)


def test_first_use_proceeds() -> None:
    assert decide(None, FIRST, now=100.0) is Decision.PROCEED


def test_a_retry_with_the_same_body_replays_the_stored_answer() -> None:
    stored = IdempotencyRecord(FIRST, created_at=100.0, done=True)
    again = fingerprint("post", "fal-ai/flux/dev", "", BODY)
    assert decide(stored, again, now=100.0 + RETENTION_SECONDS - 1) is Decision.REPLAY


def test_same_key_with_a_different_body_is_a_422() -> None:
    stored = IdempotencyRecord(FIRST, created_at=100.0, done=True)
    other = fingerprint("POST", "fal-ai/flux/dev", "", b'{"prompt":"a dog"}')
    with pytest.raises(IdempotencyKeyReused) as caught:
        decide(stored, other, now=101.0)
    assert caught.value.status == 422
    assert render(caught.value).startswith(b'{"detail":[{"loc":["header","Idempotency-Key"]')


def test_same_body_on_another_endpoint_is_a_different_request() -> None:
    stored = IdempotencyRecord(FIRST, created_at=100.0, done=True)
    with pytest.raises(IdempotencyKeyReused):
        decide(stored, fingerprint("POST", "fal-ai/flux/schnell", "", BODY), now=101.0)


def test_a_retry_while_the_first_is_running_gets_409() -> None:
    running = IdempotencyRecord(FIRST, created_at=100.0, done=False)
    with pytest.raises(IdempotentRequestInProgress) as caught:
        decide(running, FIRST, now=100.5)
    assert caught.value.status == 409


def test_after_24_hours_the_key_is_fresh_again() -> None:
    stored = IdempotencyRecord(FIRST, created_at=100.0, done=True)
    other = fingerprint("POST", "fal-ai/flux/dev", "", b"{}")
    assert decide(stored, other, now=100.0 + RETENTION_SECONDS) is Decision.PROCEED


@pytest.mark.parametrize("value", ["", "   ", "x" * 256, "ключ", "a\nb"])
def test_unusable_keys_are_rejected(value: str) -> None:
    with pytest.raises(InvalidBillingInput, match="Idempotency-Key"):
        validate_key(value)


def test_usable_key_is_trimmed() -> None:
    assert validate_key(" 7f3c-retry-1 ") == "7f3c-retry-1"
