"""The API resources the sandbox serves: fields, relationships, filter/sort whitelists, actions.

Everything here follows `orocommerce-api.md` §5 (resources, fields, create requirements, upsert
keys, Batch API availability) and Oro's own rules for which fields are filterable and sortable
(oroinc/platform 6.1.0, ``ApiBundle/Processor/GetConfig/CompleteFilters.php`` and
``CompleteSorters.php`` with ``Util/DoctrineHelper::getIndexedFields``/``getIndexedAssociations``):

* the identifier; fields whose column is the first column of an index or is ``unique``; fields
  enabled in the entity's ``api.yml`` ``filters:``/``sorters:`` sections;
* **every association** with a single-column target id, enum fields included (filter *and*
  sorter), except those whose API field has no property path (computed ones such as ``tags`` or
  ``orderSubtotals``) and nested (polymorphic) associations;
* comma lists (``allow_array``) for every data type except ``string``, ``text`` and ``boolean``
  unless ``api.yml`` enables them; ``a..b`` ranges likewise except ``string``, ``text``,
  ``boolean``, ``guid``, ``currency`` (``Resources/config/oro/app.yml``
  ``filter_disallow_array_data_types`` / ``filter_disallow_range_data_types``);
* operators per data type (same ``app.yml``, ``filters:``): numbers and dates
  ``= != < <= > >= * !*``, strings/booleans ``= != * !*``; a to-many association (a
  collection) supports ``eq``, ``neq``, ``exists``, ``neq_or_null``
  (``Filter/ComparisonFilter::doBuildCollectionExpression``).

Each resource below lists its indexed/configured fields; :func:`_add` adds the association
filters and sorters.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

# attribute kinds
STRING, TEXT, INTEGER, FLOAT, BOOLEAN, DATETIME, DATE, MONEY, ARRAY = (
    "string", "text", "integer", "float", "boolean", "datetime", "date", "money", "array",
)
# filter kinds
F_ID, F_STRING, F_INT, F_BOOL, F_DATETIME, F_ASSOC = "id", "string", "int", "bool", "datetime", "assoc"
NUMERIC_OPS = ("eq", "neq", "lt", "lte", "gt", "gte", "exists", "neq_or_null")
STRING_OPS = ("eq", "neq", "exists", "neq_or_null")
COLLECTION_OPS = ("eq", "neq", "exists", "neq_or_null")
# Every operator name Oro knows (``app.yml`` ``filter_operators``): ``filter[f][<name>]`` with a
# name outside this list is not an operator but a nested path (-> "The filter is not supported.").
KNOWN_OPERATORS = (*NUMERIC_OPS, "contains", "not_contains", "starts_with", "not_starts_with", "ends_with",
                   "not_ends_with", "empty")
# operators that accept a comma list or an ``a..b`` range (``ComparisonFilter::SUPPORT_SEVERAL_VALUES_OPERATORS``)
SEVERAL_VALUES_OPS = ("eq", "neq", "neq_or_null")
# resources whose ids are strings (enum options, ISO codes, unit codes)
STRING_ID_TYPES = frozenset({
    "marketingactivitytypes", "orderinternalstatuses", "orderstatuses", "ordershippingstatuses", "customerratings",
    "countries", "regions", "productunits", "customeruserauthstatuses", "productprices",
})
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
    create_only: bool = False  # ``update: … mapped: false``: a value sent on update is accepted and ignored
    route_ro: bool = False  # ``subresources: … update_relationship: false``: its relationship route is read-only
    indexed: bool = True  # a Doctrine association: gets a filter and a sorter (see the module docstring)
    ignored: str | None = None  # switch that must be ON for writes to take effect (else accepted and ignored)
    no_subresource: bool = False  # ``subresources: {name: false}``: no relationship routes, no links


@dataclass(frozen=True)
class Filter:
    """A filterable field.

    ``array``/``range`` override the data-type defaults (``allow_array`` in ``api.yml``); ``via`` =
    (relationship, field): the value is read through a to-one/first related record; ``ops`` =
    explicit ``operators``; ``many`` = a to-many association; ``string_ids`` = an association to a
    resource with string ids; ``case_insensitive`` = the ``case_insensitive`` filter option.
    """

    kind: str
    array: bool | None = None
    switch: str | None = None
    via: tuple[str, str] | None = None
    ops: tuple[str, ...] | None = None
    many: bool = False
    string_ids: bool = False
    case_insensitive: bool = False

    def value_type(self, id_is_int: bool = True) -> str:
        """The filter's data type class: ``int``, ``datetime``, ``bool`` or ``string``."""
        if self.kind == F_ID:
            return F_INT if id_is_int else F_STRING
        if self.kind == F_ASSOC:
            return F_STRING if self.string_ids else F_INT
        return self.kind

    def allows_array(self, id_is_int: bool = True) -> bool:
        """Whether comma-separated lists are accepted (never for string and boolean by default)."""
        if self.array is not None:
            return self.array
        return self.value_type(id_is_int) in (F_INT, F_DATETIME)

    def allows_range(self, id_is_int: bool = True) -> bool:
        """Whether ``a..b`` ranges are accepted."""
        return self.value_type(id_is_int) in (F_INT, F_DATETIME)

    def operators(self, id_is_int: bool = True) -> tuple[str, ...]:
        """Supported operator names."""
        if self.ops is not None:
            return self.ops
        if self.many:
            return COLLECTION_OPS
        return NUMERIC_OPS if self.value_type(id_is_int) in (F_INT, F_DATETIME) else STRING_OPS


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
    # ``meta=title``: "title" (supported), "no_title" (disable_meta_properties: [title]),
    # "disabled" (disable_meta_properties: true)
    meta: str = "title"
    acl_actions: dict[str, str] = field(default_factory=dict)  # action -> the action checked instead

    def attr(self, name: str) -> Attr | None:
        """The attribute called ``name``."""
        return next((a for a in self.attrs if a.name == name), None)

    def rel(self, name: str) -> Rel | None:
        """The relationship called ``name``."""
        return next((r for r in self.rels if r.name == name), None)


ID = {"id": Filter(F_ID)}
CREATED_UPDATED = (Attr("createdAt", DATETIME, ro=True), Attr("updatedAt", DATETIME, ro=True))
OWNER_ORG = (Rel("owner", "users"), Rel("organization", "organizations"))

RESOURCES: dict[str, Resource] = {}
CONSENT_FIELD = "marketing_consent"  # API name of the sandbox's custom consent field


def _add(res: Resource) -> None:
    """Register ``res`` with the association filters and sorters Oro adds automatically."""
    filters = dict(res.filters)
    sorters = dict(res.sorters)
    for rel in res.rels:
        if not rel.indexed or rel.target is None:
            continue
        switch = rel.switch or rel.ignored
        auto = Filter(F_ASSOC, switch=switch, many=rel.many, string_ids=rel.target in STRING_ID_TYPES)
        given = filters.get(rel.name)
        filters[rel.name] = auto if given is None else replace(
            given, many=rel.many, string_ids=rel.target in STRING_ID_TYPES, switch=given.switch or switch)
        sorters.setdefault(rel.name, switch)
    RESOURCES[res.type] = replace(res, filters=filters, sorters=sorters)


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
        Rel("addresses", "customeruseraddresses", many=True, ro=True, computed=True,
            inverse=("customeruseraddresses", "customerUser")),
        Rel("owner", "users"), Rel("salesRepresentatives", "users", many=True),
        Rel("organization", "organizations"), Rel("website", "websites"),
        Rel("auth_status", "customeruserauthstatuses"),
        # TagBundle's AddTagsAssociation: no property path, so no filter and no sorter
        Rel("tags", "tags", many=True, switch="tagging", indexed=False),
        # OroConsentBundle's inverse relation, present once consentacceptances is an API resource
        Rel("acceptedConsents", "consentacceptances", many=True, ro=True, computed=True,
            inverse=("consentacceptances", "customerUser"), switch="consent_acceptances"),
    ),
    # CustomerUser indexes: email, email_lowercase (excluded field) - customer-portal Entity/CustomerUser.php
    filters={**ID, "email": Filter(F_STRING), "updatedAt": Filter(F_DATETIME, switch="customeruser_updatedat_filter")},
    sorters={"id": None, "email": None, "updatedAt": "customeruser_updatedat_filter"},
    batch=True,
))
_add(Resource(
    "customers",
    attrs=(Attr("name", STRING, required=True, max_length=255), *CREATED_UPDATED),
    rels=(
        Rel("parent", "customers"),
        Rel("children", "customers", many=True, ro=True, computed=True, inverse=("customers", "parent")),
        Rel("users", "customerusers", many=True, ro=True, computed=True, inverse=("customerusers", "customer")),
        *OWNER_ORG,
        Rel("salesRepresentatives", "users", many=True), Rel("internal_rating", "customerratings"),
        Rel("group", "customergroups"),
    ),
    # Customer indexes: name, created_at, updated_at (+ api.yml filters createdAt/updatedAt)
    filters={**ID, "name": Filter(F_STRING), "createdAt": Filter(F_DATETIME), "updatedAt": Filter(F_DATETIME)},
    sorters={"id": None, "name": None, "createdAt": None, "updatedAt": None},
    batch=True,
))
_add(Resource(
    "customergroups",
    attrs=(Attr("name", STRING, required=True, max_length=255),),
    rels=OWNER_ORG,
    filters={**ID, "name": Filter(F_STRING)},  # index oro_customer_group_name_idx
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
        # customer-portal api.yml: customerUser not mapped on update; no update_relationship for
        # customerUser, systemOrganization, country, region (CustomerUserAddressTest::testTryToUpdateCustomerUser*)
        Rel("customerUser", "customerusers", required=True, create_only=True, route_ro=True), Rel("owner", "users"),
        Rel("systemOrganization", "organizations", route_ro=True),
        Rel("country", "countries", required=True, route_ro=True), Rel("region", "regions", route_ro=True),
    ),
    # customer-portal api.yml: country/region allow_array, addressType (types.type, string, array), types excluded
    filters={**ID, "country": Filter(F_ASSOC, array=True), "region": Filter(F_ASSOC, array=True),
             "addressType": Filter(F_STRING, array=True)},
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
    # the relationships of get_order.yml (orocommerce 6.1.9 OrderBundle Tests/Functional/Api/RestJsonApi/responses)
    rels=(
        Rel("billingAddress", "orderaddresses", ro=True), Rel("shippingAddress", "orderaddresses", ro=True),
        Rel("lineItems", "orderlineitems", many=True, ro=True, computed=True, inverse=("orderlineitems", "orders")),
        Rel("discounts", "orderdiscounts", many=True, ro=True),
        Rel("shippingTrackings", "ordershippingtrackings", many=True, ro=True),
        Rel("paymentTerm", "paymentterms"),
        Rel("internalStatus", "orderinternalstatuses", ro=True),
        # ConfigureOrderStatusField: without "Enable External Status Management" the field has no property
        # path (always null, writes accepted and ignored, no filter/sorter)
        Rel("status", "orderstatuses", ignored="order_external_status_management"),
        Rel("shippingStatus", "ordershippingstatuses"),
        Rel("source", None, ro=True, indexed=False),  # nestedAssociation (sourceEntityClass/sourceEntityId)
        *OWNER_ORG, Rel("customerUser", "customerusers"), Rel("customer", "customers", required=True),
        # api.yml: orderSubtotals is computed (property path "_"), its subresource is disabled
        Rel("orderSubtotals", "ordersubtotals", many=True, ro=True, computed=True, indexed=False, no_subresource=True),
        Rel("documents", "files", many=True, ro=True),
        # custom many-to-one relation Order -> Campaign added in Entity Management (conversions)
        Rel("campaign", "campaigns", switch="order_campaign_relation"),
    ),
    # Order: identifier is unique, created_at indexed; api.yml adds poNumber, external, updatedAt and makes
    # identifier/poNumber arrays and case-insensitive (orocommerce OrderBundle Resources/config/oro/api.yml)
    filters={
        **ID, "identifier": Filter(F_STRING, array=True, case_insensitive=True),
        "poNumber": Filter(F_STRING, array=True, case_insensitive=True), "external": Filter(F_BOOL),
        "createdAt": Filter(F_DATETIME), "updatedAt": Filter(F_DATETIME),
    },
    sorters={"id": None, "identifier": None, "external": None, "createdAt": None, "updatedAt": None},
    batch=True,
    upsert_fields=(("identifier",),),
))
_add(Resource(
    "orderaddresses",
    attrs=(
        Attr("label", STRING, ro=True), Attr("street", STRING, ro=True), Attr("street2", STRING, ro=True),
        Attr("city", STRING, ro=True), Attr("postalCode", STRING, ro=True), Attr("organization", STRING, ro=True),
        Attr("customRegion", STRING, ro=True), Attr("namePrefix", STRING, ro=True), Attr("firstName", STRING, ro=True),
        Attr("middleName", STRING, ro=True), Attr("lastName", STRING, ro=True), Attr("nameSuffix", STRING, ro=True),
        Attr("phone", STRING, ro=True), Attr("fromExternalSource", BOOLEAN, ro=True), *CREATED_UPDATED,
    ),
    rels=(Rel("country", "countries", ro=True), Rel("region", "regions", ro=True)),
    filters=dict(ID),
    sorters={"id": None},
    actions=READ_ONLY,
))
_add(Resource(
    "ordersubtotals",
    attrs=(
        Attr("orderSubtotalType", STRING, ro=True), Attr("label", STRING, ro=True), Attr("amount", MONEY, ro=True),
        Attr("signedAmount", MONEY, ro=True), Attr("currency", STRING, ro=True), Attr("visible", BOOLEAN, ro=True),
        Attr("data", ARRAY, ro=True),
    ),
    rels=(Rel("order", "orders", ro=True, indexed=False, no_subresource=True),
          Rel("priceList", "pricelists", ro=True, indexed=False, no_subresource=True)),
    # api.yml: get_list only (paging and sorting disabled), with the required filter[order] (integer, "=")
    filters={"order": Filter(F_INT, ops=("eq",), array=False)},
    actions=("get_list",),
    meta="disabled",
    acl_type="orders",
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
    # api.yml: createdAt/updatedAt filters and sorters; customer/customerUser through orders (integer,
    # allow_array, operators = and !=)
    filters={
        **ID, "createdAt": Filter(F_DATETIME), "updatedAt": Filter(F_DATETIME),
        "customer": Filter(F_ASSOC, via=("orders", "customer"), ops=("eq", "neq"), array=True),
        "customerUser": Filter(F_ASSOC, via=("orders", "customerUser"), ops=("eq", "neq"), array=True),
    },
    sorters={"id": None, "createdAt": None, "updatedAt": None},
    meta="no_title",  # api.yml: disable_meta_properties: [title]
))
_add(Resource(
    "products",
    attrs=(
        Attr("sku", STRING, required=True, max_length=255),
        Attr("status", STRING, choices=("enabled", "disabled")),
        # the entity field "type" is renamed because JSON:API reserves "type"
        # (platform ApiBundle Processor/GetConfig/JsonApi/FixFieldNaming.php): "productType"
        Attr("productType", STRING, choices=("simple", "configurable", "kit")),
        Attr("featured", BOOLEAN), Attr("newArrival", BOOLEAN), *CREATED_UPDATED,
    ),
    rels=(Rel("owner", "businessunits"), Rel("organization", "organizations"),
          Rel("names", "productnames", many=True, ro=True, computed=True, inverse=("productnames", "product")),
          Rel("images", "productimages", many=True, ro=True, computed=True, inverse=("productimages", "product")),
          Rel("primaryUnitPrecision", "productunits")),
    # Product indexes (orocommerce Entity/Product.php): sku, status, created_at, updated_at, is_featured,
    # is_new_arrival (+ excluded name columns); api.yml: sku allow_array, update_list: true
    filters={**ID, "sku": Filter(F_STRING, array=True), "status": Filter(F_STRING), "featured": Filter(F_BOOL),
             "newArrival": Filter(F_BOOL), "createdAt": Filter(F_DATETIME), "updatedAt": Filter(F_DATETIME)},
    sorters={"id": None, "sku": None, "status": None, "featured": None, "newArrival": None, "createdAt": None,
             "updatedAt": None},
    batch=True,
    upsert_fields=(("sku",),),
))
_add(Resource(
    "productnames",
    attrs=(Attr("fallback", STRING, ro=True), Attr("string", STRING, ro=True), Attr("text", TEXT, ro=True)),
    rels=(Rel("localization", "localizations", ro=True), Rel("product", "products", ro=True)),
    filters={**ID, "fallback": Filter(F_STRING), "string": Filter(F_STRING)},  # indexes fallback, string
    sorters={"id": None, "fallback": None, "string": None},
    actions=READ_ONLY,
))
# ProductBundle images (orocommerce ProductBundle Resources/doc/api/product_image.md, product_image_type.md,
# file.md; Tests/Functional/Api/RestJsonApi/ProductImageTest.php + responses/get_product_image_include.yml):
# a product image links its product, its types (productimagetypes: productImageTypeType main, listing or
# additional) and its file; AttachmentBundle's `files` carry the computed `filePath`, a list of
# {url, dimension, url_webp} with relative /media/cache/attachment/filter/<dimension>/<hash>/<file id>/<name>
# URLs of the resized versions. Served read-only (the tap reads images, never uploads them).
_add(Resource(
    "productimages",
    attrs=(Attr("updatedAt", DATETIME, ro=True),),
    rels=(Rel("product", "products", ro=True),
          Rel("types", "productimagetypes", many=True, ro=True, computed=True,
              inverse=("productimagetypes", "productImage")),
          Rel("image", "files", ro=True)),
    filters={**ID, "updatedAt": Filter(F_DATETIME)},
    sorters={"id": None, "updatedAt": None},
    actions=READ_ONLY,
))
_add(Resource(
    "productimagetypes",
    attrs=(Attr("productImageTypeType", STRING, ro=True),),
    rels=(Rel("productImage", "productimages", ro=True),),
    filters={**ID},
    sorters={"id": None},
    actions=READ_ONLY,
))
_add(Resource(
    "files",
    attrs=(Attr("mimeType", STRING, ro=True), Attr("originalFilename", STRING, ro=True),
           Attr("fileSize", INTEGER, ro=True), Attr("filePath", ARRAY, ro=True), *CREATED_UPDATED),
    actions=("get",),  # AttachmentBundle: a file is read through its owner (no get_list)
))
# PricingBundle (orocommerce PricingBundle Resources/config/oro/api.yml, doc/api/product_price.md): prices
# live in price lists; ProductPrice ids are strings "<uuid>-<price list id>" (sharded table), `id` filter
# allow_array, `priceList` filter "=" only and required (StorePriceListInContextByFilter). Served here
# read-only, and PriceList with name/active only (the tap reads prices, never writes them).
_add(Resource(
    "pricelists",
    attrs=(Attr("name", STRING, ro=True), Attr("active", BOOLEAN, ro=True)),
    filters={**ID, "name": Filter(F_STRING)},
    sorters={"id": None, "name": None},
    actions=READ_ONLY,
))
_add(Resource(
    "productprices",
    attrs=(Attr("quantity", FLOAT, ro=True), Attr("currency", STRING, ro=True), Attr("value", MONEY, ro=True)),
    # api.yml: get_subresource and get_relationship disabled
    rels=(Rel("priceList", "pricelists", ro=True, no_subresource=True),
          Rel("product", "products", ro=True, no_subresource=True),
          Rel("unit", "productunits", ro=True, no_subresource=True)),
    filters={"id": Filter(F_ID, array=True), "priceList": Filter(F_ASSOC, array=False, ops=("eq",))},
    sorters={"id": None},
    actions=READ_ONLY,
    meta="no_title",
))
_add(Resource(
    "tags",
    attrs=(Attr("name", STRING, required=True, max_length=50), *CREATED_UPDATED),
    rels=(Rel("taxonomy", "taxonomies"), *OWNER_ORG,
          Rel("entities", None, many=True, computed=True, ro=True, targets=("customerusers",),
              inverse=("customerusers", "tags"))),
    filters={**ID, "name": Filter(F_STRING)},  # index (name, organization_id)
    sorters={"id": None, "name": None},
))
#: Custom fields on Campaign (Entity Management, --campaign-statistics-fields) holding a Mailchimp
#: campaign's report figures: integers, two percent fields (fractions 0-1) and a money field.
CAMPAIGN_STATISTICS_FIELDS: dict[str, str] = {
    "mc_emails_sent": INTEGER, "mc_opens": INTEGER, "mc_unique_opens": INTEGER, "mc_clicks": INTEGER,
    "mc_bounces": INTEGER, "mc_unsubscribes": INTEGER, "mc_open_rate": FLOAT, "mc_click_rate": FLOAT,
    "mc_orders": INTEGER, "mc_revenue": MONEY,
}
_add(Resource(
    "campaigns",
    attrs=(
        Attr("name", STRING, required=True, max_length=100),
        Attr("code", STRING, required=True, max_length=20, regex=r"^[a-zA-Z0-9_\-]*$"),
        Attr("description", TEXT), Attr("startDate", DATE), Attr("endDate", DATE), Attr("budget", MONEY),
        Attr("reportPeriod", STRING, choices=("hour", "day", "month", "year")), *CREATED_UPDATED,
        *(Attr(name, kind, switch="campaign_statistics_fields") for name, kind in CAMPAIGN_STATISTICS_FIELDS.items()),
    ),
    rels=OWNER_ORG,
    filters={**ID, "code": Filter(F_STRING)},  # code is a unique column (marketing CampaignBundle Entity/Campaign.php)
    sorters={"id": None, "code": None},
    upsert_fields=(("code",),),
))
_add(Resource(
    "marketingactivities",
    attrs=(Attr("actionDate", DATETIME, required=True), Attr("details", TEXT)),
    rels=(
        Rel("owner", "organizations"), Rel("campaign", "campaigns"),
        Rel("marketingActivityType", "marketingactivitytypes", required=True),
        # nested associations (entityClass/entityId, relatedCampaignClass/Id): no filter, no sorter
        Rel("entity", None, required=True, targets=("customerusers", "customers")),
        Rel("relatedCampaign", None, targets=("campaigns",)),
    ),
    filters={**ID, "actionDate": Filter(F_DATETIME)},  # index action_date
    sorters={"id": None, "actionDate": None},
    meta="no_title",
))
_add(Resource(
    "shoppinglists",
    attrs=(
        Attr("name", STRING), Attr("notes", TEXT), *CREATED_UPDATED, Attr("default", BOOLEAN),
        Attr("currency", STRING), Attr("total", MONEY), Attr("subTotal", MONEY),
    ),
    rels=(
        Rel("items", "shoppinglistitems", many=True, computed=True, ro=True,
            inverse=("shoppinglistitems", "shoppingList")),
        Rel("customerUser", "customerusers"), Rel("customer", "customers"), *OWNER_ORG,
    ),
    # ShoppingList index created_at; the custom api.yml adds the updatedAt filter and sorter
    filters={**ID, "createdAt": Filter(F_DATETIME), "updatedAt": Filter(F_DATETIME)},
    sorters={"id": None, "createdAt": None, "updatedAt": None},
    actions=READ_ONLY,
    switch="shoppinglists",
))
_add(Resource(
    "shoppinglistitems",
    attrs=(Attr("quantity", FLOAT), Attr("notes", TEXT), Attr("value", MONEY), Attr("currency", STRING),
           *CREATED_UPDATED),
    rels=(Rel("shoppingList", "shoppinglists"), Rel("product", "products"), Rel("unit", "productunits"),
          Rel("customerUser", "customerusers")),
    filters={**ID, "updatedAt": Filter(F_DATETIME)},
    sorters={"id": None, "updatedAt": None},
    actions=READ_ONLY,
    switch="shoppinglists",
))
# OroConsentBundle exposed by an api.yml customization (--consent-source consent_acceptances).
_add(Resource(
    "consents",
    attrs=(Attr("mandatory", BOOLEAN, ro=True), Attr("declinedNotification", BOOLEAN, ro=True), *CREATED_UPDATED),
    rels=(Rel("names", "localizedfallbackvalues", many=True, ro=True), *OWNER_ORG),
    filters={**ID, "createdAt": Filter(F_DATETIME)},
    sorters={"id": None, "createdAt": None},
    actions=READ_ONLY,
    switch="consent_acceptances",
))
_add(Resource(
    "consentacceptances",
    attrs=(Attr("createdAt", DATETIME, ro=True),),
    rels=(Rel("customerUser", "customerusers", required=True, create_only=True),
          Rel("consent", "consents", required=True, create_only=True)),
    filters={**ID, "createdAt": Filter(F_DATETIME)},
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
    filters={**ID},
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
    meta="disabled",
))

# Enum options (platform ApiBundle api.yml, EnumOption: filters id allow_array + priority, sorter priority)
ENUM_ATTRS = ("name", "priority", "default")
for _type in ("marketingactivitytypes", "orderinternalstatuses", "orderstatuses", "ordershippingstatuses",
              "customeruserauthstatuses", "customerratings"):
    _add(Resource(
        _type,
        attrs=(Attr("name", ro=True), Attr("priority", INTEGER, ro=True), Attr("default", BOOLEAN, ro=True)),
        filters={"id": Filter(F_ID, array=True), "priority": Filter(F_INT)},
        sorters={"id": None, "priority": None},
        actions=READ_ONLY,
    ))

# Other reference data and system records: read-only here (filters: id, indexed/unique columns, config).
for _type, _attrs, _filters, _rels in (
    ("customeruserroles", ("role", "label", "selfManaged", "public"), {"role": Filter(F_STRING)}, ()),
    ("users", ("username", "email", "firstName", "lastName", "enabled"),
     {"username": Filter(F_STRING), "email": Filter(F_STRING), "firstName": Filter(F_STRING)}, ()),
    ("organizations", ("name", "enabled"), {"name": Filter(F_STRING)}, ()),
    ("businessunits", ("name",), {}, ()),
    ("websites", ("name", "default"), {}, ()),
    # AddressBundle api.yml: country iso2Code (the id) allow_array, region combinedCode (the id) and country
    # allow_array; both indexed on name
    ("countries", ("iso3Code", "name"), {"id": Filter(F_ID, array=True), "name": Filter(F_STRING)}, ()),
    ("regions", ("code", "name"), {"id": Filter(F_ID, array=True), "name": Filter(F_STRING),
                                   "country": Filter(F_ASSOC, array=True)}, (Rel("country", "countries", ro=True),)),
    ("productunits", ("defaultPrecision",), {}, ()),
    ("paymentterms", ("label",), {}, ()),
    ("taxonomies", ("name",), {"name": Filter(F_STRING)}, ()),
    ("localizations", ("name", "formattingCode"), {"name": Filter(F_STRING)}, ()),
):
    _add(Resource(
        _type,
        attrs=tuple(Attr(a, ro=True) for a in _attrs),
        rels=_rels,
        filters={**ID, **_filters},
        sorters={"id": None, **{name: None for name in _filters if name != "id"}},
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


def rel_ignored(rel: Rel, switches: dict[str, object]) -> bool:
    """True when the relationship is shown as null and writes to it are accepted and ignored."""
    return bool(rel.ignored) and not switches.get(str(rel.ignored))
