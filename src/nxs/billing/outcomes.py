"""Reading upstream answers as billing outcomes, without guessing from message text.

Each function maps one kind of upstream answer to the `Outcome` that `settle` prices, or
to None while the request is not final (then the reconciler asks the status endpoint).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from nxs.billing.settle import Outcome

REQUEST_ID_HEADER = "x-fal-request-id"
# 4xx answers about the call, not how the request ended, even when tagged with its id:
# still in progress (400), the key (401, 403), an id fal does not know (404, see
# `outcome_of_status`), the method (405), try again later (408, 409, 429).
NOT_A_VERDICT: Final = frozenset({400, 401, 403, 404, 405, 408, 409, 429})


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
    """A result GET: 2xx completed. An answer upstream tagged with the request id is that
    request's final verdict: a 5xx its error (refunded), a 4xx such as 499 client_cancelled
    or an app's 422 its end, priced by `x-fal-billable-units` (0 or absent: refunded).
    Untagged answers (ingress, routing) and `NOT_A_VERDICT` codes are no verdict.
    """
    if status < 300:
        return Outcome.COMPLETED
    if not _has_header(headers, REQUEST_ID_HEADER):
        return None
    if status >= 500:
        return Outcome.ERROR_RESULT
    if status >= 400 and status not in NOT_A_VERDICT:
        return Outcome.REJECTED
    return None


def outcome_of_status(status: int, body: object) -> Outcome | None:
    """A status GET: COMPLETED = the request ended, so fetch its result: that answer is the
    verdict (`outcome_of_result`). With an `error` too: a cancel or a crash bills nothing,
    but an app's error may be billed (a 4xx result with `x-fal-billable-units`), and only
    the result's headers tell which. A 404 is no verdict: fal answers it for ids it
    does not know, and for a request it accepted that means lost, expired or asked with
    another account's key — fal may have billed it, and no retention period is
    documented, so the hold stays (the reconciler keeps asking, then leaves it to the
    operator).
    """
    if status >= 300 or not isinstance(body, dict):
        return None
    return Outcome.COMPLETED if body.get("status") == "COMPLETED" else None


def completed_with_error(status: int, body: object) -> bool:
    """A status saying COMPLETED with an `error`: ended, priced only by its result."""
    if outcome_of_status(status, body) is not Outcome.COMPLETED:
        return False
    return isinstance(body, dict) and bool(body.get("error"))


def outcome_of_webhook(body: object) -> Outcome | None:
    """fal's webhook payload: `status` OK or ERROR; anything else is ignored.

    An ERROR is not priced here: the payload (`request_id`, `gateway_request_id`,
    `status`, `error`: "Invalid status code: N", `payload`: the app's body) names no billed
    units and a webhook carries no `x-fal-billable-units`; the result fal keeps does
    (the gateway has the reconciler fetch it).
    """
    verdict = body.get("status") if isinstance(body, dict) else None
    if verdict == "OK":
        return Outcome.COMPLETED
    return Outcome.ERROR_RESULT if verdict == "ERROR" else None


def cancel_accepted(status: int) -> bool:
    """A cancel fal accepted (202 CANCELLATION_REQUESTED). No verdict, whatever we last
    saw: the job may have started since, and an app may finish it anyway (fal bills what
    it finishes). It only means fal's verdict is near, so the reconciler asks now.
    """
    return status == 202


def _has_header(headers: Mapping[str, str], name: str) -> bool:
    return name in headers or any(key.lower() == name for key in headers)
