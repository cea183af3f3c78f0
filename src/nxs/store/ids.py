"""Identifiers and names: record ids (`cus_…`, `key_…`, `up_…`) and the name rule.

Names of customers and upstream keys are what operators type: 1–64 characters from
letters, digits, `.`, `_` and `-`. Every entry point (CLI, later the admin API) gets the
same check because the store applies it.
"""

from __future__ import annotations

import re
import secrets
import time

from nxs.errors import BadRequest

NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")


def new_id(prefix: str) -> str:
    """`prefix_` followed by 12 random hex digits, e.g. `key_3f9a0c1d2e4b`."""
    return f"{prefix}_{secrets.token_hex(6)}"


def validate_name(kind: str, name: str) -> str:
    """`name` if it is a valid `kind` name, else BadRequest saying what is allowed."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise BadRequest(
            f"Invalid {kind} name {name!r}: use 1-64 characters among"
            " letters, digits, '.', '_' and '-'"
        )
    return name


def now() -> float:
    """The current time as stored: seconds since the epoch (UTC)."""
    return time.time()
