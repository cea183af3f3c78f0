"""fal URLs forwarded as fal would: an SDK-proxy target reaches exactly its host, path and
query (owners NXS never heard of, `workflows/…`, `comfy/…`, deep paths), through the
official JS client too; NXS's own shorthand paths resolve against fal's catalogue once
`nxs models sync` has read it (the Python client's `FAL_RUN_HOST` paths among them).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import Customer, Deployment, Gateway, eventually, python_client_env
from tests.support.clients import JS_DIR, run_node, run_python

from nxs.emulator.models import MODELS

ACCOUNT = "acct-fidelity"
UPSTREAM_KEY = f"{ACCOUNT}:secret-fidelity-0001"


@pytest.fixture(scope="module")
def deployment(make_deployment: Callable[[], Deployment]) -> Deployment:
    made = make_deployment()
    made.add_upstream("main", UPSTREAM_KEY)
    return made


@pytest.fixture(scope="module")
def gw(deployment: Deployment, start_gateway: Callable[..., Gateway]) -> Gateway:
    return start_gateway(deployment)


@pytest.fixture(scope="module")
def carol(gw: Gateway) -> Customer:
    return gw.customer("carol")


def last_path(gw: Gateway, before: int) -> str:
    """The path (and nothing else) of the last request that reached the emulator."""
    entries = gw.deployment.received(ACCOUNT)[before:]
    assert entries, "nothing reached the emulator"
    return str(entries[-1]["path"])


def through_proxy(gw: Gateway, key: str, route: str, target: str, method: str = "POST") -> Any:
    body = {"prompt": "a fox"} if method == "POST" else None
    headers = {"x-fal-target-url": target}
    return gw.request(method, route, key, json=body, headers=headers)


@pytest.mark.parametrize("route", ["/api/proxy", "/api/fal/proxy"])
@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("https://fal.run/myorg/my-app", 404),
        ("https://queue.fal.run/myorg/my-app", 404),
        ("https://fal.run/myorg/my-app/deep/er/path", 404),
        ("https://fal.run/flux/dev", 404),  # a full URL is never shorthand
        ("https://queue.fal.run/workflows/someone/flow/run", 404),
        ("https://fal.run/comfy/someone/workflow", 404),
        ("https://queue.fal.run/moonvalley/marey/t2v", 200),
        ("https://fal.run/workflows/fal-ai/image-pipeline/text-to-image", 200),
    ],
)
def test_proxy_target_reaches_exactly_that_url(
    gw: Gateway, carol: Customer, route: str, target: str, status: int
) -> None:
    before = len(gw.deployment.received(ACCOUNT))
    response = through_proxy(gw, carol.key, route, target)
    assert response.status_code == status, response.text
    assert last_path(gw, before) == "/" + target.removeprefix("https://")


def test_proxy_target_keeps_its_query(gw: Gateway, carol: Customer) -> None:
    query = "prompt=hello%20there&model=openai/gpt-4o"
    target = f"https://fal.run/fal-ai/any-llm?{query}"
    proxied = through_proxy(gw, carol.key, "/api/proxy", target, method="GET")
    direct = httpx.get(
        f"{gw.deployment.emulator.url}/fal.run/fal-ai/any-llm?{query}",
        headers={"Authorization": f"Key {UPSTREAM_KEY}"},
    )
    assert proxied.status_code == 200, proxied.text
    assert proxied.json()["output"] == direct.json()["output"]


@pytest.mark.parametrize("mode", ["middleware", "proxyUrl"])
def test_js_client_reaches_any_owner_and_namespace(gw: Gateway, carol: Customer, mode: str) -> None:
    before = len(gw.deployment.received(ACCOUNT))
    out = run_node(JS_DIR / "e2e" / "fidelity-client.mjs", gw.url, carol.key, mode)
    assert out["video"] == "video/mp4"
    assert out["workflow"] == [64, 48] and out["edit"] == [64, 48]
    assert out["llm"]["partials"] == 4 and out["llm"]["output"].endswith(".")
    assert out["ownApp"] == {"status": 404}
    paths = [entry["path"] for entry in gw.deployment.received(ACCOUNT)[before:]]
    assert "/fal.run/myorg/my-app" in paths and "/queue.fal.run/moonvalley/marey/t2v" in paths


def test_shorthand_paths_resolve_against_the_synced_catalogue(gw: Gateway, carol: Customer) -> None:
    before = len(gw.deployment.received(ACCOUNT))
    unknown = gw.request("POST", "/moonvalley/marey/t2v", carol.key, json={"prompt": "x"})
    assert unknown.status_code == 404  # an owner NXS does not list yet: fal-ai/ in front
    assert last_path(gw, before) == "/fal.run/fal-ai/moonvalley/marey/t2v"
    assert f"Stored {len(MODELS)} endpoint ids" in gw.deployment.nxs("models", "sync")
    listed = json.loads(gw.deployment.nxs("models", "list", "--json"))
    assert {
        "endpoint": "moonvalley/marey/t2v",
        "category": "text-to-video",
        "status": "active",
    } in listed

    def runs() -> bool:
        answer = gw.request("POST", "/moonvalley/marey/t2v", carol.key, json={"prompt": "x"})
        return answer.status_code == 200

    assert eventually(runs)
    for path, upstream in [
        ("/moonvalley/marey/t2v", "/fal.run/moonvalley/marey/t2v"),
        ("/any-llm", "/fal.run/fal-ai/any-llm"),
        ("/flux/dev/image-to-image", "/fal.run/fal-ai/flux/dev/image-to-image"),
        ("/queue/marey/t2v", "/queue.fal.run/fal-ai/marey/t2v"),
    ]:
        before = len(gw.deployment.received(ACCOUNT))
        gw.request("POST", path, carol.key, json={"prompt": "x"})
        assert last_path(gw, before) == upstream


PY_CLIENT = textwrap.dedent(
    """
    import io, json, os, fal_client
    from PIL import Image
    fal_client.client.REST_URL = "https://" + os.environ["FAL_RUN_HOST"]  # uploads via NXS
    fal_client.client.CDN_URL = os.environ["CDN_URL"]  # fal's CDN, played by the emulator
    video = fal_client.subscribe("moonvalley/marey/t2v", arguments={"prompt": "a"})
    text = fal_client.run("fal-ai/any-llm", arguments={"prompt": "b"})
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30)).save(buffer, format="PNG")
    url = fal_client.upload(buffer.getvalue(), "image/png")
    arguments = {"prompt": "c", "image_url": url}
    edit = fal_client.run("fal-ai/fast-sdxl/image-to-image", arguments=arguments)
    size = [edit["images"][0]["width"], edit["images"][0]["height"]]
    out = {"video": video["video"]["content_type"], "text": text["output"], "edit": size}
    print(json.dumps(out))
    """
)


def test_python_client_reaches_an_owner_from_the_catalogue(
    deployment: Deployment, start_gateway: Callable[..., Gateway], tls_files: dict[str, Path]
) -> None:
    deployment.nxs("models", "sync")
    tls = start_gateway(deployment, tls=True)
    customer = tls.customer("py")
    env = python_client_env(tls, customer.key, tls_files["ca"])
    env["CDN_URL"] = f"{deployment.emulator.url}/v3.fal.media"
    out = run_python(PY_CLIENT, env=env)
    assert out["video"] == "video/mp4" and out["text"].endswith(".")
    assert out["edit"] == [40, 30]  # uploaded through NXS, fetched by the model from the CDN


@pytest.mark.parametrize(
    ("query", "status"),
    [("?storage_type=fal-cdn-v3", 200), ("", 200), ("?storage_type=gcs", 400)],
)
def test_proxied_storage_keeps_to_fals_cdn(
    gw: Gateway, carol: Customer, query: str, status: int
) -> None:
    before = len(gw.deployment.received(ACCOUNT))
    target = f"https://rest.alpha.fal.ai/storage/upload/initiate{query}"
    body = {"file_name": "a.txt", "content_type": "text/plain"}
    headers = {"x-fal-target-url": target}
    response = gw.request("POST", "/api/fal/proxy", carol.key, json=body, headers=headers)
    assert response.status_code == status, response.text
    reached = len(gw.deployment.received(ACCOUNT)) - before
    assert reached == (1 if status == 200 else 0)
