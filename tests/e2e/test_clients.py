"""The official clients through the gateway: @fal-ai/client with seed 000's
requestMiddleware and with proxyUrl; Python fal_client over TLS via FAL_RUN_HOST."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import Customer, Deployment, Gateway, python_client_env
from tests.support.clients import JS_DIR, run_node, run_python


def run_js(gateway: Gateway, key: str, mode: str) -> dict[str, Any]:
    return dict(run_node(JS_DIR / "e2e" / "gateway-client.mjs", gateway.url, key, mode))


@pytest.mark.parametrize("mode", ["middleware", "proxyUrl"])
def test_js_client_through_the_gateway(gateway: Gateway, alice: Customer, mode: str) -> None:
    before = len(gateway.deployment.received())
    out = run_js(gateway, alice.key, mode)
    assert out["run"]["images"] == 1
    assert out["run"]["requestId"]
    assert out["subscribe"]["images"] == 1
    assert out["subscribe"]["updates"][-1] == "COMPLETED"
    assert out["stream"]["events"] >= 1
    assert out["stream"]["images"] == 1
    assert out["queue"] == {
        "requestId": out["queue"]["requestId"],
        "status": "COMPLETED",
        "images": 1,
    }
    assert out["cancel"] in ("ok", "status 400")
    assert out["upload"] == "hello through nxs"  # storage initiate went through the proxy
    assert out["invalid"]["status"] == 422
    accounts = {entry["account_id"] for entry in gateway.deployment.received()[before:]}
    assert "acct-main" in accounts
    assert not any(str(account).startswith("nxs_") for account in accounts)  # never the nxs_ key


PY_CLIENT = textwrap.dedent(
    """
    import json, fal_client
    out = {}
    out["run"] = len(fal_client.run("fal-ai/flux/dev", arguments={"prompt": "a"})["images"])
    updates = []
    result = fal_client.subscribe(
        "fal-ai/flux/dev", arguments={"prompt": "b"}, with_logs=True,
        on_queue_update=lambda update: updates.append(type(update).__name__),
    )
    out["subscribe"] = len(result["images"])
    out["updates"] = updates
    handle = fal_client.submit("fal-ai/flux/dev", arguments={"prompt": "c"})
    out["status_url"] = handle.status_url
    out["by_id"] = len(fal_client.result("fal-ai/flux/dev", handle.request_id)["images"])
    other = fal_client.submit("fal-ai/flux/dev", arguments={"prompt": "d"})
    try:
        other.cancel()
        out["cancel"] = 202
    except fal_client.client.FalClientHTTPError as error:
        out["cancel"] = error.status_code
    out["events"] = len(list(fal_client.stream("fal-ai/flux/dev", arguments={"prompt": "e"})))
    try:
        fal_client.run("fal-ai/flux/dev", arguments={})
    except fal_client.client.FalClientHTTPError as error:
        out["invalid"] = error.status_code
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def tls_gateway(
    make_deployment: Callable[[], Deployment], start_gateway: Callable[..., Gateway]
) -> Gateway:
    deployment = make_deployment()
    deployment.add_upstream("main", "acct-tls:secret-tls-0001")
    return start_gateway(deployment, tls=True)


def test_python_client_over_tls_follows_the_rewritten_urls(
    tls_gateway: Gateway, tls_files: dict[str, Path]
) -> None:
    customer = tls_gateway.customer()
    env = python_client_env(tls_gateway, customer.key, tls_files["ca"])
    out = run_python(PY_CLIENT, env=env)
    host = env["FAL_RUN_HOST"]
    assert out["run"] == 1
    assert out["subscribe"] == 1
    assert out["updates"][-1] == "Completed"
    assert out["status_url"].startswith(f"https://{host}/queue/fal-ai/flux/requests/")
    assert out["by_id"] == 1
    assert out["cancel"] in (202, 400)  # via the rewritten cancel_url
    assert out["events"] >= 1
    assert out["invalid"] == 422
