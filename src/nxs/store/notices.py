"""Change notices: a write gateways must see bumps the store version, and on PostgreSQL
also notifies `nxs_store_version` in the same transaction (delivered at commit, never for
a rolled-back change). Each gateway worker listens on a connection of its own, in a
thread, and reloads at once; the version poll stays as the fallback (SQLite, a listener
reconnecting after PostgreSQL went away).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final

import psycopg

from nxs.store.database import Database

LOG = logging.getLogger("nxs.store")
CHANNEL: Final = "nxs_store_version"
RETRY_SECONDS: Final = 2.0  # after the listening connection failed
WAKE_SECONDS: Final = 0.5  # how often the listening thread checks whether to stop


def bump_version(db: Database) -> None:
    """Mark a change every gateway must pick up (call inside the change's transaction)."""
    db.execute("UPDATE store_version SET value = value + 1 WHERE id = 1")
    if db.dialect == "postgresql":
        db.execute(f"SELECT pg_notify('{CHANNEL}', '')")


class VersionListener:
    """A daemon thread that LISTENs on PostgreSQL and calls `on_notice` per notification
    (from that thread: the callback hands over to the event loop itself)."""

    def __init__(self, url: str, on_notice: Callable[[], object]) -> None:
        self._url = url
        self._on_notice = on_notice
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nxs-notices", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=2 * WAKE_SECONDS)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self._listen()
            except psycopg.Error as exc:
                if not self._stopped.is_set():
                    reason = type(exc).__name__
                    LOG.warning("change notices interrupted (%s): polling until back", reason)
            self._stopped.wait(RETRY_SECONDS)

    def _listen(self) -> None:
        with psycopg.connect(self._url, autocommit=True, connect_timeout=3) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            self._on_notice()  # changes made while nobody listened
            while not self._stopped.is_set():
                for _ in connection.notifies(timeout=WAKE_SECONDS):
                    self._on_notice()
