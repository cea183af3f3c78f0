"""The queue URLs in fal's answers point at the gateway; an answer that is not JSON, or
is nested past what Python's parser can read, passes through unchanged, never a 500."""

from __future__ import annotations

import json

from nxs.gateway.queue import EventRewriter, queue_urls, rewrite_body

URLS = queue_urls("https://gw.example", "fal-ai/flux/dev", "req-1")


def test_a_status_answer_points_at_the_gateway() -> None:
    body = json.dumps({"status": "IN_QUEUE", "status_url": "https://queue.fal.run/x"}).encode()
    rewritten = json.loads(rewrite_body(body, URLS))
    assert rewritten["status_url"] == "https://gw.example/queue/fal-ai/flux/requests/req-1/status"


def test_an_answer_too_deep_to_parse_passes_through_unchanged() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    assert rewrite_body(deep, URLS) == deep


def test_a_stream_event_too_deep_to_parse_passes_through_unchanged() -> None:
    event = b"data: " + b"[" * 100_000 + b"]" * 100_000 + b"\n"
    rewriter = EventRewriter(URLS)
    assert rewriter.feed(event) + rewriter.flush() == event
