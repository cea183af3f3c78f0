"""fal's connection dies mid-stream: the client gets an error event and then a cut-short
body (the official clients raise rather than take a partial answer as the result), the
prepaid hold is settled once from fal's 200, nothing is logged as a traceback, and the
next stream goes through.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e.conftest import (
    GOOD_KEY,
    Customer,
    Deployment,
    Gateway,
    admin,
    launch,
    prepaid_customer,
)
from tests.support.servers import RunningServer, start_emulator

ADMIN_TOKEN = "upstream-dies-admin-token-0123456789"
FLUX = "fal-ai/flux/dev"


class Cutter:
    """A TCP relay in front of the emulator whose open connections can be cut at once."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.listener.accept()
            except OSError:
                return
            far = socket.create_connection(self.target)
            self.open += [near, far]
            for source, sink in ((near, far), (far, near)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def cut(self) -> None:
        for sock in self.open:
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.open.clear()

    def close(self) -> None:
        self.cut()
        self.listener.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        return


@pytest.fixture(scope="module")
def cut_off(
    make_deployment: Callable[[], Deployment],
    tls_files: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Gateway, Cutter]]:
    emulator: RunningServer = start_emulator(tmp_path_factory.mktemp("cut"), "--time-scale", "1.5")
    port = int(emulator.url.rsplit(":", 1)[1])
    cutter = Cutter(("127.0.0.1", port))
    deployment = make_deployment()
    deployment.env.update(
        NXS_UPSTREAM_URL=f"http://127.0.0.1:{cutter.port}", NXS_ADMIN_TOKEN=ADMIN_TOKEN
    )
    gateway = launch(deployment, tls_files)
    yield gateway, cutter
    gateway.client.close()
    gateway.server.stop()
    cutter.close()
    emulator.stop()


def stream(gateway: Gateway, customer: Customer, lines: list[str], cut: Cutter | None) -> None:
    """Read a flux/dev stream into `lines`; `cut` is cut after its first event."""
    headers = {"Authorization": f"Key {customer.key}"}
    url = f"{gateway.url}/{FLUX}/stream"
    with httpx.stream("POST", url, json={"prompt": "a"}, headers=headers, timeout=30) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            lines.append(line)
            if cut is not None and line.startswith("data:"):
                cut.cut()
                cut = None


def test_a_stream_whose_upstream_dies_ends_with_an_error_event(
    cut_off: tuple[Gateway, Cutter],
) -> None:
    gateway, cutter = cut_off
    customer = prepaid_customer(gateway, "cut", GOOD_KEY, price=(f"{FLUX}/stream", "request"))
    lines: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):  # the body is cut short after the event
        stream(gateway, customer, lines, cutter)
    events = [line for line in lines if line]
    assert len(events) == 3 and events[1] == "event: error"
    assert json.loads(events[2].removeprefix("data: ")) == {
        "detail": "The upstream connection was lost mid-answer",
        "error_type": "upstream_broke_off",
    }
    rows = gateway.deployment.rows("SELECT status, cost_micros FROM ledger")
    assert [(row["status"], row["cost_micros"]) for row in rows] == [("settled", 10_000)]
    balance = admin(gateway, "GET", "/customers/cut/balance")
    assert (balance["available"], balance["reserved"]) == ("0.99", "0.00")
    assert "Traceback" not in gateway.server.log()


def test_the_next_stream_goes_through(cut_off: tuple[Gateway, Cutter]) -> None:
    gateway, _ = cut_off
    lines: list[str] = []
    stream(gateway, gateway.customer("next"), lines, None)
    assert '"images"' in [line for line in lines if line][-1]
