"""The SDK proxy's allow-list: which `x-fal-target-url` values NXS will call for a customer.

Only https, only the exact hosts fal's clients use (fal.run, queue.fal.run, and a few
rest.fal.ai / rest.alpha.fal.ai paths), no userinfo, no ports, no IP literals, no
fragments. Anything else is a 400 and no request leaves the gateway. An allowed target
reaches exactly that host, path and query, as fal's own proxy forwards it: the shorthand
of NXS's REST paths (`/flux/dev` → `fal-ai/flux/dev`) never applies to a full fal URL.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import SplitResult, urlsplit

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
        return Route(REST, parts.path.lstrip("/"), host=host), parts.query
    raise InvalidTarget()


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
