"""Who is calling: `Authorization: Key nxs_…` or `Bearer nxs_…` checked against a snapshot.

The snapshot (key hash → `KeyGrant`) is reloaded from the store whenever its version
changes, so authenticating a request is a dict lookup with no database query; a small memo
spares re-hashing keys already seen since the last reload. A well-formed key missing from
the snapshot is looked up in the store (`KeyLookup`, bounded) and added until the next
reload, which drops it if it was revoked: a new key works at once on every worker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from nxs.errors import InvalidApiKey, PaymentRequired
from nxs.gateway.key_lookup import KeyLookup
from nxs.store.keys import well_formed
from nxs.store.models import KeyGrant

KEY_PREFIX = "nxs_"
_MEMO_LIMIT = 10_000
_SCHEMES = ("Key ", "Bearer ", "key ", "bearer ")


class Authenticator:
    """Maps an Authorization header to the customer's grant, or raises 401/402."""

    def __init__(self, key_hash: Callable[[str], str], lookup: KeyLookup | None = None) -> None:
        self._key_hash = key_hash
        self._store_lookup = lookup  # None: the snapshot alone decides
        self._grants: dict[str, KeyGrant] = {}
        self._by_key_id: dict[str, KeyGrant] = {}
        self._memo: dict[str, KeyGrant] = {}
        self._generation = 0  # bumped by each load

    def load(self, grants: Mapping[str, KeyGrant]) -> None:
        """Replace the snapshot (called when the store's version changed); keys added by
        lookups since the last load are dropped with it, and remembered misses forgotten."""
        self._grants = dict(grants)
        self._by_key_id = {grant.key_id: grant for grant in grants.values()}
        self._memo = {}
        self._generation += 1
        if self._store_lookup is not None:
            self._store_lookup.forget()

    async def authenticate(self, authorization: str | None) -> KeyGrant:
        """The grant of an active customer's key; 401 if missing/unknown, 402 if suspended.
        A snapshot hit awaits nothing; only a miss reads the store (off the event loop)."""
        if not authorization:
            raise InvalidApiKey()
        grant = self._memo.get(authorization) or await self._lookup(authorization)
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

    async def _lookup(self, authorization: str) -> KeyGrant:
        token = _token(authorization)
        if token is None or not token.startswith(KEY_PREFIX):
            raise InvalidApiKey()
        hashed = self._key_hash(token)
        grant = self._grants.get(hashed) or await self._find(token, hashed)
        if self._grants.get(hashed) is not grant:
            return grant  # read across a load: not kept (see `_find`)
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[authorization] = grant
        return grant

    async def _find(self, token: str, hashed: str) -> KeyGrant:
        """A key the snapshot lacks, from the store; kept until the next load. A grant read
        while a load happened (the read is awaited) may predate a revocation
        that load saw: it answers this request but is not kept."""
        if self._store_lookup is None or not well_formed(token):
            raise InvalidApiKey()
        generation = self._generation
        grant = await self._store_lookup.find(hashed)
        if grant is None:
            raise InvalidApiKey()
        if generation == self._generation:
            self._grants[hashed] = grant
            self._by_key_id[grant.key_id] = grant
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
