"""Passwords of people who sign in to NXS pages: argon2id hashes only, never the text.

`verify` costs one argon2 verification whether or not an account exists (pass None for a
missing one), so a sign-in answer tells nothing about which names or emails exist.
"""

from __future__ import annotations

from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from nxs.errors import BadRequest

MIN_LENGTH: Final = 10
MAX_LENGTH: Final = 256


class Passwords:
    """Hashing and checking with one argon2 hasher (its default, RFC 9106 low-memory)."""

    def __init__(self) -> None:
        self._hasher = PasswordHasher()
        self._dummy = self._hasher.hash("nxs-no-such-account")

    def hash(self, password: str) -> str:
        return self._hasher.hash(check_strength(password))

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether `password` matches `stored` (None: no account, same work, False)."""
        try:
            self._hasher.verify(stored or self._dummy, password[:MAX_LENGTH])
        except (VerificationError, InvalidHashError):
            return False
        return stored is not None


def check_strength(password: str) -> str:
    """The password if it is long enough and not absurdly long; else BadRequest."""
    if len(password) < MIN_LENGTH:
        raise BadRequest(f"Use a password of at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise BadRequest(f"Use a password of at most {MAX_LENGTH} characters")
    return password
