"""Short-lived JWTs: realtime tokens, as `POST rest.fal.ai/tokens/` hands them out.

A token is HS256 over the emulator's `jwt_secret` with claims `sub` (account id),
`allowed_apps` and `exp`; the realtime WebSocket verifies it with `verify_token`. The
same encoding signs the CDN upload tokens of `storage/auth/token`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from nxs.emulator.access import authorize, fal_errors, json_object
from nxs.emulator.state import STATE_KEY
from nxs.errors import InvalidApiKey, ValidationFailed

REST_HOSTS = ("rest.fal.ai", "rest.alpha.fal.ai")
MAX_EXPIRATION_SECONDS = 24 * 3600
_HEADER = {"alg": "HS256", "typ": "JWT"}


class InvalidToken(InvalidApiKey):
    """A realtime token that is malformed, forged, expired or for another app."""

    error_type, detail = "invalid_token", "Unauthorized"


@dataclass(frozen=True)
class TokenClaims:
    account_id: str
    allowed_apps: tuple[str, ...]
    expires_at: float

    def allows(self, app_alias: str) -> bool:
        return app_alias in self.allowed_apps


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, signing_input: str) -> str:
    return _b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def encode_jwt(secret: bytes, claims: dict[str, Any]) -> str:
    """A compact HS256 JWT carrying `claims`."""
    head = _b64(json.dumps(_HEADER, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{head}.{body}.{_sign(secret, f'{head}.{body}')}"


def decode_jwt(secret: bytes, token: str) -> dict[str, Any]:
    """The claims of an unexpired token signed with `secret`; raises InvalidToken."""
    try:
        head, body, signature = token.split(".")
        if not hmac.compare_digest(signature, _sign(secret, f"{head}.{body}")):
            raise InvalidToken()
        header = json.loads(_unb64(head))
        claims = json.loads(_unb64(body))
        expires_at = float(claims["exp"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidToken() from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise InvalidToken()
    if expires_at < time.time():
        raise InvalidToken()
    return claims


def issue_token(secret: bytes, account_id: str, apps: list[str], lifetime: float) -> str:
    """A realtime token for `account_id`, valid for `lifetime` seconds."""
    claims = {"sub": account_id, "allowed_apps": apps, "exp": int(time.time() + lifetime)}
    return encode_jwt(secret, claims)


def verify_token(secret: bytes, token: str) -> TokenClaims:
    """The realtime claims of a token signed with `secret`; raises InvalidToken otherwise."""
    claims = decode_jwt(secret, token)
    apps = claims.get("allowed_apps")
    if not isinstance(apps, list) or "sub" not in claims:
        raise InvalidToken()
    return TokenClaims(str(claims["sub"]), tuple(str(a) for a in apps), float(claims["exp"]))


def _parse_request(body: dict[str, Any]) -> tuple[list[str], float]:
    apps = body.get("allowed_apps")
    if not isinstance(apps, list) or not apps or not all(isinstance(a, str) for a in apps):
        loc = ["body", "allowed_apps"]
        raise ValidationFailed([{"loc": loc, "msg": "field required", "type": "value_error"}])
    expiration = body.get("token_expiration", 120)
    valid = isinstance(expiration, int | float) and not isinstance(expiration, bool)
    if not valid or not 0 < expiration <= MAX_EXPIRATION_SECONDS:
        loc = ["body", "token_expiration"]
        msg = f"must be between 1 and {MAX_EXPIRATION_SECONDS} seconds"
        raise ValidationFailed([{"loc": loc, "msg": msg, "type": "value_error"}])
    return apps, float(expiration)


@fal_errors
async def create_token(request: web.Request) -> web.Response:
    """`{allowed_apps, token_expiration}` → the token, as a JSON string."""
    account = authorize(request)
    apps, lifetime = _parse_request(await json_object(request))
    token = issue_token(request.app[STATE_KEY].jwt_secret, account.account_id, apps, lifetime)
    return web.json_response(token)


def add_routes(app: web.Application) -> None:
    for host in REST_HOSTS:
        app.router.add_post(f"/{host}/tokens/", create_token)
        app.router.add_post(f"/{host}/tokens", create_token)
