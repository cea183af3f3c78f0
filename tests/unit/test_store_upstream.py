"""The store's upstream keys: pool records, health state, and encryption at rest."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from nxs.config import Settings
from nxs.errors import BadRequest, Conflict, NotFound
from nxs.store.crypto import SecretKeyError
from nxs.store.store import Store

SECRET = "fal-id-1234:very-secret-value-5678"


def _settings(folder: Path, secret_key: str | None = None) -> Settings:
    return Settings(database_url=f"sqlite:///{folder / 'nxs.db'}", secret_key=secret_key)


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[Store]:
    """A store on each backend (the tests of key files below open SQLite files)."""
    settings = Settings(database_url=database_url, secret_key_file=tmp_path / "nxs.secret")
    with Store.open(settings) as opened:
        yield opened


def test_added_key_is_active_decrypted_and_masked(store: Store) -> None:
    key = store.add_upstream("main", SECRET, weight=3)
    assert (key.state, key.weight, key.state_reason) == ("active", 3, None)
    [listed] = store.upstream_keys()
    assert listed.secret == SECRET
    assert listed.masked == "fal-…5678"
    assert SECRET not in repr(listed)


def test_secret_is_stripped(store: Store) -> None:
    store.add_upstream("main", f"  {SECRET}\n")
    assert store.upstream_keys()[0].secret == SECRET


@pytest.mark.parametrize("secret", ["", "   \n", "two words", "tab\there"])
def test_empty_or_multiword_secret_is_refused(store: Store, secret: str) -> None:
    with pytest.raises(BadRequest):
        store.add_upstream("main", secret)
    assert store.upstream_keys() == []


@pytest.mark.parametrize("weight", [0, -1, 1001])
def test_out_of_range_weight_is_refused(store: Store, weight: int) -> None:
    with pytest.raises(BadRequest, match="Invalid weight"):
        store.add_upstream("main", SECRET, weight=weight)


def test_concurrency_starts_at_fals_two_and_changes_with_weight(store: Store) -> None:
    assert store.add_upstream("main", SECRET).concurrency == 2
    version = store.version()
    changed = store.set_upstream("main", concurrency=12)
    assert (changed.concurrency, changed.weight) == (12, 1)
    assert store.version() > version  # running gateways reload the pool
    [listed] = store.upstream_keys()
    assert (listed.concurrency, listed.weight) == (12, 1)
    assert store.set_upstream("main", weight=4).concurrency == 12


@pytest.mark.parametrize("concurrency", [0, -1, 10_001, True])
def test_out_of_range_concurrency_is_refused(store: Store, concurrency: int) -> None:
    with pytest.raises(BadRequest, match="Invalid concurrency"):
        store.add_upstream("main", SECRET, concurrency=concurrency)
    store.add_upstream("main", SECRET)
    with pytest.raises(BadRequest, match="Invalid concurrency"):
        store.set_upstream("main", concurrency=concurrency)
    assert store.get_upstream("main").concurrency == 2


def test_last_error_is_kept_without_a_reload(store: Store) -> None:
    key = store.add_upstream("main", SECRET)
    version = store.version()
    store.note_upstream_error(key.id, "fal answered 429: rests 1 s", 1_700_000_000.5)
    found = store.get_upstream("main")
    assert (found.last_error, found.last_error_at) == (
        "fal answered 429: rests 1 s",
        1_700_000_000.5,
    )
    assert store.version() == version


def test_duplicate_name_is_a_conflict(store: Store) -> None:
    store.add_upstream("main", SECRET)
    with pytest.raises(Conflict, match="Upstream key 'main' already exists"):
        store.add_upstream("main", SECRET + "x")


def test_state_changes_are_kept_with_their_reason(store: Store) -> None:
    key = store.add_upstream("main", SECRET)
    store.set_upstream_state(key.id, "suspended", "User is locked")
    [listed] = store.list_upstream()
    assert (listed.state, listed.state_reason) == ("suspended", "User is locked")


def test_enable_puts_an_invalid_key_back(store: Store) -> None:
    key = store.add_upstream("main", SECRET)
    store.set_upstream_state(key.id, "invalid", "401 from fal")
    enabled = store.enable_upstream("main")
    assert (enabled.state, enabled.state_reason) == ("active", None)


def test_state_of_a_removed_key_is_ignored(store: Store) -> None:
    key = store.add_upstream("main", SECRET)
    store.remove_upstream("main")
    store.set_upstream_state(key.id, "invalid", "401")
    assert store.upstream_keys() == []


def test_unknown_state_is_refused(store: Store) -> None:
    key = store.add_upstream("main", SECRET)
    with pytest.raises(BadRequest, match="Invalid upstream state"):
        store.set_upstream_state(key.id, "broken", None)  # type: ignore[arg-type]


def test_remove_and_enable_of_unknown_name_are_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="Upstream key 'ghost' not found"):
        store.remove_upstream("ghost")
    with pytest.raises(NotFound, match="Upstream key 'ghost' not found"):
        store.enable_upstream("ghost")


def test_secret_is_encrypted_at_rest(tmp_path: Path) -> None:
    with Store.open(_settings(tmp_path)) as store:
        store.add_upstream("main", SECRET)
        assert SECRET.encode() not in _raw_files(tmp_path)
    assert SECRET.encode() not in _raw_files(tmp_path)


def test_generated_secret_file_is_private_and_next_to_the_database(tmp_path: Path) -> None:
    with Store.open(_settings(tmp_path)):
        pass
    mode = stat.S_IMODE((tmp_path / "nxs.secret").stat().st_mode)
    assert mode == 0o600


def test_keys_survive_reopening_with_the_same_secret(tmp_path: Path) -> None:
    with Store.open(_settings(tmp_path, secret_key="first-secret")) as store:
        store.add_upstream("main", SECRET)
    with Store.open(_settings(tmp_path, secret_key="first-secret")) as store:
        assert store.upstream_keys()[0].secret == SECRET


def test_a_different_secret_is_refused_at_open(tmp_path: Path) -> None:
    with Store.open(_settings(tmp_path, secret_key="first-secret")) as store:
        store.add_upstream("main", SECRET)
    with pytest.raises(SecretKeyError, match="NXS_SECRET_KEY"):
        Store.open(_settings(tmp_path, secret_key="second-secret"))


def test_env_secret_writes_no_key_file(tmp_path: Path) -> None:
    with Store.open(_settings(tmp_path, secret_key="from-the-environment")):
        pass
    assert not (tmp_path / "nxs.secret").exists()


def _raw_files(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(folder.glob("nxs.db*")))


def test_new_database_file_is_private(tmp_path: Path) -> None:
    with Store.open(_settings(tmp_path)) as store:
        store.create_customer("acme")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.glob("nxs.db*")}
    assert set(modes.values()) == {0o600}, modes


def test_in_memory_store_needs_no_secret_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with Store.open(Settings(database_url="sqlite://")) as store:
        store.add_upstream("main", SECRET)
        assert store.upstream_keys()[0].secret == SECRET
    assert list(tmp_path.iterdir()) == []
