"""The Oro store: tables, OAuth clients and tokens, marketing lists, async operations."""

from __future__ import annotations

import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from .pools import build_pools
from .schema import RESOURCES, Rel, rel_ignored
from .seed import Seeder
from .static import StaticTable
from .tables import Record, Table

DEFAULT_CLIENT_ID = "oro-sandbox-client"
DEFAULT_CLIENT_SECRET = "oro-sandbox-client-secret"  # noqa: S105 - a published sandbox credential
DEFAULT_USERNAME = "admin"
DEFAULT_PASSWORD = "admin-sandbox-password"  # noqa: S105 - a published sandbox credential
ACL_VERBS = {"get": "view", "get_list": "view", "view": "view", "create": "create", "update": "edit",
             "update_list": "edit", "edit": "edit", "delete": "delete", "delete_list": "delete"}
_EMAIL_ID = re.compile(r"(\d+)@")
POLYMORPHIC_FIELDS = ("entity", "relatedCampaign")


@dataclass
class Client:
    """An OAuth application (back-office). ``denied`` maps entity type -> denied ACL verbs."""

    client_id: str
    secret: str
    grants: tuple[str, ...] = ("client_credentials", "password")
    denied: dict[str, set[str]] = field(default_factory=dict)
    old_api: bool = True  # "Supported APIs" includes the old REST API

    def allows(self, type_: str, action: str) -> bool:
        """False when the client's role lacks the permission ``action`` needs on ``type_``."""
        denied = self.denied.get(type_, set())
        verb = ACL_VERBS.get(action, action)
        if action == "create" and "view" in denied:
            return False
        if verb == "edit" and "view" in denied:
            return False
        return verb not in denied


@dataclass
class Token:
    """An issued access token."""

    client_id: str
    expires: float
    username: str | None = None


class OroStore:
    """All Oro data of a sandbox. Build with :func:`create_store` or :meth:`load`."""

    def __init__(self, seed: int, customers: int, clock: Any, epoch: int | None = None) -> None:
        self.seed = seed
        self.customers = customers
        self.clock = clock
        self.epoch = epoch if epoch is not None else int(clock.now().timestamp())
        self.pools = build_pools(seed)
        self.seeder = Seeder(self, self.pools)
        self.tables: dict[str, Any] = {}
        self.tables = self.seeder.build(customers)
        self.clients: dict[str, Client] = {
            DEFAULT_CLIENT_ID: Client(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
        }
        self.backoffice_users = {DEFAULT_USERNAME: DEFAULT_PASSWORD}
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, Token] = {}
        self.email_index: dict[str, set[int]] = {}
        self.async_errors: dict[int, list[dict[str, Any]]] = {}
        self.marketing_lists: dict[int, dict[str, Any]] = {}
        self.list_items: dict[int, tuple[int, int]] = {}  # unsubscribed item id -> (list id, entity id)
        self.next_item_id = 1
        self.query_cache: OrderedDict[tuple[Any, ...], list[Any]] = OrderedDict()
        self._seed_marketing_lists()

    # ---- helpers -------------------------------------------------------------------------
    def now(self) -> int:
        """Sandbox time in epoch seconds."""
        return int(self.clock.now().timestamp())

    def version(self) -> int:
        """Changes whenever any table changes (cache key for list queries)."""
        return sum(tbl.version for tbl in self.tables.values())

    def table(self, type_: str) -> Any:
        """The table of a resource type."""
        return self.tables[type_]

    def parse_id(self, type_: str, raw: str) -> Any:
        """URL/body id -> storage id (int, or str for string-id tables); None if malformed."""
        if type_ == "ordersubtotals":
            return raw
        tbl = self.tables.get(type_)
        if isinstance(tbl, StaticTable) and not tbl.int_ids:
            return raw
        if raw.isdigit() and len(raw) < 12:
            return int(raw)
        return None

    def get(self, type_: str, rid: Any) -> Record | None:
        """A record or None."""
        if type_ == "ordersubtotals":
            return self.order_subtotal(rid)
        tbl = self.tables.get(type_)
        return None if tbl is None or rid is None else tbl.get(rid)

    def related_ids(self, type_: str, rel: Rel, rid: Any, rec: Record,
                    switches: dict[str, Any] | None = None) -> Any:
        """The raw value of a relationship: id, None, list of ids, or (type, id) pairs.

        A relationship whose switch makes it "ignored" (see ``Rel.ignored``) reads as null/empty.
        """
        if switches is not None and rel_ignored(rel, switches):
            return [] if rel.many else None
        if type_ == "orders" and rel.name == "orderSubtotals":
            return [sid for sid, _ in self.order_subtotals(rid, rec)]
        if rel.computed and rel.inverse is not None:
            table_name, fld = rel.inverse
            ids = self.tables[table_name].children(fld, rid)
            if rel.target is None:
                return [(table_name, i) for i in ids]
            return ids
        value = rec.get(rel.name)
        if rel.many:
            if value is None:
                return []
            return value if isinstance(value, list) else [value]
        return value

    # ---- order subtotals (computed, as Oro's OrderSubtotal API model) ---------------------
    def order_subtotals(self, order_id: Any, order: Record | None = None) -> list[tuple[str, Record]]:
        """``[(id, record)]``: subtotal, discount and shipping cost of an order (ids ``<order>-<type>-<n>``).

        Shaped after get_order_subtotals.yml (orocommerce OrderBundle functional tests); taxes are
        not modelled.
        """
        order = order if order is not None else self.get("orders", order_id)
        if order is None:
            return []
        currency = order.get("currency") or "USD"
        subtotal = float(order.get("subtotalValue") or 0)
        discount = float(order.get("totalDiscountsAmount") or 0)
        shipping = float(order.get("overriddenShippingCostAmount") or order.get("estimatedShippingCostAmount") or 0)
        rows = (("subtotal", "Subtotal", subtotal, subtotal, True), ("discount", "Discount", discount, -discount,
                discount > 0), ("shipping_cost", "Shipping", shipping, shipping, shipping > 0))
        out = []
        for n, (kind, label, amount, signed, visible) in enumerate(rows):
            out.append((f"{order_id}-{kind}-{n}", {
                "orderSubtotalType": kind, "label": label, "amount": f"{amount:.4f}",
                "signedAmount": f"{signed:.4f}", "currency": currency, "visible": visible, "data": [],
                "order": order_id, "priceList": None,
            }))
        return out

    def order_subtotal(self, sid: Any) -> Record | None:
        """One computed order subtotal by its id."""
        head = str(sid).split("-", 1)[0]
        if not head.isdigit():
            return None
        return dict(self.order_subtotals(int(head))).get(str(sid))

    def find_users_by_email(self, email: str) -> list[int]:
        """Live customer users whose e-mail equals ``email`` (case-sensitive, as Oro's default)."""
        users: Table = self.tables["customerusers"]
        found = {rid for rid in self.email_index.get(email, ()) if users.exists(rid)}
        m = _EMAIL_ID.search(email)
        if m:
            cand = int(m.group(1))
            if cand <= users.seeded and users.exists(cand) and cand not in users.over:
                found.add(cand)
        return sorted(rid for rid in found if users.value(rid, "email") == email)

    def index_email(self, rid: int, rec: Record) -> None:
        """Remember a written e-mail (entries are verified on lookup, so stale ones are harmless)."""
        email = rec.get("email")
        if isinstance(email, str):
            self.email_index.setdefault(email, set()).add(rid)

    # ---- transactions --------------------------------------------------------------------
    def begin(self) -> None:
        """Start an atomic unit over every table."""
        for tbl in self.tables.values():
            tbl.begin()

    def commit(self) -> None:
        """Keep the unit's writes."""
        for tbl in self.tables.values():
            tbl.commit()

    def rollback(self) -> None:
        """Undo the unit's writes."""
        for tbl in self.tables.values():
            tbl.rollback()

    # ---- OAuth ---------------------------------------------------------------------------
    def issue_token(self, client_id: str, ttl: int, username: str | None = None) -> str:
        """A new opaque access token."""
        token = secrets.token_urlsafe(48)
        self.tokens[token] = Token(client_id, self.clock.now().timestamp() + ttl, username)
        return token

    def issue_refresh_token(self, client_id: str, username: str) -> str:
        """A new refresh token (30 days)."""
        token = secrets.token_urlsafe(48)
        self.refresh_tokens[token] = Token(client_id, self.clock.now().timestamp() + 2592000, username)
        return token

    def revoke_tokens(self) -> dict[str, int]:
        """Revoke every access and refresh token issued (as an admin revoking an OAuth app's
        tokens would): the next API call with one of them gets Oro's 401. Returns the counts."""
        revoked = {
            "revoked_access_tokens": len(self.tokens),
            "revoked_refresh_tokens": len(self.refresh_tokens),
        }
        self.tokens.clear()
        self.refresh_tokens.clear()
        return revoked

    def check_token(self, token: str) -> Client | None:
        """The client of a valid, unexpired token."""
        entry = self.tokens.get(token)
        if entry is None:
            return None
        if entry.expires <= self.clock.now().timestamp():
            self.tokens.pop(token, None)
            return None
        return self.clients.get(entry.client_id)

    # ---- marketing lists (old REST) ------------------------------------------------------
    def _seed_marketing_lists(self) -> None:
        users: Table = self.tables["customerusers"]
        self.marketing_lists = {
            1: {"name": "Newsletter subscribers", "entity": "customerusers", "unsubscribed": {}},
            2: {"name": "B2B buyers (all customer users)", "entity": "customerusers", "unsubscribed": {}},
        }
        step = 37
        for rid in range(step, min(users.n, step * 40) + 1, step):
            self.unsubscribe(1, rid)

    def unsubscribe(self, list_id: int, entity_id: int) -> int:
        """Create a MarketingListUnsubscribedItem; returns its id."""
        item_id = self.next_item_id
        self.next_item_id += 1
        self.marketing_lists[list_id]["unsubscribed"][entity_id] = item_id
        self.list_items[item_id] = (list_id, entity_id)
        return item_id

    def resubscribe(self, list_id: int, entity_id: int) -> bool:
        """Delete the unsubscribed item; False when there was none."""
        item_id = self.marketing_lists[list_id]["unsubscribed"].pop(entity_id, None)
        if item_id is None:
            return False
        self.list_items.pop(item_id, None)
        return True

    # ---- introspection -------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Counts per resource and other facts for `/_sandbox/oro/summary`."""
        return {
            "counts": {name: len(tbl) for name, tbl in sorted(self.tables.items()) if name in RESOURCES},
            "seed": self.seed,
            "customers_option": self.customers,
            "clients": sorted(self.clients),
            "marketing_lists": {
                str(i): {"name": ml["name"], "unsubscribed": len(ml["unsubscribed"])}
                for i, ml in self.marketing_lists.items()
            },
        }

    def marketing_contacts(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Customer users as marketing contacts (for other emulators that want overlapping data)."""
        users: Table = self.tables["customerusers"]
        out = []
        for rid in users.ids():
            rec = users.get(rid)
            if rec is None or rec.get("isGuest"):
                continue
            out.append({"id": rid, "email": rec["email"], "firstName": rec["firstName"],
                        "lastName": rec["lastName"], "enabled": rec["enabled"]})
            if limit is not None and len(out) >= limit:
                break
        return out

    # ---- persistence ---------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        """JSON-able deltas over the deterministic seed."""
        tables: dict[str, Any] = {}
        for name, tbl in self.tables.items():
            if isinstance(tbl, StaticTable):
                tables[name] = {"static": True, "next_id": tbl.next_id,
                                "rows": [[rid, _jsonable(rec)] for rid, rec in tbl.rows.items()]}
            else:
                dead = [i + 1 for i in range(tbl.n) if not tbl.alive[i]]
                tables[name] = {"n": tbl.n, "deleted": dead,
                                "over": [[rid, _jsonable(rec)] for rid, rec in tbl.over.items()]}
        return {
            "seed": self.seed, "customers": self.customers, "epoch": self.epoch, "tables": tables,
            "clients": [{"client_id": c.client_id, "secret": c.secret, "grants": list(c.grants),
                         "denied": {k: sorted(v) for k, v in c.denied.items()}, "old_api": c.old_api}
                        for c in self.clients.values()],
            "marketing_lists": {str(k): {"name": v["name"], "entity": v["entity"],
                                         "unsubscribed": [[e, i] for e, i in v["unsubscribed"].items()]}
                                for k, v in self.marketing_lists.items()},
            "async_errors": {str(k): v for k, v in self.async_errors.items()},
        }

    @classmethod
    def load(cls, data: dict[str, Any], options: Any, clock: Any) -> OroStore:
        """Rebuild a store from :meth:`dump` output."""
        store = cls(int(data["seed"]), int(data["customers"]), clock, epoch=int(data["epoch"]))
        for name, saved in data["tables"].items():
            tbl = store.tables.get(name)
            if tbl is None:
                continue
            if saved.get("static"):
                tbl.rows = {_key(tbl, rid): _restore(rec) for rid, rec in saved["rows"]}
                tbl.over = tbl.rows
                tbl.next_id = int(saved["next_id"])
                continue
            _restore_table(tbl, int(saved["n"]), saved["deleted"], saved["over"])
        for rid, rec in store.tables["customerusers"].over.items():
            store.index_email(rid, rec)
        store.clients = {
            c["client_id"]: Client(c["client_id"], c["secret"], tuple(c["grants"]),
                                   {k: set(v) for k, v in c["denied"].items()}, bool(c.get("old_api", True)))
            for c in data["clients"]
        }
        store.marketing_lists = {}
        store.list_items = {}
        for key, ml in data["marketing_lists"].items():
            store.marketing_lists[int(key)] = {"name": ml["name"], "entity": ml["entity"], "unsubscribed": {}}
            for entity_id, item_id in ml["unsubscribed"]:
                store.marketing_lists[int(key)]["unsubscribed"][int(entity_id)] = int(item_id)
                store.list_items[int(item_id)] = (int(key), int(entity_id))
        store.next_item_id = max(store.list_items, default=0) + 1
        store.async_errors = {int(k): v for k, v in data.get("async_errors", {}).items()}
        return store


def _jsonable(rec: Record) -> Record:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in rec.items()}


def _restore(rec: Record) -> Record:
    out = dict(rec)
    for name in POLYMORPHIC_FIELDS:
        if isinstance(out.get(name), list):
            out[name] = tuple(out[name])
    return out


def _key(tbl: StaticTable, rid: Any) -> Any:
    return int(rid) if tbl.int_ids else rid


def _restore_table(tbl: Table, n: int, deleted: list[int], over: list[list[Any]]) -> None:
    while tbl.n < n:
        tbl.n += 1
        tbl.alive.append(1)
        for col in tbl.cols.values():
            col.append(0)
    for rid, rec in over:
        rid = int(rid)
        old = tbl.get(rid) if rid <= tbl.seeded else None
        tbl._store(rid, _restore(rec), old)
    for rid in deleted:
        old = tbl.get(rid)
        if old is not None:
            tbl.alive[rid - 1] = 0
            tbl.deleted += 1
            tbl._reindex(rid, old, None)
    tbl.version += 1


def create_store(options: Any, clock: Any) -> OroStore:
    """Seed a store from the options (deterministic from ``options.seed``)."""
    return OroStore(int(options.seed), int(options.customers), clock)


def create_store_from_dump(data: dict[str, Any], options: Any, clock: Any) -> OroStore:
    """Rebuild a store saved with :meth:`OroStore.dump`."""
    return OroStore.load(data, options, clock)
