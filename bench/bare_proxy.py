"""The baseline of the benchmark: a bare pass-through proxy, as in perf-baseline.md.

Raw ASGI on uvicorn with one pooled aiohttp session: swap Authorization, drop
hop-by-hop headers, forward to BARE_UPSTREAM + path, stream the answer back.
Run: BARE_UPSTREAM=http://127.0.0.1:8081/fal.run uvicorn --factory bench.bare_proxy:create
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp

HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"host", b"authorization", b"te"}


def create() -> Any:
    upstream = os.environ["BARE_UPSTREAM"]
    session: dict[str, aiohttp.ClientSession] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if "s" in session:
                        await session["s"].close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if "s" not in session:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None)
            session["s"] = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k not in HOP}
        headers["Authorization"] = "Key upstream-secret-key"
        url = upstream + scope["path"]
        async with session["s"].request(scope["method"], url, data=body, headers=headers) as up:
            out = [
                (k.encode(), v.encode())
                for k, v in up.headers.items()
                if k.lower() not in ("connection", "transfer-encoding", "keep-alive")
            ]
            await send({"type": "http.response.start", "status": up.status, "headers": out})
            async for chunk in up.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

    return app
