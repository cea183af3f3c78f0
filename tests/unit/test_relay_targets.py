"""Which customer webhook URLs the relay accepts at submit, and the 400 it answers
otherwise: loopback, private and link-local targets only with allow_private.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from nxs.errors import NxsError, render
from nxs.relay.callbacks import Callbacks
from nxs.relay.schema import apply_relay_schema
from nxs.relay.targets import GuardedResolver
from nxs.store.database import parse_url
from nxs.store.migrations import migrate
from nxs.store.store import connect

PRIVATE = [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://api.localhost/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://172.16.5.5/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://100.64.0.1/hook",
    "http://[::1]/hook",
    "http://[fd00::1]/hook",
    "http://[fe80::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
]
MALFORMED = ["ftp://example.com/hook", "example.com/hook", "https://user:pw@example.com/h", ""]


@pytest.fixture
def callbacks(tmp_path: Path) -> Callbacks:
    database = connect(parse_url(f"sqlite:///{tmp_path / 'nxs.db'}"))
    migrate(database)
    apply_relay_schema(database)
    return Callbacks(database, "https://nxs.example.com/", allow_private=False)


def refusal(callbacks: Callbacks, url: str) -> dict[str, str]:
    with pytest.raises(NxsError) as caught:
        callbacks.register("cus_a", url)
    assert caught.value.status == 400
    body: dict[str, str] = json.loads(render(caught.value))
    return body


@pytest.mark.parametrize("url", PRIVATE)
def test_private_target_is_refused_with_a_clear_400(callbacks: Callbacks, url: str) -> None:
    body = refusal(callbacks, url)
    assert body["error_type"] == "invalid_webhook_url"
    assert "NXS_WEBHOOK_ALLOW_PRIVATE" in body["detail"]


@pytest.mark.parametrize("url", MALFORMED)
def test_malformed_target_is_refused(callbacks: Callbacks, url: str) -> None:
    assert refusal(callbacks, url)["error_type"] == "invalid_webhook_url"


@pytest.mark.parametrize("url", PRIVATE[:3])
def test_private_target_is_accepted_when_allowed(tmp_path: Path, url: str) -> None:
    database = connect(parse_url(f"sqlite:///{tmp_path / 'nxs.db'}"))
    apply_relay_schema(database)
    registration = Callbacks(database, "http://127.0.0.1:9", allow_private=True).register("c", url)
    assert registration.fal_webhook_url.startswith("http://127.0.0.1:9/webhooks/fal/cb_")


def test_public_target_gets_an_unguessable_callback_url(callbacks: Callbacks) -> None:
    first = callbacks.register("cus_a", "https://hooks.example.com/fal?token=t")
    second = callbacks.register("cus_a", "https://93.184.215.14/fal")
    assert first.fal_webhook_url == f"https://nxs.example.com/webhooks/fal/{first.callback_id}"
    assert first.callback_id != second.callback_id and len(first.callback_id) > 40
    assert callbacks.find(first.callback_id).target_url == "https://hooks.example.com/fal?token=t"


def test_without_public_url_there_is_no_relay(tmp_path: Path) -> None:
    database = connect(parse_url(f"sqlite:///{tmp_path / 'nxs.db'}"))
    apply_relay_schema(database)
    body = refusal(Callbacks(database, None, allow_private=True), "https://example.com/h")
    assert "NXS_PUBLIC_URL" in body["detail"]


def test_hostname_resolving_to_loopback_is_not_connected_at_delivery() -> None:
    async def resolve() -> None:
        guard = GuardedResolver()
        try:
            await guard.resolve("localhost", 80)
        finally:
            await guard.close()

    with pytest.raises(OSError, match="non-public"):
        asyncio.run(resolve())
