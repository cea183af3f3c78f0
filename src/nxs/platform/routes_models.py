"""`/v1/models/…` and `/v1/account/billing`: the customer's prices, estimates, usage,
billing events, requests and balance, with fal's parameters and paging."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any, Final, cast

from starlette.responses import Response

from nxs.errors import BadRequest, NotFound
from nxs.platform import account, keys, prices, queries, wire
from nxs.platform.call import Call, json
from nxs.platform.params import bound, cursor_of, timeframe_of
from nxs.platform.prices import CURRENCY, EstimateType
from nxs.platform.queries import Filters

AUTH_EXPANDS: Final = ("auth_method", "auth_method_structured")
USAGE_EXPANDS: Final = ("time_series", "summary", *AUTH_EXPANDS)
MAX_EVENTS_SPAN: Final = timedelta(days=90)
MAX_QUANTITY: Final = Decimal(1_000_000_000)
QUANTITY_FIELDS: Final = {"historical_api_price": "call_quantity", "unit_price": "unit_quantity"}


class ModelRoutes:
    async def pricing(self, call: Call) -> Response:
        endpoints = call.query.ids("endpoint_id", required=True)
        found = await call.run(prices.customer_prices, call.database, call.customer_id, endpoints)
        if not found:
            raise NotFound("No pricing found for the requested endpoints")
        return json(wire.paged("prices", [wire.price(entry) for entry in found], 1, False))

    async def estimate(self, call: Call) -> Response:
        kind, quantities = _estimate_body(await call.body())
        total = await call.run(prices.estimate, call.database, call.customer_id, kind, quantities)
        return json({"estimate_type": kind, "total_cost": wire.number(total), "currency": CURRENCY})

    async def usage(self, call: Call) -> Response:
        query = call.query
        expand = query.choices("expand", USAGE_EXPANDS, ("time_series",))
        if not expand & {"time_series", "summary"}:
            raise BadRequest("expand must include time_series or summary")
        if query.all("login_username"):
            raise BadRequest("login_username: NXS accounts have no team logins")
        window, zone = query.window(call.now), query.zone()
        timeframe = timeframe_of(query, window)
        if query.flag("bound_to_timeframe", True):
            window = bound(window, timeframe, zone)
        filters = await _filters(call, request_ids=False)
        limit, page = query.limit(100, 1000), query.page()
        by_key = bool(expand & set(AUTH_EXPANDS))
        labels = await call.run(keys.key_labels, call.database, call.customer_id)
        body: dict[str, Any] = {}
        has_more = False
        if "time_series" in expand:
            series = await call.run(
                queries.usage_series,
                call.database,
                call.customer_id,
                window,
                timeframe,
                zone,
                filters,
                by_key,
            )
            shown = series[(page - 1) * limit : page * limit]
            has_more = len(series) > page * limit
            body["time_series"] = [wire.usage_bucket(b, expand, labels) for b in shown]
        if "summary" in expand:
            lines = await call.run(
                queries.usage_summary, call.database, call.customer_id, window, filters, by_key
            )
            body["summary"] = [wire.usage_line(line, expand, labels) for line in lines]
        return json({**body, **_paging(page, has_more)})

    async def billing_events(self, call: Call) -> Response:
        query = call.query
        expand = query.choices("expand", AUTH_EXPANDS, ())
        window = query.window(call.now, MAX_EVENTS_SPAN)
        filters = await _filters(call, request_ids=True)
        limit, page = query.limit(100, 10_000), query.page()
        events = await call.run(
            queries.billing_events,
            call.database,
            call.customer_id,
            window,
            filters,
            limit + 1,
            (page - 1) * limit,
        )
        labels = await call.run(keys.key_labels, call.database, call.customer_id) if expand else {}
        items = [wire.billing_event(event, expand, labels) for event in events[:limit]]
        return json(wire.paged("billing_events", items, page, len(events) > limit))

    async def requests(self, call: Call) -> Response:
        query = call.query
        endpoints = query.ids("endpoint_id", required=True)
        window = query.window(call.now)
        status = query.choice("status", ("success", "error", "user_error"), None)
        sort_by = query.choice("sort_by", ("ended_at", "duration"), "ended_at")
        payloads = "payloads" in query.choices("expand", ("payloads",), ())
        request_id = query.one("request_id")
        request_ids = (request_id,) if request_id is not None else ()
        await _check_requests(call, request_ids)
        limit, page = query.limit(50, 100), query.page()
        records = await call.run(
            queries.customer_requests,
            call.database,
            call.customer_id,
            window,
            Filters(endpoints=endpoints, request_ids=request_ids),
            cast(queries.RequestStatus | None, status),
            cast(Any, sort_by),
            limit + 1,
            (page - 1) * limit,
        )
        items = [wire.request_item(record, payloads) for record in records[:limit]]
        return json(wire.paged("items", items, page, len(records) > limit))

    async def account(self, call: Call) -> Response:
        credits = "credits" in call.query.choices("expand", ("credits",), ())
        found = await call.run(
            account.account_of, call.database, call.customer_id, call.grant.customer_name
        )
        return json(wire.account(found, credits))


def _paging(page: int, has_more: bool) -> dict[str, Any]:
    return {
        "next_cursor": cursor_of(page + 1) if has_more else None,
        "has_more": has_more,
    }


async def _filters(call: Call, *, request_ids: bool) -> Filters:
    """`endpoint_id`, `api_key_id` (and `request_id`) filters; another customer's key or
    request id is 404, as an unknown one."""
    key_ids = call.query.ids("api_key_id")
    owned = await call.run(keys.key_ids_owned, call.database, call.customer_id, key_ids)
    missing = [key_id for key_id in key_ids if key_id not in owned]
    if missing:
        raise NotFound(f"Key '{missing[0]}' not found")
    ids = call.query.ids("request_id") if request_ids else ()
    await _check_requests(call, ids)
    return Filters(endpoints=call.query.ids("endpoint_id"), key_ids=key_ids, request_ids=ids)


async def _check_requests(call: Call, request_ids: tuple[str, ...]) -> None:
    owned = await call.run(queries.request_ids_owned, call.database, call.customer_id, request_ids)
    missing = [request_id for request_id in request_ids if request_id not in owned]
    if missing:
        raise NotFound(f"Request '{missing[0]}' not found")


def _estimate_body(body: dict[str, Any]) -> tuple[EstimateType, dict[str, Decimal]]:
    """fal's estimate request: its type and a quantity per endpoint (1–50 endpoints)."""
    kind = body.get("estimate_type")
    if kind not in QUANTITY_FIELDS:
        raise BadRequest("estimate_type must be historical_api_price or unit_price")
    endpoints = body.get("endpoints")
    if not isinstance(endpoints, dict) or not 1 <= len(endpoints) <= 50:
        raise BadRequest("endpoints must be an object of 1-50 endpoint ids")
    field = QUANTITY_FIELDS[kind]
    quantities = {}
    for endpoint, entry in endpoints.items():
        value = entry.get(field) if isinstance(entry, dict) else None
        quantities[endpoint] = _quantity(value, field, whole=kind == "historical_api_price")
    return cast(EstimateType, kind), quantities


def _quantity(value: object, field: str, *, whole: bool) -> Decimal:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    amount = Decimal(repr(value)) if is_number else None
    if amount is None or not amount.is_finite() or not 0 < amount <= MAX_QUANTITY:
        raise BadRequest(f"{field} must be a positive number up to {MAX_QUANTITY}")
    if whole and amount != amount.to_integral_value():
        raise BadRequest(f"{field} must be a whole number")
    if amount < Decimal("0.000001"):
        raise BadRequest(f"{field} must be at least 0.000001")
    return amount
