"""Rate (token bucket) and in-flight limits per key and per customer."""

from __future__ import annotations

import asyncio

import pytest

from nxs.billing.errors import RateLimitExceeded
from nxs.billing.limits import InProcessLimiter, Limit, Limiter, Permit, Refusal
from nxs.errors import render


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(clock: Clock) -> InProcessLimiter:
    return InProcessLimiter(clock=clock)


def admitted(limiter: InProcessLimiter, limits: list[Limit], times: int) -> int:
    return sum(isinstance(limiter.try_acquire(limits), Permit) for _ in range(times))


def test_rpm_allows_a_burst_of_rpm_then_refuses(limiter: InProcessLimiter) -> None:
    assert admitted(limiter, [Limit("key:a", rpm=10)], 15) == 10


def test_a_burst_over_rpm_gets_retry_after_at_least_one(limiter: InProcessLimiter) -> None:
    limits = [Limit("key:a", rpm=600)]
    admitted(limiter, limits, 600)
    refusal = limiter.try_acquire(limits)
    assert isinstance(refusal, Refusal)
    assert (refusal.reason, refusal.retry_after) == ("rpm", 1)
    error = refusal.error()
    assert isinstance(error, RateLimitExceeded)
    assert (error.status, error.headers) == (429, {"Retry-After": "1"})
    assert render(error) == b'{"detail":"Rate limit exceeded","error_type":"rate_limited"}'


def test_retry_after_is_the_wait_for_the_next_token(
    limiter: InProcessLimiter, clock: Clock
) -> None:
    limits = [Limit("key:a", rpm=2)]  # one token per 30 s
    admitted(limiter, limits, 2)
    clock.now += 10
    refusal = limiter.try_acquire(limits)
    assert isinstance(refusal, Refusal) and refusal.retry_after == 20


def test_tokens_refill_with_time(limiter: InProcessLimiter, clock: Clock) -> None:
    limits = [Limit("key:a", rpm=60)]
    assert admitted(limiter, limits, 61) == 60
    clock.now += 5
    assert admitted(limiter, limits, 10) == 5


def test_in_flight_cap_refuses_until_a_permit_is_released(limiter: InProcessLimiter) -> None:
    limits = [Limit("customer:c", max_in_flight=2)]
    first, second = limiter.try_acquire(limits), limiter.try_acquire(limits)
    refused = limiter.try_acquire(limits)
    assert isinstance(refused, Refusal) and refused.reason == "in_flight"
    assert refused.retry_after >= 1
    assert isinstance(first, Permit) and isinstance(second, Permit)
    limiter.release_now(first)
    limiter.release_now(first)  # a second release gives nothing back
    assert isinstance(limiter.try_acquire(limits), Permit)
    assert isinstance(limiter.try_acquire(limits), Refusal)


def test_customer_limit_spans_all_its_keys(limiter: InProcessLimiter) -> None:
    customer = Limit("customer:c", rpm=3)
    assert admitted(limiter, [customer, Limit("key:1")], 2) == 2
    assert admitted(limiter, [customer, Limit("key:2")], 2) == 1


def test_a_refusal_consumes_nothing_anywhere(limiter: InProcessLimiter) -> None:
    customer, key = Limit("customer:c", rpm=100), Limit("key:1", max_in_flight=1)
    assert isinstance(limiter.try_acquire([customer, key]), Permit)
    assert admitted(limiter, [customer, key], 50) == 0
    assert admitted(limiter, [customer], 99) == 99


def test_unlimited_default_plan_keeps_no_state(limiter: InProcessLimiter) -> None:
    assert admitted(limiter, [Limit("customer:c"), Limit("key:1")], 1000) == 1000
    assert len(limiter) == 0


def test_idle_buckets_are_evicted_so_memory_stays_bounded(
    limiter: InProcessLimiter, clock: Clock
) -> None:
    for number in range(1000):
        limiter.try_acquire([Limit(f"key:{number}", rpm=5)])
        clock.now += 1
    assert len(limiter) <= 70  # about a minute's worth of active keys


def test_a_long_request_does_not_pin_eviction(limiter: InProcessLimiter, clock: Clock) -> None:
    held = limiter.try_acquire([Limit("key:slow", max_in_flight=1)])
    for number in range(1000):
        limiter.try_acquire([Limit(f"key:{number}", rpm=5)])
        clock.now += 1
    assert len(limiter) <= 70
    assert isinstance(limiter.try_acquire([Limit("key:slow", max_in_flight=1)]), Refusal)
    assert isinstance(held, Permit)


def test_in_process_limiter_fits_the_async_protocol(limiter: InProcessLimiter) -> None:
    async def use(backend: Limiter) -> tuple[bool, bool]:
        permit = await backend.acquire([Limit("key:a", max_in_flight=1)], "req_1", 60)
        assert isinstance(permit, Permit)
        blocked = await backend.acquire([Limit("key:a", max_in_flight=1)], "req_2", 60)
        await backend.release("req_1")
        again = await backend.acquire([Limit("key:a", max_in_flight=1)], "req_3", 60)
        return isinstance(blocked, Refusal), isinstance(again, Permit)

    assert asyncio.run(use(limiter)) == (True, True)
