"""`/admin/v1/usage` (JSON) and `/admin/v1/usage.csv`: what customers used and were charged.

Grouped by any of customer, key, endpoint and day (UTC), filtered by customer, key,
endpoint and a time window (`since` inclusive, `until` exclusive; dates mean midnight UTC).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from nxs.admin.api.billing_schemas import UsageRow
from nxs.admin.api.context import StoreDep
from nxs.admin.api.timeparse import parse_instant
from nxs.admin.api.usage_report import DIMENSIONS, Filters, UsageLine, report, to_csv
from nxs.errors import ValidationFailed
from nxs.store.store import Store

GROUP_HELP = "comma-separated dimensions among customer, key, endpoint, day ('' = one total)"
DATE_HELP = "ISO date or date-time, UTC"

GroupBy = Annotated[str, Query(description=GROUP_HELP)]
Customer = Annotated[str | None, Query(description="a customer name")]
Key = Annotated[str | None, Query(description="a key id (key_…)")]
Endpoint = Annotated[str | None, Query(description="an endpoint id, e.g. fal-ai/flux/dev")]
Since = Annotated[str | None, Query(description=f"from this time on ({DATE_HELP})")]
Until = Annotated[str | None, Query(description=f"before this time ({DATE_HELP})")]


def usage(
    store: StoreDep,
    group_by: GroupBy = "customer",
    customer: Customer = None,
    key: Key = None,
    endpoint: Endpoint = None,
    since: Since = None,
    until: Until = None,
) -> list[UsageRow]:
    """Requests, charges and holds per group."""
    lines = _report(store, group_by, customer, key, endpoint, since, until)
    return [UsageRow(**asdict(line)) for line in lines]


def usage_csv(
    store: StoreDep,
    group_by: GroupBy = "customer",
    customer: Customer = None,
    key: Key = None,
    endpoint: Endpoint = None,
    since: Since = None,
    until: Until = None,
) -> Response:
    """The same report as a CSV download (amounts in USD)."""
    lines = _report(store, group_by, customer, key, endpoint, since, until)
    return Response(
        to_csv(lines),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="nxs-usage.csv"'},
    )


def routes() -> APIRouter:
    router = APIRouter(tags=["usage"])
    router.add_api_route("/usage", usage, methods=["GET"])
    csv_answer: dict[int | str, dict[str, Any]] = {
        200: {"content": {"text/csv": {}}, "description": "CSV, one line per group"}
    }
    router.add_api_route(
        "/usage.csv", usage_csv, methods=["GET"], response_class=Response, responses=csv_answer
    )
    return router


def parse_group_by(text: str) -> list[str]:
    """`customer,day` → ["customer", "day"]; unknown names are a 422 on `group_by`."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in DIMENSIONS]
    if unknown:
        message = f"unknown dimension {unknown[0]!r}: use {', '.join(DIMENSIONS)}"
        raise ValidationFailed(
            [{"loc": ["query", "group_by"], "msg": message, "type": "value_error"}]
        )
    return list(dict.fromkeys(names))


def _report(
    store: Store,
    group_by: str,
    customer: str | None,
    key: str | None,
    endpoint: str | None,
    since: str | None,
    until: str | None,
) -> list[UsageLine]:
    dimensions = parse_group_by(group_by)
    filters = Filters(
        customer_id=store.get_customer(customer).id if customer is not None else None,
        key_id=store.get_key(key).id if key is not None else None,
        endpoint=endpoint,
        since=parse_instant(since, "since") if since is not None else None,
        until=parse_instant(until, "until") if until is not None else None,
    )
    return report(store.database, dimensions, filters)
