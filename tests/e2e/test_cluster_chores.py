"""Work done once per cluster, not once per process: three gateways on one database (as
workers or replicas are) reconcile unfetched queued requests, and each request is asked
about exactly once — a due row is claimed by one reconciler, never polled by all three.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.e2e.conftest import DatabaseEnv
from tests.e2e.test_billing_completion import SDXL, Site, open_site
from tests.support.servers import RunningServer

SUBMITS = 40
# No public URL: no webhook relay, so only the reconcilers can settle what nobody fetches.
RECONCILING = {"NXS_PUBLIC_URL": "", "NXS_RECONCILE_AFTER_SECONDS": "0.5"}


@pytest.fixture(scope="module")
def cluster(
    instant_fal: RunningServer, tmp_path_factory: pytest.TempPathFactory, database_env: DatabaseEnv
) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("chores")
    site = open_site(folder, instant_fal, database_env(folder), *[RECONCILING] * 3)
    yield site
    site.close()


def test_each_unfetched_request_is_polled_once_by_three_reconcilers(cluster: Site) -> None:
    customer, gateway = cluster.prepaid("walkaway"), cluster.gateways[0]
    submitted = [gateway.submit(SDXL, customer.key)["request_id"] for _ in range(SUBMITS)]
    rows = cluster.closed_rows(customer, SUBMITS)
    assert {row["status"] for row in rows} == {"settled"}
    assert cluster.balance(customer) == ("0.60", "0.00")
    for request_id in submitted:
        path = f"/queue.fal.run/fal-ai/fast-sdxl/requests/{request_id}"
        assert cluster.fal_saw(request_id) == [f"GET {path}/status", f"GET {path}"]
