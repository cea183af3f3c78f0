"""Reading upstream answers as billing outcomes, without guessing from message text.

Each function maps one kind of upstream answer to the `Outcome` that `settle` prices, or
to None while the request is not final (then the reconciler asks the status endpoint).
"""

from __future__ import annotations

from collections.abc import Mapping

from nxs.billing.settle import Outcome

REQUEST_ID_HEADER = "x-fal-request-id"
RUNNING = frozenset({"IN_QUEUE", "IN_PROGRESS"})


def outcome_of_run(status: int) -> Outcome:
    """A `fal.run` answer: 2xx completed; 5xx never charged; other codes rejected (4xx)."""
    if status < 300:
        return Outcome.COMPLETED
    return Outcome.UPSTREAM_5XX if status >= 500 else Outcome.REJECTED


def outcome_of_submit(status: int) -> Outcome | None:
    """A queue submit answer: accepted (None: pending until it ends) or refused outright."""
    if status < 300:
        return None
    return Outcome.UPSTREAM_5XX if status >= 500 else Outcome.REJECTED


def outcome_of_result(status: int, headers: Mapping[str, str]) -> Outcome | None:
    """A result GET: 2xx completed; a 5xx that upstream tagged with the request id is the
    request's own error; anything else (in progress, ingress errors) is not a verdict.
    """
    if status < 300:
        return Outcome.COMPLETED
    if status >= 500 and _has_header(headers, REQUEST_ID_HEADER):
        return Outcome.ERROR_RESULT
    return None


def outcome_of_status(status: int, body: object) -> Outcome | None:
    """A status GET: 404 = upstream does not know the id (final); COMPLETED with an
    `error` = an ERROR result (cancels included); COMPLETED alone = fetch the result.
    """
    if status == 404:
        return Outcome.UNKNOWN_UPSTREAM
    if status >= 300 or not isinstance(body, dict):
        return None
    if body.get("status") != "COMPLETED":
        return None
    return Outcome.ERROR_RESULT if body.get("error") else Outcome.COMPLETED


def outcome_of_webhook(body: object) -> Outcome | None:
    """fal's webhook payload: `status` OK or ERROR; anything else is ignored."""
    verdict = body.get("status") if isinstance(body, dict) else None
    if verdict == "OK":
        return Outcome.COMPLETED
    return Outcome.ERROR_RESULT if verdict == "ERROR" else None


def outcome_of_cancel(status: int, last_known: str | None) -> Outcome | None:
    """A cancel accepted (202) while we last saw IN_QUEUE ends it before it started; any
    other cancel waits for the final status (upstream may still finish and bill it).
    """
    if status == 202 and last_known == "IN_QUEUE":
        return Outcome.CANCELLED_BEFORE_START
    if status == 202:
        return Outcome.CANCELLED_AFTER_START
    return None


def _has_header(headers: Mapping[str, str], name: str) -> bool:
    return name in headers or any(key.lower() == name for key in headers)
