"""`/metrics` of a replica run with `--workers 2` is the sum over both workers, whichever
worker answers the scrape: Prometheus scrapes one target per replica."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import httpx
from tests.e2e.conftest import METRICS_TOKEN, Deployment, Gateway, eventually

CALLS = 30
STATUS = "/fal-ai/flux/requests/00000000-0000-0000-0000-000000000000/status"


def refused_count(text: str) -> int:
    """`nxs_requests_total` for the status route answered 401."""
    found = re.search(r'^nxs_requests_total\{route="status",status="401"\} (\d+)$', text, re.M)
    return int(found.group(1)) if found else 0


def scrapes(gateway: Gateway, count: int) -> list[tuple[str, int]]:
    """(worker, the 401 count it reports) for `count` scrapes, each on a new connection."""
    bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    answers = [httpx.get(gateway.url + "/metrics", headers=bearer) for _ in range(count)]
    return [(a.headers["x-nxs-request-id"][:8], refused_count(a.text)) for a in answers]


def test_every_worker_reports_the_replicas_total(
    make_deployment: Callable[[], Deployment], fresh_gateway: Callable[..., Gateway]
) -> None:
    gateway = fresh_gateway(make_deployment(), workers=2)
    answered: Counter[str] = Counter()
    for _ in range(CALLS):  # a new connection each: the kernel spreads them over both
        response = httpx.get(gateway.url + STATUS, headers={"Authorization": "Key nxs_nope"})
        assert response.status_code == 401
        answered[response.headers["x-nxs-request-id"][:8]] += 1
    assert len(answered) == 2, answered  # both workers counted some of them
    assert eventually(lambda: {n for _, n in scrapes(gateway, 10)} == {CALLS}, 5)
    reports: list[tuple[str, int]] = []

    def both_workers_answered() -> bool:  # which worker accepts a connection is the kernel's
        reports.extend(scrapes(gateway, 5))
        return len({worker for worker, _ in reports}) == 2

    assert eventually(both_workers_answered, 10), reports
    assert {count for _, count in reports} == {CALLS}  # both workers reported the whole
