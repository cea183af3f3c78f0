"""What limits do while the shared state (Redis) does not answer, and one log per outage.

`closed` (the default) refuses admission with a 503 in fal's shape (`SharedStateUnavailable`);
`open` admits without counting. Either way one WARNING marks the start of an outage and
one the recovery — never one per request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger("nxs.state")


class WhenDown(StrEnum):
    CLOSED = "closed"
    OPEN = "open"


@dataclass
class Outage:
    """Whether the backend is down now, and the policy to follow while it is."""

    policy: WhenDown = WhenDown.CLOSED
    down: bool = False

    def failed(self, error: BaseException) -> None:
        if not self.down:
            self.down = True
            log.warning(
                "shared state unreachable (%s); limits fail %s until it answers again",
                type(error).__name__,
                self.policy.value,
            )

    def answered(self) -> None:
        if self.down:
            self.down = False
            log.warning("shared state reachable again; limits are counted again")
