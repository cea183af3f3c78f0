"""Accounts of the emulator: every distinct key is its own account.

A key is `id:secret` or a bare token; its id (the part before `:`) names the account.
Test keys behave like a payment processor's test cards, by the id's prefix:
`invalid…` → 401, `locked…` → 403 exhausted balance, `limited…` → 429,
`flaky…` → about half 500/503. Anything else is a good key.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from nxs.errors import Forbidden, InvalidApiKey, NxsError, RateLimited

LOCKED_DETAIL = (
    "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing"
)


class UpstreamServerError(NxsError):
    status, error_type, detail = 500, "runner_server_error", "Internal server error"


class UpstreamUnavailable(NxsError):
    status, error_type, detail = 503, "runner_scheduling_failure", "Service temporarily unavailable"


@dataclass(frozen=True)
class Account:
    account_id: str


def parse_authorization(header: str | None) -> str | None:
    """The key carried by `Authorization: Key …` or `Bearer …`, or None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() not in ("key", "bearer") or not token.strip():
        return None
    return token.strip()


def authenticate(header: str | None, rng: random.Random) -> Account:
    """The account a request acts as; raises the test key's error where it has one."""
    key = parse_authorization(header)
    if key is None:
        raise InvalidApiKey("No key provided")
    account_id = key.split(":", 1)[0]
    if account_id.startswith("invalid"):
        raise InvalidApiKey("Invalid API key")
    if account_id.startswith("locked"):
        raise Forbidden(LOCKED_DETAIL)
    if account_id.startswith("limited"):
        raise RateLimited("Rate limit exceeded", headers={"Retry-After": "1"})
    if account_id.startswith("flaky") and rng.random() < 0.5:
        error = UpstreamServerError() if rng.random() < 0.5 else UpstreamUnavailable()
        error.headers["x-fal-error-type"] = error.error_type
        raise error
    return Account(account_id)
