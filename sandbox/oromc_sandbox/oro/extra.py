"""Old REST marketing-list endpoints (§8) and the sandbox's own `/_sandbox/oro/...` control routes."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .auth import authenticate
from .jsonapi import EmptyError, empty_response, json_response
from .store import Client, OroStore

PLAIN = "application/json"


def _store(request: Request) -> OroStore:
    store: OroStore = request.app.state.sandbox.oro
    return store


def _plain_error(status: int, message: str, errors: Any = None) -> Response:
    body: dict[str, Any] = {"code": status, "message": message}
    if errors is not None:
        body["errors"] = errors
    return json_response(body, status, media_type=PLAIN)


def _ids(request: Request) -> tuple[int, int] | None:
    raw_list, raw_entity = request.path_params["ml_id"], request.path_params["entity_id"]
    if not (raw_list.isdigit() and raw_entity.isdigit()):
        return None
    return int(raw_list), int(raw_entity)


def _old_rest_client(request: Request, method: str, verb: str | None = None) -> Client | Response:
    """The old REST API's checks, in Oro's order: the route's ``method`` (FOSRest's plain 405), bearer
    authentication (401 empty; 403 for JSON:API-only clients), then, with ``verb``, the client's
    permission on unsubscribed items (403)."""
    wrong = _wrong_method(request, method)
    if wrong is not None:
        return wrong
    try:
        client = authenticate(request)
    except EmptyError as exc:
        return empty_response(exc.status, exc.headers)
    if not client.old_api:
        return _plain_error(403, "This API is not accessible via the current OAuth2 token.")
    if verb is not None and not client.allows("marketinglistunsubscribeditems", verb):
        return _plain_error(403, "Forbidden")
    return client


def _wrong_method(request: Request, allowed: str) -> Response | None:
    """FOSRest's plain 405 for a method the old REST route does not have."""
    if request.method == allowed:
        return None
    if request.method == "OPTIONS":
        return empty_response(200, {"Allow": allowed})
    response = _plain_error(405, f'No route found for "{request.method} {request.url.path}": Method Not Allowed '
                                 f"(Allow: {allowed})")
    response.headers["Allow"] = allowed
    return response


async def old_rest_not_found(request: Request) -> Response:
    """Any other ``/admin/api/rest/...`` URL: FOSRest's plain 404."""
    return _plain_error(404, f'No route found for "{request.method} {request.url.path}"')


async def marketing_list_action(request: Request) -> Response:
    """``POST /admin/api/rest/{v}/marketinglist/{mlId}/(unsubscribe|subscribe)/{entityId}``.

    As Oro's controller: the entity id is not checked against the list's entity; unsubscribing twice
    fails the (entityId, marketingList) uniqueness; subscribing an entity that is not unsubscribed
    succeeds and changes nothing.
    """
    client = _old_rest_client(request, "POST")
    if isinstance(client, Response):
        return client
    action = request.path_params["action"]
    if request.path_params["version"] not in ("latest", "v1") or action not in ("subscribe", "unsubscribe"):
        return _plain_error(404, "Not Found")
    verb = "create" if action == "unsubscribe" else "delete"
    if not client.allows("marketinglistunsubscribeditems", verb):
        return _plain_error(403, "Forbidden")
    ids = _ids(request)
    store = _store(request)
    if ids is None or ids[0] not in store.marketing_lists:
        return _plain_error(404, "Not Found")
    list_id, entity_id = ids
    label = ENTITY_LABELS.get(store.marketing_lists[list_id]["entity"], "Entity")
    request.state.items = 1
    if action == "unsubscribe":
        if entity_id in store.marketing_lists[list_id]["unsubscribed"]:
            return json_response(_violations("entityId", "This value is already used.", entity_id), 400,
                                 media_type=PLAIN)
        store.unsubscribe(list_id, entity_id)
        return json_response({"successful": True, "message": f"{label} unsubscribed"}, media_type=PLAIN)
    store.resubscribe(list_id, entity_id)
    return json_response({"successful": True, "message": f"{label} subscribed"}, media_type=PLAIN)


ENTITY_LABELS = {"customerusers": "Customer User", "customers": "Customer"}


def _violations(path: str, message: str, value: Any) -> dict[str, Any]:
    """A serialized ConstraintViolationList (Symfony's RFC 7807 normalization)."""
    return {
        "type": "https://symfony.com/errors/validation", "title": "Validation Failed",
        "detail": f"{path}: {message}",
        "violations": [{"propertyPath": path, "title": message, "parameters": {"{{ value }}": f'"{value}"'},
                        "type": "urn:uuid:23bd9dbf-6b9b-41cd-a99e-4844bcf3077f"}],
    }


async def unsubscribed_item_create(request: Request) -> Response:
    """``POST /admin/api/rest/{v}/marketinglists/unsubscribeditems`` ``{"entityId", "marketingList"}``."""
    client = _old_rest_client(request, "POST", "create")
    if isinstance(client, Response):
        return client
    try:
        body = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        return _plain_error(400, "Invalid json message received")
    store = _store(request)
    entity_id, list_id = (body.get("entityId"), body.get("marketingList")) if isinstance(body, dict) else (None, None)
    children: dict[str, Any] = {}
    if not isinstance(list_id, int) or list_id not in store.marketing_lists:
        children["marketingList"] = {"errors": ["This value should not be blank."]}
    if not isinstance(entity_id, int):
        children["entityId"] = {"errors": ["This value should not be blank."]}
    elif not children and isinstance(list_id, int) and entity_id in store.marketing_lists[list_id]["unsubscribed"]:
        children["entityId"] = {"errors": ["This value is already used."]}
    if children:
        return _plain_error(400, "Validation Failed", {"children": children})
    assert isinstance(list_id, int)
    assert isinstance(entity_id, int)
    request.state.items = 1
    return json_response({"id": store.unsubscribe(list_id, entity_id)}, 201, media_type=PLAIN)


async def unsubscribed_item_delete(request: Request) -> Response:
    """``DELETE /admin/api/rest/{v}/marketinglists/{id}/unsubscribeditem``."""
    client = _old_rest_client(request, "DELETE", "delete")
    if isinstance(client, Response):
        return client
    raw = request.path_params["item_id"]
    store = _store(request)
    item = store.list_items.get(int(raw)) if raw.isdigit() else None
    if item is None:
        return _plain_error(404, "Not Found")
    store.resubscribe(*item)
    return empty_response(204)


# ---- control ----------------------------------------------------------------------------------
def _control_error(status: int, message: str) -> Response:
    """A control route's error: ``{"error": message}`` as plain JSON."""
    return json_response({"error": message}, status, media_type=PLAIN)


async def _control_body(request: Request) -> Any:
    """A control request's JSON body (``{}`` when empty), or the 400 answer to one that is not JSON."""
    try:
        return orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        return _control_error(400, "body must be JSON")


async def _control_target(
    request: Request, table: str, param: str, label: str
) -> tuple[int, dict[str, Any], Any] | Response:
    """``(id, record, JSON body)`` of a control route acting on the record of ``table`` whose id is the
    path parameter ``param``; else the answer: 404 naming the ``label``, or 400 for a body that is not JSON."""
    raw = request.path_params[param]
    rid = int(raw) if raw.isdigit() else None
    record = _store(request).get(table, rid) if rid is not None else None
    if rid is None or record is None:
        return _control_error(404, f"{label} {raw} does not exist")
    body = await _control_body(request)
    if isinstance(body, Response):
        return body
    return rid, record, body


async def control_clients(request: Request) -> Response:
    """``POST /_sandbox/oro/clients`` creates an OAuth client with denied permissions; GET lists them."""
    store = _store(request)
    if request.method == "POST":
        body = await _control_body(request)
        if isinstance(body, Response):
            return body
        if not isinstance(body, dict) or not body.get("client_id") or not body.get("client_secret"):
            return _control_error(400, "client_id and client_secret are required")
        denied = body.get("denied") or {}
        if not isinstance(denied, dict) or not all(isinstance(v, list) for v in denied.values()):
            return _control_error(400, "denied must map entity types to lists of actions")
        grants = tuple(body.get("grants") or ("client_credentials", "password"))
        client = Client(str(body["client_id"]), str(body["client_secret"]), grants,
                        {str(k): {str(a) for a in v} for k, v in denied.items()}, bool(body.get("old_api", True)))
        store.clients[client.client_id] = client
        return json_response(_client_json(client), 201, media_type=PLAIN)
    return json_response([_client_json(c) for c in store.clients.values()], media_type=PLAIN)


def _client_json(client: Client) -> dict[str, Any]:
    return {"client_id": client.client_id, "grants": list(client.grants),
            "denied": {k: sorted(v) for k, v in client.denied.items()}, "old_api": client.old_api}


ORDER_CONTROL_FIELDS = {
    "internalStatus": "orderinternalstatuses", "shippingStatus": "ordershippingstatuses", "status": "orderstatuses",
}


async def control_order(request: Request) -> Response:
    """``POST /_sandbox/oro/orders/{id}``: what a back-office user or a workflow does to an order.

    Body (every key optional): ``internalStatus`` (Oro's Cancel/Close actions and the order processing
    workflow set it; the API cannot), ``shippingStatus`` and ``status`` (the API can set these too),
    ``totalDiscountsAmount`` (a discount added in the back office; totals are recomputed). The change
    moves the order's ``updatedAt`` like any write; an unchanged value writes nothing. Answers the
    order as the API renders it under the current switches (so ``status`` reads null while
    ``order_external_status_management`` is off, though the stored value changed).
    """
    from . import writes
    from .handlers import SWITCH_NAMES
    from .render import Renderer
    from .schema import RESOURCES

    store = _store(request)
    found = await _control_target(request, "orders", "order_id", "order")
    if isinstance(found, Response):
        return found
    order_id, order, body = found
    if not isinstance(body, dict):
        return _control_error(400, "body must be a JSON object")
    unknown = sorted(set(body) - set(ORDER_CONTROL_FIELDS) - {"totalDiscountsAmount"})
    if unknown:
        known = ", ".join([*ORDER_CONTROL_FIELDS, "totalDiscountsAmount"])
        return _control_error(400, f"unknown fields {unknown}; known: {known}")
    changes: dict[str, Any] = {}
    for name, table in ORDER_CONTROL_FIELDS.items():
        if name in body:
            value = body[name]
            if not isinstance(value, str) or store.get(table, value) is None:
                return _control_error(400, f"{name} must be one of {sorted(store.table(table).ids())}")
            changes[name] = value
    if "totalDiscountsAmount" in body:
        amount = body["totalDiscountsAmount"]
        if isinstance(amount, bool) or not isinstance(amount, int | float | str):
            return _control_error(400, "totalDiscountsAmount must be a number")
        try:
            number = float(amount)
        except ValueError:
            return _control_error(400, "totalDiscountsAmount must be a number")
        if not 0 <= number < 1e12:
            return _control_error(400, "totalDiscountsAmount must be >= 0")
        changes["totalDiscountsAmount"] = f"{number:.4f}"
    writes.apply_changes(store, RESOURCES["orders"], order_id, order, changes, "/data")
    base = f"{request.url.scheme}://{request.url.netloc}/admin/api"
    options = request.app.state.sandbox.options
    switches = {name: getattr(options, name, None) for name in SWITCH_NAMES}
    renderer = Renderer(store, base, switches, True)
    order = renderer.resource(RESOURCES["orders"], order_id, store.get("orders", order_id) or {})
    return json_response({"data": order}, media_type=PLAIN)


SHOPPING_LIST_ACTIONS = ("empty", "delete")


async def control_shopping_list(request: Request) -> Response:
    """``POST /_sandbox/oro/shoppinglists/{id}`` ``{"action": "empty" | "delete"}``: what a customer
    user does on the storefront (the back-office exposure is read-only).

    ``empty`` removes every line item; Oro recalculates the list's totals, which moves its
    ``updatedAt``. ``delete`` removes the list with its line items (ON DELETE CASCADE), as the
    storefront's delete does and as a checkout does when it becomes an order (the checkout's
    "Delete this shopping list after submitting order", checked by default). 204 on success.
    """
    from . import writes
    from .schema import RESOURCES

    store = _store(request)
    found = await _control_target(request, "shoppinglists", "list_id", "shopping list")
    if isinstance(found, Response):
        return found
    list_id, current, body = found
    action = body.get("action") if isinstance(body, dict) else None
    if action not in SHOPPING_LIST_ACTIONS:
        return _control_error(400, f"action must be one of {list(SHOPPING_LIST_ACTIONS)}")
    items = store.table("shoppinglistitems")
    for iid in list(items.children("shoppingList", list_id)):
        items.delete(iid)
    if action == "delete":
        store.table("shoppinglists").delete(list_id)
    else:
        writes.apply_changes(store, RESOURCES["shoppinglists"], list_id, current,
                             {"total": "0.0000", "subTotal": "0.0000", "updatedAt": store.now()}, "/data")
    return Response(status_code=204)


async def control_summary(request: Request) -> Response:
    """``GET /_sandbox/oro/summary``: counts per resource, marketing lists, clients."""
    return json_response(_store(request).summary(), media_type=PLAIN)


async def control_marketing_lists(request: Request) -> Response:
    """``GET /_sandbox/oro/marketinglists``: lists and their unsubscribed entity ids (no API exposes them)."""
    store = _store(request)
    return json_response({
        str(i): {"name": ml["name"], "entity": ml["entity"], "unsubscribed": sorted(ml["unsubscribed"])}
        for i, ml in store.marketing_lists.items()
    }, media_type=PLAIN)
