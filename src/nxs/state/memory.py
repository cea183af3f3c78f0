"""The in-process backend: one worker's limits, key loads, markers and notices in dicts.

Exact only when one process serves (`nxs serve` with one worker); `--workers N` on one
machine uses `nxs.state.sqlite_state`, several replicas `nxs.state.redis_state`. Limits
are O(1) per call; idle buckets (equal to a fresh one after a minute) and expired leases
are evicted a few per call, so memory stays bounded.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from nxs.state.keys import IDLE, KeyLoad
from nxs.state.limits import (
    SECONDS_PER_MINUTE,
    Limit,
    Permit,
    Refusal,
    in_flight_refusal,
    refilled,
    rpm_refusal,
)
from nxs.state.notices import Callback, deliver

_EVICTION_CHECKS = 4  # oldest entries examined per acquire: bounded work, bounded memory
Clock = Callable[[], float]


@dataclass(eq=False)
class _Bucket:
    tokens: float
    stamp: float
    leases: dict[str, float] = field(default_factory=dict)  # lease id → expiry

    def held(self, now: float) -> int:
        if any(expiry <= now for expiry in self.leases.values()):
            self.leases = {lease: at for lease, at in self.leases.items() if at > now}
        return len(self.leases)


@dataclass
class InProcessLimits:
    """Counters in a dict of buckets; all or nothing: a refusal consumes nothing."""

    clock: Clock = time.monotonic
    _buckets: OrderedDict[str, _Bucket] = field(default_factory=OrderedDict)
    _leases: OrderedDict[str, tuple[float, tuple[_Bucket, ...]]] = field(
        default_factory=OrderedDict
    )
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    async def acquire(self, limits: Sequence[Limit], lease_id: str, ttl: float) -> Permit | Refusal:
        return self.try_acquire(limits, lease_id, ttl)

    async def release(self, lease_id: str) -> None:
        self.release_now(lease_id)

    async def renew(self, lease_id: str, ttl: float) -> bool:
        held = self._leases.get(lease_id)
        if held is None or held[0] <= self.clock():
            return False
        expiry = self.clock() + ttl
        self._leases[lease_id] = (expiry, held[1])
        for bucket in held[1]:
            bucket.leases[lease_id] = expiry
        return True

    def try_acquire(
        self, limits: Sequence[Limit], lease_id: str | None = None, ttl: float = math.inf
    ) -> Permit | Refusal:
        """`acquire` without awaiting (the hot path's form); no lease id: one is made up."""
        now = self.clock()
        checked: list[tuple[Limit, _Bucket]] = []
        for limit in limits:
            if limit.unlimited:
                continue
            bucket = self._bucket(limit, now)
            refusal = _refusal(limit, bucket, now)
            if refusal is not None:
                return refusal
            checked.append((limit, bucket))
        lease = lease_id if lease_id is not None else f"local-{next(self._ids)}"
        expiry = now + ttl
        held: list[_Bucket] = []
        for limit, bucket in checked:
            if limit.rpm is not None:
                bucket.tokens -= 1
            if limit.max_in_flight is not None:
                bucket.leases[lease] = expiry
                held.append(bucket)
        if held:
            self._leases[lease] = (expiry, tuple(held))
        self._evict(now)
        return Permit(lease)

    def release_now(self, permit: Permit | str) -> None:
        """Free a permit (or the lease of that id); releasing twice gives nothing back."""
        if isinstance(permit, Permit):
            if permit.released:
                return
            permit.released = True
            permit = permit.lease_id
        held = self._leases.pop(permit, None)
        for bucket in held[1] if held else ():
            bucket.leases.pop(permit, None)

    def __len__(self) -> int:
        """Buckets currently kept (for tests and metrics)."""
        return len(self._buckets)

    def _bucket(self, limit: Limit, now: float) -> _Bucket:
        bucket = self._buckets.get(limit.scope)
        if bucket is None:
            bucket = _Bucket(tokens=float(limit.rpm or 0), stamp=now)
            self._buckets[limit.scope] = bucket
        else:
            self._buckets.move_to_end(limit.scope)
            if limit.rpm is not None:
                bucket.tokens = refilled(bucket.tokens, bucket.stamp, now, limit.rpm)
            bucket.stamp = now
        return bucket

    def _evict(self, now: float) -> None:
        """Drop a few idle buckets a fresh one would equal, and a few expired leases."""
        for _ in range(min(_EVICTION_CHECKS, len(self._buckets))):
            scope, bucket = next(iter(self._buckets.items()))
            if bucket.leases:  # busy for long: rotate it so it cannot pin the queue
                self._buckets.move_to_end(scope)
            elif now - bucket.stamp < SECONDS_PER_MINUTE:
                break
            else:
                del self._buckets[scope]
        for _ in range(min(_EVICTION_CHECKS, len(self._leases))):
            lease, (expiry, _buckets) = next(iter(self._leases.items()))
            if expiry > now:
                self._leases.move_to_end(lease)
            else:
                self.release_now(lease)


def _refusal(limit: Limit, bucket: _Bucket, now: float) -> Refusal | None:
    if limit.max_in_flight is not None:
        refusal = in_flight_refusal(limit.scope, bucket.held(now), limit.max_in_flight)
        if refusal is not None:
            return refusal
    if limit.rpm is not None:
        return rpm_refusal(limit.scope, bucket.tokens, limit.rpm)
    return None


@dataclass
class InProcessState(InProcessLimits):
    """`State` for one worker: the limits above, plus key loads, markers and notices."""

    _cooldowns: dict[str, float] = field(default_factory=dict)
    _calls: dict[str, dict[str, float]] = field(default_factory=dict)  # key → lease → expiry
    _markers: dict[str, float] = field(default_factory=dict)
    _callbacks: list[Callback] = field(default_factory=list)

    async def cool_down(self, key_id: str, seconds: float) -> None:
        until = self.clock() + seconds
        self._cooldowns[key_id] = max(until, self._cooldowns.get(key_id, 0.0))

    async def started(self, key_id: str, lease_id: str, ttl: float) -> None:
        self._calls.setdefault(key_id, {})[lease_id] = self.clock() + ttl

    async def finished(self, key_id: str, lease_id: str) -> None:
        calls = self._calls.get(key_id)
        if calls is not None:
            calls.pop(lease_id, None)

    async def loads(self, key_ids: Sequence[str]) -> dict[str, KeyLoad]:
        now = self.clock()
        return {key_id: self._load(key_id, now) for key_id in key_ids}

    def _load(self, key_id: str, now: float) -> KeyLoad:
        calls = self._calls.get(key_id)
        if calls:
            self._calls[key_id] = calls = {lease: at for lease, at in calls.items() if at > now}
        cooldown = max(0.0, self._cooldowns.get(key_id, 0.0) - now)
        if not calls and not cooldown:
            self._cooldowns.pop(key_id, None)
            return IDLE
        return KeyLoad(len(calls or ()), cooldown)

    async def claim(self, name: str, ttl: float) -> bool:
        now = self.clock()
        if self._markers.get(name, 0.0) > now:
            return False
        self._markers[name] = now + ttl
        return True

    async def drop(self, name: str) -> None:
        self._markers.pop(name, None)

    async def publish(self, version: int) -> None:
        for callback in list(self._callbacks):
            deliver(callback, version)

    async def subscribe(self, callback: Callback) -> _Subscription:
        self._callbacks.append(callback)
        return _Subscription(self._callbacks, callback)

    async def close(self) -> None:
        self._callbacks.clear()


@dataclass
class _Subscription:
    callbacks: list[Callback]
    callback: Callback

    async def close(self) -> None:
        if self.callback in self.callbacks:
            self.callbacks.remove(self.callback)
