"""Starting billing inside the gateway's services: the ledger writer, the webhook
settlement hook, and the reconciler loop (every `RECONCILE_SECONDS`, bounded, restart-safe).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from nxs.billing.ledger import Entry
from nxs.billing.reconciler import Reconciler
from nxs.billing.settle import Outcome
from nxs.gateway.completions import PoolUpstream, finish, webhook_seen
from nxs.gateway.metering import Meter
from nxs.gateway.proxy import QUEUE_HOST
from nxs.relay import Completion

if TYPE_CHECKING:
    from nxs.gateway.services import Services

LOG = logging.getLogger("nxs.billing")
RECONCILE_SECONDS: Final = 1.0


class WebhookSettlement:
    """The relay's completion hook: a verified fal webhook settles its request."""

    def __init__(self, meter: Meter) -> None:
        self._meter = meter

    async def __call__(self, completion: Completion) -> None:
        await webhook_seen(self._meter, completion.request_id, completion.body)


def start_billing(services: Services) -> None:
    """Start the writer, hook webhook completions, and run the reconciler in the background."""
    meter = services.meter
    meter.start()
    if not meter.enabled:
        return
    services.webhooks.completions = WebhookSettlement(meter)
    upstream = PoolUpstream(
        services.session, services.pool, services.settings.upstream_base(QUEUE_HOST)
    )

    async def settle(
        entry: Entry, outcome: Outcome, headers: Mapping[str, str], body: object
    ) -> bool:
        return await finish(meter, entry, outcome, headers, body)

    settings = services.settings
    reconciler = Reconciler(
        meter.db,
        upstream,
        settle,
        first_backoff=settings.reconcile_backoff_seconds,
        max_checks=settings.reconcile_max_checks,
        reservation_ttl=settings.reservation_ttl_seconds,
    )
    figures = services.metrics.figures
    services.tasks.append(asyncio.create_task(_reconcile(reconciler, meter, figures)))


async def _reconcile(reconciler: Reconciler, meter: Meter, figures: Counter[str]) -> None:
    """Every RECONCILE_SECONDS: sweep, then a reconciler round (counted for /metrics)."""
    while True:
        await asyncio.sleep(RECONCILE_SECONDS)
        try:
            meter.sweep()
            figures["nxs_reconciler_rows_checked_total"] += await reconciler.tick()
        except Exception:
            figures["nxs_reconciler_failures_total"] += 1
            LOG.exception("reconciler tick failed")
