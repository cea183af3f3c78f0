"""Scripts called in one event-loop turn go to Redis together: one pipeline, one write and
one read for every acquire and release of that turn (under load, many requests share a
round trip; alone, a call costs one `call_soon` more).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError


@dataclass(frozen=True)
class Script:
    """A Lua script called by its SHA1, sent whole only when the server does not know it."""

    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())

    async def __call__(self, client: Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)


@dataclass
class _Call:
    script: Script
    keys: Sequence[str]
    args: Sequence[Any]
    answer: asyncio.Future[Any]


@dataclass
class Batcher:
    """`call` queues a script call; the turn's calls leave together when the loop is free."""

    client: Redis
    _pending: list[_Call] = field(default_factory=list)
    _sending: set[asyncio.Task[None]] = field(default_factory=set)

    def call(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()
        self._pending.append(_Call(script, keys, args, answer))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return answer

    def _flush(self) -> None:
        calls, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._send(calls))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, calls: list[_Call]) -> None:
        try:
            if len(calls) == 1:
                only = calls[0]
                _settle(only, await only.script(self.client, only.keys, only.args))
                return
            pipe = self.client.pipeline(transaction=False)
            for call in calls:
                pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
            answers = await pipe.execute(raise_on_error=False)
            for call, answer in zip(calls, answers, strict=True):
                if isinstance(answer, NoScriptError):  # the server restarted: send it whole
                    answer = await call.script(self.client, call.keys, call.args)
                _settle(call, answer)
        except Exception as exc:
            for call in calls:
                if not call.answer.done():
                    call.answer.set_exception(exc)

    async def close(self) -> None:
        await asyncio.gather(*self._sending, return_exceptions=True)


def _settle(call: _Call, answer: Any) -> None:
    if call.answer.done():  # its caller gave up (cancelled)
        return
    if isinstance(answer, Exception):
        call.answer.set_exception(answer)
    else:
        call.answer.set_result(answer)
