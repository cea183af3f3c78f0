"""Plans (credit mode, limits, allowed endpoints, price multiplier) and subscriptions.

Pure checks only: the gateway asks `check_access` before pricing and reserving, and the
admin API builds plans through `plan_from_options` so bad operator input is a 422.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from fnmatch import fnmatchcase

from nxs.billing.errors import (
    EndpointNotAllowed,
    InsufficientCredit,
    InvalidBillingInput,
    SubscriptionInactive,
)
from nxs.billing.limits import Limit
from nxs.billing.money import Money, parse_multiplier
from nxs.billing.pricing import parse_endpoint_pattern

DEFAULT_PLAN_NAME = "default"
_PLAN_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MAX_COUNT = 1_000_000_000  # the largest rpm / in-flight limit (beyond it: no limit at all)


class CreditMode(StrEnum):
    METERED = "metered"  # no credit needed: usage recorded, billed elsewhere
    MONTHLY = "monthly"  # an allowance each calendar month (UTC) plus grants
    PREPAID = "prepaid"  # only what was granted


@dataclass(frozen=True)
class Plan:
    name: str
    mode: CreditMode = CreditMode.METERED
    monthly_credit: Money = field(default_factory=Money.zero)
    rpm: int | None = None
    max_in_flight: int | None = None
    endpoints: tuple[str, ...] = ()  # globs; empty allows every endpoint
    multiplier: Decimal = Decimal(1)
    priority: int = 1  # weight of its customers' turns while runs wait for an upstream slot

    @property
    def requires_credit(self) -> bool:
        return self.mode is not CreditMode.METERED

    def endpoint_allowed(self, endpoint: str) -> bool:
        return not self.endpoints or any(fnmatchcase(endpoint, g) for g in self.endpoints)

    def admits(self, balance: Money, cost: Money) -> bool:
        """Whether a reservation of `cost` fits; the store's conditional UPDATE mirrors this."""
        return not self.requires_credit or balance >= cost

    def check_credit(self, balance: Money, cost: Money) -> None:
        if not self.admits(balance, cost):
            raise InsufficientCredit()

    def limits(self, customer_id: str, key_id: str) -> tuple[Limit, Limit]:
        """The plan's rpm / in-flight caps, applied to the customer and to each of its keys."""
        return (
            Limit(f"customer:{customer_id}", self.rpm, self.max_in_flight),
            Limit(f"key:{key_id}", self.rpm, self.max_in_flight),
        )


DEFAULT_PLAN = Plan(DEFAULT_PLAN_NAME)


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"


@dataclass(frozen=True)
class Subscription:
    customer_id: str
    plan: str = DEFAULT_PLAN_NAME
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE
    until: datetime | None = None  # exclusive end; None = open-ended

    def subscription_active(self, now: datetime) -> bool:
        if self.status is not SubscriptionStatus.ACTIVE:
            return False
        return self.until is None or now < self.until


def check_access(plan: Plan, subscription: Subscription, endpoint: str, now: datetime) -> None:
    """402 when the subscription is not active, 403 when the plan excludes `endpoint`."""
    if not subscription.subscription_active(now):
        raise SubscriptionInactive()
    if not plan.endpoint_allowed(endpoint):
        raise EndpointNotAllowed()


def month_start(now: datetime) -> datetime:
    """Start (UTC) of the month a monthly allowance covers."""
    moment = now.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def parse_until(text: object, name: str = "until") -> datetime:
    """`2026-12-31` → active through that day (ends next midnight UTC); full ISO times as is."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidBillingInput(name, f"{name} must be a date like 2026-12-31")
    value = text.strip()
    try:
        if is_date(value):  # any date form (2026-12-31, 20261231) means the whole day
            day = date.fromisoformat(value)
            return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError) as error:  # 2026-02-30; 9999-12-31 has no next day
        raise InvalidBillingInput(name, f"{name} is not a valid date: {value[:40]!r}") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_date(text: str) -> bool:
    """Whether `text` is a date without a time of day (then it means that whole UTC day)."""
    try:
        date.fromisoformat(text.strip())
    except ValueError:
        return False
    return True


def plan_from_options(
    name: str,
    *,
    prepaid: bool = False,
    monthly_credit: object = None,
    rpm: object = None,
    max_in_flight: object = None,
    endpoints: str | Sequence[str] | None = None,
    multiplier: object = "1",
    priority: object = 1,
) -> Plan:
    """A plan from `nxs plans create` / admin API options, validated field by field."""
    if not isinstance(name, str) or not _PLAN_NAME.match(name):
        raise InvalidBillingInput("name", "plan name must be 1-64 of a-z, 0-9, '_', '-', '.'")
    if prepaid and monthly_credit is not None:
        raise InvalidBillingInput("monthly_credit", "a plan is either prepaid or monthly")
    mode = CreditMode.PREPAID if prepaid else CreditMode.METERED
    credit = Money.zero()
    if monthly_credit is not None:
        mode, credit = CreditMode.MONTHLY, Money.parse(monthly_credit, "monthly_credit")
        if credit.micros == 0:
            message = "monthly_credit must be greater than 0 (a plan on grants only is prepaid)"
            raise InvalidBillingInput("monthly_credit", message)
    return Plan(
        name=name,
        mode=mode,
        monthly_credit=credit,
        rpm=_positive_count(rpm, "rpm"),
        max_in_flight=_positive_count(max_in_flight, "max_in_flight"),
        endpoints=_globs(endpoints),
        multiplier=parse_multiplier(multiplier),
        priority=_positive_count(priority, "priority") or 1,
    )


def _positive_count(value: object, name: str) -> int | None:
    if value is None:
        return None
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value.strip())
    if number is None or not 1 <= number <= MAX_COUNT:
        raise InvalidBillingInput(name, f"{name} must be a whole number from 1 to {MAX_COUNT}")
    return number


def _globs(endpoints: str | Sequence[str] | None) -> tuple[str, ...]:
    if endpoints is None:
        return ()
    items = endpoints.split(",") if isinstance(endpoints, str) else list(endpoints)
    named = [item for item in items if not isinstance(item, str) or item.strip()]
    if items and not named:  # "" or [""]: a typo must not open every endpoint
        message = "endpoints must name at least one endpoint glob (omit it to allow all)"
        raise InvalidBillingInput("endpoints", message)
    return tuple(parse_endpoint_pattern(item, "endpoints") for item in named)
