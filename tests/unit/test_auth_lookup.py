"""Keys newer than the gateway's snapshot, looked up in a real store: found at once, dropped
by the next reload once revoked, and unknown keys bounded by remembered misses and a rate."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from nxs.config import Settings
from nxs.errors import InvalidApiKey, PaymentRequired
from nxs.gateway.auth import Authenticator
from nxs.gateway.key_lookup import MISS_TTL_SECONDS, KeyLookup
from nxs.store.models import KeyGrant
from nxs.store.store import Store


def reader(store: Store) -> Callable[[str], Awaitable[KeyGrant | None]]:
    async def find(key_hash: str) -> KeyGrant | None:
        return store.find_grant(key_hash)

    return find


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(Settings(database_url=f"sqlite:///{tmp_path / 'nxs.db'}")) as opened:
        opened.create_customer("acme")
        yield opened


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def counts() -> Counter[str]:
    return Counter()


@pytest.fixture
def auth(store: Store, clock: Clock, counts: Counter[str]) -> Authenticator:
    lookup = KeyLookup(reader(store), counts, rate=5, burst=5, clock=clock)
    authenticator = Authenticator(store.key_hash, lookup)
    authenticator.load(store.grants())
    return authenticator


def authenticate(auth: Authenticator, authorization: str) -> KeyGrant:
    return asyncio.run(auth.authenticate(authorization))


def unknown_key() -> str:
    return "nxs_" + secrets.token_urlsafe(30)


def test_key_created_after_the_snapshot_authenticates_with_one_lookup(
    store: Store, auth: Authenticator, counts: Counter[str]
) -> None:
    record, key = store.create_key("acme")
    assert authenticate(auth, f"Key {key}").key_id == record.id
    assert authenticate(auth, f"Bearer {key}").key_id == record.id
    assert auth.key_grant(record.id).customer_name == "acme"
    assert counts == Counter(found=1)


def test_key_found_by_lookup_is_dropped_by_the_reload_after_its_revocation(
    store: Store, auth: Authenticator
) -> None:
    record, key = store.create_key("acme")
    authenticate(auth, f"Key {key}")
    store.revoke_key(record.id)
    auth.load(store.grants())
    with pytest.raises(InvalidApiKey):
        authenticate(auth, f"Key {key}")
    with pytest.raises(InvalidApiKey):
        auth.key_grant(record.id)


def test_new_key_of_a_suspended_customer_is_402(store: Store, auth: Authenticator) -> None:
    _, key = store.create_key("acme")
    store.set_customer_status("acme", "suspended")
    with pytest.raises(PaymentRequired):
        authenticate(auth, f"Key {key}")


def test_revoked_key_is_not_found(store: Store, auth: Authenticator, counts: Counter[str]) -> None:
    record, key = store.create_key("acme")
    store.revoke_key(record.id)
    with pytest.raises(InvalidApiKey):
        authenticate(auth, f"Key {key}")
    assert counts == Counter(missing=1)


@pytest.mark.parametrize(
    "key", ["nxs_short", "nxs_" + "a" * 41, "nxs_" + "!" * 40, "sk-" + "a" * 41]
)
def test_malformed_keys_are_refused_without_a_query(
    auth: Authenticator, counts: Counter[str], key: str
) -> None:
    with pytest.raises(InvalidApiKey):
        authenticate(auth, f"Key {key}")
    assert counts == Counter()


def test_a_missed_key_is_not_queried_again_until_the_ttl_or_a_reload(
    store: Store, auth: Authenticator, clock: Clock, counts: Counter[str]
) -> None:
    key = unknown_key()
    for _ in range(3):
        with pytest.raises(InvalidApiKey):
            authenticate(auth, f"Key {key}")
    assert counts == Counter(missing=1, known_miss=2)
    clock.now += MISS_TTL_SECONDS
    with pytest.raises(InvalidApiKey):
        authenticate(auth, f"Key {key}")
    auth.load(store.grants())
    with pytest.raises(InvalidApiKey):
        authenticate(auth, f"Key {key}")
    assert counts == Counter(missing=3, known_miss=2)


def test_lookups_beyond_the_rate_are_refused_without_a_query(
    store: Store, auth: Authenticator, clock: Clock, counts: Counter[str]
) -> None:
    for _ in range(20):
        with pytest.raises(InvalidApiKey):
            authenticate(auth, f"Key {unknown_key()}")
    assert counts == Counter(missing=5, rate_limited=15)
    clock.now += 0.5  # two and a half tokens at 5/s: two lookups
    _, key = store.create_key("acme")
    assert authenticate(auth, f"Key {key}").customer_name == "acme"
    for _ in range(3):
        with pytest.raises(InvalidApiKey):
            authenticate(auth, f"Key {unknown_key()}")
    assert counts == Counter(found=1, missing=6, rate_limited=17)


def test_without_a_lookup_the_snapshot_alone_decides(store: Store) -> None:
    auth = Authenticator(store.key_hash)
    auth.load(store.grants())
    _, key = store.create_key("acme")
    with pytest.raises(InvalidApiKey):
        authenticate(auth, f"Key {key}")


def test_only_a_found_key_calls_the_catch_up(store: Store, counts: Counter[str]) -> None:
    caught_up: list[str] = []
    lookup = KeyLookup(reader(store), counts)

    async def catch_up() -> None:
        caught_up.append("refresh")

    lookup.on_found = catch_up
    _, key = store.create_key("acme")
    assert asyncio.run(lookup.find(store.key_hash(unknown_key()))) is None
    assert asyncio.run(lookup.find(store.key_hash(key))) is not None
    assert caught_up == ["refresh"]


def test_a_grant_read_across_a_reload_answers_but_is_not_kept(store: Store) -> None:
    counts: Counter[str] = Counter()
    lookup = KeyLookup(reader(store), counts)
    auth = Authenticator(store.key_hash, lookup)
    auth.load(store.grants())
    record, key = store.create_key("acme")

    async def revoked_meanwhile() -> None:  # a reload that saw the key revoked meanwhile
        auth.load({})

    async def nothing() -> None:
        return None

    lookup.on_found = revoked_meanwhile
    assert authenticate(auth, f"Key {key}").key_id == record.id
    lookup.on_found = nothing
    with pytest.raises(InvalidApiKey):
        auth.key_grant(record.id)
    assert authenticate(auth, f"Key {key}").key_id == record.id  # looked up again
    assert counts["found"] == 2
