"""Settling queued requests from what the gateway sees: results, statuses, cancels, webhooks.

Each path turns the upstream answer into an `Outcome` (`nxs.billing.outcomes`) and settles
the request's open ledger row once; the reconciler uses `finish` too. Only an upstream's
final verdict refunds: a poll that times out or a client that leaves changes nothing. An
accepted cancel, or a status saying COMPLETED with an error, settles nothing: it makes the
row due for the reconciler now, which fetches the result and prices it from fal's answer.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

import aiohttp
from aiohttp import ClientResponse
from yarl import URL

from nxs.billing import ledger, ledger_batch
from nxs.billing.ledger import Entry
from nxs.billing.outcomes import (
    cancel_accepted,
    completed_with_error,
    outcome_of_result,
    outcome_of_webhook,
)
from nxs.billing.settle import BILLABLE_UNITS_HEADER, Outcome, Verdict
from nxs.errors import NxsError
from nxs.gateway import routes
from nxs.gateway.forward import SMALL_BODY, UPSTREAM_ERRORS
from nxs.gateway.metering import BODY_UNITS, Meter
from nxs.gateway.pool import KeyPool
from nxs.gateway.routes import app_id
from nxs.store.database import Database

WEBHOOK_WAITS: Final = 20  # × WEBHOOK_WAIT_SECONDS: how long a webhook waits for its row
WEBHOOK_WAIT_SECONDS: Final = 0.05


class CompletionNotRecorded(NxsError):
    """fal reported on a request whose ledger row has no request id yet: fal retries."""

    status, error_type, detail = 503, "completion_not_recorded", "Request not recorded yet"


async def open_entry(meter: Meter, request_id: str) -> Entry | None:
    """The request's open ledger entry (memory first, then the store)."""
    if not meter.enabled or request_id in meter.closed:
        return None
    entry = meter.open.get(request_id)
    if entry is None:
        entry = await meter.call(ledger.find_open, meter.db, request_id)
        if entry is None:
            meter.release_request(request_id)
            return None
    return bound(meter, entry)


def bound(meter: Meter, entry: Entry) -> Entry:
    """`entry` with its rule's `header_units` decided by fal's unit for its endpoint (a row
    read back from the ledger holds the unit and price only, so it would ignore the header)."""
    rule = meter.snapshot.prices.bind(entry.endpoint, entry.rule)
    return entry if rule is entry.rule else replace(entry, rule=rule)


async def finish(
    meter: Meter, entry: Entry, outcome: Outcome, headers: Mapping[str, str], body: object
) -> bool:
    """Settle `entry` for `outcome`; False for a HOLD or when it was already settled."""
    entry = bound(meter, entry)
    settlement = meter.price(entry, outcome, headers, body)
    if settlement.verdict is Verdict.HOLD:
        return False

    changed = await meter.writer.apply(ledger_batch.SETTLE, (entry, settlement))
    if entry.request_id is not None:
        lease_id = entry.id if meter.may_hold_slot(entry.customer_id) else None
        meter.release_request(entry.request_id, lease_id)
    return changed


async def result_seen(meter: Meter, request_id: str, response: ClientResponse) -> None:
    """A result fetch: COMPLETED settles from the header or body, an ERROR result refunds."""
    entry = await open_entry(meter, request_id)
    if entry is None:
        return
    headers = response.headers
    outcome = outcome_of_result(response.status, headers)
    if outcome is None:
        return
    body = None
    header = entry.rule.header_units and BILLABLE_UNITS_HEADER in headers
    needs_body = not header and entry.rule.unit in BODY_UNITS
    length = response.content_length
    if outcome is Outcome.COMPLETED and needs_body and length is not None and length <= SMALL_BODY:
        body = _json(await response.read())
    await finish(meter, entry, outcome, headers, body)


async def status_seen(meter: Meter, request_id: str, status: int, payload: bytes) -> None:
    """A status saying COMPLETED with an error settles nothing (an app's error may be
    billed, and only the result's `x-fal-billable-units` say so — a client may never fetch
    it): it makes the request due for the reconciler now, which fetches the result and
    prices it (refunded when it bills no units). Any other status changes nothing.
    """
    if not meter.enabled or request_id in meter.closed:
        return
    if completed_with_error(status, _json(payload)):
        await due_now(meter, request_id)


async def cancel_seen(meter: Meter, request_id: str, status: int) -> None:
    """A cancel fal accepted settles nothing (the job may have started since the client
    last looked, and fal bills what its app finishes): it makes the request due for the
    reconciler now, so fal's own status and result decide.
    """
    if cancel_accepted(status):
        await due_now(meter, request_id)


async def due_now(meter: Meter, request_id: str) -> None:
    """The request's open row (if any) is checked by the reconciler's next pass."""
    entry = await open_entry(meter, request_id)
    if entry is None:
        return
    entry_id, moment = entry.id, time.time()

    def operation(db: Database) -> None:
        ledger.check_at(db, entry_id, moment)

    await meter.writer.run(operation)


async def webhook_seen(meter: Meter, request_id: str, document: Mapping[str, Any]) -> None:
    """fal's webhook (through the relay's completion hook): OK settles from its payload;
    ERROR makes the row due for the reconciler, which prices it from the result (the
    payload names no billed units, and an app's error may be billed).

    fal may call back before the submit's ledger row carries the request id (a job done
    within the submit's own round trip): wait a moment for the row, then raise so that
    fal retries the webhook — never take the request for closed before its row exists.
    """
    outcome = outcome_of_webhook(dict(document))
    if outcome is None or not meter.enabled:
        return
    for _ in range(WEBHOOK_WAITS):
        if request_id in meter.closed:
            return
        entry = meter.open.get(request_id) or await meter.call(
            ledger.find_open, meter.db, request_id
        )
        if entry is None and await meter.call(ledger.recorded, meter.db, request_id):
            # recorded: attached since the first read (open now), or closed already by a
            # result fetch, a status poll or the reconciler
            entry = await meter.call(ledger.find_open, meter.db, request_id)
            if entry is None:
                return
        if entry is not None and outcome is Outcome.ERROR_RESULT:
            await due_now(meter, request_id)
            return
        if entry is not None:
            await finish(meter, entry, outcome, {}, document.get("payload"))
            return
        await asyncio.sleep(WEBHOOK_WAIT_SECONDS)
    raise CompletionNotRecorded()


def _json(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):  # fal's answer, not JSON or absurdly deep
        return None


class PoolUpstream:
    """The reconciler's view of fal: status and result GETs with the submitting key."""

    def __init__(self, session: aiohttp.ClientSession, pool: KeyPool, queue_base: str) -> None:
        self._session, self._pool, self._base = session, pool, queue_base

    async def status(self, entry: Entry) -> tuple[int, object] | None:
        answer = await self._get(entry, "/status")
        return None if answer is None else (answer[0], answer[2])

    async def result(self, entry: Entry) -> tuple[int, Mapping[str, str], object] | None:
        return await self._get(entry, "")

    async def _get(self, entry: Entry, suffix: str) -> tuple[int, Mapping[str, str], object] | None:
        key = self._pool.get(entry.upstream_key_id or "")
        if key is None or entry.request_id is None:
            return None
        path = f"{app_id(entry.endpoint)}/requests/{entry.request_id}{suffix}"
        url = URL(f"{self._base}/{path}", encoded=True)
        headers = {"authorization": key.authorization}
        try:
            async with self._session.get(url, headers=headers, allow_redirects=False) as response:
                body = await response.read()
                return response.status, dict(response.headers), _json(body)
        except UPSTREAM_ERRORS:
            return None


async def ended(meter: Meter, kind: str, request_id: str, response: ClientResponse) -> None:
    """Before relaying a result that ends the request at fal: free its in-flight slot, so a
    client that submits again as soon as it has its result is not refused for it."""
    if not meter.enabled or kind != routes.RESULT:
        return
    if outcome_of_result(response.status, response.headers) is None:
        return
    entry = await open_entry(meter, request_id)
    if entry is not None:
        await meter.free_slot(request_id, entry.id)


async def seen(meter: Meter, kind: str, request_id: str, response: ClientResponse) -> None:
    """After relaying a request operation's answer: settle what it tells (if anything)."""
    if not meter.enabled:
        return
    if kind == routes.RESULT:
        await result_seen(meter, request_id, response)
    elif kind == routes.STATUS:
        await status_seen(meter, request_id, response.status, await response.read())
    elif kind == routes.CANCEL:
        await cancel_seen(meter, request_id, response.status)
