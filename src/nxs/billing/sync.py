"""`nxs pricing sync`: import fal's prices from `GET {api.fal.ai}/v1/models/pricing`.

fal's API wants the endpoint ids (1–50 per call): those named, else every endpoint already
priced or seen in the ledger. Asked with a pool key (the first active one), parsed by
`nxs.billing.pricing.parse_pricing_body`; rows an operator set by hand are kept, and the
unit fal bills each endpoint in is remembered either way (see `PriceRule.header_units`).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from nxs.billing.catalog import import_prices, remember_fal_units
from nxs.billing.errors import PricingResponseInvalid
from nxs.billing.pricing import PriceRule, parse_pricing_body
from nxs.config import Settings
from nxs.errors import BadRequest, NoUpstreamKeys, UpstreamFailed
from nxs.store.database import Database
from nxs.store.store import Store

PLATFORM_HOST: Final = "api.fal.ai"
BATCH: Final = 50  # fal's limit of endpoint ids per call
TIMEOUT_SECONDS: Final = 30.0
Fetch = Callable[[str, str], Any]


@dataclass(frozen=True)
class SyncReport:
    imported: int
    skipped: tuple[tuple[str, str], ...]


def sync_prices(
    settings: Settings, store: Store, endpoints: Sequence[str] = (), fetch: Fetch | None = None
) -> SyncReport:
    """Ask fal for the prices of `endpoints` (default: the known ones) and upsert them."""
    wanted = sorted(set(endpoints)) or known_endpoints(store.database)
    if not wanted:
        raise BadRequest(
            "No endpoints to price yet: name them, e.g. `nxs pricing sync fal-ai/flux/dev`"
        )
    secret = _pool_secret(store)
    base = f"{settings.upstream_base(PLATFORM_HOST)}/v1/models/pricing"
    get = fetch or _get_json
    rules: list[PriceRule] = []
    skipped: list[tuple[str, str]] = []
    fal_units: dict[str, str] = {}
    for start in range(0, len(wanted), BATCH):
        batch = wanted[start : start + BATCH]
        query = urllib.parse.urlencode({"endpoint_id": ",".join(batch)})
        body = get(f"{base}?{query}", secret)
        if body is None:  # 404: fal knows none of them
            skipped.extend((endpoint, "unknown to fal") for endpoint in batch)
            continue
        page = parse_pricing_body(body)
        rules.extend(page.rules)
        fal_units.update(page.fal_units)
        skipped.extend(page.skipped)
        answered = {rule.pattern for rule in page.rules} | {name for name, _ in page.skipped}
        if not page.has_more:  # (later pages are not fetched: fal prices ≤ 50 ids on one)
            skipped.extend((e, "no price from fal") for e in batch if e not in answered)
    with store.database.transaction():
        remember_fal_units(store.database, fal_units)
        import_prices(store.database, rules, "sync")
    return SyncReport(len(rules), tuple(skipped))


def known_endpoints(db: Database) -> list[str]:
    """Endpoint ids already priced (not globs) or seen in the ledger."""
    rows = db.fetch_all(
        "SELECT pattern AS endpoint FROM price_rules UNION SELECT DISTINCT endpoint FROM ledger"
    )
    found = {str(row["endpoint"]) for row in rows}
    return sorted(e for e in found if not any(char in e for char in "*?["))


def _pool_secret(store: Store) -> str:
    for key in store.list_upstream():
        if key.state == "active":
            return key.secret
    raise NoUpstreamKeys("No active upstream key to ask fal for prices: `nxs upstream add` one")


def _get_json(url: str, secret: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Key {secret}"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            raw = response.read()
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise UpstreamFailed(f"fal's pricing API answered {error.code}") from error
    except (urllib.error.URLError, OSError) as error:
        raise UpstreamFailed(f"fal's pricing API is unreachable: {error}") from error
    try:
        return json.loads(raw)
    except ValueError as error:
        raise PricingResponseInvalid("Upstream pricing response is not JSON") from error
