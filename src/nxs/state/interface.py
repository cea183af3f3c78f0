"""The one interface every shared-state backend implements (see `nxs.state`)."""

from __future__ import annotations

from typing import Protocol

from nxs.state.keys import KeyLoads
from nxs.state.limits import Limits
from nxs.state.markers import Markers
from nxs.state.notices import Notices


class State(Limits, KeyLoads, Markers, Notices, Protocol):
    """Limits, upstream-key loads, idempotency markers and change notices."""

    async def close(self) -> None: ...
