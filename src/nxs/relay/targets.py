"""Which customer webhook URLs the relay will POST to.

Only absolute http(s) URLs without credentials. Unless private targets are allowed
(`NXS_WEBHOOK_ALLOW_PRIVATE=true`), IP literals in loopback, private, link-local,
shared, reserved or multicast ranges and `localhost` names are refused at submit, and
at delivery `GuardedResolver` refuses hostnames that resolve into those ranges.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from nxs.errors import BadRequest


class WebhookTargetRefused(BadRequest):
    """The customer's `fal_webhook` cannot be relayed to."""

    error_type = "invalid_webhook_url"
    detail = "Invalid webhook URL"


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address (IPv4-mapped IPv6 is unwrapped)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_target(url: str, *, allow_private: bool) -> str:
    """`url` if the relay may deliver to it, else `WebhookTargetRefused` saying why."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise WebhookTargetRefused(f"Invalid webhook URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise WebhookTargetRefused("Webhook URL must be an absolute http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise WebhookTargetRefused("Webhook URL must not carry credentials")
    if allow_private or _is_public_host(host):
        return url
    raise WebhookTargetRefused(
        f"Webhook URL host {host!r} is in a loopback or private range;"
        " NXS_WEBHOOK_ALLOW_PRIVATE=true allows it (development only)"
    )


def _is_public_host(host: str) -> bool:
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return False
    try:
        return is_public_address(name)
    except ValueError:
        return True  # a DNS name: checked when it is resolved at delivery


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver minus every non-public address (all gone → connection error)."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [result for result in results if is_public_address(result["host"])]
        if not allowed:
            raise OSError(f"{host} resolves only to non-public addresses")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def resolver(*, allow_private: bool) -> Any:
    """The resolver for the delivery session (None: aiohttp's default)."""
    return None if allow_private else GuardedResolver()
