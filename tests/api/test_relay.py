"""The webhook relay end to end: a real `nxs emulator` signs a real callback, an aiohttp
server stands in for the gateway's `/webhooks/fal/{id}` route, and a customer receiver
verifies NXS's signature with cryptography's Ed25519 against NXS's published JWKS.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from tests.support.servers import RunningServer, free_port

from nxs.config import Settings
from nxs.relay import Completion, Relay, RelayConfig, apply_relay_schema
from nxs.relay.worker import WorkerConfig
from nxs.store.crypto import load_box
from nxs.store.database import parse_url
from nxs.store.store import Store

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FAST_RETRIES = WorkerConfig(retry_delays=(0.2,) * 9, allow_private=True, idle_poll_seconds=0.2)


@dataclass
class Customer:
    """The customer's webhook receiver: records every POST, answers 200."""

    port: int = field(default_factory=free_port)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Customer]:
        async def hook(request: web.Request) -> web.Response:
            self.received.append((dict(request.headers), await request.read()))
            return web.Response(text="ok")

        async with serve({"/hook": hook}, self.port):
            yield self

    async def wait_for(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(self.received) >= count, f"{len(self.received)} deliveries, wanted {count}"


@asynccontextmanager
async def serve(routes: Mapping[str, Handler], port: int) -> AsyncIterator[None]:
    app = web.Application()
    for path, handler in routes.items():
        method = "GET" if path.endswith(".json") else "POST"
        app.router.add_route(method, path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield
    finally:
        await runner.cleanup()


@dataclass
class Nxs:
    """The relay over a real store, behind the routes the gateway will mount."""

    relay: Relay
    store: Store
    url: str
    settled: list[Completion]

    async def post_callback(self, callback_id: str, headers: dict[str, str], body: bytes) -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.url}/webhooks/fal/{callback_id}", data=body, headers=headers) as r,
        ):
            return r.status, await r.json()

    async def public_keys(self) -> list[Ed25519PublicKey]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}/.well-known/jwks.json") as response,
        ):
            keys = (await response.json())["keys"]
        assert all(
            k["kty"] == "OKP" and k["crv"] == "Ed25519" and k["alg"] == "EdDSA" for k in keys
        )
        raw = [base64.urlsafe_b64decode(k["x"] + "=" * (-len(k["x"]) % 4)) for k in keys]
        return [Ed25519PublicKey.from_public_bytes(blob) for blob in raw]


class Billing:
    """The settlement hook: records completions; raises for the first `failures` calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.settled: list[Completion] = []

    async def __call__(self, completion: Completion) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("billing is down")
        self.settled.append(completion)


def gateway_routes(relay: Relay) -> dict[str, Handler]:
    """What the gateway will mount: fal's callback route and NXS's JWKS."""

    async def callback(request: web.Request) -> web.Response:
        status, body = await relay.handle_callback(
            request.match_info["callback_id"], request.headers, await request.read()
        )
        return web.Response(status=status, body=body, content_type="application/json")

    async def jwks(request: web.Request) -> web.Response:
        return web.json_response(relay.jwks())

    return {"/webhooks/fal/{callback_id}": callback, "/.well-known/jwks.json": jwks}


@asynccontextmanager
async def nxs(
    emulator: RunningServer,
    db_file: Path,
    worker: WorkerConfig = FAST_RETRIES,
    settle_failures: int = 0,
) -> AsyncIterator[Nxs]:
    """The relay on `db_file` (a real store), served on a free port."""
    port = free_port()
    settings = Settings(
        database_url=f"sqlite:///{db_file}",
        upstream_url=emulator.url,
        public_url=f"http://127.0.0.1:{port}",
    )
    store = Store.open(settings)
    apply_relay_schema(store.database)
    db_path = parse_url(settings.database_url).path
    box = load_box(settings.secret_key, settings.secret_key_file, db_path)
    config = replace(RelayConfig.from_settings(settings, allow_private=True), worker=worker)
    billing = Billing(settle_failures)
    relay = Relay(store.database, box, config, billing)
    await relay.start()
    try:
        async with serve(gateway_routes(relay), port):
            yield Nxs(relay, store, f"http://127.0.0.1:{port}", billing.settled)
    finally:
        await relay.stop()
        store.close()


async def submit(emulator: RunningServer, fal_webhook: str) -> str:
    url = f"{emulator.url}/queue.fal.run/fal-ai/flux/dev"
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url,
            params={"fal_webhook": fal_webhook},
            json={"prompt": "a lighthouse", "seed": 7},
            headers={"Authorization": "Key relay-upstream:secret"},
        ) as response,
    ):
        assert response.status == 200, await response.text()
        return str((await response.json())["request_id"])


def verifies(headers: dict[str, str], body: bytes, keys: list[Ed25519PublicKey]) -> bool:
    """A customer's existing fal verification code, pointed at NXS's JWKS."""
    h = {name.lower(): value for name, value in headers.items()}
    if abs(time.time() - int(h["x-fal-webhook-timestamp"])) > 300:
        return False
    message = "\n".join(
        [
            h["x-fal-webhook-request-id"],
            h["x-fal-webhook-user-id"],
            h["x-fal-webhook-timestamp"],
            hashlib.sha256(body).hexdigest(),
        ]
    ).encode()
    for key in keys:
        try:
            key.verify(bytes.fromhex(h["x-fal-webhook-signature"]), message)
            return True
        except Exception:  # cryptography's InvalidSignature
            continue
    return False


def forged_headers(request_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """fal's headers, signed by a key fal never published."""
    ts = int(time.time()) if timestamp is None else timestamp
    message = f"{request_id}\nrelay-upstream\n{ts}\n{hashlib.sha256(body).hexdigest()}"
    return {
        "Content-Type": "application/json",
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": "relay-upstream",
        "X-Fal-Webhook-Timestamp": str(ts),
        "X-Fal-Webhook-Signature": Ed25519PrivateKey.generate().sign(message.encode()).hex(),
    }


def test_customer_gets_fal_result_signed_by_nxs(emulator: RunningServer, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with nxs(emulator, tmp_path / "nxs.db") as gateway, Customer().running() as customer:
            registration = gateway.relay.register("cus_alice", customer.url)
            request_id = await submit(emulator, registration.fal_webhook_url)
            await customer.wait_for(1)
            headers, body = customer.received[0]
            assert verifies(headers, body, await gateway.public_keys())
            assert headers["X-Fal-Webhook-User-Id"] == "cus_alice"
            assert headers["X-Fal-Webhook-Request-Id"] == request_id
            document = json.loads(body)
            assert document["request_id"] == request_id and document["status"] == "OK"
            assert document["payload"]["images"]
            assert [c.request_id for c in gateway.settled] == [request_id]
            assert gateway.settled[0].customer_id == "cus_alice"

    asyncio.run(scenario())


def test_forged_or_stale_callback_is_refused_and_nothing_settled(
    emulator: RunningServer, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with nxs(emulator, tmp_path / "nxs.db") as gateway, Customer().running() as customer:
            callback_id = gateway.relay.register("cus_bob", customer.url).callback_id
            body = json.dumps({"request_id": "req-1", "status": "OK", "payload": {}}).encode()
            forged = await gateway.post_callback(callback_id, forged_headers("req-1", body), body)
            old = forged_headers("req-1", body, timestamp=int(time.time()) - 3600)
            stale = await gateway.post_callback(callback_id, old, body)
            unsigned = await gateway.post_callback(callback_id, {}, body)
            await asyncio.sleep(0.5)
            assert forged[0] == 401 and forged[1]["error_type"] == "invalid_webhook_signature"
            assert stale[0] == 400 and "timestamp" in stale[1]["detail"]
            assert unsigned[0] == 400 and "X-Fal-Webhook-Request-Id" in unsigned[1]["detail"]
            assert gateway.settled == [] and customer.received == []
            assert gateway.relay.outbox.recent() == []

    asyncio.run(scenario())


def test_unknown_callback_id_is_a_fal_shaped_404(emulator: RunningServer, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with nxs(emulator, tmp_path / "nxs.db") as gateway:
            body = b'{"request_id":"req-1","status":"OK","payload":{}}'
            status, answer = await gateway.post_callback("cb_nope", forged_headers("r", body), body)
        assert status == 404
        assert answer == {"detail": "Webhook callback not found", "error_type": "not_found"}

    asyncio.run(scenario())


async def fal_callback(emulator: RunningServer) -> tuple[dict[str, str], bytes]:
    """A real callback from the emulator (its signed headers and body), to replay."""
    fal = Customer()
    async with fal.running():
        await submit(emulator, fal.url)
        await fal.wait_for(1)
    headers, body = fal.received[0]
    return {k: v for k, v in headers.items() if k.lower().startswith("x-fal-")}, body


def test_fal_retrying_a_webhook_settles_and_delivers_once(
    emulator: RunningServer, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with nxs(emulator, tmp_path / "nxs.db") as gateway, Customer().running() as customer:
            headers, body = await fal_callback(emulator)
            callback_id = gateway.relay.register("cus_carol", customer.url).callback_id
            answers = [await gateway.post_callback(callback_id, headers, body) for _ in range(2)]
            await customer.wait_for(1)
            await asyncio.sleep(0.5)
            assert [status for status, _ in answers] == [200, 200]
            assert len(gateway.settled) == 1 and len(customer.received) == 1
            assert customer.received[0][1] == body  # the very bytes fal sent

    asyncio.run(scenario())


def test_failed_settlement_answers_500_and_fals_retry_settles(
    emulator: RunningServer, tmp_path: Path
) -> None:
    async def scenario() -> None:
        db_file = tmp_path / "nxs.db"
        async with nxs(emulator, db_file, settle_failures=1) as gateway:
            headers, body = await fal_callback(emulator)
            callback_id = gateway.relay.register("cus_erin", Customer().url).callback_id
            first = await gateway.post_callback(callback_id, headers, body)
            assert gateway.settled == []
            second = await gateway.post_callback(callback_id, headers, body)
        assert first == (
            500,
            {"detail": "Could not record the completion", "error_type": "settlement_failed"},
        )
        assert second[0] == 200 and [c.customer_id for c in gateway.settled] == ["cus_erin"]
        assert gateway.settled[0].status == "OK"

    asyncio.run(scenario())


def test_callback_replayed_for_another_request_is_refused(
    emulator: RunningServer, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with nxs(emulator, tmp_path / "nxs.db") as gateway:
            headers, body = await fal_callback(emulator)
            registration = gateway.relay.register("cus_frank", Customer().url)
            gateway.relay.attach(registration.callback_id, "some-other-request")
            status, answer = await gateway.post_callback(registration.callback_id, headers, body)
        assert status == 400 and "another request" in answer["detail"]
        assert gateway.settled == []

    asyncio.run(scenario())


def test_receiver_down_gets_delivery_after_restart(emulator: RunningServer, tmp_path: Path) -> None:
    customer = Customer()

    async def before_restart() -> tuple[str, list[dict[str, Any]]]:
        async with nxs(emulator, tmp_path / "nxs.db") as gateway:
            registration = gateway.relay.register("cus_dave", customer.url)
            request_id = await submit(emulator, registration.fal_webhook_url)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not _failed_attempts(gateway):
                await asyncio.sleep(0.05)
            assert _failed_attempts(gateway), "the first attempt never happened"
            return request_id, gateway.relay.jwks()["keys"]

    async def after_restart() -> tuple[Any, ...]:
        async with customer.running(), nxs(emulator, tmp_path / "nxs.db") as gateway:
            await customer.wait_for(1)
            keys = await gateway.public_keys()
            (delivery,) = gateway.relay.outbox.recent()
            attempts = gateway.relay.outbox.attempts(delivery.id)
            return gateway.relay.jwks()["keys"], keys, delivery, attempts

    request_id, keys_before = asyncio.run(before_restart())
    keys_after, public_keys, delivery, attempts = asyncio.run(after_restart())
    headers, body = customer.received[0]
    assert keys_after == keys_before  # the same NXS key survived the restart
    assert verifies(headers, body, public_keys)
    assert json.loads(body)["request_id"] == request_id
    assert delivery.state == "delivered" and attempts[-1].status == 200
    assert attempts[0].status is None and attempts[0].error


def _failed_attempts(gateway: Nxs) -> bool:
    return any(d.attempts for d in gateway.relay.outbox.recent())
