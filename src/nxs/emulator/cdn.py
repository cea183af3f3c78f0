"""The emulator's CDN host, `v3.fal.media`: every stored file (generated outputs and
uploads kept in `state.files`) served back at `/v3.fal.media/files/{id}/{name}`.

Public, as fal's CDN URLs are: no key needed, but each fetch is recorded.
"""

from __future__ import annotations

from aiohttp import web

from nxs.emulator.files import CDN_PREFIX
from nxs.emulator.state import STATE_KEY
from nxs.errors import NotFound


async def serve_file(request: web.Request) -> web.Response:
    """A stored file's bytes with its content type; fal's 404 shape when unknown."""
    state = request.app[STATE_KEY]
    state.record(request.method, request.path, None)
    stored = state.files.get(request.match_info["file_id"])
    if stored is None:
        raise NotFound("File not found")
    headers = {"Cache-Control": "public, max-age=3600"}
    return web.Response(body=stored.data, content_type=stored.content_type, headers=headers)


def add_routes(app: web.Application) -> None:
    app.router.add_get(CDN_PREFIX + "/{file_id:.+}", serve_file)
