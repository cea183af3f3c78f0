"""The gateway's long-lived parts, owned by the app's lifespan: store, key snapshot, pool,
queue book, metrics and the upstream session; plus the background loops that keep the
snapshot fresh (store version polled every `refresh_seconds`) and re-probe suspended keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import aiohttp
from yarl import URL

from nxs.billing.catalog import BillingSnapshot
from nxs.catalogue.sync import catalogue_ids
from nxs.config import Settings
from nxs.gateway.auth import Authenticator
from nxs.gateway.billing_setup import start_billing
from nxs.gateway.forward import UPSTREAM_ERRORS, Forwarder, open_session
from nxs.gateway.key_lookup import KeyLookup
from nxs.gateway.metering import Meter
from nxs.gateway.metrics import Metrics
from nxs.gateway.metrics_share import PUBLISH_SECONDS, SharedMetrics
from nxs.gateway.outstanding import Outstanding
from nxs.gateway.pool import KeyPool, PoolKey
from nxs.gateway.proxy import QUEUE_HOST, REST_HOSTS, RUN_HOST
from nxs.gateway.queue import QueueBook
from nxs.gateway.realtime import RealtimeBridge
from nxs.gateway.realtime_meter import RealtimeBilling
from nxs.gateway.routes import Router
from nxs.gateway.scheduler import RunQueue, SharedSlots
from nxs.gateway.shared_cooldowns import SYNC_SECONDS, SharedCooldowns
from nxs.gateway.webhooks import Webhooks
from nxs.state.backends import open_state
from nxs.state.interface import State
from nxs.state.leases import queued_lease_seconds, run_lease_seconds
from nxs.state.memory import InProcessState
from nxs.store import claims
from nxs.store.database import parse_url
from nxs.store.models import KeyGrant, UpstreamKey
from nxs.store.notices import VersionListener
from nxs.store.offload import Offload
from nxs.store.store import Store

LOG = logging.getLogger("nxs.gateway")
HOSTS: Final = (RUN_HOST, QUEUE_HOST, *sorted(REST_HOSTS))
# A cheap authenticated call: a locked account gets 403, a working one 404 (no such id).
PROBE_PATH: Final = "fal-ai/any-model/requests/00000000-0000-0000-0000-000000000000/status"
Snapshot = tuple[dict[str, KeyGrant], list[UpstreamKey], BillingSnapshot | None, list[str]]
PROBE_JOB: Final = "probe-suspended-keys"  # one prober per cluster (a job lease)
NOTE_SECONDS: Final = 5.0  # a key's same last error is written to the store this often
SWEEP_SECONDS: Final = 5.0


@dataclass
class Services:
    """Everything a request handler uses, built once per worker process."""

    settings: Settings
    store: Store
    session: aiohttp.ClientSession
    router: Router
    auth: Authenticator
    pool: KeyPool
    book: QueueBook
    metrics: Metrics
    shared_metrics: SharedMetrics  # /metrics: the sum over this replica's workers
    forwarder: Forwarder
    outstanding: Outstanding  # queued requests per upstream key, not yet finished at fal
    offload: Offload  # the store calls of this worker: inline on SQLite, threads on PostgreSQL
    webhooks: Webhooks = field(init=False)  # relay; `webhooks.completions` settles
    realtime: RealtimeBridge = field(init=False)  # `realtime.meter` counts sessions
    meter: Meter = field(init=False)  # billing: plans, limits, ledger (gateway/metering.py)
    state: State = field(init=False)  # limits shared by workers and replicas (nxs.state)
    hosts: tuple[str, ...] = HOSTS
    store_ok: bool = True
    version: int = -1
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    holder: str = field(default_factory=claims.holder_id)  # this process, in job leases
    listener: VersionListener | None = None  # PostgreSQL's change notices
    _noticed_poll: asyncio.Task[None] | None = None
    _noted: dict[str, tuple[str, float]] = field(default_factory=dict)

    @classmethod
    def start(cls, settings: Settings) -> Services:
        """Open the store and the session, load the snapshot, start the background loops."""
        store = Store.open(settings)
        store.database.offload_checkpoints()  # commits run on the event loop
        session = open_session(settings)
        offload = Offload(store.database, settings.database_pool_size)
        pool = KeyPool(lambda *state: offload.spawn(store.set_upstream_state, *state))
        metrics = Metrics()
        find = lambda key_hash: offload.call(store.find_grant, key_hash)  # noqa: E731
        lookup = KeyLookup(find, metrics.key_lookups)
        services = cls(
            settings=settings,
            store=store,
            session=session,
            router=Router(settings.known_owners),
            auth=Authenticator(store.key_hash, lookup),
            pool=pool,
            book=QueueBook(store, offload),
            offload=offload,
            metrics=metrics,
            shared_metrics=SharedMetrics(metrics, settings.metrics_dir),
            forwarder=Forwarder(
                session, pool, metrics, RunQueue(pool, settings.run_wait_seconds, metrics)
            ),
            outstanding=Outstanding(pool, queued_lease_seconds()),
        )
        pool.on_note = services.note
        services.webhooks = Webhooks(settings, store, session, offload)
        services.webhooks.on_finished = services.outstanding.finished
        services.realtime = RealtimeBridge.open(
            settings, session, pool, services.auth, services.router, services.webhooks.signing_key
        )
        services.state = shared_state(settings)
        services.meter = Meter(
            store.database,
            settings.billing,
            settings.reconcile_after_seconds,
            limiter=services.state,
            run_lease=run_lease_seconds(settings.upstream_timeout_seconds),
            offload=offload,
        )
        if services.meter.enabled:
            services.realtime.meter = RealtimeBilling(services.meter)
        services.refresh()
        lookup.on_found = services.poll  # a new key: catch up with what came before it
        services.tasks = [
            asyncio.create_task(services._every(settings.refresh_seconds, services.poll)),
            asyncio.create_task(services._every(settings.probe_seconds, services.probe)),
            asyncio.create_task(services._every(PUBLISH_SECONDS, services.publish_metrics)),
            asyncio.create_task(services._every(SWEEP_SECONDS, services.outstanding.sweep)),
        ]
        if not isinstance(services.state, InProcessState):  # other workers see this one's 429s
            run_lease = run_lease_seconds(settings.upstream_timeout_seconds)
            services.forwarder.runs.shared = SharedSlots(services.state, run_lease)
            services.outstanding.shared = services.state
            cooldowns = SharedCooldowns(services.state, pool)
            cooldowns.attach()
            sync = services._every(SYNC_SECONDS, cooldowns.sync)
            services.tasks.append(asyncio.create_task(sync))
        services.listen(settings)
        start_billing(services)
        return services

    def listen(self, settings: Settings) -> None:
        """On PostgreSQL, reload as soon as a change is committed (`store/notices.py`); the
        version poll remains the fallback."""
        if parse_url(settings.database_url).scheme != "postgresql":
            return
        loop = asyncio.get_running_loop()
        listener = VersionListener(
            settings.database_url, lambda: loop.call_soon_threadsafe(self._noticed)
        )
        listener.start()
        self.listener = listener

    def _noticed(self) -> None:
        """A change notice: one reload at a time (notices meanwhile are covered by it)."""
        if self._noticed_poll is None or self._noticed_poll.done():
            self._noticed_poll = asyncio.create_task(self.poll())

    async def stop(self) -> None:
        if self.listener is not None:
            await asyncio.to_thread(self.listener.stop)
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.forwarder.runs.close()
        await self.webhooks.stop()
        await self.meter.stop()
        await self.state.close()
        await self.session.close()
        self.offload.close()
        self.store.close()

    def note(self, key_id: str, error: str) -> None:
        """Keep a key's last error in the store (off the event loop; the same error at
        most every `NOTE_SECONDS`, so a burst of 429s costs one write)."""
        now = time.monotonic()
        last = self._noted.get(key_id)
        if last is not None and last[0] == error and now - last[1] < NOTE_SECONDS:
            return
        self._noted[key_id] = (error, now)
        self.offload.spawn(self.store.note_upstream_error, key_id, error, time.time())

    def live(self, key_id: str) -> dict[str, float | int] | None:
        """An upstream key as this worker's pool sees it (the admin API shows it)."""
        entry = self.pool.get(key_id)
        if entry is None:
            return None
        now = time.monotonic()
        return {
            "limit": entry.limit(now),
            "in_flight": entry.running,
            "outstanding": entry.outstanding,
            "cooldown_seconds": round(entry.cooldown_left(now), 3),
        }

    def publish_metrics(self) -> None:
        """Hand this worker's counters to the replica's /metrics (`metrics_share`)."""
        self.shared_metrics.publish(self.pool)

    async def _every(self, seconds: float, action: Callable[[], object]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                result = action()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                LOG.exception("background task failed")

    def refresh(self) -> None:
        """Load keys, pool and billing now, at startup (before the event loop serves)."""
        try:
            version = self.store.version()
            if version != self.version:
                self._apply(version, self._read())
        except Exception:
            self._store_failed()
            return
        self.store_ok = True

    async def poll(self) -> None:
        """Reload when the store's version moved (a CLI or admin change), its reads off the
        event loop (`Offload`): every `refresh_seconds`, and when a key the snapshot lacked
        was found in the store (what was set up before it comes with it)."""
        try:
            version = await self.offload.call(self.store.version)
            if version != self.version:
                self._apply(version, await self.offload.call(self._read))
        except Exception:
            self._store_failed()
            return
        self.store_ok = True

    def _read(self) -> Snapshot:
        catalogue = catalogue_ids(self.store.database)  # fal's endpoint ids (`nxs models sync`)
        return (
            self.store.grants(),
            self.store.upstream_keys(),
            self.meter.read_snapshot(),
            catalogue,
        )

    def _apply(self, version: int, snapshot: Snapshot) -> None:
        if version <= self.version:  # an overlapping reload read an older state: keep ours
            return
        grants, upstream_keys, billing, catalogue = snapshot
        self.auth.load(grants)
        self.pool.load(upstream_keys)
        self.meter.reload(billing)
        self.router.index.load(catalogue)
        self.version = version

    def _store_failed(self) -> None:
        if self.store_ok:
            LOG.exception("store unreachable")
        self.store_ok = False

    async def probe(self) -> None:
        """Ask fal about each suspended key; resume it once it no longer answers 403.
        One worker of the cluster probes (it holds the job's lease); a resumed or invalid
        key reaches the others through the store."""
        suspended = self.pool.suspended()
        if not suspended:
            return
        lease = 3 * self.settings.probe_seconds
        args = (self.store.database, PROBE_JOB, self.holder, lease)
        if not await asyncio.to_thread(claims.hold_lease, *args):
            return
        for entry in suspended:
            await self._probe(entry)

    async def _probe(self, entry: PoolKey) -> None:
        url = URL(f"{self.settings.upstream_base(QUEUE_HOST)}/{PROBE_PATH}", encoded=True)
        headers = {"authorization": entry.authorization}
        try:
            async with self.session.get(url, headers=headers, allow_redirects=False) as response:
                status = response.status
        except UPSTREAM_ERRORS:
            return
        if status == 401:
            self.pool.mark(entry, "invalid", "fal answered 401 to a probe")
        elif status != 403:
            self.pool.mark(entry, "active", f"probe answered {status}: resumed")


def shared_state(settings: Settings) -> State:
    """The limits backend of this worker, chosen by `nxs.state.backends`."""
    url = parse_url(settings.database_url)
    sqlite = url.scheme == "sqlite"
    return open_state(
        settings, sqlite_file=url.path if sqlite else None, network_database=not sqlite
    )
