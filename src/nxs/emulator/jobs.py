"""Requests in flight: each one a `Job` moving IN_QUEUE → IN_PROGRESS → COMPLETED.

The `Scheduler` runs every job (queued or direct) as a task, at most
`concurrency_limit` in progress per account; the others wait IN_QUEUE in submission
order. Jobs keep their logs, outcome and a change signal the status streams wait on.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from nxs.emulator.endpoints import EndpointId
from nxs.emulator.models import Model
from nxs.emulator.outputs import Outcome, ignores_cancel, produce, progress_lines
from nxs.emulator.state import EmulatorState

QUEUE_SECONDS = 0.15
KEEP_JOBS = 20_000  # finished jobs beyond this many are forgotten, oldest first
CANCELLED = Outcome(None, 0, "Request was cancelled", "client_cancelled")
TIMED_OUT = Outcome(None, 0, "Request timed out", "request_timeout")
CRASHED = Outcome(None, 0, "Internal server error", "runner_server_error")
logger = logging.getLogger("nxs.emulator")
Finished = Callable[["Job"], None]


def _timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "")


@dataclass(eq=False)
class Job:
    """One request: who sent it, for what, where it stands and how it ended."""

    request_id: str
    account_id: str
    endpoint: EndpointId
    model: Model
    input: dict[str, Any]
    base_url: str
    webhook_url: str | None = None
    start_timeout: float | None = None  # X-Fal-Request-Timeout: seconds allowed to start
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
        self._waiting: dict[str, list[Job]] = {}  # per account, IN_QUEUE, oldest first
        self._running: dict[str, int] = {}  # per account, IN_PROGRESS
        self._peak: dict[str, int] = {}  # per account, the most IN_PROGRESS at once ever
        self.on_finished: list[Finished] = []

    def submit(
        self,
        endpoint: EndpointId,
        model: Model,
        clean: dict[str, Any],
        *,
        account_id: str,
        base_url: str,
        webhook_url: str | None = None,
        start_timeout: float | None = None,
    ) -> Job:
        """Create a job for `account_id` and start it; it waits IN_QUEUE for a slot."""
        job = Job(str(uuid.uuid4()), account_id, endpoint, model, clean, base_url, webhook_url)
        job.start_timeout = start_timeout
        self._forget_old_jobs()
        self._jobs[job.request_id] = job
        self._waiting.setdefault(account_id, []).append(job)
        job.task = asyncio.get_running_loop().create_task(self._run(job))
        return job

    def _forget_old_jobs(self) -> None:
        excess = len(self._jobs) - KEEP_JOBS
        if excess <= 0:
            return
        old = [rid for rid, job in self._jobs.items() if job.done][: excess + KEEP_JOBS // 4]
        for request_id in old:
            del self._jobs[request_id]

    def find(self, request_id: str, account_id: str, app_id: str) -> Job | None:
        """The job if it exists, belongs to the account and to the app; else None."""
        job = self._jobs.get(request_id)
        if job is None or job.account_id != account_id or job.endpoint.app_id != app_id:
            return None
        return job

    def waiting_for(self, app_id: str) -> int:
        """How many requests to `app_id` wait IN_QUEUE, across every account."""
        return sum(
            1 for jobs in self._waiting.values() for job in jobs if job.endpoint.app_id == app_id
        )

    def busy(self, account_id: str) -> bool:
        """True when the account's requests (waiting or in progress) fill its limit."""
        waiting = len(self._waiting.get(account_id, []))
        running = self._running.get(account_id, 0)
        return waiting + running >= self._state.config.concurrency_limit

    def accounts(self) -> dict[str, dict[str, int]]:
        """Per account: requests IN_PROGRESS now, IN_QUEUE now, and the most ever in
        progress at once (tests read it to prove a gateway kept to the limit)."""
        names = set(self._peak) | set(self._waiting)
        return {
            name: {
                "in_progress": self._running.get(name, 0),
                "in_queue": len(self._waiting.get(name, [])),
                "peak_in_progress": self._peak.get(name, 0),
            }
            for name in sorted(names)
        }

    def queue_position(self, job: Job) -> int:
        """How many of the account's jobs wait ahead of this one."""
        waiting = self._waiting.get(job.account_id, [])
        return waiting.index(job) if job in waiting else 0

    def cancel(self, job: Job) -> bool:
        """Request cancellation; False when the job had already completed. A started job
        whose input has `[ignore-cancel]` is signalled but finishes anyway, as a fal app
        that does not stop may (and is billed)."""
        if job.done or job.task is None:
            return False
        if job.status != "IN_PROGRESS" or not ignores_cancel(job.input):
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
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that lands as the slot is acquired, and the cancelled job would run anyway.
            async with asyncio.timeout(job.start_timeout):
                slot = await self._start(job, scale)
        except TimeoutError:
            outcome = TIMED_OUT  # X-Fal-Request-Timeout passed while still IN_QUEUE
        except asyncio.CancelledError:
            outcome = CANCELLED
        else:
            try:
                outcome = await self._guarded_work(job, scale)
            except asyncio.CancelledError:
                outcome = CANCELLED
            finally:
                slot.release()
                self._running[job.account_id] -= 1
        self._leave_queue(job)
        job.finish(outcome)
        for callback in self.on_finished:
            callback(job)

    async def _start(self, job: Job, scale: float) -> asyncio.Semaphore:
        """Wait IN_QUEUE for one of the account's slots (the part a start timeout covers)."""
        await asyncio.sleep(QUEUE_SECONDS * scale)
        slot = self._slot(job.account_id)
        await slot.acquire()
        running = self._running[job.account_id] = self._running.get(job.account_id, 0) + 1
        self._peak[job.account_id] = max(running, self._peak.get(job.account_id, 0))
        self._leave_queue(job)
        job.start()
        return slot

    async def _guarded_work(self, job: Job, scale: float) -> Outcome:
        """The model's work; a crash ends the request as fal's runner_server_error."""
        try:
            return await self._work(job, scale)
        except Exception:
            logger.exception("model %s crashed on %s", job.model.endpoint_id, job.request_id)
            return CRASHED

    def _leave_queue(self, job: Job) -> None:
        waiting = self._waiting.get(job.account_id, [])
        if job in waiting:
            waiting.remove(job)
            for other in waiting:
                other.notify()  # their queue_position just dropped
        if not waiting:
            self._waiting.pop(job.account_id, None)

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
