"""How long an in-flight lease lives before it is presumed dead and comes back by itself.

A run holds its permit while the upstream call may last (the upstream timeout plus a
margin); a queued request until its completion is seen by any worker — a poll, a webhook or
the reconciler — which may take as long as the reconciler's horizon, capped at
`QUEUED_LEASE_SECONDS` (the hour after which the gateway always freed a queued permit).
"""

from __future__ import annotations

from typing import Final

MARGIN_SECONDS: Final = 30.0
QUEUED_LEASE_SECONDS: Final = 3600.0


def run_lease_seconds(upstream_timeout: float) -> float:
    """A run (or a realtime session's renewal period): the upstream call plus a margin."""
    return upstream_timeout + MARGIN_SECONDS


def queued_lease_seconds(reconciler_horizon: float | None = None) -> float:
    """A queued request: until the reconciler would have seen it end, at most an hour."""
    if reconciler_horizon is None:
        return QUEUED_LEASE_SECONDS
    return min(max(reconciler_horizon, MARGIN_SECONDS), QUEUED_LEASE_SECONDS)
