"""The admin commands run as real `nxs` subprocesses against a SQLite file in tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support.servers import ROOT, free_port, nxs_command

from nxs.config import Settings
from nxs.store.store import Store

FAL_KEY = "fal-id-9876:the-upstream-secret-0042"
Nxs = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'nxs.db'}"


@pytest.fixture
def nxs(database_url: str) -> Nxs:
    """Run `nxs ARGS…` on this test's database; stdin from `stdin=`."""
    env = {**os.environ, "NXS_DATABASE_URL": database_url}
    env.pop("NXS_SECRET_KEY", None)
    env.pop("NXS_SECRET_KEY_FILE", None)

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        command = nxs_command(*args)
        return subprocess.run(
            command, input=stdin, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
        )

    return run


def listed(nxs: Nxs, *args: str) -> list[dict[str, Any]]:
    result = nxs(*args, "--json")
    assert result.returncode == 0, result.stderr
    records: list[dict[str, Any]] = json.loads(result.stdout)
    return records


def assert_fails(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2
    assert result.stderr.startswith(f"nxs: {message}")
    assert result.stderr.count("\n") == 1, result.stderr  # one line, no traceback


def test_created_customer_is_listed_active(nxs: Nxs) -> None:
    assert nxs("customers", "create", "acme").returncode == 0
    [customer] = listed(nxs, "customers", "list")
    assert (customer["name"], customer["status"]) == ("acme", "active")
    assert customer["id"].startswith("cus_")


def test_customer_list_prints_a_table(nxs: Nxs) -> None:
    nxs("customers", "create", "acme")
    lines = nxs("customers", "list").stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "ID", "STATUS"]
    assert lines[1].startswith("acme ")


def test_duplicate_customer_fails_with_one_line(nxs: Nxs) -> None:
    nxs("customers", "create", "acme")
    assert_fails(nxs("customers", "create", "acme"), "Customer 'acme' already exists")


def test_invalid_customer_name_fails(nxs: Nxs) -> None:
    assert_fails(nxs("customers", "create", "no spaces"), "Invalid customer name")


def test_suspend_and_resume(nxs: Nxs) -> None:
    nxs("customers", "create", "acme")
    assert nxs("customers", "suspend", "acme").returncode == 0
    assert listed(nxs, "customers", "list")[0]["status"] == "suspended"
    assert nxs("customers", "resume", "acme").returncode == 0
    assert listed(nxs, "customers", "list")[0]["status"] == "active"


def test_suspending_an_unknown_customer_fails(nxs: Nxs) -> None:
    assert_fails(nxs("customers", "suspend", "ghost"), "Customer 'ghost' not found")


def test_created_key_is_the_last_line_and_authenticates(nxs: Nxs, database_url: str) -> None:
    nxs("customers", "create", "acme")
    result = nxs("keys", "create", "acme")
    assert result.returncode == 0
    plaintext = result.stdout.splitlines()[-1]
    assert plaintext.startswith("nxs_") and len(plaintext) == 44
    with Store.open(Settings(database_url=database_url)) as store:
        assert store.grants()[Store.key_hash(plaintext)].customer_name == "acme"


def test_key_list_shows_prefix_never_the_key(nxs: Nxs) -> None:
    nxs("customers", "create", "acme")
    plaintext = nxs("keys", "create", "acme").stdout.splitlines()[-1]
    listing = nxs("keys", "list", "--json").stdout
    [key] = json.loads(listing)
    assert plaintext not in listing
    assert plaintext.startswith(key["prefix"])
    assert (key["customer"], key["status"]) == ("acme", "active")


def test_key_list_filters_by_customer(nxs: Nxs) -> None:
    for name in ("acme", "beta"):
        nxs("customers", "create", name)
        nxs("keys", "create", name)
    assert [k["customer"] for k in listed(nxs, "keys", "list", "beta")] == ["beta"]
    assert len(listed(nxs, "keys", "list")) == 2


def test_revoked_key_stops_authenticating(nxs: Nxs, database_url: str) -> None:
    nxs("customers", "create", "acme")
    plaintext = nxs("keys", "create", "acme").stdout.splitlines()[-1]
    [key] = listed(nxs, "keys", "list")
    assert nxs("keys", "revoke", key["id"]).returncode == 0
    assert listed(nxs, "keys", "list")[0]["status"] == "revoked"
    with Store.open(Settings(database_url=database_url)) as store:
        assert Store.key_hash(plaintext) not in store.grants()


def test_revoking_an_unknown_key_fails(nxs: Nxs) -> None:
    assert_fails(nxs("keys", "revoke", "key_123456789abc"), "Key 'key_123456789abc' not found")


def test_upstream_key_from_stdin_is_listed_masked(nxs: Nxs, tmp_path: Path) -> None:
    added = nxs("upstream", "add", "main", "--weight", "3", stdin=f"  {FAL_KEY}\n")
    assert added.returncode == 0, added.stderr
    listing = nxs("upstream", "list", "--json").stdout
    [key] = json.loads(listing)
    assert (key["name"], key["weight"], key["state"], key["key"]) == (
        "main",
        3,
        "active",
        "fal-…0042",
    )
    assert FAL_KEY not in added.stdout + listing + nxs("upstream", "list").stdout
    raw = b"".join(path.read_bytes() for path in tmp_path.glob("nxs.db*"))
    assert FAL_KEY.encode() not in raw


def test_upstream_add_with_empty_stdin_fails(nxs: Nxs) -> None:
    assert_fails(nxs("upstream", "add", "main", stdin=" \n"), "No fal key given")
    assert listed(nxs, "upstream", "list") == []


def test_upstream_key_is_never_taken_from_argv(nxs: Nxs) -> None:
    result = nxs("upstream", "add", "main", FAL_KEY)
    assert result.returncode == 2
    assert listed(nxs, "upstream", "list") == []


def test_enable_puts_a_disabled_upstream_key_back(nxs: Nxs, database_url: str) -> None:
    nxs("upstream", "add", "main", stdin=FAL_KEY)
    with Store.open(Settings(database_url=database_url)) as store:
        store.set_upstream_state(store.get_upstream("main").id, "invalid", "401 from fal")
    [key] = listed(nxs, "upstream", "list")
    assert (key["state"], key["reason"]) == ("invalid", "401 from fal")
    assert nxs("upstream", "enable", "main").returncode == 0
    [key] = listed(nxs, "upstream", "list")
    assert (key["state"], key["reason"]) == ("active", None)


def test_upstream_concurrency_is_set_at_add_and_changed_with_set(nxs: Nxs) -> None:
    nxs("upstream", "add", "main", "--concurrency", "4", stdin=FAL_KEY)
    [key] = listed(nxs, "upstream", "list")
    assert (key["weight"], key["concurrency"], key["last_error"]) == (1, 4, None)
    assert (key["outstanding"], key["cooldown_seconds"]) == (None, None)  # no shared state
    changed = nxs("upstream", "set", "main", "--concurrency", "10", "--weight", "3")
    assert changed.stdout == "Upstream key 'main': weight 3, concurrency 10.\n"
    [key] = listed(nxs, "upstream", "list")
    assert (key["weight"], key["concurrency"]) == (3, 10)


def test_bad_upstream_settings_fail_and_change_nothing(nxs: Nxs) -> None:
    nxs("upstream", "add", "main", stdin=FAL_KEY)
    assert_fails(nxs("upstream", "set", "main", "--concurrency", "0"), "Invalid concurrency 0")
    assert_fails(nxs("upstream", "set", "main"), "Nothing to change")
    assert_fails(nxs("upstream", "set", "nope", "--weight", "2"), "Upstream key 'nope' not found")
    [key] = listed(nxs, "upstream", "list")
    assert (key["weight"], key["concurrency"]) == (1, 2)


def test_removed_upstream_key_is_gone(nxs: Nxs) -> None:
    nxs("upstream", "add", "main", stdin=FAL_KEY)
    assert nxs("upstream", "remove", "main").returncode == 0
    assert listed(nxs, "upstream", "list") == []
    assert_fails(nxs("upstream", "remove", "main"), "Upstream key 'main' not found")


def test_unsupported_database_url_fails_with_one_line() -> None:
    env = {**os.environ, "NXS_DATABASE_URL": "mysql://nxs:pw@localhost/nxs"}
    result = subprocess.run(
        nxs_command("customers", "list"), capture_output=True, text=True, env=env, timeout=60
    )
    assert_fails(result, "Unsupported database URL 'mysql://nxs:***@localhost/nxs'")


def test_an_unreachable_postgresql_fails_with_one_line_without_its_password() -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://nxs:pw-secret@127.0.0.1:{port}/nxs"
    env = {**os.environ, "NXS_DATABASE_URL": url, "NXS_SECRET_KEY": "a-secret"}
    result = subprocess.run(
        nxs_command("customers", "list"), capture_output=True, text=True, env=env, timeout=60
    )
    assert_fails(result, f"Cannot connect to postgresql://nxs:***@127.0.0.1:{port}/nxs")
    assert "pw-secret" not in result.stderr
