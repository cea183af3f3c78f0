"""What every model request shares, queued or direct: finding the model, checking the
input (and fetching the files it names) and starting the job, and the headers and bodies
of its outcome.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from nxs.emulator.accounts import Account
from nxs.emulator.endpoints import EndpointId, parse_endpoint
from nxs.emulator.jobs import SCHEDULER_KEY, Job
from nxs.emulator.media import attach_media
from nxs.emulator.models import REGISTRY_KEY, Model
from nxs.emulator.outputs import Outcome, prepare
from nxs.emulator.state import STATE_KEY, base_url
from nxs.emulator.transfers import UPLOADS_KEY
from nxs.emulator.wire import json_response, read_input
from nxs.errors import BadRequest, NotFound, ValidationFailed

FAILED_STATUS = {"client_cancelled": 499, "request_timeout": 504, "runner_server_error": 500}
TIMEOUT_HEADER = "X-Fal-Request-Timeout"


def find_model(request: web.Request, tail: str) -> tuple[EndpointId, Model]:
    """The endpoint and model a URL tail names; fal's 404 when there is none."""
    endpoint = parse_endpoint(tail)
    model = request.app[REGISTRY_KEY].get(endpoint.full) if endpoint else None
    if endpoint is None or model is None:
        detail = f"Path /{tail.strip('/')} not found"
        raise NotFound(detail, headers={"x-fal-billable-units": "0"})
    return endpoint, model


async def start_job(
    request: web.Request, account: Account, tail: str, webhook_url: str | None = None
) -> Job:
    """Validate the request's input for the model its URL names, then start the job."""
    endpoint, model = find_model(request, tail)
    state = request.app[STATE_KEY]
    start_timeout = read_start_timeout(request)
    try:
        clean = prepare(model, await read_input(request), state.rng)
        if model.media_fields:
            uploads = request.app[UPLOADS_KEY]
            attach_media(clean, model.media_fields, state.files, uploads)
    except ValidationFailed as error:  # the app saw it: it has a request id
        error.headers.setdefault("x-fal-request-id", str(uuid.uuid4()))
        raise
    return request.app[SCHEDULER_KEY].submit(
        endpoint,
        model,
        clean,
        account_id=account.account_id,
        base_url=base_url(request),
        webhook_url=webhook_url,
        start_timeout=start_timeout,
    )


def read_start_timeout(request: web.Request) -> float | None:
    """`X-Fal-Request-Timeout`: seconds the request may wait before it starts."""
    raw = request.headers.get(TIMEOUT_HEADER)
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < 10**9:  # also refuses nan
        raise BadRequest(f"Invalid {TIMEOUT_HEADER} header: must be a positive number of seconds")
    return seconds


def units_text(units: float) -> str:
    return str(int(units)) if float(units).is_integer() else f"{units:.2f}"


def outcome_headers(job: Job, outcome: Outcome) -> dict[str, str]:
    """x-fal-request-id and x-fal-billable-units always (0 on failures but an app's
    billed one); the error type on failures."""
    units = outcome.billable_units
    headers = {"x-fal-request-id": job.request_id, "x-fal-billable-units": units_text(units)}
    if outcome.error_type:
        headers["x-fal-error-type"] = outcome.error_type
    if outcome.error_type == "request_timeout":
        headers["x-fal-request-timeout-type"] = "user"
    return headers


def outcome_status(outcome: Outcome) -> int:
    if not outcome.failed:
        return 200
    return outcome.status or FAILED_STATUS.get(outcome.error_type or "", 500)


def outcome_body(outcome: Outcome) -> dict[str, Any]:
    if outcome.failed and outcome.error_type is None:  # an app's own error: no type
        return {"detail": outcome.error}
    if outcome.failed:
        return {"detail": outcome.error, "error_type": outcome.error_type}
    assert outcome.payload is not None
    return outcome.payload


def respond(job: Job, outcome: Outcome) -> web.Response:
    """The JSON answer for a finished job: its result, or its error and status."""
    status, headers = outcome_status(outcome), outcome_headers(job, outcome)
    return json_response(outcome_body(outcome), status, headers)
