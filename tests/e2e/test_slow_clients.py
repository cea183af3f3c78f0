"""Slow-loris clients: connections that trickle their headers a byte at a time get a 408
once `NXS_HEADER_TIMEOUT_SECONDS` pass, ones that never send a byte are closed, idle
keep-alive connections are closed, oversized headers get a 431 — while a normal client
is answered all along.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e.conftest import Deployment, Gateway, eventually, launch

SLOW_CLIENTS = 30
REQUEST_START = b"POST /fal-ai/flux/dev HTTP/1.1\r\nHost: nxs\r\nX-Slow: "


@pytest.fixture(scope="module")
def strict(
    make_deployment: Callable[[], Deployment], tls_files: dict[str, Path]
) -> Iterator[Gateway]:
    deployment = make_deployment()
    deployment.env.update(NXS_HEADER_TIMEOUT_SECONDS="1.5", NXS_KEEP_ALIVE_SECONDS="1")
    gateway = launch(deployment, tls_files)
    yield gateway
    gateway.client.close()
    gateway.server.stop()


def connect(gateway: Gateway) -> socket.socket:
    host, port = gateway.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (then closed here too)."""
    received = b""
    with sock:
        while chunk := sock.recv(65536):
            received += chunk
    return received


def answer(raw: bytes) -> tuple[int, dict[str, str]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def trickle(sockets: list[socket.socket], seconds: float) -> list[socket.socket]:
    """Send each socket one more header byte every 0.1 s for `seconds`; returns the ones
    the server has not closed (a send to a closed one fails)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for sock in sockets:
            try:
                sock.sendall(b"a")
            except OSError:
                continue
        time.sleep(0.1)
    return sockets


def test_slow_loris_clients_get_408_while_a_normal_client_is_answered(strict: Gateway) -> None:
    slow = [connect(strict) for _ in range(SLOW_CLIENTS)]
    for sock in slow:
        sock.sendall(REQUEST_START)
    trickle(slow, 0.6)
    assert strict.client.get(strict.url + "/healthz").status_code == 200  # answered meanwhile
    trickle(slow, 0.3)
    answers = [answer(read_all(sock)) for sock in slow]
    assert answers == [(408, {"detail": "Request headers not received in time"})] * SLOW_CLIENTS
    assert strict.client.get(strict.url + "/healthz").status_code == 200
    assert "Traceback" not in strict.server.log()


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(strict: Gateway) -> None:
    assert read_all(connect(strict)) == b""


def test_an_idle_keep_alive_connection_is_closed(strict: Gateway) -> None:
    sock = connect(strict)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: nxs\r\n\r\n")
    raw = read_all(sock)  # the answer, then the close once the connection idled
    assert raw.startswith(b"HTTP/1.1 200 ") and raw.count(b"HTTP/1.1") == 1


def test_headers_over_the_limit_get_431(strict: Gateway) -> None:
    sock = connect(strict)
    sock.sendall(REQUEST_START + b"x" * (70 * 1024))
    assert answer(read_all(sock)) == (431, {"detail": "Request headers too large"})
    response = httpx.get(strict.url + "/healthz", headers={"X-Big": "x" * 8000})
    assert response.status_code == 200  # large but within NXS_MAX_HEADER_BYTES


def test_past_max_connections_a_request_gets_fals_503_until_one_closes(
    make_deployment: Callable[[], Deployment], tls_files: dict[str, Path]
) -> None:
    """`NXS_MAX_CONNECTIONS=3`: with two idle connections open, a request on a third is
    refused (uvicorn counts the connection asking); once they close it is answered."""
    deployment = make_deployment()
    deployment.env["NXS_MAX_CONNECTIONS"] = "3"
    gateway = launch(deployment, tls_files)
    idle: list[socket.socket] = []
    try:
        idle += [connect(gateway), connect(gateway)]
        asking = connect(gateway)
        asking.sendall(b"GET /healthz HTTP/1.1\r\nHost: nxs\r\n\r\n")
        assert answer(read_all(asking)) == (
            503,
            {"detail": "Too many connections to this gateway: retry shortly"},
        )
        for sock in idle:
            sock.close()
        assert eventually(lambda: httpx.get(f"{gateway.url}/healthz").status_code == 200)
    finally:
        for sock in idle:
            sock.close()
        gateway.client.close()
        gateway.server.stop()
