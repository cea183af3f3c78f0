"""What admin endpoints depend on: the gateway's `Store`, and the bearer-token check.

`AdminContext` is built once per admin app (from the gateway's lifespan) and kept on
`app.state`; endpoints reach it through FastAPI dependencies, never a module global.
Tokens are compared in constant time, on digests so lengths leak nothing either.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from nxs.config import Settings
from nxs.errors import Forbidden, InvalidApiKey
from nxs.store.store import Store

LiveUpstream = Callable[[str], dict[str, float | int] | None]  # key id → live counters
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="AdminToken",
    description="`Authorization: Bearer $NXS_ADMIN_TOKEN`",
)


class AdminDisabled(Forbidden):
    error_type = "admin_disabled"
    detail = "The admin API is disabled: set NXS_ADMIN_TOKEN to enable it"


class InvalidAdminToken(InvalidApiKey):
    error_type = "invalid_admin_token"
    detail = "Missing or invalid admin token"


@dataclass(frozen=True)
class AdminContext:
    settings: Settings
    store: Store
    live: LiveUpstream | None = None  # the gateway pool's live view of an upstream key


def live_upstream(request: Request) -> LiveUpstream | None:
    return context(request).live


def context(request: Request) -> AdminContext:
    found = request.app.state.context
    assert isinstance(found, AdminContext)
    return found


def store(request: Request) -> Store:
    """The store, for endpoints: `store: StoreDep`."""
    return context(request).store


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison of a presented token with the configured one."""
    digest = hashlib.sha256
    return hmac.compare_digest(digest(given.encode()).digest(), digest(expected.encode()).digest())


def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> None:
    """403 while no token is configured, 401 for a missing or wrong one."""
    expected = context(request).settings.admin_token
    if not expected:
        raise AdminDisabled()
    if credentials is None or not token_matches(credentials.credentials, expected):
        raise InvalidAdminToken(headers={"WWW-Authenticate": "Bearer"})


StoreDep = Annotated[Store, Depends(store)]
