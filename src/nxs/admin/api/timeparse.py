"""Reading the dates operators pass in query strings (`?since=2026-11-01`).

A date means its midnight UTC; a date-time without a zone is UTC. A malformed value is
a 422 naming the query parameter, like every other bad input.
"""

from __future__ import annotations

from nxs.errors import ValidationFailed
from nxs.isotime import iso_moment


def parse_instant(text: str, name: str) -> float:
    """Seconds since the epoch for `2026-11-01` or `2026-11-01T12:00:00Z`."""
    try:
        return iso_moment(text).timestamp()
    except ValueError as error:
        message = "must be a date like 2026-11-01"
        problem = {"loc": ["query", name], "msg": message, "type": "value_error"}
        raise ValidationFailed([problem]) from error
