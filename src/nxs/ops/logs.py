"""Logging of `nxs serve` and `nxs emulator`, configured once per process: JSON lines
(time, level, logger, message, request id where known, exception) by default, or
`NXS_LOG_FORMAT=text` for people; `NXS_LOG_LEVEL` filters. Records go to stderr through a
`LineWriter`, so logging never waits on whoever reads it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final

from nxs.ops.linewriter import LineWriter

FORMATS: Final = ("json", "text")
LEVELS: Final = ("debug", "info", "warning", "error", "critical")
STDERR: Final = 2
FLUSH_SECONDS: Final = 2.0  # longest wait for the log's reader at shutdown
# The request a record was logged for: set by the gateway per request (each request runs
# in its own task, so its context is its own).
REQUEST_ID: ContextVar[str | None] = ContextVar("nxs_request_id", default=None)


@dataclass(frozen=True)
class LogOptions:
    format: str = "json"
    level: str = "info"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LogOptions:
        """NXS_LOG_FORMAT and NXS_LOG_LEVEL; a ValueError naming the variable otherwise."""
        return cls(
            format=_one_of(env, "NXS_LOG_FORMAT", FORMATS, cls.format),
            level=_one_of(env, "NXS_LOG_LEVEL", LEVELS, cls.level),
        )


def _one_of(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = env.get(name, "").strip().lower() or default
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {env[name]!r}")
    return value


class JsonFormatter(logging.Formatter):
    """One compact JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, separators=(",", ":"), ensure_ascii=False)


def _iso(created: float) -> str:
    """RFC 3339 in UTC with milliseconds."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LineHandler(logging.Handler):
    """Formats in the logging thread (where the request id is known) and hands the line
    to a `LineWriter`."""

    def __init__(self, writer: LineWriter, formatter: logging.Formatter) -> None:
        super().__init__()
        self.writer = writer
        self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.request_id = REQUEST_ID.get()
            line = self.format(record).replace("\n", "\n  ") + "\n"
            self.writer.submit(line.encode("utf-8", "replace"))
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.writer.flush(FLUSH_SECONDS)

    def close(self) -> None:
        self.writer.close(FLUSH_SECONDS)
        super().close()


def configure(options: LogOptions, fd: int = STDERR) -> None:
    """Make the root logger write `options.format` lines at `options.level` to `fd`
    (replacing any handler: uvicorn's and aiohttp's records go the same way)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    formatter = JsonFormatter() if options.format == "json" else logging.Formatter(TEXT_FORMAT)
    root.addHandler(LineHandler(LineWriter(fd, "nxs-log"), formatter))
    root.setLevel(options.level.upper())
    logging.captureWarnings(True)


def flush() -> None:
    """Write what the root logger's handlers hold (at shutdown)."""
    for handler in logging.getLogger().handlers:
        handler.flush()
