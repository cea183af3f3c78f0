"""`queue.fal.run`: submit, status (polled or streamed), result and cancel.

Submit takes the full endpoint id (path included); the request URLs carry only
`[namespace/]owner/alias/requests/{id}`. Another account's request id is answered
exactly like an unknown one. Every URL returned starts at the address reached.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from nxs.emulator.access import authorize
from nxs.emulator.accounts import Account
from nxs.emulator.calls import outcome_body, outcome_status, respond, start_job
from nxs.emulator.endpoints import RequestPath, parse_endpoint, parse_request_path
from nxs.emulator.jobs import SCHEDULER_KEY, Job
from nxs.emulator.state import base_url
from nxs.emulator.webhooks import WEBHOOKS_KEY
from nxs.emulator.wire import json_response
from nxs.errors import BadRequest, MethodNotAllowed, NotFound, RateLimited, ValidationFailed

PREFIX = "/queue.fal.run"
ACTION_METHODS = {"result": "GET", "status": "GET", "stream": "GET", "cancel": "PUT"}
MAX_QUEUE_PARAM = "fal_max_queue_length"


def request_urls(request: web.Request, job: Job) -> dict[str, str]:
    home = f"{base_url(request)}{PREFIX}/{job.endpoint.app_id}/requests/{job.request_id}"
    return {"response_url": home, "status_url": f"{home}/status", "cancel_url": f"{home}/cancel"}


def status_body(
    request: web.Request, job: Job, with_logs: bool, logs_from: int = 0
) -> dict[str, Any]:
    """A QueueStatus as the clients parse it: IN_QUEUE, IN_PROGRESS or COMPLETED.

    `logs_from` skips logs already sent (status streams send each log line once).
    """
    body: dict[str, Any] = {"status": job.status, "request_id": job.request_id}
    body |= request_urls(request, job)
    if job.status == "IN_QUEUE":
        body["queue_position"] = request.app[SCHEDULER_KEY].queue_position(job)
        return body
    body["logs"] = job.logs[logs_from:] if with_logs else None
    if job.done and job.outcome is not None:
        body["metrics"] = {"inference_time": job.inference_time}
        if job.outcome.failed:
            body |= {"error": job.outcome.error, "error_type": job.outcome.error_type}
    return body


def wants_logs(request: web.Request) -> bool:
    return request.query.get("logs", "0").lower() in ("1", "true", "yes")


def max_queue_length(request: web.Request) -> int | None:
    """`?fal_max_queue_length=N`; a value that is not a whole number ≥ 0 is a 422."""
    raw = request.query.get(MAX_QUEUE_PARAM)
    if raw is None:
        return None
    if not raw.strip().isdigit() or len(raw) > 18:
        msg = "value is not a valid non-negative integer"
        entry = {"loc": ["query", MAX_QUEUE_PARAM], "msg": msg, "type": "type_error.integer"}
        raise ValidationFailed([entry])
    return int(raw)


def check_queue_length(request: web.Request, tail: str) -> None:
    """fal's fail-fast guard: 429 when more requests than allowed already wait."""
    limit = max_queue_length(request)
    endpoint = parse_endpoint(tail)
    if limit is None or endpoint is None:
        return
    waiting = request.app[SCHEDULER_KEY].waiting_for(endpoint.app_id)
    if waiting > limit:
        detail = f"Queue is full: {waiting} requests waiting ({MAX_QUEUE_PARAM}={limit})"
        raise RateLimited(detail, headers={"Retry-After": "1"})


def webhook_url(request: web.Request) -> str | None:
    """`?fal_webhook=URL`: an absolute http(s) URL, or a 422 naming the parameter."""
    raw = request.query.get("fal_webhook") or None
    if raw is None:
        return None
    try:
        parts = urlsplit(raw)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        msg = "invalid or missing URL scheme"
        raise ValidationFailed(
            [{"loc": ["query", "fal_webhook"], "msg": msg, "type": "value_error.url"}]
        )
    return raw


async def submit(request: web.Request, account: Account, tail: str) -> web.Response:
    """Start a queued request; answers IN_QUEUE with its position and URLs."""
    check_queue_length(request, tail)
    webhook = webhook_url(request)
    job = await start_job(request, account, tail, webhook_url=webhook)
    body = status_body(request, job, with_logs=False)
    return json_response(body, headers={"x-fal-request-id": job.request_id})


async def status(request: web.Request, job: Job) -> web.Response:
    code = 200 if job.done else 202
    body = status_body(request, job, wants_logs(request))
    return json_response(body, code, {"x-fal-request-id": job.request_id})


async def status_stream(request: web.Request, job: Job) -> web.StreamResponse:
    """Server-sent QueueStatus events until COMPLETED; then the body ends.

    Each event carries only the log lines new since the previous one: the JS client
    adds them up itself.
    """
    response = web.StreamResponse(headers={"x-fal-request-id": job.request_id})
    response.content_type = "text/event-stream"
    response.headers["Cache-Control"] = "no-cache"
    await response.prepare(request)
    with_logs, sent = wants_logs(request), None
    try:
        while True:
            changed = job.changed
            seen = (job.status, len(job.logs), request.app[SCHEDULER_KEY].queue_position(job))
            if seen != sent:
                logs_from = sent[1] if sent else 0
                body = status_body(request, job, with_logs, logs_from)
                event = json.dumps(body, separators=(",", ":"))
                await response.write(f"data: {event}\n\n".encode())
                sent = seen
            if job.done:
                break
            await changed.wait()
        await response.write_eof()
    except ConnectionResetError:
        pass  # the watcher left; the request itself goes on
    return response


async def result(request: web.Request, job: Job) -> web.Response:
    if not job.done or job.outcome is None:
        raise BadRequest("Request is still in progress")
    outcome = job.outcome
    return respond(job, outcome)


async def cancel(request: web.Request, job: Job) -> web.Response:
    headers = {"x-fal-request-id": job.request_id}
    if request.app[SCHEDULER_KEY].cancel(job):
        return json_response({"status": "CANCELLATION_REQUESTED"}, 202, headers)
    return json_response({"status": "ALREADY_COMPLETED"}, 400, headers)


HANDLERS = {"result": result, "status": status, "stream": status_stream, "cancel": cancel}


async def about_request(request: web.Request, target: RequestPath, account_id: str) -> Any:
    if request.method != ACTION_METHODS[target.action]:
        raise MethodNotAllowed("Method Not Allowed")
    job = request.app[SCHEDULER_KEY].find(target.request_id, account_id, target.app_id)
    if job is None:
        raise NotFound("Request not found")
    return await HANDLERS[target.action](request, job)


async def queue_entry(request: web.Request) -> web.StreamResponse:
    """Every `/queue.fal.run/…` URL: a request's status/result/cancel, or a submit."""
    account = authorize(request)
    tail = request.match_info["tail"]
    target = parse_request_path(tail)
    if target is not None:
        response: web.StreamResponse = await about_request(request, target, account.account_id)
        return response
    if request.method != "POST":
        raise MethodNotAllowed("Method Not Allowed")
    return await submit(request, account, tail)


def send_webhook(app: web.Application, job: Job) -> None:
    """fal's webhook for a finished queued request that asked for one."""
    if not job.webhook_url or job.outcome is None:
        return
    outcome = job.outcome
    body: dict[str, Any] = {"request_id": job.request_id, "gateway_request_id": job.request_id}
    if outcome.failed:  # fal's wording: the app's status in `error`, its body in `payload`
        error = f"Invalid status code: {outcome_status(outcome)}"
        body |= {"status": "ERROR", "error": error, "payload": outcome_body(outcome)}
    else:
        body |= {"status": "OK", "payload": outcome.payload}
    app[WEBHOOKS_KEY].schedule(job.webhook_url, job.request_id, job.account_id, body)


def add_routes(app: web.Application) -> None:
    app[SCHEDULER_KEY].on_finished.append(lambda job: send_webhook(app, job))
    app.router.add_route("*", PREFIX + "/{tail:.*}", queue_entry)
