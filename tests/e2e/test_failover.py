"""The pool hides bad fal keys from customers, and queued requests stay with their key."""

from __future__ import annotations

from collections.abc import Callable

from tests.e2e.conftest import Deployment, Gateway, eventually

from nxs.config import Settings
from nxs.store.store import Store

PROMPT = {"prompt": "a fox"}
BAD_KEYS = {
    "bad-invalid": "invalid-1:secret-aaaaaaaa",
    "bad-locked": "locked-1:secret-bbbbbbbb",
    "bad-limited": "limited-1:secret-cccccccc",
    "bad-flaky": "flaky-1:secret-dddddddd",
}


def test_bad_keys_cause_no_client_visible_failures(
    make_deployment: Callable[[], Deployment], fresh_gateway: Callable[..., Gateway]
) -> None:
    deployment = make_deployment()
    for name, secret in BAD_KEYS.items():
        deployment.add_upstream(name, secret, weight=5)
    deployment.add_upstream("good", "good-1:secret-eeeeeeee")
    customer = deployment.customer()
    gateway = fresh_gateway(deployment)
    statuses = []
    for index in range(12):
        run = gateway.request("POST", "/fal-ai/flux/dev", customer.key, json={"prompt": f"{index}"})
        submit = gateway.request("POST", "/queue/fal-ai/flux/dev", customer.key, json=PROMPT)
        statuses += [run.status_code, submit.status_code]
    assert statuses == [200] * 24
    states = deployment.upstream_states()
    assert states["bad-invalid"] == "invalid"
    assert states["bad-locked"] == "suspended"
    assert states["good"] == "active"


def test_invalid_key_stays_out_until_enabled(
    make_deployment: Callable[[], Deployment], fresh_gateway: Callable[..., Gateway]
) -> None:
    deployment = make_deployment()
    deployment.add_upstream("bad", "invalid-2:secret-ffffffff")
    customer = deployment.customer()
    gateway = fresh_gateway(deployment)
    first = gateway.request("POST", "/fal-ai/flux/dev", customer.key, json={"prompt": "x"})
    assert first.status_code == 502
    assert deployment.upstream_states()["bad"] == "invalid"
    second = gateway.request("POST", "/fal-ai/flux/dev", customer.key, json={"prompt": "x"})
    assert second.status_code == 503  # no usable key left: nothing was sent upstream
    deployment.add_upstream("fresh", "good-2:secret-gggggggg")
    assert eventually(
        lambda: (
            gateway.request("POST", "/fal-ai/flux/dev", customer.key, json=PROMPT).status_code
            == 200
        )
    )


def test_status_polls_reach_the_submitting_key_after_the_pool_changed(
    make_deployment: Callable[[], Deployment], fresh_gateway: Callable[..., Gateway]
) -> None:
    deployment = make_deployment()
    deployment.add_upstream("first", "owner-a:secret-hhhhhhhh")
    customer = deployment.customer()
    gateway = fresh_gateway(deployment)
    request_id = gateway.submit("fal-ai/flux/dev", customer.key)["request_id"]
    deployment.add_upstream("second", "owner-b:secret-iiiiiiii")
    deployment.nxs("upstream", "remove", "first")
    assert eventually(lambda: _submit_reaches(gateway, customer.key, "owner-b"))
    before = len(deployment.received())
    completed = gateway.wait_completed("fal-ai/flux", request_id, customer.key)
    result = gateway.request("GET", f"/queue/fal-ai/flux/requests/{request_id}", customer.key)
    assert completed["status"] == "COMPLETED"
    assert result.status_code == 200, result.text
    accounts = {entry["account_id"] for entry in deployment.received()[before:]}
    assert accounts & {"owner-a", "owner-b"} == {"owner-a"}


def _submit_reaches(gateway: Gateway, key: str, account: str) -> bool:
    before = len(gateway.deployment.received())
    gateway.submit("fal-ai/flux/dev", key)
    return any(e["account_id"] == account for e in gateway.deployment.received()[before:])


def test_a_models_own_failure_is_passed_on_not_retried(
    make_deployment: Callable[[], Deployment], fresh_gateway: Callable[..., Gateway]
) -> None:
    deployment = make_deployment()
    deployment.add_upstream("one", "fails-a:secret-jjjjjjjj")
    deployment.add_upstream("two", "fails-b:secret-kkkkkkkk")
    customer = deployment.customer()
    gateway = fresh_gateway(deployment)
    before = len(deployment.received())
    response = gateway.request("POST", "/fal-ai/flux/dev", customer.key, json={"prompt": "[fail]"})
    assert response.status_code == 500
    assert "[fail]" in response.json()["detail"]
    assert response.headers["x-fal-request-id"]
    runs = [e for e in deployment.received()[before:] if e["account_id"] in ("fails-a", "fails-b")]
    assert len(runs) == 1  # run once, billed once: not replayed on the other key


def test_a_suspended_key_resumes_by_itself_once_fal_accepts_it(
    make_deployment: Callable[[], Deployment], fresh_gateway: Callable[..., Gateway]
) -> None:
    deployment = make_deployment()
    deployment.add_upstream("topped-up", "resumed-1:secret-llllllll")
    settings = Settings.from_env(deployment.env)
    with Store.open(settings) as store:  # as if fal had locked it earlier; now it is paid
        key_id = store.get_upstream("topped-up").id
        store.set_upstream_state(key_id, "suspended", "fal answered 403 (account locked)")
    customer = deployment.customer()
    gateway = fresh_gateway(deployment)
    assert eventually(lambda: deployment.upstream_states()["topped-up"] == "active")
    response = gateway.request("POST", "/fal-ai/flux/dev", customer.key, json=PROMPT)
    assert response.status_code == 200
