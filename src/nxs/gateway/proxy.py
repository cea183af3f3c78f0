"""The SDK proxy's allow-list: which `x-fal-target-url` values NXS will call for a customer.

Only https, only the exact hosts fal's clients use (fal.run, queue.fal.run, and a few
rest.fal.ai / rest.alpha.fal.ai paths), no userinfo, no ports, no IP literals, no
fragments. Anything else is a 400 and no request leaves the gateway. An allowed target
reaches exactly that host, path and query, as fal's own proxy forwards it: the shorthand
of NXS's REST paths (`/flux/dev` → `fal-ai/flux/dev`) never applies to a full fal URL.
A storage call may name no `storage_type` or fal's CDN (`fal-cdn-v3`, what @fal-ai/client
sends): like fal's own proxy, NXS lends its upstream accounts to no other storage.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import SplitResult, parse_qs, urlsplit

from nxs.errors import BadRequest
from nxs.gateway.routes import REST, RUN, Route, Router

RUN_HOST: Final = "fal.run"
QUEUE_HOST: Final = "queue.fal.run"
REST_HOSTS: Final = frozenset({"rest.fal.ai", "rest.alpha.fal.ai"})
REST_PATHS: Final = frozenset(
    {
        "storage/upload/initiate",
        "storage/upload/initiate-multipart",
        "storage/upload/complete-multipart",
        "storage/auth/token",
        "tokens",
    }
)
STORAGE_TYPE: Final = "fal-cdn-v3"
_ALLOWED_CHARS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?[]!$&'()*+,;=%"
)


class InvalidTarget(BadRequest):
    detail = "Invalid x-fal-target-url"


def parse_target(raw: str | None, method: str, router: Router) -> tuple[Route, str]:
    """The route and query string a proxied call asks for; raises `InvalidTarget`."""
    if not raw:
        raise InvalidTarget("Missing x-fal-target-url header")
    parts = _split(raw)
    host = parts.hostname or ""
    path = parts.path.strip("/")
    segments = path.split("/")
    if host == QUEUE_HOST:
        route = router.endpoint_route(method, segments, queued=True, shown=parts.path, exact=True)
        return Route(route.kind, route.endpoint, route.request_id, QUEUE_HOST), parts.query
    if host == RUN_HOST:
        route = router.endpoint_route(method, segments, queued=False, shown=parts.path, exact=True)
        endpoint = route.endpoint if route.kind == RUN else path
        return Route(RUN, endpoint, host=RUN_HOST), parts.query
    if host in REST_HOSTS and path in REST_PATHS and method in ("POST", "PUT"):
        _check_storage_type(parts.query)
        return Route(REST, parts.path.lstrip("/"), host=host), parts.query
    raise InvalidTarget()


def _check_storage_type(query: str) -> None:
    """Refuse a `storage_type` other than fal's CDN (none named: fal chooses, as before)."""
    kinds = set(parse_qs(query, keep_blank_values=True).get("storage_type", []))
    if kinds - {STORAGE_TYPE}:
        raise InvalidTarget(f"Only storage_type={STORAGE_TYPE} is allowed through the proxy")


def _split(raw: str) -> SplitResult:
    if not raw.startswith("https://") or not set(raw) <= _ALLOWED_CHARS:
        raise InvalidTarget()
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise InvalidTarget() from exc
    if parts.scheme != "https" or "@" in parts.netloc or "#" in raw:
        raise InvalidTarget()
    if port is not None or parts.netloc != parts.hostname:
        raise InvalidTarget()
    return parts
