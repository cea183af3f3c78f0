"""How the admin API answers errors: always fal's shape, `{"detail": …, "error_type": …}`.

`NxsError`s render as the gateway renders them; request validation becomes a 422 whose
detail lists `{loc, msg, type}` per bad field (the submitted value is never echoed: it may
be a secret); unknown routes and methods, and anything unexpected, keep the same shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from nxs.errors import NxsError, ValidationFailed

NOT_JSON_OBJECT = "The body must be a JSON object, sent with Content-Type: application/json"


def install(app: FastAPI) -> None:
    """Register the handlers on `app`."""
    app.add_exception_handler(NxsError, _nxs_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


def respond(error: NxsError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers or None)


def field_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic's errors reduced to `{loc, msg, type}` (no `input`, no `ctx`)."""
    return [
        {"loc": list(error.get("loc", ())), "msg": _message(error), "type": error["type"]}
        for error in errors
    ]


def _message(error: Any) -> str:
    if list(error.get("loc", ())) == ["body"] and error["type"] == "model_attributes_type":
        return NOT_JSON_OBJECT
    return str(error.get("msg", ""))


async def _nxs_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NxsError)
    return respond(exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return respond(ValidationFailed(field_errors(exc.errors())))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    error = NxsError(exc.detail, headers=dict(exc.headers or {}))
    error.status = exc.status_code
    error.error_type = {404: "not_found", 405: "method_not_allowed"}.get(
        exc.status_code, "http_error"
    )
    return respond(error)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A 500 in fal's shape (Starlette re-raises afterwards; `AdminApi` logs it once)."""
    return respond(NxsError())
