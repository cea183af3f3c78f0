"""Byte transfers into the emulator's CDN (`/v3.fal.media/…`), as both clients make them.

Initiated uploads: `PUT /v3.fal.media/uploads/{id}` (whole file, no auth: the id is the
capability), or `PUT …/{id}/{part}` + `POST …/{id}/complete`. The Python client's CDN
flow, with its bearer token: `POST /v3.fal.media/files/upload` and the multipart trio
under its access URL. Initiated files are served at `/v3.fal.media/files/up-{id}/{name}`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from nxs.emulator.access import fal_errors, json_object
from nxs.emulator.files import FileStore
from nxs.emulator.state import STATE_KEY, base_url
from nxs.emulator.tokens import InvalidToken, decode_jwt
from nxs.emulator.uploads import (
    UPLOADED_PREFIX,
    Upload,
    UploadNotFound,
    UploadRegistry,
    clean_content_type,
    clean_name,
    read_body,
)
from nxs.errors import BadRequest

UPLOADS_KEY = web.AppKey("nxs_emulator_uploads", UploadRegistry)
UPLOAD_PREFIX = "/v3.fal.media/uploads"
CDN_TOKEN_SCOPE = "cdn-upload"


def _record(request: web.Request, account_id: str | None = None) -> None:
    request.app[STATE_KEY].record(request.method, request.path, account_id)


def _cdn_account(request: web.Request) -> str:
    """The account of the request's CDN bearer token (from `storage/auth/token`)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    try:
        if scheme.lower() != "bearer":
            raise InvalidToken()
        claims = decode_jwt(request.app[STATE_KEY].jwt_secret, token.strip())
        if claims.get("scope") != CDN_TOKEN_SCOPE:
            raise InvalidToken()
    except InvalidToken:
        _record(request)
        raise InvalidToken("Invalid or expired CDN token") from None
    _record(request, str(claims["sub"]))
    return str(claims["sub"])


def _part_number(request: web.Request) -> int:
    return int(request.match_info["part"])  # the route only matches digits


async def _parts_listed(request: web.Request) -> list[tuple[int, str]]:
    parts = (await json_object(request)).get("parts")
    if not isinstance(parts, list):
        raise BadRequest('Body must be {"parts": [{"partNumber", "etag"}, …]}')
    listed = []
    for part in parts:
        number = part.get("partNumber") if isinstance(part, dict) else None
        etag = part.get("etag") if isinstance(part, dict) else None
        if not isinstance(number, int) or not isinstance(etag, str):
            raise BadRequest("Each part needs an integer partNumber and a string etag")
        listed.append((number, etag))
    return listed


@fal_errors
async def put_whole(request: web.Request) -> web.Response:
    """The whole file in one PUT to an initiated upload's URL."""
    _record(request)
    registry = request.app[UPLOADS_KEY]
    upload = registry.get(request.match_info["upload_id"])
    registry.complete(upload, await read_body(request))
    return web.Response(status=200)


async def _store_part(request: web.Request, upload: Upload) -> web.Response:
    number = _part_number(request)
    etag = upload.add_part(number, await read_body(request))
    return web.json_response({"partNumber": number, "etag": etag}, headers={"ETag": etag})


async def _complete(request: web.Request, upload: Upload) -> web.Response:
    registry = request.app[UPLOADS_KEY]
    data = upload.assemble(await _parts_listed(request))
    registry.complete(upload, data)
    url = f"{base_url(request)}{upload.path}"
    return web.json_response({"access_url": url, "file_url": url, "size": len(data)})


@fal_errors
async def put_part(request: web.Request) -> web.Response:
    """One part of a multipart upload (JS client): answers `{partNumber, etag}`."""
    _record(request)
    return await _store_part(request, request.app[UPLOADS_KEY].get(request.match_info["upload_id"]))


@fal_errors
async def complete(request: web.Request) -> web.Response:
    """Join the listed parts of a multipart upload into its file."""
    _record(request)
    return await _complete(request, request.app[UPLOADS_KEY].get(request.match_info["upload_id"]))


@fal_errors
async def cdn_upload(request: web.Request) -> web.Response:
    """The Python client's one-shot upload: the body becomes a file at once."""
    _cdn_account(request)
    name = clean_name(request.headers.get("X-Fal-File-Name") or "upload.bin")
    content_type = clean_content_type(request.headers.get("Content-Type"))
    stored = request.app[STATE_KEY].files.put(await read_body(request), content_type, name)
    return web.json_response({"access_url": FileStore.url(base_url(request), stored)})


@fal_errors
async def cdn_multipart_create(request: web.Request) -> web.Response:
    """The Python client's multipart start: `{access_url, uploadId}`."""
    account_id = _cdn_account(request)
    name = request.headers.get("X-Fal-File-Name") or "upload.bin"
    content_type = request.headers.get("Content-Type", "application/octet-stream")
    upload = request.app[UPLOADS_KEY].create(name, content_type, account_id)
    url = f"{base_url(request)}{upload.path}"
    return web.json_response({"access_url": url, "uploadId": upload.upload_id})


def _cdn_multipart_upload(request: web.Request) -> Upload:
    account_id = _cdn_account(request)
    upload = request.app[UPLOADS_KEY].get(request.match_info["upload_id"])
    same_upload = request.match_info["multipart_id"] == upload.upload_id
    if not same_upload or upload.account_id != account_id:
        raise UploadNotFound()
    return upload


@fal_errors
async def cdn_multipart_part(request: web.Request) -> web.Response:
    """One part of the Python client's multipart upload; its ETag in the header."""
    return await _store_part(request, _cdn_multipart_upload(request))


@fal_errors
async def cdn_multipart_complete(request: web.Request) -> web.Response:
    return await _complete(request, _cdn_multipart_upload(request))


@fal_errors
async def serve_uploaded(request: web.Request) -> web.Response:
    """The bytes of an initiated upload, once they have arrived (404 before)."""
    _record(request)
    info = request.match_info
    stored = request.app[UPLOADS_KEY].file_of(info["upload_id"], info["name"])
    headers: dict[str, Any] = {"Content-Type": stored.content_type}
    return web.Response(body=stored.data, headers=headers)


def add_routes(app: web.Application) -> None:
    uploaded = f"/v3.fal.media/files/{UPLOADED_PREFIX}{{upload_id}}/{{name}}"
    multipart = uploaded + "/multipart/{multipart_id}"
    router = app.router
    router.add_put(UPLOAD_PREFIX + "/{upload_id}", put_whole)
    router.add_put(UPLOAD_PREFIX + "/{upload_id}/{part:\\d+}", put_part)
    router.add_post(UPLOAD_PREFIX + "/{upload_id}/complete", complete)
    router.add_post("/v3.fal.media/files/upload", cdn_upload)
    router.add_post("/v3.fal.media/files/upload/multipart", cdn_multipart_create)
    router.add_put(multipart + "/{part:\\d+}", cdn_multipart_part)
    router.add_post(multipart + "/complete", cdn_multipart_complete)
    router.add_get(uploaded, serve_uploaded)
