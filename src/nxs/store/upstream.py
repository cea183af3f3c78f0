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

MAX_CONCURRENCY = 10_000
DEFAULT_CONCURRENCY = 2  # fal's starting limit for a new account
MAX_ERROR_LENGTH = 300

SELECT = """SELECT id, name, secret_ciphertext, weight, state, state_reason, created_at,
            concurrency, last_error, last_error_at FROM upstream_keys"""


def add(
    database: Database,
    box: SecretBox,
    name: str,
    secret: str,
    weight: int,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> UpstreamKey:
    validate_name("upstream key", name)
    secret = _validate_secret(secret)
    validate_weight(weight)
    validate_concurrency(concurrency)
    if find(database, box, name) is not None:
        raise Conflict(f"Upstream key '{name}' already exists")
    created = now()
    key = UpstreamKey(new_id("up"), name, secret, weight, "active", None, created, concurrency)
    try:
        database.execute(
            "INSERT INTO upstream_keys (id, name, secret_ciphertext, weight, state,"
            " state_reason, created_at, updated_at, concurrency)"
            " VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?)",
            (key.id, name, box.seal(secret), weight, key.state, created, created, concurrency),
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


def validate_weight(weight: object) -> None:
    if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= MAX_WEIGHT:
        raise BadRequest(f"Invalid weight {weight!r}: use a whole number from 1 to {MAX_WEIGHT}")


def validate_concurrency(concurrency: object) -> None:
    if (
        isinstance(concurrency, bool)
        or not isinstance(concurrency, int)
        or not 1 <= concurrency <= MAX_CONCURRENCY
    ):
        raise BadRequest(
            f"Invalid concurrency {concurrency!r}: use a whole number from 1 to {MAX_CONCURRENCY}"
        )


def update(
    database: Database,
    box: SecretBox,
    name: str,
    *,
    weight: int | None = None,
    concurrency: int | None = None,
) -> UpstreamKey:
    """Change a key's weight and/or concurrency (None: kept)."""
    key = get(database, box, name)
    if weight is not None:
        validate_weight(weight)
    if concurrency is not None:
        validate_concurrency(concurrency)
    weight = key.weight if weight is None else weight
    concurrency = key.concurrency if concurrency is None else concurrency
    database.execute(
        "UPDATE upstream_keys SET weight = ?, concurrency = ?, updated_at = ? WHERE id = ?",
        (weight, concurrency, now(), key.id),
    )
    return get(database, box, name)


def note_error(database: Database, key_id: str, error: str, at: float) -> None:
    """Remember a key's last error and when (no version bump: nothing to reload)."""
    database.execute(
        "UPDATE upstream_keys SET last_error = ?, last_error_at = ? WHERE id = ?",
        (error[:MAX_ERROR_LENGTH], at, key_id),
    )


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
        concurrency=row["concurrency"],
        last_error=row["last_error"],
        last_error_at=row["last_error_at"],
    )
