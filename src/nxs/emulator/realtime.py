"""The realtime WebSocket: `/fal.run/{endpoint}/realtime`, speaking msgpack as
`fal.realtime.connect` and `fal_client.realtime` expect.

Auth by `?fal_jwt_token=` (from `POST /tokens/`) or `Authorization: Key …` on the
handshake. Each binary msgpack frame (an input object) is answered with one msgpack
frame holding the generated image(s); bad frames get an `x-fal-error` text frame.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import msgpack
from aiohttp import WSMsgType, web

from nxs.emulator.access import authorize, fal_errors
from nxs.emulator.models import REGISTRY_KEY, Model
from nxs.emulator.realtime_images import parse_input, result
from nxs.emulator.state import STATE_KEY
from nxs.emulator.tokens import InvalidToken, verify_token
from nxs.errors import BadRequest, NotFound, NxsError

REALTIME_APPS = frozenset({"fal-ai/fast-lcm-diffusion"})  # models of the registry
NAMESPACES = ("workflows", "comfy")
UNAUTHORIZED = json.dumps({"status": "error", "error": "Unauthorized"})
POLICY_VIOLATION = 1008
MAX_FRAME_BYTES = 16 * 1024 * 1024
SIMULATED_SECONDS = 0.02


def app_alias(endpoint: str) -> str:
    """The alias a token's `allowed_apps` names: `fal-ai/fast-lcm-diffusion` → its 2nd part."""
    parts = endpoint.split("/")
    index = 2 if parts[0] in NAMESPACES else 1
    return parts[index] if len(parts) > index else ""


def error_frame(error: str, reason: str, **extra: Any) -> str:
    return json.dumps({"type": "x-fal-error", "error": error, "reason": reason, **extra})


def _token_account(request: web.Request, endpoint: str) -> str | None:
    """The account of a valid `fal_jwt_token` for this app, or None if it isn't one."""
    state = request.app[STATE_KEY]
    try:
        claims = verify_token(state.jwt_secret, request.query["fal_jwt_token"])
    except InvalidToken:
        state.record(request.method, request.path, None)
        return None
    state.record(request.method, request.path, claims.account_id)
    return claims.account_id if claims.allows(app_alias(endpoint)) else None


async def _refuse(ws: web.WebSocketResponse) -> web.WebSocketResponse:
    await ws.send_str(UNAUTHORIZED)
    await ws.close(code=POLICY_VIOLATION, message=b"Unauthorized")
    return ws


@fal_errors
async def connect(request: web.Request) -> web.StreamResponse:
    """Upgrade to a WebSocket and answer input frames until the client closes."""
    endpoint = request.match_info["endpoint"].strip("/")
    model = request.app[REGISTRY_KEY].get(endpoint) if endpoint in REALTIME_APPS else None
    if model is None:
        request.app[STATE_KEY].record(request.method, request.path, None)
        raise NotFound(f"Path /{endpoint}/realtime not found")
    account_id: str | None = None
    if "fal_jwt_token" in request.query:
        account_id = _token_account(request, endpoint)
    elif request.headers.get("Authorization"):
        account_id = authorize(request).account_id  # refuses with the key's HTTP error
    else:
        request.app[STATE_KEY].record(request.method, request.path, None)
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES)
    if not ws.can_prepare(request).ok:
        raise BadRequest("Expected a WebSocket upgrade")
    await ws.prepare(request)
    if account_id is None:
        return await _refuse(ws)
    await _serve(request, ws, model)
    return ws


async def _serve(request: web.Request, ws: web.WebSocketResponse, model: Model) -> None:
    scale = request.app[STATE_KEY].config.time_scale
    async for message in ws:
        if message.type == WSMsgType.BINARY:
            await _answer(ws, model, _decode_binary(message.data), scale)
        elif message.type == WSMsgType.TEXT:
            await _answer(ws, model, _decode_text(message.data), scale)
        elif message.type == WSMsgType.ERROR:
            break


def _decode_binary(data: bytes) -> Any:
    try:
        return msgpack.unpackb(data, raw=False)
    except (ValueError, TypeError, RecursionError, msgpack.UnpackException):
        return ValueError("Frame is not valid msgpack")


def _decode_text(data: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return ValueError("Text frame is not valid JSON")


async def _answer(ws: web.WebSocketResponse, model: Model, decoded: Any, scale: float) -> None:
    """One result frame for one input, or an x-fal-error frame saying what was wrong."""
    if isinstance(decoded, ValueError):
        await ws.send_str(error_frame("INVALID_INPUT", str(decoded)))
        return
    try:
        clean = parse_input(model, decoded)
    except NxsError as error:
        await ws.send_str(error_frame("VALIDATION_ERROR", _reason(error), detail=error.detail))
        return
    started = time.perf_counter()
    await asyncio.sleep(SIMULATED_SECONDS * scale)
    answer = await asyncio.get_running_loop().run_in_executor(None, result, model, clean)
    elapsed = time.perf_counter() - started
    answer["timings"] = {"inference": round(elapsed, 4)}
    timing = {"type": "x-fal-message", "action": "timings", "timing": round(elapsed * 1000, 1)}
    await ws.send_str(json.dumps(timing))
    await ws.send_bytes(msgpack.packb(answer, use_bin_type=True))


def _reason(error: NxsError) -> str:
    if isinstance(error.detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', [])[1:])}: {item.get('msg')}"
            for item in error.detail
            if isinstance(item, dict)
        )
    return str(error.detail)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/fal.run/{endpoint:.+}/realtime", connect)
