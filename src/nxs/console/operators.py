"""Operators: the people who sign in to `/console`, each `admin` (changes things) or `viewer`.

Passwords are kept as argon2 hashes only. `create`, `remove` and `list_all` are what `nxs
operators …` calls; each change is written with its audit entry in one transaction by the
caller (`nxs.admin.operators_cli`). `authenticate` checks a name and password in constant
work whether or not the name exists, so a sign-in answer tells nothing about the names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from nxs.errors import BadRequest, Conflict, NotFound
from nxs.store.database import Database, IntegrityViolation, Row
from nxs.store.ids import new_id, now, validate_name
from nxs.web.passwords import Passwords, check_strength

Role = Literal["admin", "viewer"]
ROLES: Final = ("admin", "viewer")


@dataclass(frozen=True)
class Operator:
    """One operator as stored (never its password)."""

    id: str
    name: str
    role: Role
    created_at: float
    signed_in_at: float | None

    @property
    def can_change(self) -> bool:
        return self.role == "admin"


def check_role(role: str) -> Role:
    if role == "admin":
        return "admin"
    if role == "viewer":
        return "viewer"
    raise BadRequest(f"Invalid role {role!r}: use admin or viewer")


def create(
    database: Database, passwords: Passwords, name: str, password: str, role: str = "admin"
) -> Operator:
    """A new operator; 409 if the name is taken."""
    validate_name("operator", name)
    checked_role, secret = check_role(role), check_strength(password)
    operator = Operator(new_id("op"), name, checked_role, now(), None)
    try:
        database.execute(
            "INSERT INTO operators (id, name, password_hash, role, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (operator.id, name, passwords.hash(secret), checked_role, operator.created_at),
        )
    except IntegrityViolation as exc:
        raise Conflict(f"Operator '{name}' already exists") from exc
    return operator


def remove(database: Database, name: str) -> Operator:
    operator = get(database, name)
    database.execute("DELETE FROM operators WHERE id = ?", (operator.id,))
    return operator


def find_by_id(database: Database, operator_id: str) -> Operator | None:
    row = database.fetch_one(f"SELECT {_COLUMNS} FROM operators WHERE id = ?", (operator_id,))
    return _operator(row) if row is not None else None


def get(database: Database, name: str) -> Operator:
    row = database.fetch_one(f"SELECT {_COLUMNS} FROM operators WHERE name = ?", (name,))
    if row is None:
        raise NotFound(f"No operator named '{name}'")
    return _operator(row)


def list_all(database: Database) -> list[Operator]:
    return [
        _operator(row)
        for row in database.fetch_all(f"SELECT {_COLUMNS} FROM operators ORDER BY name")
    ]


def authenticate(
    database: Database, passwords: Passwords, name: str, password: str
) -> Operator | None:
    """The operator if `password` is theirs, else None (same work for unknown names)."""
    row = database.fetch_one(
        f"SELECT {_COLUMNS}, password_hash FROM operators WHERE name = ?", (name,)
    )
    if not passwords.verify(str(row["password_hash"]) if row else None, password) or row is None:
        return None
    database.execute("UPDATE operators SET signed_in_at = ? WHERE id = ?", (now(), row["id"]))
    return _operator(row)


_COLUMNS: Final = "id, name, role, created_at, signed_in_at"


def _operator(row: Row) -> Operator:
    return Operator(
        id=str(row["id"]),
        name=str(row["name"]),
        role=check_role(str(row["role"])),
        created_at=float(row["created_at"]),
        signed_in_at=float(row["signed_in_at"]) if row["signed_in_at"] is not None else None,
    )
