"""The portal's pages: one method per route, each reading only the signed-in customer's
rows (`nxs.portal.data`) and rendering a template. Every POST checks its CSRF token.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from nxs.billing.plans import SubscriptionStatus
from nxs.config import Settings
from nxs.errors import BadRequest, NotFound, ValidationFailed
from nxs.portal import accounts, data, stripe
from nxs.portal.results import fetch_result, result_target
from nxs.portal.stripe import MAX_TOP_UP, MIN_TOP_UP, StripeClient
from nxs.store.store import Store
from nxs.web.charts import bar_chart
from nxs.web.sessions import Session
from nxs.web.site import HEADERS, Site

LOG = logging.getLogger("nxs.portal")
MAX_ALIAS = 60
HINT = "Forgot your password? Ask your provider for a new invitation link."
USAGE_DAYS = 30
CSV_LIMIT = 10_000


class SignInNeeded(Exception):
    """No portal session: the app answers with a redirect to the sign-in page."""


@dataclass
class Pages:
    site: Site
    store: Store
    settings: Settings
    stripe: StripeClient | None

    @property
    def nav(self) -> list[tuple[str, str]]:
        p = self.site.prefix
        items = [("overview", "Overview"), ("keys", "API keys"), ("usage", "Usage")]
        items += [("prices", "Prices"), ("quickstart", "Quickstart")]
        if self.stripe is not None:
            items.append(("billing", "Billing"))
        return [(f"{p}/{slug}", label) for slug, label in items]

    # -- helpers -------------------------------------------------------------------

    async def _session(self, request: Request) -> Session:
        session = await self.site.session(request)
        if session is None:
            raise SignInNeeded()
        return session

    async def _page(
        self, request: Request, template: str, session: Session, **context: Any
    ) -> Response:
        db = self.store.database
        who = await self.site.call(_who, db, session.subject_id)
        return self.site.render(
            request,
            template,
            session,
            nav=self.nav,
            who=who,
            alert=who["alert"],
            stripe=self.stripe is not None,
            **context,
        )

    def base_url(self, request: Request) -> str:
        return (self.settings.public_url or str(request.base_url)).rstrip("/")

    # -- sign-in, sign-up ------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        session = await self.site.session(request)
        return self.site.redirect(f"{self.site.prefix}/{'overview' if session else 'sign-in'}")

    async def sign_in_form(self, request: Request) -> Response:
        if await self.site.session(request) is not None:
            return self.site.redirect(f"{self.site.prefix}/overview")
        return self.site.render(
            request, "sign_in.html", None, action=f"{self.site.prefix}/sign-in", hint=HINT
        )

    async def sign_in(self, request: Request) -> Response:
        form = await self.site.form(request, None)
        email, password = form.get("account", "")[:260], form.get("password", "")
        address = request.client.host if request.client else "-"
        self.site.throttle.check(email, address)
        customer_id = await self.site.call(
            accounts.authenticate, self.store.database, self.site.passwords, email, password
        )
        if customer_id is None:
            self.site.throttle.failed(email, address)
            return self.site.render(
                request,
                "sign_in.html",
                None,
                status=401,
                action=f"{self.site.prefix}/sign-in",
                hint=HINT,
                error="Wrong email or password",
                account=email,
            )
        self.site.throttle.succeeded(email)
        return await self.site.sign_in(request, customer_id, f"{self.site.prefix}/overview")

    async def sign_out(self, request: Request) -> Response:
        session = await self._session(request)
        await self.site.form(request, session)
        return await self.site.sign_out(request, f"{self.site.prefix}/sign-in")

    async def sign_up_form(self, request: Request) -> Response:
        token = request.path_params["token"]
        _, email = await self.site.call(accounts.pending_invite, self.store.database, token)
        return self.site.render(request, "sign_up.html", None, email=email, token=token)

    async def sign_up(self, request: Request) -> Response:
        token = request.path_params["token"]
        form = await self.site.form(request, None)
        _, email = await self.site.call(accounts.pending_invite, self.store.database, token)
        password = form.get("password", "")
        if password != form.get("confirm", ""):
            return self._sign_up_refused(request, token, email, form, "The two passwords differ")
        try:
            account = await self.site.call(
                accounts.accept,
                self.store.database,
                self.site.passwords,
                token,
                form.get("name", ""),
                password,
            )
        except BadRequest as error:
            return self._sign_up_refused(request, token, email, form, str(error.detail))
        await self.site.call(self.site.sessions.close_all, account.customer_id)  # a reset
        return await self.site.sign_in(request, account.customer_id, f"{self.site.prefix}/overview")

    def _sign_up_refused(
        self, request: Request, token: str, email: str, form: Mapping[str, str], error: str
    ) -> Response:
        """The sign-up form again (400) with what was wrong and the name as typed."""
        return self.site.render(
            request,
            "sign_up.html",
            None,
            status=400,
            email=email,
            token=token,
            error=error,
            name=form.get("name", ""),
        )

    # -- pages -------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        session = await self._session(request)
        view = await self.site.call(
            data.overview, self.store.database, session.subject_id, datetime.now(UTC)
        )
        chart = bar_chart(view.daily, "Spend per day this month (UTC)")
        return await self._page(
            request, "overview.html", session, view=view, chart=chart, page_title="Overview"
        )

    async def keys(
        self, request: Request, created: tuple[str, str] | None = None, error: str | None = None
    ) -> Response:
        session = await self._session(request)
        rows = await self.site.call(data.keys, self.store.database, session.subject_id)
        return await self._page(
            request,
            "keys.html",
            session,
            keys=rows,
            created=created,
            error=error,
            page_title="API keys",
        )

    async def create_key(self, request: Request) -> Response:
        session = await self._session(request)
        form = await self.site.form(request, session)
        alias = form.get("alias", "").strip()[:MAX_ALIAS] or "untitled"
        try:
            plaintext = await self.site.call(
                data.create_key, self.store.database, session.subject_id, alias
            )
        except ValidationFailed:
            return await self.keys(request, error="Use letters, digits and spaces in a key name")
        return await self.keys(request, created=(alias, plaintext))

    async def revoke_key(self, request: Request) -> Response:
        session = await self._session(request)
        await self.site.form(request, session)
        await self.site.call(
            data.revoke_key, self.store.database, session.subject_id, request.path_params["key_id"]
        )
        return self.site.redirect(f"{self.site.prefix}/keys")

    async def usage(self, request: Request) -> Response:
        session = await self._session(request)
        db, now = self.store.database, datetime.now(UTC)
        bars = await self.site.call(data.usage_bars, db, session.subject_id, now, USAGE_DAYS)
        recent = await self.site.call(data.recent_requests, db, session.subject_id)
        chart = bar_chart(bars, f"Spend per day and endpoint, last {USAGE_DAYS} days (UTC)")
        return await self._page(
            request, "usage.html", session, chart=chart, recent=recent, page_title="Usage"
        )

    async def usage_csv(self, request: Request) -> Response:
        session = await self._session(request)
        rows = await self.site.call(
            data.recent_requests, self.store.database, session.subject_id, CSV_LIMIT
        )
        headers = {**HEADERS, "Content-Disposition": 'attachment; filename="nxs-requests.csv"'}
        return Response(data.requests_csv(rows), media_type="text/csv", headers=headers)

    async def request_detail(self, request: Request) -> Response:
        session = await self._session(request)
        row = await self.site.call(
            data.own_request,
            self.store.database,
            session.subject_id,
            request.path_params["ledger_id"],
        )
        target = None
        if row.has_result:
            target = await self.site.call(result_target, self.store, self.settings, row)
        result = await fetch_result(target) if target else None
        shown = json.dumps(result, indent=2)[:20000] if result is not None else None
        return await self._page(
            request,
            "request.html",
            session,
            row=row,
            result=shown,
            images=_image_urls(result),
            page_title="Request",
        )

    async def prices(self, request: Request) -> Response:
        session = await self._session(request)
        rows = await self.site.call(data.prices, self.store.database, session.subject_id)
        return await self._page(request, "prices.html", session, prices=rows, page_title="Prices")

    async def quickstart(self, request: Request) -> Response:
        session = await self._session(request)
        return await self._page(
            request,
            "quickstart.html",
            session,
            base_url=self.base_url(request),
            page_title="Quickstart",
        )

    # -- billing (Stripe) ----------------------------------------------------------------

    def _stripe(self) -> StripeClient:
        if self.stripe is None:
            raise NotFound("Page not found")
        return self.stripe

    async def billing(self, request: Request) -> Response:
        self._stripe()
        session = await self._session(request)
        db = self.store.database
        plans = await self.site.call(stripe.sellable_plans, db)
        view = await self.site.call(data.overview, db, session.subject_id, datetime.now(UTC))
        paid_in = await self.site.call(data.payments, db, session.subject_id)
        return await self._page(
            request,
            "billing.html",
            session,
            plans=plans,
            view=view,
            payments=paid_in,
            paid="paid" in request.query_params,
            subscribed="subscribed" in request.query_params,
            page_title="Billing",
            minimum=MIN_TOP_UP,
            maximum=MAX_TOP_UP,
        )

    async def top_up(self, request: Request) -> Response:
        client = self._stripe()
        session = await self._session(request)
        form = await self.site.form(request, session)
        amount = _amount(form.get("amount", ""))
        back = f"{self.base_url(request)}{self.site.prefix}/billing"
        return self.site.redirect(await client.top_up(session.subject_id, amount, back))

    async def subscribe(self, request: Request) -> Response:
        client = self._stripe()
        session = await self._session(request)
        form = await self.site.form(request, session)
        plan = form.get("plan", "")
        price = await self.site.call(stripe.plan_price, self.store.database, plan)
        if price is None:
            raise NotFound("No such plan for sale")
        back = f"{self.base_url(request)}{self.site.prefix}/billing"
        return self.site.redirect(await client.subscribe(session.subject_id, plan, price, back))

    async def stripe_webhook(self, request: Request) -> Response:
        secret = self.settings.stripe_webhook_secret
        if self.stripe is None or not secret:
            raise NotFound("Stripe is not configured")
        payload = await request.body()
        event = stripe.verify(payload, request.headers.get("stripe-signature"), secret)
        outcome = await self.site.call(stripe.apply_event, self.store.database, event)
        LOG.info("stripe event %s (%s): %s", event["id"], event.get("type"), outcome)
        return JSONResponse({"received": True})


def _who(db: Any, customer_id: str) -> dict[str, Any]:
    """The header's name and the banner explaining why calls are refused, if they are."""
    customer = data.customer(db, customer_id)
    try:
        name = accounts.account(db, customer_id).display_name or customer.name
    except NotFound:
        name = customer.name
    _, subscription = data.plan_of(db, customer_id)
    alert = None
    if customer.status != "active":
        alert = (
            "Your account is suspended by the operator: your keys answer 402 until it is resumed."
        )
    elif subscription.status is SubscriptionStatus.PAST_DUE:
        alert = (
            "Your subscription's last payment failed: calls answer 402 \"Subscription not"
            ' active" until it is paid.'
        )
    elif subscription.status is SubscriptionStatus.CANCELED:
        alert = 'Your subscription has ended: calls answer 402 "Subscription not active".'
    elif not subscription.subscription_active(datetime.now(UTC)):
        alert = 'Your subscription has expired: calls answer 402 "Subscription not active".'
    return {"name": name, "customer": customer.name, "alert": alert}


def _amount(text: str) -> Decimal:
    try:
        amount = Decimal(text.strip())
    except InvalidOperation as exc:
        raise BadRequest("Enter an amount in US dollars, e.g. 20") from exc
    if not amount.is_finite() or not MIN_TOP_UP <= amount <= MAX_TOP_UP:
        raise BadRequest(f"Top up between ${MIN_TOP_UP} and ${MAX_TOP_UP}")
    if amount != amount.quantize(Decimal("0.01")):
        raise BadRequest("Use at most 2 decimals (cents)")
    return amount


def _image_urls(result: Any) -> list[str]:
    """Image URLs in a fal result (`images[].url`, `image.url`), for previews."""
    if not isinstance(result, dict):
        return []
    images = result.get("images")
    items: list[Any] = list(images) if isinstance(images, list) else []
    if isinstance(result.get("image"), dict):
        items.append(result["image"])
    urls = [item.get("url") for item in items if isinstance(item, dict)]
    return [url for url in urls if isinstance(url, str) and url.startswith(("https://", "http://"))]
