"""The billing commands as real `nxs` subprocesses on a SQLite file: plans, subscriptions,
credit, prices and usage, and clear errors (exit 2, nothing written) for bad input.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support.servers import ROOT, nxs_command

Nxs = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def nxs(tmp_path: Path) -> Nxs:
    env = {
        **os.environ,
        "NXS_DATABASE_URL": f"sqlite:///{tmp_path / 'nxs.db'}",
        "NXS_SECRET_KEY_FILE": str(tmp_path / "nxs.secret"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            nxs_command(*args), capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
        )

    return run


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


@pytest.mark.parametrize("amount", ["-5", "abc", "1e3", "0", "1.1234567"])
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
    assert "unknown pricing unit" in fails(nxs, "pricing", "set", "fal-ai/x", "parsec", "1")
    assert "price" in fails(nxs, "pricing", "set", "fal-ai/x", "image", "-1")
    rules = listed(nxs, "pricing", "list")
    assert rules == [
        {
            "endpoint": "fal-ai/flux/dev",
            "unit": "megapixel",
            "unit_price": "0.025",
            "source": "operator",
        }
    ]


def test_usage_of_an_empty_ledger_and_bad_filters(nxs: Nxs) -> None:
    assert listed(nxs, "usage") == []
    assert ok(nxs, "usage", "--csv") == ""
    assert "not a valid date" in fails(nxs, "usage", "--since", "yesterday")
    assert "not found" in fails(nxs, "usage", "--customer", "ghost")
