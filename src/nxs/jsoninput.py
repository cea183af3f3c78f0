"""Reading JSON a caller sent: the one parser for every body NXS and its emulator take
from outside (model inputs, billing estimates, tokens, webhooks, admin input).

`parse_json` never lets RecursionError, UnicodeDecodeError or Python's integer-digit
limit escape: malformed, non-UTF-8, too deep or unreadable input raises `MalformedJson`
with fal's 422 detail list. NaN, Infinity and 1e400 read as Python's json reads them (as
fal's apps do); the model inputs refuse them where a finite number is required.
"""

from __future__ import annotations

import json
from typing import Any, Final

from nxs.errors import BadRequest, MalformedJson

MAX_DEPTH: Final = 256  # nested arrays/objects; far below the interpreter's recursion limit
JSON_TYPES: Final = ("application/json", "text/json")


def parse_json(raw: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of `raw`; `MalformedJson` for anything not acceptable JSON."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise MalformedJson([_decode_error(exc)]) from exc
    except UnicodeDecodeError as exc:
        raise MalformedJson([body_error("invalid UTF-8 in the body")]) from exc
    except RecursionError as exc:
        raise MalformedJson([body_error("JSON nested too deeply")]) from exc
    except ValueError as exc:  # an integer past Python's digit limit
        raise MalformedJson([body_error("number too large to read")]) from exc
    if _may_be_deep(raw, max_depth) and too_deep(value, max_depth):
        raise MalformedJson([body_error("JSON nested too deeply")])
    return value


def parse_object(raw: bytes | str, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """A JSON object (fal's model inputs and most REST bodies); `MalformedJson` otherwise."""
    value = parse_json(raw, max_depth)
    if not isinstance(value, dict):
        raise MalformedJson([body_error("value is not a valid dict", "type_error.dict")])
    return value


def parse_rest_object(raw: bytes | str) -> dict[str, Any]:
    """The JSON object body of one of fal's REST calls (storage, tokens): fal answers
    these 400, not 422, when the body is not a JSON object."""
    try:
        value = parse_json(raw)
    except MalformedJson as exc:
        raise BadRequest("Request body is not valid JSON") from exc
    if not isinstance(value, dict):
        raise BadRequest("Request body must be a JSON object")
    return value


def is_json_type(content_type: str) -> bool:
    """Whether a media type (lower case, no parameters) names JSON, as fal's apps take it."""
    return content_type in JSON_TYPES or content_type.endswith("+json")


def too_deep(value: Any, max_depth: int) -> bool:
    """Whether arrays/objects nest deeper than `max_depth` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if depth > max_depth:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children)
    return False


def body_error(msg: str, kind: str = "value_error") -> dict[str, Any]:
    """One entry of fal's 422 detail about the body as a whole."""
    return {"loc": ["body"], "msg": msg, "type": kind}


def _may_be_deep(raw: bytes | str, max_depth: int) -> bool:
    """Cheap bound: fewer opening brackets than the limit cannot nest past it."""
    if isinstance(raw, str):
        return raw.count("[") + raw.count("{") > max_depth
    return raw.count(b"[") + raw.count(b"{") > max_depth


def _decode_error(exc: json.JSONDecodeError) -> dict[str, Any]:
    ctx = {"msg": exc.msg, "pos": exc.pos, "lineno": exc.lineno, "colno": exc.colno}
    return {"loc": ["body", exc.pos], "msg": exc.msg, "type": "value_error.jsondecode", "ctx": ctx}
