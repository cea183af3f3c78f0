"""One authenticated Platform API request as a route sees it: the caller's grant, its
query, the store and the way to reach it without holding the event loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, ParamSpec, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from nxs.errors import BadRequest
from nxs.jsoninput import parse_object
from nxs.platform.params import Query
from nxs.store.database import Database
from nxs.store.models import KeyGrant
from nxs.store.offload import Offload

MAX_BODY_BYTES: Final = 1 << 20
P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    request: Request
    grant: KeyGrant
    query: Query
    database: Database
    offload: Offload
    now: datetime

    @property
    def customer_id(self) -> str:
        return self.grant.customer_id

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A store function, off the event loop on PostgreSQL."""
        return await self.offload.call(function, *args, **kwargs)

    async def body(self) -> dict[str, Any]:
        """The JSON object sent (at most 1 MiB), or fal's 400."""
        raw = bytearray()
        async for chunk in self.request.stream():
            raw += chunk
            if len(raw) > MAX_BODY_BYTES:
                raise BadRequest("Request body too large (max 1 MiB)")
        return parse_object(bytes(raw))


def json(body: Any, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status)
