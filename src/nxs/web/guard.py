"""What keeps a page family safe: cookie attributes, CSRF checks and sign-in throttling.

Cookies are HttpOnly and SameSite=Lax, Secure when the page came over TLS. Every form
carries a CSRF token: the session's own once signed in, before that a random value also
set as a cookie (double submit). Sign-in failures are counted per account and per client
address over a sliding window; past the limit the form answers 429 without checking.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

from nxs.errors import Forbidden, RateLimited


class CsrfRejected(Forbidden):
    detail = "The form expired or did not come from this site: reload the page and try again"


class TooManySignIns(RateLimited):
    detail = "Too many failed sign-ins: wait a few minutes and try again"


def check_csrf(expected: str | None, sent: str | None) -> None:
    """Forbidden unless the form's token equals the expected one (constant-time)."""
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        raise CsrfRejected()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass
class SignInThrottle:
    """Failures per key (an account name or a client address) within `window` seconds."""

    per_account: int = 5
    per_address: int = 20
    window: float = 300.0
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def check(self, account: str, address: str) -> None:
        """TooManySignIns when either the account or the address is over its limit."""
        if self._count(f"a:{account.lower()}") >= self.per_account:
            raise TooManySignIns(headers={"Retry-After": str(int(self.window))})
        if self._count(f"ip:{address}") >= self.per_address:
            raise TooManySignIns(headers={"Retry-After": str(int(self.window))})

    def failed(self, account: str, address: str) -> None:
        moment = time.monotonic()
        for key in (f"a:{account.lower()}", f"ip:{address}"):
            self._failures.setdefault(key, deque()).append(moment)
        if len(self._failures) > 10_000:  # bounded: forget keys with nothing recent
            for key in [k for k in self._failures if self._count(k) == 0]:
                del self._failures[key]

    def succeeded(self, account: str) -> None:
        self._failures.pop(f"a:{account.lower()}", None)

    def _count(self, key: str) -> int:
        times = self._failures.get(key)
        if not times:
            return 0
        horizon = time.monotonic() - self.window
        while times and times[0] < horizon:
            times.popleft()
        return len(times)
