"""`nxs models sync`: read fal's catalogue, `GET {api.fal.ai}/v1/models`, page by page.

Each page is fal's `{"models": [{"endpoint_id", "metadata": {…}}], "next_cursor",
"has_more"}`; the cursor of one page asks for the next. Asked with a pool key when there is
an active one (fal's model search needs none; a key raises its rate limits). The ids
replace the stored catalogue in one transaction that bumps the store version, so running
gateways resolve with it within `NXS_REFRESH_SECONDS`.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from nxs.errors import UpstreamFailed
from nxs.store.database import Database
from nxs.store.notices import bump_version
from nxs.store.store import Store

PLATFORM_HOST: Final = "api.fal.ai"
PAGE_SIZE: Final = 100
MAX_PAGES: Final = 1000  # a cursor that never ends is fal's bug, not a reason to loop
TIMEOUT_SECONDS: Final = 30.0
Fetch = Callable[[str, str | None], Any]


@dataclass(frozen=True)
class CatalogueEntry:
    endpoint: str
    category: str
    status: str


@dataclass(frozen=True)
class SyncReport:
    endpoints: int
    owners: int
    pages: int


def sync_catalogue(store: Store, base_url: str, fetch: Fetch | None = None) -> SyncReport:
    """Read every page of fal's catalogue at `base_url` and store its endpoint ids."""
    get = fetch or get_json
    secret = _pool_secret(store)
    entries: dict[str, CatalogueEntry] = {}
    cursor: str | None = None
    pages = 0
    while pages < MAX_PAGES:
        query = {"limit": str(PAGE_SIZE), **({"cursor": cursor} if cursor else {})}
        body = get(f"{base_url}/v1/models?{urllib.parse.urlencode(query)}", secret)
        page, cursor = parse_page(body)
        pages += 1
        entries.update((entry.endpoint, entry) for entry in page)
        if cursor is None:
            break
    replace_catalogue(store.database, list(entries.values()))
    owners = {endpoint.split("/", 1)[0] for endpoint in entries}
    return SyncReport(len(entries), len(owners), pages)


def parse_page(body: Any) -> tuple[list[CatalogueEntry], str | None]:
    """One page's entries and the next page's cursor (None on the last page)."""
    models = body.get("models") if isinstance(body, dict) else None
    if not isinstance(models, list):
        raise UpstreamFailed("fal's model search answered without a models list")
    entries = [entry for entry in map(_entry, models) if entry is not None]
    cursor = body.get("next_cursor")
    more = body.get("has_more", cursor is not None)
    return entries, (str(cursor) if more and cursor else None)


def _entry(model: Any) -> CatalogueEntry | None:
    """An entry for a well-formed endpoint id (`owner/alias[/path]`), else None."""
    if not isinstance(model, dict):
        return None
    endpoint = model.get("endpoint_id")
    if not isinstance(endpoint, str) or "/" not in endpoint.strip("/") or " " in endpoint:
        return None
    found = model.get("metadata")
    metadata: dict[str, Any] = found if isinstance(found, dict) else {}
    category = str(metadata.get("category") or "")
    return CatalogueEntry(endpoint.strip("/"), category, str(metadata.get("status") or "active"))


def replace_catalogue(db: Database, entries: list[CatalogueEntry]) -> None:
    """The stored catalogue becomes `entries`, seen by every gateway at its next reload."""
    now = time.time()
    rows = [(entry.endpoint, entry.category, entry.status, now) for entry in entries]
    with db.transaction():
        db.execute("DELETE FROM fal_endpoints")
        if rows:
            db.execute_many(
                "INSERT INTO fal_endpoints (endpoint, category, status, synced_at)"
                " VALUES (?, ?, ?, ?)",
                rows,
            )
        bump_version(db)


def catalogue_ids(db: Database) -> list[str]:
    """Every stored endpoint id (the gateway's snapshot reads this on reload)."""
    return [str(row["endpoint"]) for row in db.fetch_all("SELECT endpoint FROM fal_endpoints")]


def list_catalogue(db: Database) -> list[CatalogueEntry]:
    rows = db.fetch_all("SELECT endpoint, category, status FROM fal_endpoints ORDER BY endpoint")
    return [CatalogueEntry(str(r["endpoint"]), str(r["category"]), str(r["status"])) for r in rows]


def _pool_secret(store: Store) -> str | None:
    for key in store.list_upstream():
        if key.state == "active":
            return key.secret
    return None


def get_json(url: str, secret: str | None) -> Any:
    """GET `url` as JSON; any failure is an `UpstreamFailed` naming fal's answer."""
    headers = {"Authorization": f"Key {secret}"} if secret else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            raw = response.read()
    except urllib.error.HTTPError as error:
        raise UpstreamFailed(f"fal's model search answered {error.code}") from error
    except (urllib.error.URLError, OSError) as error:
        raise UpstreamFailed(f"fal's model search is unreachable: {error}") from error
    try:
        return json.loads(raw)
    except ValueError as error:
        raise UpstreamFailed("fal's model search answered something that is not JSON") from error
