"""JSON Schemas of every stream (the input contract of target-orocommerce).

Conventions:
    * every property is nullable except the primary-key columns;
    * Mailchimp's empty-string timestamps (``""``) are emitted as ``null``
      (see :func:`tap_mailchimp_engagement.client.blank_timestamps_to_null`);
    * enumerations (``status``, ``action``, ``type`` ...) are plain strings: values Mailchimp adds later pass
      through unchanged, the documented values are listed in the descriptions;
    * ``merge_fields`` declares the standard merge tags and the configured ones (:func:`merge_fields`), so a
      flattening loader gets a column for each; the audience's other tags come as they are in
      ``merge_fields_other`` (kept as JSON by a flattening loader);
    * objects keyed by data (``interests``: interest id -> bool) accept any property.
"""

from __future__ import annotations

import copy
from typing import Any

from singer_sdk import typing as th

# -- small building blocks ---------------------------------------------------------------------


def _key(name: str, description: str, kind: type[th.JSONTypeHelper] = th.StringType) -> th.Property:
    # Key columns are never null, and never the empty string (COPY-based loaders read '' as NULL).
    wtype = th.StringType(nullable=False, min_length=1) if kind is th.StringType else kind(nullable=False)
    return th.Property(name, wtype, required=True, description=description)


def _str(name: str, description: str | None = None) -> th.Property:
    return th.Property(name, th.StringType, description=description)


def _int(name: str, description: str | None = None) -> th.Property:
    return th.Property(name, th.IntegerType, description=description)


def _num(name: str, description: str | None = None) -> th.Property:
    return th.Property(name, th.NumberType, description=description)


def _bool(name: str, description: str | None = None) -> th.Property:
    return th.Property(name, th.BooleanType, description=description)


def _ts(name: str, description: str | None = None) -> th.Property:
    return th.Property(name, th.DateTimeType, description=description)


def _any_object(name: str, description: str) -> th.Property:
    # No "properties" key: a flattening loader then keeps the object as one JSON column (an object with
    # an empty "properties" would be flattened into no column at all).
    return th.Property(name, th.CustomType({"type": ["object", "null"]}), description=description)


def _schema(*props: th.Property) -> dict[str, Any]:
    return th.PropertiesList(*props).to_dict()


ADDRESS = th.ObjectType(
    _str("company"),
    _str("address1"),
    _str("address2"),
    _str("city"),
    _str("state"),
    _str("zip"),
    _str("country"),
    _str("phone"),
)

# -- merge fields (members, unsubscribes, sent_to) ------------------------------------------------

#: Merge tags every audience has (Mailchimp's default audience fields), each a string.
STANDARD_MERGE_TAGS = ("FNAME", "LNAME", "PHONE", "BIRTHDAY", "COMPANY")
MERGE_ADDRESS = "ADDRESS"
MERGE_ADDRESS_TYPE = th.ObjectType(
    _str("addr1"), _str("addr2"), _str("city"), _str("state"), _str("zip"), _str("country")
)
OTHER_MERGE_FIELDS = "merge_fields_other"
DEFAULT_IDENTITY_MERGE_FIELD = "OROID"  # the default of the `identity_merge_field` setting


def merge_fields(description: str, configured: tuple[str, ...] = ()) -> list[th.Property]:
    """``merge_fields`` with the standard tags and ``configured`` ones declared, plus ``merge_fields_other``."""
    extra = [tag for tag in dict.fromkeys(configured) if tag and tag not in (*STANDARD_MERGE_TAGS, MERGE_ADDRESS)]
    declared = [
        *(_str(tag) for tag in STANDARD_MERGE_TAGS),
        th.Property(MERGE_ADDRESS, MERGE_ADDRESS_TYPE, description="Mailchimp's empty string is emitted as null."),
        *(
            th.Property(tag, th.CustomType({"type": ["string", "number", "null"]}), description="Configured tag.")
            for tag in extra
        ),
    ]
    return [
        th.Property("merge_fields", th.ObjectType(*declared), description=description),
        _any_object(
            OTHER_MERGE_FIELDS,
            "The audience's other merge tags (not standard, not configured in `merge_tags`), as Mailchimp "
            "returns them; null when there are none.",
        ),
    ]


def declared_merge_tags(schema: dict[str, Any]) -> set[str]:
    """The tags ``schema`` declares in ``merge_fields`` (empty when it has no ``merge_fields_other``)."""
    props = schema.get("properties", {})
    if OTHER_MERGE_FIELDS not in props:
        return set()
    return set(props["merge_fields"].get("properties", {}))


def with_merge_tags(schema: dict[str, Any], configured: tuple[str, ...]) -> dict[str, Any]:
    """A copy of a stream schema whose ``merge_fields`` also declares the ``configured`` tags."""
    if OTHER_MERGE_FIELDS not in schema.get("properties", {}):
        return schema
    out = copy.deepcopy(schema)
    description = out["properties"]["merge_fields"].get("description", "")
    for prop in merge_fields(description, configured):
        out["properties"][prop.name] = prop.to_dict()[prop.name]
    return out


ECOMMERCE_TOTALS = th.ObjectType(
    _int("total_orders"),
    _num("total_spent"),
    _num("total_revenue"),
    _str("currency_code"),
)

# -- lists ---------------------------------------------------------------------------------------

LISTS = _schema(
    _key("id", "Audience (list) id, 10 hex characters."),
    _int("web_id"),
    _str("name"),
    th.Property("contact", ADDRESS),
    _str("permission_reminder"),
    _bool("use_archive_bar"),
    th.Property(
        "campaign_defaults",
        th.ObjectType(_str("from_name"), _str("from_email"), _str("subject"), _str("language")),
    ),
    _str("notify_on_subscribe", "Address notified on subscribe; null when off."),
    _str("notify_on_unsubscribe", "Address notified on unsubscribe; null when off."),
    _ts("date_created"),
    _int("list_rating"),
    _bool("email_type_option"),
    _str("subscribe_url_short"),
    _str("subscribe_url_long"),
    _str("beamer_address"),
    _str("visibility", "pub | prv (legacy)."),
    _bool("double_optin"),
    _bool("has_welcome"),
    _bool("marketing_permissions"),
    th.Property("modules", th.ArrayType(th.StringType)),
    th.Property(
        "stats",
        th.ObjectType(
            _int("member_count"),
            _int("total_contacts"),
            _int("unsubscribe_count"),
            _int("cleaned_count"),
            _int("member_count_since_send"),
            _int("unsubscribe_count_since_send"),
            _int("cleaned_count_since_send"),
            _int("campaign_count"),
            _ts("campaign_last_sent"),
            _int("merge_field_count"),
            _num("avg_sub_rate"),
            _num("avg_unsub_rate"),
            _num("target_sub_rate"),
            _num("open_rate", "Percentage 0-100 (unlike report rates, which are fractions)."),
            _num("click_rate", "Percentage 0-100."),
            _ts("last_sub_date"),
            _ts("last_unsub_date"),
        ),
    ),
)

# -- merge fields --------------------------------------------------------------------------------

MERGE_FIELDS = _schema(
    _key("list_id", "Audience id."),
    _key("merge_id", "Merge field id (integer, per audience).", th.IntegerType),
    _str("tag", "Merge tag, e.g. FNAME; the key used in `members.merge_fields`."),
    _str("name"),
    _str(
        "type",
        "text | number | address | phone | date | url | imageurl | radio | dropdown | birthday | zip "
        "(unknown values pass through).",
    ),
    _bool("required"),
    _str("default_value"),
    _bool("public"),
    _int("display_order"),
    th.Property(
        "options",
        th.ObjectType(
            _int("default_country"),
            _str("phone_format"),
            _str("date_format"),
            th.Property("choices", th.ArrayType(th.StringType)),
            _int("size"),
        ),
    ),
    _str("help_text"),
)

# -- members -------------------------------------------------------------------------------------

TAG_REF = th.ObjectType(_int("id"), _str("name"))

MEMBERS = _schema(
    _key("list_id", "Audience id."),
    _key("id", "Subscriber hash: md5 of the lower-cased e-mail address."),
    _str("email_address"),
    _str("unique_email_id", "10 hex characters, stable across audiences (= `mc_eid` in tracked links)."),
    _str("contact_id", "Mailchimp's channel-agnostic contact id."),
    _str("full_name"),
    _int("web_id"),
    _str("email_type", "html | text."),
    _str(
        "status",
        "subscribed | unsubscribed | cleaned | pending | transactional | archived "
        "(unknown values pass through). `archived` rows come from the archived sweep.",
    ),
    _str("unsubscribe_reason"),
    _bool("consents_to_one_to_one_messaging"),
    _str("sms_phone_number"),
    _str("sms_subscription_status", "subscribed | unsubscribed | nonsubscribed | pending; null when unset."),
    _ts("sms_subscription_last_updated"),
    *merge_fields(
        "Values of the standard merge tags (FNAME, LNAME, PHONE, BIRTHDAY, COMPANY, ADDRESS {addr1, addr2, "
        "city, state, zip, country}) and the configured ones (`identity_merge_field`, `merge_tags`).",
        (DEFAULT_IDENTITY_MERGE_FIELD,),
    ),
    th.Property(
        "interests",
        th.CustomType({"type": ["object", "null"], "additionalProperties": {"type": "boolean"}}),
        description="Group membership: interest id -> true/false (keyed by data: one JSON column when flattened).",
    ),
    th.Property(
        "stats",
        th.ObjectType(
            _num("avg_open_rate"),
            _num("avg_click_rate"),
            th.Property(
                "ecommerce_data",
                th.ObjectType(_num("total_revenue"), _int("number_of_orders"), _str("currency_code")),
            ),
        ),
    ),
    _str("ip_signup"),
    _ts("timestamp_signup"),
    _str("ip_opt"),
    _ts("timestamp_opt"),
    _int("member_rating", "1-5."),
    th.Property(
        "last_changed",
        th.DateTimeType(nullable=False),
        required=True,
        description="Moves on every change of the member (status, merge fields, tags); the incremental cursor.",
    ),
    _str("language"),
    _bool("vip"),
    _str("email_client"),
    th.Property(
        "location",
        th.ObjectType(
            _num("latitude"),
            _num("longitude"),
            _int("gmtoff"),
            _int("dstoff"),
            _str("country_code"),
            _str("timezone"),
            _str("region"),
        ),
    ),
    th.Property(
        "marketing_permissions",
        th.ArrayType(th.ObjectType(_str("marketing_permission_id"), _str("text"), _bool("enabled"))),
    ),
    th.Property(
        "last_note",
        th.ObjectType(_int("note_id"), _ts("created_at"), _str("created_by"), _str("note")),
    ),
    _str("source"),
    _int("tags_count", "Number of tags; `member_tags` carries all of them."),
    th.Property("tags", th.ArrayType(TAG_REF), description="Up to 50 tags as returned on the member."),
)

MEMBER_TAGS = _schema(
    _key("list_id", "Audience id."),
    _key("member_id", "Subscriber hash of the member (= members.id)."),
    _key("tag_id", "Tag (static segment) id.", th.IntegerType),
    _str("name", "Tag name, with Mailchimp's casing."),
    _ts("date_added", "When the tag was added; null when it came from the member object (<= 50 tags)."),
    th.Property(
        "member_last_changed",
        th.DateTimeType,
        description="`members.last_changed` of the member this tag set belongs to.",
    ),
)

SEGMENTS = _schema(
    _key("list_id", "Audience id."),
    _key("id", "Segment id.", th.IntegerType),
    _str("name"),
    _int("member_count"),
    _str("type", "saved | static (= tag) | fuzzy (unknown values pass through)."),
    _ts("created_at"),
    _ts("updated_at"),
    th.Property(
        "options",
        th.ObjectType(
            _str("match", "any | all."),
            th.Property("conditions", th.ArrayType(th.ObjectType(additional_properties=True))),
        ),
    ),
)

# -- campaigns and reports -------------------------------------------------------------------

TRACKING = th.ObjectType(
    _bool("opens"),
    _bool("html_clicks"),
    _bool("text_clicks"),
    _bool("goal_tracking"),
    _bool("ecomm360"),
    _str("google_analytics"),
    _str("clicktale"),
)

CAMPAIGNS = _schema(
    _key("id", "Campaign id."),
    _int("web_id"),
    _str("parent_campaign_id"),
    _str(
        "type",
        "regular | plaintext | absplit | rss | variate | automation (an email of an automation) "
        "(unknown values pass through).",
    ),
    _ts("create_time"),
    _str("archive_url"),
    _str("long_archive_url"),
    _str("status", "save | paused | schedule | sending | sent | canceled | canceling | archived."),
    _int("emails_sent"),
    _ts("send_time"),
    _str("content_type"),
    _bool("needs_block_refresh"),
    _bool("resendable"),
    th.Property(
        "recipients",
        th.ObjectType(
            _str("list_id"),
            _bool("list_is_active"),
            _str("list_name"),
            _str("segment_text"),
            _int("recipient_count"),
            th.Property(
                "segment_opts",
                th.ObjectType(
                    _int("saved_segment_id"),
                    _str("match"),
                    th.Property("conditions", th.ArrayType(th.ObjectType(additional_properties=True))),
                ),
            ),
        ),
    ),
    th.Property(
        "settings",
        th.ObjectType(
            _str("subject_line"),
            _str("preview_text"),
            _str("title"),
            _str("from_name"),
            _str("reply_to"),
            _bool("use_conversation"),
            _str("to_name"),
            _str("folder_id"),
            _bool("authenticate"),
            _bool("auto_footer"),
            _bool("inline_css"),
            _bool("auto_tweet"),
            _bool("fb_comments"),
            _bool("timewarp"),
            _int("template_id"),
            _bool("drag_and_drop"),
        ),
    ),
    th.Property("tracking", TRACKING),
    th.Property(
        "report_summary",
        th.ObjectType(
            _int("opens"),
            _int("unique_opens"),
            _num("open_rate"),
            _int("clicks"),
            _int("subscriber_clicks"),
            _num("click_rate"),
            th.Property("ecommerce", ECOMMERCE_TOTALS),
        ),
    ),
    th.Property(
        "delivery_status",
        th.ObjectType(
            _bool("enabled"),
            _bool("can_cancel"),
            _str("status"),
            _int("emails_sent"),
            _int("emails_canceled"),
        ),
    ),
)

REPORT_SUMMARY = th.ObjectType(
    _int("opens"),
    _int("unique_opens"),
    _num("open_rate", "Fraction 0-1 of delivered emails."),
    _int("clicks"),
    _int("subscriber_clicks"),
    _num("click_rate", "Fraction 0-1 of delivered emails."),
)
TRIGGER_SETTINGS = th.ObjectType(
    _str("workflow_type", "welcomeSeries | abandonedCart | api | emailFollowup | ... (passes through)."),
    _str("workflow_title"),
    _int("workflow_emails_count"),
)

AUTOMATIONS = _schema(
    _key("id", "Workflow id."),
    _ts("create_time"),
    _ts("start_time"),
    _str("status", "save | paused | sending."),
    _int("emails_sent"),
    th.Property(
        "recipients",
        th.ObjectType(_str("list_id"), _bool("list_is_active"), _str("list_name"), _str("store_id")),
    ),
    th.Property(
        "settings",
        th.ObjectType(_str("title"), _str("from_name"), _str("reply_to"), _str("to_name")),
    ),
    th.Property("tracking", TRACKING),
    th.Property("trigger_settings", TRIGGER_SETTINGS),
    th.Property("report_summary", REPORT_SUMMARY),
)

AUTOMATION_EMAILS = _schema(
    _key("workflow_id", "Workflow id (= automations.id)."),
    _key("id", "Automation email id; also the id of the email's campaign (type automation) and report."),
    _int("web_id"),
    _int("position"),
    th.Property(
        "delay",
        th.ObjectType(
            _int("amount"),
            _str("type", "now | hour | day | week."),
            _str("direction"),
            _str("action", "signup | ecomm_abandoned_cart | api | ... (passes through)."),
            _str("action_description"),
            _str("full_description"),
        ),
    ),
    _ts("create_time"),
    _ts("start_time"),
    _str("status", "save | paused | sending."),
    _int("emails_sent"),
    _ts("send_time"),
    th.Property(
        "settings",
        th.ObjectType(
            _str("subject_line"), _str("preview_text"), _str("title"), _str("from_name"), _str("reply_to")
        ),
    ),
    _str("archive_url"),
    _str("content_type", "template | html | ... (passes through)."),
    _bool("needs_block_refresh"),
    _bool("has_logo_merge_tag"),
    th.Property("tracking", TRACKING),
    th.Property("trigger_settings", TRIGGER_SETTINGS),
    th.Property("report_summary", REPORT_SUMMARY),
)

REPORTS = _schema(
    _key("id", "Campaign id (one report per campaign)."),
    _str("campaign_title"),
    _str("type"),
    _str("list_id"),
    _bool("list_is_active"),
    _str("list_name"),
    _str("subject_line"),
    _str("preview_text"),
    _int("emails_sent"),
    _int("abuse_reports"),
    _int("unsubscribed"),
    _ts("send_time"),
    _ts("rss_last_send"),
    th.Property(
        "bounces", th.ObjectType(_int("hard_bounces"), _int("soft_bounces"), _int("syntax_errors"))
    ),
    th.Property("forwards", th.ObjectType(_int("forwards_count"), _int("forwards_opens"))),
    th.Property(
        "opens",
        th.ObjectType(
            _int("opens_total"),
            _int("unique_opens"),
            _num("open_rate", "Fraction 0-1."),
            _ts("last_open"),
            _int("proxy_excluded_opens", "Opens without Apple Mail Privacy Protection machine opens."),
            _int("proxy_excluded_unique_opens"),
            _num("proxy_excluded_open_rate"),
        ),
    ),
    th.Property(
        "clicks",
        th.ObjectType(
            _int("clicks_total"),
            _int("unique_clicks"),
            _int("unique_subscriber_clicks"),
            _num("click_rate", "Fraction 0-1."),
            _ts("last_click"),
        ),
    ),
    th.Property(
        "list_stats",
        th.ObjectType(_num("sub_rate"), _num("unsub_rate"), _num("open_rate"), _num("click_rate")),
    ),
    th.Property(
        "industry_stats",
        th.ObjectType(
            _str("type"),
            _num("open_rate"),
            _num("click_rate"),
            _num("bounce_rate"),
            _num("unopen_rate"),
            _num("unsub_rate"),
            _num("abuse_rate"),
        ),
    ),
    th.Property("ecommerce", ECOMMERCE_TOTALS, description="Attributed e-commerce totals (conversions)."),
    th.Property(
        "delivery_status",
        th.ObjectType(
            _bool("enabled"),
            _bool("can_cancel"),
            _str("status"),
            _int("emails_sent"),
            _int("emails_canceled"),
        ),
    ),
)

# -- per-recipient engagement ------------------------------------------------------------------

EMAIL_ACTIVITY = _schema(
    _key(
        "event_id",
        "Key of the event: sha256 (64 hex) of its natural key [campaign_id, email_id, action, timestamp, "
        "url or \"\"]; the same event read again has the same id.",
    ),
    _key("campaign_id", "Campaign id."),
    _key("email_id", "Subscriber hash of the recipient (= members.id)."),
    _key("action", "open | click | bounce (unknown values pass through)."),
    th.Property(
        "timestamp",
        th.DateTimeType(nullable=False),
        required=True,
        description="When the action happened.",
    ),
    _str("url", "Clicked URL for `click`; null for every other action."),
    _str("bounce_type", "hard | soft for `bounce`; null otherwise."),
    _str("ip"),
    _str("list_id"),
    _bool("list_is_active"),
    _str("email_address"),
)

UNSUBSCRIBES = _schema(
    _key("campaign_id", "Campaign id."),
    _key("email_id", "Subscriber hash (= members.id)."),
    _str("email_address"),
    _ts("timestamp"),
    _str("reason", "Free text or Mailchimp's reason code; null when not given."),
    _str("list_id"),
    _bool("list_is_active"),
    _bool("vip"),
    *merge_fields(
        "Merge values of the member at unsubscribe time (see `members.merge_fields`).",
        (DEFAULT_IDENTITY_MERGE_FIELD,),
    ),
)

SENT_TO = _schema(
    _key("campaign_id", "Campaign id."),
    _key("email_id", "Subscriber hash (= members.id)."),
    _ts(
        "send_time",
        "The campaign's send time (from the campaign, on every row: dates the `send` even when the "
        "`campaigns` stream does not emit the campaign again, e.g. in a run resumed after a kill).",
    ),
    _str("email_address"),
    _str("status", "sent | hard | soft (delivery outcome; unknown values pass through)."),
    _int("open_count"),
    _ts("last_open"),
    _str("absplit_group", "a | b | winner; null for non-A/B campaigns."),
    _int("gmt_offset"),
    _str("list_id"),
    _bool("list_is_active"),
    _bool("vip"),
    *merge_fields("Merge values of the member (see `members.merge_fields`).", (DEFAULT_IDENTITY_MERGE_FIELD,)),
)

ORDER_LINE = th.ObjectType(
    _str("id"),
    _str("product_id"),
    _str("product_title"),
    _str("product_variant_id"),
    _str("product_variant_title"),
    _str("image_url"),
    _int("quantity"),
    _num("price"),
    _num("discount"),
)

ATTRIBUTED_ORDERS = _schema(
    _key("store_id", "E-commerce store id."),
    _key("id", "Order id (client-defined; the shop's order id)."),
    _str("campaign_id", "Campaign the order is attributed to (conversion)."),
    th.Property(
        "customer",
        th.ObjectType(
            _str("id"),
            _str("email_address"),
            _bool("opt_in_status"),
            _str("company"),
            _str("first_name"),
            _str("last_name"),
            _int("orders_count"),
            _num("total_spent"),
        ),
    ),
    _str("landing_site"),
    _str("financial_status", "e.g. pending | paid | cancelled | refunded."),
    _str("fulfillment_status", "e.g. pending | shipped | cancelled | refunded."),
    _str("currency_code"),
    _num("order_total"),
    _str("order_url"),
    _num("discount_total"),
    _num("tax_total"),
    _num("shipping_total"),
    _str("tracking_code"),
    _ts("processed_at_foreign"),
    _ts("cancelled_at_foreign"),
    _ts("updated_at_foreign"),
    th.Property("lines", th.ArrayType(ORDER_LINE)),
    th.Property(
        "outreach", th.ObjectType(_str("id"), _str("name"), _str("type"), _ts("published_time"))
    ),
)

MEMBER_RECONCILIATION = _schema(
    _key("list_id", "Audience id."),
    th.Property("checked_at", th.DateTimeType(nullable=False), required=True, description="Run cut-off time."),
    _int("total_members", "All members now, archived included (sum of `total_items` per status sweep)."),
    _int("archived_members"),
    _int("previous_total", "`total_members` of the previous run; null on the first run."),
    _int("new_members", "Members first seen in this run's windows (signup/opt-in after the previous cut-off)."),
    _int(
        "missing_members",
        "previous_total + new_members - total_members, when positive: members permanently deleted since "
        "the previous run (a lower bound).",
    ),
    _bool("id_sweep", "True when this run emitted the complete `member_ids` snapshot of the audience."),
)

MEMBER_IDS = _schema(
    _key("list_id", "Audience id."),
    _key("id", "Subscriber hash of a member that exists now (any status, archived included)."),
    _str("status"),
    th.Property("sweep_at", th.DateTimeType(nullable=False), required=True, description="Snapshot time."),
)

FORGOTTEN_MEMBERS = _schema(
    _key("list_id", "Audience id."),
    _key(
        "oro_id",
        "Identity value (the Oro customer-user id, from the identity merge field) of a member that was "
        "permanently deleted from the audience: no member carries it any more.",
    ),
    th.Property(
        "detected_at",
        th.DateTimeType(nullable=False),
        required=True,
        description="Cut-off of the run whose sweep found it missing.",
    ),
    _str("identity_merge_field", "Merge field the id was read from (e.g. `OROID`)."),
    _ts("previous_sweep_at", "The sweep before: the member existed then, or joined after it."),
)
