"""The signed webhook relay: fal's callbacks verified, settled once, and re-delivered to
customers signed with NXS's own Ed25519 key from a durable outbox.
"""

from nxs.relay.relay import Completion, CompletionHook, Relay, RelayConfig
from nxs.relay.schema import RELAY_NAME, RELAY_STATEMENTS, apply_relay_schema

__all__ = [
    "RELAY_NAME",
    "RELAY_STATEMENTS",
    "Completion",
    "CompletionHook",
    "Relay",
    "RelayConfig",
    "apply_relay_schema",
]
