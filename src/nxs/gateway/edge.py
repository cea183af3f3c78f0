"""What the gateway decides about a request before routing it: who the client is (the
peer, or what a trusted proxy says), whether `X-Forwarded-Host/-Proto` count, and CORS
(the headers of an allowed origin, preflights answered here).
"""

from __future__ import annotations

import hmac

from nxs.errors import NotFound, NxsError
from nxs.gateway.exchange import Exchange, Scope
from nxs.ops.cors import CorsPolicy
from nxs.ops.proxies import TrustedProxies


class DisallowedOrigin(NxsError):
    status, error_type, detail = 403, "cors_origin_not_allowed", "Origin not allowed"


class Edge:
    """Trusted proxies, the CORS policy and the metrics listener of one gateway."""

    def __init__(
        self,
        proxies: TrustedProxies,
        cors: CorsPolicy,
        metrics_port: int | None = None,
        metrics_token: str | None = None,
    ) -> None:
        self.proxies = proxies
        self.cors = cors
        self.metrics_port = metrics_port
        self._metrics_bearer = f"Bearer {metrics_token}".encode() if metrics_token else None

    def on_metrics_port(self, ex: Exchange) -> bool:
        """Whether `ex` came in on the metrics listener (`--metrics-port`)."""
        if self.metrics_port is None:
            return False
        server = ex.scope.get("server") or ("", None)
        return bool(server[1] == self.metrics_port)

    def check_metrics(self, ex: Exchange) -> None:
        """/metrics is answered on the metrics port, or with NXS_METRICS_TOKEN as a bearer;
        anywhere else it does not exist (404, like any unknown path)."""
        if self.on_metrics_port(ex):
            return
        given = (ex.authorization or "").encode("latin-1", "replace")
        if self._metrics_bearer is None or not hmac.compare_digest(given, self._metrics_bearer):
            raise NotFound()

    def admit(self, ex: Exchange) -> None:
        """Settle `ex.client` and drop forwarded facts a trusted proxy did not send."""
        if self.proxies and self.proxies.trusts(ex.client):
            ex.client = self.proxies.client(ex.client, ex.forwarded_for)
        else:
            ex.forwarded_host = ex.forwarded_proto = ""
        if ex.origin and self.cors and self.cors.allows(ex.origin):
            ex.edge_headers = self.cors.headers(ex.origin)

    def web_scope(self, scope: Scope) -> Scope:
        """A web page's scope (portal, console) with the scheme the client used: `https`
        when a trusted proxy terminated TLS and says so in `X-Forwarded-Proto` (so the
        pages' cookies are Secure); unchanged from anyone else."""
        client = scope.get("client")
        if not self.proxies or not client or not self.proxies.trusts(client[0]):
            return scope
        for name, value in scope["headers"]:
            if name == b"x-forwarded-proto":
                proto = value.decode("latin-1").split(",")[0].strip().lower()
                if proto in ("http", "https") and proto != scope.get("scheme"):
                    return {**scope, "scheme": proto}
                break
        return scope

    def is_preflight(self, ex: Exchange) -> bool:
        return ex.method == "OPTIONS" and bool(ex.origin) and bool(ex.cors_method)

    async def preflight(self, ex: Exchange) -> None:
        """204 with what the origin may send, or 403 when it is not allowed."""
        ex.route = "preflight"
        if not self.cors or not self.cors.allows(ex.origin):
            raise DisallowedOrigin()
        headers = self.cors.preflight_headers(ex.origin, ex.cors_request_headers)
        ex.edge_headers = []
        await ex.start(204, headers)
        await ex.send({"type": "http.response.body", "body": b""})
