"""Who is calling: `Authorization: Key nxs_…` or `Bearer nxs_…` checked against a snapshot.

The snapshot (key hash → `KeyGrant`) is reloaded from the store whenever its version
changes, so authenticating a request is a dict lookup with no database query; a small memo
spares re-hashing keys already seen since the last reload.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from nxs.errors import InvalidApiKey, PaymentRequired
from nxs.store.models import KeyGrant

KEY_PREFIX = "nxs_"
_MEMO_LIMIT = 10_000
_SCHEMES = ("Key ", "Bearer ", "key ", "bearer ")


class Authenticator:
    """Maps an Authorization header to the customer's grant, or raises 401/402."""

    def __init__(self, key_hash: Callable[[str], str]) -> None:
        self._key_hash = key_hash
        self._grants: Mapping[str, KeyGrant] = {}
        self._by_key_id: dict[str, KeyGrant] = {}
        self._memo: dict[str, KeyGrant] = {}

    def load(self, grants: Mapping[str, KeyGrant]) -> None:
        """Replace the snapshot (called when the store's version changed)."""
        self._grants = grants
        self._by_key_id = {grant.key_id: grant for grant in grants.values()}
        self._memo = {}

    def authenticate(self, authorization: str | None) -> KeyGrant:
        """The grant of an active customer's key; 401 if missing/unknown, 402 if suspended."""
        if not authorization:
            raise InvalidApiKey()
        grant = self._memo.get(authorization) or self._lookup(authorization)
        if not grant.customer_active:
            raise PaymentRequired()
        return grant

    def key_grant(self, key_id: str) -> KeyGrant:
        """The grant of a key named by id (from a token NXS signed): 401 once it is revoked,
        402 while its customer is suspended."""
        grant = self._by_key_id.get(key_id)
        if grant is None:
            raise InvalidApiKey()
        if not grant.customer_active:
            raise PaymentRequired()
        return grant

    def _lookup(self, authorization: str) -> KeyGrant:
        token = _token(authorization)
        if token is None or not token.startswith(KEY_PREFIX):
            raise InvalidApiKey()
        grant = self._grants.get(self._key_hash(token))
        if grant is None:
            raise InvalidApiKey()
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[authorization] = grant
        return grant


def _token(authorization: str) -> str | None:
    for scheme in _SCHEMES:
        if authorization.startswith(scheme):
            token = authorization[len(scheme) :].strip()
            return token or None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() in ("key", "bearer") and token.strip():
        return token.strip()
    return None
