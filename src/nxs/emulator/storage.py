"""fal's storage API on the REST hosts: upload initiation and CDN upload tokens.

`storage/upload/initiate[-multipart]` (the JS client, and Python's `gcs` fallback)
hands out an upload URL and the file URL it will fill; `storage/auth/token` hands the
Python client a CDN token for `POST /v3.fal.media/files/upload`. The byte transfers
themselves are served by `transfers`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from nxs.emulator import transfers
from nxs.emulator.access import authorize, fal_errors, json_object
from nxs.emulator.state import STATE_KEY, base_url
from nxs.emulator.tokens import encode_jwt
from nxs.emulator.uploads import UploadRegistry
from nxs.errors import ValidationFailed

REST_HOSTS = ("rest.fal.ai", "rest.alpha.fal.ai")
STORAGE_TYPES = ("fal-cdn-v3", "fal-cdn", "gcs")
CDN_TOKEN_SECONDS = 3600


def _missing(loc: list[str]) -> dict[str, Any]:
    return {"loc": loc, "msg": "field required", "type": "value_error.missing"}


def _check_storage_type(request: web.Request) -> None:
    storage_type = request.query.get("storage_type", "fal-cdn-v3")
    if storage_type not in STORAGE_TYPES:
        msg = f"value is not a valid enumeration member; permitted: {', '.join(STORAGE_TYPES)}"
        loc = ["query", "storage_type"]
        raise ValidationFailed([{"loc": loc, "msg": msg, "type": "type_error.enum"}])


def _file_fields(body: dict[str, Any]) -> tuple[str, str]:
    errors = [
        _missing(["body", name])
        for name in ("content_type", "file_name")
        if not isinstance(body.get(name), str) or not body[name]
    ]
    if errors:
        raise ValidationFailed(errors)
    return body["content_type"], body["file_name"]


@fal_errors
async def initiate(request: web.Request) -> web.Response:
    """`{upload_url, file_url}`: PUT the bytes (or numbered parts) to the first."""
    account = authorize(request)
    _check_storage_type(request)
    content_type, file_name = _file_fields(await json_object(request))
    upload = request.app[transfers.UPLOADS_KEY].create(file_name, content_type, account.account_id)
    base = base_url(request)
    return web.json_response(
        {
            "upload_url": f"{base}{transfers.UPLOAD_PREFIX}/{upload.upload_id}",
            "file_url": f"{base}{upload.path}",
        }
    )


@fal_errors
async def cdn_token(request: web.Request) -> web.Response:
    """A bearer token for the CDN's upload routes, and where they live."""
    account = authorize(request)
    _check_storage_type(request)
    await json_object(request, empty_ok=True)
    expires = int(time.time()) + CDN_TOKEN_SECONDS
    claims = {"sub": account.account_id, "scope": transfers.CDN_TOKEN_SCOPE, "exp": expires}
    token = encode_jwt(request.app[STATE_KEY].jwt_secret, claims)
    return web.json_response(
        {
            "token": token,
            "token_type": "Bearer",
            "base_url": f"{base_url(request)}/v3.fal.media",
            "expires_at": datetime.fromtimestamp(expires, UTC).isoformat(),
        }
    )


def add_routes(app: web.Application) -> None:
    """The REST storage routes on both REST hosts, then the CDN's byte transfers."""
    app[transfers.UPLOADS_KEY] = UploadRegistry(app[STATE_KEY].files)
    for host in REST_HOSTS:
        app.router.add_post(f"/{host}/storage/upload/initiate", initiate)
        app.router.add_post(f"/{host}/storage/upload/initiate-multipart", initiate)
        app.router.add_post(f"/{host}/storage/auth/token", cdn_token)
    transfers.add_routes(app)
