"""Upstream answers read as billing outcomes: only upstream's final verdict refunds."""

from __future__ import annotations

import pytest

from nxs.billing.outcomes import (
    cancel_accepted,
    completed_with_error,
    outcome_of_result,
    outcome_of_run,
    outcome_of_status,
    outcome_of_submit,
    outcome_of_webhook,
)
from nxs.billing.settle import Outcome, Verdict, verdict


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.COMPLETED),
        (500, Outcome.UPSTREAM_5XX),
        (503, Outcome.UPSTREAM_5XX),
        (422, Outcome.REJECTED),
    ],
)
def test_run_answers(status: int, outcome: Outcome) -> None:
    assert outcome_of_run(status) is outcome


def test_an_accepted_submit_is_pending_and_a_5xx_submit_is_refunded() -> None:
    assert outcome_of_submit(200) is None
    assert verdict(outcome_of_submit(502) or Outcome.COMPLETED) is Verdict.REFUND


def test_result_error_tagged_by_upstream_is_final_but_ingress_errors_are_not() -> None:
    assert outcome_of_result(200, {}) is Outcome.COMPLETED
    assert outcome_of_result(500, {"X-Fal-Request-Id": "r1"}) is Outcome.ERROR_RESULT
    assert outcome_of_result(502, {}) is None  # a proxy in between failed: ask again
    assert outcome_of_result(400, {"x-fal-request-id": "r1"}) is None  # still in progress


@pytest.mark.parametrize("status", [499, 422, 410])
def test_a_4xx_result_tagged_with_the_request_id_is_its_end_priced_by_its_units(
    status: int,
) -> None:
    headers = {"X-Fal-Request-Id": "r1", "x-fal-billable-units": "0"}
    assert outcome_of_result(status, headers) is Outcome.REJECTED  # 0 or no units: refunded
    assert outcome_of_result(status, {}) is None  # untagged: routing, not the request's end


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 408, 409, 429])
def test_a_4xx_about_the_call_is_no_verdict_even_when_tagged(status: int) -> None:
    assert outcome_of_result(status, {"x-fal-request-id": "r1"}) is None


FAILED = {"status": "COMPLETED", "error": "boom", "error_type": "runner_server_error"}


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (202, {"status": "IN_QUEUE", "queue_position": 0}, None),
        (202, {"status": "IN_PROGRESS", "logs": []}, None),
        (200, {"status": "COMPLETED", "metrics": {}}, Outcome.COMPLETED),
        (200, FAILED, Outcome.COMPLETED),  # ended: its result says what fal billed
        (404, {"detail": "Request not found"}, None),  # lost or expired: fal may have billed
        (503, {"detail": "unavailable"}, None),
        (200, "garbage", None),
    ],
)
def test_status_answers(status: int, body: object, outcome: Outcome | None) -> None:
    assert outcome_of_status(status, body) is outcome


def test_a_status_completed_with_an_error_is_never_a_refund_by_itself() -> None:
    assert completed_with_error(200, FAILED)  # the result decides: an app's 422 may bill
    assert completed_with_error(200, {"status": "COMPLETED", "error": "Invalid status code: 422"})
    assert not completed_with_error(200, {"status": "COMPLETED", "error": None})
    assert not completed_with_error(202, {"status": "IN_PROGRESS", "error": "not yet"})
    assert not completed_with_error(200, "garbage")


def test_webhook_payloads() -> None:
    assert outcome_of_webhook({"request_id": "r", "status": "OK", "payload": {}}) is (
        Outcome.COMPLETED
    )
    assert outcome_of_webhook({"status": "ERROR", "error": "x"}) is Outcome.ERROR_RESULT
    assert outcome_of_webhook({"status": "MAYBE"}) is None


def test_only_a_cancel_fal_accepted_sends_the_reconciler_for_its_verdict() -> None:
    assert cancel_accepted(202)  # CANCELLATION_REQUESTED: no verdict yet, ask fal now
    assert not cancel_accepted(400)  # ALREADY_COMPLETED: settle as usual
    assert not cancel_accepted(404)
