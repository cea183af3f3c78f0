"""Registered relays: the callback URL NXS gives fal in place of a customer's webhook.

`register` checks the customer's URL (see `targets`), stores who it belongs to under an
unguessable id and returns the URL for fal's `fal_webhook`:
`{public_url}/webhooks/fal/{callback_id}`. `attach` records the request id fal answered.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from nxs.errors import BadRequest, NotFound
from nxs.relay.targets import check_target
from nxs.store.database import Database


class UnknownCallback(NotFound):
    """No relay registered under this callback id (or it belongs to nobody we know)."""

    error_type = "not_found"
    detail = "Webhook callback not found"


@dataclass(frozen=True)
class Callback:
    id: str
    customer_id: str
    target_url: str
    request_id: str | None


@dataclass(frozen=True)
class Registration:
    callback_id: str
    fal_webhook_url: str  # what NXS passes to fal as `fal_webhook`


def new_callback_id() -> str:
    """`cb_` and 32 random bytes in base64url: not guessable, safe in a URL path."""
    return "cb_" + secrets.token_urlsafe(32)


class Callbacks:
    """The `relay_callbacks` table."""

    def __init__(self, database: Database, public_url: str | None, allow_private: bool) -> None:
        self._db = database
        self._public_url = public_url.rstrip("/") if public_url else None
        self._allow_private = allow_private

    def register(
        self, customer_id: str, customer_webhook_url: str, request_id: str | None = None
    ) -> Registration:
        """Store a relay for the customer's URL (refused with a 400 if not allowed)."""
        if self._public_url is None:
            raise BadRequest("Webhook relay is not configured: NXS_PUBLIC_URL is not set")
        target = check_target(customer_webhook_url, allow_private=self._allow_private)
        callback_id = new_callback_id()
        self._db.execute(
            "INSERT INTO relay_callbacks (id, customer_id, target_url, request_id, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (callback_id, customer_id, target, request_id, time.time()),
        )
        return Registration(callback_id, f"{self._public_url}/webhooks/fal/{callback_id}")

    def attach(self, callback_id: str, request_id: str) -> None:
        """Bind the request id fal gave the submission (first binding wins)."""
        self._db.execute(
            "UPDATE relay_callbacks SET request_id = ? WHERE id = ? AND request_id IS NULL",
            (request_id, callback_id),
        )

    def find(self, callback_id: str) -> Callback:
        """The registered relay, or `UnknownCallback` (404)."""
        row = self._db.fetch_one(
            "SELECT id, customer_id, target_url, request_id FROM relay_callbacks WHERE id = ?",
            (callback_id,),
        )
        if row is None:
            raise UnknownCallback()
        request_id = row["request_id"]
        return Callback(
            str(row["id"]),
            str(row["customer_id"]),
            str(row["target_url"]),
            None if request_id is None else str(request_id),
        )
