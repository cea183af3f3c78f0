"""Customers' `nxs_` API keys: generation, hashing, listing, revocation, grants.

A key is `nxs_` + 40 URL-safe random characters, shown once at creation; the database
keeps only its SHA-256 hex digest and a short prefix for recognising it in listings.
`grants` is the hot-path snapshot: key hash → who it authenticates, revoked keys left out;
`find_grant` is one key of it, read by hash through the unique index (a snapshot miss).
"""

from __future__ import annotations

import hashlib
import re
import secrets

from nxs.errors import NotFound
from nxs.store.database import Database, Row
from nxs.store.ids import new_id, now
from nxs.store.models import ApiKey, Customer, KeyGrant

KEY_PREFIX = "nxs_"
RANDOM_BYTES = 30  # → 40 URL-safe characters
SHOWN_PREFIX_LENGTH = len(KEY_PREFIX) + 6
SHAPE = re.compile(r"nxs_[A-Za-z0-9_-]{40}")  # what `generate` makes

SELECT = """
    SELECT k.id, k.customer_id, c.name AS customer_name, k.prefix, k.created_at, k.revoked_at
    FROM api_keys k JOIN customers c ON c.id = k.customer_id
"""


def generate() -> str:
    """A new plaintext customer key."""
    return KEY_PREFIX + secrets.token_urlsafe(RANDOM_BYTES)


def well_formed(plaintext: str) -> bool:
    """Whether the text could be a key `generate` made (its length and alphabet)."""
    return SHAPE.fullmatch(plaintext) is not None


def key_hash(plaintext: str) -> str:
    """What is stored and looked up: the SHA-256 hex digest of the whole key."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create(database: Database, customer: Customer) -> tuple[ApiKey, str]:
    plaintext = generate()
    record = ApiKey(
        id=new_id("key"),
        customer_id=customer.id,
        customer_name=customer.name,
        prefix=plaintext[:SHOWN_PREFIX_LENGTH],
        created_at=now(),
        revoked_at=None,
    )
    database.execute(
        "INSERT INTO api_keys (id, customer_id, key_hash, prefix, created_at, revoked_at)"
        " VALUES (?, ?, ?, ?, ?, NULL)",
        (record.id, customer.id, key_hash(plaintext), record.prefix, record.created_at),
    )
    return record, plaintext


def get(database: Database, key_id: str) -> ApiKey:
    row = database.fetch_one(SELECT + " WHERE k.id = ?", (key_id,))
    if row is None:
        raise NotFound(f"Key '{key_id}' not found")
    return _api_key(row)


def list_keys(database: Database, customer: Customer | None) -> list[ApiKey]:
    if customer is None:
        rows = database.fetch_all(SELECT + " ORDER BY c.name, k.created_at, k.id")
    else:
        query = SELECT + " WHERE k.customer_id = ? ORDER BY k.created_at, k.id"
        rows = database.fetch_all(query, (customer.id,))
    return [_api_key(row) for row in rows]


def revoke(database: Database, key_id: str) -> tuple[ApiKey, bool]:
    """The revoked key, and whether it was revoked just now (False: it already was)."""
    record = get(database, key_id)
    if record.revoked_at is not None:
        return record, False
    database.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (now(), key_id))
    return get(database, key_id), True


GRANT_SELECT = """
    SELECT k.key_hash, k.id, k.customer_id, c.name, c.status
    FROM api_keys k JOIN customers c ON c.id = k.customer_id
    WHERE k.revoked_at IS NULL
"""


def grants(database: Database) -> dict[str, KeyGrant]:
    return {row["key_hash"]: _grant(row) for row in database.fetch_all(GRANT_SELECT)}


def find_grant(database: Database, hashed: str) -> KeyGrant | None:
    """The grant of the key with this hash, or None if there is none or it is revoked."""
    row = database.fetch_one(GRANT_SELECT + " AND k.key_hash = ?", (hashed,))
    return None if row is None else _grant(row)


def _grant(row: Row) -> KeyGrant:
    return KeyGrant(
        key_id=row["id"],
        customer_id=row["customer_id"],
        customer_name=row["name"],
        customer_active=row["status"] == "active",
    )


def _api_key(row: Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        customer_id=row["customer_id"],
        customer_name=row["customer_name"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )
