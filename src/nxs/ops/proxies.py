"""Which peers may speak for the client: `X-Forwarded-For`, `-Host` and `-Proto` are
believed only from addresses in `NXS_TRUSTED_PROXIES` (addresses or CIDRs). From anyone
else they are ignored, and the client is the peer itself.
"""

from __future__ import annotations

import ipaddress
from typing import Final

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
CACHE_LIMIT: Final = 4096  # peer addresses remembered as trusted or not


class TrustedProxies:
    """The trusted networks, and a verdict cache per peer address (a check costs
    microseconds; a gateway sees few distinct peers behind a load balancer)."""

    def __init__(self, networks: tuple[Network, ...] = ()) -> None:
        self.networks = networks
        self._verdicts: dict[str, bool] = {}

    @classmethod
    def parse(cls, raw: str | None, name: str = "NXS_TRUSTED_PROXIES") -> TrustedProxies:
        """`"10.0.0.0/8, 127.0.0.1, ::1"`; a ValueError naming `name` for a bad entry."""
        networks = []
        for part in (raw or "").split(","):
            if not part.strip():
                continue
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ValueError(
                    f"{name} must be a comma list of IP addresses or CIDRs, got {part.strip()!r}"
                ) from None
        return cls(tuple(networks))

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: str) -> bool:
        verdict = self._verdicts.get(address)
        if verdict is None:
            verdict = self._check(address)
            if len(self._verdicts) >= CACHE_LIMIT:
                self._verdicts.clear()
            self._verdicts[address] = verdict
        return verdict

    def _check(self, address: str) -> bool:
        if not _is_address(address):  # a unix socket path or an unparsable peer
            return False
        ip = ipaddress.ip_address(address)
        return any(ip in network for network in self.networks)

    def client(self, peer: str, forwarded_for: str) -> str:
        """The client's address: walking `X-Forwarded-For` from the right (the entry our
        own proxy appended) past trusted proxies, the first address not trusted."""
        if not forwarded_for or not self.trusts(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop if _is_address(hop) else peer  # never a forged string in logs
        return hops[0] if hops and _is_address(hops[0]) else peer


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
