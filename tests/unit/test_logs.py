"""Log lines: JSON with the request id when a record is logged for a request, and whole
lines of at most PIPE_BUF bytes per write (several workers share one pipe)."""

from __future__ import annotations

import json
import logging
import os

from nxs.ops.linewriter import PIPE_BUF, LineWriter, pieces
from nxs.ops.logs import REQUEST_ID, JsonFormatter, LineHandler


def read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_record_logged_for_a_request_carries_its_id() -> None:
    read, write = os.pipe()
    handler = LineHandler(LineWriter(write, "test-log"), JsonFormatter())
    logger = logging.getLogger("nxs.test.logs")
    logger.addHandler(handler)
    try:
        token = REQUEST_ID.set("abc123")
        logger.warning("upstream %s refused", "main")
        REQUEST_ID.reset(token)
        logger.warning("no request here")
    finally:
        logger.removeHandler(handler)
        handler.close()
        os.close(write)
    first, second = (json.loads(line) for line in read_all(read).splitlines())
    os.close(read)
    assert (first["message"], first["request_id"], first["level"]) == (
        "upstream main refused",
        "abc123",
        "warning",
    )
    assert first["logger"] == "nxs.test.logs" and first["time"].endswith("Z")
    assert "request_id" not in second


def test_each_write_is_whole_lines_within_pipe_buf() -> None:
    data = b"".join(f'{{"n":{n},"pad":"{"x" * (n % 300)}"}}\n'.encode() for n in range(200))
    cut = [bytes(piece) for piece in pieces(data)]
    assert len(cut) > 1 and b"".join(cut) == data
    assert all(len(piece) <= PIPE_BUF and piece.endswith(b"\n") for piece in cut)


def test_a_line_longer_than_pipe_buf_goes_alone() -> None:
    long_line = b"y" * (PIPE_BUF + 10) + b"\n"
    assert [bytes(p) for p in pieces(b"a\n" + long_line + b"b\n")] == [b"a\n", long_line, b"b\n"]
