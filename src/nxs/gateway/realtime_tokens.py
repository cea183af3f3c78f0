"""NXS's short-lived realtime tokens: what `POST /tokens/` (directly or as the proxied
`rest.fal.ai/tokens/` call `fal.realtime.connect` makes) hands a customer, and what
`/{endpoint}/realtime?fal_jwt_token=…` accepts. A token names the customer, the key that
asked for it, the app aliases it may open and its expiry, signed with NXS's Ed25519
webhook key (so its key id can be trusted: sessions are billed to that key).
"""

from __future__ import annotations

import binascii
import json
import time
from dataclasses import dataclass
from typing import Any, Final

from nxs.errors import InvalidApiKey, ValidationFailed
from nxs.jsoninput import parse_rest_object
from nxs.relay.signing import SigningKey, b64url, b64url_decode

PREFIX: Final = "nxsrt."
DEFAULT_SECONDS: Final = 120
MAX_SECONDS: Final = 3600


class InvalidRealtimeToken(InvalidApiKey):
    error_type, detail = "invalid_token", "Invalid or expired realtime token"


@dataclass(frozen=True)
class TokenClaims:
    customer_id: str
    key_id: str  # the `nxs_` key that asked for the token
    apps: tuple[str, ...]
    expires_at: float


class RealtimeTokens:
    """Issues and checks tokens with the one signing key every worker shares."""

    def __init__(self, key: SigningKey) -> None:
        self._key = key

    def issue(self, customer_id: str, key_id: str, apps: list[str], seconds: float) -> str:
        expires = int(time.time() + seconds)
        claims = {"sub": customer_id, "key": key_id, "apps": apps, "exp": expires}
        body = b64url(json.dumps(claims, separators=(",", ":")).encode())
        signature = b64url(self._key.sign_bytes(body.encode()))
        return f"{PREFIX}{body}.{signature}"

    def verify(self, token: str) -> TokenClaims:
        """The claims of an unexpired token NXS issued; `InvalidRealtimeToken` otherwise."""
        if not token.startswith(PREFIX):
            raise InvalidRealtimeToken()
        body, _, signature = token[len(PREFIX) :].partition(".")
        try:
            if not self._key.verifies(b64url_decode(signature), body.encode()):
                raise InvalidRealtimeToken()
            claims = json.loads(b64url_decode(body))
            apps = tuple(str(a) for a in claims["apps"])
            parsed = TokenClaims(str(claims["sub"]), str(claims["key"]), apps, float(claims["exp"]))
        except (ValueError, binascii.Error, KeyError, TypeError) as exc:
            raise InvalidRealtimeToken() from exc
        if parsed.expires_at < time.time():
            raise InvalidRealtimeToken()
        return parsed


def parse_token_request(body: bytes) -> tuple[list[str], float]:
    """`{allowed_apps: [...], token_expiration: seconds}` as fal's tokens/ takes it (400
    for a body that is not a JSON object, as fal answers)."""
    data = parse_rest_object(body)
    apps = data.get("allowed_apps")
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
