"""E-commerce streams -> one Mailchimp store (customers, products, orders, carts).

Input records are Mailchimp-shaped and self-contained (an order carries its ``customer`` and its
``lines``), so every window can be written on its own:

* the store (``store_id``) is created for the audience on first use (``is_syncing`` while backfilling);
* what the store already holds is read once per resource (paged, 1,000 a call) and only records that
  differ from it are written (create: ``POST``; change: ``PATCH``, customers ``PUT``);
* an order or cart line that names a product Mailchimp does not know yet gets a placeholder product
  (title from the line's ``product_title``), which the ``ecommerce_products`` stream later completes:
  so the streams may arrive in any order;
* per-record failures are rejected (rejects report) and the run continues.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from oromc_common.governor import run_concurrently
from oromc_common.mailchimp import (
    MailchimpClient,
    MailchimpConfigError,
    PermanentMailchimpError,
    redact_pii,
)
from oromc_common.report import RunReport

PAGE = 1000


@dataclass(frozen=True)
class Resource:
    """How one e-commerce stream maps to a store sub-collection."""

    stream: str
    collection: str  # products | customers | orders | carts
    required: tuple[str, ...]
    fields: tuple[str, ...]  # top-level keys we send and compare


RESOURCES = {
    r.stream: r
    for r in (
        Resource(
            "ecommerce_products",
            "products",
            ("id", "title"),
            (
                "title",
                "handle",
                "url",
                "description",
                "type",
                "vendor",
                "image_url",
                "published_at_foreign",
                "variants",
            ),
        ),
        Resource(
            "ecommerce_customers",
            "customers",
            ("id", "email_address"),
            ("email_address", "opt_in_status", "company", "first_name", "last_name", "address"),
        ),
        Resource(
            "ecommerce_orders",
            "orders",
            ("id", "customer", "lines", "order_total"),
            (
                "customer",
                "currency_code",
                "order_total",
                "lines",
                "campaign_id",
                "landing_site",
                "financial_status",
                "fulfillment_status",
                "order_url",
                "discount_total",
                "tax_total",
                "shipping_total",
                "tracking_code",
                "processed_at_foreign",
                "cancelled_at_foreign",
                "updated_at_foreign",
                "shipping_address",
                "billing_address",
                "tracking_number",
                "tracking_carrier",
                "tracking_url",
            ),
        ),
        Resource(
            "ecommerce_carts",
            "carts",
            ("id", "customer", "lines", "order_total"),
            (
                "customer",
                "currency_code",
                "order_total",
                "lines",
                "campaign_id",
                "checkout_url",
                "tax_total",
            ),
        ),
    )
}
MONEY = ("order_total", "discount_total", "tax_total", "shipping_total", "price", "discount")
CUSTOMER_KEYS = (
    "id",
    "email_address",
    "opt_in_status",
    "company",
    "first_name",
    "last_name",
    "address",
)
LINE_KEYS = ("id", "product_id", "product_variant_id", "quantity", "price", "discount")
VARIANT_KEYS = (
    "id",
    "title",
    "url",
    "sku",
    "price",
    "inventory_quantity",
    "image_url",
    "backorders",
    "visibility",
)


class RecordError(ValueError):
    """A record that cannot be written; names the field, never the value."""

    def __init__(self, field_name: str, message: str) -> None:
        """Keep the field for the rejects report."""
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass
class StoreSettings:
    """The store settings of the target config."""

    store_id: str
    list_id: str
    name: str = "OroCommerce"
    currency_code: str = "USD"
    domain: str | None = None
    platform: str | None = None
    is_syncing: bool = False


def _clean(value: Any) -> Any:
    """JSON-able, no None values, money as float."""
    if isinstance(value, Mapping):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _money(body: dict[str, Any], key: str, where: str) -> None:
    if key in body and body[key] is not None and body[key] != "":
        try:
            body[key] = float(body[key])
        except (TypeError, ValueError):
            raise RecordError(where + key, "expected a number") from None


def _same(sent: Any, current: Any) -> bool:
    if isinstance(sent, Mapping):
        return isinstance(current, Mapping) and all(
            _same(v, current.get(k)) for k, v in sent.items()
        )
    if isinstance(sent, list):
        if not isinstance(current, list):
            return False
        if all(isinstance(x, Mapping) and "id" in x for x in sent):
            by_id = {str(c.get("id")): c for c in current if isinstance(c, Mapping)}
            return all(_same(x, by_id.get(str(x["id"]))) for x in sent)
        return len(sent) == len(current) and all(
            _same(a, b) for a, b in zip(sent, current, strict=True)
        )
    if isinstance(sent, bool) or isinstance(current, bool):
        return sent == current
    if isinstance(sent, int | float) and isinstance(current, int | float | str):
        try:
            return abs(float(sent) - float(current)) < 1e-9
        except ValueError:
            return False
    return str(sent if sent is not None else "") == str(current if current is not None else "")


class EcommerceSync:
    """Writes e-commerce windows into one store."""

    def __init__(
        self, client: MailchimpClient, settings: StoreSettings, report: RunReport, workers: int
    ) -> None:
        """Bind to the store (not created until the first window)."""
        self.client = client
        self.settings = settings
        self.report = report
        self.workers = workers
        self.base = f"/ecommerce/stores/{settings.store_id}"
        self._known: dict[str, dict[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._window_lock = threading.Lock()
        self._store_ready = False

    # -- store -------------------------------------------------------------------------
    def ensure_store(self) -> None:
        """Create the store for the audience if missing; fail fast if it belongs to another audience."""
        with self._lock:
            if self._store_ready:
                return
            try:
                store = self.client.get(self.base, {"fields": "id,list_id,is_syncing"}) or {}
            except PermanentMailchimpError as exc:
                if exc.status != 404:
                    raise
                body = _clean(
                    {
                        "id": self.settings.store_id,
                        "list_id": self.settings.list_id,
                        "name": self.settings.name,
                        "currency_code": self.settings.currency_code,
                        "domain": self.settings.domain,
                        "platform": self.settings.platform,
                        "is_syncing": self.settings.is_syncing,
                    }
                )
                store = self.client.post("/ecommerce/stores", body) or {}
            if store.get("list_id") not in (None, self.settings.list_id):
                msg = f"Setting 'store_id': store '{self.settings.store_id}' belongs to another audience."
                raise MailchimpConfigError(msg)
            if self.settings.is_syncing and store.get("is_syncing") is False:
                self.client.patch(self.base, {"is_syncing": True})
            self._store_ready = True

    def finish(self) -> None:
        """End of run: a backfill's ``is_syncing`` is switched off again."""
        if self._store_ready and self.settings.is_syncing:
            self.client.patch(self.base, {"is_syncing": False})

    def _collection(self, name: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            if name not in self._known:
                items = self.client.paginate(f"{self.base}/{name}", name, page_size=PAGE)
                self._known[name] = {str(i["id"]): i for i in items}
            return self._known[name]

    # -- records -----------------------------------------------------------------------
    def _body(self, resource: Resource, record: Mapping[str, Any]) -> dict[str, Any]:  # noqa: C901 - one check per documented field rule of the e-commerce resources
        missing = [k for k in resource.required if record.get(k) in (None, "", [])]
        if missing:
            raise RecordError(missing[0], "required")
        body: dict[str, Any] = {k: record[k] for k in resource.fields if record.get(k) is not None}
        body = _clean(body)
        for key in MONEY:
            _money(body, key, "")
        if resource.collection in {"orders", "carts"}:
            body.setdefault("currency_code", self.settings.currency_code)
            customer = body.get("customer")
            if not isinstance(customer, Mapping) or not customer.get("id"):
                raise RecordError("customer.id", "required")
            body["customer"] = {k: customer[k] for k in CUSTOMER_KEYS if k in customer}
            if "opt_in_status" in body["customer"]:
                body["customer"]["opt_in_status"] = False  # consent travels only in contacts
            lines = []
            for i, line in enumerate(body.get("lines") or []):
                out = {k: line[k] for k in LINE_KEYS if k in line}
                for key in ("id", "product_id"):
                    if not out.get(key):
                        raise RecordError(f"lines.{i}.{key}", "required")
                out.setdefault("product_variant_id", out["product_id"])
                for key in ("price", "discount"):
                    _money(out, key, f"lines.{i}.")
                if "quantity" in out:
                    try:
                        out["quantity"] = int(out["quantity"])
                    except (TypeError, ValueError):
                        raise RecordError(f"lines.{i}.quantity", "expected an integer") from None
                lines.append(out)
            body["lines"] = lines
        if resource.collection == "products":
            variants = body.get("variants") or [
                {
                    "id": record["id"],
                    "title": record["title"],
                    "sku": record.get("sku"),
                    "price": record.get("price"),
                    "url": record.get("url"),
                    "inventory_quantity": record.get("inventory_quantity"),
                }
            ]
            body["variants"] = []
            for i, variant in enumerate(variants):
                out = _clean({k: variant.get(k) for k in VARIANT_KEYS})
                out.setdefault("title", body["title"])
                if not out.get("id"):
                    raise RecordError(f"variants.{i}.id", "required")
                _money(out, "price", f"variants.{i}.")
                body["variants"].append(out)
        if resource.collection == "customers":
            # Never an opt-in: consent reaches Mailchimp only through the contacts stream and its
            # rules (double opt-in, disabled users, Oro opt-outs). Mailchimp adds a person first met
            # here as transactional and never changes an existing member for opt_in_status false,
            # so a store write cannot change anyone's consent, whichever write comes first.
            body["opt_in_status"] = False
        return body

    def process(self, stream: str, records: list[dict[str, Any]]) -> None:
        """Write one window of one e-commerce stream (one stream at a time: orders may create
        placeholder products, which must not race with the products stream)."""
        with self._window_lock:
            self._process(stream, records)

    def _process(self, stream: str, records: list[dict[str, Any]]) -> None:
        resource = RESOURCES[stream]
        self.report.count(stream, "received", len(records))
        self.ensure_store()
        known = self._collection(resource.collection)
        latest: dict[str, dict[str, Any]] = {}
        for record in records:
            key = str(record.get("id"))
            if key in latest:
                self.report.count(stream, "duplicates_merged")
            latest[key] = record
        jobs = []
        for key, record in latest.items():
            current = known.get(key)
            if record.get("deleted") is True and resource.collection == "carts":
                # a removed cart needs only its id (the tap's tombstone {"id", "deleted": true})
                if current is not None:
                    jobs.append(partial(self._write, resource, key, None, "DELETE"))
                continue
            try:
                body = self._body(resource, record)
            except RecordError as exc:
                self.report.reject(stream, f"id={key}", "invalid_value", str(exc), exc.field)
                continue
            if current is None:
                jobs.append(partial(self._write, resource, key, body, "CREATE"))
                continue
            changed = {k: v for k, v in body.items() if k != "id" and not _same(v, current.get(k))}
            if changed.get("opt_in_status") is False and current.get("opt_in_status") is True:
                del changed[
                    "opt_in_status"
                ]  # Mailchimp never downgrades an opt-in; don't ask every run
            if not changed:
                self.report.count(stream, "unchanged")
            else:
                jobs.append(partial(self._write, resource, key, changed, "UPDATE"))
        if resource.collection in {"orders", "carts"}:
            titles = {
                str(line.get("product_id")): str(line["product_title"])
                for record in latest.values()
                for line in record.get("lines") or []
                if isinstance(line, Mapping) and line.get("product_title")
            }
            self._ensure_products([j.args[2] for j in jobs if j.args[2]], titles)
        run_concurrently(jobs, self.workers)

    def _ensure_products(self, bodies: list[dict[str, Any]], titles: dict[str, str]) -> None:
        """Create placeholder products/variants for lines that reference unknown ones."""
        products = self._collection("products")
        wanted: dict[str, dict[str, str]] = {}
        for body in bodies:
            for line in body.get("lines") or []:
                pid, vid = (
                    str(line["product_id"]),
                    str(line.get("product_variant_id") or line["product_id"]),
                )
                have = products.get(pid)
                if have is None or all(str(v.get("id")) != vid for v in have.get("variants") or []):
                    wanted.setdefault(pid, {})[vid] = titles.get(pid) or pid
        jobs = []
        for pid, variants in wanted.items():
            body = {"variants": [{"id": vid, "title": title} for vid, title in variants.items()]}
            if pid in products:
                jobs.append(
                    partial(
                        self._write,
                        RESOURCES["ecommerce_products"],
                        pid,
                        body,
                        "UPDATE",
                        quiet=True,
                    )
                )
            else:
                title = next(iter(variants.values()))
                jobs.append(
                    partial(
                        self._write,
                        RESOURCES["ecommerce_products"],
                        pid,
                        {"id": pid, "title": title, **body},
                        "CREATE",
                        quiet=True,
                    )
                )
        run_concurrently(jobs, self.workers)

    def _write(
        self,
        resource: Resource,
        key: str,
        body: dict[str, Any] | None,
        action: str,
        *,
        quiet: bool = False,
    ) -> None:
        path = f"{self.base}/{resource.collection}"
        try:
            if action == "DELETE":
                self.client.delete(f"{path}/{key}")
            elif resource.collection == "customers":
                result = self.client.put(
                    f"{path}/{key}", {"id": key, **(body or {}), **self._customer_fill(key, body)}
                )
            elif action == "CREATE":
                result = self.client.post(path, {"id": key, **(body or {})})
            else:
                result = self.client.patch(f"{path}/{key}", body)
        except PermanentMailchimpError as exc:
            detail = "; ".join(
                filter(None, [exc.title, exc.detail, *(e.get("message", "") for e in exc.errors)])
            )
            fields = exc.error_fields
            self.report.reject(
                resource.stream,
                f"id={key}",
                exc.reason,
                redact_pii(detail),
                fields[0] if fields else None,
            )
            return
        known = self._known.setdefault(resource.collection, {})
        if action == "DELETE":
            known.pop(key, None)
        else:
            known[key] = (
                result
                if isinstance(result, dict) and result.get("id")
                else {**known.get(key, {}), **(body or {})}
            )
        if not quiet:
            self.report.count(
                resource.stream,
                {"CREATE": "created", "UPDATE": "updated", "DELETE": "deleted"}[action],
            )

    def _customer_fill(self, key: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """A PUT needs the required fields even when only one changed."""
        current = self._known.get("customers", {}).get(key, {})
        fill = {
            k: current[k]
            for k in ("email_address", "opt_in_status")
            if k in current and k not in (body or {})
        }
        return json.loads(json.dumps(fill))
