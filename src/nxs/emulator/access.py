"""Who is calling a fal host of the emulator: authenticate, record, refuse in fal's shape.

Shared by the storage, token and realtime routes: `authorize` turns the request's
`Authorization` header into an Account (recording the request either way),
`fal_errors` wraps a handler so any NxsError it raises is answered in fal's JSON shape.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from nxs.emulator import accounts
from nxs.emulator.state import STATE_KEY
from nxs.errors import NxsError, PayloadTooLarge, render
from nxs.jsoninput import parse_rest_object

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def authorize(request: web.Request) -> accounts.Account:
    """The caller's account; records the request and raises the key's error if any."""
    state = request.app[STATE_KEY]
    try:
        account = accounts.authenticate(request.headers.get("Authorization"), state.rng)
    except NxsError:
        state.record(request.method, request.path, None)
        raise
    state.record(request.method, request.path, account.account_id)
    return account


def error_response(error: NxsError) -> web.Response:
    """Any NxsError in fal's JSON shape, with its status and headers."""
    return web.Response(
        body=render(error),
        status=error.status,
        content_type="application/json",
        headers=error.headers,
    )


def fal_errors(handler: Handler) -> Handler:
    """Answer any NxsError the handler raises as fal does, never with a traceback."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except NxsError as error:
            return error_response(error)

    return wrapped


async def json_object(request: web.Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """The request's JSON body, which must be an object; 400 otherwise."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge() from exc
    if empty_ok and not raw.strip():
        return {}
    return parse_rest_object(raw)
