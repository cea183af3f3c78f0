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
from nxs.emulator.realtime_images import RealtimeInput, parse_input, render
from nxs.emulator.state import STATE_KEY
from nxs.emulator.tokens import InvalidToken, verify_token
from nxs.errors import NotFound, NxsError, ValidationFailed

REALTIME_APPS = frozenset(
    {"fal-ai/fast-lcm-diffusion", "fal-ai/fast-turbo-diffusion", "fal-ai/lcm-sd15-i2i"}
)
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
    if endpoint not in REALTIME_APPS:
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
        raise ValidationFailed(
            [
                {
                    "loc": ["header", "upgrade"],
                    "msg": "WebSocket upgrade expected",
                    "type": "value_error",
                }
            ]
        )
    await ws.prepare(request)
    if account_id is None:
        return await _refuse(ws)
    await _serve(request, ws)
    return ws


async def _serve(request: web.Request, ws: web.WebSocketResponse) -> None:
    scale = request.app[STATE_KEY].config.time_scale
    async for message in ws:
        if message.type == WSMsgType.BINARY:
            await _answer(ws, _decode_binary(message.data), scale)
        elif message.type == WSMsgType.TEXT:
            await _answer(ws, _decode_text(message.data), scale)
        elif message.type == WSMsgType.ERROR:
            break


def _decode_binary(data: bytes) -> Any:
    try:
        return msgpack.unpackb(data, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException):
        return ValueError("Frame is not valid msgpack")


def _decode_text(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return ValueError("Text frame is not valid JSON")


async def _answer(ws: web.WebSocketResponse, decoded: Any, scale: float) -> None:
    """One result frame for one input, or an x-fal-error frame saying what was wrong."""
    if isinstance(decoded, ValueError):
        await ws.send_str(error_frame("INVALID_INPUT", str(decoded)))
        return
    try:
        request_input = parse_input(decoded)
    except NxsError as error:
        await ws.send_str(error_frame("VALIDATION_ERROR", _reason(error), detail=error.detail))
        return
    started = time.perf_counter()
    await asyncio.sleep(SIMULATED_SECONDS * scale)
    result = await asyncio.get_running_loop().run_in_executor(None, _result, request_input)
    elapsed = time.perf_counter() - started
    result["timings"] = {"inference": round(elapsed, 4)}
    timing = {"type": "x-fal-message", "action": "timings", "timing": round(elapsed * 1000, 1)}
    await ws.send_str(json.dumps(timing))
    await ws.send_bytes(msgpack.packb(result, use_bin_type=True))


def _reason(error: NxsError) -> str:
    if isinstance(error.detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', [])[1:])}: {item.get('msg')}"
            for item in error.detail
            if isinstance(item, dict)
        )
    return str(error.detail)


def _result(request_input: RealtimeInput) -> dict[str, Any]:
    images = [
        {
            "content": render(request_input, index),
            "width": request_input.width,
            "height": request_input.height,
            "content_type": f"image/{request_input.output_format}",
        }
        for index in range(request_input.num_images)
    ]
    result: dict[str, Any] = {
        "images": images,
        "seed": request_input.seed,
        "has_nsfw_concepts": [False] * len(images),
        "num_inference_steps": request_input.num_inference_steps,
    }
    if request_input.request_id is not None:
        result["request_id"] = request_input.request_id
    return result


def add_routes(app: web.Application) -> None:
    app.router.add_get("/fal.run/{endpoint:.+}/realtime", connect)
