"""The store's customers, customer keys, grants and version, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nxs.config import Settings
from nxs.errors import BadRequest, Conflict, NotFound
from nxs.store.models import QueuedRequest
from nxs.store.store import Store


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, secret_key_file=tmp_path / "nxs.secret")


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store.open(settings) as opened:
        yield opened


def test_created_customer_is_active_and_listed(store: Store) -> None:
    customer = store.create_customer("acme")
    assert customer.status == "active"
    assert customer.id.startswith("cus_")
    assert [c.name for c in store.list_customers()] == ["acme"]


def test_duplicate_customer_is_a_conflict(store: Store) -> None:
    store.create_customer("acme")
    with pytest.raises(Conflict, match="Customer 'acme' already exists"):
        store.create_customer("acme")


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "acme/1", "é", "a\n"])
def test_invalid_names_are_refused(store: Store, name: str) -> None:
    with pytest.raises(BadRequest, match="Invalid customer name"):
        store.create_customer(name)
    assert store.list_customers() == []


def test_suspend_and_resume_change_the_grant(store: Store) -> None:
    store.create_customer("acme")
    _, plaintext = store.create_key("acme")
    store.set_customer_status("acme", "suspended")
    assert store.grants()[Store.key_hash(plaintext)].customer_active is False
    store.set_customer_status("acme", "active")
    assert store.grants()[Store.key_hash(plaintext)].customer_active is True


def test_status_of_unknown_customer_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="Customer 'ghost' not found"):
        store.set_customer_status("ghost", "suspended")


def test_new_key_has_the_documented_shape(store: Store) -> None:
    store.create_customer("acme")
    record, plaintext = store.create_key("acme")
    assert plaintext.startswith("nxs_") and len(plaintext) == 44
    assert record.id.startswith("key_") and len(record.id) == 16
    assert plaintext.startswith(record.prefix)
    assert Store.key_hash(plaintext) in store.grants()


def test_key_plaintext_is_not_stored(tmp_path: Path) -> None:
    with Store.open(Settings(database_url=f"sqlite:///{tmp_path / 'nxs.db'}")) as store:
        store.create_customer("acme")
        _, plaintext = store.create_key("acme")
    assert plaintext.encode() not in _raw_database(tmp_path)
    assert Store.key_hash(plaintext).encode() in _raw_database(tmp_path)


def test_key_for_unknown_customer_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="Customer 'ghost' not found"):
        store.create_key("ghost")


def test_revoked_key_vanishes_from_grants(store: Store) -> None:
    store.create_customer("acme")
    kept, kept_plain = store.create_key("acme")
    revoked, revoked_plain = store.create_key("acme")
    assert store.revoke_key(revoked.id).revoked_at is not None
    grants = store.grants()
    assert Store.key_hash(revoked_plain) not in grants
    assert grants[Store.key_hash(kept_plain)].key_id == kept.id


def test_revoking_twice_is_harmless(store: Store) -> None:
    store.create_customer("acme")
    record, _ = store.create_key("acme")
    first = store.revoke_key(record.id)
    assert store.revoke_key(record.id).revoked_at == first.revoked_at


def test_revoking_unknown_key_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="Key 'key_000000000000' not found"):
        store.revoke_key("key_000000000000")


def test_keys_are_listed_per_customer(store: Store) -> None:
    store.create_customer("acme")
    store.create_customer("beta")
    acme_key, _ = store.create_key("acme")
    beta_key, _ = store.create_key("beta")
    assert [k.id for k in store.list_keys("acme")] == [acme_key.id]
    assert {k.id for k in store.list_keys()} == {acme_key.id, beta_key.id}
    with pytest.raises(NotFound):
        store.list_keys("ghost")


def test_version_grows_on_every_change_gateways_need(store: Store) -> None:
    seen = [store.version()]
    store.create_customer("acme")
    seen.append(store.version())
    record, _ = store.create_key("acme")
    seen.append(store.version())
    store.set_customer_status("acme", "suspended")
    seen.append(store.version())
    store.revoke_key(record.id)
    seen.append(store.version())
    upstream = store.add_upstream("main", "fal-key-0123456789")
    seen.append(store.version())
    store.set_upstream_state(upstream.id, "invalid", "401 from fal")
    seen.append(store.version())
    store.enable_upstream("main")
    seen.append(store.version())
    store.remove_upstream("main")
    seen.append(store.version())
    assert seen == sorted(set(seen))


def test_no_op_writes_leave_the_version_alone(store: Store) -> None:
    store.create_customer("acme")
    before = store.version()
    store.set_customer_status("acme", "active")
    assert store.version() == before


def test_queued_request_is_found_by_id(store: Store) -> None:
    customer = store.create_customer("acme")
    key, _ = store.create_key("acme")
    request = QueuedRequest("req-1", customer.id, key.id, "up_1", "fal-ai/flux/dev", time.time())
    store.record_queued(request)
    assert store.find_queued("req-1") == request
    assert store.find_queued("req-unknown") is None


def test_queued_request_id_is_recorded_once(store: Store) -> None:
    customer = store.create_customer("acme")
    key, _ = store.create_key("acme")
    request = QueuedRequest("req-1", customer.id, key.id, "up_1", "fal-ai/flux/dev", time.time())
    store.record_queued(request)
    with pytest.raises(Conflict, match="already recorded"):
        store.record_queued(request)


def test_queued_request_survives_reopening(settings: Settings, store: Store) -> None:
    customer = store.create_customer("acme")
    key, _ = store.create_key("acme")
    store.record_queued(QueuedRequest("req-1", customer.id, key.id, "up_1", "a/b", time.time()))
    with Store.open(settings) as other:
        found = other.find_queued("req-1")
    assert found is not None and found.endpoint == "a/b"


def _raw_database(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(folder.glob("nxs.db*")))
