"""Settings from the environment: numbers that make no sense are refused by name; a
relative path is the working directory's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nxs.config import Settings
from nxs.store.store import Store


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("NXS_RESERVATION_TTL_SECONDS", "0"),  # would release every live hold
        ("NXS_RESERVATION_TTL_SECONDS", "-5"),
        ("NXS_REFRESH_SECONDS", "soon"),
        ("NXS_RECONCILE_MAX_CHECKS", "nan"),
        ("NXS_REALTIME_IDLE_SECONDS", "inf"),
    ],
)
def test_a_nonsense_number_is_refused_naming_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: raw})


def test_sensible_numbers_are_read_and_zero_means_now_where_it_can() -> None:
    settings = Settings.from_env(
        {"NXS_RESERVATION_TTL_SECONDS": "90", "NXS_RECONCILE_AFTER_SECONDS": "0"}
    )
    assert (settings.reservation_ttl_seconds, settings.reconcile_after_seconds) == (90.0, 0.0)


def test_serve_refuses_to_start_with_a_bad_setting() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nxs", "serve", "--port", "1"],
        env={"NXS_RESERVATION_TTL_SECONDS": "0", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "NXS_RESERVATION_TTL_SECONDS must be a number above 0" in done.stderr
    assert "Traceback" not in done.stderr


def open_store_in(folder: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Open (and close) the store `env` names, from `folder` as the working directory."""
    monkeypatch.chdir(folder)
    with Store.open(Settings.from_env(env)):
        pass


def test_a_relative_key_file_lands_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "state").mkdir()
    env = {"NXS_DATABASE_URL": "sqlite:///state/nxs.db", "NXS_SECRET_KEY_FILE": "state/key"}
    open_store_in(tmp_path, monkeypatch, env)
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["key", "nxs.db"]


def test_a_relative_database_lands_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store_in(tmp_path, monkeypatch, {"NXS_DATABASE_URL": "sqlite:///here.db"})
    assert (tmp_path / "here.db").is_file()


def test_with_no_key_file_set_the_key_sits_next_to_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "state").mkdir()
    open_store_in(tmp_path, monkeypatch, {"NXS_DATABASE_URL": "sqlite:///state/nxs.db"})
    assert (tmp_path / "state" / "nxs.secret").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "nxs.secret").exists()


def test_a_key_file_read_from_the_environment_is_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({"NXS_SECRET_KEY_FILE": "keys/nxs.secret"})
    assert settings.secret_key_file == tmp_path / "keys" / "nxs.secret"


def test_the_upstream_timeout_is_a_setting() -> None:
    assert Settings.from_env({"NXS_UPSTREAM_TIMEOUT_SECONDS": "45"}).upstream_timeout_seconds == 45
    with pytest.raises(ValueError, match="NXS_UPSTREAM_TIMEOUT_SECONDS"):
        Settings.from_env({"NXS_UPSTREAM_TIMEOUT_SECONDS": "0"})


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("NXS_BILLING", "banana", "NXS_BILLING must be true or false"),
        ("NXS_ACCESS_LOG", "sometimes", "NXS_ACCESS_LOG must be true or false"),
        ("NXS_WEBHOOK_RETRY_DELAYS", "10,-5", "NXS_WEBHOOK_RETRY_DELAYS must be a comma list"),
        ("NXS_MAX_BODY_BYTES", "0", "NXS_MAX_BODY_BYTES must be a number above 0"),
        ("NXS_LIMITS_WHEN_REDIS_DOWN", "maybe", "NXS_LIMITS_WHEN_REDIS_DOWN must be one of"),
        ("NXS_METRICS_PORT", "http", "NXS_METRICS_PORT must be a whole number"),
    ],
)
def test_every_refusal_names_its_variable(name: str, raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env({name: raw})


@pytest.mark.parametrize("word", ["true", "on", "yes", "1", "TRUE"])
def test_booleans_read_the_same_words_everywhere(word: str) -> None:
    names = ("NXS_ACCESS_LOG", "NXS_BILLING", "NXS_WEBHOOK_ALLOW_PRIVATE")
    settings = Settings.from_env(dict.fromkeys(names, word))
    assert (settings.access_log, settings.billing, settings.webhook_allow_private) == (
        True,
        True,
        True,
    )


def test_the_body_limit_is_a_setting() -> None:
    assert Settings.from_env({"NXS_MAX_BODY_BYTES": "1048576"}).max_body_bytes == 1048576


def test_nxs_config_prints_effective_settings_with_secrets_masked() -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "NXS_ADMIN_TOKEN": "admin-secret-123",
        "NXS_DATABASE_URL": "postgresql://nxs:db-password@db:5432/nxs",
        "NXS_REFRESH_SECONDS": "2.5",
        "NXS_TRUSTED_PROXIES": "10.0.0.0/8",
    }
    done = subprocess.run(
        [sys.executable, "-m", "nxs", "config", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    shown = json.loads(done.stdout)
    assert shown["NXS_ADMIN_TOKEN"] == "********"
    assert shown["NXS_DATABASE_URL"] == "postgresql://nxs:***@db:5432/nxs"
    assert (shown["NXS_REFRESH_SECONDS"], shown["NXS_TRUSTED_PROXIES"]) == (2.5, ["10.0.0.0/8"])
    assert shown["NXS_SECRET_KEY"] is None and shown["NXS_BILLING"] is True
    assert "admin-secret-123" not in done.stdout and "db-password" not in done.stdout


def test_nxs_config_refuses_a_bad_setting_in_one_line() -> None:
    env = {"PATH": "/usr/bin:/bin", "NXS_LOG_LEVEL": "loud"}
    done = subprocess.run(
        [sys.executable, "-m", "nxs", "config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().startswith("nxs config: NXS_LOG_LEVEL must be one of")
