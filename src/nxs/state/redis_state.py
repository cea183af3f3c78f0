"""The Redis backend: what every worker of every replica shares (`NXS_REDIS_URL`).

Each operation is one round trip: a Lua script (EVALSHA, EVAL when the server lost it)
timed by Redis's own clock; the acquires and releases of one loop turn share a pipeline
(`nxs.state.redis_batch`). Sockets time out after 0.25 s so a dead Redis never hangs a
request; the client reconnects by itself when it is back. While Redis is down, limits
follow `NXS_LIMITS_WHEN_REDIS_DOWN` (`nxs.state.outage`); releases, key loads and notices
degrade quietly (a lease expires by itself, the pool falls back to its own view).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from nxs.errors import SharedStateUnavailable
from nxs.state import redis_scripts
from nxs.state.keys import IDLE, KeyLoad
from nxs.state.limits import Limit, Permit, Refusal
from nxs.state.notices import RESYNC, Callback, deliver
from nxs.state.outage import Outage, WhenDown
from nxs.state.redis_batch import Batcher, Script

SOCKET_TIMEOUT: Final = 0.25
RESUBSCRIBE_SECONDS: Final = 0.25
SUBSCRIBE_WAIT_SECONDS: Final = 1.0
NAMESPACE: Final = "nxs:"
DOWN: Final = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)


def connect(url: str) -> Redis:
    """A client with short timeouts and one immediate retry (a connection Redis closed
    while it restarted is replaced once, not retried with back-off)."""
    return Redis.from_url(
        url,
        socket_connect_timeout=SOCKET_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=5,
    )


ACQUIRE = Script(redis_scripts.ACQUIRE)
RELEASE = Script(redis_scripts.RELEASE)
RENEW = Script(redis_scripts.RENEW)
KEY_STARTED = Script(redis_scripts.KEY_STARTED)
COOL_DOWN = Script(redis_scripts.COOL_DOWN)
LOADS = Script(redis_scripts.LOADS)


class RedisState:
    """`State` on Redis; keys under `namespace` (`nxs:` unless tests isolate themselves)."""

    def __init__(
        self,
        client: Redis,
        *,
        namespace: str = NAMESPACE,
        when_down: WhenDown = WhenDown.CLOSED,
    ) -> None:
        self.client = client
        self.batch = Batcher(client)  # acquires and releases of one loop turn: one pipeline
        self.ns = namespace
        self.outage = Outage(when_down)
        self._listeners: set[asyncio.Task[None]] = set()

    @classmethod
    def from_url(
        cls, url: str, *, namespace: str = NAMESPACE, when_down: WhenDown = WhenDown.CLOSED
    ) -> RedisState:
        return cls(connect(url), namespace=namespace, when_down=when_down)

    async def close(self) -> None:
        for task in list(self._listeners):
            task.cancel()
        await asyncio.gather(*self._listeners, return_exceptions=True)
        await self.batch.close()
        await self.client.aclose()

    # -- limits -----------------------------------------------------------------

    async def acquire(self, limits: Sequence[Limit], lease_id: str, ttl: float) -> Permit | Refusal:
        counted = [limit for limit in limits if not limit.unlimited]
        if not counted:
            return Permit(lease_id)
        keys, args = [f"{self.ns}lease:{lease_id}"], [lease_id, _ms(ttl)]
        for limit in counted:
            keys += [f"{self.ns}rpm:{limit.scope}", f"{self.ns}fly:{limit.scope}"]
            args += [_arg(limit.rpm), _arg(limit.max_in_flight)]
        try:
            answer = await self.batch.call(ACQUIRE, keys, args)
        except DOWN as exc:
            self.outage.failed(exc)
            if self.outage.policy is WhenDown.CLOSED:
                raise SharedStateUnavailable() from exc
            return Permit(lease_id)
        self.outage.answered()
        if answer[0] == 1:
            return Permit(lease_id)
        refused = counted[int(answer[1]) - 1]
        if answer[2] == b"rpm":
            return Refusal(refused.scope, "rpm", int(answer[3]))
        return Refusal(refused.scope, "in_flight", int(answer[3]))

    async def release(self, lease_id: str) -> None:
        lease = f"{self.ns}lease:{lease_id}"
        await self._quietly(self.batch.call(RELEASE, [lease], [lease_id]))

    async def renew(self, lease_id: str, ttl: float) -> bool:
        lease = f"{self.ns}lease:{lease_id}"
        return bool(await self._quietly(RENEW(self.client, [lease], [lease_id, _ms(ttl)])))

    # -- upstream keys ----------------------------------------------------------

    async def cool_down(self, key_id: str, seconds: float) -> None:
        await self._quietly(COOL_DOWN(self.client, [f"{self.ns}cool:{key_id}"], [_ms(seconds)]))

    async def started(self, key_id: str, lease_id: str, ttl: float) -> None:
        keys = [f"{self.ns}kfly:{key_id}"]
        await self._quietly(KEY_STARTED(self.client, keys, [lease_id, _ms(ttl)]))

    async def finished(self, key_id: str, lease_id: str) -> None:
        await self._quietly(self.client.zrem(f"{self.ns}kfly:{key_id}", lease_id))

    async def loads(self, key_ids: Sequence[str]) -> dict[str, KeyLoad]:
        """Every key's load in one round trip; all `IDLE` while Redis is down."""
        keys = [
            k for key_id in key_ids for k in (f"{self.ns}kfly:{key_id}", f"{self.ns}cool:{key_id}")
        ]
        found = await self._quietly(LOADS(self.client, keys, [])) if keys else []
        if not found:
            return dict.fromkeys(key_ids, IDLE)
        return {
            key_id: KeyLoad(int(found[2 * i]), int(found[2 * i + 1]) / 1000)
            for i, key_id in enumerate(key_ids)
        }

    # -- idempotency markers ----------------------------------------------------

    async def claim(self, name: str, ttl: float) -> bool:
        try:
            claimed = await self.client.set(f"{self.ns}mark:{name}", b"1", nx=True, px=_ms(ttl))
        except DOWN as exc:
            self.outage.failed(exc)
            if self.outage.policy is WhenDown.CLOSED:
                raise SharedStateUnavailable() from exc
            return True
        self.outage.answered()
        return bool(claimed)

    async def drop(self, name: str) -> None:
        await self._quietly(self.client.delete(f"{self.ns}mark:{name}"))

    # -- change notices ---------------------------------------------------------

    async def publish(self, version: int) -> None:
        await self._quietly(self.client.publish(f"{self.ns}notices", str(version)))

    async def subscribe(self, callback: Callback) -> _Listener:
        """Listen in a task of its own; subscribed (or retrying) when this returns."""
        subscribed = asyncio.Event()
        task = asyncio.create_task(self._listen(callback, subscribed))
        self._listeners.add(task)
        task.add_done_callback(self._listeners.discard)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(subscribed.wait(), SUBSCRIBE_WAIT_SECONDS)
        return _Listener(task)

    async def _listen(self, callback: Callback, subscribed: asyncio.Event) -> None:
        channel = f"{self.ns}notices"
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                if subscribed.is_set():  # a resubscription: a notice may have been missed
                    deliver(callback, RESYNC)
                subscribed.set()
                await _relay(pubsub, callback)
            except DOWN:
                subscribed.set()
                await asyncio.sleep(RESUBSCRIBE_SECONDS)
            finally:
                await pubsub.aclose()

    async def _quietly(self, call: Any) -> Any:
        """Await a command whose failure only costs accuracy: None while Redis is down."""
        try:
            result = await call
        except DOWN as exc:
            self.outage.failed(exc)
            return None
        self.outage.answered()
        return result


async def _relay(pubsub: PubSub, callback: Callback) -> None:
    while True:
        message = await pubsub.get_message(timeout=1.0)
        if message is not None and message.get("type") == "message":
            deliver(callback, int(message["data"]))


@dataclass
class _Listener:
    task: asyncio.Task[None]

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _arg(value: int | None) -> int | str:
    return "" if value is None else value
