"""Customer accounts of the portal: one-time invitations, sign-up, sign-in.

An operator invites a customer with an email (`nxs customers invite`, the admin API): a
random token is made, only its SHA-256 kept, and the link `…/portal/sign-up/TOKEN` is
printed once. Following it, the customer picks a password (argon2) and a display name;
the invitation is then spent. One account per customer.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from nxs.errors import BadRequest, Conflict, NotFound
from nxs.store import customers
from nxs.store.database import Database, IntegrityViolation
from nxs.web.passwords import Passwords

INVITE_TTL_SECONDS = 7 * 86400
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,63}")
MAX_DISPLAY_NAME = 80


@dataclass(frozen=True)
class Invite:
    token: str  # shown once
    customer_name: str
    email: str
    expires_at: float

    def link(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/portal/sign-up/{self.token}"


@dataclass(frozen=True)
class Account:
    customer_id: str
    email: str
    display_name: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL.fullmatch(email):
        raise BadRequest(f"Invalid email address {email[:80]!r}")
    return email


def invite(db: Database, customer_name: str, email: str) -> Invite:
    """A new invitation for the customer (NotFound for an unknown one)."""
    customer = customers.get(db, customer_name)
    address = check_email(email)
    token, moment = secrets.token_urlsafe(32), time.time()
    db.execute(
        "INSERT INTO portal_invites (token_hash, customer_id, email, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (_digest(token), customer.id, address, moment, moment + INVITE_TTL_SECONDS),
    )
    return Invite(token, customer.name, address, moment + INVITE_TTL_SECONDS)


def pending_invite(db: Database, token: str) -> tuple[str, str]:
    """(customer id, email) of a live, unspent invitation; NotFound otherwise."""
    row = db.fetch_one(
        "SELECT customer_id, email FROM portal_invites WHERE token_hash = ?"
        " AND used_at IS NULL AND expires_at > ?",
        (_digest(token[:200]), time.time()),
    )
    if row is None:
        raise NotFound("This invitation link is not valid any more: ask for a new one")
    return str(row["customer_id"]), str(row["email"])


def accept(
    db: Database, passwords: Passwords, token: str, display_name: str, password: str
) -> Account:
    """Spend the invitation and create (or reset) the customer's account."""
    name = display_name.strip()[:MAX_DISPLAY_NAME]
    hashed = passwords.hash(password)
    with db.transaction():
        customer_id, email = pending_invite(db, token)
        spent = db.execute(
            "UPDATE portal_invites SET used_at = ? WHERE token_hash = ? AND used_at IS NULL",
            (time.time(), _digest(token)),
        )
        if spent != 1:
            raise NotFound("This invitation link is not valid any more: ask for a new one")
        db.execute("DELETE FROM portal_accounts WHERE customer_id = ?", (customer_id,))
        try:
            db.execute(
                "INSERT INTO portal_accounts (customer_id, email, display_name, password_hash,"
                " created_at) VALUES (?, ?, ?, ?, ?)",
                (customer_id, email, name, hashed, time.time()),
            )
        except IntegrityViolation as exc:
            raise Conflict("Another customer's account uses this email") from exc
    return Account(customer_id, email, name)


def authenticate(db: Database, passwords: Passwords, email: str, password: str) -> str | None:
    """The customer id if the password is this account's (same work for unknown emails)."""
    row = db.fetch_one(
        "SELECT customer_id, password_hash FROM portal_accounts WHERE email = ?",
        (email.strip().lower()[:260],),
    )
    if not passwords.verify(str(row["password_hash"]) if row else None, password):
        return None
    assert row is not None
    db.execute(
        "UPDATE portal_accounts SET signed_in_at = ? WHERE customer_id = ?",
        (time.time(), row["customer_id"]),
    )
    return str(row["customer_id"])


def account(db: Database, customer_id: str) -> Account:
    row = db.fetch_one(
        "SELECT customer_id, email, display_name FROM portal_accounts WHERE customer_id = ?",
        (customer_id,),
    )
    if row is None:
        raise NotFound("No portal account")
    return Account(str(row["customer_id"]), str(row["email"]), str(row["display_name"]))
