"""The emulator's HTTP edges: reading a model input, answering in fal's shapes.

`read_input` takes the JSON body (or the query of a GET) and refuses malformed JSON,
a wrong content type or an oversized body as fal would; `error_middleware` turns
anything a handler raises into fal's `{"detail": …}` JSON, never a traceback.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from nxs.emulator.access import error_response
from nxs.emulator.state import STATE_KEY
from nxs.errors import (
    MalformedJson,
    MethodNotAllowed,
    NotFound,
    NxsError,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from nxs.jsoninput import is_json_type, parse_json, parse_object

logger = logging.getLogger("nxs.emulator")


def _query_value(raw: str) -> Any:
    try:
        return parse_json(raw)
    except MalformedJson:
        return raw


def _check_size(request: web.Request) -> None:
    limit = request.app[STATE_KEY].config.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"Request body too large (max {limit} bytes)")


async def read_input(request: web.Request) -> dict[str, Any]:
    """The model input: JSON object body, or the query string of a GET."""
    if request.method == "GET":
        return {key: _query_value(value) for key, value in request.query.items()}
    _check_size(request)
    raw = await request.read()
    if not raw.strip():
        return {}
    content_type = request.content_type.lower()
    if content_type and not is_json_type(content_type):
        raise UnsupportedMediaType(f"Unsupported content type {content_type!r}: send JSON")
    return parse_object(raw)


def _translate(exc: web.HTTPException, path: str) -> NxsError | None:
    if isinstance(exc, web.HTTPNotFound):
        return NotFound(f"Path {path} not found")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return MethodNotAllowed("Method Not Allowed")
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLarge()
    return None


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """fal-shaped JSON for every error: our own, aiohttp's, and unexpected ones."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except NxsError as error:
        return fal_error(error)
    except web.HTTPException as exc:
        translated = _translate(exc, request.path)
        if translated is None:
            raise
        return fal_error(translated)
    except Exception:
        logger.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(NxsError())


def fal_error(error: NxsError) -> web.Response:
    """An error as fal answers it; a 422 carries only pydantic's `detail` list."""
    if isinstance(error, ValidationFailed):
        headers = {"x-fal-billable-units": "0", **error.headers}
        return json_response({"detail": error.detail}, 422, headers)
    return error_response(error)


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """Compact JSON, as fal sends it."""
    text = json.dumps(body, separators=(",", ":"))
    return web.Response(text=text, status=status, content_type="application/json", headers=headers)
