"""Encryption at rest of upstream fal keys, and where its secret comes from.

The secret is `NXS_SECRET_KEY` or, if unset, the contents of `NXS_SECRET_KEY_FILE`
(generated with mode 0600 on first use; unset, it is `nxs.secret` next to the SQLite
file). Values are sealed with Fernet (AES-128-CBC + HMAC-SHA256) under a key derived
from the secret; a sealed marker in the database detects a wrong secret at open.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from nxs.errors import NxsError
from nxs.store.database import Database

CHECK_NAME = "secret_check"
CHECK_PLAINTEXT = "nxs secret check v1"
DEFAULT_FILE_NAME = "nxs.secret"


class SecretKeyError(NxsError):
    """The encryption secret is missing, unreadable or not the database's."""

    status, error_type, detail = 500, "secret_key_error", "Secret key error"


class SecretBox:
    """Seals and opens short strings; opened values are cached (there are few)."""

    def __init__(self, secret: str, origin: str) -> None:
        digest = hashlib.sha256(secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))
        self._opened: dict[str, str] = {}
        self.origin = origin  # where the secret came from, for error messages

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, token: str) -> str:
        cached = self._opened.get(token)
        if cached is not None:
            return cached
        try:
            plaintext = self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretKeyError(
                f"Cannot decrypt upstream keys: the secret from {self.origin} "
                "is not the one this database was created with"
            ) from exc
        self._opened[token] = plaintext
        return plaintext


def load_box(
    secret_key: str | None, secret_key_file: Path | None, database: Path | None
) -> SecretBox:
    """The box for `NXS_SECRET_KEY`, else for the key file (created if absent).

    With no key file given it is `nxs.secret` in the database file's directory (a given
    relative path is the working directory's); an in-memory database without
    `NXS_SECRET_KEY` gets a throw-away secret (its data dies with it anyway).
    """
    if secret_key:
        return SecretBox(secret_key, "NXS_SECRET_KEY")
    if database is None:
        return SecretBox(secrets.token_urlsafe(32), "a throw-away secret")
    path = secret_key_file or database.parent / DEFAULT_FILE_NAME
    return SecretBox(read_or_create_secret(path), f"secret key file {path}")


def read_or_create_secret(path: Path) -> str:
    """The secret stored at `path`; a new random one (mode 0600) if there is none."""
    if not path.exists():
        _create_secret_file(path)
    try:
        secret = path.read_text().strip()
    except OSError as exc:
        raise SecretKeyError(f"Cannot read secret key file {path}: {exc.strerror}") from exc
    if not secret:
        raise SecretKeyError(f"Secret key file {path} is empty")
    return secret


def _create_secret_file(path: Path) -> None:
    """Write the file under a temporary name, then link it in: racing openers agree."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process was first: use theirs
            os.link(temporary, path)
    except OSError as exc:
        raise SecretKeyError(f"Cannot create secret key file {path}: {exc.strerror}") from exc
    finally:
        temporary.unlink(missing_ok=True)


def check_secret(database: Database, box: SecretBox) -> None:
    """Store a sealed marker on first use; afterwards refuse a secret that cannot open it.
    First openers racing on a new database (the workers of `nxs serve`, on PostgreSQL
    where reading first does not serialize them) agree: one marker is kept, and each
    checks its secret against that one."""
    query = "SELECT value FROM store_meta WHERE name = ?"
    row = database.fetch_one(query, (CHECK_NAME,))
    if row is None:
        with database.transaction():
            database.execute(
                "INSERT INTO store_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                (CHECK_NAME, box.seal(CHECK_PLAINTEXT)),
            )
            row = database.fetch_one(query, (CHECK_NAME,))
    if row is None or box.open(str(row["value"])) != CHECK_PLAINTEXT:
        raise SecretKeyError(f"The secret from {box.origin} does not match this database")
