"""NXS's short-lived realtime tokens: what `POST /tokens/` (directly or as the proxied
`rest.fal.ai/tokens/` call `fal.realtime.connect` makes) hands a customer, and what
`/{endpoint}/realtime?fal_jwt_token=…` accepts. A token names the customer, the app
aliases it may open and its expiry, signed with NXS's Ed25519 webhook key.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from typing import Any, Final

from nxs.errors import InvalidApiKey, ValidationFailed
from nxs.relay.signing import SigningKey

PREFIX: Final = "nxsrt."
DEFAULT_SECONDS: Final = 120
MAX_SECONDS: Final = 3600


class InvalidRealtimeToken(InvalidApiKey):
    error_type, detail = "invalid_token", "Invalid or expired realtime token"


@dataclass(frozen=True)
class TokenClaims:
    customer_id: str
    apps: tuple[str, ...]
    expires_at: float


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class RealtimeTokens:
    """Issues and checks tokens with the one signing key every worker shares."""

    def __init__(self, key: SigningKey) -> None:
        self._key = key

    def issue(self, customer_id: str, apps: list[str], seconds: float) -> str:
        claims = {"sub": customer_id, "apps": apps, "exp": int(time.time() + seconds)}
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = _b64(self._key.sign_bytes(body.encode()))
        return f"{PREFIX}{body}.{signature}"

    def verify(self, token: str) -> TokenClaims:
        """The claims of an unexpired token NXS issued; `InvalidRealtimeToken` otherwise."""
        if not token.startswith(PREFIX):
            raise InvalidRealtimeToken()
        body, _, signature = token[len(PREFIX) :].partition(".")
        try:
            if not self._key.verifies(_unb64(signature), body.encode()):
                raise InvalidRealtimeToken()
            claims = json.loads(_unb64(body))
            parsed = TokenClaims(
                str(claims["sub"]), tuple(str(a) for a in claims["apps"]), float(claims["exp"])
            )
        except (ValueError, binascii.Error, KeyError, TypeError) as exc:
            raise InvalidRealtimeToken() from exc
        if parsed.expires_at < time.time():
            raise InvalidRealtimeToken()
        return parsed


def parse_token_request(body: bytes) -> tuple[list[str], float]:
    """`{allowed_apps: [...], token_expiration: seconds}` as fal's tokens/ takes it."""
    try:
        data: Any = json.loads(body) if body else {}
    except ValueError:
        data = None
    apps = data.get("allowed_apps") if isinstance(data, dict) else None
    if not isinstance(apps, list) or not apps or not all(isinstance(a, str) for a in apps):
        raise ValidationFailed(_invalid("allowed_apps", "a non-empty list of app aliases"))
    seconds = data.get("token_expiration", DEFAULT_SECONDS)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ValidationFailed(_invalid("token_expiration", "a number of seconds"))
    if not 0 < seconds <= MAX_SECONDS:
        raise ValidationFailed(_invalid("token_expiration", f"between 1 and {MAX_SECONDS}"))
    return apps, float(seconds)


def _invalid(field: str, expected: str) -> list[dict[str, Any]]:
    return [{"loc": ["body", field], "msg": f"must be {expected}", "type": "value_error"}]
