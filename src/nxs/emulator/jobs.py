"""Requests in flight: each one a `Job` moving IN_QUEUE → IN_PROGRESS → COMPLETED.

The `Scheduler` runs every job (queued or direct) as a task, at most
`concurrency_limit` in progress per account; the others wait IN_QUEUE in submission
order. Jobs keep their logs, outcome and a change signal the status streams wait on.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from nxs.emulator.endpoints import EndpointId
from nxs.emulator.models import Model
from nxs.emulator.outputs import Outcome, produce, progress_lines
from nxs.emulator.state import EmulatorState

QUEUE_SECONDS = 0.15
CANCELLED = Outcome(None, 0, "Request was cancelled", "client_cancelled")
Finished = Callable[["Job"], None]


def _timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "")


@dataclass
class Job:
    """One request: who sent it, for what, where it stands and how it ended."""

    request_id: str
    account_id: str
    endpoint: EndpointId
    model: Model
    input: dict[str, Any]
    base_url: str
    order: int
    webhook_url: str | None = None
    status: str = "IN_QUEUE"
    logs: list[dict[str, Any]] = field(default_factory=list)
    outcome: Outcome | None = None
    started: float | None = None
    finished: float | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        """Wake everyone waiting on `changed`, then arm a fresh signal."""
        event, self.changed = self.changed, asyncio.Event()
        event.set()

    def log(self, message: str, level: str = "INFO") -> None:
        entry = {"message": message, "level": level, "source": "USER"}
        self.logs.append(entry | {"timestamp": _timestamp()})
        self.notify()

    def start(self) -> None:
        self.status, self.started = "IN_PROGRESS", time.monotonic()
        self.notify()

    def finish(self, outcome: Outcome) -> None:
        self.status, self.outcome, self.finished = "COMPLETED", outcome, time.monotonic()
        self.notify()

    @property
    def done(self) -> bool:
        return self.status == "COMPLETED"

    @property
    def inference_time(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return round(self.finished - self.started, 4)


class Scheduler:
    """Owns every job: starts them under the per-account limit, cancels, finds them."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self._jobs: dict[str, Job] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._order = itertools.count()
        self.on_finished: list[Finished] = []

    def submit(self, endpoint: EndpointId, model: Model, clean: dict[str, Any], **kw: Any) -> Job:
        """Create a job and start it; `kw`: account_id, base_url, webhook_url."""
        job = Job(str(uuid.uuid4()), model=model, endpoint=endpoint, input=clean, **kw,
                  order=next(self._order))  # fmt: skip
        self._jobs[job.request_id] = job
        job.task = asyncio.get_running_loop().create_task(self._run(job))
        return job

    def find(self, request_id: str, account_id: str, app_id: str) -> Job | None:
        """The job if it exists, belongs to the account and to the app; else None."""
        job = self._jobs.get(request_id)
        if job is None or job.account_id != account_id or job.endpoint.app_id != app_id:
            return None
        return job

    def queue_position(self, job: Job) -> int:
        """How many of the account's jobs wait ahead of this one."""
        waiting = (j for j in self._jobs.values() if j.status == "IN_QUEUE")
        return sum(1 for j in waiting if j.account_id == job.account_id and j.order < job.order)

    def cancel(self, job: Job) -> bool:
        """Request cancellation; False when the job had already completed."""
        if job.done or job.task is None:
            return False
        job.task.cancel()
        return True

    async def close(self) -> None:
        tasks = [job.task for job in self._jobs.values() if job.task and not job.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _slot(self, account_id: str) -> asyncio.Semaphore:
        limit = self._state.config.concurrency_limit
        return self._slots.setdefault(account_id, asyncio.Semaphore(limit))

    async def _run(self, job: Job) -> None:
        scale = self._state.config.time_scale
        try:
            await asyncio.sleep(QUEUE_SECONDS * scale)
            async with self._slot(job.account_id):
                job.start()
                outcome = await self._work(job, scale)
        except asyncio.CancelledError:
            outcome = CANCELLED
        job.finish(outcome)
        for callback in self.on_finished:
            callback(job)

    async def _work(self, job: Job, scale: float) -> Outcome:
        lines = progress_lines(job.model, job.input)
        for line in lines:
            job.log(line)
            await asyncio.sleep(job.model.seconds * scale / len(lines))
        files, base = self._state.files, job.base_url
        outcome = await asyncio.to_thread(produce, job.model, job.input, files, base)
        if outcome.failed:
            job.log(outcome.error or "failed", "ERROR")
        return outcome


async def wait_until_done(job: Job) -> Outcome:
    """Wait for a job to complete and hand back its outcome."""
    while not job.done:
        await job.changed.wait()
    assert job.outcome is not None
    return job.outcome


SCHEDULER_KEY = web.AppKey("nxs_emulator_scheduler", Scheduler)
