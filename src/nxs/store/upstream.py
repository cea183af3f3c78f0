"""Upstream fal keys of the pool: added, listed, removed, and their health state.

Secrets are sealed by a `SecretBox` before they reach the database and opened when
read; everything handed out is an `UpstreamKey` (whose repr and `masked` hide the
secret). States: active, invalid (fal said 401), suspended (fal said 403 locked).
"""

from __future__ import annotations

from typing import get_args

from nxs.errors import BadRequest, Conflict, NotFound
from nxs.store.crypto import SecretBox
from nxs.store.database import Database, IntegrityViolation, Row
from nxs.store.ids import new_id, now, validate_name
from nxs.store.models import UpstreamKey, UpstreamState

STATES: tuple[str, ...] = get_args(UpstreamState)
MAX_WEIGHT = 1000
MAX_SECRET_LENGTH = 4096

SELECT = """SELECT id, name, secret_ciphertext, weight, state, state_reason, created_at
            FROM upstream_keys"""


def add(database: Database, box: SecretBox, name: str, secret: str, weight: int) -> UpstreamKey:
    validate_name("upstream key", name)
    secret = _validate_secret(secret)
    if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= MAX_WEIGHT:
        raise BadRequest(f"Invalid weight {weight!r}: use a whole number from 1 to {MAX_WEIGHT}")
    if find(database, box, name) is not None:
        raise Conflict(f"Upstream key '{name}' already exists")
    created = now()
    key = UpstreamKey(new_id("up"), name, secret, weight, "active", None, created)
    try:
        database.execute(
            "INSERT INTO upstream_keys (id, name, secret_ciphertext, weight, state,"
            " state_reason, created_at, updated_at) VALUES (?, ?, ?, ?, ?, NULL, ?, ?)",
            (key.id, name, box.seal(secret), weight, key.state, created, created),
        )
    except IntegrityViolation as exc:
        raise Conflict(f"Upstream key '{name}' already exists") from exc
    return key


def find(database: Database, box: SecretBox, name: str) -> UpstreamKey | None:
    row = database.fetch_one(SELECT + " WHERE name = ?", (name,))
    return _upstream_key(row, box) if row else None


def get(database: Database, box: SecretBox, name: str) -> UpstreamKey:
    key = find(database, box, name)
    if key is None:
        raise NotFound(f"Upstream key '{name}' not found")
    return key


def list_all(database: Database, box: SecretBox) -> list[UpstreamKey]:
    rows = database.fetch_all(SELECT + " ORDER BY name")
    return [_upstream_key(row, box) for row in rows]


def remove(database: Database, box: SecretBox, name: str) -> UpstreamKey:
    key = get(database, box, name)
    database.execute("DELETE FROM upstream_keys WHERE id = ?", (key.id,))
    return key


def set_state(database: Database, key_id: str, state: UpstreamState, reason: str | None) -> bool:
    """Record a key's health; False if nothing changed (or the key is gone)."""
    if state not in STATES:
        raise BadRequest(f"Invalid upstream state {state!r}: use one of {', '.join(STATES)}")
    reason = None if state == "active" else reason
    row = database.fetch_one(
        "SELECT state, state_reason FROM upstream_keys WHERE id = ?", (key_id,)
    )
    if row is None or (row["state"], row["state_reason"]) == (state, reason):
        return False
    database.execute(
        "UPDATE upstream_keys SET state = ?, state_reason = ?, updated_at = ? WHERE id = ?",
        (state, reason, now(), key_id),
    )
    return True


def _validate_secret(secret: str) -> str:
    secret = secret.strip() if isinstance(secret, str) else ""
    if not secret:
        raise BadRequest("The upstream key is empty: pass the fal key on stdin")
    if len(secret) > MAX_SECRET_LENGTH or any(ch.isspace() for ch in secret):
        raise BadRequest("The upstream key must be one line without spaces")
    if not secret.isprintable():
        raise BadRequest("The upstream key contains unprintable characters")
    return secret


def _upstream_key(row: Row, box: SecretBox) -> UpstreamKey:
    return UpstreamKey(
        id=row["id"],
        name=row["name"],
        secret=box.open(row["secret_ciphertext"]),
        weight=row["weight"],
        state=row["state"],
        state_reason=row["state_reason"],
        created_at=row["created_at"],
    )
