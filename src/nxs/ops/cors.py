"""Cross-origin calls from browsers, per `NXS_CORS_ORIGINS` (a comma list of origins, or
`*`; none by default: a browser page must call NXS through its own server).

A preflight (`OPTIONS` with `Access-Control-Request-Method`) from an allowed origin gets
204 with the methods and the headers it asked for; from another origin, 403 in fal's
shape. Every answer to an allowed origin names it in `Access-Control-Allow-Origin`.
"""

from __future__ import annotations

from typing import Final

Headers = list[tuple[bytes, bytes]]
METHODS: Final = b"GET, POST, PUT, DELETE, OPTIONS"
MAX_AGE: Final = b"600"
EXPOSED: Final = b"x-nxs-request-id, x-fal-request-id, retry-after, x-fal-billable-units"


class CorsPolicy:
    """The origins allowed (or any, with `*`)."""

    def __init__(self, origins: tuple[str, ...] = ()) -> None:
        self.any = "*" in origins
        self.origins = frozenset(origin.rstrip("/") for origin in origins if origin != "*")

    @classmethod
    def parse(cls, raw: str | None, name: str = "NXS_CORS_ORIGINS") -> CorsPolicy:
        """`"https://app.example.com, http://localhost:3000"` or `*`; a ValueError naming
        `name` for an entry that is not an origin (scheme://host[:port])."""
        origins = tuple(part.strip() for part in (raw or "").split(",") if part.strip())
        for origin in origins:
            if origin != "*" and not _is_origin(origin):
                raise ValueError(
                    f"{name} must be a comma list of origins like https://app.example.com "
                    f"or *, got {origin!r}"
                )
        return cls(origins)

    def __bool__(self) -> bool:
        return self.any or bool(self.origins)

    def allows(self, origin: str) -> bool:
        return self.any or origin in self.origins

    def headers(self, origin: str) -> Headers:
        """What an answer to an allowed `origin` carries."""
        return [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-expose-headers", EXPOSED),
            (b"vary", b"Origin"),
        ]

    def preflight_headers(self, origin: str, requested: str) -> Headers:
        """The answer to an allowed preflight: the requested headers echoed (the SDKs
        send Authorization, Content-Type and x-fal-* headers)."""
        headers = self.headers(origin)
        headers += [
            (b"access-control-allow-methods", METHODS),
            (b"access-control-max-age", MAX_AGE),
            (b"content-length", b"0"),
        ]
        if requested:
            headers.append((b"access-control-allow-headers", requested.encode("latin-1")))
        return headers


def _is_origin(value: str) -> bool:
    scheme, _, rest = value.partition("://")
    return scheme in ("http", "https") and bool(rest) and "/" not in rest.rstrip("/")
