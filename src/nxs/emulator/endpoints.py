"""Endpoint ids and queue paths, parsed exactly as the official clients build them.

`workflows/…` and `comfy/…` ids carry a namespace before owner/alias; the rest of an
id is its path (`fal-ai/flux/dev` → app `fal-ai/flux`, path `dev`). Submit and run use
the full id; status, result and cancel URLs carry only `[namespace/]owner/alias`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NAMESPACES = ("workflows", "comfy")
LEGACY_ID = re.compile(r"^([0-9]+)-([a-zA-Z0-9-]+)$")
REQUEST_ACTIONS = {(): "result", ("status",): "status", ("status", "stream"): "stream"}
REQUEST_ACTIONS[("cancel",)] = "cancel"


@dataclass(frozen=True)
class EndpointId:
    """A parsed id: `namespace` may be empty, `path` is what follows owner/alias."""

    namespace: str
    owner: str
    alias: str
    path: str

    @property
    def app_id(self) -> str:
        """`[namespace/]owner/alias`: the part queue status/result/cancel URLs keep."""
        head = f"{self.namespace}/" if self.namespace else ""
        return f"{head}{self.owner}/{self.alias}"

    @property
    def full(self) -> str:
        return f"{self.app_id}/{self.path}" if self.path else self.app_id


@dataclass(frozen=True)
class RequestPath:
    """A queue URL about one request: its app, id and action (result/status/stream/cancel)."""

    app_id: str
    request_id: str
    action: str


def _segments(raw: str) -> list[str]:
    return [part for part in raw.strip("/").split("/") if part]


def parse_endpoint(raw: str) -> EndpointId | None:
    """The endpoint an id (or a URL tail) names; None when it has no owner/alias."""
    parts = _segments(raw)
    if len(parts) == 1 and (legacy := LEGACY_ID.match(parts[0])):
        parts = list(legacy.groups())
    namespace = parts[0] if parts and parts[0] in NAMESPACES else ""
    if namespace:
        parts = parts[1:]
    if len(parts) < 2:
        return None
    return EndpointId(namespace, parts[0], parts[1], "/".join(parts[2:]))


def parse_request_path(raw: str) -> RequestPath | None:
    """`[ns/]owner/alias/requests/{id}[/status[/stream]|/cancel]`, or None if not one."""
    parts = _segments(raw)
    head = 3 if parts and parts[0] in NAMESPACES else 2
    if len(parts) < head + 2 or parts[head] != "requests":
        return None
    action = REQUEST_ACTIONS.get(tuple(parts[head + 2 :]))
    if action is None:
        return None
    return RequestPath("/".join(parts[:head]), parts[head + 1], action)
