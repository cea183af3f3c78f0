"""The portal's commands: `nxs customers invite NAME EMAIL` (prints a one-time sign-up
link; no mail server is assumed) and `nxs plans update NAME --stripe-price ID`.
"""

from __future__ import annotations

import argparse

from nxs.admin import audit
from nxs.admin.commands import Subparsers, add_leaf
from nxs.config import Settings
from nxs.portal import accounts, stripe
from nxs.store.store import Store

DEFAULT_BASE_URL = "http://127.0.0.1:8000"


def add_invite(customers: Subparsers) -> None:
    """`nxs customers invite NAME EMAIL [--base-url URL]`."""
    invite = add_leaf(
        customers, "invite", "print a one-time portal sign-up link for a customer", _invite
    )
    invite.add_argument("name", metavar="NAME", help="the customer to invite")
    invite.add_argument("email", metavar="EMAIL", help="the address the customer signs in with")
    invite.add_argument(
        "--base-url",
        metavar="URL",
        help=f"the gateway's public URL (default: NXS_PUBLIC_URL, else {DEFAULT_BASE_URL})",
    )


def _invite(store: Store, args: argparse.Namespace) -> int:
    base = args.base_url or Settings.from_env().public_url or DEFAULT_BASE_URL
    with store.database.transaction():
        invite = accounts.invite(store.database, args.name, args.email)
        audit.record(
            store.database, audit.CLI, "customers.invite", args.name, {"email": invite.email}
        )
    print(f"Invited '{invite.customer_name}' as {invite.email}; the link works once, for 7 days:")
    print(invite.link(base))
    return 0


def add_stripe_price(update: argparse.ArgumentParser) -> None:
    """`--stripe-price ID` on `nxs plans update` ('none' stops selling the plan)."""
    update.add_argument(
        "--stripe-price",
        metavar="ID",
        help="sell the plan in the portal as this Stripe price (price_…; 'none': stop)",
    )


def apply_stripe_price(store: Store, args: argparse.Namespace) -> None:
    """Record `--stripe-price` if given (inside the update's transaction)."""
    given = getattr(args, "stripe_price", None)
    if given is not None:
        price = None if given.strip().lower() == "none" else given
        stripe.set_plan_price(store.database, args.name, price)
        audit.record(
            store.database, audit.CLI, "plans.stripe_price", args.name, {"price": price or ""}
        )
