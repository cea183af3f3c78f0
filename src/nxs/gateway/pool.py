"""The pool of upstream fal keys: which key serves the next call, and what fal's answers do.

Each key has a concurrency (fal's per-account limit, `nxs upstream add|set --concurrency`)
and a working limit the pool learns: a run's 429 with k other runs on the key lowers it
to k, and it climbs back one slot every `CLIMB_SECONDS`. Runs take a slot (`take_slot`,
chosen by the lowest load for the limit, then weighted at random; the wait for one is
`nxs.gateway.scheduler`'s); queue submits go to the key with the fewest requests
outstanding at fal (fal queues them itself). 401 → invalid (persisted, out until `nxs
upstream enable`); 403 locked → suspended (persisted, re-probed); a submit's 429 → cooldown
honouring Retry-After (reported to `on_cooldown`, the shared state); a run's 429 on a key
running nothing else → a run-only cooldown (doubling while no queued work explains it);
5xx or no connection → the next key.
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
CLIMB_SECONDS: Final = 10.0  # a learned limit regains one slot this often without a 429
LOCKED_WORDS: Final = ("locked", "balance")

# What an upstream answer means for the key that got it.
OK: Final = "ok"  # pass the answer to the client
RETRY: Final = "retry"  # this key failed this call: try the next one
BUSY: Final = "busy"  # fal answered 429: the key is at its limit or rate limited

Persist = Callable[[str, UpstreamState, str | None], None]
CoolDown = Callable[[str, float], None]  # key id, seconds
Noted = Callable[[str, str], None]  # key id, last error


@dataclass(slots=True)
class PoolKey:
    """An upstream key with its live counters; `authorization` is precomputed.

    `in_flight` counts every call on the key; `running` the runs holding one of its slots;
    `outstanding` the queued requests submitted with it that fal has not finished."""

    key: UpstreamKey
    authorization: str
    state: UpstreamState
    in_flight: int = 0
    running: int = 0
    outstanding: int = 0
    cooldown_until: float = 0.0  # every call (a submit's 429, or shared by other workers)
    run_cooldown_until: float = 0.0  # runs only (a run's 429 on an otherwise idle key)
    strikes: int = 0  # run 429s in a row on an idle key: the run cooldown doubles
    learned: float = 0.0  # working limit when it was lowered (0: never lowered)
    learned_at: float = 0.0
    last_error: str | None = None
    last_error_at: float | None = None  # wall clock
    leases: list[str] = field(default_factory=list)  # shared slot leases held (nxs.state)
    failures: int = field(default=0)

    @property
    def name(self) -> str:
        return self.key.name

    def limit(self, now: float) -> int:
        """The working limit: the learned one climbing back to the configured concurrency."""
        configured = self.key.concurrency
        if not self.learned:
            return configured
        climbed = int(self.learned + (now - self.learned_at) / CLIMB_SECONDS)
        if climbed >= configured:
            self.learned = 0.0
            return configured
        return max(1, climbed)

    def free(self, now: float) -> int:
        """Slots a run may take now. Queued requests are not counted: fal runs them when it
        pleases (a 429 then tells, and the key rests or learns)."""
        if now < self.cooldown_until or now < self.run_cooldown_until:
            return 0
        return self.limit(now) - self.running

    def cooldown_left(self, now: float) -> float:
        return max(0.0, self.cooldown_until - now, self.run_cooldown_until - now)

    def note(self, error: str) -> None:
        self.last_error, self.last_error_at = error, time.time()


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
        self.on_note: Noted | None = None
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
                entry.last_error, entry.last_error_at = key.last_error, key.last_error_at
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
        """The key for a queue submit (or a REST call): not tried, not cooling down, the
        fewest requests outstanding at fal, then weighted at random; None when every healthy
        key was tried or is cooling down. Raises `NoUpstreamKeys` when no key is active."""
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
            load = entry.outstanding + entry.in_flight
            if fewest < 0 or load < fewest:
                best, fewest = [entry], load
            elif load == fewest:
                best.append(entry)
        if not any_active:
            raise NoUpstreamKeys()
        return self._pick(best)

    def take_slot(self, tried: set[str]) -> PoolKey | None:
        """A key with a free slot for a run (the slot taken), or None when none has one:
        the lowest share of its limit in use, then weighted at random."""
        now = time.monotonic()
        best: list[PoolKey] = []
        lowest = float("inf")
        for entry in self._keys.values():
            if entry.state != "active" or entry.key.id in tried or entry.free(now) <= 0:
                continue
            share = (entry.running + entry.outstanding) / entry.limit(now)
            if share < lowest:
                best, lowest = [entry], share
            elif share == lowest:
                best.append(entry)
        chosen = self._pick(best)
        if chosen is not None:
            chosen.running += 1
        return chosen

    def free_slot(self, entry: PoolKey) -> None:
        entry.running -= 1

    def could_run(self, tried: set[str]) -> bool:
        """Whether some active key not yet tried may serve a run once it has a free slot."""
        return any(e.state == "active" and e.key.id not in tried for e in self._keys.values())

    def retry_after(self) -> float:
        """Seconds until the first active key's cooldown ends (0: one is not cooling)."""
        now = time.monotonic()
        lefts = [e.cooldown_left(now) for e in self._keys.values() if e.state == "active"]
        return min(lefts, default=0.0)

    def _pick(self, best: list[PoolKey]) -> PoolKey | None:
        if len(best) <= 1:
            return best[0] if best else None
        weights = [max(entry.key.weight, 1) for entry in best]
        return self._rng.choices(best, weights)[0]

    def judge(
        self, entry: PoolKey, status: int, body: bytes, retry_after: str | None, run: bool = False
    ) -> str:
        """What an upstream status means: OK to pass on, RETRY with another key, or BUSY."""
        if status < 400 or status in (400, 404, 409, 410, 413, 422):
            if status < 400 and run:
                entry.strikes = 0
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
            self._limited(entry, _seconds(retry_after), run)
            return BUSY
        if status >= 500:
            self.noted(entry, f"fal answered {status}")
            return RETRY
        return OK

    def _limited(self, entry: PoolKey, seconds: float, run: bool) -> None:
        """A 429. On a run with k other calls on the key: the account is full at k (fal
        still takes queue submits). Otherwise: rest the key (runs only, for a run)."""
        now = time.monotonic()
        others = entry.running - 1 if run else 0
        if run and others >= 1:
            entry.learned, entry.learned_at = float(others), now
            self.noted(entry, f"fal answered 429 with {others} runs on the key: limit {others}")
            return
        if run:
            if not entry.outstanding:  # no queued work to explain it: back off harder
                entry.strikes += 1
                seconds = min(seconds * 2 ** (entry.strikes - 1), MAX_COOLDOWN)
            entry.run_cooldown_until = max(entry.run_cooldown_until, now + seconds)
            self.noted(entry, f"fal answered 429 to a run: runs rest {seconds:g} s")
            return
        entry.cooldown_until = now + seconds
        self.noted(entry, f"fal answered 429: rests {seconds:g} s")
        if self.on_cooldown is not None:
            self.on_cooldown(entry.key.id, seconds)

    def noted(self, entry: PoolKey, error: str) -> None:
        """Remember a key's last error (shown by `nxs upstream list`, kept in the store)."""
        entry.note(error)
        if self.on_note is not None:
            self.on_note(entry.key.id, error)

    def adopt(self, loads: Mapping[str, KeyLoad]) -> None:
        """Take what the shared state knows: cooldowns (a longer local one is kept) and the
        requests outstanding at fal, counted by every worker."""
        now = time.monotonic()
        for key_id, load in loads.items():
            entry = self._keys.get(key_id)
            if entry is None:
                continue
            entry.outstanding = load.in_flight
            if load.cooling:
                entry.cooldown_until = max(entry.cooldown_until, now + load.cooldown)

    def failed(self, entry: PoolKey) -> None:
        """A connection error or timeout: counted, the caller moves on to the next key."""
        entry.failures += 1
        self.noted(entry, "no connection to fal (or it timed out)")

    def mark(self, entry: PoolKey, state: UpstreamState, reason: str) -> None:
        """Change a key's state here and in the store (the CLI and other workers see it)."""
        self.noted(entry, reason)
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
