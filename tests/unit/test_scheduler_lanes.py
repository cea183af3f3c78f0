"""The run queue's order: customers take turns weighted by their plan's priority, a key's
learned limit holds runs back, and a wait past its deadline is fal's 429."""

from __future__ import annotations

import asyncio
import time

import pytest

from nxs.errors import UpstreamBusy
from nxs.gateway.metrics import Metrics
from nxs.gateway.pool import BUSY, KeyPool, PoolKey
from nxs.gateway.scheduler import RunQueue
from nxs.store.models import UpstreamKey


def pool_of(concurrency: int) -> KeyPool:
    pool = KeyPool(lambda *_: None)
    pool.load([UpstreamKey("up_1", "one", "acct:s", 1, "active", None, 0.0, concurrency)])
    return pool


async def served_order(queue: RunQueue, pool: KeyPool, burst: dict[str, tuple[int, int]]) -> str:
    """Hold the only slot, queue every customer's runs, then free one slot at a time."""
    holder = await queue.take("holder", 1, set(), time.monotonic() + 5)
    order: list[str] = []

    async def run(customer: str, priority: int) -> None:
        entry = await queue.take(customer, priority, set(), time.monotonic() + 5)
        order.append(customer)
        await asyncio.sleep(0)
        queue.give_back(entry)

    tasks = [
        asyncio.create_task(run(customer, priority))
        for customer, (count, priority) in burst.items()
        for _ in range(count)
    ]
    await asyncio.sleep(0.01)  # every run is waiting now
    queue.give_back(holder)
    await asyncio.gather(*tasks)
    return "".join(order)


def test_customers_take_turns_weighted_by_priority() -> None:
    pool = pool_of(1)
    queue = RunQueue(pool, 5.0, Metrics())
    burst = {"a": (12, 2), "b": (6, 1)}  # a's plan has priority 2
    order = asyncio.run(served_order(queue, pool, burst))
    assert order[:9].count("a") == 6 and order[:9].count("b") == 3
    assert sorted(order) == ["a"] * 12 + ["b"] * 6


def test_a_late_customer_is_served_before_an_earlier_burst_drains() -> None:
    pool = pool_of(1)
    queue = RunQueue(pool, 5.0, Metrics())

    async def scenario() -> list[str]:
        holder = await queue.take("holder", 1, set(), time.monotonic() + 5)
        order: list[str] = []

        async def run(customer: str) -> None:
            entry = await queue.take(customer, 1, set(), time.monotonic() + 5)
            order.append(customer)
            await asyncio.sleep(0)
            queue.give_back(entry)

        burst = [asyncio.create_task(run("a")) for _ in range(20)]
        await asyncio.sleep(0.01)
        late = asyncio.create_task(run("b"))
        await asyncio.sleep(0.01)
        queue.give_back(holder)
        await asyncio.gather(*burst, late)
        return order

    order = asyncio.run(scenario())
    assert order.index("b") <= 1


def test_a_wait_past_the_deadline_is_a_429_with_retry_after() -> None:
    pool = pool_of(1)
    queue = RunQueue(pool, 0.05, Metrics())

    async def scenario() -> None:
        await queue.take("a", 1, set(), time.monotonic() + 1)
        await queue.take("b", 1, set(), time.monotonic() + 0.05)

    with pytest.raises(UpstreamBusy) as refused:
        asyncio.run(scenario())
    assert (refused.value.status, refused.value.headers) == (429, {"Retry-After": "1"})


def test_a_busy_429_lowers_the_working_limit_to_the_other_runs_and_it_climbs_back() -> None:
    pool = pool_of(4)
    entries: list[PoolKey] = []
    for _ in range(3):
        entry = pool.take_slot(set())
        assert entry is not None
        entries.append(entry)
    verdict = pool.judge(entries[-1], 429, b"", "1", run=True)  # fal: full with 2 others
    pool.free_slot(entries.pop())
    assert (verdict, entries[0].limit(time.monotonic())) == (BUSY, 2)
    assert pool.take_slot(set()) is None  # two running: the key is full for now
    assert pool.choose(set()) is entries[0]  # queue submits still go to it
    assert entries[0].limit(time.monotonic() + 20) == 4  # one slot back every 10 s
