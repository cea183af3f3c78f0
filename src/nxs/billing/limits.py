"""Requests-per-minute (token bucket) and requests-in-flight limits, per key and customer.

The limits themselves live in `nxs.state` (shared by workers and replicas); billing names
them here: `Limiter` is the interface, `InProcessLimiter` the one-worker backend.
"""

from __future__ import annotations

from nxs.state.limits import Limit, Limits, Permit, Refusal
from nxs.state.memory import InProcessLimits

Limiter = Limits
InProcessLimiter = InProcessLimits

__all__ = ["InProcessLimiter", "Limit", "Limiter", "Permit", "Refusal"]
