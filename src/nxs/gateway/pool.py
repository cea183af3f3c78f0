"""The pool of upstream fal keys: which key serves the next call, and what fal's answers do.

Choice: among healthy keys (active, not cooling down, not yet tried) those with the fewest
calls in flight, then weighted at random. 401 → invalid (persisted, out until `nxs upstream
enable`); 403 locked → suspended (persisted, re-probed by the app until it resumes);
429 → cooldown honouring Retry-After; 5xx or no connection → the caller tries the next key.
A cooldown is also reported to `on_cooldown` (the shared state, `nxs.state.keys`), and
`adopt` takes the cooldowns other workers and replicas reported.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from nxs.errors import NoUpstreamKeys
from nxs.state.keys import KeyLoad
from nxs.store.models import UpstreamKey, UpstreamState

DEFAULT_COOLDOWN: Final = 5.0
MAX_COOLDOWN: Final = 300.0
LOCKED_WORDS: Final = ("locked", "balance")

# What an upstream answer means for the key that got it.
OK: Final = "ok"  # pass the answer to the client
RETRY: Final = "retry"  # this key failed this call: try the next one

Persist = Callable[[str, UpstreamState, str | None], None]
CoolDown = Callable[[str, float], None]  # key id, seconds


@dataclass(slots=True)
class PoolKey:
    """An upstream key with its live counters; `authorization` is precomputed."""

    key: UpstreamKey
    authorization: str
    state: UpstreamState
    in_flight: int = 0
    cooldown_until: float = 0.0
    failures: int = field(default=0)

    @property
    def name(self) -> str:
        return self.key.name


class KeyPool:
    """Live view of the pool; `load` takes the store's list, the rest is in memory."""

    def __init__(
        self,
        persist: Persist,
        rng: random.Random | None = None,
        on_cooldown: CoolDown | None = None,
    ) -> None:
        self._persist = persist
        self.on_cooldown = on_cooldown
        self._rng = rng or random.Random()
        self._keys: dict[str, PoolKey] = {}
        self._retired: dict[str, PoolKey] = {}  # removed from the pool, still bound to requests

    def load(self, keys: Iterable[UpstreamKey]) -> None:
        """Adopt the store's keys, keeping live counters; removed keys stay reachable by id."""
        fresh: dict[str, PoolKey] = {}
        for key in keys:
            entry = self._keys.get(key.id) or self._retired.pop(key.id, None)
            if entry is None:
                entry = PoolKey(key, f"Key {key.secret}", key.state)
            else:  # the same object: calls in flight release the counter they took
                entry.key, entry.authorization, entry.state = key, f"Key {key.secret}", key.state
            fresh[key.id] = entry
        for key_id, entry in self._keys.items():
            if key_id not in fresh:
                self._retired[key_id] = entry
        self._keys = fresh

    def get(self, key_id: str) -> PoolKey | None:
        """A key by id, even one removed from the pool since (bound requests need it)."""
        return self._keys.get(key_id) or self._retired.get(key_id)

    def entries(self) -> list[PoolKey]:
        return list(self._keys.values())

    def usable(self) -> int:
        """How many keys could serve a call now."""
        now = time.monotonic()
        return sum(
            1 for k in self._keys.values() if k.state == "active" and k.cooldown_until <= now
        )

    def suspended(self) -> list[PoolKey]:
        return [k for k in self._keys.values() if k.state == "suspended"]

    def choose(self, tried: set[str]) -> PoolKey | None:
        """The next key to try, or None when every healthy key was tried.

        Raises `NoUpstreamKeys` when the pool has no active key at all.
        """
        now = time.monotonic()
        best: list[PoolKey] = []
        fewest = -1
        any_active = False
        for entry in self._keys.values():
            if entry.state != "active":
                continue
            any_active = True
            if entry.cooldown_until > now or entry.key.id in tried:
                continue
            if fewest < 0 or entry.in_flight < fewest:
                best, fewest = [entry], entry.in_flight
            elif entry.in_flight == fewest:
                best.append(entry)
        if not any_active:
            raise NoUpstreamKeys()
        if len(best) <= 1:
            return best[0] if best else None
        weights = [max(entry.key.weight, 1) for entry in best]
        return self._rng.choices(best, weights)[0]

    def judge(self, entry: PoolKey, status: int, body: bytes, retry_after: str | None) -> str:
        """What an upstream status means: OK to pass on, or RETRY with another key."""
        if status < 400 or status in (400, 404, 409, 410, 413, 422):
            return OK
        if status == 401:
            self.mark(entry, "invalid", "fal answered 401 (invalid key)")
            return RETRY
        if status == 403:
            text = body[:2000].decode("utf-8", "replace").lower()
            if not any(word in text for word in LOCKED_WORDS):
                return OK
            self.mark(entry, "suspended", "fal answered 403 (account locked)")
            return RETRY
        if status == 429:
            seconds = _seconds(retry_after)
            entry.cooldown_until = time.monotonic() + seconds
            if self.on_cooldown is not None:
                self.on_cooldown(entry.key.id, seconds)
            return RETRY
        return RETRY if status >= 500 else OK

    def adopt(self, loads: Mapping[str, KeyLoad]) -> None:
        """Take the cooldowns the shared state knows (a longer local one is kept)."""
        now = time.monotonic()
        for key_id, load in loads.items():
            entry = self._keys.get(key_id)
            if entry is not None and load.cooling:
                entry.cooldown_until = max(entry.cooldown_until, now + load.cooldown)

    def failed(self, entry: PoolKey) -> None:
        """A connection error or timeout: counted, the caller moves on to the next key."""
        entry.failures += 1

    def mark(self, entry: PoolKey, state: UpstreamState, reason: str) -> None:
        """Change a key's state here and in the store (the CLI and other workers see it)."""
        if entry.state == state:
            return
        entry.state = state
        self._persist(entry.key.id, state, reason)


def _seconds(retry_after: str | None) -> float:
    if not retry_after:
        return DEFAULT_COOLDOWN
    try:
        return min(max(float(retry_after), 0.0), MAX_COOLDOWN)
    except ValueError:
        return DEFAULT_COOLDOWN
