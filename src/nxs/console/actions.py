"""What a console form does: each action calls the function the admin API calls for it
(`nxs.admin.api.*`), so the change, its checks and its audit entry are the same as over
`/admin/v1`; in the same transaction an `operator` entry records who in the console did it.

Actions take plain form values (strings) and raise `NxsError`s for bad input; pydantic's
checks of the API bodies are translated to `BadRequest` with the field named.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError

from nxs.admin import audit
from nxs.admin.api import accounts, customers, plans, upstream
from nxs.admin.api.billing_schemas import (
    CreditGrant,
    PlanCreate,
    PlanUpdate,
    PriceSet,
    SubscriptionSet,
)
from nxs.admin.api.schemas import CustomerCreate, UpstreamCreate, UpstreamSet
from nxs.billing.sync import SyncReport, sync_prices
from nxs.config import Settings
from nxs.console.operators import Operator
from nxs.errors import BadRequest, Forbidden
from nxs.portal import accounts as portal_accounts
from nxs.store.store import Store

T = TypeVar("T")
Form = Mapping[str, str]


class ViewerCannotChange(Forbidden):
    error_type = "viewer_read_only"
    detail = "Your role is viewer: it can look, not change anything"


@dataclass(frozen=True)
class Actor:
    """Who is acting in the console: an operator account, or the admin token."""

    name: str
    role: str

    @classmethod
    def of(cls, operator: Operator) -> Actor:
        return cls(operator.name, operator.role)

    def check_can_change(self) -> None:
        if self.role != "admin":
            raise ViewerCannotChange()


def invite_customer(store: Store, actor: Actor, form: Form) -> str:
    """Create a customer (active, on plan `default`); answers its name."""
    body = _body(lambda: CustomerCreate(name=form.get("name", "").strip()))
    if form.get("email", "").strip():
        portal_accounts.check_email(form["email"])  # refused before anything is written
    created = _run(
        store, actor, "customers.create", body.name, lambda: customers.create_customer(body, store)
    )
    return created.name


def invite_to_portal(store: Store, actor: Actor, name: str, email: str) -> portal_accounts.Invite:
    """A one-time portal sign-up link for the customer, as `/admin/v1/…/invites` makes it."""

    def invite() -> portal_accounts.Invite:
        made = portal_accounts.invite(store.database, name, email)
        audit.record(store.database, audit.API, "customers.invite", name, {"email": made.email})
        return made

    return _run(store, actor, "customers.invite", name, invite)


def create_key(store: Store, actor: Actor, name: str) -> str:
    """A new key for the customer; answers the plaintext, to be shown this once."""
    return _run(store, actor, "keys.create", name, lambda: customers.create_key(name, store)).key


def revoke_key(store: Store, actor: Actor, key_id: str) -> None:
    _run(store, actor, "keys.revoke", key_id, lambda: customers.revoke_key(key_id, store))


def suspend(store: Store, actor: Actor, name: str) -> None:
    _run(store, actor, "customers.suspend", name, lambda: customers.suspend_customer(name, store))


def resume(store: Store, actor: Actor, name: str) -> None:
    _run(store, actor, "customers.resume", name, lambda: customers.resume_customer(name, store))


def change_plan(store: Store, actor: Actor, name: str, form: Form) -> None:
    body = _body(
        lambda: SubscriptionSet(plan=form.get("plan", ""), until=form.get("until") or None)
    )
    _run(
        store,
        actor,
        "subscriptions.set",
        name,
        lambda: accounts.set_subscription(name, body, store),
    )


def grant_credit(store: Store, actor: Actor, name: str, form: Form) -> str:
    """Add credit; answers the new available balance."""
    body = _body(
        lambda: CreditGrant(amount=form.get("amount", "").strip(), note=form.get("note") or None)
    )
    return _run(
        store, actor, "credits.grant", name, lambda: accounts.grant_credit(name, body, store)
    ).available


def add_upstream(store: Store, actor: Actor, form: Form) -> str:
    """Add a fal key to the pool; answers its masked form (the secret is never shown)."""
    weight = _optional_int(form.get("weight"), "weight")
    concurrency = _optional_int(form.get("concurrency"), "concurrency")
    body = _body(
        lambda: UpstreamCreate(
            name=form.get("name", "").strip(),
            secret=form.get("secret", "").strip(),
            weight=1 if weight is None else weight,
            concurrency=2 if concurrency is None else concurrency,
        )
    )
    return _run(
        store, actor, "upstream.add", body.name, lambda: upstream.add_upstream(body, store)
    ).key


def set_upstream_limits(store: Store, actor: Actor, name: str, form: Form) -> tuple[int, int]:
    """A key's weight and concurrency; answers both as stored."""
    weight = _optional_int(form.get("weight"), "weight")
    concurrency = _optional_int(form.get("concurrency"), "concurrency")
    body = _body(lambda: UpstreamSet(weight=weight, concurrency=concurrency))
    key = _run(store, actor, "upstream.set", name, lambda: upstream.set_upstream(name, body, store))
    return key.weight, key.concurrency


def enable_upstream(store: Store, actor: Actor, name: str) -> None:
    _run(store, actor, "upstream.enable", name, lambda: upstream.enable_upstream(name, store))


def disable_upstream(store: Store, actor: Actor, name: str) -> None:
    """Take a key out of the pool until it is enabled again (state `invalid`, reason said)."""

    def disable() -> None:
        before = store.get_upstream(name)
        if before.state == "invalid":
            return
        store.set_upstream_state(before.id, "invalid", f"disabled by {actor.name} in the console")
        audit.record(
            store.database,
            audit.API,
            "upstream.disable",
            name,
            {"id": before.id, "was": before.state},
        )

    _run(store, actor, "upstream.disable", name, disable)


def save_plan(store: Store, actor: Actor, form: Form, *, replace: bool) -> str:
    name = form.get("name", "").strip()
    options: dict[str, Any] = {
        "prepaid": form.get("mode") == "prepaid",
        "monthly_credit": (form.get("monthly_credit") or None)
        if form.get("mode") == "monthly"
        else None,
        "rpm": _optional_int(form.get("rpm"), "rpm"),
        "max_in_flight": _optional_int(form.get("max_in_flight"), "max_in_flight"),
        "endpoints": form.get("endpoints") or None,
        "multiplier": form.get("multiplier") or "1",
    }
    if replace:
        update = _body(lambda: PlanUpdate(**options))
        return _run(
            store, actor, "plans.update", name, lambda: plans.replace_plan(name, update, store)
        ).name
    create = _body(lambda: PlanCreate(name=name, **options))
    return _run(store, actor, "plans.create", name, lambda: plans.create_plan(create, store)).name


def set_price(store: Store, actor: Actor, form: Form) -> str:
    body = _body(
        lambda: PriceSet(
            pattern=form.get("pattern", "").strip(),
            unit=form.get("unit", ""),
            unit_price=form.get("unit_price", "").strip(),
        )
    )
    return _run(
        store, actor, "pricing.set", body.pattern, lambda: plans.set_price(body, store)
    ).pattern


def sync_pricing(settings: Settings, store: Store, actor: Actor) -> SyncReport:
    """`nxs pricing sync` for the endpoints already known (blocking: run it off the loop)."""

    def sync() -> SyncReport:
        report = sync_prices(settings, store)
        audit.record(store.database, audit.API, "pricing.sync", None, {"imported": report.imported})
        return report

    return _run(store, actor, "pricing.sync", None, sync)


def _run(store: Store, actor: Actor, action: str, target: str | None, change: Callable[[], T]) -> T:
    """`change` and the operator's attribution entry, in one transaction."""
    actor.check_can_change()
    with store.database.transaction():
        result = change()
        audit.record(store.database, audit.CONSOLE, action, target, {"operator": actor.name})
    return result


def _body(build: Callable[[], T]) -> T:
    try:
        return build()
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "input"
        raise BadRequest(f"Invalid {field}: {first['msg']}") from None
    except ValueError as error:
        raise BadRequest(str(error)) from None


def _optional_int(value: str | None, field: str) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"Invalid {field}: a whole number") from None
