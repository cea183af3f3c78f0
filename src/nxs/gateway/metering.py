"""Billing on the hot path: admit (plan, price, limits, idempotency, reserve), then settle.

Order (docs/billing-design.md §4): access and price from the request's tariff (worked
out once per store version, `nxs.gateway.tariffs`), limits (`nxs.state`), then one
group-committed write for the idempotency claim and the reservation (skipped on metered
plans without an Idempotency-Key). Answers write the ledger before they are released; a
metered request costs exactly one ledger insert (`ran_response`'s fast path).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final, ParamSpec, TypeVar

from aiohttp import ClientResponse

from nxs.billing import ledger, ledger_batch, replay, slices
from nxs.billing.catalog import BillingSnapshot, load_snapshot
from nxs.billing.estimate import at_least_a_micro, defaults_for, estimate_units
from nxs.billing.idempotency import fingerprint
from nxs.billing.ledger import Columns, Entry
from nxs.billing.limits import InProcessLimiter, Limiter, Permit
from nxs.billing.money import Money, charge
from nxs.billing.outcomes import REQUEST_ID_HEADER, outcome_of_run, outcome_of_submit
from nxs.billing.plans import CreditMode, check_access
from nxs.billing.replay import StoredResponse
from nxs.billing.settle import (
    BILLABLE_UNITS_HEADER,
    Outcome,
    Settlement,
    settle,
)
from nxs.billing.writer import LedgerWriter
from nxs.gateway import routes, tickets
from nxs.gateway.exchange import Exchange, Headers
from nxs.gateway.forward import SMALL_BODY
from nxs.gateway.routes import Route
from nxs.gateway.slicer import Slicer
from nxs.gateway.tariffs import BODY_UNITS, Tariff, Tariffs
from nxs.gateway.tickets import Ticket
from nxs.state.leases import queued_lease_seconds, run_lease_seconds
from nxs.store.database import Database, DatabaseError
from nxs.store.models import KeyGrant
from nxs.store.offload import Offload

KINDS: Final = {routes.RUN: "run", routes.SUBMIT: "queue"}
PERMIT_MAX_AGE: Final = 3600.0
MEMORY_LIMIT: Final = 20_000
ZERO: Final = Money.zero()
T = TypeVar("T")
P = ParamSpec("P")


@dataclass
class Meter:
    """Per-process billing state: snapshot, limiter, writer, open queue entries."""

    db: Database
    enabled: bool = True
    first_check: float = 60.0  # seconds until the reconciler first asks about a submit
    snapshot: BillingSnapshot = field(default_factory=BillingSnapshot)
    limiter: Limiter = field(default_factory=InProcessLimiter)  # nxs.state: shared or not
    run_lease: float = run_lease_seconds(600.0)  # in-flight lease of a run, seconds
    queued_lease: float = queued_lease_seconds()  # … of a queued request, until its end
    releases: set[asyncio.Task[None]] = field(default_factory=set)  # shared releases under way
    permits: dict[str, tuple[Permit, float]] = field(default_factory=dict)
    open: dict[str, Entry] = field(default_factory=dict)
    closed: dict[str, None] = field(default_factory=dict)  # recently settled request ids
    settlements: dict[tuple[object, ...], Settlement] = field(default_factory=dict)
    costs: dict[tuple[Decimal, Decimal, Decimal], Money] = field(default_factory=dict)
    tariffs: Tariffs = field(default_factory=Tariffs)
    offload: Offload | None = None  # where the writer commits (a store thread on PostgreSQL)

    def __post_init__(self) -> None:
        self.writer = LedgerWriter(self.db, self.offload)
        # prepaid runs admitted against credit slices: on a network database only, where
        # a hold is a commit of its own (on SQLite it costs microseconds)
        network = self.offload is not None and not self.offload.inline
        self.slicer = Slicer(self.writer) if network else None

    def start(self) -> None:
        self.reload()
        self.writer.start()

    async def stop(self) -> None:
        await asyncio.gather(*self.releases, return_exceptions=True)
        if self.slicer is not None:
            await self.slicer.stop()
        await self.writer.stop()

    def reload(self, snapshot: BillingSnapshot | None = None) -> None:
        """Re-read plans, subscriptions and prices (the store version moved), or take
        `snapshot`, read by the caller off the event loop."""
        if self.enabled:
            self.snapshot = load_snapshot(self.db) if snapshot is None else snapshot
            self.tariffs.clear()

    async def call(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A store read of billing's, off the event loop on a network database."""
        if self.offload is None:
            return function(*args, **kwargs)
        return await self.offload.call(function, *args, **kwargs)

    def read_snapshot(self) -> BillingSnapshot | None:
        """Plans, subscriptions and prices as stored now (None when billing is off)."""
        return load_snapshot(self.db) if self.enabled else None

    # -- admission --------------------------------------------------------------

    async def admit(
        self, ex: Exchange, grant: KeyGrant, route: Route, body: bytes, payload: object = None
    ) -> Ticket | None:
        """Check, limit, claim and reserve a run or submit (None for other calls or when
        billing is off); `payload` is the input already read from `body`
        (`tickets.model_input`). Raises 402/403/409/422/429; a refusal writes nothing.
        """
        kind = KINDS.get(route.kind)
        if kind is None or not self.enabled:
            return None
        if self.writer.outage:  # its ledger row could not be written: fal must not run it
            raise DatabaseError("the ledger's database is unreachable")
        endpoint = route.endpoint
        tariff = self.tariffs.get(self.snapshot, grant.customer_id, grant.key_id, endpoint, kind)
        plan = tariff.plan
        if not tariff.open_access:  # a dated subscription, not active, or an endpoint list
            check_access(plan, tariff.subscription, endpoint, datetime.now(UTC))
        entry = self._entry(ex.request_id, grant, tariff, payload)
        ticket = Ticket(entry, plan, idempotency=tickets.idempotency(ex, grant), tariff=tariff)
        if entry.estimated_units < 0:  # metered run: estimated only if fal bills no units
            ticket.request_body = body
        if plan.rpm is not None or plan.max_in_flight is not None:
            ttl = self.queued_lease if kind == "queue" else self.run_lease
            limits = plan.limits(grant.customer_id, grant.key_id)
            try:
                admitted = await self.limiter.acquire(limits, entry.id, ttl)  # any worker frees it
            except asyncio.CancelledError:  # the client left: a slot it may have got goes back
                self.free(entry.id)
                raise
            if not isinstance(admitted, Permit):
                raise admitted.error()
            admitted.released = plan.max_in_flight is None  # rpm alone holds nothing to free
            ticket.permit = admitted
        try:
            if ticket.idempotency is not None or tariff.credit:
                await self._claim(ticket, fingerprint(ex.method, endpoint, ex.query, body))
        except BaseException:
            self._release(ticket.permit)
            raise
        return ticket

    def _entry(self, call_id: str, grant: KeyGrant, tariff: Tariff, payload: object) -> Entry:
        rule, multiplier = tariff.rule, tariff.plan.multiplier
        units = tariff.estimate  # LATER for metered runs: estimated from the answer
        if units is None:
            units = estimate_units(rule.unit, payload, defaults_for(tariff.endpoint))
        cost = ZERO
        if tariff.credit:
            cost = at_least_a_micro(self._cost(units, rule.unit_price, multiplier), rule.unit_price)
        return Entry(
            id=f"led_{call_id}",  # the gateway's own request id: unique, no syscall
            customer_id=grant.customer_id,
            api_key_id=grant.key_id,
            endpoint=tariff.endpoint,
            kind=tariff.kind,
            rule=rule,
            multiplier=multiplier,
            estimated_units=units,
            reserved=cost,
            created_at=time.time(),
        )

    def _cost(self, units: Decimal, unit_price: Decimal, multiplier: Decimal) -> Money:
        """`charge(…)`, memoized: the hot path prices the same few estimates over and over."""
        key = (units, unit_price, multiplier)
        cost = self.costs.get(key)
        if cost is None:
            if len(self.costs) >= MEMORY_LIMIT:
                self.costs.clear()
            cost = self.costs[key] = charge(units, unit_price, multiplier)
        return cost

    async def _claim(self, ticket: Ticket, request_fingerprint: str) -> None:
        credit, idem = ticket.plan.requires_credit, ticket.idempotency
        if not credit and idem is None:
            return
        monthly = ticket.plan.monthly_credit if ticket.plan.mode is CreditMode.MONTHLY else None
        entry, defer = ticket.entry, self.writer.defer
        if idem is None and monthly is None:  # a plain hold: batched with the batch's others
            if self.slicer is not None and entry.kind == "run":
                ticket.slice = await self.slicer.admit(entry.customer_id, entry.reserved.micros)
                if ticket.slice is not None:  # held by this process's slice: nothing to write
                    return
            await self.writer.apply(ledger_batch.RESERVE, entry)
            ticket.written = True
            return

        def operation(db: Database) -> StoredResponse | None:
            if idem is not None:
                stored = replay.claim(db, *idem, request_fingerprint, entry.created_at)
                if stored is not None:
                    return stored
            if credit:
                ledger.reserve(db, entry, monthly, defer)
            return None

        ticket.replay = await self.writer.run(operation)
        ticket.written = credit and ticket.replay is None
        if ticket.replay is not None:
            self._release(ticket.permit)

    # -- answers ----------------------------------------------------------------

    @staticmethod
    async def replayed(ex: Exchange, ticket: Ticket | None) -> bool:
        """Answer with the stored first response of an idempotent retry; True if done."""
        if ticket is None or ticket.replay is None:
            return False
        stored = ticket.replay
        await ex.respond(stored.status, stored.body, list(stored.headers))
        return True

    async def guard(self, ticket: Ticket | None, call: Awaitable[T]) -> T:
        """Await the upstream call; if no key answered at all, refund before raising."""
        try:
            return await call
        except BaseException:
            await self.failed(ticket)
            raise

    def ran_response(
        self, ticket: Ticket | None, response: ClientResponse, upstream_id: str
    ) -> Awaitable[None] | None:
        """Settle a run from its response; await what it returns before relaying (None:
        nothing to wait for). A metered run whose units fal's header tells — the common
        case — is one ledger row queued here, and the caller waits for its commit."""
        if ticket is None:
            return None
        tariff, headers = ticket.tariff, response.headers
        if ticket.written or ticket.slice or ticket.idempotency is not None or tariff is None:
            return self._ran_response(ticket, response, upstream_id)
        billed = headers.get(BILLABLE_UNITS_HEADER) if tariff.rule.header_units else None
        if billed is None and tariff.rule.unit in BODY_UNITS:  # the body tells the units
            return self._ran_response(ticket, response, upstream_id)
        self._release(ticket.permit)
        entry, status = ticket.entry, response.status
        closing = tariff.closing(
            status, billed or "", lambda: self._settle_run(ticket, status, headers, None)
        )
        fal_id = headers.get(REQUEST_ID_HEADER)
        request = ledger.request_columns(
            entry, time.time(), request_id=fal_id, upstream_key_id=upstream_id
        )
        return self.writer.submit(ledger.INSERT, tariff.static + closing + request)

    async def _ran_response(
        self, ticket: Ticket, response: ClientResponse, upstream_id: str
    ) -> None:
        body = None
        length = response.content_length
        if length is not None and length <= SMALL_BODY:  # as relay reads it
            try:
                body = await response.read()
            except BaseException:  # fal's answer broke off: nothing reaches the client
                await self.failed(ticket)
                raise
        await self.ran(ticket, response.status, response.headers, body, upstream_id)

    async def ran(
        self,
        ticket: Ticket | None,
        status: int,
        headers: Mapping[str, str],
        body: bytes | None,
        upstream_id: str | None = None,
    ) -> None:
        """A run's answer is known (body None when streamed): settle it before relaying."""
        if ticket is None:
            return
        entry = ticket.entry
        fal_id = headers.get(REQUEST_ID_HEADER)
        if not ticket.written and not ticket.slice and ticket.idempotency is None:  # metered
            try:
                row = self._metered_row(ticket, status, headers, body)
                now = time.time()
                row += ledger.request_columns(
                    entry, now, request_id=fal_id, upstream_key_id=upstream_id
                )
                await self.writer.execute(ledger.INSERT, row)
            finally:
                self._release(ticket.permit)
            return
        units, settlement = self._settle_run(ticket, status, headers, body)
        ticket.entry = replace(
            entry,
            estimated_units=units,
            request_id=entry.request_id or fal_id,
            upstream_key_id=entry.upstream_key_id or upstream_id,
        )
        stored = None
        if ticket.idempotency is not None and body is not None and status < 500:
            stored = StoredResponse(status, tickets.stored_headers(headers), body)
        try:
            await self._close(ticket, settlement, stored)
        finally:
            self._release(ticket.permit)

    def _metered_row(
        self, ticket: Ticket, status: int, headers: Mapping[str, str], body: bytes | None
    ) -> Columns:
        """The static and closing columns of a metered run's row."""
        entry = ticket.entry
        units, settlement = self._settle_run(ticket, status, headers, body)
        closing = ledger.closing_columns(
            ledger.closed_status(settlement), settlement, units, entry.reserved
        )
        return ledger.static_columns(entry) + closing

    def _settle_run(
        self, ticket: Ticket, status: int, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[Decimal, Settlement]:
        """The run's units as estimated (deferred estimates filled in) and its settlement."""
        entry = ticket.entry
        parsed = None
        if body is not None and _body_tells(entry, headers):
            parsed = tickets.json_body(body)
        units = entry.estimated_units
        if ticket.request_body is not None:
            units = tickets.deferred_units(entry, ticket.request_body, headers)
        return units, self.price(entry, outcome_of_run(status), headers, parsed, units)

    async def failed(self, ticket: Ticket | None) -> None:
        """No upstream answered at all (every key failed): refund, free the idempotency key."""
        if ticket is None:
            return
        if ticket.request_body is not None:
            units = tickets.deferred_units(ticket.entry, ticket.request_body, {})
            ticket.entry = replace(ticket.entry, estimated_units=units)
        settlement = self.price(ticket.entry, Outcome.UPSTREAM_5XX, {}, None)
        try:
            await self._close(ticket, settlement, None)
        finally:
            self._release(ticket.permit)

    async def submitted(
        self, ticket: Ticket | None, status: int, headers: Headers, payload: bytes, upstream_id: str
    ) -> None:
        """A submit's answer (with the gateway's URLs): pending, or settled if refused."""
        if ticket is None:
            return
        response = StoredResponse(status, list(headers), payload)
        found = tickets.json_body(payload) if status < 300 else None
        request_id = found.get("request_id") if isinstance(found, dict) else None
        if not isinstance(request_id, str):
            request_id = None
        outcome = outcome_of_submit(response.status)
        if outcome is not None or request_id is None:
            answered = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers}
            settlement = self.price(ticket.entry, outcome or Outcome.REJECTED, answered, None)
            stored = response if response.status < 500 else None
            try:
                await self._close(ticket, settlement, stored)
            finally:
                self._release(ticket.permit)
            return
        entry, written, idem = ticket.entry, ticket.written, ticket.idempotency
        check_at = time.time() + self.first_check
        if written and idem is None:  # batched with the batch's others; held in an outage
            attaching = (entry, request_id, upstream_id, check_at)
            opened = await self.writer.apply(ledger_batch.ATTACH, attaching)
            self._remember(request_id, opened, ticket.permit)
            return

        def operation(db: Database) -> Entry:
            if written:
                opened = ledger.attach(db, entry, request_id, upstream_id, check_at)
            else:
                opened = tickets.with_request(entry, request_id, upstream_id)
                ledger.insert(db, opened, "pending", next_check_at=check_at)
            if idem is not None:
                replay.complete(db, *idem, response, opened.id)
            return opened

        self._remember(request_id, await self.writer.run(operation), ticket.permit)

    def price(
        self,
        entry: Entry,
        outcome: Outcome,
        headers: Mapping[str, str],
        body: object,
        estimated: Decimal | None = None,
    ) -> Settlement:
        """What `outcome` means for `entry` (pure; see `nxs.billing.settle`), `estimated`
        standing in for the entry's estimate when given. Without a body the answer depends
        on a few values only, so it is memoized (Decimal math is slow).
        """
        if estimated is None:
            estimated = entry.estimated_units
        key = None
        if body is None:
            units = headers.get(BILLABLE_UNITS_HEADER)
            key = (
                outcome,
                entry.rule,
                entry.reserved,
                estimated,
                entry.multiplier,
                units,
            )
            known = self.settlements.get(key)
            if known is not None:
                return known
        settlement = settle(
            outcome,
            entry.rule,
            reserved=entry.reserved,
            estimated_units=estimated,
            multiplier=entry.multiplier,
            headers=headers,
            body=body,
            cost_of=self._cost,
        )
        if key is not None:
            if len(self.settlements) >= MEMORY_LIMIT:
                self.settlements.clear()
            self.settlements[key] = settlement
        return settlement

    async def _close(
        self, ticket: Ticket, settlement: Settlement, stored: StoredResponse | None
    ) -> None:
        entry, written, idem = ticket.entry, ticket.written, ticket.idempotency
        if ticket.slice is not None:
            await self._charge_slice(ticket, settlement)
            return
        if written and idem is None:  # batched with the batch's other settlements
            await self.writer.apply(ledger_batch.SETTLE, (entry, settlement))
            return

        def operation(db: Database) -> None:
            if written:
                ledger.settle(db, entry, settlement)
            else:
                ledger.insert(db, entry, ledger.closed_status(settlement), settlement)
            if idem is not None and stored is not None:
                replay.complete(db, *idem, stored, entry.id)
            elif idem is not None:
                replay.release(db, *idem)

        await self.writer.run(operation)

    async def _charge_slice(self, ticket: Ticket, settlement: Settlement) -> None:
        """A sliced run's row, born settled or refunded, and its cost out of the slice (a
        run's outcome is always final: `outcome_of_run`)."""
        held, entry = ticket.slice, ticket.entry
        assert held is not None and self.slicer is not None
        ticket.slice = None  # settled once
        row = ledger.row(entry, ledger.closed_status(settlement), settlement)
        charge = slices.Charge(held.id, entry.customer_id, settlement.cost.micros, row)
        try:
            await self.writer.apply(slices.CHARGE, charge)
        finally:
            self.slicer.settled(held, entry.reserved.micros, charge.cost)

    def _remember(self, request_id: str, entry: Entry, permit: Permit | None) -> None:
        if len(self.open) >= MEMORY_LIMIT:
            del self.open[next(iter(self.open))]
        self.open[request_id] = entry
        if permit is not None:
            self.permits[request_id] = (permit, time.monotonic())

    def _release(self, permit: Permit | None) -> asyncio.Task[None] | None:
        if permit is not None and not permit.released:
            permit.released = True
            return self.free(permit.lease_id)
        return None

    def free(self, lease_id: str) -> asyncio.Task[None] | None:
        """Free an in-flight lease now (in process) or in a task (shared: any worker's),
        returned for a caller that must know it is free."""
        if isinstance(self.limiter, InProcessLimiter):
            self.limiter.release_now(lease_id)
            return None
        task = asyncio.get_running_loop().create_task(self.limiter.release(lease_id))
        self.releases.add(task)
        task.add_done_callback(self.releases.discard)
        return task

    async def free_slot(self, request_id: str, lease_id: str) -> None:
        """A queued request ended at fal: its in-flight slot is free once this returns (the
        client may submit again the moment it has the result); settling comes after."""
        freed = self._free_request(request_id, lease_id)
        if freed is not None:
            await asyncio.wait([freed])

    def _free_request(self, request_id: str, lease_id: str | None) -> asyncio.Task[None] | None:
        """Free the request's slot: its permit if this worker holds it, else its lease."""
        held = self.permits.pop(request_id, None)
        if held is not None:
            return self._release(held[0])
        return self.free(lease_id) if lease_id is not None else None

    def release_request(self, request_id: str, lease_id: str | None = None) -> None:
        """The queued request ended: forget it and free its in-flight slot (`lease_id`, the
        ledger entry's id, frees it even when another worker admitted the request)."""
        self.open.pop(request_id, None)
        if len(self.closed) >= MEMORY_LIMIT:
            del self.closed[next(iter(self.closed))]
        self.closed[request_id] = None
        self._free_request(request_id, lease_id)

    def may_hold_slot(self, customer_id: str) -> bool:
        """Whether the customer's plan limits calls in flight (else a queued request of
        another worker's holds no lease to free, and freeing it is a wasted round trip)."""
        return self.snapshot.plan_of(customer_id)[0].max_in_flight is not None

    def sweep(self) -> None:
        """Free in-flight slots of queued requests older than an hour (lost or abandoned)."""
        limit = time.monotonic() - PERMIT_MAX_AGE
        for request_id in [rid for rid, (_, at) in self.permits.items() if at < limit]:
            self.release_request(request_id)


def _body_tells(entry: Entry, headers: Mapping[str, str]) -> bool:
    """Whether the units are read from the answer's body (fal's header does not say)."""
    rule = entry.rule
    if rule.unit not in BODY_UNITS:
        return False
    return not rule.header_units or BILLABLE_UNITS_HEADER not in headers
