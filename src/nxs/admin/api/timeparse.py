"""Reading the dates operators pass in query strings (`?since=2026-11-01`).

A date means its midnight UTC; a date-time without a zone is UTC. A malformed value is
a 422 naming the query parameter, like every other bad input.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from nxs.errors import ValidationFailed


def parse_instant(text: str, name: str) -> float:
    """Seconds since the epoch for `2026-11-01` or `2026-11-01T12:00:00Z`."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        message = "must be a date like 2026-11-01"
        problem = {"loc": ["query", name], "msg": message, "type": "value_error"}
        raise ValidationFailed([problem]) from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
