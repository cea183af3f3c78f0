"""Reading an ISO 8601 date or date-time as people and fal's APIs write them in query
strings: a date means its midnight UTC, a date-time without an offset is UTC, `Z` is UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime


def iso_moment(text: str) -> datetime:
    """`2026-11-01` or `2026-11-01T12:00:00Z` as an aware datetime; ValueError if neither."""
    value = text.strip()
    if len(value) == 10:
        day = date.fromisoformat(value)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
