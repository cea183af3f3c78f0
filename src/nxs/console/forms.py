"""The console's forms (POSTs): every one reads the form after its CSRF check, then runs an
action of `nxs.console.actions` (which refuses a viewer) and shows the page again with what
happened. Store work runs on a worker thread; bad input re-renders the page with the error
and its status (400, 403, 404, 409), never a traceback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from starlette.requests import Request
from starlette.responses import Response

from nxs.console import actions, pages
from nxs.console.actions import Actor
from nxs.errors import NotFound, NxsError
from nxs.web.sessions import Session

if TYPE_CHECKING:
    from nxs.console.app import Console

Page = Callable[..., Awaitable[Response]]


async def _submit(
    console: Console,
    request: Request,
    session: Session,
    actor: Actor,
    page: Page,
    run: Callable[[dict[str, str]], str],
) -> Response:
    """Check CSRF and role, run the action off the loop, then show `page` with the outcome."""
    fields = await console.site.form(request, session)
    try:
        actor.check_can_change()
        notice = await console.site.call(run, fields)
    except NxsError as error:
        return await page(console, request, session, actor, error=error.detail, status=error.status)
    return await page(console, request, session, actor, notice=notice)


async def invite(console: Console, request: Request, session: Session, actor: Actor) -> Response:
    """A new customer, and with an email its portal sign-up link (shown this once)."""
    fields = await console.site.form(request, session)
    email = fields.get("email", "").strip()
    try:
        actor.check_can_change()
        name = await console.site.call(actions.invite_customer, console.store, actor, fields)
        link = await _invite_link(console, request, actor, name, email) if email else None
    except NxsError as error:
        return await pages.customer_list(
            console, request, session, actor, error=error.detail, status=error.status
        )
    done = f"Customer '{name}' created on plan default."
    return await pages.customer_list(
        console, request, session, actor, notice=done, invite_link=link
    )


async def portal_invite(
    console: Console, request: Request, session: Session, actor: Actor
) -> Response:
    name = request.path_params["name"]
    fields = await console.site.form(request, session)
    try:
        actor.check_can_change()
        link = await _invite_link(console, request, actor, name, fields.get("email", ""))
    except NxsError as error:
        return await pages.customer_page(
            console, request, session, actor, error=error.detail, status=error.status
        )
    done = "Portal invitation made: send this link to the customer."
    return await pages.customer_page(
        console, request, session, actor, notice=done, invite_link=link
    )


async def _invite_link(
    console: Console, request: Request, actor: Actor, name: str, email: str
) -> str:
    made = await console.site.call(actions.invite_to_portal, console.store, actor, name, email)
    return made.link(console.settings.public_url or str(request.base_url))


def _on_customer(
    action: Callable[[Any, Actor, str, dict[str, str]], str],
) -> Callable[..., Awaitable[Response]]:
    async def handler(
        console: Console, request: Request, session: Session, actor: Actor
    ) -> Response:
        name = request.path_params["name"]
        return await _submit(
            console,
            request,
            session,
            actor,
            pages.customer_page,
            lambda form: action(console.store, actor, name, form),
        )

    return handler


def _revoke(store: Any, actor: Actor, name: str, form: dict[str, str]) -> str:
    key_id = form.get("key_id", "")
    if all(key.id != key_id for key in store.list_keys(name)):
        raise NotFound(f"No key {key_id!r} of customer '{name}'")
    actions.revoke_key(store, actor, key_id)
    return f"Key {key_id} revoked: it is refused from now on."


def _suspend(store: Any, actor: Actor, name: str, form: dict[str, str]) -> str:
    actions.suspend(store, actor, name)
    return f"'{name}' is suspended: its keys get 402 until resumed."


def _resume(store: Any, actor: Actor, name: str, form: dict[str, str]) -> str:
    actions.resume(store, actor, name)
    return f"'{name}' is active again."


def _plan(store: Any, actor: Actor, name: str, form: dict[str, str]) -> str:
    actions.change_plan(store, actor, name, form)
    return f"'{name}' is now on plan {form.get('plan')}."


def _credit(store: Any, actor: Actor, name: str, form: dict[str, str]) -> str:
    available = actions.grant_credit(store, actor, name, form)
    return f"Credit granted: '{name}' now has ${available} available."


async def new_key(console: Console, request: Request, session: Session, actor: Actor) -> Response:
    """A new key: shown once, in the answer to this form, never again."""
    name = request.path_params["name"]
    await console.site.form(request, session)
    try:
        actor.check_can_change()
        plaintext = await console.site.call(actions.create_key, console.store, actor, name)
    except NxsError as error:
        return await pages.customer_page(
            console, request, session, actor, error=error.detail, status=error.status
        )
    return await pages.customer_page(
        console,
        request,
        session,
        actor,
        new_key=plaintext,
        notice="Key created: copy it now, it is shown only this once.",
    )


async def add_key(console: Console, request: Request, session: Session, actor: Actor) -> Response:
    def run(form: dict[str, str]) -> str:
        masked = actions.add_upstream(console.store, actor, form)
        return f"Upstream key added ({masked}); its secret is stored encrypted and never shown."

    return await _submit(console, request, session, actor, pages.pool_page, run)


def _upstream(
    action: Callable[[Any, Actor, str], None], done: str
) -> Callable[..., Awaitable[Response]]:
    async def handler(
        console: Console, request: Request, session: Session, actor: Actor
    ) -> Response:
        name = request.path_params["name"]

        def run(form: dict[str, str]) -> str:
            action(console.store, actor, name)
            return f"Upstream key '{name}' {done}."

        return await _submit(console, request, session, actor, pages.pool_page, run)

    return handler


async def set_limits(
    console: Console, request: Request, session: Session, actor: Actor
) -> Response:
    name = request.path_params["name"]

    def run(form: dict[str, str]) -> str:
        weight, concurrency = actions.set_upstream_limits(console.store, actor, name, form)
        return f"Upstream key '{name}': weight {weight}, concurrency {concurrency}."

    return await _submit(console, request, session, actor, pages.pool_page, run)


async def save_plan(console: Console, request: Request, session: Session, actor: Actor) -> Response:
    def run(form: dict[str, str]) -> str:
        replace = form.get("replace") == "1"
        name = actions.save_plan(console.store, actor, form, replace=replace)
        return f"Plan '{name}' {'updated' if replace else 'created'}."

    return await _submit(console, request, session, actor, pages.plans_page, run)


async def set_price(console: Console, request: Request, session: Session, actor: Actor) -> Response:
    def run(form: dict[str, str]) -> str:
        return f"Price for '{actions.set_price(console.store, actor, form)}' saved."

    return await _submit(console, request, session, actor, pages.plans_page, run)


async def sync_prices(
    console: Console, request: Request, session: Session, actor: Actor
) -> Response:
    def run(form: dict[str, str]) -> str:
        report = actions.sync_pricing(console.settings, console.store, actor)
        skipped = f"; skipped {len(report.skipped)}" if report.skipped else ""
        return f"Imported {report.imported} price(s) from fal{skipped}."

    return await _submit(console, request, session, actor, pages.plans_page, run)


FORMS: Final = {
    "/customers": invite,
    "/customers/{name}/suspend": _on_customer(_suspend),
    "/customers/{name}/resume": _on_customer(_resume),
    "/customers/{name}/plan": _on_customer(_plan),
    "/customers/{name}/credit": _on_customer(_credit),
    "/customers/{name}/keys": new_key,
    "/customers/{name}/revoke": _on_customer(_revoke),
    "/customers/{name}/invite": portal_invite,
    "/pool": add_key,
    "/pool/{name}/enable": _upstream(actions.enable_upstream, "is back in the pool"),
    "/pool/{name}/disable": _upstream(actions.disable_upstream, "is disabled: no call goes to it"),
    "/pool/{name}/limits": set_limits,
    "/plans": save_plan,
    "/prices": set_price,
    "/prices/sync": sync_prices,
}
