"""The console's pages (GETs): overview, customers, one customer, pool, plans and prices,
usage and margin, requests, webhooks, audit. Each reads its read model on a worker thread
and renders a template; filters live in the URL so a view can be linked and reloaded.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

from starlette.requests import Request
from starlette.responses import Response

from nxs.billing import catalog
from nxs.console import audit_view, customers, deliveries, pool, prices, requests, usage
from nxs.console.actions import Actor
from nxs.console.charts import daily_bars, dates_of
from nxs.errors import BadRequest
from nxs.gateway.pool import PoolKey
from nxs.web.charts import bar_chart
from nxs.web.sessions import Session

if TYPE_CHECKING:
    from nxs.console.app import Console

DAY: Final = 86400.0
WINDOWS: Final = (1, 7, 30, 90)
NAV: Final = (
    ("/console", "Overview"),
    ("/console/customers", "Customers"),
    ("/console/pool", "Pool"),
    ("/console/plans", "Plans & prices"),
    ("/console/usage", "Usage"),
    ("/console/requests", "Requests"),
    ("/console/webhooks", "Webhooks"),
    ("/console/audit", "Audit"),
)


def render(
    console: Console,
    request: Request,
    session: Session,
    actor: Actor,
    template: str,
    status: int = 200,
    **context: Any,
) -> Response:
    """A console page with the navigation and who is signed in."""
    return console.site.render(
        request, template, session, status=status, nav=NAV, actor=actor, **context
    )


def window_days(request: Request, default: int = 30) -> int:
    text = request.query_params.get("days", str(default))
    if not text.isdigit() or int(text) not in WINDOWS:
        raise BadRequest(f"Invalid days: use one of {', '.join(map(str, WINDOWS))}")
    return int(text)


async def overview(
    console: Console, request: Request, session: Session, actor: Actor, **extra: Any
) -> Response:
    db, now = console.store.database, time.time()
    seen = await console.site.call(usage.usage, db, since=now - 30 * DAY)
    failed = await console.site.call(requests.failed, db, since=now - DAY)
    keys = await console.site.call(console.store.list_upstream)
    lines = pool.pool_lines(keys, _live(console), db, since=now - 3600) if keys else []
    usable = sum(1 for line in lines if line.state == "active" and line.cooldown_seconds == 0)
    chart = bar_chart(
        daily_bars(seen.days, "charged", dates_of(now, 30)), "Charged per day, last 30 days (UTC)"
    )
    return render(
        console,
        request,
        session,
        actor,
        "overview.html",
        page_title="Overview",
        usage=seen,
        failed=failed[:10],
        pool_usable=usable,
        pool_total=len(lines),
        chart=chart,
        **extra,
    )


async def customer_list(
    console: Console, request: Request, session: Session, actor: Actor, **extra: Any
) -> Response:
    query = request.query_params.get("q", "")[:64]
    found = await console.site.call(
        customers.search, console.store.database, query, since=time.time() - 30 * DAY
    )
    return render(
        console,
        request,
        session,
        actor,
        "customers.html",
        page_title="Customers",
        query=query,
        customers=found,
        **extra,
    )


async def customer_page(
    console: Console, request: Request, session: Session, actor: Actor, **extra: Any
) -> Response:
    name = request.path_params["name"]
    context = await console.site.call(_customer_context, console, name)
    return render(
        console, request, session, actor, "customer.html", page_title=name, **context, **extra
    )


def _customer_context(console: Console, name: str) -> dict[str, Any]:
    store, db = console.store, console.store.database
    customer = store.get_customer(name)
    since = time.time() - 30 * DAY
    return {
        "customer": customer,
        "line": next(c for c in customers.search(db, name, since=since) if c.name == name),
        "subscription": catalog.get_subscription(db, customer.id),
        "balance": catalog.get_balance(db, customer.id),
        "keys": store.list_keys(name),
        "plans": catalog.list_plans(db),
        "usage": usage.usage(db, since=since, customer=name),
    }


async def pool_page(
    console: Console, request: Request, session: Session, actor: Actor, **extra: Any
) -> Response:
    keys = await console.site.call(console.store.list_upstream)
    lines = await console.site.call(
        pool.pool_lines, keys, _live(console), console.store.database, since=time.time() - 3600
    )
    return render(
        console,
        request,
        session,
        actor,
        "pool.html",
        page_title="Upstream pool",
        lines=lines,
        **extra,
    )


async def plans_page(
    console: Console, request: Request, session: Session, actor: Actor, **extra: Any
) -> Response:
    found = await console.site.call(
        prices.catalogue, console.store.database, since=time.time() - 30 * DAY
    )
    edit = request.query_params.get("edit")
    editing = next((plan for plan in found.plans if plan.name == edit), None)
    return render(
        console,
        request,
        session,
        actor,
        "plans.html",
        page_title="Plans & prices",
        catalogue=found,
        editing=editing,
        **extra,
    )


async def usage_page(
    console: Console, request: Request, session: Session, actor: Actor, **extra: Any
) -> Response:
    days = window_days(request)
    customer = request.query_params.get("customer", "")[:64] or None
    seen = await console.site.call(
        usage.usage, console.store.database, since=time.time() - days * DAY, customer=customer
    )
    dates = dates_of(time.time(), days)
    return render(
        console,
        request,
        session,
        actor,
        "usage.html",
        page_title="Usage & margin",
        usage=seen,
        days=days,
        windows=WINDOWS,
        customer=customer or "",
        spend_chart=bar_chart(
            daily_bars(seen.days, "charged", dates),
            f"Charged vs fal cost per day, last {days} days (UTC)",
        ),
        requests_chart=bar_chart(
            daily_bars(seen.days, "requests", dates),
            f"Requests per day, last {days} days (UTC)",
            unit="",
        ),
        **extra,
    )


async def requests_page(
    console: Console, request: Request, session: Session, actor: Actor, **extra: Any
) -> Response:
    db, since = console.store.database, time.time() - window_days(request, 7) * DAY
    wanted = request.query_params.get("id", "")[:200].strip()
    found = await console.site.call(requests.find, db, wanted) if wanted else None
    return render(
        console,
        request,
        session,
        actor,
        "requests.html",
        page_title="Requests",
        wanted=wanted,
        found=found,
        days=window_days(request, 7),
        windows=WINDOWS,
        failed=await console.site.call(requests.failed, db, since=since),
        slow=await console.site.call(requests.slow, db, since=since),
        slow_ms=requests.SLOW_MS,
        **extra,
    )


async def webhooks_page(
    console: Console, request: Request, session: Session, actor: Actor, **extra: Any
) -> Response:
    state = request.query_params.get("state") or None
    if state not in (None, "pending", "delivered", "failed"):
        raise BadRequest("Invalid state: use pending, delivered or failed")
    found = await console.site.call(deliveries.recent, console.store.database, state=state)
    return render(
        console,
        request,
        session,
        actor,
        "webhooks.html",
        page_title="Webhook deliveries",
        deliveries=found,
        state=state or "",
        **extra,
    )


async def audit_page(
    console: Console, request: Request, session: Session, actor: Actor, **extra: Any
) -> Response:
    action = request.query_params.get("action") or None
    found = await console.site.call(
        audit_view.entries, console.store.database, limit=200, action=action
    )
    return render(
        console,
        request,
        session,
        actor,
        "audit.html",
        page_title="Audit log",
        entries=found,
        action=action or "",
        **extra,
    )


def _live(console: Console) -> list[PoolKey]:
    return console.pool.entries() if console.pool is not None else []


PAGES: Final = {
    "/customers": customer_list,
    "/customers/{name}": customer_page,
    "/pool": pool_page,
    "/plans": plans_page,
    "/usage": usage_page,
    "/requests": requests_page,
    "/webhooks": webhooks_page,
    "/audit": audit_page,
}
