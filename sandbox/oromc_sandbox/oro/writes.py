"""Create / update / delete with Oro's validation, upsert (§6.3) and side effects."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .jsonapi import ApiError, err, fail, parse_date_input, parse_datetime_input
from .schema import (
    ARRAY,
    BOOLEAN,
    CONSENT_FIELD,
    DATE,
    DATETIME,
    FLOAT,
    INTEGER,
    MONEY,
    RESOURCES,
    Attr,
    Rel,
    Resource,
    rel_enabled,
    rel_ignored,
)
from .store import OroStore
from .tables import Record

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
NOT_BLANK = ("not blank constraint", "This value should not be blank.")
DEFAULTS: dict[str, dict[str, Any]] = {
    "customerusers": {"enabled": True, "confirmed": True, "isGuest": False, "loginCount": 0, "owner": 1,
                      "organization": 1, "website": 1, "userRoles": [], "salesRepresentatives": [], "tags": [],
                      "auth_status": "active", CONSENT_FIELD: None},
    "customers": {"owner": 1, "organization": 1, "salesRepresentatives": []},
    "customergroups": {"owner": 1, "organization": 1},
    "customeruseraddresses": {"owner": 1, "systemOrganization": 1, "primary": False, "types": []},
    # order_creation_new_internal_order_status = open; OrderShippingStatusListener: the default shipping
    # status; the external status gets its enum default ("open")
    "orders": {"currency": "USD", "internalStatus": "open", "status": "open", "shippingStatus": "not_shipped",
               "owner": 1, "organization": 1, "external": False, "subtotalValue": "0.0000", "totalValue": "0.0000",
               "totalDiscountsAmount": "0.0000", "paymentTerm": None, "billingAddress": None, "shippingAddress": None,
               "discounts": [], "shippingTrackings": [], "documents": [], "source": None},
    "orderlineitems": {"currency": "USD", "priceType": 10, "fromExternalSource": False, "productVariantFields": []},
    "products": {"status": "enabled", "productType": "simple", "featured": False, "newArrival": False, "owner": 1,
                 "organization": 1},
    "tags": {"owner": 1, "organization": 1},
    "campaigns": {"reportPeriod": "day", "owner": 1, "organization": 1},
    "marketingactivities": {"owner": 1},
}
TIMESTAMPED = {"customerusers", "customers", "customeruseraddresses", "orders", "orderlineitems", "products",
               "tags", "campaigns"}


@dataclass
class Outcome:
    """Result of a write: the id and whether a record was created."""

    rid: Any
    created: bool


def check_primary(res: Resource, data: Any, pointer: str, *, need_id: bool, url_id: str | None = None) -> None:
    """Structure of a primary data object (400 / 409 as Oro's request validators answer)."""
    if not isinstance(data, dict):
        raise fail(400, "request data constraint", "The primary data object should be an object", pointer=pointer)
    errors = []
    if "type" not in data:
        errors.append(err(400, "request data constraint", "The 'type' property is required", pointer=f"{pointer}/type"))
    if need_id and "id" not in data:
        errors.append(err(400, "request data constraint", "The 'id' property is required", pointer=f"{pointer}/id"))
    errors.extend(
        err(400, "request data constraint", f"The '{key}' property should be an object", pointer=f"{pointer}/{key}")
        for key in ("attributes", "relationships") if key in data and not isinstance(data[key], dict)
    )
    if "id" in data and not isinstance(data["id"], str):
        errors.append(err(400, "request data constraint", "The 'id' property should be a string",
                          pointer=f"{pointer}/id"))
    if errors:
        raise ApiError(400, errors)
    if data["type"] != res.type:
        raise fail(409, "conflict constraint",
                   "The 'type' property of the primary data object should match the requested resource",
                   pointer=f"{pointer}/type")
    if url_id is not None and str(data.get("id")) != url_id:
        raise fail(409, "conflict constraint",
                   "The 'id' property of the primary data object should match 'id' parameter of the query string",
                   pointer=f"{pointer}/id")


def _parse_attr(attr: Attr, value: Any) -> tuple[Any, str | None]:
    """(stored value, error detail)."""
    if value is None:
        return None, None
    kind = attr.kind
    if kind in (DATETIME,):
        ts = parse_datetime_input(value)
        return (ts, None) if ts is not None else (None, "This value is not a valid datetime.")
    if kind == DATE:
        d = parse_date_input(value)
        return (d, None) if d is not None else (None, "This value is not a valid date.")
    if kind == BOOLEAN:
        return (value, None) if isinstance(value, bool) else (None, "This value is not valid.")
    if kind == INTEGER:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return (value, None) if ok else (None, "This value is not valid.")
    if kind in (FLOAT, MONEY):
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None:
            return None, "This value is not valid."
        return (f"{number:.4f}" if kind == MONEY else number), None
    if kind == ARRAY:
        return (value, None) if isinstance(value, list) else (None, "This value is not valid.")
    if isinstance(value, dict | list):
        return None, "This value is not valid."
    return (value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)), None


def _parse_linkage(store: OroStore, rel: Rel, item: Any, ptr: str, errors: list[dict[str, Any]]) -> Any:
    if not isinstance(item, dict):
        errors.append(err(400, "request data constraint", "The 'data' property should be an object", pointer=ptr))
        return None
    if "type" not in item or "id" not in item:
        missing = "type" if "type" not in item else "id"
        errors.append(err(400, "request data constraint", f"The '{missing}' property is required",
                          pointer=f"{ptr}/{missing}"))
        return None
    if not isinstance(item["id"], str):
        errors.append(err(400, "request data constraint", "The 'id' property should be a string",
                          pointer=f"{ptr}/id"))
        return None
    type_ = item["type"]
    allowed = rel.targets if rel.target is None else (rel.target,)
    if type_ not in allowed:
        errors.append(err(400, "form constraint", f'The "{type_}" type is not acceptable for this relationship.',
                          pointer=ptr))
        return None
    rid = store.parse_id(type_, str(item["id"]))
    if rid is None or store.get(type_, rid) is None:
        errors.append(err(400, "form constraint", "The entity does not exist.",
                          pointer=ptr.rsplit("/data/", 1)[0] + "/data" if re.search(r"/data/\d+$", ptr) else ptr))
        return None
    return (type_, rid) if rel.target is None else rid


def parse_changes(store: OroStore, res: Resource, data: dict[str, Any], pointer: str,
                  switches: dict[str, Any], updating: bool = False) -> tuple[Record, list[dict[str, Any]]]:
    """Attribute and relationship values of a request, with type errors."""
    changes: Record = {}
    errors: list[dict[str, Any]] = []
    extra: list[str] = []
    for name, value in (data.get("attributes") or {}).items():
        attr = res.attr(name)
        if attr is None or not rel_enabled(attr, switches):
            extra.append(name)
            continue
        if attr.ro:
            continue  # "The read-only field. A passed value will be ignored."
        parsed, problem = _parse_attr(attr, value)
        if problem:
            errors.append(err(400, "form constraint", problem, pointer=f"{pointer}/attributes/{name}"))
        else:
            changes[name] = parsed
    for name, body in (data.get("relationships") or {}).items():
        rel = res.rel(name)
        if rel is None or not rel_enabled(rel, switches):
            extra.append(name)
            continue
        if rel.ro or rel.computed or rel_ignored(rel, switches) or (updating and rel.create_only):
            continue  # read-only: "A passed value will be ignored."
        ptr = f"{pointer}/relationships/{name}/data"
        if not isinstance(body, dict) or "data" not in body:
            errors.append(err(400, "request data constraint", "The 'data' property is required",
                              pointer=f"{pointer}/relationships/{name}"))
            continue
        value = body["data"]
        if rel.many:
            if not isinstance(value, list):
                errors.append(err(400, "request data constraint", "The 'data' property should be "
                                                                  "an array", pointer=ptr))
                continue
            ids = [_parse_linkage(store, rel, item, f"{ptr}/{i}", errors) for i, item in enumerate(value)]
            changes[name] = [i for i in dict.fromkeys(ids) if i is not None]
        else:
            changes[name] = None if value is None else _parse_linkage(store, rel, value, ptr, errors)
    if extra:
        quoted = ", ".join(f'"{n}"' for n in extra)
        errors.append(err(400, "extra fields constraint", f"This form should not contain extra fields: {quoted}."))
    return changes, errors


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == []


def validate(store: OroStore, res: Resource, rec: Record, changed: set[str], pointer: str, rid: Any,
             creating: bool) -> list[dict[str, Any]]:
    """Constraint checks on the resulting record (``changed`` limits update checks)."""
    errors: list[dict[str, Any]] = []

    def check(name: str) -> bool:
        return creating or name in changed

    for attr in res.attrs:
        if not check(attr.name) or attr.ro:
            continue
        value = rec.get(attr.name)
        ptr = f"{pointer}/attributes/{attr.name}"
        if attr.required and _blank(value):
            errors.append(err(400, *NOT_BLANK, pointer=ptr))
            continue
        if isinstance(value, str):
            if attr.max_length and len(value) > attr.max_length:
                errors.append(err(400, "length constraint",
                                  f"This value is too long. It should have {attr.max_length} characters or less.",
                                  pointer=ptr))
            if attr.regex and not re.match(attr.regex, value):
                errors.append(err(400, "regex constraint", "This value is not valid.", pointer=ptr))
            if attr.choices and value not in attr.choices:
                errors.append(err(400, "choice constraint", "The value you selected is not a "
                                                            "valid choice.", pointer=ptr))
    errors.extend(
        err(400, *NOT_BLANK, pointer=f"{pointer}/relationships/{rel.name}/data")
        for rel in res.rels if rel.required and check(rel.name) and _blank(rec.get(rel.name))
    )
    errors.extend(_specific(store, res, rec, changed, pointer, rid, creating))
    # Checked last and only on an otherwise valid user, as the reference's four-error example shows.
    if not errors and res.type == "customerusers" and (creating or changed & {"enabled", "userRoles"}) \
            and rec.get("enabled") and not rec.get("userRoles"):
        errors.append(err(400, "customer user check role constraint",
                          "Please select at least one role before you enable the customer user"))
    return errors


def _specific(store: OroStore, res: Resource, rec: Record, changed: set[str], pointer: str, rid: Any,
              creating: bool) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    t = res.type
    attr_ptr = f"{pointer}/attributes"
    if t == "customerusers" and (creating or changed & {"email", "isGuest"}):
        email = rec.get("email")
        if isinstance(email, str) and email:
            if not _EMAIL.match(email):
                errors.append(err(400, "email constraint", "This value is not a valid email address.",
                                  pointer=f"{attr_ptr}/email"))
            elif not rec.get("isGuest"):
                others = [u for u in store.find_users_by_email(email)
                          if u != rid and not store.table("customerusers").value(u, "isGuest")]
                if others:
                    errors.append(err(400, "unique customer user name and email constraint",
                                      "This email is already used.", pointer=f"{attr_ptr}/email"))
    unique = {"campaigns": "code", "products": "sku", "tags": "name", "orders": "identifier"}.get(t)
    if unique and (creating or unique in changed):
        value = rec.get(unique)
        if value not in (None, "") and any(o != rid for o in find_by(store, t, unique, value)):
            errors.append(err(400, "unique entity constraint", "This value is already used.",
                              pointer=f"{attr_ptr}/{unique}"))
    if (t == "campaigns" and rec.get("budget") is not None and float(rec["budget"]) < 0
            and (creating or "budget" in changed)):
        errors.append(err(400, "greater than or equal constraint", "This value should be greater than or equal to 0.",
                          pointer=f"{attr_ptr}/budget"))
    if t == "customeruseraddresses" and (creating or changed & {"firstName", "lastName", "organization"}):
        named = not _blank(rec.get("firstName")) and not _blank(rec.get("lastName"))
        if not named and _blank(rec.get("organization")):
            detail = "First Name and Last Name or Organization should not be blank."
            errors.extend(err(400, "name or organization constraint", detail, pointer=f"{attr_ptr}/{f}")
                          for f in ("firstName", "lastName"))
    return errors


def find_by(store: OroStore, type_: str, field: str, value: Any) -> list[Any]:
    """Ids of records whose ``field`` equals ``value`` (small tables scan; orders use the identifier)."""
    tbl = store.table(type_)
    if type_ == "orders":
        out = []
        if isinstance(value, str) and value.isdigit():
            cand = int(value)
            if tbl.exists(cand) and tbl.value(cand, "identifier") == value:
                out.append(cand)
        out.extend(rid for rid, rec in tbl.over.items()
                   if tbl.exists(rid) and rec.get(field) == value and rid not in out)
        return sorted(out)
    return [rid for rid in tbl.ids() if tbl.value(rid, field) == value]


# ---- operations -----------------------------------------------------------------------------
def upsert_fields(res: Resource, data: dict[str, Any], pointer: str) -> tuple[str, ...] | None:
    """Validated ``meta.upsert`` of a create request (None = plain create)."""
    meta = data.get("meta")
    flag = meta.get("upsert") if isinstance(meta, dict) else None
    if flag is None or flag is False:
        return None
    if not res.upsert_fields:
        raise fail(400, "value constraint", "The upsert operation is not allowed.", pointer=pointer)
    if flag is True:
        raise fail(400, "value constraint", "The upsert operation cannot use the entity identifier to find an entity.",
                   pointer=pointer)
    if not isinstance(flag, list) or not all(isinstance(f, str) for f in flag) or not flag:
        raise fail(400, "value constraint", "The upsert operation is not supported.", pointer=pointer)
    fields = tuple(flag)
    if fields not in res.upsert_fields:
        detail = ("The upsert operation cannot use this field to find an entity." if len(fields) == 1
                  else "The upsert operation cannot use these fields to find an entity.")
        raise fail(400, "value constraint", detail, pointer=pointer)
    return fields


def create(store: OroStore, res: Resource, data: Any, switches: dict[str, Any], pointer: str = "/data",
           upsert_pointer: str = "/meta/upsert") -> Outcome:
    """POST semantics (including ``meta.upsert``)."""
    check_primary(res, data, pointer, need_id=False)
    fields = upsert_fields(res, data, upsert_pointer)
    if fields is not None:
        attrs = data.get("attributes") or {}
        matches = list(find_by(store, res.type, fields[0], attrs.get(fields[0]))) if fields[0] in attrs else []
        if len(matches) > 1:
            raise fail(409, "conflict constraint", "The upsert operation founds more than one entity.")
        if matches:
            update(store, res, matches[0], {**data, "id": str(matches[0])}, switches, pointer, check=False)
            return Outcome(matches[0], False)
    if "id" in data:
        rid = store.parse_id(res.type, str(data["id"]))
        if rid is not None and store.get(res.type, rid) is not None:
            raise fail(409, "conflict constraint", "The entity already exists.", pointer=f"{pointer}/id")
    changes, errors = parse_changes(store, res, data, pointer, switches)
    rec: Record = {**DEFAULTS.get(res.type, {}), **changes}
    if errors:
        raise ApiError(400, errors)
    errors = validate(store, res, rec, set(changes), pointer, None, creating=True)
    if errors:
        raise ApiError(400, errors)
    rec.pop("password", None)
    if res.type == "consentacceptances" and find_acceptance(store, rec["customerUser"], rec["consent"]):
        # the (consent, customerUser) unique index: Oro answers the flush's violation with 409
        raise fail(409, "conflict constraint", "The entity already exists.")
    now = store.now()
    if res.type in TIMESTAMPED:
        rec["createdAt"] = rec["updatedAt"] = now
    elif res.type == "consentacceptances":
        rec["createdAt"] = now  # CreatedAtAwareTrait: set on persist
    tbl = store.table(res.type)
    rid = tbl.create(rec)
    _after_write(store, res, rid, None, rec, now)
    return Outcome(rid, True)


def update(store: OroStore, res: Resource, rid: Any, data: Any, switches: dict[str, Any], pointer: str = "/data",
           url_id: str | None = None, check: bool = True) -> bool:
    """PATCH semantics; returns True when something changed (then ``updatedAt`` moves)."""
    if check:
        check_primary(res, data, pointer, need_id=True, url_id=url_id)
        meta = data.get("meta")
        if isinstance(meta, dict) and meta.get("upsert") not in (None, False):
            raise fail(400, "value constraint",
                       "The upsert operation is not supported for resources with auto-generated identifier value.",
                       pointer="/meta/upsert" if pointer == "/data" else f"{pointer}/meta/upsert")
    tbl = store.table(res.type)
    old = tbl.get(rid)
    if old is None:
        raise fail(404, "not found http exception", "An entity with the requested identifier does not exist.")
    changes, errors = parse_changes(store, res, data, pointer, switches, updating=True)
    if errors:
        raise ApiError(400, errors)
    changes.pop("password", None)
    return apply_changes(store, res, rid, old, changes, pointer)


def apply_changes(store: OroStore, res: Resource, rid: Any, old: Record, changes: Record, pointer: str) -> bool:
    """Validate and store ``changes``; no write (and no ``updatedAt`` move) when nothing differs."""
    changed = {k for k, v in changes.items() if old.get(k) != v}
    if not changed:
        return False
    new = {**old, **{k: changes[k] for k in changed}}
    errors = validate(store, res, new, changed, pointer, rid, creating=False)
    if errors:
        raise ApiError(400, errors)
    now = store.now()
    if res.type in TIMESTAMPED:
        new["updatedAt"] = now
    store.table(res.type).put(rid, new)
    _after_write(store, res, rid, old, new, now)
    return True


def find_acceptance(store: OroStore, user: Any, consent: Any) -> int | None:
    """The id of ``user``'s acceptance of ``consent``, or None."""
    acceptances = store.table("consentacceptances")
    return next((a for a in acceptances.children("customerUser", user)
                 if acceptances.value(a, "consent") == consent), None)


def _customer_has_assignments(store: OroStore, cid: Any) -> bool:
    """Oro's CustomerAssignHelper: records whose to-one relation to the customer is not ON DELETE
    CASCADE (its users, orders, shopping lists) keep a customer from being deleted."""
    if store.table("customerusers").children("customer", cid):
        return True
    for name in ("orders", "shoppinglists"):
        tbl = store.table(name)
        col = tbl.cols["customer"]
        if any(tbl.exists(i + 1) for i, value in enumerate(col) if value == cid):
            return True
    return False


def check_delete(store: OroStore, res: Resource, rid: Any) -> None:
    """Oro's delete-handler checks: a customer (account) that still has users, orders or shopping
    lists cannot be deleted (403, as CustomerDeleteHandlerExtension answers); delete them first."""
    if res.type == "customers" and store.table("customers").exists(rid) and _customer_has_assignments(store, rid):
        raise fail(403, "access denied exception",
                   "The delete operation is forbidden. Reason: has associations to other entities.")


def delete(store: OroStore, res: Resource, rid: Any) -> None:
    """DELETE with Oro's checks and cascades (a user's addresses and consent acceptances, an
    order's line items)."""
    tbl = store.table(res.type)
    old = tbl.get(rid)
    if old is None:
        raise fail(404, "not found http exception", "An entity with the requested identifier does not exist.")
    check_delete(store, res, rid)
    now = store.now()
    if res.type == "customerusers":
        for aid in store.table("customeruseraddresses").children("customerUser", rid):
            store.table("customeruseraddresses").delete(aid)
        # oro_consent_acceptance.customerUser_id is ON DELETE CASCADE
        for aid in store.table("consentacceptances").children("customerUser", rid):
            store.table("consentacceptances").delete(aid)
    elif res.type == "orders":
        for iid in store.table("orderlineitems").children("orders", rid):
            store.table("orderlineitems").delete(iid)
        addresses = store.table("orderaddresses")
        for aid in {old.get("billingAddress"), old.get("shippingAddress")} - {None}:
            if addresses.exists(aid):
                addresses.delete(aid)
    elif res.type == "tags":
        users = store.table("customerusers")
        for uid in users.children("tags", rid):
            rec = users.get(uid)
            apply_changes(store, RESOURCES["customerusers"], uid, rec,
                          {"tags": [t for t in rec.get("tags") or [] if t != rid]}, "/data")
    tbl.delete(rid)
    if res.type == "orderlineitems":
        _recalc_orders(store, _as_ids(old.get("orders")), now)


def _as_ids(value: Any) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _after_write(store: OroStore, res: Resource, rid: Any, old: Record | None, new: Record, now: int) -> None:
    t = res.type
    if t == "customerusers":
        store.index_email(rid, new)
    elif t == "orders":
        if not new.get("identifier"):
            store.table("orders").put(rid, {**new, "identifier": str(rid)})
        _recalc_orders(store, [rid], now)  # UpdateOrderTotals: totals follow shipping cost and discounts
    elif t == "orderlineitems":
        _recalc_orders(store, _as_ids(new.get("orders")) + _as_ids(old.get("orders") if old else None), now)
    elif t == "customeruseraddresses" and new.get("primary"):
        addrs = store.table("customeruseraddresses")
        for aid in addrs.children("customerUser", new.get("customerUser")):
            other = addrs.get(aid)
            if aid != rid and other and other.get("primary"):
                addrs.put(aid, {**other, "primary": False, "updatedAt": now})


def _recalc_orders(store: OroStore, order_ids: list[int], now: int) -> None:
    orders = store.table("orders")
    items = store.table("orderlineitems")
    for oid in dict.fromkeys(order_ids):
        order = orders.get(oid)
        if order is None:
            continue
        subtotal = 0.0
        for iid in items.children("orders", oid):
            item = items.get(iid) or {}
            subtotal += float(item.get("quantity") or 0) * float(item.get("value") or 0)
        discount = float(order.get("totalDiscountsAmount") or 0)
        shipping = float(order.get("overriddenShippingCostAmount") or order.get("estimatedShippingCostAmount") or 0)
        new = {**order, "subtotalValue": f"{subtotal:.4f}", "totalValue": f"{subtotal - discount + shipping:.4f}"}
        if new != order:
            new["updatedAt"] = now
            orders.put(oid, new)


def relationship_write(store: OroStore, res: Resource, rid: Any, rel: Rel, method: str, body: Any,
                       switches: dict[str, Any] | None = None) -> None:
    """POST (add) / DELETE (remove) / PATCH (replace) ``…/relationships/{rel}``."""
    if not isinstance(body, dict) or "data" not in body:
        raise fail(400, "request data constraint", "The primary data object should exist", pointer="/data")
    if switches is not None and rel_ignored(rel, switches):
        return  # the form field is not mapped: accepted, nothing changes
    data = body["data"]
    errors: list[dict[str, Any]] = []
    old = store.table(res.type).get(rid)
    if old is None:
        raise fail(404, "not found http exception", "An entity with the requested identifier does not exist.")
    if rel.many:
        if not isinstance(data, list):
            raise fail(400, "request data constraint", "The primary data object collection should be an array",
                       pointer="/data")
        ids = [_parse_linkage(store, rel, item, f"/data/{i}", errors) for i, item in enumerate(data)]
        if errors:
            raise ApiError(400, errors)
        current = _as_ids(old.get(rel.name))
        wanted = [i for i in ids if i is not None]
        if method == "POST":
            new_ids = current + [i for i in wanted if i not in current]
        elif method == "DELETE":
            new_ids = [i for i in current if i not in wanted]
        else:
            new_ids = list(dict.fromkeys(wanted))
        apply_changes(store, res, rid, old, {rel.name: new_ids}, "/data")
        return
    value = None if data is None else _parse_linkage(store, rel, data, "/data", errors)
    if errors:
        raise ApiError(400, errors)
    apply_changes(store, res, rid, old, {rel.name: value}, "/data")
