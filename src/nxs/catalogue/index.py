"""`EndpointIndex`: which endpoint a shorthand REST path names, from fal's catalogue.

A path is resolved to the longest endpoint id of the catalogue it starts with, read as
given or with `fal-ai/` in front; failing that, a path whose first segment is a known
owner (the catalogue's owners, `NXS_KNOWN_OWNERS`, the namespaces) is kept, and any other
gets `fal-ai/`. In memory, swapped whole on reload: O(path segments) set look-ups, and
the answers for the paths seen last remembered (most calls name the same few endpoints).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

DEFAULT_OWNER: Final = "fal-ai"
MAX_ID_SEGMENTS: Final = 8  # no catalogue id is deeper; longer paths are only compared so far
CACHE_LIMIT: Final = 4096


class EndpointIndex:
    """The catalogue's endpoint ids and owners, plus the configured owners."""

    def __init__(self, owners: frozenset[str]) -> None:
        self._configured = owners
        self._owners = owners
        self._ids: frozenset[str] = frozenset()
        self._seen: dict[tuple[str, ...], list[str]] = {}

    def load(self, endpoint_ids: Iterable[str]) -> None:
        """Replace the catalogue (the store's snapshot, after `nxs models sync`)."""
        ids = frozenset(endpoint_id.strip("/") for endpoint_id in endpoint_ids)
        owners = {endpoint_id.split("/", 1)[0] for endpoint_id in ids if "/" in endpoint_id}
        self._ids, self._owners = ids, self._configured | owners
        self._seen = {}

    def __len__(self) -> int:
        return len(self._ids)

    def resolve(self, segments: list[str]) -> list[str]:
        """The segments of the endpoint path `segments` names (`fal-ai` put in front or not)."""
        key = tuple(segments)
        known = self._seen.get(key)
        if known is None:
            if len(self._seen) >= CACHE_LIMIT:
                self._seen = {}
            known = self._seen[key] = self._resolve(segments)
        return list(known)

    def _resolve(self, segments: list[str]) -> list[str]:
        if self._ids:
            as_given = self._longest(segments)
            prefixed = self._longest([DEFAULT_OWNER, *segments]) - 1
            if as_given or prefixed > 0:
                return segments if as_given >= prefixed else [DEFAULT_OWNER, *segments]
        if segments[0] in self._owners:
            return segments
        return [DEFAULT_OWNER, *segments]

    def _longest(self, segments: list[str]) -> int:
        """How many leading segments form the longest known endpoint id (0: none)."""
        found = 0
        prefix = segments[0]
        for count in range(2, min(len(segments), MAX_ID_SEGMENTS) + 1):
            prefix = f"{prefix}/{segments[count - 1]}"
            if prefix in self._ids:
                found = count
        return found
