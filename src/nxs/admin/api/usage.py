"""`/admin/v1/usage…`: what customers used and were charged, read from the ledger.

Totals by customer, key, endpoint or day (UTC), and the billable requests themselves,
each as JSON or as a CSV download; filtered by customer and a time window (`since`
inclusive, `until` exclusive; a date means its midnight UTC). Queries: `nxs.billing.usage`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from nxs.admin.api.billing_schemas import LedgerRowOut, UsageTotalOut
from nxs.admin.api.context import StoreDep
from nxs.admin.api.timeparse import parse_instant
from nxs.admin.output import timestamp
from nxs.billing.usage import UsageRow, usage_rows, usage_totals
from nxs.store.store import Store

DATE_HELP = "ISO date or date-time, UTC"
MAX_ROWS = 100_000

Dimension = Literal["customer", "key", "endpoint", "day"]
GroupBy = Annotated[Dimension, Query()]
Customer = Annotated[str | None, Query(description="only this customer (its name)")]
Since = Annotated[str | None, Query(description=f"from this time on ({DATE_HELP})")]
Until = Annotated[str | None, Query(description=f"before this time ({DATE_HELP})")]
Limit = Annotated[int, Query(ge=1, le=MAX_ROWS, description="at most this many rows")]


def totals(
    store: StoreDep,
    group_by: GroupBy = "customer",
    customer: Customer = None,
    since: Since = None,
    until: Until = None,
) -> list[UsageTotalOut]:
    """Requests, charges and holds per customer, key, endpoint or day."""
    return _totals(store, group_by, customer, since, until)


def totals_csv(
    store: StoreDep,
    group_by: GroupBy = "customer",
    customer: Customer = None,
    since: Since = None,
    until: Until = None,
) -> Response:
    """The same totals as a CSV download."""
    return _csv(_totals(store, group_by, customer, since, until), UsageTotalOut, "usage")


def requests(
    store: StoreDep,
    customer: Customer = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 1000,
) -> list[LedgerRowOut]:
    """The billable requests (ledger rows), oldest first."""
    return _rows(store, customer, since, until, limit)


def requests_csv(
    store: StoreDep,
    customer: Customer = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = MAX_ROWS,
) -> Response:
    """The billable requests as a CSV download (the export for invoicing)."""
    return _csv(_rows(store, customer, since, until, limit), LedgerRowOut, "requests")


def routes() -> APIRouter:
    router = APIRouter(tags=["usage"])
    csv_answer: dict[int | str, dict[str, Any]] = {
        200: {"content": {"text/csv": {}}, "description": "CSV with a header line"}
    }
    router.add_api_route("/usage", totals, methods=["GET"])
    router.add_api_route("/usage.csv", totals_csv, methods=["GET"], responses=csv_answer)
    router.add_api_route("/usage/requests", requests, methods=["GET"])
    router.add_api_route("/usage/requests.csv", requests_csv, methods=["GET"], responses=csv_answer)
    return router


def _window(
    store: Store, customer: str | None, since: str | None, until: str | None
) -> tuple[str | None, float | None, float | None]:
    return (
        store.get_customer(customer).id if customer is not None else None,
        parse_instant(since, "since") if since is not None else None,
        parse_instant(until, "until") if until is not None else None,
    )


def _totals(
    store: Store, group_by: Dimension, customer: str | None, since: str | None, until: str | None
) -> list[UsageTotalOut]:
    found = usage_totals(store.database, group_by, *_window(store, customer, since, until))
    return [
        UsageTotalOut(
            group_by=group_by,
            group=total.group,
            requests=total.requests,
            settled=total.settled,
            refunded=total.refunded,
            cost=str(total.cost),
            pending=str(total.pending),
        )
        for total in found
    ]


def _rows(
    store: Store, customer: str | None, since: str | None, until: str | None, limit: int
) -> list[LedgerRowOut]:
    window = _window(store, customer, since, until)
    return [_ledger_row(row) for row in usage_rows(store.database, *window, limit=limit)]


def _ledger_row(row: UsageRow) -> LedgerRowOut:
    return LedgerRowOut(
        id=row.id,
        request_id=row.request_id,
        customer=row.customer,
        key_id=row.api_key_id,
        upstream_key_id=row.upstream_key_id,
        endpoint=row.endpoint,
        kind=row.kind,
        status=row.status,
        unit=row.unit,
        unit_price=row.unit_price,
        multiplier=row.multiplier,
        units=row.units,
        units_source=row.units_source,
        reserved=str(row.reserved),
        cost=str(row.cost) if row.cost is not None else None,
        latency_ms=row.latency_ms,
        created_at=timestamp(row.created_at) or "",
        settled_at=timestamp(row.settled_at),
    )


def _csv(records: Sequence[BaseModel], model: type[BaseModel], name: str) -> Response:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(model.model_fields), lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: "" if v is None else v for k, v in record.model_dump().items()})
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="nxs-{name}.csv"'},
    )
