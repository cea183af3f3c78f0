"""How admin commands print records: aligned text tables, or JSON with `--json`.

Upstream keys are only ever printed masked; timestamps are ISO 8601 in UTC.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from nxs.store.models import ApiKey, Customer, UpstreamKey

Record = dict[str, Any]


def timestamp(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


def customer_record(customer: Customer) -> Record:
    return {
        "id": customer.id,
        "name": customer.name,
        "status": customer.status,
        "created_at": timestamp(customer.created_at),
    }


def key_record(key: ApiKey) -> Record:
    return {
        "id": key.id,
        "customer": key.customer_name,
        "customer_id": key.customer_id,
        "prefix": key.prefix,
        "status": "revoked" if key.revoked_at is not None else "active",
        "created_at": timestamp(key.created_at),
        "revoked_at": timestamp(key.revoked_at),
    }


def upstream_record(key: UpstreamKey) -> Record:
    return {
        "id": key.id,
        "name": key.name,
        "key": key.masked,
        "weight": key.weight,
        "concurrency": key.concurrency,
        "state": key.state,
        "reason": key.state_reason,
        "created_at": timestamp(key.created_at),
        "last_error": key.last_error,
        "last_error_at": None if key.last_error_at is None else timestamp(key.last_error_at),
    }


def render(records: Sequence[Record], columns: Sequence[str], *, as_json: bool) -> str:
    """All `records` as JSON, or as a table of `columns` (a header line first)."""
    if as_json:
        return json.dumps(list(records), indent=2, ensure_ascii=False)
    if not records:
        return "(none)"
    cells = [[_cell(record.get(column)) for column in columns] for record in records]
    header = [column.upper() for column in columns]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(columns))]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in [header, *cells]
    ]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)
