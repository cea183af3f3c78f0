"""`/v1/keys`: the customer lists, makes (`{"alias"}` → the secret, shown once) and
revokes its own `nxs_` keys. Another customer's key id is 404, as an unknown one."""

from __future__ import annotations

from typing import Final

from starlette.responses import Response

from nxs.platform import keys, wire
from nxs.platform.call import Call, json
from nxs.store import customers

MAX_PAGE: Final = 100


class KeyRoutes:
    async def list(self, call: Call) -> Response:
        call.query.choices("expand", ("creator_info",), ())  # no creators in NXS: nothing to add
        limit, page = call.query.limit(MAX_PAGE, MAX_PAGE), call.query.page()
        found = await call.run(keys.list_customer_keys, call.database, call.customer_id)
        shown = found[(page - 1) * limit : page * limit]
        items = [wire.key(entry) for entry in shown]
        return json(wire.paged("keys", items, page, len(found) > page * limit))

    async def create(self, call: Call) -> Response:
        alias = keys.parse_alias((await call.body()).get("alias"))
        customer = await call.run(customers.get, call.database, call.grant.customer_name)
        record, plaintext = await call.run(keys.create_customer_key, call.database, customer, alias)
        return json(wire.new_key(record, plaintext), 201)

    async def delete(self, call: Call) -> Response:
        key_id = call.request.path_params["key_id"]
        await call.run(keys.revoke_customer_key, call.database, call.customer_id, key_id)
        return Response(status_code=204)
