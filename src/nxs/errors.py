"""The one error hierarchy of NXS, and its rendering in fal's shape.

Every error a client can see is a `NxsError` subclass; `render` turns it into
`{"detail": …, "error_type": …}` bytes, the body the official fal clients read.
"""

from __future__ import annotations

import json
import math
from typing import Any


class NxsError(Exception):
    """Base of every error NXS answers with; subclasses set status, type and detail."""

    status = 500
    error_type = "internal_error"
    detail: Any = "Internal error"

    def __init__(self, detail: Any = None, *, headers: dict[str, str] | None = None) -> None:
        if detail is not None:
            self.detail = detail
        self.headers = headers or {}
        super().__init__(detail if isinstance(detail, str) else self.detail)

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "error_type": self.error_type}


class BadRequest(NxsError):
    status, error_type, detail = 400, "bad_request", "Invalid request"


class InvalidApiKey(NxsError):
    status, error_type, detail = 401, "invalid_api_key", "Missing or invalid API key"


class PaymentRequired(NxsError):
    status, error_type, detail = 402, "subscription_inactive", "Subscription not active"


class Forbidden(NxsError):
    status, error_type, detail = 403, "forbidden", "Forbidden"


class NotFound(NxsError):
    status, error_type, detail = 404, "not_found", "Not found"


class MethodNotAllowed(NxsError):
    status, error_type, detail = 405, "method_not_allowed", "Method not allowed"


class PayloadTooLarge(NxsError):
    status, error_type, detail = 413, "payload_too_large", "Request body too large (max 50MB)"


class UnsupportedMediaType(NxsError):
    status, error_type, detail = 415, "unsupported_media_type", "Unsupported content type"


class ValidationFailed(NxsError):
    """422 with fal's list-of-errors detail: `[{loc, msg, type}]`."""

    status, error_type, detail = 422, "validation_error", []


class RateLimited(NxsError):
    status, error_type, detail = 429, "rate_limited", "Rate limit exceeded"


class UpstreamFailed(NxsError):
    status, error_type = 502, "upstream_failed"
    detail = "All upstream keys failed — try again later"


class UpstreamBrokeOff(NxsError):
    """fal's connection was lost after its answer began: a stream gets this as its last
    event and the body is cut short, so the official clients raise rather than take the
    partial answer as the result."""

    status, error_type = 502, "upstream_broke_off"
    detail = "The upstream connection was lost mid-answer"


class UpstreamBusy(RateLimited):
    """Every usable upstream key is at its concurrency limit or rate limited: 429 with the
    earliest Retry-After (whole seconds, at least 1), which the official clients retry."""

    detail = "All upstream keys are busy — retry shortly"

    def __init__(self, retry_after: float = 1.0) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(headers={"Retry-After": str(self.retry_after)})


class ClientGone(NxsError):
    """The client closed its connection while its run waited for an upstream slot: the run
    is not sent to fal (nobody would read its answer, and fal would bill it)."""

    status, error_type, detail = 499, "client_closed", "Client closed the request"


class NoUpstreamKeys(NxsError):
    status, error_type, detail = 503, "no_upstream_keys", "No upstream keys configured"


def render(error: NxsError) -> bytes:
    """The wire body of an error: compact JSON in fal's shape."""
    return json.dumps(error.body(), separators=(",", ":")).encode()


class Conflict(NxsError):
    status, error_type, detail = 409, "conflict", "Conflict"


class SharedStateUnavailable(NxsError):
    """The shared state (Redis) did not answer and limits fail closed
    (`NXS_LIMITS_WHEN_REDIS_DOWN=closed`, the default)."""

    status, error_type = 503, "shared_state_unavailable"
    detail = "Rate limiting is temporarily unavailable — try again shortly"


class MalformedJson(ValidationFailed):
    """A body a caller sent that is not acceptable JSON (malformed, not UTF-8, nested too
    deeply, a number too long to read, or of the wrong type): fal's 422 list of errors."""
