"""Deterministic seed data for the Oro store, and the functions that derive seeded rows.

Big tables (customers, customer users, addresses, orders, line items, shopping lists and their
items) keep only array columns (dates, foreign keys) per row; everything else is derived from
``(seed, table, id)`` when a row is read. Small tables are materialised dicts.

Timestamps are spread over the two years before the sandbox clock's start.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from array import array
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .pools import (
    CAMPAIGNS,
    COUNTRIES,
    EMAIL_DOMAINS,
    GROUP_NAMES,
    SHIPPING,
    TAG_NAMES,
    UNITS,
    Pools,
)
from .schema import CONSENT_FIELD
from .static import StaticTable
from .tables import Record, Table

if TYPE_CHECKING:
    from .store import OroStore

YEAR = 365 * 86400
SALT = {"customers": 1, "customerusers": 2, "customeruseraddresses": 3, "orders": 4, "orderlineitems": 5,
        "shoppinglists": 6, "shoppinglistitems": 7}
ORDER_INTERNAL_STATUSES = (("open", "Open"), ("cancelled", "Cancelled"), ("closed", "Closed"),
                           ("pending", "Pending"), ("processing", "Processing"))
# + "refunded": an option a merchant adds for refunds (stock Oro has no refunded status of any kind)
ORDER_STATUSES = (("open", "Open"), ("cancelled", "Cancelled"), ("closed", "Closed"),
                  ("wait_for_approval", "Wait For Approval"), ("refunded", "Refunded"))
# the external status a seeded order would carry if "Enable External Status Management" were on
EXTERNAL_STATUS = {"open": "open", "closed": "closed", "cancelled": "cancelled"}
# the resized versions of a main product image (ProductBundle doc/api/file.md: product_original,
# product_gallery_popup, product_gallery_main, product_large, product_extra_large, product_medium)
IMAGE_DIMENSIONS = ("product_original", "product_gallery_popup", "product_gallery_main", "product_large",
                    "product_extra_large", "product_medium")
ORDER_SHIPPING_STATUSES = (
    ("not_shipped", "Not Shipped"), ("shipped", "Shipped"), ("partially_shipped", "Partially Shipped")
)
#: Seeded marketing consent of customer users (same for every consent source, so the sources and the
#: Mailchimp audience agree): given (True), declined (False) or never recorded (None).
CONSENT_GIVEN, CONSENT_DECLINED = 0.45, 0.15
#: OroConsentBundle's demo consents (LoadConsentDemoData): id -> (name, mandatory).
CONSENTS = {1: ("Terms and Conditions", True), 2: ("Email subscription", False)}
TERMS_CONSENT, MARKETING_CONSENT = 1, 2
MA_TYPES = (("send", "Send"), ("open", "Open"), ("click", "Click"), ("soft_bounce", "Soft Bounce"),
            ("hard_bounce", "Hard Bounce"), ("unsubscribe", "Unsubscribe"))


class Seeder:
    """Builds the tables of a store and derives seeded rows."""

    def __init__(self, store: OroStore, pools: Pools) -> None:
        self.store = store
        self.pools = pools
        self.seed = store.seed
        self.now = store.epoch
        self.start = self.now - 2 * YEAR
        self.seeded_tags: dict[int, list[int]] = {}
        self.seeded_products: dict[int, Record] = {}
        self.product_count = 0

    def rng(self, table: str, rid: int) -> random.Random:
        """The per-row generator."""
        return random.Random((self.seed * 1_000_003 + rid) * 16 + SALT[table])

    # ---- building ------------------------------------------------------------------------
    def build(self, customers: int) -> dict[str, Any]:
        """Create every table; returns them keyed by resource type."""
        rng = random.Random(self.seed)
        t: dict[str, Any] = {}
        t.update(self._reference())
        t["customergroups"] = StaticTable("customergroups", (
            (i, {"name": name, "owner": 1, "organization": 1}) for i, name in enumerate(GROUP_NAMES, 1)
        ))
        t["products"] = self._products(rng, 200 + min(customers // 50, 4800))
        # PricingBundle: one price list with a quantity-1 price per product (in its unit) and, for every
        # fifth product, a lower tier from quantity 10; ids are "<uuid>-<price list id>" as in Oro
        t["pricelists"] = StaticTable("pricelists", ((1, {"name": "Default Price List", "active": True}),))
        t["productprices"] = StaticTable("productprices", self._product_prices(), int_ids=False)
        t["productnames"] = Table("productnames", derive=self._derive_product_name)
        t["productnames"].append_seeded(self.product_count)
        # one default-locale name per product, name id = product id (answers products.names)
        t["productnames"].ranges["product"] = array("I", [0, *range(1, self.product_count + 2)])
        self._product_images(t)
        t["tags"] = StaticTable("tags", (
            (i, {"name": name, "createdAt": self.start + i * 86400, "updatedAt": self.start + i * 86400,
                 "taxonomy": None, "owner": 1, "organization": 1})
            for i, name in enumerate(TAG_NAMES, 1)
        ))
        t["campaigns"] = StaticTable("campaigns", (
            (i, {"name": name, "code": code, "description": f"{name} campaign", "startDate": start,
                 "endDate": end, "budget": budget, "reportPeriod": "day",
                 "createdAt": self.now - YEAR + i * 86400 * 30, "updatedAt": self.now - YEAR + i * 86400 * 30,
                 "owner": 1, "organization": 1})
            for i, (name, code, start, end, budget) in enumerate(CAMPAIGNS, 1)
        ))
        t["localizedfallbackvalues"] = StaticTable("localizedfallbackvalues", (
            (cid, {"fallback": None, "string": name, "text": None, "localization": None})
            for cid, (name, _) in CONSENTS.items()
        ))
        t["consents"] = StaticTable("consents", (
            (cid, {"mandatory": mandatory, "declinedNotification": True, "names": [cid],
                   "createdAt": self.start, "updatedAt": self.start, "owner": 1, "organization": 1})
            for cid, (_, mandatory) in CONSENTS.items()
        ))
        self._big_tables(t, rng, customers)
        t["marketingactivities"] = self._activities(rng, t)
        t["asyncoperations"] = StaticTable("asyncoperations")
        return t

    def _reference(self) -> dict[str, StaticTable]:
        def enum(
            name: str, values: Any, default: str | None = None, start: dict[str, int] | None = None
        ) -> StaticTable:
            """Enum options as Oro's ``AbstractEnumFixture`` loads them: priorities 1, 2, ... per fixture."""
            rows = []
            priority = 0
            for key, label in values:
                priority = (start or {}).get(key, priority + 1)
                rows.append((key, {"name": label, "priority": priority, "default": key == default}))
            return StaticTable(name, rows, int_ids=False)

        regions = [(code, {"code": code.split("-")[1], "name": code, "country": cc})
                   for cc, codes in COUNTRIES for code in codes]
        names = {"US": ("USA", "United States"), "DE": ("DEU", "Germany"), "FR": ("FRA", "France"),
                 "GB": ("GBR", "United Kingdom"), "CA": ("CAN", "Canada")}
        return {
            "marketingactivitytypes": enum("marketingactivitytypes", MA_TYPES),
            # LoadOrderInternalStatuses (open, cancelled, closed) + LoadAdditionalOrderInternalStatuses
            # (pending, processing; its own fixture, so priorities restart at 1)
            "orderinternalstatuses": enum("orderinternalstatuses", ORDER_INTERNAL_STATUSES, start={"pending": 1}),
            # external statuses: stock Oro ships none (an admin defines them); these are the options of
            # Oro's own LoadOrderStatuses test fixture, "open" being the default
            "orderstatuses": enum("orderstatuses", ORDER_STATUSES, default="open"),
            # LoadOrderShippingStatuses: default not_shipped
            "ordershippingstatuses": enum("ordershippingstatuses", ORDER_SHIPPING_STATUSES, default="not_shipped"),
            "paymentterms": StaticTable("paymentterms", ((i, {"label": f"net {i * 10}"}) for i in range(1, 5))),
            "businessunits": StaticTable("businessunits", ((1, {"name": "Main"}),)),
            "customeruserauthstatuses": enum("customeruserauthstatuses", (("active", "Active"), ("reset", "Reset"))),
            "customerratings": enum("customerratings", ((f"{i}_of_5", f"{i} of 5") for i in range(1, 6))),
            "customeruserroles": StaticTable("customeruserroles", (
                (1, {"role": "ROLE_FRONTEND_ADMINISTRATOR", "label": "Administrator", "selfManaged": False,
                     "public": True}),
                (2, {"role": "ROLE_FRONTEND_BUYER", "label": "Buyer", "selfManaged": False, "public": True}),
            )),
            "users": StaticTable("users", ((1, {"username": "admin", "email": "admin@example.com",
                                                "firstName": "John", "lastName": "Doe", "enabled": True}),)),
            "organizations": StaticTable("organizations", ((1, {"name": "ORO", "enabled": True}),)),
            "websites": StaticTable("websites", ((1, {"name": "Default", "default": True}),)),
            "countries": StaticTable("countries", ((cc, {"iso3Code": names[cc][0], "name": names[cc][1]})
                                                   for cc, _ in COUNTRIES), int_ids=False),
            "regions": StaticTable("regions", regions, int_ids=False),
            "productunits": StaticTable("productunits", ((u, {"defaultPrecision": 0 if u != "kg" else 3})
                                                         for u in UNITS), int_ids=False),
            "taxonomies": StaticTable("taxonomies"),
            "localizations": StaticTable("localizations"),
        }

    def _products(self, rng: random.Random, count: int) -> StaticTable:
        words = self.pools.product_words
        rows = []
        for i in range(1, count + 1):
            created = self.start + int(rng.random() * YEAR)
            name = " ".join(rng.choice(words) for _ in range(rng.randint(2, 4)))
            rows.append((i, {
                "sku": f"{name[:2].upper()}{i:05d}", "_name": name,
                "_price": round(rng.uniform(2, 900), 2), "_unit": rng.choice(UNITS),
                "status": "enabled" if rng.random() < 0.93 else "disabled", "productType": "simple",
                "featured": rng.random() < 0.05, "newArrival": rng.random() < 0.08,
                "createdAt": created, "updatedAt": created + int(rng.random() * (self.now - created)),
                "owner": 1, "organization": 1, "primaryUnitPrecision": None,
            }))
        self.product_count = count
        # seeded line items are derived from the products as seeded: a later PATCH or DELETE of a
        # product must not change (or break) them
        self.seeded_products = {pid: dict(rec) for pid, rec in rows}
        return StaticTable("products", rows)

    def _product_images(self, t: dict[str, Any]) -> None:
        """One main image per product except every tenth (a product may have none): the product image,
        its type and its file share one id; the file's filePath lists the resized versions (Oro's
        ``ProductImageTest`` responses)."""
        images = Table("productimages", ("product",), self._derive_product_image)
        types = Table("productimagetypes", ("productImage",), self._derive_product_image_type)
        files = Table("files", (), self._derive_image_file)
        starts = array("I", [0])
        for pid in range(1, self.product_count + 1):
            starts.append(images.n + 1)
            if pid % 10:
                images.append_seeded(1)
                images.cols["product"].append(pid)
        starts.append(images.n + 1)
        images.ranges["product"] = starts
        types.append_seeded(images.n)
        types.cols["productImage"].extend(range(1, images.n + 1))
        types.ranges["productImage"] = array("I", [0, *range(1, images.n + 2)])
        files.append_seeded(images.n)
        t.update(productimages=images, productimagetypes=types, files=files)

    def _image_product(self, rid: int) -> Record:
        pid = self.store.tables["productimages"].cols["product"][rid - 1]
        return self.store.tables["products"].rows.get(pid) or {}

    def _derive_product_image(self, rid: int) -> Record:
        return {"updatedAt": self._image_product(rid).get("createdAt"), "image": rid}

    def _derive_product_image_type(self, rid: int) -> Record:
        return {"productImageTypeType": "main"}

    def _derive_image_file(self, rid: int) -> Record:
        product = self._image_product(rid)
        name = f"{str(product.get('sku') or rid).lower()}.jpg"
        paths = []
        for dimension in IMAGE_DIMENSIONS:
            digest = hashlib.md5(f"{self.seed}-{dimension}-{rid}".encode()).hexdigest()  # noqa: S324 - a cache key
            url = f"/media/cache/attachment/filter/{dimension}/{digest}/{rid}/{name}"
            paths.append({"url": url, "dimension": dimension, "url_webp": f"{url}.webp"})
        created = product.get("createdAt")
        return {"mimeType": "image/jpeg", "originalFilename": name, "fileSize": 20_000 + rid % 50_000,
                "filePath": paths, "createdAt": created, "updatedAt": created}

    def _product_prices(self) -> Iterator[tuple[str, Record]]:
        for pid, product in self.seeded_products.items():
            tiers = [(1.0, product["_price"])] + ([(10.0, product["_price"] * 0.9)] if pid % 5 == 0 else [])
            for qty, value in tiers:
                uid = uuid.uuid5(uuid.NAMESPACE_OID, f"oro-sandbox-price-{self.seed}-{pid}-{qty}")
                yield f"{uid}-1", {"quantity": qty, "currency": "USD", "value": f"{value:.4f}", "priceList": 1,
                                   "product": pid, "unit": product["_unit"]}

    def _big_tables(self, t: dict[str, Any], rng: random.Random, customers: int) -> None:
        cust = Table("customers", ("createdAt", "updatedAt", "group", "parent"), self._derive_customer, ("parent",))
        users = Table("customerusers", ("customer", "createdAt", "updatedAt"), self._derive_user, ("customer", "tags"))
        addrs = Table("customeruseraddresses", ("customerUser", "createdAt", "updatedAt"), self._derive_address,
                      ("customerUser",))
        orders = Table("orders", ("customer", "customerUser", "createdAt", "updatedAt"), self._derive_order)
        items = Table("orderlineitems", ("orders", "createdAt", "updatedAt"), self._derive_line_item, ("orders",))
        lists = Table("shoppinglists", ("customerUser", "customer", "createdAt", "updatedAt"), self._derive_list)
        list_items = Table("shoppinglistitems", ("shoppingList", "createdAt", "updatedAt"), self._derive_list_item,
                           ("shoppingList",))
        accepts = Table("consentacceptances", ("customerUser", "consent", "createdAt"), _no_fields, ("customerUser",))
        accept_start = array("I", [0, 1])
        ac_user, ac_consent, ac_created = (accepts.cols[k] for k in ("customerUser", "consent", "createdAt"))
        seed = self.seed
        user_start, addr_start, item_start, list_item_start = (
            array("I", [0, 1]), array("I", [0, 1]), array("I", [0, 1]), array("I", [0, 1])
        )
        c_created, c_updated, c_group, c_parent = (cust.cols[k] for k in ("createdAt", "updatedAt", "group", "parent"))
        u_cust, u_created, u_updated = (users.cols[k] for k in ("customer", "createdAt", "updatedAt"))
        a_user, a_created, a_updated = (addrs.cols[k] for k in ("customerUser", "createdAt", "updatedAt"))
        o_cust, o_user, o_created, o_updated = (
            orders.cols[k] for k in ("customer", "customerUser", "createdAt", "updatedAt")
        )
        i_order, i_created, i_updated = (items.cols[k] for k in ("orders", "createdAt", "updatedAt"))
        l_user, l_cust, l_created, l_updated = (
            lists.cols[k] for k in ("customerUser", "customer", "createdAt", "updatedAt")
        )
        li_list, li_created, li_updated = (list_items.cols[k] for k in ("shoppingList", "createdAt", "updatedAt"))
        rand = rng.random
        start, now, span = self.start, self.now, 2 * YEAR
        n_groups = len(GROUP_NAMES)
        uid = aid = oid = iid = lid = liid = acid = 0
        for c in range(1, customers + 1):
            created = start + int(rand() * span * 0.9)
            c_created.append(created)
            c_updated.append(created + int(rand() * (now - created)))
            c_group.append(0 if rand() < 0.08 else 2 + int(rand() * (n_groups - 1)))
            parent = 1 + int(rand() * (c - 1)) if c > 10 and rand() < 0.04 else 0
            c_parent.append(parent)
            if parent:
                cust.index_seeded("parent", c, (parent,))
            r = rand()
            k = 1 if r < 0.6 else 2 if r < 0.85 else 3 + int(rand() * 3) if r < 0.96 else 6 + int(rand() * 10)
            first_user = uid + 1
            for _ in range(k):
                uid += 1
                u_c = created + int(rand() * (now - created) * 0.5)
                u_cust.append(c)
                u_created.append(u_c)
                u_updated.append(u_c + int(rand() * (now - u_c)))
                r = rand()
                n_addr = 0 if r < 0.25 else 1 if r < 0.7 else 2 if r < 0.9 else 3
                for _ in range(n_addr):
                    aid += 1
                    a_c = u_c + int(rand() * 86400 * 30)
                    a_user.append(uid)
                    a_created.append(a_c)
                    a_updated.append(min(now, a_c + int(rand() * (now - a_c))))
                addr_start.append(aid + 1)
                # consent acceptances: Terms and Conditions at sign-up; the newsletter consent for
                # those who gave it (drawn apart from the main sequence, see consent_of)
                acid += 1
                ac_user.append(uid)
                ac_consent.append(TERMS_CONSENT)
                ac_created.append(u_c)
                if consent_of(seed, uid) is True:
                    acid += 1
                    ac_user.append(uid)
                    ac_consent.append(MARKETING_CONSENT)
                    ac_created.append(u_c + int(_unit(seed, uid, 2) * (now - u_c)))
                accept_start.append(acid + 1)
                if rand() < 0.08:
                    tags = sorted({1 + int(rand() * len(TAG_NAMES)) for _ in range(1 + int(rand() * 3))})
                    self.seeded_tags[uid] = tags
                    users.index_seeded("tags", uid, tags)
                if rand() < 0.05:
                    for _ in range(1 + (rand() < 0.2)):
                        lid += 1
                        l_c = now - int(rand() * 90 * 86400)
                        l_user.append(uid)
                        l_cust.append(c)
                        l_created.append(l_c)
                        l_upd = l_c + int(rand() * (now - l_c))
                        l_updated.append(l_upd)
                        for _ in range(1 + int(rand() * 6)):
                            liid += 1
                            li_list.append(lid)
                            li_created.append(l_c)
                            li_updated.append(l_upd)
                        list_item_start.append(liid + 1)
            user_start.append(uid + 1)
            r = rand()
            n_orders = 0 if r < 0.7 else 1 + int(rand() * 5) if r < 0.95 else 10 + int(rand() * 50)
            for _ in range(n_orders):
                oid += 1
                o_c = created + int(rand() * (now - created))
                o_cust.append(c)
                o_user.append(first_user + int(rand() * k))
                o_created.append(o_c)
                o_upd = (
                    o_c + int(rand() * min(now - o_c, 20 * 86400)) if rand() < 0.9 else o_c + int(rand() * (now - o_c))
                )
                o_updated.append(o_upd)
                n_items = 1 + int(rand() * 5)
                iid += n_items
                i_order.extend(array("I", [oid]) * n_items)
                i_created.extend(array("I", [o_c]) * n_items)
                i_updated.extend(array("I", [o_c]) * n_items)
                item_start.append(iid + 1)
        cust.append_seeded(customers)
        users.append_seeded(uid)
        addrs.append_seeded(aid)
        orders.append_seeded(oid)
        items.append_seeded(iid)
        lists.append_seeded(lid)
        list_items.append_seeded(liid)
        accepts.append_seeded(acid)
        accepts.ranges["customerUser"] = accept_start
        users.ranges["customer"] = user_start
        addrs.ranges["customerUser"] = addr_start
        items.ranges["orders"] = item_start
        list_items.ranges["shoppingList"] = list_item_start
        t.update({"customers": cust, "customerusers": users, "customeruseraddresses": addrs, "orders": orders,
                  "orderlineitems": items, "shoppinglists": lists, "shoppinglistitems": list_items,
                  "consentacceptances": accepts})
        # order addresses: two per seeded order whose customer user has an address
        order_addrs = Table("orderaddresses", (), self._derive_order_address)
        order_addrs.append_seeded(2 * oid)
        o_user_col, starts = orders.cols["customerUser"], addrs.ranges["customerUser"]
        for order_id in range(1, oid + 1):
            user = o_user_col[order_id - 1]
            if starts[user] >= starts[user + 1]:
                order_addrs.alive[2 * order_id - 2] = order_addrs.alive[2 * order_id - 1] = 0
                order_addrs.deleted += 2
        t["orderaddresses"] = order_addrs

    def _activities(self, rng: random.Random, t: dict[str, Any]) -> StaticTable:
        users: Table = t["customerusers"]
        rows = []
        if users.n:
            for i in range(1, min(2000, users.n // 5) + 1):
                kind = rng.choice(MA_TYPES)[0]
                rows.append((i, {
                    "actionDate": self.now - int(rng.random() * YEAR), "details": None, "owner": 1,
                    "campaign": rng.randint(1, len(CAMPAIGNS)), "marketingActivityType": kind,
                    "entity": ("customerusers", rng.randint(1, users.n)), "relatedCampaign": None,
                }))
        return StaticTable("marketingactivities", rows)

    # ---- derivation ----------------------------------------------------------------------
    def user_names(self, rid: int) -> tuple[random.Random, str, str, str, str]:
        """(rng, first, last, first_slug, last_slug) of a seeded customer user."""
        r = self.rng("customerusers", rid)
        fn, fs = r.choice(self.pools.first_names)
        ln, ls = r.choice(self.pools.last_names)
        return r, fn, ln, fs, ls

    def derived_email(self, rid: int) -> str:
        """The seeded e-mail of customer user ``rid`` (it embeds the id, so it is unique)."""
        r, _, _, fs, ls = self.user_names(rid)
        return f"{fs}.{ls}{rid}@{r.choice(EMAIL_DOMAINS)}"

    def _derive_user(self, rid: int) -> Record:
        r, first, last, fs, ls = self.user_names(rid)
        email = f"{fs}.{ls}{rid}@{r.choice(EMAIL_DOMAINS)}"
        x = r.random()
        if x < 0.004:
            last = r.choice(self.pools.long_names)
        guest = r.random() < 0.06
        enabled = not guest and r.random() > 0.05
        confirmed = not guest and r.random() > 0.07
        created = self.store.tables["customerusers"].cols["createdAt"][rid - 1]
        logins = 0 if guest or not confirmed else int(r.random() * 200)
        last_login = created + int(r.random() * (self.now - created)) if logins else None
        return {
            "confirmed": confirmed, "email": email, "namePrefix": r.choice((None,) * 9 + ("Dr.",)),
            "firstName": first, "middleName": None, "lastName": last, "nameSuffix": None,
            "birthday": None if r.random() < 0.8
            else f"{1950 + int(r.random() * 50)}-0{1 + int(r.random() * 9)}-1{int(r.random() * 9)}",
            "enabled": enabled, "loginCount": logins, "isGuest": guest, "lastLogin": last_login,
            "passwordRequestedAt": None, "passwordChangedAt": None,
            "userRoles": [] if guest else [1 if r.random() < 0.3 else 2], "owner": 1,
            "salesRepresentatives": [], "organization": 1, "website": 1, "auth_status": "active",
            "tags": list(self.seeded_tags.get(rid, ())), CONSENT_FIELD: consent_of(self.seed, rid),
        }

    def _derive_customer(self, rid: int) -> Record:
        r = self.rng("customers", rid)
        name = r.choice(self.pools.companies)
        x = r.random()
        if x < 0.003:
            name = (name + " " + r.choice(self.pools.long_names))[:255]
        elif x < 0.05:
            name = (
                f"{r.choice(self.pools.last_names)[0]} "
                f"{r.choice(('GmbH', 'S.A.', 'Sp. z o.o.', '株式会社', 'SARL'))}"
            )
        return {
            "name": name, "owner": 1, "organization": 1,
            "salesRepresentatives": [] if r.random() < 0.7 else [1],
            "internal_rating": None if r.random() < 0.4 else f"{1 + int(r.random() * 5)}_of_5",
        }

    def _derive_address(self, rid: int) -> Record:
        addrs: Table = self.store.tables["customeruseraddresses"]
        user = addrs.cols["customerUser"][rid - 1]
        _, first, last, _, _ = self.user_names(user)
        r = self.rng("customeruseraddresses", rid)
        country, regions = COUNTRIES[0] if r.random() < 0.6 else r.choice(COUNTRIES)
        primary = addrs.ranges["customerUser"][user] == rid
        types = [{"addressType": "billing", "default": primary}, {"addressType": "shipping", "default": primary}]
        return {
            "label": r.choice(("Primary address", "Office", "Warehouse", "Home", None)),
            "namePrefix": None, "firstName": first, "middleName": None, "lastName": last, "nameSuffix": None,
            "organization": None if r.random() < 0.6 else r.choice(self.pools.companies),
            "street": r.choice(self.pools.streets),
            "street2": None if r.random() < 0.8 else f"Suite {r.randint(1, 999)}",
            "city": r.choice(self.pools.cities), "postalCode": r.choice(self.pools.postcodes), "customRegion": None,
            "phone": r.choice(self.pools.phones) if r.random() < 0.7 else None, "primary": primary,
            "validatedAt": None, "types": types if r.random() < 0.8 else types[:1],
            "owner": 1, "systemOrganization": 1, "country": country, "region": r.choice(regions),
        }

    def _line_values(self, rid: int) -> tuple[int, float, float, Record]:
        r = self.rng("orderlineitems", rid)
        product_id = 1 + int(r.random() * self.product_count)
        product = self.seeded_products[product_id]
        qty = float(1 + int(r.random() * 20))
        return product_id, qty, product["_price"], product

    def _derive_line_item(self, rid: int) -> Record:
        product_id, qty, price, product = self._line_values(rid)
        return {
            "productSku": product["sku"], "productName": product["_name"], "productVariantFields": [],
            "freeFormProduct": None, "quantity": qty, "productUnitCode": product["_unit"],
            "value": f"{price:.4f}", "currency": "USD", "priceType": 10, "shipBy": None,
            "fromExternalSource": False, "comment": None, "product": product_id, "parentProduct": None,
            "productUnit": product["_unit"],
        }

    def _derive_order(self, rid: int) -> Record:
        r = self.rng("orders", rid)
        items: Table = self.store.tables["orderlineitems"]
        starts = items.ranges["orders"]
        subtotal = sum(q * p for _, q, p, _ in (self._line_values(i) for i in range(starts[rid], starts[rid + 1])))
        shipping = round(r.uniform(0, 40), 2)
        discount = round(subtotal * 0.1, 2) if r.random() < 0.15 else 0.0
        x = r.random()
        method, method_type = r.choice(SHIPPING)
        status = "closed" if x < 0.6 else "open" if x < 0.9 else "cancelled"
        has_address = self.order_address_source(rid) is not None
        return {
            "identifier": str(rid), "poNumber": f"PO{100000 + int(r.random() * 899999)}" if r.random() < 0.6 else None,
            "customerNotes": r.choice(self.pools.notes) if r.random() < 0.1 else None, "shipUntil": None,
            "currency": "USD", "subtotalValue": f"{subtotal:.4f}",
            "totalValue": f"{subtotal - discount + shipping:.4f}", "totalDiscountsAmount": f"{discount:.4f}",
            "shippingMethod": method, "shippingMethodType": method_type,
            "estimatedShippingCostAmount": f"{shipping:.4f}", "overriddenShippingCostAmount": None,
            "sourceEntityIdentifier": None, "external": r.random() < 0.05,
            "internalStatus": status, "status": EXTERNAL_STATUS[status],
            "shippingStatus": "shipped" if status == "closed" else "not_shipped",
            "owner": 1, "organization": 1,
            "paymentTerm": 1 + int(r.random() * 4) if r.random() < 0.5 else None,
            "billingAddress": 2 * rid - 1 if has_address else None, "shippingAddress": 2 * rid if has_address else None,
            "discounts": [], "shippingTrackings": [], "documents": [], "source": None,
        }

    def order_address_source(self, order_id: int) -> int | None:
        """The customer-user address a seeded order's billing/shipping addresses were copied from."""
        orders: Table = self.store.tables["orders"]
        if not 1 <= order_id <= orders.seeded:
            return None
        user = orders.cols["customerUser"][order_id - 1]
        starts = self.store.tables["customeruseraddresses"].ranges["customerUser"]
        if not 0 < user < len(starts) - 1 or starts[user] >= starts[user + 1]:
            return None
        return int(starts[user])

    def _derive_order_address(self, rid: int) -> Record:
        """Order address ``rid`` (billing = 2 * order - 1, shipping = 2 * order): a copy of the customer
        user's first address as it was seeded (an order address is its own record in Oro)."""
        order_id = (rid + 1) // 2
        source = self.order_address_source(order_id)
        address = self._derive_address(source) if source is not None else {}
        created = self.store.tables["orders"].cols["createdAt"][order_id - 1]
        return {
            "label": address.get("label"), "street": address.get("street"), "street2": address.get("street2"),
            "city": address.get("city"), "postalCode": address.get("postalCode"),
            "organization": address.get("organization"), "customRegion": None, "namePrefix": None,
            "firstName": address.get("firstName"), "middleName": None, "lastName": address.get("lastName"),
            "nameSuffix": None, "phone": address.get("phone"), "fromExternalSource": False,
            "createdAt": created, "updatedAt": created, "country": address.get("country"),
            "region": address.get("region"),
        }

    def _derive_list(self, rid: int) -> Record:
        r = self.rng("shoppinglists", rid)
        items: Table = self.store.tables["shoppinglistitems"]
        starts = items.ranges["shoppingList"]
        total = sum(self._list_item_values(i)[2] for i in range(starts[rid], starts[rid + 1]))
        return {
            "name": r.choice(("Shopping List", "Reorder", "Q3 supplies", "Wishlist")), "notes": None,
            "default": True, "currency": "USD", "total": f"{total:.4f}", "subTotal": f"{total:.4f}",
            "owner": 1, "organization": 1,
        }

    def _list_item_values(self, rid: int) -> tuple[int, float, float, str]:
        r = self.rng("shoppinglistitems", rid)
        product_id = 1 + int(r.random() * self.product_count)
        product = self.seeded_products[product_id]
        qty = float(1 + int(r.random() * 10))
        return product_id, qty, qty * product["_price"], product["_unit"]

    def _derive_list_item(self, rid: int) -> Record:
        product_id, qty, total, unit = self._list_item_values(rid)
        lists: Table = self.store.tables["shoppinglistitems"]
        list_id = lists.cols["shoppingList"][rid - 1]
        user = self.store.tables["shoppinglists"].cols["customerUser"][list_id - 1] if list_id else 0
        return {"quantity": qty, "notes": None, "value": f"{total / qty:.4f}", "currency": "USD",
                "product": product_id, "unit": unit, "customerUser": user or None}

    def _derive_product_name(self, rid: int) -> Record:
        product = self.store.tables["products"].rows.get(rid) or {}
        return {"fallback": None, "string": product.get("_name"), "text": None, "localization": None,
                "product": rid}


def _no_fields(rid: int) -> Record:
    """Derived part of a row whose every field is an array column."""
    return {}


def _unit(seed: int, rid: int, salt: int) -> float:
    """A deterministic value in [0, 1) for (seed, id, salt): splitmix64, independent of the
    seeding sequence (so adding it changed none of the other seeded values)."""
    x = (seed * 0x9E3779B97F4A7C15 + rid * 0xBF58476D1CE4E5B9 + salt * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return ((x ^ (x >> 31)) >> 11) / float(1 << 53)


def consent_of(seed: int, uid: int) -> bool | None:
    """The seeded marketing consent of customer user ``uid``: True (given), False (declined) or
    None (never recorded). Guests and disabled users get the same mix."""
    x = _unit(seed, uid, 1)
    if x < CONSENT_GIVEN:
        return True
    if x < CONSENT_GIVEN + CONSENT_DECLINED:
        return False
    return None
