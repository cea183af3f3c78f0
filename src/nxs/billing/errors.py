"""The errors billing decisions end in, as `NxsError` subclasses in fal's shape.

The gateway and the admin API render them with `nxs.errors.render`; operator input errors
carry a pydantic-style `[{loc, msg, type}]` detail naming the offending field.
"""

from __future__ import annotations

from nxs.errors import (
    Conflict,
    Forbidden,
    NxsError,
    PaymentRequired,
    RateLimited,
    ValidationFailed,
)


class SubscriptionInactive(PaymentRequired):
    status, error_type, detail = 402, "subscription_inactive", "Subscription not active"


class InsufficientCredit(PaymentRequired):
    status, error_type, detail = 402, "insufficient_credit", "Insufficient credit"


class EndpointNotAllowed(Forbidden):
    status, error_type, detail = 403, "endpoint_not_allowed", "Endpoint not allowed by your plan"


class NoPrice(Forbidden):
    """No price rule matches and the unknown-endpoint policy is to refuse."""

    status, error_type, detail = 403, "no_price", "No price configured for this endpoint"


class RateLimitExceeded(RateLimited):
    """429 with a `Retry-After` header of whole seconds (at least 1)."""

    status, error_type, detail = 429, "rate_limited", "Rate limit exceeded"

    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, retry_after)
        super().__init__(headers={"Retry-After": str(self.retry_after)})


class InvalidBillingInput(ValidationFailed):
    """Operator input (an amount, a multiplier, a unit, a price) that cannot be used."""

    def __init__(self, field: str, message: str, kind: str = "value_error") -> None:
        self.message = message
        super().__init__([{"loc": ["body", field], "msg": message, "type": kind}])

    def __str__(self) -> str:
        return self.message


class PricingResponseInvalid(NxsError):
    """The upstream pricing API answered with a body we cannot read."""

    status, error_type, detail = 502, "pricing_response_invalid", "Bad upstream pricing"


class IdempotencyKeyReused(ValidationFailed):
    """The same Idempotency-Key came back with a different request (within 24 h)."""

    def __init__(self) -> None:
        message = "Idempotency-Key was already used with a different request"
        super().__init__(
            [
                {
                    "loc": ["header", "Idempotency-Key"],
                    "msg": message,
                    "type": "value_error.idempotency_key_reused",
                }
            ]
        )


class IdempotentRequestInProgress(Conflict):
    """The first request with this Idempotency-Key has not answered yet; retry shortly."""

    status, error_type = 409, "idempotency_in_progress"
    detail = "A request with this Idempotency-Key is still in progress"
