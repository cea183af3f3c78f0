"""The billing commands as real `nxs` subprocesses on a SQLite file: plans, subscriptions,
credit, prices and usage, and clear errors (exit 2, nothing written) for bad input.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support.servers import ROOT, RunningServer, nxs_command

Nxs = Callable[..., subprocess.CompletedProcess[str]]


def environment(folder: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "NXS_DATABASE_URL": f"sqlite:///{folder / 'nxs.db'}",
        "NXS_SECRET_KEY_FILE": str(folder / "nxs.secret"),
        **extra,
    }


def runner(env: dict[str, str]) -> Nxs:
    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            nxs_command(*args),
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=60,
        )

    return run


@pytest.fixture
def nxs(tmp_path: Path) -> Nxs:
    return runner(environment(tmp_path))


@pytest.fixture
def audit_log(tmp_path: Path) -> Callable[[], list[str]]:
    """The audit log's actions, read from the database file the commands write."""

    def actions() -> list[str]:
        with sqlite3.connect(tmp_path / "nxs.db") as db:
            return [row[0] for row in db.execute("SELECT action FROM audit_log ORDER BY id")]

    return actions


def ok(nxs: Nxs, *args: str) -> str:
    result = nxs(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def fails(nxs: Nxs, *args: str) -> str:
    result = nxs(*args)
    assert result.returncode == 2, result.stdout
    assert result.stderr.startswith("nxs: ") and "Traceback" not in result.stderr
    return result.stderr


def listed(nxs: Nxs, *args: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(ok(nxs, *args, "--json"))
    return records


def test_plans_create_and_list_with_the_builtin_default(nxs: Nxs) -> None:
    ok(
        nxs,
        "plans",
        "create",
        "pro",
        "--monthly-credit",
        "25",
        "--rpm",
        "60",
        "--multiplier",
        "1.2",
        "--priority",
        "4",
    )
    ok(nxs, "plans", "create", "payg", "--prepaid", "--endpoints", "fal-ai/flux/*,fal-ai/fast-*")
    plans = {plan["name"]: plan for plan in listed(nxs, "plans", "list")}
    assert plans["default"]["mode"] == "metered"
    assert plans["pro"] == {
        "name": "pro",
        "mode": "monthly",
        "monthly_credit": "25.00",
        "rpm": 60,
        "max_in_flight": None,
        "endpoints": "*",
        "multiplier": "1.2",
        "priority": 4,
    }
    assert plans["payg"]["endpoints"] == "fal-ai/flux/*,fal-ai/fast-*"


def test_grant_credit_and_show_the_balance(nxs: Nxs) -> None:
    ok(nxs, "customers", "create", "acme")
    ok(nxs, "credits", "grant", "acme", "12.50")
    ok(nxs, "credits", "grant", "acme", "0.25")
    (balance,) = listed(nxs, "credits", "show", "acme")
    assert balance["available"] == "12.75"


def test_subscription_on_an_unknown_plan_or_customer_is_refused(nxs: Nxs) -> None:
    ok(nxs, "customers", "create", "acme")
    assert "Plan 'gold' not found" in fails(nxs, "subscriptions", "set", "acme", "gold")
    assert "Customer 'nobody' not found" in fails(nxs, "subscriptions", "set", "nobody", "default")
    assert "not a valid date" in fails(
        nxs, "subscriptions", "set", "acme", "default", "--until", "31/12/2026"
    )


@pytest.mark.parametrize(
    "amount", ["-5", "abc", "1e3", "0", "1.1234567", "NaN", "", "99999999999", "١٢"]
)
def test_bad_amounts_are_refused_and_nothing_is_granted(nxs: Nxs, amount: str) -> None:
    ok(nxs, "customers", "create", "acme")
    fails(nxs, "credits", "grant", "acme", amount)
    (balance,) = listed(nxs, "credits", "show", "acme")
    assert balance["available"] == "0.00"


def test_bad_plan_options_are_refused_and_no_plan_is_created(nxs: Nxs) -> None:
    assert "rpm" in fails(nxs, "plans", "create", "x", "--rpm", "-3")
    assert "multiplier" in fails(nxs, "plans", "create", "x", "--multiplier", "cheap")
    assert "monthly_credit" in fails(nxs, "plans", "create", "x", "--monthly-credit", "-1")
    assert "already exists" in fails(nxs, "plans", "create", "default")
    assert [plan["name"] for plan in listed(nxs, "plans", "list")] == ["default"]


def test_pricing_set_and_list(nxs: Nxs) -> None:
    ok(nxs, "pricing", "set", "fal-ai/flux/dev", "megapixel", "0.025")
    refused = nxs("pricing", "set", "fal-ai/x", "parsec", "1")
    assert refused.returncode == 2
    assert refused.stderr.splitlines()[-1] == (
        "nxs pricing set: error: argument UNIT: invalid choice: 'parsec' (choose from"
        " 'image', 'megapixel', 'video_second', 'request', 'gpu_second')"
    )
    assert "price" in fails(nxs, "pricing", "set", "fal-ai/x", "image", "-1")
    ok(nxs, "pricing", "set", "fal-ai/y", "megapixels", "0.01")  # fal's own spelling
    rules = listed(nxs, "pricing", "list")
    assert rules == [
        {
            "endpoint": "fal-ai/flux/dev",
            "unit": "megapixel",
            "unit_price": "0.025",
            "source": "operator",
        },
        {"endpoint": "fal-ai/y", "unit": "megapixel", "unit_price": "0.01", "source": "operator"},
    ]


def test_usage_of_an_empty_ledger_and_bad_filters(nxs: Nxs) -> None:
    assert listed(nxs, "usage") == []
    assert ok(nxs, "usage", "--csv") == ""
    assert "not a valid date" in fails(nxs, "usage", "--since", "yesterday")
    assert "not found" in fails(nxs, "usage", "--customer", "ghost")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (("--rpm", "99999999999999999999999"), "rpm"),  # was a traceback (SQLite overflow)
        (("--max-in-flight", "²"), "max_in_flight"),  # was a traceback (int("²"))
        (("--multiplier", "0"), "multiplier"),  # would record every request at $0
        (("--monthly-credit", "0"), "monthly_credit"),
        (("--endpoints", ""), "endpoints"),  # was a plan allowing every endpoint
        (("--endpoints", ","), "endpoints"),
        (("--endpoints", "fal-ai/flux/[dev"), "endpoints"),  # a glob that can never match
        (("--endpoints", "/fal-ai/flux/*"), "endpoints"),
        (("--endpoints", "https://fal.run/fal-ai/flux/dev"), "endpoints"),
    ],
)
def test_impossible_plans_are_refused_without_a_trace(
    nxs: Nxs, audit_log: Callable[[], list[str]], options: tuple[str, ...], field: str
) -> None:
    assert field in fails(nxs, "plans", "create", "x", *options)
    assert [plan["name"] for plan in listed(nxs, "plans", "list")] == ["default"]
    assert audit_log() == []


def test_the_default_plan_is_changed_keeping_what_is_not_named(
    nxs: Nxs, audit_log: Callable[[], list[str]]
) -> None:
    ok(nxs, "plans", "update", "default", "--rpm", "60", "--endpoints", "fal-ai/flux/*")
    ok(nxs, "plans", "update", "default", "--multiplier", "1.5")
    (default,) = listed(nxs, "plans", "list")
    assert (default["rpm"], default["endpoints"], default["multiplier"]) == (
        60,
        "fal-ai/flux/*",
        "1.5",
    )
    ok(nxs, "plans", "update", "default", "--prepaid", "--rpm", "none", "--endpoints", "*")
    (default,) = listed(nxs, "plans", "list")
    assert (default["mode"], default["rpm"], default["endpoints"]) == ("prepaid", None, "*")
    assert "rpm" in fails(nxs, "plans", "update", "default", "--rpm", "0")
    assert "Plan 'gold' not found" in fails(nxs, "plans", "update", "gold", "--rpm", "5")
    assert audit_log() == ["plans.update"] * 3


@pytest.mark.parametrize("until", ["2026-02-30", "9999-12-31", "2026-13-01", "soon"])
def test_impossible_end_dates_are_refused(
    nxs: Nxs, audit_log: Callable[[], list[str]], until: str
) -> None:
    ok(nxs, "customers", "create", "acme")
    assert "until is not a valid date" in fails(
        nxs, "subscriptions", "set", "acme", "default", "--until", until
    )
    (subscription,) = listed(nxs, "subscriptions", "show", "acme")
    assert (subscription["until"], subscription["active"]) == (None, True)
    assert audit_log() == ["customers.create"]


def test_a_subscription_is_shown_and_any_date_form_means_the_whole_day(nxs: Nxs) -> None:
    ok(nxs, "customers", "create", "acme")
    assert "through 2099-12-31" in ok(
        nxs, "subscriptions", "set", "acme", "default", "--until", "20991231"
    )
    (subscription,) = listed(nxs, "subscriptions", "show", "acme")
    assert subscription == {
        "customer": "acme",
        "plan": "default",
        "status": "active",
        "until": "2100-01-01T00:00:00Z",
        "active": True,
    }
    ended = ok(nxs, "subscriptions", "set", "acme", "default", "--until", "2020-01-01")
    assert "already past" in ended
    assert listed(nxs, "subscriptions", "show", "acme")[0]["active"] is False


@pytest.mark.parametrize("pattern", ["", " ", "fal ai/x", "/fal-ai/x", "fal-ai/[x"])
def test_prices_for_impossible_endpoints_are_refused(
    nxs: Nxs, audit_log: Callable[[], list[str]], pattern: str
) -> None:
    assert "not an endpoint id or glob" in fails(nxs, "pricing", "set", pattern, "image", "1")
    assert listed(nxs, "pricing", "list") == []
    assert audit_log() == []


def test_a_bad_unknown_endpoint_policy_says_what_is_expected(nxs: Nxs) -> None:
    for policy in ("maybe", "-1", "NaN"):
        assert "'refuse' or a USD price per request" in fails(nxs, "pricing", "unknown", policy)
    assert "0.01 USD per request" in ok(nxs, "pricing", "unknown", "0.01")


def test_usage_refuses_empty_and_impossible_filters(nxs: Nxs) -> None:
    assert "since must be a date" in fails(nxs, "usage", "--since", "")
    assert "not a valid date" in fails(nxs, "usage", "--since", "9999-12-31")
    assert "Customer '' not found" in fails(nxs, "usage", "--customer", "")


def test_pricing_sync_names_the_endpoints_fal_has_no_price_for(
    tmp_path: Path, emulator: RunningServer
) -> None:
    nxs = runner(environment(tmp_path, NXS_UPSTREAM_URL=emulator.url))
    added = nxs("upstream", "add", "main", stdin="acct-sync:secret-sync-0001\n")
    assert added.returncode == 0, added.stderr
    synced = ok(nxs, "pricing", "sync", "fal-ai/flux/dev", "fal-ai/no-such-model")
    assert "Imported 1 prices" in synced
    assert "Skipped fal-ai/no-such-model: no price from fal" in synced
    assert [rule["endpoint"] for rule in listed(nxs, "pricing", "list")] == ["fal-ai/flux/dev"]
