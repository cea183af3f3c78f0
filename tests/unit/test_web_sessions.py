"""Web sessions on both store backends: a token opens only sessions of its own kind, only
until it expires or is closed, and only its hash is stored."""

from __future__ import annotations

from nxs.store.database import Database
from nxs.web.sessions import Sessions


def test_a_token_opens_its_own_kind_only(db: Database) -> None:
    portal, console = Sessions(db, "portal"), Sessions(db, "console")
    token, opened = portal.open("cus_1")
    found = portal.find(token)
    assert found is not None and found.subject_id == "cus_1" and found.csrf == opened.csrf
    assert console.find(token) is None


def test_only_the_token_hash_is_stored(db: Database) -> None:
    token, _ = Sessions(db, "portal").open("cus_1")
    rows = db.fetch_all("SELECT token_hash FROM web_sessions")
    assert [row["token_hash"] for row in rows] != [token] and len(rows) == 1


def test_closed_and_expired_sessions_open_nothing(db: Database) -> None:
    sessions, expired = Sessions(db, "portal"), Sessions(db, "portal", ttl=-1)
    token, _ = sessions.open("cus_1")
    old, _ = expired.open("cus_1")
    sessions.close(token)
    assert sessions.find(token) is None and sessions.find(old) is None
    assert sessions.sweep() == 1


def test_close_all_signs_a_subject_out_everywhere(db: Database) -> None:
    sessions = Sessions(db, "portal")
    first, _ = sessions.open("cus_1")
    second, _ = sessions.open("cus_1")
    other, _ = sessions.open("cus_2")
    sessions.close_all("cus_1")
    assert [sessions.find(t) is None for t in (first, second, other)] == [True, True, False]


def test_unknown_or_absurd_tokens_open_nothing(db: Database) -> None:
    sessions = Sessions(db, "portal")
    assert sessions.find(None) is None and sessions.find("x" * 5000) is None
    assert sessions.find("not-a-token") is None
