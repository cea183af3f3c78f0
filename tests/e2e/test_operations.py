"""What an operator relies on: forwarded headers believed only from trusted proxies, the
client's address in the access log, CORS, `/metrics` off the customer port unless its
token is given (and on `--metrics-port`), JSON log lines, a stalled stdout that never
stalls requests, and settings refused with one line naming the variable.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.e2e.conftest import METRICS_TOKEN, Customer, Deployment, Gateway, eventually, launch
from tests.support.servers import ROOT, free_port, nxs_command, run_nxs

APP_ORIGIN = "https://app.example.com"
PROXY_HEADERS = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "api.example.com",
    "X-Forwarded-For": "198.51.100.9, 203.0.113.7",  # a client's claim, then what our LB saw
}


@pytest.fixture(scope="module")
def behind_proxy(
    make_deployment: Callable[[], Deployment], tls_files: dict[str, Path]
) -> Iterator[Gateway]:
    """A gateway that trusts loopback as its load balancer, allows one browser origin and
    answers /metrics on a port of its own."""
    deployment = make_deployment()
    deployment.add_upstream("main", "acct-ops:secret-ops-0001")
    deployment.env.update(
        NXS_TRUSTED_PROXIES="10.0.0.0/8, 127.0.0.1",
        NXS_CORS_ORIGINS=APP_ORIGIN,
        NXS_METRICS_PORT=str(free_port()),
    )
    gateway = launch(deployment, tls_files)
    yield gateway
    gateway.client.close()
    gateway.server.stop()


@pytest.fixture(scope="module")
def carol(behind_proxy: Gateway) -> Customer:
    return behind_proxy.customer("carol")


def access_line(gateway: Gateway, request_id: str) -> dict[str, object]:
    assert eventually(lambda: f'"request_id":"{request_id}"' in gateway.server.log())
    lines = gateway.server.log().splitlines()
    return dict(json.loads(next(line for line in lines if f'"{request_id}"' in line)))


def test_a_trusted_proxy_names_the_urls_and_the_client(
    behind_proxy: Gateway, carol: Customer
) -> None:
    response = behind_proxy.request(
        "POST", "/queue/fal-ai/flux/dev", carol.key, json={"prompt": "a"}, headers=PROXY_HEADERS
    )
    request_id = response.json()["request_id"]
    expected = f"https://api.example.com/queue/fal-ai/flux/requests/{request_id}/status"
    assert response.json()["status_url"] == expected
    line = access_line(behind_proxy, response.headers["x-nxs-request-id"])
    assert line["client"] == "203.0.113.7"  # the first hop not a trusted proxy


def test_the_access_log_names_a_direct_clients_address(gateway: Gateway) -> None:
    response = gateway.request("GET", "/healthz", headers=PROXY_HEADERS)
    assert access_line(gateway, response.headers["x-nxs-request-id"])["client"] == "127.0.0.1"


def test_web_pages_behind_a_tls_proxy_set_secure_cookies(
    behind_proxy: Gateway, gateway: Gateway
) -> None:
    """The portal's and the console's cookies are Secure when the trusted proxy says the
    client came over https; the same claim from a client nobody trusts changes nothing."""
    tls = {"X-Forwarded-Proto": "https"}
    for page in ("/portal/sign-in", "/console/sign-in"):
        trusted = behind_proxy.request("GET", page, headers=tls)
        untrusted = gateway.request("GET", page, headers=tls)
        assert (trusted.status_code, untrusted.status_code) == (200, 200)
        assert "; secure" in trusted.headers["set-cookie"].lower()
        assert "; secure" not in untrusted.headers["set-cookie"].lower()


def test_a_preflight_from_an_allowed_origin_gets_what_it_asked(behind_proxy: Gateway) -> None:
    preflight = {
        "Origin": APP_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    response = behind_proxy.request("OPTIONS", "/fal-ai/flux/dev", headers=preflight)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert response.headers["access-control-allow-headers"] == "authorization, content-type"
    assert "POST" in response.headers["access-control-allow-methods"]


def test_a_preflight_from_another_origin_is_refused(behind_proxy: Gateway) -> None:
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    response = behind_proxy.request("OPTIONS", "/fal-ai/flux/dev", headers=preflight)
    assert response.status_code == 403
    assert response.json()["detail"] == "Origin not allowed"
    assert "access-control-allow-origin" not in response.headers


def test_calls_from_an_allowed_origin_carry_its_cors_headers(
    behind_proxy: Gateway, carol: Customer
) -> None:
    allowed = behind_proxy.request(
        "POST", "/fal-ai/flux/dev", carol.key, json={"prompt": "a"}, headers={"Origin": APP_ORIGIN}
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "x-nxs-request-id" in allowed.headers["access-control-expose-headers"]
    other = behind_proxy.request("GET", "/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_metrics_are_not_on_the_customer_port_without_the_token(behind_proxy: Gateway) -> None:
    assert behind_proxy.request("GET", "/metrics").status_code == 404
    assert behind_proxy.request("GET", "/metrics", "wrong", "Bearer").status_code == 404


def test_the_metrics_port_answers_metrics_and_health_only(behind_proxy: Gateway) -> None:
    base = f"http://127.0.0.1:{behind_proxy.deployment.env['NXS_METRICS_PORT']}"
    assert httpx.get(base + "/metrics").status_code == 200
    assert httpx.get(base + "/readyz").status_code == 200
    refused = httpx.post(base + "/fal-ai/flux/dev", json={"prompt": "a"})
    assert refused.status_code == 404
    assert set(refused.json()) == {"detail", "error_type"}


def test_every_metric_family_has_help_type_and_base_units(
    behind_proxy: Gateway, carol: Customer
) -> None:
    behind_proxy.request("POST", "/fal-ai/flux/dev", carol.key, json={"prompt": "a"})
    families = {f.name: f for f in text_string_to_metric_families(behind_proxy.metrics())}
    assert all(family.documentation for family in families.values())
    assert all(family.type != "unknown" for family in families.values())
    durations = families["nxs_request_duration_seconds"].samples
    assert {"route": "run", "status_class": "2xx", "le": "+Inf"} in [s.labels for s in durations]
    latency = families["nxs_upstream_latency_seconds"].samples
    assert {"key": "main", "outcome": "2xx", "le": "+Inf"} in [s.labels for s in latency]
    (info,) = families["nxs_build_info"].samples
    assert info.value == 1 and info.labels["version"]


def test_log_records_are_json_lines_beside_the_access_log(behind_proxy: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", behind_proxy.server.port)) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")  # uvicorn logs a warning
        sock.recv(1024)
    assert eventually(lambda: "Invalid HTTP request" in behind_proxy.server.log())
    lines = [json.loads(line) for line in behind_proxy.server.log().splitlines()]
    warning = next(line for line in lines if "Invalid HTTP request" in line.get("message", ""))
    assert warning["level"] == "warning" and warning["logger"] == "uvicorn.error"
    assert warning["time"].endswith("Z")


def test_a_stdout_nobody_reads_never_stalls_requests(
    make_deployment: Callable[[], Deployment],
) -> None:
    deployment = make_deployment()
    port = free_port()
    with (deployment.folder / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(
            nxs_command("serve", "--port", str(port)),
            stdout=subprocess.PIPE,  # a pipe (64 KiB) nobody reads: full after ~300 lines
            stderr=stderr,
            env={**os.environ, **deployment.env},
            cwd=ROOT,
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            assert eventually(lambda: _answers(client), 15)
            statuses = {client.get("/healthz").status_code for _ in range(1500)}
        assert statuses == {200}
    finally:
        process.terminate()
        process.wait(timeout=15)
        assert process.stdout is not None
        process.stdout.close()


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("NXS_LOG_LEVEL", "loud"),
        ("NXS_LOG_FORMAT", "xml"),
        ("NXS_TRUSTED_PROXIES", "10.0.0.0/8, not-an-address"),
        ("NXS_CORS_ORIGINS", "app.example.com"),
        ("NXS_METRICS_PORT", "70000"),
        ("NXS_DRAIN_SECONDS", "-1"),
    ],
)
def test_a_bad_operations_setting_is_one_line_naming_it(
    shared: Deployment, variable: str, value: str
) -> None:
    result = run_nxs("serve", "--port", str(free_port()), env={**shared.env, variable: value})
    assert result.returncode == 1
    assert variable in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_metrics_token_opens_metrics_on_the_customer_port(gateway: Gateway) -> None:
    response = gateway.request("GET", "/metrics", METRICS_TOKEN, "Bearer")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
