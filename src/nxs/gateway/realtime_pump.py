"""One bridged realtime session: frames pumped between the client's ASGI WebSocket and
fal's aiohttp WebSocket until either side closes, a frame is too large (1009), no frame
has passed for the idle limit (1001) or the worker is stopping (1001, once fal's socket is
closed). The upstream socket is always closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Final

import aiohttp

from nxs.config import Settings

Close = tuple[int, str] | None  # the close to send the client; None: it is gone already
NORMAL: Final = 1000
GOING_AWAY: Final = 1001
TOO_BIG: Final = 1009
INTERNAL_ERROR: Final = 1011


class Pump:
    """Relays frames both ways; `frames` and `seconds` describe the session afterwards."""

    def __init__(
        self,
        receive: Any,
        send: Any,
        upstream: aiohttp.ClientWebSocketResponse,
        settings: Settings,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self._receive, self._send, self._upstream = receive, send, upstream
        self._stopping = stopping or asyncio.Event()
        self._limit = settings.realtime_max_frame_bytes
        self._idle = settings.realtime_idle_seconds
        self._started = self._last = time.monotonic()
        self.frames = 0
        self.seconds = 0.0

    async def run(self) -> None:
        tasks = [
            asyncio.ensure_future(self._from_client()),
            asyncio.ensure_future(self._from_upstream()),
            asyncio.ensure_future(self._watch_idle()),
            asyncio.ensure_future(self._watch_stop()),
        ]
        close: Close = None
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            first = next(iter(done))
            close = _broken() if first.exception() is not None else first.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._upstream.close()
            self.seconds = time.monotonic() - self._started
        if close is not None:
            with contextlib.suppress(Exception):  # the client may have gone meanwhile
                await self._send({"type": "websocket.close", "code": close[0], "reason": close[1]})

    async def _from_client(self) -> Close:
        while True:
            message = await self._receive()
            if message["type"] == "websocket.disconnect":
                return None
            data = message.get("bytes")
            text = message.get("text") if data is None else None
            size = len(data) if data is not None else len((text or "").encode())
            if size > self._limit:
                return TOO_BIG, f"Frame larger than {self._limit} bytes"
            self._touch()
            if data is not None:
                await self._upstream.send_bytes(data)
            else:
                await self._upstream.send_str(text or "")

    async def _from_upstream(self) -> Close:
        async for message in self._upstream:
            self._touch()
            if message.type == aiohttp.WSMsgType.TEXT:
                await self._send({"type": "websocket.send", "text": message.data})
            elif message.type == aiohttp.WSMsgType.BINARY:
                await self._send({"type": "websocket.send", "bytes": message.data})
            elif message.type == aiohttp.WSMsgType.ERROR:
                too_big = getattr(message.data, "code", None) == TOO_BIG
                return (TOO_BIG, "Upstream frame too large") if too_big else _broken()
        code = self._upstream.close_code
        return (code, "") if code and code not in (1005, 1006) else (NORMAL, "")

    async def _watch_idle(self) -> Close:
        while True:
            remaining = self._last + self._idle - time.monotonic()
            if remaining <= 0:
                return GOING_AWAY, f"Idle for {self._idle:g} s"
            await asyncio.sleep(remaining)

    async def _watch_stop(self) -> Close:
        await self._stopping.wait()
        return GOING_AWAY, "Server shutting down"

    def _touch(self) -> None:
        self._last = time.monotonic()
        self.frames += 1


def _broken() -> tuple[int, str]:
    return INTERNAL_ERROR, "Upstream connection failed"
