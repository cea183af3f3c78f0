"""`nxs serve` as operators run it: several workers, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import Customer, Deployment, Gateway, launch


def test_workers_share_the_database_and_stop_cleanly_on_sigterm(
    shared: Deployment, alice: Customer, fresh_gateway: Callable[..., Gateway]
) -> None:
    gateway = fresh_gateway(shared, workers=2)
    request_ids = [gateway.submit("fal-ai/flux/dev", alice.key)["request_id"] for _ in range(6)]
    for request_id in request_ids:  # any worker finds any worker's submit
        status = gateway.request("GET", f"/fal-ai/flux/requests/{request_id}/status", alice.key)
        assert status.status_code in (200, 202), status.text
    gateway.server.process.send_signal(signal.SIGTERM)
    assert gateway.server.process.wait(timeout=20) == 0
    assert "Traceback" not in gateway.server.log()


def test_public_url_setting_names_the_urls_handed_out(
    make_deployment: Callable[[], Deployment], fresh_gateway: Callable[..., Gateway]
) -> None:
    deployment = make_deployment()
    deployment.env["NXS_PUBLIC_URL"] = "https://nxs-api.example/"
    deployment.add_upstream("main", "acct-public:secret-public-1")
    customer = deployment.customer()
    gateway = fresh_gateway(deployment)
    body = gateway.submit("fal-ai/flux/dev", customer.key)
    assert (
        body["response_url"]
        == f"https://nxs-api.example/queue/fal-ai/flux/requests/{body['request_id']}"
    )


def test_a_killed_servers_metrics_folder_is_removed_by_the_next_start(
    shared: Deployment, tls_files: dict[str, Path]
) -> None:
    """`kill -9` leaves no cleanup: the next `nxs serve` on the machine removes the
    folder where the dead one's workers added up their metrics, and keeps its own."""
    killed = launch(shared, tls_files, new_session=True)
    pid = killed.server.process.pid
    (orphan,) = Path(tempfile.gettempdir()).glob(f"nxs-metrics-{pid}-*")
    os.killpg(pid, signal.SIGKILL)
    killed.server.process.wait(timeout=10)
    assert orphan.is_dir()
    successor = launch(shared, tls_files)
    try:
        assert not orphan.exists()
        mine = list(
            Path(tempfile.gettempdir()).glob(f"nxs-metrics-{successor.server.process.pid}-*")
        )
        assert len(mine) == 1 and mine[0].is_dir()
    finally:
        successor.client.close()
        successor.server.stop()
