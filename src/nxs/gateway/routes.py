"""Where a request goes: the gateway's paths parsed into a `Route`.

`POST /{owner}/{app}[/path]` runs on fal.run, `/queue/{endpoint}` submits to queue.fal.run,
`…/requests/{id}[/status[/stream]|/cancel]` (with or without `/queue`, with owner/alias or
the full endpoint path) reaches a queued request. NXS's own paths are resolved against fal's
catalogue (`EndpointIndex`: `/flux/dev` → `fal-ai/flux/dev`); `/api/proxy` and
`/api/fal/proxy` carry an `x-fal-target-url`, whose path is forwarded exactly as given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

from nxs.catalogue.index import EndpointIndex
from nxs.errors import BadRequest, MethodNotAllowed, NotFound

# Route kinds. Run, submit and rest calls may fail over between pool keys; the request
# operations (status, stream, result, cancel) are bound to the key that submitted.
RUN: Final = "run"
SUBMIT: Final = "submit"
STATUS: Final = "status"
STREAM: Final = "status_stream"
RESULT: Final = "result"
CANCEL: Final = "cancel"
REST: Final = "rest"
PROXY: Final = "proxy"
HEALTH: Final = "healthz"
READY: Final = "readyz"
METRICS: Final = "metrics"
FAL_WEBHOOK: Final = "fal_webhook"  # fal's callback to the relay: no API key
JWKS: Final = "jwks"  # NXS's webhook public keys: no API key

REQUEST_OPS: Final = frozenset({STATUS, STREAM, RESULT, CANCEL})
NAMESPACES: Final = frozenset({"workflows", "comfy"})
_OP_BY_TAIL: Final = {
    (): RESULT,
    ("status",): STATUS,
    ("status", "stream"): STREAM,
    ("cancel",): CANCEL,
}
_OP_METHODS: Final = {RESULT: "GET", STATUS: "GET", STREAM: "GET", CANCEL: "PUT"}
_FIXED: Final = {
    "healthz": HEALTH,
    "readyz": READY,
    "metrics": METRICS,
    "api/proxy": PROXY,
    "api/fal/proxy": PROXY,
}
# The REST calls of fal's clients, also on the gateway's own paths (→ rest.fal.ai).
REST_PATHS: Final = (
    "storage/upload/initiate",
    "storage/upload/initiate-multipart",
    "storage/upload/complete-multipart",
    "storage/auth/token",
    "tokens",
)
WEBHOOK_PREFIX: Final = "webhooks/fal/"


@dataclass(frozen=True, slots=True)
class Route:
    """A parsed request: its kind, the endpoint or app id, and the queued request's id."""

    kind: str
    endpoint: str = ""  # full endpoint id for run/submit; the rest path for rest calls
    request_id: str = ""
    host: str = ""  # set for proxied targets: the fal host named by x-fal-target-url


_STATIC: Final = {
    **{path: Route(kind) for path, kind in _FIXED.items()},
    **{path: Route(REST, path, host="rest.fal.ai") for path in REST_PATHS},
    ".well-known/jwks.json": Route(JWKS),
}


def app_id(endpoint: str) -> str:
    """`[namespace/]owner/alias` of an endpoint id: what fal's request URLs carry."""
    parts = endpoint.split("/")
    keep = 3 if parts[0] in NAMESPACES else 2
    return "/".join(parts[:keep])


class Router:
    """Parses raw paths against fal's catalogue and the configured owners; allocation-light."""

    def __init__(self, known_owners: Iterable[str]) -> None:
        self.index = EndpointIndex(frozenset(known_owners) | NAMESPACES)

    def match(self, method: str, raw_path: str) -> Route:
        """The route of a gateway path (still percent-encoded); raises 404/405/400."""
        path = raw_path.strip("/")
        fixed = _STATIC.get(path)
        if fixed is not None:
            return fixed
        if path.startswith(WEBHOOK_PREFIX):
            return Route(FAL_WEBHOOK, request_id=path[len(WEBHOOK_PREFIX) :])
        segments = path.split("/")
        queued = segments[0] == "queue"
        if queued:
            segments = segments[1:]
        return self.endpoint_route(method, segments, queued=queued, shown=raw_path)

    def endpoint_route(
        self, method: str, segments: list[str], *, queued: bool, shown: str, exact: bool = False
    ) -> Route:
        """Run, submit or a request operation, from the segments after host or `/queue`;
        `exact` (an SDK-proxy target's path) keeps the segments as fal would read them."""
        _check_segments(segments, shown)
        if not exact:
            segments = self.index.resolve(segments)
        operation = _request_operation(method, segments)
        if operation is not None:
            return operation
        if len(segments) < 2:
            raise NotFound(f"Path {shown} not found")
        endpoint = "/".join(segments)
        if queued:
            if method != "POST":
                raise MethodNotAllowed(f"Use POST to submit to {endpoint}")
            return Route(SUBMIT, endpoint)
        if method not in ("POST", "GET"):
            raise MethodNotAllowed(f"Use POST to run {endpoint}")
        return Route(RUN, endpoint)


def _check_segments(segments: list[str], shown: str) -> None:
    if not segments or not segments[0]:
        raise NotFound(f"Path {shown} not found")
    for segment in segments:
        if not segment or segment in (".", "..") or ("%" in segment and _dots(segment)):
            raise BadRequest(f"Invalid path {shown}")


def _dots(segment: str) -> bool:
    """A percent-encoded `.` or `..` (which the upstream would resolve)."""
    return unquote(segment) in (".", "..")


def _request_operation(method: str, segments: list[str]) -> Route | None:
    """`…/{owner}/{alias}[/path…]/requests/{id}[tail]`, or None when it is not one."""
    last = len(segments) - 1
    for index in range(2, last):
        if segments[index] != "requests":
            continue
        kind = _OP_BY_TAIL.get(tuple(segments[index + 2 :]))
        if kind is None:
            continue
        if method == _OP_METHODS[kind] or (kind == CANCEL and method == "POST"):
            return Route(kind, "/".join(segments[:index]), segments[index + 1])
        # Otherwise an endpoint whose own path happens to contain "requests".
    return None
