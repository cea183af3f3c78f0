"""NXS's webhook key: made once, sealed at rest with the store's secret, the same after
reopening, published as a JWKS a standard Ed25519 library verifies fal-style messages with.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from nxs.relay.schema import apply_relay_schema
from nxs.relay.signing import SigningKey
from nxs.store.crypto import SecretKeyError, load_box
from nxs.store.database import Database, parse_url
from nxs.store.migrations import migrate
from nxs.store.store import connect


def open_key(db_file: Path, secret: str | None = None) -> tuple[SigningKey, Database]:
    url = parse_url(f"sqlite:///{db_file}")
    database = connect(url)
    migrate(database)
    apply_relay_schema(database)
    return SigningKey.load_or_create(database, load_box(secret, None, url.path)), database


def public_key(jwk: dict[str, str]) -> Ed25519PublicKey:
    x = jwk["x"]
    return Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))


def test_jwks_has_the_fields_fal_verifiers_read(tmp_path: Path) -> None:
    key, _ = open_key(tmp_path / "nxs.db")
    (jwk,) = key.jwks()["keys"]
    assert {k: jwk[k] for k in ("kty", "crv", "use", "alg")} == {
        "kty": "OKP",
        "crv": "Ed25519",
        "use": "sig",
        "alg": "EdDSA",
    }
    assert jwk["kid"] == key.kid


def test_signature_verifies_with_fals_message_scheme(tmp_path: Path) -> None:
    key, _ = open_key(tmp_path / "nxs.db")
    body = b'{"request_id":"r1","status":"OK","payload":{}}'
    signature = key.sign("r1", "cus_a", 1_700_000_000, body)
    message = f"r1\ncus_a\n1700000000\n{hashlib.sha256(body).hexdigest()}".encode()
    public_key(key.jwks()["keys"][0]).verify(bytes.fromhex(signature), message)


def test_key_survives_reopening_and_is_sealed_at_rest(tmp_path: Path) -> None:
    first, database = open_key(tmp_path / "nxs.db")
    database.close()
    second, database = open_key(tmp_path / "nxs.db")
    assert second.jwks() == first.jwks()
    row = database.fetch_one("SELECT private_ciphertext FROM relay_signing_keys")
    assert row is not None and len(database.fetch_all("SELECT kid FROM relay_signing_keys")) == 1
    assert (tmp_path / "nxs.secret").stat().st_mode & 0o077 == 0
    assert second.sign("r", "u", 1, b"x") == first.sign("r", "u", 1, b"x")
    raw = open_key(tmp_path / "other.db")[0]  # a different database: a different key
    assert raw.jwks() != first.jwks()


def test_wrong_secret_cannot_open_the_key(tmp_path: Path) -> None:
    open_key(tmp_path / "nxs.db", secret="right secret")
    with pytest.raises(SecretKeyError, match="webhook signing key"):
        open_key(tmp_path / "nxs.db", secret="wrong secret")
