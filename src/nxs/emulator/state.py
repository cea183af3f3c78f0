"""What one running emulator holds: its settings, files, signing keys and the log of
what it received. Built once in `create_app` and shared by every host's routes.
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nxs.emulator.files import FileStore


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulator behaves; `time_scale` stretches every simulated duration."""

    time_scale: float = 1.0
    concurrency_limit: int = 2
    max_body_bytes: int = 100 * 1024 * 1024
    webhook_retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)
    seed: int | None = None  # seeds the flaky keys' coin
    queue_direct_runs: bool = False  # True: direct runs over the limit wait instead of 429


@dataclass(frozen=True)
class Received:
    """One request the emulator received, as tests read it back (no secrets kept)."""

    time: float
    method: str
    path: str
    account_id: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "account_id": self.account_id,
        }


@dataclass
class EmulatorState:
    config: EmulatorConfig
    files: FileStore = field(default_factory=FileStore)
    signing_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    signing_key_id: str = field(default_factory=lambda: secrets.token_hex(8))
    jwt_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    received: list[Received] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)

    def record(self, method: str, path: str, account_id: str | None) -> None:
        self.received.append(Received(time.time(), method, path, account_id))
        if len(self.received) > 100_000:
            del self.received[:50_000]


STATE_KEY = web.AppKey("nxs_emulator_state", EmulatorState)


def base_url(request: web.Request) -> str:
    """The address the emulator was reached at: every URL it returns starts here."""
    return f"{request.scheme}://{request.host}"
