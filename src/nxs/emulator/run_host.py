"""`fal.run`: a model run answered directly, or streamed as server-sent events.

`POST /fal.run/{endpoint}` (or GET with the input in the query) waits for the result;
`POST /fal.run/{endpoint}/stream` sends partial results, then the final one, then
ends the body. Both go through the same per-account scheduler as queued requests.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from nxs.emulator.access import authorize
from nxs.emulator.calls import outcome_body, respond, start_job
from nxs.emulator.jobs import SCHEDULER_KEY, Job, wait_until_done
from nxs.emulator.models import REGISTRY_KEY
from nxs.emulator.outputs import wants_failure

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
            sent += 1
            partial = {"partial": True, "step": sent, "message": line["message"]}
            await response.write(_event(partial))
        if finished:
            return
        await changed.wait()


def _is_stream(request: web.Request, tail: str) -> bool:
    trimmed = tail.rstrip("/")
    registry = request.app[REGISTRY_KEY]
    return trimmed.endswith(STREAM_SUFFIX) and registry.get(trimmed) is None


async def run_entry(request: web.Request) -> web.StreamResponse:
    """Every `/fal.run/…` URL but realtime: run or stream the model it names."""
    account = authorize(request)
    tail = request.match_info["tail"]
    if request.method == "POST" and _is_stream(request, tail):
        job = await start_job(request, account, tail.rstrip("/")[: -len(STREAM_SUFFIX)])
        return await stream(request, job)
    job = await start_job(request, account, tail)
    return await answer(request, job)


def add_routes(app: web.Application) -> None:
    app.router.add_post(PREFIX + "/{tail:.*}", run_entry)
    app.router.add_get(PREFIX + "/{tail:.*}", run_entry)
