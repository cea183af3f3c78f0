"""Which backend a gateway process uses, from its settings and how it is deployed.

- `NXS_REDIS_URL` set: Redis, for any database and any number of workers and replicas.
- SQLite, several workers (`nxs serve --workers N` sets `NXS_WORKERS`): the SQLite state
  file beside the database (exact on one box).
- SQLite, one worker (or in memory): in process (nothing to share).
- A network database without Redis is refused: its replicas would each count on their
  own, and no configuration may silently multiply a limit.
"""

from __future__ import annotations

from pathlib import Path

from nxs.config import Settings
from nxs.errors import NxsError
from nxs.state.interface import State
from nxs.state.memory import InProcessState
from nxs.state.outage import WhenDown
from nxs.state.redis_state import RedisState
from nxs.state.sqlite_state import SqliteState, state_path


class SharedStateRequired(NxsError):
    """Raised at startup: the deployment needs a shared backend it was not given."""

    detail = "NXS_REDIS_URL is required unless the database is a SQLite file"


def open_state(
    settings: Settings, *, sqlite_file: Path | None, network_database: bool = False
) -> State:
    """This worker's backend; `sqlite_file` is the store's file (None: in memory or not
    SQLite), `network_database` says the store is shared by replicas (PostgreSQL)."""
    if settings.redis_url:
        policy = WhenDown(settings.limits_when_redis_down)
        return RedisState.from_url(settings.redis_url, when_down=policy)
    if network_database:
        raise SharedStateRequired(
            "NXS_REDIS_URL is required with a network database: limits, cooldowns and "
            "notices must be shared by every replica"
        )
    if settings.workers > 1 and sqlite_file is not None:
        return SqliteState(state_path(sqlite_file))
    return InProcessState()
