"""A customer's own `nxs_` keys, as the customer manages them: list, make with an alias
(the secret returned once), revoke. Scoped by customer id: another customer's key is
`NotFound`, exactly like an unknown one. Each write bumps the store version, so gateways
pick it up at once (a revoked key stops working within a refresh)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from nxs.errors import BadRequest, NotFound, ValidationFailed
from nxs.platform.queries import moment
from nxs.store import keys
from nxs.store.database import Database, Row
from nxs.store.ids import now
from nxs.store.models import Customer
from nxs.store.notices import bump_version

ALIAS_MAX_LENGTH: Final = 255
MAX_ACTIVE_KEYS: Final = 50  # each key made or revoked makes every worker reload its keys
_SELECT: Final = "SELECT id, alias, prefix, created_at, revoked_at FROM api_keys"


@dataclass(frozen=True)
class CustomerKey:
    id: str
    alias: str  # the prefix for keys made without one (CLI, admin API)
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


def parse_alias(value: object) -> str:
    """fal's alias: a string of 1–255 printable characters (trimmed)."""
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > ALIAS_MAX_LENGTH or not text.isprintable():
        loc = ["body", "alias"]
        message = f"alias must be 1-{ALIAS_MAX_LENGTH} printable characters"
        raise ValidationFailed([{"loc": loc, "msg": message, "type": "value_error"}])
    return text


def list_customer_keys(
    db: Database, customer_id: str, include_revoked: bool = False
) -> list[CustomerKey]:
    """The customer's keys, oldest first (revoked ones only when asked)."""
    sql = _SELECT + " WHERE customer_id = ?"
    if not include_revoked:
        sql += " AND revoked_at IS NULL"
    rows = db.fetch_all(sql + " ORDER BY created_at, id", (customer_id,))
    return [_key(row) for row in rows]


def create_customer_key(db: Database, customer: Customer, alias: str) -> tuple[CustomerKey, str]:
    """A new key for the customer with `alias` (`parse_alias`d): its record and plaintext;
    `BadRequest` once it has `MAX_ACTIVE_KEYS`."""
    with db.transaction():
        active = db.fetch_one(
            "SELECT COUNT(*) AS n FROM api_keys WHERE customer_id = ? AND revoked_at IS NULL",
            (customer.id,),
        )
        if active is not None and int(active["n"]) >= MAX_ACTIVE_KEYS:
            raise BadRequest(f"At most {MAX_ACTIVE_KEYS} active keys: revoke one first")
        record, plaintext = keys.create(db, customer)
        db.execute("UPDATE api_keys SET alias = ? WHERE id = ?", (alias, record.id))
        bump_version(db)
    key = CustomerKey(record.id, alias, record.prefix, moment(record.created_at), None)
    return key, plaintext


def revoke_customer_key(db: Database, customer_id: str, key_id: str) -> bool:
    """Revoke the customer's key; True if it was revoked now, False if it already was.
    `NotFound` for a key that is not the customer's."""
    with db.transaction():
        changed = db.execute(
            "UPDATE api_keys SET revoked_at = ?"
            " WHERE id = ? AND customer_id = ? AND revoked_at IS NULL",
            (now(), key_id, customer_id),
        )
        if changed:
            bump_version(db)
            return True
    if not key_ids_owned(db, customer_id, [key_id]):
        raise NotFound(f"Key '{key_id}' not found")
    return False


def key_ids_owned(db: Database, customer_id: str, key_ids: Sequence[str]) -> set[str]:
    """Which of `key_ids` are the customer's (revoked or not)."""
    if not key_ids:
        return set()
    marks = ", ".join("?" for _ in key_ids)
    rows = db.fetch_all(
        f"SELECT id FROM api_keys WHERE customer_id = ? AND id IN ({marks})",
        [customer_id, *key_ids],
    )
    return {str(row["id"]) for row in rows}


def key_labels(db: Database, customer_id: str) -> dict[str, str]:
    """Key id → its alias (or prefix): fal's `auth_method` label."""
    return {key.id: key.alias for key in list_customer_keys(db, customer_id, True)}


def _key(row: Row) -> CustomerKey:
    revoked = row["revoked_at"]
    return CustomerKey(
        id=row["id"],
        alias=row["alias"] or row["prefix"],
        prefix=row["prefix"],
        created_at=moment(float(row["created_at"])),
        revoked_at=moment(float(revoked)) if revoked is not None else None,
    )
