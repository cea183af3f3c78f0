"""Server-side sessions: a random cookie token → (kind, subject, CSRF token, expiry).

Each page family opens sessions of its own kind under its own cookie name and path
(`nxs_portal` on /portal, `nxs_console` on /console) and `find` only returns sessions of
its kind, so a console session never opens a portal page and the other way round.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from nxs.store.database import Database

DEFAULT_TTL_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Session:
    kind: str
    subject_id: str  # the customer id (portal) or operator id (console)
    csrf: str
    expires_at: float


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Sessions of one kind over the store's `web_sessions` table."""

    def __init__(self, database: Database, kind: str, ttl: float = DEFAULT_TTL_SECONDS) -> None:
        self._db = database
        self.kind = kind
        self.ttl = ttl

    def open(self, subject_id: str) -> tuple[str, Session]:
        """A new session for `subject_id`: the cookie token (shown once) and its record."""
        token, moment = secrets.token_urlsafe(32), time.time()
        session = Session(self.kind, subject_id, secrets.token_urlsafe(32), moment + self.ttl)
        self._db.execute(
            "INSERT INTO web_sessions (token_hash, kind, subject_id, csrf, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (_digest(token), self.kind, subject_id, session.csrf, moment, session.expires_at),
        )
        return token, session

    def find(self, token: str | None) -> Session | None:
        """The live session of this kind behind a cookie token, else None."""
        if not token or len(token) > 100:
            return None
        row = self._db.fetch_one(
            "SELECT kind, subject_id, csrf, expires_at FROM web_sessions"
            " WHERE token_hash = ? AND kind = ? AND expires_at > ?",
            (_digest(token), self.kind, time.time()),
        )
        if row is None:
            return None
        return Session(row["kind"], row["subject_id"], row["csrf"], float(row["expires_at"]))

    def close(self, token: str | None) -> None:
        if token:
            self._db.execute(
                "DELETE FROM web_sessions WHERE token_hash = ? AND kind = ?",
                (_digest(token), self.kind),
            )

    def close_all(self, subject_id: str) -> None:
        """Sign a subject out everywhere (after a password change, a removal)."""
        self._db.execute(
            "DELETE FROM web_sessions WHERE kind = ? AND subject_id = ?", (self.kind, subject_id)
        )

    def sweep(self) -> int:
        """Drop expired sessions; returns how many."""
        return self._db.execute("DELETE FROM web_sessions WHERE expires_at <= ?", (time.time(),))
