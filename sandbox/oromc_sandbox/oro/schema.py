"""The API resources the sandbox serves: fields, relationships, filter/sort whitelists, actions.

Everything here follows `orocommerce-api.md` §5 (resources, fields, which fields are filterable
and sortable: id, indexed columns, associations, explicitly configured fields) and §6 (create
requirements, upsert keys, Batch API availability).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# attribute kinds
STRING, TEXT, INTEGER, FLOAT, BOOLEAN, DATETIME, DATE, MONEY, ARRAY = (
    "string", "text", "integer", "float", "boolean", "datetime", "date", "money", "array",
)
# filter kinds
F_ID, F_STRING, F_INT, F_BOOL, F_DATETIME, F_ASSOC = "id", "string", "int", "bool", "datetime", "assoc"
OPERATORS = {
    F_ID: ("eq", "neq", "lt", "lte", "gt", "gte", "exists", "neq_or_null"),
    F_INT: ("eq", "neq", "lt", "lte", "gt", "gte", "exists", "neq_or_null"),
    F_DATETIME: ("eq", "neq", "lt", "lte", "gt", "gte", "exists", "neq_or_null"),
    F_STRING: ("eq", "neq", "exists", "neq_or_null"),
    F_BOOL: ("eq", "neq", "exists", "neq_or_null"),
    F_ASSOC: ("eq", "neq", "exists", "neq_or_null"),
}
ACTIONS = ("get", "get_list", "create", "update", "delete", "delete_list")
READ_ONLY = ("get", "get_list")


@dataclass(frozen=True)
class Attr:
    """An attribute. ``ro`` = read-only (a passed value is ignored, as Oro documents)."""

    name: str
    kind: str = STRING
    required: bool = False
    ro: bool = False
    max_length: int | None = None
    choices: tuple[str, ...] | None = None
    regex: str | None = None
    write_only: bool = False
    switch: str | None = None  # only present when this live switch is on (a custom field)


@dataclass(frozen=True)
class Rel:
    """A relationship. ``target`` None = polymorphic. ``computed`` = answered by a reverse index."""

    name: str
    target: str | None
    many: bool = False
    required: bool = False
    ro: bool = False
    computed: bool = False
    switch: str | None = None  # only present when this live switch is on
    targets: tuple[str, ...] = ()  # allowed types of a polymorphic relationship
    inverse: tuple[str, str] | None = None  # computed: (table, field) holding this record's id
    create_only: bool = False  # cannot be changed by an update (Oro: "extra fields constraint")


@dataclass(frozen=True)
class Filter:
    """A filterable field. ``array`` = accepts comma lists (default: ids and associations only);
    ``via`` = (relationship, field): the value is read through a to-one/first related record."""

    kind: str
    array: bool | None = None
    switch: str | None = None
    via: tuple[str, str] | None = None

    @property
    def allows_array(self) -> bool:
        """Whether comma-separated lists are accepted."""
        return self.kind in (F_ID, F_ASSOC) if self.array is None else self.array


@dataclass(frozen=True)
class Resource:
    """One JSON:API resource type."""

    type: str
    attrs: tuple[Attr, ...]
    rels: tuple[Rel, ...] = ()
    filters: dict[str, Filter] = field(default_factory=dict)
    sorters: dict[str, str | None] = field(default_factory=dict)  # field -> switch or None
    actions: tuple[str, ...] = ACTIONS
    batch: bool = False
    upsert_fields: tuple[tuple[str, ...], ...] = ()
    switch: str | None = None
    acl_type: str | None = None  # entity name in permission lists (defaults to the type)
    acl_actions: dict[str, str] = field(default_factory=dict)  # action -> the action checked instead
    title_meta: bool = True  # supports ``meta=title``

    def attr(self, name: str) -> Attr | None:
        """The attribute called ``name``."""
        return next((a for a in self.attrs if a.name == name), None)

    def rel(self, name: str) -> Rel | None:
        """The relationship called ``name``."""
        return next((r for r in self.rels if r.name == name), None)


def _assoc(*names: str) -> dict[str, Filter]:
    return {n: Filter(F_ASSOC) for n in names}


ID = {"id": Filter(F_ID)}
CREATED_UPDATED = (Attr("createdAt", DATETIME, ro=True), Attr("updatedAt", DATETIME, ro=True))
OWNER_ORG = (Rel("owner", "users"), Rel("organization", "organizations"))

RESOURCES: dict[str, Resource] = {}
CONSENT_FIELD = "marketing_consent"  # API name of the sandbox's custom consent field


def _add(res: Resource) -> None:
    RESOURCES[res.type] = res


_add(Resource(
    "customerusers",
    attrs=(
        Attr("confirmed", BOOLEAN), Attr("email", STRING, required=True, max_length=255),
        Attr("namePrefix", STRING, max_length=255), Attr("firstName", STRING, required=True, max_length=255),
        Attr("middleName", STRING, max_length=255), Attr("lastName", STRING, required=True, max_length=255),
        Attr("nameSuffix", STRING, max_length=255), Attr("birthday", DATE), *CREATED_UPDATED,
        Attr("enabled", BOOLEAN), Attr("loginCount", INTEGER, ro=True), Attr("isGuest", BOOLEAN),
        Attr("lastLogin", DATETIME, ro=True), Attr("passwordRequestedAt", DATETIME, ro=True),
        Attr("passwordChangedAt", DATETIME, ro=True), Attr("password", STRING, write_only=True),
        # boolean custom field added in Entity Management (--consent-source customer_user_field)
        Attr(CONSENT_FIELD, BOOLEAN, switch="consent_field"),
    ),
    rels=(
        Rel("customer", "customers", required=True), Rel("userRoles", "customeruserroles", many=True),
        Rel("addresses", "customeruseraddresses", many=True, ro=True, computed=True, inverse=("customeruseraddresses", "customerUser")),
        Rel("owner", "users"), Rel("salesRepresentatives", "users", many=True),
        Rel("organization", "organizations"), Rel("website", "websites"),
        Rel("auth_status", "customeruserauthstatuses"), Rel("tags", "tags", many=True, switch="tagging"),
        # OroConsentBundle's inverse relation, present once consentacceptances is an API resource
        Rel("acceptedConsents", "consentacceptances", many=True, ro=True, computed=True,
            inverse=("consentacceptances", "customerUser"), switch="consent_acceptances"),
    ),
    filters={
        **ID, "email": Filter(F_STRING),
        **_assoc("customer", "owner", "organization", "website", "userRoles", "salesRepresentatives", "addresses",
                 "auth_status"),
        "updatedAt": Filter(F_DATETIME, switch="customeruser_updatedat_filter"),
        "acceptedConsents": Filter(F_ASSOC, switch="consent_acceptances"),
    },
    sorters={"id": None, "email": None, "updatedAt": "customeruser_updatedat_filter"},
    batch=True,
))
_add(Resource(
    "customers",
    attrs=(Attr("name", STRING, required=True, max_length=255), *CREATED_UPDATED),
    rels=(
        Rel("parent", "customers"), Rel("children", "customers", many=True, ro=True, computed=True, inverse=("customers", "parent")),
        Rel("users", "customerusers", many=True, ro=True, computed=True, inverse=("customerusers", "customer")), *OWNER_ORG,
        Rel("salesRepresentatives", "users", many=True), Rel("internal_rating", "customerratings"),
        Rel("group", "customergroups"),
    ),
    filters={
        **ID, "name": Filter(F_STRING), "createdAt": Filter(F_DATETIME), "updatedAt": Filter(F_DATETIME),
        **_assoc("parent", "children", "users", "owner", "organization", "salesRepresentatives", "internal_rating", "group"),
    },
    sorters={"id": None, "name": None, "createdAt": None, "updatedAt": None},
    batch=True,
))
_add(Resource(
    "customergroups",
    attrs=(Attr("name", STRING, required=True, max_length=255),),
    rels=OWNER_ORG,
    filters={**ID, "name": Filter(F_STRING), **_assoc("owner", "organization")},
    sorters={"id": None, "name": None},
))
_add(Resource(
    "customeruseraddresses",
    attrs=(
        Attr("label", STRING, max_length=255), Attr("namePrefix", STRING, max_length=255),
        Attr("firstName", STRING, max_length=255), Attr("middleName", STRING, max_length=255),
        Attr("lastName", STRING, max_length=255), Attr("nameSuffix", STRING, max_length=255),
        Attr("organization", STRING, max_length=255), Attr("street", STRING, required=True, max_length=500),
        Attr("street2", STRING, max_length=500), Attr("city", STRING, required=True, max_length=255),
        Attr("postalCode", STRING, required=True, max_length=255), Attr("customRegion", STRING, max_length=255),
        Attr("phone", STRING, max_length=255), Attr("primary", BOOLEAN), Attr("validatedAt", DATETIME),
        *CREATED_UPDATED, Attr("types", ARRAY),
    ),
    rels=(
        Rel("customerUser", "customerusers", required=True, create_only=True), Rel("owner", "users"),
        Rel("systemOrganization", "organizations", create_only=True), Rel("country", "countries", required=True),
        Rel("region", "regions"),
    ),
    filters={**ID, **_assoc("customerUser", "owner", "systemOrganization", "country", "region")},
    sorters={"id": None},
    batch=True,
))
_add(Resource(
    "orders",
    attrs=(
        Attr("identifier", STRING, max_length=255), Attr("poNumber", STRING, max_length=255),
        Attr("customerNotes", TEXT), Attr("shipUntil", DATE), Attr("currency", STRING, max_length=3),
        Attr("subtotalValue", MONEY, ro=True), Attr("totalValue", MONEY, ro=True),
        Attr("totalDiscountsAmount", MONEY, ro=True), Attr("shippingMethod", STRING),
        Attr("shippingMethodType", STRING), Attr("estimatedShippingCostAmount", MONEY),
        Attr("overriddenShippingCostAmount", MONEY), Attr("sourceEntityIdentifier", STRING),
        Attr("external", BOOLEAN), *CREATED_UPDATED,
    ),
    rels=(
        Rel("lineItems", "orderlineitems", many=True, ro=True, computed=True, inverse=("orderlineitems", "orders")),
        Rel("internalStatus", "orderinternalstatuses", ro=True), Rel("status", "orderstatuses"),
        Rel("customerUser", "customerusers"), Rel("customer", "customers", required=True), *OWNER_ORG,
        # custom many-to-one relation Order -> Campaign added in Entity Management (conversions)
        Rel("campaign", "campaigns", switch="order_campaign_relation"),
    ),
    filters={
        **ID, "identifier": Filter(F_STRING, array=True), "poNumber": Filter(F_STRING, array=True), "external": Filter(F_BOOL),
        "createdAt": Filter(F_DATETIME), "updatedAt": Filter(F_DATETIME),
        **_assoc("customer", "customerUser", "owner", "organization", "internalStatus", "status", "lineItems"),
        "campaign": Filter(F_ASSOC, switch="order_campaign_relation"),
    },
    sorters={"id": None, "external": None, "createdAt": None, "updatedAt": None},
    batch=True,
    upsert_fields=(("identifier",),),
))
_add(Resource(
    "orderlineitems",
    attrs=(
        Attr("productSku", STRING, max_length=255), Attr("productName", STRING, max_length=255),
        Attr("productVariantFields", ARRAY), Attr("freeFormProduct", STRING, max_length=255),
        Attr("quantity", FLOAT, required=True), Attr("productUnitCode", STRING, max_length=255),
        Attr("value", MONEY), Attr("currency", STRING, max_length=3), Attr("priceType", INTEGER),
        Attr("shipBy", DATE), Attr("fromExternalSource", BOOLEAN), Attr("comment", TEXT), *CREATED_UPDATED,
    ),
    rels=(
        Rel("orders", "orders", many=True, required=True), Rel("product", "products"),
        Rel("parentProduct", "products"), Rel("productUnit", "productunits"),
    ),
    filters={
        **ID, "createdAt": Filter(F_DATETIME), "updatedAt": Filter(F_DATETIME),
        **_assoc("orders", "product", "parentProduct", "productUnit"),
        "customer": Filter(F_ASSOC, via=("orders", "customer")),
        "customerUser": Filter(F_ASSOC, via=("orders", "customerUser")),
    },
    sorters={"id": None, "createdAt": None, "updatedAt": None},
))
_add(Resource(
    "products",
    attrs=(
        Attr("sku", STRING, required=True, max_length=255),
        Attr("status", STRING, choices=("enabled", "disabled")), Attr("type", STRING, choices=("simple", "configurable", "kit")),
        Attr("featured", BOOLEAN), Attr("newArrival", BOOLEAN), *CREATED_UPDATED,
    ),
    rels=(*OWNER_ORG, Rel("names", "productnames", many=True, ro=True, computed=True, inverse=("productnames", "product")),
          Rel("primaryUnitPrecision", "productunits")),
    filters={**ID, "sku": Filter(F_STRING), "createdAt": Filter(F_DATETIME), "updatedAt": Filter(F_DATETIME), **_assoc("owner", "organization")},
    sorters={"id": None, "sku": None, "createdAt": None, "updatedAt": None},
    upsert_fields=(("sku",),),
))
_add(Resource(
    "productnames",
    attrs=(Attr("fallback", STRING, ro=True), Attr("string", STRING, ro=True), Attr("text", TEXT, ro=True)),
    rels=(Rel("localization", "localizations", ro=True), Rel("product", "products", ro=True)),
    filters={**ID, **_assoc("product", "localization")},
    sorters={"id": None},
    actions=READ_ONLY,
))
_add(Resource(
    "tags",
    attrs=(Attr("name", STRING, required=True, max_length=50), *CREATED_UPDATED),
    rels=(Rel("taxonomy", "taxonomies"), *OWNER_ORG,
          Rel("entities", None, many=True, computed=True, ro=True, targets=("customerusers",), inverse=("customerusers", "tags"))),
    filters={**ID, "name": Filter(F_STRING), **_assoc("taxonomy", "owner", "organization")},
    sorters={"id": None, "name": None},
))
_add(Resource(
    "campaigns",
    attrs=(
        Attr("name", STRING, required=True, max_length=100),
        Attr("code", STRING, required=True, max_length=20, regex=r"^[a-zA-Z0-9_\-]*$"),
        Attr("description", TEXT), Attr("startDate", DATE), Attr("endDate", DATE), Attr("budget", MONEY),
        Attr("reportPeriod", STRING, choices=("hour", "day", "month", "year")), *CREATED_UPDATED,
    ),
    rels=OWNER_ORG,
    filters={**ID, "code": Filter(F_STRING), **_assoc("owner", "organization")},
    sorters={"id": None, "code": None},
    upsert_fields=(("code",),),
))
_add(Resource(
    "marketingactivities",
    attrs=(Attr("actionDate", DATETIME, required=True), Attr("details", TEXT)),
    rels=(
        Rel("owner", "organizations"), Rel("campaign", "campaigns"),
        Rel("marketingActivityType", "marketingactivitytypes", required=True),
        Rel("entity", None, required=True, targets=("customerusers", "customers")),
        Rel("relatedCampaign", None, targets=("campaigns",)),
    ),
    filters={**ID, "actionDate": Filter(F_DATETIME), **_assoc("campaign", "marketingActivityType", "owner")},
    sorters={"id": None, "actionDate": None},
    title_meta=False,
))
_add(Resource(
    "shoppinglists",
    attrs=(
        Attr("name", STRING), Attr("notes", TEXT), *CREATED_UPDATED, Attr("default", BOOLEAN),
        Attr("currency", STRING), Attr("total", MONEY), Attr("subTotal", MONEY),
    ),
    rels=(
        Rel("items", "shoppinglistitems", many=True, computed=True, ro=True, inverse=("shoppinglistitems", "shoppingList")),
        Rel("customerUser", "customerusers"), Rel("customer", "customers"), *OWNER_ORG,
    ),
    filters={**ID, "createdAt": Filter(F_DATETIME), "updatedAt": Filter(F_DATETIME), **_assoc("customerUser", "customer", "items")},
    sorters={"id": None, "createdAt": None, "updatedAt": None},
    actions=READ_ONLY,
    switch="shoppinglists",
))
_add(Resource(
    "shoppinglistitems",
    attrs=(Attr("quantity", FLOAT), Attr("notes", TEXT), Attr("value", MONEY), Attr("currency", STRING), *CREATED_UPDATED),
    rels=(Rel("shoppingList", "shoppinglists"), Rel("product", "products"), Rel("unit", "productunits"),
          Rel("customerUser", "customerusers")),
    filters={**ID, "updatedAt": Filter(F_DATETIME), **_assoc("shoppingList", "product", "unit", "customerUser")},
    sorters={"id": None, "updatedAt": None},
    actions=READ_ONLY,
    switch="shoppinglists",
))
# OroConsentBundle exposed by an api.yml customization (--consent-source consent_acceptances).
_add(Resource(
    "consents",
    attrs=(Attr("mandatory", BOOLEAN, ro=True), Attr("declinedNotification", BOOLEAN, ro=True), *CREATED_UPDATED),
    rels=(Rel("names", "localizedfallbackvalues", many=True, ro=True), *OWNER_ORG),
    filters={**ID, "createdAt": Filter(F_DATETIME), **_assoc("names", "owner", "organization")},
    sorters={"id": None, "createdAt": None},
    actions=READ_ONLY,
    switch="consent_acceptances",
))
_add(Resource(
    "consentacceptances",
    attrs=(Attr("createdAt", DATETIME, ro=True),),
    rels=(Rel("customerUser", "customerusers", required=True, create_only=True),
          Rel("consent", "consents", required=True, create_only=True)),
    filters={**ID, "createdAt": Filter(F_DATETIME), **_assoc("customerUser", "consent")},
    sorters={"id": None, "createdAt": None},
    actions=("get", "get_list", "create", "delete", "delete_list"),
    switch="consent_acceptances",
    acl_type="customerusers",  # acl_resource: the customer-user permissions (view; edit for writes)
    acl_actions={"create": "update", "delete": "update", "delete_list": "update"},
))
_add(Resource(
    "localizedfallbackvalues",
    attrs=(Attr("fallback", STRING, ro=True), Attr("string", STRING, ro=True), Attr("text", TEXT, ro=True)),
    rels=(Rel("localization", "localizations", ro=True),),
    filters={**ID, **_assoc("localization")},
    sorters={"id": None},
    actions=READ_ONLY,
))
_add(Resource(
    "asyncoperations",
    attrs=(
        Attr("status", STRING, ro=True), Attr("progress", FLOAT, ro=True), *CREATED_UPDATED,
        Attr("elapsedTime", INTEGER, ro=True), Attr("entityType", STRING, ro=True), Attr("summary", ARRAY, ro=True),
    ),
    rels=OWNER_ORG,
    actions=("get",),
    title_meta=False,
))

# Reference data (dictionaries / enums / system records): read-only here.
for _type, _attrs in (
    ("marketingactivitytypes", ("name", "priority", "default")),
    ("orderinternalstatuses", ("name", "priority", "default")),
    ("orderstatuses", ("name", "priority", "default")),
    ("customeruserauthstatuses", ("name", "priority", "default")),
    ("customerratings", ("name", "priority", "default")),
    ("customeruserroles", ("role", "label", "selfManaged", "public")),
    ("users", ("username", "email", "firstName", "lastName", "enabled")),
    ("organizations", ("name", "enabled")),
    ("websites", ("name", "default")),
    ("countries", ("iso3Code", "name")),
    ("regions", ("code", "name")),
    ("productunits", ("defaultPrecision",)),
    ("taxonomies", ("name",)),
    ("localizations", ("name", "formattingCode")),
):
    _add(Resource(
        _type,
        attrs=tuple(Attr(a, ro=True) for a in _attrs),
        filters=dict(ID),
        sorters={"id": None},
        actions=READ_ONLY,
    ))


def resource(type_: str, switches: dict[str, object]) -> Resource | None:
    """The resource definition if ``type_`` is served under the current switches."""
    res = RESOURCES.get(type_)
    if res is None or (res.switch and not switches.get(res.switch)):
        return None
    return res


def rel_enabled(rel: Rel | Attr, switches: dict[str, object]) -> bool:
    """True when the relationship (or custom attribute) is present under the current switches."""
    return not rel.switch or bool(switches.get(rel.switch))
