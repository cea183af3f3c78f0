"""fal's Platform API query parameters, read strictly: id lists (comma-separated or
repeated, 1–50), ISO dates and times (`start` inclusive, `end` exclusive), time zones,
timeframes, `expand`, `limit` and page-number cursors (base64 of the page, like fal's
`Mg==`). Anything else is a `BadRequest` naming the parameter: fal's 400 validation_error.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final, cast
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nxs.errors import BadRequest
from nxs.isotime import iso_moment
from nxs.platform.queries import (
    TIMEFRAMES,
    Timeframe,
    Window,
    bucket_start,
    next_bucket,
)

MAX_IDS: Final = 50
MAX_VALUE_LENGTH: Final = 512
DEFAULT_SPAN: Final = timedelta(hours=24)
EARLIEST: Final = datetime(1970, 1, 2, tzinfo=UTC)
LATEST: Final = datetime(3000, 1, 1, tzinfo=UTC)
_AUTO_TIMEFRAMES: Final = (
    (timedelta(hours=2), "minute"),
    (timedelta(days=2), "hour"),
    (timedelta(days=64), "day"),
    (timedelta(days=183), "week"),
)


class Query:
    """The parameters of one request: name → every value given."""

    def __init__(self, query_string: str) -> None:
        try:
            self.values = parse_qs(query_string, keep_blank_values=True, strict_parsing=False)
        except ValueError as exc:
            raise BadRequest("Malformed query string") from exc

    def all(self, name: str) -> list[str]:
        values = self.values.get(name, [])
        if any(len(value) > MAX_VALUE_LENGTH for value in values):
            raise BadRequest(f"{name} is too long")
        return values

    def one(self, name: str) -> str | None:
        """The parameter's single value (None when absent); given twice is an error."""
        values = self.all(name)
        if len(values) > 1:
            raise BadRequest(f"{name} may be given only once")
        return values[0] if values else None

    def ids(self, name: str, *, required: bool = False) -> tuple[str, ...]:
        """1–50 ids, comma-separated or repeated, in order, without duplicates."""
        items = [item.strip() for value in self.all(name) for item in value.split(",")]
        if any(not item for item in items):
            raise BadRequest(f"{name} must not contain empty values")
        ids = tuple(dict.fromkeys(items))
        if required and not ids:
            raise BadRequest(f"{name} is required")
        if len(ids) > MAX_IDS:
            raise BadRequest(f"{name} accepts at most {MAX_IDS} values")
        return ids

    def choices(self, name: str, allowed: Iterable[str], default: Iterable[str]) -> set[str]:
        """`expand`-style values (comma-separated or repeated), each one of `allowed`."""
        given = self.ids(name)
        known = tuple(allowed)
        for value in given:
            if value not in known:
                raise BadRequest(f"{name} must be among {', '.join(known)}, got {value!r}")
        return set(given) if given else set(default)

    def choice(self, name: str, allowed: Iterable[str], default: str | None) -> str | None:
        value = self.one(name)
        known = tuple(allowed)
        if value is None:
            return default
        if value not in known:
            raise BadRequest(f"{name} must be one of {', '.join(known)}")
        return value

    def limit(self, default: int, maximum: int) -> int:
        value = self.one("limit")
        if value is None:
            return default
        if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= maximum:
            raise BadRequest(f"limit must be a whole number from 1 to {maximum}")
        return int(value)

    def page(self) -> int:
        """The page a `cursor` names (1 without one)."""
        cursor = self.one("cursor")
        if cursor is None:
            return 1
        try:
            text = base64.b64decode(cursor.encode("ascii"), validate=True).decode("ascii")
        except (binascii.Error, UnicodeError, ValueError) as exc:
            raise BadRequest("cursor is not a cursor this API returned") from exc
        if not (text.isdigit() and 1 <= int(text) <= 1_000_000):
            raise BadRequest("cursor is not a cursor this API returned")
        return int(text)

    def window(self, now: datetime, max_span: timedelta | None = None) -> Window:
        """`start` (default 24 h before `end`) to `end` (default now), exclusive."""
        end = self.moment("end") or now
        start = self.moment("start") or end - DEFAULT_SPAN
        if start >= end:
            raise BadRequest("start must be before end")
        if max_span is not None and end - start > max_span:
            raise BadRequest(f"the date range may span at most {max_span.days} days")
        return Window(start, end)

    def moment(self, name: str) -> datetime | None:
        """An ISO 8601 date (midnight UTC) or date-time (UTC when it names no offset)."""
        value = self.one(name)
        if value is None:
            return None
        try:
            when = iso_moment(value)
        except ValueError as exc:
            raise BadRequest(f"{name} must be an ISO 8601 date or date-time") from exc
        if not EARLIEST <= when < LATEST:  # room for a day's span and a bucket's bounds
            raise BadRequest(f"{name} must be between 1970-01-02 and 2999-12-31")
        return when

    def zone(self) -> tzinfo:
        value = self.one("timezone")
        if value is None or value == "UTC":
            return UTC
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise BadRequest(f"timezone {value[:64]!r} is not a known time zone") from exc

    def flag(self, name: str, default: bool) -> bool:
        value = self.choice(name, ("true", "false"), "true" if default else "false")
        return value == "true"


def auto_timeframe(window: Window) -> Timeframe:
    """fal's rule: minute (< 2 h), hour (< 2 d), day (< 64 d), week (< 183 d), month."""
    span = window.end - window.start
    for bound, timeframe in _AUTO_TIMEFRAMES:
        if span < bound:
            return cast(Timeframe, timeframe)
    return "month"


def timeframe_of(query: Query, window: Window) -> Timeframe:
    value = query.choice("timeframe", TIMEFRAMES, None)
    return cast(Timeframe, value) if value is not None else auto_timeframe(window)


def bound(window: Window, timeframe: Timeframe, zone: tzinfo) -> Window:
    """The window widened to whole buckets (fal's `bound_to_timeframe=true`)."""
    start = bucket_start(window.start.astimezone(zone), timeframe)
    last = bucket_start(window.end.astimezone(zone), timeframe)
    end = last if last == window.end else next_bucket(last, timeframe)
    return Window(start.astimezone(UTC), end.astimezone(UTC))


def cursor_of(page: int) -> str:
    """The cursor naming page `page`."""
    return base64.b64encode(str(page).encode("ascii")).decode("ascii")
