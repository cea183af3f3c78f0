"""NXS's own Ed25519 webhook key: created once, kept in the database sealed with the
store's secret (`NXS_SECRET_KEY` / the secret key file), published as a JWKS, and used
to sign deliveries with fal's exact message scheme so customers' verifiers keep working.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from nxs.store.crypto import SecretBox, SecretKeyError
from nxs.store.database import Database

FIRST_KEY_MARKER = "relay_signing_key_made"  # store_meta: one opener makes the first key


@dataclass(frozen=True)
class PublicKey:
    kid: str
    x: str  # base64url (no padding) of the raw 32-byte public key

    def jwk(self) -> dict[str, str]:
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": self.x,
            "kid": self.kid,
            "use": "sig",
            "alg": "EdDSA",
        }


def b64url(raw: bytes) -> str:
    """base64url without padding, as JWK and JWT fields carry bytes."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """The bytes of a base64url text with or without its padding; raises ValueError."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signed_message(request_id: str, user_id: str, timestamp: int, body: bytes) -> bytes:
    """fal's signed bytes: request id, user id, timestamp and the body's SHA-256 hex."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{request_id}\n{user_id}\n{timestamp}\n{digest}".encode()


class SigningKey:
    """The newest stored key signs; every stored key is published (room for rotation)."""

    def __init__(self, private: Ed25519PrivateKey, kid: str, published: list[PublicKey]) -> None:
        self._private = private
        self.kid = kid
        self._published = published

    @classmethod
    def load_or_create(cls, database: Database, box: SecretBox) -> SigningKey:
        """The stored key, opened with `box`; a new one is generated on first use."""
        row = _newest(database) or _first_key(database, box)
        try:
            raw_private = bytes.fromhex(box.open(row["private_ciphertext"]))
        except SecretKeyError as exc:
            raise SecretKeyError(
                f"Cannot open the webhook signing key: the secret from {box.origin}"
                " is not the one this database was created with"
            ) from exc
        private = Ed25519PrivateKey.from_private_bytes(raw_private)
        rows = database.fetch_all(
            "SELECT kid, public_x FROM relay_signing_keys ORDER BY created_at"
        )
        published = [PublicKey(str(r["kid"]), str(r["public_x"])) for r in rows]
        return cls(private, str(row["kid"]), published)

    def jwks(self) -> dict[str, Any]:
        """The document served at `/.well-known/jwks.json`."""
        return {"keys": [key.jwk() for key in self._published]}

    def sign(self, request_id: str, user_id: str, timestamp: int, body: bytes) -> str:
        """The hex Ed25519 signature a customer checks, exactly as fal's."""
        return self._private.sign(signed_message(request_id, user_id, timestamp, body)).hex()

    def sign_bytes(self, data: bytes) -> bytes:
        """A raw Ed25519 signature (NXS's realtime tokens are signed this way)."""
        return self._private.sign(data)

    def verifies(self, signature: bytes, data: bytes) -> bool:
        """True if `signature` over `data` is this key's."""
        try:
            self._private.public_key().verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def headers(
        self, request_id: str, user_id: str, body: bytes, now: float | None = None
    ) -> dict[str, str]:
        """The headers of one delivery POST (fal's names, NXS's signature)."""
        timestamp = int(time.time() if now is None else now)
        return {
            "Content-Type": "application/json",
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": user_id,
            "X-Fal-Webhook-Timestamp": str(timestamp),
            "X-Fal-Webhook-Signature": self.sign(request_id, user_id, timestamp, body),
        }


def _newest(database: Database) -> dict[str, Any] | None:
    return database.fetch_one(
        "SELECT kid, private_ciphertext FROM relay_signing_keys ORDER BY created_at DESC LIMIT 1"
    )


def _insert_new(database: Database, box: SecretBox) -> dict[str, Any]:
    private = Ed25519PrivateKey.generate()
    raw_public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    raw_private = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    kid = "nxs-" + hashlib.sha256(raw_public).hexdigest()[:16]
    sealed = box.seal(raw_private.hex())
    database.execute(
        "INSERT INTO relay_signing_keys (kid, private_ciphertext, public_x, created_at)"
        " VALUES (?, ?, ?, ?)",
        (kid, sealed, b64url(raw_public), time.time()),
    )
    return {"kid": kid, "private_ciphertext": sealed}


def _first_key(database: Database, box: SecretBox) -> dict[str, Any]:
    """The first signing key, made by exactly one of several openers racing on a new
    database: each claims the `store_meta` marker, which the database lets one insert (on
    PostgreSQL the others wait for its commit, on SQLite for the write lock); only the
    winner makes a key, and everyone then reads the one that exists."""
    with database.transaction():
        won = database.execute(
            "INSERT INTO store_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            (FIRST_KEY_MARKER, "made"),
        )
        if won:
            return _insert_new(database, box)
    row = _newest(database)
    if row is None:
        raise SecretKeyError("The webhook signing key was claimed but never stored")
    return row
