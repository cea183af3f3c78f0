"""Idempotency in-flight markers: one holder per name until dropped or expired (SET NX)."""

from __future__ import annotations

from typing import Protocol


class Markers(Protocol):
    async def claim(self, name: str, ttl: float) -> bool:
        """True for the one caller that got `name` (free or expired), False for others."""

    async def drop(self, name: str) -> None:
        """Free `name` now (dropping a free name is a no-op)."""
