"""`Store`: the one object the gateway and the admin CLI hold for persistent state.

It opens the database named by the settings, applies migrations, loads the encryption
secret, and exposes the hot-path reads (version, grants, upstream keys, queued
requests) and the admin writes. Every write that gateways must see bumps `version()`
in the same transaction, so any process notices changes made by any other.
"""

from __future__ import annotations

from pathlib import Path

from nxs.config import Settings
from nxs.store import customers, keys, requests, upstream
from nxs.store.crypto import (
    SecretBox,
    SecretKeyError,
    check_secret,
    load_box,
    read_or_create_secret,
)
from nxs.store.database import Database, DatabaseUrl, parse_url
from nxs.store.migrations import migrate
from nxs.store.models import (
    ApiKey,
    Customer,
    CustomerStatus,
    KeyGrant,
    QueuedRequest,
    UpstreamKey,
    UpstreamState,
)
from nxs.store.notices import bump_version
from nxs.store.postgres import DEFAULT_POOL_SIZE, PostgresDatabase
from nxs.store.sqlite import BUSY_TIMEOUT_SECONDS, SqliteDatabase


class Store:
    """Customers, keys, upstream keys and queued requests, over one `Database`."""

    def __init__(self, database: Database, box: SecretBox) -> None:
        self._db = database
        self._box = box

    @classmethod
    def open(cls, settings: Settings) -> Store:
        """Connect to `settings.database_url`, migrate, and load the secret."""
        url = parse_url(settings.database_url)
        database = connect(url, settings.database_pool_size, settings.database_busy_seconds)
        try:
            migrate(database)
            box = _load_box(settings, url)
            check_secret(database, box)
        except BaseException:
            database.close()
            raise
        return cls(database, box)

    @property
    def database(self) -> Database:
        """The connection, for subsystems keeping their own tables here (e.g. billing)."""
        return self._db

    @property
    def box(self) -> SecretBox:
        """The secret box, for subsystems sealing their own secrets (the webhook relay)."""
        return self._box

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- hot path ---------------------------------------------------------------

    def version(self) -> int:
        """A number that grows on every change to customers, keys or upstream keys."""
        row = self._db.fetch_one("SELECT value FROM store_version WHERE id = 1")
        return int(row["value"]) if row else 0

    def grants(self) -> dict[str, KeyGrant]:
        """Key hash → grant, for every key not revoked."""
        return keys.grants(self._db)

    def find_grant(self, key_hash: str) -> KeyGrant | None:
        """One key's grant by hash (None: unknown or revoked): a single indexed read, for a
        key newer than the gateway's snapshot."""
        return keys.find_grant(self._db, key_hash)

    @staticmethod
    def key_hash(plaintext: str) -> str:
        return keys.key_hash(plaintext)

    def upstream_keys(self) -> list[UpstreamKey]:
        """Every upstream key, whatever its state, with its secret decrypted."""
        return upstream.list_all(self._db, self._box)

    def set_upstream_state(self, key_id: str, state: UpstreamState, reason: str | None) -> None:
        """Record an upstream key's health (a no-op if unchanged or if it was removed)."""
        with self._db.transaction():
            if upstream.set_state(self._db, key_id, state, reason):
                self._bump()

    def record_queued(self, request: QueuedRequest) -> None:
        """Bind a request id to its submitter; committed when this returns."""
        requests.record(self._db, request)

    def find_queued(self, request_id: str) -> QueuedRequest | None:
        return requests.find(self._db, request_id)

    # -- customers --------------------------------------------------------------

    def create_customer(self, name: str) -> Customer:
        with self._db.transaction():
            customer = customers.create(self._db, name)
            self._bump()
        return customer

    def set_customer_status(self, name: str, status: CustomerStatus) -> Customer:
        with self._db.transaction():
            customer, changed = customers.set_status(self._db, name, status)
            if changed:
                self._bump()
        return customer

    def get_customer(self, name: str) -> Customer:
        return customers.get(self._db, name)

    def list_customers(self) -> list[Customer]:
        return customers.list_all(self._db)

    # -- customer keys ----------------------------------------------------------

    def create_key(self, customer_name: str) -> tuple[ApiKey, str]:
        """A new key for the customer: its record and its plaintext (shown only once)."""
        with self._db.transaction():
            record, plaintext = keys.create(self._db, customers.get(self._db, customer_name))
            self._bump()
        return record, plaintext

    def list_keys(self, customer_name: str | None = None) -> list[ApiKey]:
        if customer_name is None:
            return keys.list_keys(self._db, None)
        return keys.list_keys(self._db, customers.get(self._db, customer_name))

    def get_key(self, key_id: str) -> ApiKey:
        return keys.get(self._db, key_id)

    def revoke_key(self, key_id: str) -> ApiKey:
        """Revoke a key (revoking it again changes nothing and is not an error)."""
        with self._db.transaction():
            record, changed = keys.revoke(self._db, key_id)
            if changed:
                self._bump()
        return record

    # -- upstream keys ----------------------------------------------------------

    def add_upstream(
        self, name: str, secret: str, weight: int = 1, concurrency: int = 2
    ) -> UpstreamKey:
        with self._db.transaction():
            key = upstream.add(self._db, self._box, name, secret, weight, concurrency)
            self._bump()
        return key

    def set_upstream(
        self, name: str, *, weight: int | None = None, concurrency: int | None = None
    ) -> UpstreamKey:
        """Change a key's weight and/or concurrency; running gateways pick it up."""
        with self._db.transaction():
            key = upstream.update(self._db, self._box, name, weight=weight, concurrency=concurrency)
            self._bump()
        return key

    def note_upstream_error(self, key_id: str, error: str, at: float) -> None:
        """Keep a key's last error for `nxs upstream list` (nothing for gateways to reload)."""
        with self._db.transaction():
            upstream.note_error(self._db, key_id, error, at)

    def list_upstream(self) -> list[UpstreamKey]:
        return upstream.list_all(self._db, self._box)

    def get_upstream(self, name: str) -> UpstreamKey:
        return upstream.get(self._db, self._box, name)

    def remove_upstream(self, name: str) -> UpstreamKey:
        with self._db.transaction():
            key = upstream.remove(self._db, self._box, name)
            self._bump()
        return key

    def enable_upstream(self, name: str) -> UpstreamKey:
        """Put a key back in the pool ("active"), whatever fal said about it before."""
        with self._db.transaction():
            key = upstream.get(self._db, self._box, name)
            if upstream.set_state(self._db, key.id, "active", None):
                self._bump()
            key = upstream.get(self._db, self._box, name)
        return key

    def _bump(self) -> None:
        bump_version(self._db)


def connect(
    url: DatabaseUrl, pool_size: int = DEFAULT_POOL_SIZE, busy_seconds: float = BUSY_TIMEOUT_SECONDS
) -> Database:
    """The backend for a parsed URL: PostgreSQL (a pool of `pool_size`) or SQLite (waiting
    up to `busy_seconds` for another process's write lock)."""
    if url.scheme == "postgresql":
        return PostgresDatabase.open(url.url, pool_size)
    path: Path | None = url.path
    return SqliteDatabase.open(path, busy_seconds)


def upgrade_schema(settings: Settings) -> list[int]:
    """Apply pending migrations to the configured database and close it (`nxs serve` does
    this once before it starts its workers, so they find nothing left to migrate)."""
    database = connect(parse_url(settings.database_url), 1)
    try:
        return migrate(database)
    finally:
        database.close()


def _load_box(settings: Settings, url: DatabaseUrl) -> SecretBox:
    """The secret box; PostgreSQL has no database folder for a default key file, so it
    needs `NXS_SECRET_KEY` or `NXS_SECRET_KEY_FILE` (a throw-away secret would lock the
    sealed upstream keys away from the next process)."""
    if url.scheme != "postgresql" or settings.secret_key:
        return load_box(settings.secret_key, settings.secret_key_file, url.path)
    if settings.secret_key_file is None:
        raise SecretKeyError(
            "With PostgreSQL set NXS_SECRET_KEY or NXS_SECRET_KEY_FILE: there is no database"
            " folder to keep the secret key file in"
        )
    path = settings.secret_key_file
    return SecretBox(read_or_create_secret(path), f"secret key file {path}")
