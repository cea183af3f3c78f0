"""`fal.run`: a model run answered directly, or streamed as server-sent events.

`POST /fal.run/{endpoint}` (or GET with the input in the query) waits for the result;
`POST /fal.run/{endpoint}/stream` sends partial results (an LLM's text so far), then the
final one, then ends the body. Both count against the account's concurrency limit like
queued requests, but never wait for it: a direct request beyond the limit is refused
with 429, as on fal.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from nxs.emulator.access import authorize
from nxs.emulator.accounts import Account
from nxs.emulator.calls import outcome_body, respond, start_job
from nxs.emulator.jobs import SCHEDULER_KEY, Job, wait_until_done
from nxs.emulator.models import REGISTRY_KEY
from nxs.emulator.outputs import partial_event, wants_failure
from nxs.emulator.state import STATE_KEY
from nxs.errors import RateLimited

PREFIX = "/fal.run"
STREAM_SUFFIX = "/stream"


async def answer(request: web.Request, job: Job) -> web.Response:
    """Wait for the job (cancelling it if the caller goes away) and answer its outcome."""
    try:
        outcome = await wait_until_done(job)
    except asyncio.CancelledError:
        request.app[SCHEDULER_KEY].cancel(job)
        raise
    return respond(job, outcome)


def _event(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def stream(request: web.Request, job: Job) -> web.StreamResponse:
    """Partial results as the job logs progress, then the final result; body ends."""
    if wants_failure(job.input):
        return await answer(request, job)
    response = web.StreamResponse(headers={"x-fal-request-id": job.request_id})
    response.content_type = "text/event-stream"
    response.headers["Cache-Control"] = "no-cache"
    await response.prepare(request)
    try:
        await _send_progress(response, job)
        assert job.outcome is not None
        await response.write(_event(outcome_body(job.outcome)))
        await response.write_eof()
    except ConnectionResetError:
        request.app[SCHEDULER_KEY].cancel(job)  # nobody is left to receive the result
    except asyncio.CancelledError:
        request.app[SCHEDULER_KEY].cancel(job)
        raise
    return response


async def _send_progress(response: web.StreamResponse, job: Job) -> None:
    """One partial event per progress line the job logs, until it completes."""
    sent = 0
    while True:
        changed, finished = job.changed, job.done
        for line in job.logs[sent:]:
            sent += 1  # an image model's event carries `sent_at`: tests see when it left
            await response.write(_event(partial_event(job.model, job.input, sent, line["message"])))
        if finished:
            return
        await changed.wait()


def _is_stream(request: web.Request, tail: str) -> bool:
    trimmed = tail.rstrip("/")
    registry = request.app[REGISTRY_KEY]
    return trimmed.endswith(STREAM_SUFFIX) and registry.get(trimmed) is None


def check_capacity(request: web.Request, account: Account) -> None:
    """Direct requests do not queue: at the concurrency limit fal answers 429 at once
    (the official clients retry it)."""
    config = request.app[STATE_KEY].config
    if not config.queue_direct_runs and request.app[SCHEDULER_KEY].busy(account.account_id):
        limit = config.concurrency_limit
        detail = f"Concurrent requests limit exceeded ({limit}): retry, or use the queue"
        raise RateLimited(detail, headers={"Retry-After": "1"})


async def run_entry(request: web.Request) -> web.StreamResponse:
    """Every `/fal.run/…` URL but realtime: run or stream the model it names."""
    account = authorize(request)
    tail = request.match_info["tail"]
    check_capacity(request, account)
    if request.method == "POST" and _is_stream(request, tail):
        job = await start_job(request, account, tail.rstrip("/")[: -len(STREAM_SUFFIX)])
        return await stream(request, job)
    job = await start_job(request, account, tail)
    return await answer(request, job)


def add_routes(app: web.Application) -> None:
    app.router.add_post(PREFIX + "/{tail:.*}", run_entry)
    app.router.add_get(PREFIX + "/{tail:.*}", run_entry, allow_head=False)
