"""Helpers for portal tests: a browser-like HTTP client (cookies, CSRF tokens from the
page) and the invitation flow through the real CLI."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
PASSWORD = "correct horse battery"


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


@dataclass
class PortalClient:
    """One browser: its own cookies; forms posted with the token of the page they are on."""

    base: str
    http: httpx.Client

    @classmethod
    def open(cls, base: str) -> PortalClient:
        return cls(base, httpx.Client(base_url=base, timeout=30, follow_redirects=False))

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def submit(self, page: str, action: str, fields: dict[str, str]) -> httpx.Response:
        """GET `page`, then POST `fields` to `action` with that page's CSRF token."""
        token = csrf_of(self.get(page).text)
        return self.http.post(action, data={"csrf": token, **fields})

    def sign_up(
        self, link: str, name: str = "Acme Ltd", password: str = PASSWORD
    ) -> httpx.Response:
        path = link[link.index("/portal/") :]
        fields = {"name": name, "password": password, "confirm": password}
        return self.submit(path, path, fields)

    def close(self) -> None:
        self.http.close()


def invite_link(nxs_output: str) -> str:
    """The sign-up link `nxs customers invite` printed (its last line)."""
    link = nxs_output.strip().splitlines()[-1].strip()
    assert "/portal/sign-up/" in link, nxs_output
    return link
