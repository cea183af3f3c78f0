"""Plans and subscriptions: who may call what, and whether their credit covers it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from nxs.billing.errors import (
    EndpointNotAllowed,
    InsufficientCredit,
    InvalidBillingInput,
    SubscriptionInactive,
)
from nxs.billing.estimate import defaults_for, reservation
from nxs.billing.money import Money
from nxs.billing.plans import (
    DEFAULT_PLAN,
    CreditMode,
    Subscription,
    SubscriptionStatus,
    check_access,
    month_start,
    parse_until,
    plan_from_options,
)
from nxs.billing.pricing import PriceRule, Unit
from nxs.errors import render

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FLUX = PriceRule("fal-ai/flux/dev", Unit.IMAGE, Decimal("0.025"))


def test_credit_for_exactly_10_images_admits_exactly_10_reservations() -> None:
    plan = plan_from_options("starter", prepaid=True)
    balance = Money.parse("0.25")
    admitted = 0
    for _ in range(100):
        cost = reservation(FLUX, {"prompt": "cat"}, defaults_for(FLUX.pattern), plan.multiplier)
        if plan.admits(balance, cost):
            balance -= cost
            admitted += 1
    assert (admitted, balance) == (10, Money.zero())


def test_insufficient_credit_is_a_402_with_fals_shape() -> None:
    plan = plan_from_options("starter", prepaid=True)
    with pytest.raises(InsufficientCredit) as caught:
        plan.check_credit(Money.parse("0.02"), Money.parse("0.025"))
    assert caught.value.status == 402
    assert (
        render(caught.value)
        == b'{"detail":"Insufficient credit","error_type":"insufficient_credit"}'
    )


def test_default_plan_needs_no_credit_and_has_no_limits() -> None:
    assert DEFAULT_PLAN.mode is CreditMode.METERED
    assert DEFAULT_PLAN.admits(Money.zero(), Money.parse("100"))
    assert all(limit.unlimited for limit in DEFAULT_PLAN.limits("cus_1", "key_1"))
    assert DEFAULT_PLAN.endpoint_allowed("anything/at/all")


def test_plan_options_from_the_cli() -> None:
    plan = plan_from_options(
        "pro",
        monthly_credit="50",
        rpm="60",
        max_in_flight=4,
        endpoints="fal-ai/flux/*, fal-ai/fast-sdxl",
        multiplier="1.25",
    )
    assert (plan.mode, plan.monthly_credit) == (CreditMode.MONTHLY, Money.parse("50"))
    assert (plan.rpm, plan.max_in_flight, plan.multiplier) == (60, 4, Decimal("1.25"))
    assert plan.endpoints == ("fal-ai/flux/*", "fal-ai/fast-sdxl")
    customer_limit, key_limit = plan.limits("cus_1", "key_1")
    assert (customer_limit.scope, key_limit.scope) == ("customer:cus_1", "key:key_1")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"monthly_credit": "-5"}, "monthly_credit"),
        ({"monthly_credit": "ten"}, "monthly_credit"),
        ({"prepaid": True, "monthly_credit": "5"}, "monthly_credit"),
        ({"rpm": "0"}, "rpm"),
        ({"rpm": "fast"}, "rpm"),
        ({"max_in_flight": -1}, "max_in_flight"),
        ({"multiplier": "abc"}, "multiplier"),
        ({"endpoints": "fal-ai/flux dev"}, "endpoints"),
    ],
)
def test_bad_plan_options_name_the_field(options: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidBillingInput) as caught:
        plan_from_options("pro", **options)
    assert caught.value.detail[0]["loc"] == ["body", field]


@pytest.mark.parametrize("name", ["", "Pro Plan", "a" * 65, "-x"])
def test_bad_plan_names_are_rejected(name: str) -> None:
    with pytest.raises(InvalidBillingInput, match="plan name"):
        plan_from_options(name)


def test_disallowed_endpoint_is_a_403() -> None:
    plan = plan_from_options("flux-only", endpoints="fal-ai/flux/*")
    check_access(plan, Subscription("cus_1", "flux-only"), "fal-ai/flux/dev", NOW)
    with pytest.raises(EndpointNotAllowed) as caught:
        check_access(plan, Subscription("cus_1", "flux-only"), "fal-ai/fast-sdxl", NOW)
    assert caught.value.status == 403


@pytest.mark.parametrize(
    "subscription",
    [
        Subscription("cus_1", status=SubscriptionStatus.PAST_DUE),
        Subscription("cus_1", status=SubscriptionStatus.CANCELED),
        Subscription("cus_1", until=parse_until("2026-11-22")),
    ],
)
def test_inactive_subscription_is_a_402(subscription: Subscription) -> None:
    with pytest.raises(SubscriptionInactive) as caught:
        check_access(DEFAULT_PLAN, subscription, "fal-ai/flux/dev", NOW)
    assert caught.value.body() == {
        "detail": "Subscription not active",
        "error_type": "subscription_inactive",
    }


def test_subscription_is_active_through_its_last_day() -> None:
    subscription = Subscription("cus_1", until=parse_until("2026-11-23"))
    assert subscription.subscription_active(NOW)
    assert not subscription.subscription_active(datetime(2026, 11, 24, tzinfo=UTC))


@pytest.mark.parametrize("text", ["tomorrow", "2026-13-01", "", "2026-02-30", None])
def test_malformed_dates_are_rejected(text: object) -> None:
    with pytest.raises(InvalidBillingInput, match="until"):
        parse_until(text)


def test_full_timestamps_are_taken_as_given_in_utc() -> None:
    assert parse_until("2026-12-01T08:30:00Z") == datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    assert parse_until("2026-12-01T08:30:00") == datetime(2026, 12, 1, 8, 30, tzinfo=UTC)


def test_monthly_allowance_window_starts_on_the_first_utc() -> None:
    assert month_start(NOW) == datetime(2026, 11, 1, tzinfo=UTC)
