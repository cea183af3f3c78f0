"""The admin API's request bodies read once through NXS's one JSON parser before FastAPI
sees them: malformed, non-UTF-8, too deep or unreadable JSON is a 422 in fal's shape (and
never FastAPI's 400 or a traceback); a body over `MAX_BODY_BYTES` is a 413 read no further;
a body that reads is replayed to FastAPI unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from nxs.errors import PayloadTooLarge
from nxs.jsoninput import is_json_type, parse_json

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
MAX_BODY_BYTES: Final = 1024 * 1024  # an admin request is a few fields; a price list, a few KB


class AdminBodyTooLarge(PayloadTooLarge):
    detail = "Request body too large (max 1MB)"


async def checked_receive(scope: Message, receive: Receive) -> Receive:
    """A `receive` replaying the request's body after checking it reads as JSON
    (`MalformedJson` otherwise). Bodies FastAPI would not read as JSON pass unchecked."""
    if scope.get("method") not in BODY_METHODS:
        return receive
    messages = await _read_all(receive)
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
    if body.strip() and _read_as_json(scope):
        parse_json(body)
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


async def _read_all(receive: Receive) -> list[Message]:
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        size += len(message.get("body", b""))
        if size > MAX_BODY_BYTES:
            raise AdminBodyTooLarge()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _read_as_json(scope: Message) -> bool:
    """Whether FastAPI reads the body as JSON: `application/json` or `application/*+json`
    (anything else, or no content type, is refused by the schema as not an object)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media = value.decode("latin-1").partition(";")[0].strip().lower()
            return media.startswith("application/") and is_json_type(media)
    return False
