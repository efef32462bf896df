"""The denormalised ``contacts`` stream (DESIGN.md section 3): one row per customer user.

``updated_at`` of a contact is the latest of: the user's ``updatedAt``, the ``updatedAt`` of any of
the user's addresses (phone), the customer's ``updatedAt`` (account name, group assignment), and
the moment a change of the customer group's name or of a tag's name was first seen (Oro keeps no
timestamp on groups; names are fingerprinted in this stream's state). So a contact is emitted again
whenever any value it carries moves, and only then. Marketing consent comes from ``consent_source``
(``consent.py``); its ``consent_changed_at`` joins those timestamps, so a consent change (including
a withdrawn acceptance) re-emits the contact. With ``contact_order_stats`` on, every order is read
once per run (customerUser, totalValue, currency, status, dates) for the purchase-history fields;
the latest ``updatedAt`` of the user's orders joins the timestamps, so a new, changed or cancelled
order re-emits its buyer's contact (and nobody else's). At the end of each complete scan, customer users the
stream emitted before and that no longer exist are reported once as erase rows (``deletions.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from itertools import groupby
from operator import itemgetter
from typing import Any, ClassVar

import requests
from oromc_common.oro import format_oro_datetime, parse_oro_datetime
from singer_sdk import typing as th
from singer_sdk.helpers.types import Context
from typing_extensions import override

from tap_orocommerce.client import MODE_SCAN, Field, OroStream, fingerprint, server_now
from tap_orocommerce.consent import consent_reader
from tap_orocommerce.deletions import DeletionTracker
from tap_orocommerce.ecommerce import REFUNDED, financial_status, refunded_statuses

LOOKUPS = "lookups"
CANCELLED = "cancelled"
"""Oro internal order status left out of orders_count and total_spent (the order still re-emits);
so are refunded orders (``refunded_order_statuses``)."""
ORDER_FIELDS = [
    "customerUser", "currency", "totalValue", "createdAt", "updatedAt", "internalStatus", "status",
]  # fmt: skip


class _OrderStats:
    """Purchase history of one customer user (orders neither cancelled nor refunded)."""

    __slots__ = ("count", "first", "last", "last_id", "last_product", "total", "updated")

    def __init__(self) -> None:
        self.count = 0
        self.total = Decimal(0)
        self.first: str | None = None
        self.last: str | None = None
        self.last_id = 0  # Oro id of the latest order (the highest id among equal createdAt)
        self.last_product: str | None = None
        self.updated = ""

    def average(self) -> float:
        """Average order value (0 without orders), rounded to cents."""
        return float(round(self.total / self.count, 2)) if self.count else 0.0


class _Address:
    """The primary address of one customer user (the lowest id among primary ones)."""

    __slots__ = ("address_id", "city", "country", "phone", "postal_code", "region", "street", "street2")

    def __init__(self, address_id: int, attrs: dict[str, Any], rels: dict[str, Any]) -> None:
        def rel_id(name: str) -> str | None:
            ref = (rels.get(name) or {}).get("data")
            return str(ref["id"]) if isinstance(ref, dict) else None

        self.address_id = address_id
        self.phone: str | None = attrs.get("phone")
        self.city: str | None = attrs.get("city")
        self.street: str | None = attrs.get("street")
        self.street2: str | None = attrs.get("street2")
        self.postal_code: str | None = attrs.get("postalCode")
        self.country = rel_id("country")
        self.region = rel_id("region") or attrs.get("customRegion") or None

    def mailchimp(self) -> dict[str, Any] | None:
        """The address as Mailchimp's address merge type has it (state: the region code after the
        country, e.g. ``CA`` of ``US-CA``); None unless street, city, region and postal code are set
        (Mailchimp requires addr1, city, state and zip)."""
        state = self.region.split("-", 1)[-1] if self.region else None
        if not (self.street and self.city and state and self.postal_code):
            return None
        return {
            "addr1": self.street, "addr2": self.street2 or "", "city": self.city, "state": state,
            "zip": self.postal_code, "country": self.country or "",
        }  # fmt: skip


class ContactsStream(OroStream):
    """Marketing view of customer users: contact info, account, group, tags, flags."""

    name = "contacts"
    resource = "customerusers"
    replication_key = "updated_at"
    default_mode = MODE_SCAN
    primary_keys: ClassVar[list[str]] = ["customer_user_id"]
    columns: ClassVar[tuple[Field, ...]] = ()
    user_fields: ClassVar[tuple[str, ...]] = (
        "email", "firstName", "lastName", "enabled", "confirmed", "isGuest", "birthday",
        "createdAt", "updatedAt", "customer",
    )  # fmt: skip

    def __init__(self, tap: Any) -> None:
        self.tagging = True
        self._groups: dict[int, str] = {}
        self._group_changed: dict[int, str] = {}
        self._customers: dict[int, tuple[str | None, int | None, str]] = {}
        self._addresses: dict[int, tuple[str, _Address | None]] = {}
        self._orders: dict[int, _OrderStats] | None = None
        self._tags: dict[int, str] = {}
        self._tag_changed: dict[int, str] = {}
        self._new_lookups: dict[str, dict[str, list[Any]]] = {}
        self.consent = consent_reader(tap.config)
        self._deletions: DeletionTracker | None = None
        self._last_page_time: str | None = None
        super().__init__(tap)

    @classmethod
    @override
    def build_schema(cls) -> dict[str, Any]:
        return th.PropertiesList(
            th.Property("customer_user_id", th.IntegerType(), required=True,
                        description="Oro customer user id (primary key)."),
            th.Property("email", th.StringType(),
                        description="Email address (null only on an erase row)."),
            th.Property("first_name", th.StringType()),
            th.Property("last_name", th.StringType()),
            th.Property("phone", th.StringType(), description="Phone of the primary address."),
            th.Property("primary_address_id", th.IntegerType(),
                        description="Oro id of the primary address (where the phone lives)."),
            th.Property("country", th.StringType(),
                        description="ISO 3166-1 alpha-2 country of the primary address."),
            th.Property("city", th.StringType(), description="City of the primary address."),
            th.Property("region", th.StringType(),
                        description="Region of the primary address: Oro region id (ISO 3166-2, e.g. "
                                    "US-CA), else its custom region text."),
            th.Property("address", th.ObjectType(
                th.Property("addr1", th.StringType()), th.Property("addr2", th.StringType()),
                th.Property("city", th.StringType()), th.Property("state", th.StringType()),
                th.Property("zip", th.StringType()), th.Property("country", th.StringType()),
            ), description="Primary address in Mailchimp's address merge shape (state = region "
                           "code); null unless street, city, region and postal code are set."),
            th.Property("birthday", th.DateType(), description="Customer user birthday (YYYY-MM-DD)."),
            th.Property("orders_count", th.IntegerType(),
                        description="Orders of this customer user, cancelled and refunded ones left "
                                    "out (null: contact_order_stats is off)."),
            th.Property("total_spent", th.NumberType(),
                        description="Sum of the totalValue of those orders in price_currency "
                                    "(null: contact_order_stats is off)."),
            th.Property("first_order_date", th.DateTimeType(),
                        description="createdAt of the first of those orders (null: none)."),
            th.Property("last_order_date", th.DateTimeType(),
                        description="createdAt of the latest of those orders (null: none)."),
            th.Property("average_order_value", th.NumberType(),
                        description="total_spent / orders_count, rounded to cents; 0 without orders "
                                    "(null: contact_order_stats is off)."),
            th.Property("last_product", th.StringType(),
                        description="Product name of the first line of the latest order (null: "
                                    "none, or contact_last_product is off)."),
            th.Property("customer_id", th.IntegerType(), description="Oro customer (account) id."),
            th.Property("customer_name", th.StringType(), description="Account name."),
            th.Property("customer_group_id", th.IntegerType()),
            th.Property("customer_group_name", th.StringType(), description="Customer group name."),
            th.Property("tags", th.ArrayType(th.StringType()), required=True,
                        description="Oro tag names of the customer user (sorted)."),
            th.Property("enabled", th.BooleanType()),
            th.Property("confirmed", th.BooleanType()),
            th.Property("is_guest", th.BooleanType()),
            th.Property("created_at", th.DateTimeType()),
            th.Property("marketing_consent", th.BooleanType(),
                        description="Marketing consent recorded in Oro (consent_source): true, false, "
                                    "or null when there is no source or nothing is recorded."),
            th.Property("consent_changed_at", th.DateTimeType(),
                        description="When marketing_consent took its value, or an upper bound of it "
                                    "(see README); null with marketing_consent null."),
            th.Property("erase", th.BooleanType(),
                        description="true: the customer user was deleted in Oro (only "
                                    "customer_user_id and updated_at are set)."),
            th.Property("updated_at", th.DateTimeType(), required=True,
                        description="Latest change of any value carried by this row."),
        ).to_dict()  # fmt: skip

    @override
    def sparse_fields(self) -> list[str]:
        names = list(self.user_fields)
        if self.tagging:
            names.append("tags")
        return names + self.consent.user_fields()

    @override
    def base_params(self) -> dict[str, Any]:
        return {**super().base_params(), **self.consent.params()}

    # -- lookups ----------------------------------------------------------------------------

    @override
    def prepare_sync(self) -> None:
        super().prepare_sync()
        self.consent.start(self.stream_state)
        self._deletions = DeletionTracker(
            self.stream_state, str(self.config.get("deletion_check") or "auto") == "auto"
        )
        old = self.stream_state.get(LOOKUPS) or {}
        changed_at = self._change_stamp()
        self._new_lookups = {"groups": {}, "tags": {}}

        self._groups, self._tags, self._customers, self._addresses = {}, {}, {}, {}
        orders: dict[int, _OrderStats] = {}
        readers: list[tuple[str, list[str], Callable[[Iterable[dict[str, Any]]], None]]] = [
            ("customergroups", ["name"], partial(self._read_names, self._groups)),
        ]
        if self.tagging:
            readers.append(("tags", ["name"], partial(self._read_names, self._tags)))
        readers += [
            ("customers", ["name", "updatedAt", "group"], self._read_customers),
            ("customeruseraddresses",
             ["phone", "primary", "updatedAt", "customerUser", "city", "country", "region",
              "street", "street2", "postalCode", "customRegion"],
             self._read_addresses),
        ]  # fmt: skip
        if self.config.get("contact_order_stats"):
            readers.append(("orders", ORDER_FIELDS, partial(self._read_orders, orders)))
            if self.config.get("contact_last_product"):
                readers.append(
                    ("orderlineitems", ["productName", "orders"], partial(self._read_last_products, orders))
                )
        # one pass over every lookup (in parallel: their pages through one window), in this order
        items = self.read_lookups([(resource, fields) for resource, fields, _ in readers])
        for index, group in groupby(items, key=itemgetter(0)):
            readers[index][2](item for _, item in group)
        self._group_changed = self._track_changes("groups", self._groups, old, changed_at)
        self._tag_changed = (
            self._track_changes("tags", self._tags, old, changed_at) if self.tagging else {}
        )
        self._orders = orders if self.config.get("contact_order_stats") else None

    @staticmethod
    def _read_names(names: dict[int, str], items: Iterable[dict[str, Any]]) -> None:
        """Customer group / tag names by id."""
        for res in items:
            names[int(res["id"])] = str((res.get("attributes") or {}).get("name") or "")

    def _read_customers(self, items: Iterable[dict[str, Any]]) -> None:
        """Customer id -> (account name, group id, updatedAt)."""
        for res in items:
            attrs = res.get("attributes") or {}
            group = ((res.get("relationships") or {}).get("group") or {}).get("data")
            self._customers[int(res["id"])] = (
                attrs.get("name"),
                int(group["id"]) if isinstance(group, dict) else None,
                attrs.get("updatedAt") or "",
            )

    def _read_addresses(self, items: Iterable[dict[str, Any]]) -> None:
        """Customer user id -> (latest address updatedAt, primary address)."""
        for res in items:
            rels = res.get("relationships") or {}
            user = (rels.get("customerUser") or {}).get("data")
            if not isinstance(user, dict):
                continue
            attrs = res.get("attributes") or {}
            stamp, primary = self._addresses.get(int(user["id"]), ("", None))
            stamp = max(stamp, attrs.get("updatedAt") or "")
            if attrs.get("primary") and (primary is None or int(res["id"]) < primary.address_id):
                primary = _Address(int(res["id"]), attrs, rels)
            self._addresses[int(user["id"])] = (stamp, primary)

    def _read_orders(self, stats: dict[int, _OrderStats], items: Iterable[dict[str, Any]]) -> None:
        """Purchase history per customer user, from one pass over every order."""
        currency = str(self.config.get("price_currency") or "USD")
        refunded = refunded_statuses(self.config)
        for res in items:
            rels = res.get("relationships") or {}
            user = (rels.get("customerUser") or {}).get("data")
            if not isinstance(user, dict):
                continue  # a guest order without a customer user: nobody's contact
            attrs = res.get("attributes") or {}
            entry = stats.setdefault(int(user["id"]), _OrderStats())
            updated = attrs.get("updatedAt") or ""
            if updated > entry.updated:
                entry.updated = updated
            status = (rels.get("internalStatus") or {}).get("data")
            external = (rels.get("status") or {}).get("data")
            internal_id = str(status.get("id")) if isinstance(status, dict) else None
            external_id = str(external.get("id")) if isinstance(external, dict) else None
            if internal_id == CANCELLED or financial_status(internal_id, external_id, refunded) == REFUNDED:
                continue
            created = attrs.get("createdAt")
            try:
                total = Decimal(str(attrs.get("totalValue")))
            except InvalidOperation:
                total = Decimal("NaN")
            if not isinstance(created, str) or not total.is_finite():
                field = "createdAt" if not isinstance(created, str) else "totalValue"
                self.oro_tap.report.reject(
                    self.name, f"order {res.get('id')}", f"order_missing_{field}",
                    f"order without a valid {field}: left out of its buyer's purchase history",
                    field,
                )  # fmt: skip
                continue
            if attrs.get("currency") != currency:
                self.oro_tap.report.reject(
                    self.name, f"order {res.get('id')}", "order_other_currency",
                    f"order in {attrs.get('currency')}, not price_currency {currency}: "
                    "left out of its buyer's orders_count and total_spent",
                    "currency",
                )  # fmt: skip
                continue
            entry.count += 1
            entry.total += total
            entry.first = created if entry.first is None or created < entry.first else entry.first
            if entry.last is None or (created, int(res["id"])) > (entry.last, entry.last_id):
                entry.last, entry.last_id = created, int(res["id"])

    def _read_last_products(
        self, stats: dict[int, _OrderStats], items: Iterable[dict[str, Any]]
    ) -> None:
        """``last_product``: the product name of the first line (lowest id) of each buyer's latest
        order, from one pass over every order line item."""
        buyer_of_last = {entry.last_id: entry for entry in stats.values() if entry.last_id}
        for res in items:
            refs = ((res.get("relationships") or {}).get("orders") or {}).get("data") or []
            for ref in refs if isinstance(refs, list) else [refs]:
                entry = buyer_of_last.get(int(ref["id"])) if isinstance(ref, dict) else None
                if entry is not None and entry.last_product is None:
                    entry.last_product = (res.get("attributes") or {}).get("productName") or None

    def _change_stamp(self) -> str:
        """Time given to a group/tag name change first seen in this run (just before run start)."""
        start = self.oro_tap.run_started_at
        return (
            format_oro_datetime(parse_oro_datetime(start) - timedelta(seconds=1)) if start else ""
        )

    def _track_changes(
        self,
        kind: str,
        names: dict[int, str],
        old: dict[str, Any],
        changed_at: str,
    ) -> dict[int, str]:
        """Compare name fingerprints with the previous run; return id -> changed-at stamp."""
        previous: dict[str, list[Any]] = old.get(kind) or {}
        first_run = not previous
        result: dict[int, str] = {}
        for rid, name in names.items():
            digest = fingerprint({"name": name})
            before = previous.get(str(rid))
            if before is not None and before[0] == digest:  # noqa: SIM108 - three cases, clearer apart
                stamp = before[1]
            else:
                stamp = "" if first_run else changed_at
            self._new_lookups[kind][str(rid)] = [digest, stamp]
            result[rid] = stamp
        return result

    @override
    def finish_sync(self) -> None:
        super().finish_sync()
        self.stream_state[LOOKUPS] = self._new_lookups
        assert self._deletions is not None
        self.consent.finish(self.stream_state, self._deletions.live)

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        self._deletions = None
        yield from super().get_records(context)
        tracker = self.deletion_tracker
        if tracker is None:  # the stream was skipped
            return
        # The scan was complete: customer users emitted before and gone now were deleted.
        stamp = self._last_page_time or self.oro_tap.run_started_at or ""
        for uid in tracker.deleted():
            self.oro_tap.report.count(self.name, "deleted")
            yield self.erase_row(uid, stamp)
        tracker.save(self.stream_state)  # only once every erase row is out

    @property
    def deletion_tracker(self) -> DeletionTracker | None:
        """This run's id bookkeeping (None before the scan starts)."""
        return self._deletions

    def erase_row(self, uid: int, stamp: str) -> dict[str, Any]:
        """The row telling the target that customer user ``uid`` no longer exists in Oro."""
        row: dict[str, Any] = dict.fromkeys(self.schema["properties"])
        row.update({"customer_user_id": uid, "tags": [], "erase": True, "updated_at": stamp})
        return row

    @override
    def parse_response(self, response: requests.Response) -> Iterable[dict[str, Any]]:
        # the latest server time of any page (pages read in parallel answer out of order): every
        # deletion the scan finds had happened by then
        page_time = server_now(response)
        self._last_page_time = max(filter(None, (page_time, self._last_page_time)), default=None)
        self.consent.read_page(response._oro_doc, page_time or self._last_page_time)  # type: ignore[attr-defined]
        return super().parse_response(response)

    @override
    def rows(self, data: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        tracker = self._deletions
        assert tracker is not None
        for row in super().rows(data):
            tracker.emitted.add(int(row["customer_user_id"]))
            yield row

    # -- rows -------------------------------------------------------------------------------

    @override
    def flatten(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        try:
            uid = int(resource["id"])
        except (KeyError, TypeError, ValueError):
            self.oro_tap.report.reject(
                self.name,
                resource.get("id"),
                "invalid_id",
                "customer user without a numeric id",
                "id",
            )
            return None
        if self._deletions is not None:
            self._deletions.live.add(uid)
        attrs = resource.get("attributes") or {}
        rels = resource.get("relationships") or {}
        email = attrs.get("email")
        updated = attrs.get("updatedAt")
        if not email or not isinstance(updated, str):
            field = "email" if not email else "updatedAt"
            self.oro_tap.report.reject(
                self.name, uid, f"missing_{field}", f"customer user has no {field}", field
            )
            return None
        cust = (rels.get("customer") or {}).get("data")
        cid = int(cust["id"]) if isinstance(cust, dict) else None
        cname, gid, cupdated = (
            self._customers.get(cid, (None, None, "")) if cid else (None, None, "")
        )
        addr_stamp, addr = self._addresses.get(uid, ("", None))
        tag_ids = [int(t["id"]) for t in ((rels.get("tags") or {}).get("data") or [])]
        stamps = [updated, cupdated]
        if addr_stamp:
            stamps.append(addr_stamp)
        orders = None if self._orders is None else self._orders.get(uid, _OrderStats())
        if orders is not None and orders.updated:
            stamps.append(orders.updated)
        if gid is not None:
            stamps.append(self._group_changed.get(gid, ""))
        stamps.extend(self._tag_changed.get(t, "") for t in tag_ids)
        consent, consent_changed_at = self.consent.value(uid, resource)
        if consent_changed_at:
            stamps.append(consent_changed_at)
        return {
            "customer_user_id": uid,
            "email": email,
            "first_name": attrs.get("firstName"),
            "last_name": attrs.get("lastName"),
            "phone": addr.phone if addr else None,
            "primary_address_id": addr.address_id if addr else None,
            "country": addr.country if addr else None,
            "city": addr.city if addr else None,
            "region": addr.region if addr else None,
            "address": addr.mailchimp() if addr else None,
            "birthday": attrs.get("birthday"),
            "orders_count": orders.count if orders else None,
            "total_spent": float(orders.total) if orders else None,
            "average_order_value": orders.average() if orders else None,
            "first_order_date": orders.first if orders else None,
            "last_order_date": orders.last if orders else None,
            "last_product": orders.last_product if orders else None,
            "customer_id": cid,
            "customer_name": cname,
            "customer_group_id": gid,
            "customer_group_name": self._groups.get(gid) if gid is not None else None,
            "tags": sorted(n for n in (self._tags.get(t) for t in tag_ids) if n),
            "enabled": attrs.get("enabled"),
            "confirmed": attrs.get("confirmed"),
            "is_guest": attrs.get("isGuest"),
            "created_at": attrs.get("createdAt"),
            "marketing_consent": consent,
            "consent_changed_at": consent_changed_at,
            "erase": False,
            "updated_at": max(stamps),
        }

    @override
    def row_key(self, row: dict[str, Any]) -> str:
        return str(row["customer_user_id"])
