"""Billing of realtime sessions: admitted like a run (subscription, endpoint, rpm and
in-flight limits, a one-result reservation on credit plans), settled on close as one
ledger row whose units are the results fal sent back (`ResultCounter`), priced by the
endpoint's rule × the plan's multiplier, naming the pool key that bridged the session;
a session that got nothing back costs 0.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from nxs.billing import ledger
from nxs.billing.estimate import at_least_a_micro
from nxs.billing.ledger import Entry
from nxs.billing.limits import Permit
from nxs.billing.money import Money, charge
from nxs.billing.plans import CreditMode, Plan, check_access
from nxs.billing.settle import Settlement, UnitsSource, Verdict
from nxs.gateway.metering import Meter
from nxs.store.database import Database
from nxs.store.ids import now

LEDGER_KIND: Final = "realtime"
SESSION_PREFIX: Final = "rt_"
MIN_RESULTS: Final = Decimal(1)  # what credit must cover before a session opens
CONTROL_SCAN: Final = 4096  # text frames longer than this are results, never control


@dataclass
class RealtimeSession:
    """One admitted session: its ledger entry (naming its pool key once connected), its
    limits permit, whether a row is held."""

    entry: Entry
    permit: Permit | None
    written: bool


class RealtimeBilling:
    """The gateway's `RealtimeMeter` when billing is on (uses the hot path's `Meter`)."""

    def __init__(self, meter: Meter) -> None:
        self._meter = meter

    async def opened(self, customer_id: str, key_id: str, endpoint: str) -> RealtimeSession | None:
        """Admit a session before fal's socket opens; raises 402/403/429 to refuse it."""
        meter = self._meter
        if not meter.enabled:
            return None
        plan, subscription = meter.snapshot.plan_of(customer_id)
        check_access(plan, subscription, endpoint, datetime.now(UTC))
        entry = self._entry(customer_id, key_id, endpoint, plan)
        permit = await self._acquire(plan, customer_id, key_id, entry.id)
        if not plan.requires_credit:
            return RealtimeSession(entry, permit, written=False)
        monthly = plan.monthly_credit if plan.mode is CreditMode.MONTHLY else None

        def reserve(db: Database) -> None:
            ledger.reserve(db, entry, monthly)

        try:
            await meter.writer.run(reserve)
        except BaseException:
            self._release(permit)
            raise
        return RealtimeSession(entry, permit, written=True)

    async def connected(self, session: object, upstream_key_id: str) -> None:
        """fal's socket is open with a token of pool key `upstream_key_id`: the session's
        row names it. A held row is `attach`ed now — `pending` (fal has the session, and
        may bill what it sends) so it is no stranded hold to release while the session
        lasts, yet out of the reconciler's queue (nothing to ask fal about a session)."""
        if not isinstance(session, RealtimeSession):
            return
        session.entry = entry = replace(session.entry, upstream_key_id=upstream_key_id)
        request_id = entry.request_id
        if not session.written or request_id is None:
            return

        def attach(db: Database) -> None:
            ledger.attach(db, entry, request_id, upstream_key_id, entry.created_at)
            ledger.check_at(db, entry.id, None)

        await self._meter.writer.run(attach)

    async def closed(self, session: object, seconds: float, results: int) -> None:
        """Settle the session at `results` units (refunded when 0); frees its permit."""
        if not isinstance(session, RealtimeSession):
            return
        entry, written = session.entry, session.written
        settlement = settlement_of(entry, results)

        def operation(db: Database) -> None:
            if written:
                ledger.settle(db, entry, settlement)
            else:
                ledger.insert(db, entry, ledger.closed_status(settlement), settlement)

        try:
            await self._meter.writer.run(operation)
        finally:
            self._release(session.permit)

    def _entry(self, customer_id: str, key_id: str, endpoint: str, plan: Plan) -> Entry:
        rule = self._meter.snapshot.prices.price(endpoint)
        held = at_least_a_micro(
            charge(MIN_RESULTS, rule.unit_price, plan.multiplier), rule.unit_price
        )
        session_id = uuid.uuid4().hex
        return Entry(
            id=f"led_{SESSION_PREFIX}{session_id}",
            customer_id=customer_id,
            api_key_id=key_id,  # the header's key, or the key an NXS token was issued to
            endpoint=endpoint,
            kind=LEDGER_KIND,
            rule=rule,
            multiplier=plan.multiplier,
            estimated_units=MIN_RESULTS,
            reserved=held if plan.requires_credit else Money.zero(),
            created_at=now(),
            request_id=f"{SESSION_PREFIX}{session_id}",
        )

    async def _acquire(
        self, plan: Plan, customer_id: str, key_id: str, lease_id: str
    ) -> Permit | None:
        """One request in flight while the session is open (per customer, and per key); the
        lease lasts as long as a queued request's (a longer session outlives its slot)."""
        if plan.rpm is None and plan.max_in_flight is None:
            return None
        limits = plan.limits(customer_id, key_id)
        meter = self._meter
        admitted = await meter.limiter.acquire(limits, lease_id, meter.queued_lease)
        if not isinstance(admitted, Permit):
            raise admitted.error()
        return admitted

    def _release(self, permit: Permit | None) -> None:
        if permit is not None and not permit.released:
            permit.released = True
            self._meter.free(permit.lease_id)


def settlement_of(entry: Entry, results: int) -> Settlement:
    """`results` units at the entry's price; nothing back → refunded at 0."""
    if results <= 0:
        return Settlement(
            Verdict.REFUND, Decimal(0), UnitsSource.NONE, Money.zero(), entry.reserved
        )
    units = Decimal(results)
    cost = charge(units, entry.rule.unit_price, entry.multiplier)
    return Settlement(Verdict.CHARGE, units, UnitsSource.BODY, cost, entry.reserved)


class ResultCounter:
    """Wraps the client's ASGI `send`: counts the frames that are results from fal.

    Binary frames are results; a text frame is one too unless it is one of fal's JSON
    control messages (`{"type": "x-fal-message" | "x-fal-error", …}`, `{"status": "error"}`).
    """

    def __init__(self, send: Any) -> None:
        self._send = send
        self.results = 0

    async def __call__(self, message: dict[str, Any]) -> None:
        await self._send(message)
        if message.get("type") == "websocket.send" and is_result(message):
            self.results += 1


def is_result(message: dict[str, Any]) -> bool:
    if message.get("bytes") is not None:
        return True
    text = message.get("text") or ""
    if len(text) > CONTROL_SCAN or not text.lstrip().startswith("{"):
        return True
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return True
    if not isinstance(data, dict):
        return True
    kind = data.get("type")
    control = isinstance(kind, str) and kind.startswith("x-fal-")
    return not (control or data.get("status") == "error")
