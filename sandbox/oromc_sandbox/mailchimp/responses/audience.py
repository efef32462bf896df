"""Account root, lists, merge fields, members (+tags, events, activity), batch subscribe, segments,
tag search and list webhooks of the Mailchimp Marketing API v3."""

from __future__ import annotations

import re
from itertools import islice
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route, request_response

from ..common import (
    Ctx,
    api_base,
    check_enum,
    check_type,
    collection_links,
    format_epoch,
    item_links,
    json_response,
    link,
    mc_endpoint,
    parse_bool,
    parse_ts,
    parse_ts_param,
    preflight,
    require_keys,
    require_object,
    short_id,
    subscriber_hash,
)
from ..exceptions import (
    ApiError,
    FieldError,
    ForbiddenError,
    InvalidActionError,
    InvalidResourceError,
    MethodNotAllowedError,
    ResourceNotFoundError,
)
from ..members import ALL_STATUSES, SORT_FIELDS, WINDOWS, MemberQuery, select_members
from ..store import MEMBER_TAGS_SHOWN, MailchimpStore
from ..validation import (
    MERGE_TYPES,
    apply_tags,
    email_problem,
    write_member,
)

P = "/3.0"
MAX_BATCH_MEMBERS = 500
MAX_SEGMENT_MEMBERS = 500


# =========================================================================== helpers


def _list_or_404(store: MailchimpStore, list_id: str) -> dict[str, Any]:
    doc = store.lists.get(list_id)
    if doc is None:
        raise ResourceNotFoundError()
    return doc


def _path_list_id(ctx: Ctx) -> str:
    """The `{list_id}` of the request path (404 when there is no such audience)."""
    list_id: str = ctx.request.path_params["list_id"]
    _list_or_404(ctx.store, list_id)
    return list_id


def _member_or_404(store: MailchimpStore, list_id: str, key: str) -> dict[str, Any]:
    _list_or_404(store, list_id)
    rec = store.get_member(list_id, store.resolve_member(list_id, key))
    if rec is None:
        raise ResourceNotFoundError()
    return rec


def render_list(
    request: Request, store: MailchimpStore, doc: dict[str, Any], total_contacts: bool = False
) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if not k.startswith("_")}
    stats = store.list_stats(doc["id"])
    if not total_contacts:
        stats.pop("total_contacts", None)
    out["stats"] = stats
    lp = f"/lists/{doc['id']}"
    out["_links"] = [
        link(request, "self", lp),
        link(request, "parent", "/lists"),
        link(request, "update", lp, "PATCH"),
        link(request, "batch-sub-unsub-members", lp, "POST"),
        link(request, "delete", lp, "DELETE"),
        link(request, "members", lp + "/members"),
        link(request, "merge-fields", lp + "/merge-fields"),
        link(request, "segments", lp + "/segments"),
        link(request, "webhooks", lp + "/webhooks"),
    ]
    return out


class MemberRenderer:
    """Turns internal member records into API documents (computed once per request)."""

    def __init__(self, request: Request, store: MailchimpStore, list_id: str) -> None:
        self.store = store
        self.list_id = list_id
        aud = store.audiences[list_id]
        self.tags = aud.segments
        self.merge_tags = [
            mf["tag"] for mf in sorted(aud.merge_fields.values(), key=lambda m: m["merge_id"])
        ]
        self.base = api_base(request) + f"/lists/{list_id}/members"
        self.parent = self.base

    def __call__(self, rec: dict[str, Any]) -> dict[str, Any]:
        mf_raw = rec["merge_fields"]
        merge = {tag: mf_raw.get(tag, "") for tag in self.merge_tags}
        first, last = mf_raw.get("FNAME", ""), mf_raw.get("LNAME", "")
        tags = []
        for sid in islice(rec["tags"], MEMBER_TAGS_SHOWN):
            seg = self.tags.get(sid)
            if seg is not None:
                tags.append({"id": sid, "name": seg["name"]})
        href = f"{self.base}/{rec['id']}"
        loc = rec["location"] or {}
        doc: dict[str, Any] = {
            "id": rec["id"],
            "email_address": rec["email_address"],
            "unique_email_id": rec["unique_email_id"],
            "contact_id": rec["contact_id"],
            "full_name": f"{first} {last}".strip(),
            "web_id": rec["web_id"],
            "email_type": rec["email_type"],
            "status": rec["status"],
            "consents_to_one_to_one_messaging": True,
            "sms_phone_number": "",
            "sms_subscription_status": "",
            "sms_subscription_last_updated": "",
            "merge_fields": merge,
            "stats": {
                "avg_open_rate": rec["avg_open_rate"],
                "avg_click_rate": rec["avg_click_rate"],
            },
            "ip_signup": rec["ip_signup"],
            "timestamp_signup": format_epoch(rec["ts_signup"]),
            "ip_opt": rec["ip_opt"],
            "timestamp_opt": format_epoch(rec["ts_opt"]),
            "member_rating": rec["member_rating"],
            "last_changed": format_epoch(rec["lc"]),
            "language": rec["language"],
            "vip": rec["vip"],
            "email_client": rec["email_client"],
            "location": {
                "latitude": loc.get("latitude", 0),
                "longitude": loc.get("longitude", 0),
                "gmtoff": 0,
                "dstoff": 0,
                "country_code": loc.get("country_code", ""),
                "timezone": loc.get("timezone", ""),
                "region": loc.get("region", ""),
            },
            "source": rec["source"],
            "tags_count": len(rec["tags"]),
            "tags": tags,
            "list_id": self.list_id,
            "_links": [
                {"rel": "self", "href": href, "method": "GET"},
                {"rel": "parent", "href": self.parent, "method": "GET"},
                {"rel": "update", "href": href, "method": "PATCH"},
                {"rel": "upsert", "href": href, "method": "PUT"},
                {"rel": "delete", "href": href, "method": "DELETE"},
                {"rel": "activity", "href": href + "/activity", "method": "GET"},
                {"rel": "goals", "href": href + "/goals", "method": "GET"},
                {"rel": "notes", "href": href + "/notes", "method": "GET"},
                {"rel": "events", "href": href + "/events", "method": "POST"},
                {
                    "rel": "delete_permanent",
                    "href": href + "/actions/delete-permanent",
                    "method": "POST",
                },
            ],
        }
        if rec["status"] == "unsubscribed":
            doc["unsubscribe_reason"] = rec["unsubscribe_reason"]
        if rec["last_note"]:
            doc["last_note"] = rec["last_note"]
        return doc


def _skip_merge(request: Request) -> bool:
    return parse_bool(request, "skip_merge_validation")


# =========================================================================== root, ping, oauth


@mc_endpoint(paged=False)
async def ping(request: Request, ctx: Ctx) -> dict[str, Any]:
    return {"health_status": "Everything's Chimpy!"}


@mc_endpoint(paged=False)
async def root(request: Request, ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    doc = dict(store.account)
    doc["total_subscribers"] = sum(store.audiences[lid].counts["subscribed"] for lid in store.lists)
    doc["_links"] = [
        link(request, "self", "/"),
        link(request, "lists", "/lists"),
        link(request, "batches", "/batches"),
        link(request, "campaigns", "/campaigns"),
        link(request, "reports", "/reports"),
        link(request, "ecommerce", "/ecommerce"),
    ]
    return doc


async def oauth_metadata(request: Request) -> Response:
    """`GET /oauth2/metadata` (login.mailchimp.com in production): 200 even for a bad token."""
    store: MailchimpStore = request.app.state.sandbox.mailchimp
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() not in ("oauth", "bearer") or token.strip() != store.oauth_token:
        return json_response(
            request, {"error": "invalid_token", "error_description": "Invalid token"}
        )
    base = str(request.base_url).rstrip("/")
    return json_response(
        request,
        {
            "dc": store.dc,
            "role": "owner",
            "accountname": store.account.get("account_name", ""),
            "user_id": int(store.account.get("login_id", "0")),
            "login": {
                "email": store.account.get("email", ""),
                "login_id": int(store.account.get("login_id", "0")),
                "login_name": store.account.get("username", ""),
            },
            "login_url": "https://login.mailchimp.com",
            "api_endpoint": base,
        },
    )


# =========================================================================== lists


@mc_endpoint
async def lists_collection(request: Request, ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    docs = list(store.lists.values())
    for name, key, cmp in (
        ("since_date_created", "date_created", lambda a, b: a > b),
        ("before_date_created", "date_created", lambda a, b: a < b),
    ):
        bound = parse_ts_param(request, name)
        if bound is not None:
            docs = [d for d in docs if (t := parse_ts(d[key])) is not None and cmp(t, bound)]
    for name in ("since_campaign_last_sent", "before_campaign_last_sent"):
        bound = parse_ts_param(request, name)
        if bound is not None:
            keep = []
            for d in docs:
                sent = parse_ts(store.list_stats(d["id"]).get("campaign_last_sent") or "")
                if sent is not None and (
                    sent > bound if name.startswith("since") else sent < bound
                ):
                    keep.append(d)
            docs = keep
    email = ctx.q("email")
    if email:
        h = subscriber_hash(email)
        docs = [d for d in docs if h in store.members[d["id"]]]
    sort_field = ctx.q("sort_field")
    if sort_field is not None:
        check_enum({"sort_field": sort_field}, "sort_field", ("date_created",))
        docs.sort(key=lambda d: d["date_created"], reverse=ctx.q("sort_dir") == "DESC")
    include_total = parse_bool(request, "include_total_contacts")
    page = docs[ctx.offset : ctx.offset + ctx.count]
    ctx.items = len(page)
    total = len(store.lists)
    return {
        "lists": [render_list(request, store, d, include_total) for d in page],
        "total_items": len(docs),
        "constraints": {"may_create": False, "max_instances": 1, "current_total_instances": total},
        "_links": [link(request, "self", "/lists"), link(request, "create", "/lists", "POST")],
    }


@mc_endpoint(paged=False)
async def lists_create(request: Request, ctx: Ctx) -> Response:
    raise ForbiddenError(
        "This account has reached its maximum number of audiences (constraints.may_create is false)."
    )


@mc_endpoint(paged=False)
async def list_one(request: Request, ctx: Ctx) -> dict[str, Any]:
    doc = _list_or_404(ctx.store, request.path_params["list_id"])
    ctx.items = 1
    return render_list(request, ctx.store, doc, parse_bool(request, "include_total_contacts"))


LIST_PATCHABLE = {
    "name": "string",
    "permission_reminder": "string",
    "use_archive_bar": "boolean",
    "notify_on_subscribe": "string",
    "notify_on_unsubscribe": "string",
    "email_type_option": "boolean",
    "double_optin": "boolean",
    "marketing_permissions": "boolean",
    "contact": "object",
    "campaign_defaults": "object",
}


@mc_endpoint(paged=False)
async def list_patch(request: Request, ctx: Ctx) -> dict[str, Any]:
    doc = _list_or_404(ctx.store, request.path_params["list_id"])
    body = require_object(ctx.json)
    for key, typ in LIST_PATCHABLE.items():
        check_type(body, key, typ)
    if "name" in body and not body["name"].strip():
        raise FieldError("name", "This value should not be blank.")
    if "visibility" in body:
        check_enum(body, "visibility", ("pub", "prv"))
        doc["visibility"] = body["visibility"]
    for key in LIST_PATCHABLE:
        if key in body:
            if isinstance(body[key], dict):
                doc[key] = {**doc.get(key, {}), **body[key]}
            else:
                doc[key] = body[key]
    return render_list(request, ctx.store, doc)


# =========================================================================== merge fields


def _list_collection(
    request: Request, list_id: str, sub: str, docs: list[dict[str, Any]], total: int
) -> dict[str, Any]:
    """A page of `/lists/{list_id}/{sub}`: docs under `sub` (dashes as underscores)."""
    path = f"/lists/{list_id}/{sub}"
    return {
        sub.replace("-", "_"): docs,
        "list_id": list_id,
        "total_items": total,
        "_links": collection_links(request, path, f"/lists/{list_id}", ("POST",)),
    }


def _render_mf(request: Request, mf: dict[str, Any]) -> dict[str, Any]:
    path = f"/lists/{mf['list_id']}/merge-fields/{mf['merge_id']}"
    return {
        **mf,
        "_links": item_links(request, path, f"/lists/{mf['list_id']}/merge-fields"),
    }


def _by_number(items: dict[int, dict[str, Any]], raw_id: str) -> dict[str, Any]:
    """The item whose integer id is `raw_id` (404 when it is not a number or not there)."""
    try:
        item = items.get(int(raw_id))
    except ValueError:
        raise ResourceNotFoundError() from None
    if item is None:
        raise ResourceNotFoundError()
    return item


def _mf_or_404(store: MailchimpStore, list_id: str, merge_id: str) -> dict[str, Any]:
    _list_or_404(store, list_id)
    return _by_number(store.audiences[list_id].merge_fields, merge_id)


TAG_RE = re.compile(r"^[A-Z0-9_]{1,10}$")


def _check_mf_body(body: dict[str, Any]) -> None:
    for key, typ in (
        ("tag", "string"),
        ("name", "string"),
        ("type", "string"),
        ("required", "boolean"),
        ("default_value", "string"),
        ("public", "boolean"),
        ("display_order", "integer"),
        ("options", "object"),
        ("help_text", "string"),
    ):
        check_type(body, key, typ)
    check_enum(body, "type", MERGE_TYPES)
    opts = body.get("options") or {}
    if "phone_format" in opts and opts["phone_format"] not in ("US", "International"):
        raise FieldError(
            "options.phone_format",
            "Model presented is not one of the accepted values: US, International.",
        )
    if "choices" in opts and not isinstance(opts["choices"], list):
        raise FieldError("options.choices", "Schema describes array, object found instead")


def _default_options(type_: str, opts: dict[str, Any]) -> dict[str, Any]:
    if type_ == "text":
        return {"size": opts.get("size", 25)}
    if type_ == "address":
        return {"default_country": opts.get("default_country", 164)}
    if type_ == "phone":
        return {"phone_format": opts.get("phone_format", "US")}
    if type_ == "date":
        return {"date_format": opts.get("date_format", "MM/DD/YYYY")}
    if type_ == "birthday":
        return {"date_format": opts.get("date_format", "MM/DD")}
    if type_ in ("radio", "dropdown"):
        return {"choices": list(opts.get("choices", []))}
    return {}


@mc_endpoint
async def merge_fields_collection(request: Request, ctx: Ctx) -> dict[str, Any]:
    list_id = _path_list_id(ctx)
    mfs = sorted(ctx.store.audiences[list_id].merge_fields.values(), key=lambda m: m["merge_id"])
    type_ = ctx.q("type")
    if type_:
        mfs = [m for m in mfs if m["type"] == type_]
    if ctx.q("required") is not None:
        req = parse_bool(request, "required")
        mfs = [m for m in mfs if m["required"] == req]
    page = mfs[ctx.offset : ctx.offset + ctx.count]
    ctx.items = len(page)
    docs = [_render_mf(request, m) for m in page]
    return _list_collection(request, list_id, "merge-fields", docs, len(mfs))


@mc_endpoint(paged=False)
async def merge_field_create(request: Request, ctx: Ctx) -> dict[str, Any]:
    list_id = _path_list_id(ctx)
    body = require_object(ctx.json)
    require_keys(body, ["name", "type"])
    _check_mf_body(body)
    aud = ctx.store.audiences[list_id]
    mid = aud.next_merge_id
    tag = (body.get("tag") or f"MERGE{mid}").strip().upper()
    if not TAG_RE.match(tag):
        raise FieldError(
            "tag",
            "Merge tags may contain only letters, numbers and underscores, up to 10 characters.",
        )
    if tag == "EMAIL" or any(m["tag"] == tag for m in aud.merge_fields.values()):
        raise InvalidResourceError(
            f'A Merge Field with the tag "{tag}" already exists for this list.'
        )
    aud.next_merge_id += 1
    mf = {
        "merge_id": mid,
        "tag": tag,
        "name": body["name"],
        "type": body["type"],
        "required": bool(body.get("required", False)),
        "default_value": body.get("default_value", ""),
        "public": bool(body.get("public", False)),
        "display_order": body.get("display_order", mid + 1),
        "options": _default_options(body["type"], body.get("options") or {}),
        "help_text": body.get("help_text", ""),
        "list_id": list_id,
    }
    aud.merge_fields[mid] = mf
    ctx.items = 1
    return _render_mf(request, mf)


@mc_endpoint(paged=False)
async def merge_field_one(request: Request, ctx: Ctx) -> dict[str, Any]:
    mf = _mf_or_404(ctx.store, request.path_params["list_id"], request.path_params["merge_id"])
    return _render_mf(request, mf)


@mc_endpoint(paged=False)
async def merge_field_patch(request: Request, ctx: Ctx) -> dict[str, Any]:
    list_id = request.path_params["list_id"]
    mf = _mf_or_404(ctx.store, list_id, request.path_params["merge_id"])
    body = require_object(ctx.json)
    require_keys(body, ["name"])
    _check_mf_body(body)
    if "type" in body and body["type"] != mf["type"]:
        raise FieldError("type", "The type of a merge field cannot be changed.")
    if "tag" in body:
        tag = body["tag"].strip().upper()
        if not TAG_RE.match(tag):
            raise FieldError(
                "tag",
                "Merge tags may contain only letters, numbers and underscores, up to 10 characters.",
            )
        aud = ctx.store.audiences[list_id]
        if tag != mf["tag"]:
            if tag == "EMAIL" or any(m["tag"] == tag for m in aud.merge_fields.values()):
                raise InvalidResourceError(
                    f'A Merge Field with the tag "{tag}" already exists for this list.',
                )
            old = mf["tag"]
            for rec in ctx.store.iter_members(list_id):
                if old in rec["merge_fields"]:
                    rec["merge_fields"][tag] = rec["merge_fields"].pop(old)
            mf["tag"] = tag
    for key in ("name", "required", "default_value", "public", "display_order", "help_text"):
        if key in body:
            mf[key] = body[key]
    if "options" in body:
        mf["options"] = {
            **mf["options"],
            **_default_options(mf["type"], {**mf["options"], **body["options"]}),
        }
    return _render_mf(request, mf)


@mc_endpoint(paged=False)
async def merge_field_delete(request: Request, ctx: Ctx) -> None:
    list_id = request.path_params["list_id"]
    mf = _mf_or_404(ctx.store, list_id, request.path_params["merge_id"])
    del ctx.store.audiences[list_id].merge_fields[mf["merge_id"]]
    for rec in ctx.store.iter_members(list_id):
        rec["merge_fields"].pop(mf["tag"], None)


# =========================================================================== members


def parse_member_query(request: Request) -> MemberQuery:
    """The member-list query string, checked in Mailchimp's order (the first problem answers)."""
    q = request.query_params
    status = q.get("status")
    if status is not None:
        check_enum({"status": status}, "status", ALL_STATUSES)
    email_type = q.get("email_type")
    if email_type is not None:
        check_enum({"email_type": email_type}, "email_type", ("html", "text"))
    sort_field = q.get("sort_field")
    if sort_field is not None:
        check_enum({"sort_field": sort_field}, "sort_field", tuple(SORT_FIELDS))
    sort_dir = q.get("sort_dir", "ASC")
    check_enum({"sort_dir": sort_dir}, "sort_dir", ("ASC", "DESC"))
    bounds: dict[str, tuple[float | None, float | None]] = {}
    for name, attr in WINDOWS:
        since = parse_ts_param(request, f"since_{name}")
        before = parse_ts_param(request, f"before_{name}")
        if since or before:
            bounds[attr] = (
                since.timestamp() if since else None,
                before.timestamp() if before else None,
            )
    unsub_since = parse_ts_param(request, "unsubscribed_since")
    if unsub_since is not None and status != "unsubscribed":
        raise InvalidResourceError(
            "The unsubscribed_since parameter can only be used with status=unsubscribed.",
        )
    since_last_campaign = parse_bool(request, "since_last_campaign")
    if since_last_campaign and status is None:
        raise InvalidResourceError("The since_last_campaign parameter requires a status.")
    vip_only = parse_bool(request, "vip_only")
    for name in ("interest_category_id", "interest_ids"):
        if q.get(name):
            raise ResourceNotFoundError("This audience has no interest categories (groups).")
    return MemberQuery(
        status=status,
        email_type=email_type,
        sort_field=sort_field,
        descending=sort_dir == "DESC",
        bounds=bounds,
        unsubscribed_since=unsub_since.timestamp() if unsub_since is not None else None,
        since_last_campaign=since_last_campaign,
        vip_only=vip_only,
        unique_email_id=q.get("unique_email_id"),
    )


@mc_endpoint
async def members_collection(request: Request, ctx: Ctx) -> dict[str, Any]:
    list_id = _path_list_id(ctx)
    query = parse_member_query(request)
    page, total = select_members(ctx.store, list_id, query, ctx.offset, ctx.count)
    render = MemberRenderer(request, ctx.store, list_id)
    ctx.items = len(page)
    return _list_collection(request, list_id, "members", [render(r) for r in page], total)


def _member_write(
    request: Request, ctx: Ctx, mode: str, path_key: str | None = None
) -> dict[str, Any]:
    """POST / PUT / PATCH of one member: write it and answer with its document."""
    list_id = _path_list_id(ctx)
    body = require_object(ctx.json)
    rec, _ = write_member(
        ctx.store,
        list_id,
        body,
        mode=mode,
        path_key=path_key,
        skip_merge_validation=_skip_merge(request),
    )
    ctx.items = 1
    return MemberRenderer(request, ctx.store, list_id)(rec)


@mc_endpoint(paged=False)
async def member_create(request: Request, ctx: Ctx) -> dict[str, Any]:
    return _member_write(request, ctx, "post")


@mc_endpoint(paged=False)
async def member_one(request: Request, ctx: Ctx) -> dict[str, Any]:
    list_id = request.path_params["list_id"]
    rec = _member_or_404(ctx.store, list_id, request.path_params["subscriber_hash"])
    ctx.items = 1
    return MemberRenderer(request, ctx.store, list_id)(rec)


@mc_endpoint(paged=False)
async def member_put(request: Request, ctx: Ctx) -> dict[str, Any]:
    return _member_write(request, ctx, "put", request.path_params["subscriber_hash"])


@mc_endpoint(paged=False)
async def member_patch(request: Request, ctx: Ctx) -> dict[str, Any]:
    return _member_write(request, ctx, "patch", request.path_params["subscriber_hash"])


ARCHIVE_REFUSED = "This list member cannot be removed. Can not archive a contact that is bounced, pending or archived"


@mc_endpoint(paged=False)
async def member_archive(request: Request, ctx: Ctx) -> None:
    list_id = request.path_params["list_id"]
    rec = _member_or_404(ctx.store, list_id, request.path_params["subscriber_hash"])
    if rec["status"] in ("archived", "cleaned", "pending"):
        raise MethodNotAllowedError(ARCHIVE_REFUSED, headers={"Allow": "GET, PUT"})
    ctx.store.set_member_status(list_id, rec["id"], "archived", ctx.now(), None, "API - Generic")
    ctx.items = 1


@mc_endpoint(paged=False)
async def member_delete_permanent(request: Request, ctx: Ctx) -> None:
    list_id = _path_list_id(ctx)
    key = request.path_params["subscriber_hash"].lower()
    if key not in ctx.store.members[list_id]:  # md5 only (no email / contact_id here)
        raise ResourceNotFoundError()
    ctx.store.forget_member(list_id, key)
    ctx.items = 1


# --------------------------------------------------------------------------- member tags


@mc_endpoint
async def member_tags(request: Request, ctx: Ctx) -> dict[str, Any]:
    list_id = request.path_params["list_id"]
    rec = _member_or_404(ctx.store, list_id, request.path_params["subscriber_hash"])
    tags = ctx.store.member_tag_list(list_id, rec)
    page = tags[ctx.offset : ctx.offset + ctx.count]
    ctx.items = len(page)
    path = f"/lists/{list_id}/members/{rec['id']}/tags"
    return {
        "tags": page,
        "total_items": len(tags),
        "_links": [
            link(request, "self", path),
            link(request, "parent", f"/lists/{list_id}/members/{rec['id']}"),
        ],
    }


@mc_endpoint(paged=False)
async def member_tags_post(request: Request, ctx: Ctx) -> None:
    list_id = request.path_params["list_id"]
    rec = _member_or_404(ctx.store, list_id, request.path_params["subscriber_hash"])
    body = require_object(ctx.json)
    require_keys(body, ["tags"])
    check_type(body, "tags", "array")
    check_type(body, "is_syncing", "boolean")
    items = body["tags"]
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise FieldError(f"tags.{i}", "Schema describes object, string found instead")
        require_keys(item, ["name", "status"])
        check_type(item, "name", "string", f"tags.{i}.")
        check_enum(item, "status", ("active", "inactive"), f"tags.{i}.")
        if not item["name"].strip():
            raise FieldError(f"tags.{i}.name", "This value should not be blank.")
        if len(item["name"].strip()) > 100:
            raise FieldError(f"tags.{i}.name", "Tag names can be at most 100 characters.")
    now = ctx.now().timestamp()
    aud = ctx.store.audiences[list_id]
    for item in items:
        if item["status"] == "active":
            apply_tags(ctx.store, list_id, rec["id"], [item["name"]], now, sync=False)
        else:
            seg = aud.tag_by_name(item["name"])
            if seg is not None:
                ctx.store.remove_tag(list_id, rec["id"], seg, now)
    ctx.items = len(items)


# --------------------------------------------------------------------------- events, activity


@mc_endpoint
async def member_events(request: Request, ctx: Ctx) -> dict[str, Any]:
    list_id = request.path_params["list_id"]
    rec = _member_or_404(ctx.store, list_id, request.path_params["subscriber_hash"])
    events = list(reversed(rec["events"] or []))
    page = events[ctx.offset : ctx.offset + ctx.count]
    ctx.items = len(page)
    return {
        "events": [
            {"occurred_at": e["occurred_at"], "name": e["name"], "properties": e["properties"]}
            for e in page
        ],
        "total_items": len(events),
        "_links": [link(request, "self", f"/lists/{list_id}/members/{rec['id']}/events")],
    }


@mc_endpoint(paged=False)
async def member_events_post(request: Request, ctx: Ctx) -> None:
    list_id = request.path_params["list_id"]
    rec = _member_or_404(ctx.store, list_id, request.path_params["subscriber_hash"])
    body = require_object(ctx.json)
    require_keys(body, ["name"])
    check_type(body, "name", "string")
    check_type(body, "properties", "object")
    check_type(body, "is_syncing", "boolean")
    check_type(body, "occurred_at", "string")
    name = body["name"]
    if not 2 <= len(name) <= 30:
        raise FieldError("name", "Event name must be 2-30 characters in length.")
    props = body.get("properties") or {}
    bad = [k for k, v in props.items() if not isinstance(v, str)]
    if bad:
        raise FieldError(
            f"properties.{bad[0]}", "Schema describes string, non-string found instead"
        )
    occurred = ctx.now()
    if body.get("occurred_at"):
        try:
            occurred = parse_ts(body["occurred_at"]) or occurred
        except ValueError:
            raise FieldError(
                "occurred_at", "This value is not a valid date-time (ISO 8601)."
            ) from None
    if rec["events"] is None:
        rec["events"] = []
    rec["events"].append(
        {
            "name": name,
            "properties": props,
            "occurred_at": format_epoch(occurred.timestamp()),
            "is_syncing": bool(body.get("is_syncing", False)),
        }
    )
    ctx.items = 1


@mc_endpoint(paged=False)
async def member_activity(request: Request, ctx: Ctx) -> dict[str, Any]:
    list_id = request.path_params["list_id"]
    rec = _member_or_404(ctx.store, list_id, request.path_params["subscriber_hash"])
    acts = list(reversed(rec["activity"] or []))
    actions = ctx.q("action")
    if actions:
        wanted = {a.strip() for a in actions.split(",")}
        acts = [a for a in acts if a.get("action") in wanted]
    ctx.items = len(acts)
    return {
        "activity": acts,
        "email_id": rec["id"],
        "contact_id": rec["contact_id"],
        "list_id": list_id,
        "total_items": len(acts),
        "_links": [link(request, "self", f"/lists/{list_id}/members/{rec['id']}/activity")],
    }


# =========================================================================== batch subscribe


ERROR_CODES = {"Member Exists": "ERROR_CONTACT_EXISTS"}


@mc_endpoint(paged=False)
async def batch_subscribe(request: Request, ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    list_id = _path_list_id(ctx)
    body = require_object(ctx.json)
    require_keys(body, ["members"])
    check_type(body, "members", "array")
    check_type(body, "update_existing", "boolean")
    check_type(body, "sync_tags", "boolean")
    members = body["members"]
    if len(members) > MAX_BATCH_MEMBERS:
        raise FieldError(
            "members",
            f"Up to {MAX_BATCH_MEMBERS} members may be added or updated with each API call; {len(members)} were sent.",
        )
    skip_dup = parse_bool(request, "skip_duplicate_check")
    skip_merge = _skip_merge(request)
    update_existing = bool(body.get("update_existing", False))
    sync_tags = bool(body.get("sync_tags", False))
    render = MemberRenderer(request, store, list_id)
    created: list[dict[str, Any]] = []
    updated: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in members:
        email = item.get("email_address", "") if isinstance(item, dict) else ""
        key = str(email).strip().lower()
        if key and key in seen:
            if not skip_dup:
                errors.append(
                    {
                        "email_address": email,
                        "error": f"{email} was included more than once in this request.",
                        "error_code": "ERROR_GENERIC",
                        "field": "email_address",
                        "field_message": "Duplicate email address",
                    }
                )
            continue
        seen.add(key)
        try:
            if not isinstance(item, dict):
                raise FieldError("members", "Schema describes object, non-object found instead")
            rec, was_created = write_member(
                store,
                list_id,
                item,
                mode="batch",
                skip_merge_validation=skip_merge,
                update_existing=update_existing,
                sync_tags=sync_tags,
            )
        except ApiError as exc:
            field_err = (exc.errors or [{}])[0]
            errors.append(
                {
                    "email_address": email,
                    "error": exc.detail
                    if not exc.errors
                    or exc.detail
                    != "The resource submitted could not be validated. For field-specific "
                    "details, see the 'errors' array."
                    else field_err.get("message", exc.detail),
                    "error_code": ERROR_CODES.get(exc.title, "ERROR_GENERIC"),
                    "field": field_err.get("field", ""),
                    "field_message": field_err.get("message", ""),
                }
            )
            continue
        (created if was_created else updated).append(render(rec))
    ctx.items = len(members)
    return {
        "new_members": created,
        "updated_members": updated,
        "errors": errors,
        "total_created": len(created),
        "total_updated": len(updated),
        "error_count": len(errors),
        "_links": [link(request, "self", f"/lists/{list_id}"), link(request, "parent", "/lists")],
    }


# =========================================================================== segments, tag search


def _segment_doc(
    request: Request, store: MailchimpStore, list_id: str, seg: dict[str, Any]
) -> dict[str, Any]:
    members = store.members[list_id]
    # OpenAPI `List` segment `member_count`: "The number of active subscribers currently included
    # in the segment" -- subscribed members only.
    count = sum(
        1
        for h in seg["members"]
        if (r := members.get(h)) is not None and r["status"] == "subscribed"
    )
    path = f"/lists/{list_id}/segments/{seg['id']}"
    doc: dict[str, Any] = {
        "id": seg["id"],
        "name": seg["name"],
        "member_count": count,
        "type": seg["type"],
        "created_at": format_epoch(seg["created_at"]),
        "updated_at": format_epoch(seg["updated_at"]),
        "list_id": list_id,
        "_links": item_links(request, path, f"/lists/{list_id}/segments", sub="members"),
    }
    if seg["type"] == "saved":
        doc["options"] = seg["options"] or {"match": "any", "conditions": []}
    return doc


def _segment_or_404(store: MailchimpStore, list_id: str, segment_id: str) -> dict[str, Any]:
    _list_or_404(store, list_id)
    return _by_number(store.audiences[list_id].segments, segment_id)


@mc_endpoint
async def segments_collection(request: Request, ctx: Ctx) -> dict[str, Any]:
    list_id = _path_list_id(ctx)
    segs = list(ctx.store.audiences[list_id].segments.values())
    type_ = ctx.q("type")
    if type_:
        check_enum({"type": type_}, "type", ("saved", "static", "fuzzy"))
        segs = [s for s in segs if s["type"] == type_]
    for name, key, greater in (
        ("since_created_at", "created_at", True),
        ("before_created_at", "created_at", False),
        ("since_updated_at", "updated_at", True),
        ("before_updated_at", "updated_at", False),
    ):
        bound = parse_ts_param(request, name)
        if bound is not None:
            b = bound.timestamp()
            segs = [s for s in segs if (s[key] > b if greater else s[key] <= b)]
    page = segs[ctx.offset : ctx.offset + ctx.count]
    ctx.items = len(page)
    docs = [_segment_doc(request, ctx.store, list_id, s) for s in page]
    return _list_collection(request, list_id, "segments", docs, len(segs))


def _emails_to_hashes(store: MailchimpStore, list_id: str, emails: list[Any]) -> list[str]:
    members = store.members[list_id]
    return [h for e in emails if isinstance(e, str) and (h := subscriber_hash(e)) in members]


@mc_endpoint(paged=False)
async def segment_create(request: Request, ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    list_id = _path_list_id(ctx)
    body = require_object(ctx.json)
    require_keys(body, ["name"])
    check_type(body, "name", "string")
    check_type(body, "static_segment", "array")
    check_type(body, "options", "object")
    if "static_segment" in body and "options" in body:
        raise FieldError(
            "static_segment", "static_segment cannot be provided with the options field."
        )
    now = ctx.now().timestamp()
    if "static_segment" in body:
        if store.audiences[list_id].tag_by_name(body["name"]) is not None:
            raise InvalidResourceError(f'A tag with the name "{body["name"]}" already exists.')
        seg = store.new_segment(list_id, body["name"].strip(), "static", now)
        for h in _emails_to_hashes(store, list_id, body["static_segment"]):
            store.add_tag(list_id, h, seg, now)
    else:
        opts = body.get("options") or {"match": "any", "conditions": []}
        check_enum(opts, "match", ("any", "all"), "options.")
        seg = store.new_segment(list_id, body["name"].strip(), "saved", now, opts)
    ctx.items = 1
    return _segment_doc(request, store, list_id, seg)


@mc_endpoint(paged=False)
async def segment_one(request: Request, ctx: Ctx) -> dict[str, Any]:
    list_id = request.path_params["list_id"]
    seg = _segment_or_404(ctx.store, list_id, request.path_params["segment_id"])
    return _segment_doc(request, ctx.store, list_id, seg)


@mc_endpoint(paged=False)
async def segment_patch(request: Request, ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    list_id = request.path_params["list_id"]
    seg = _segment_or_404(store, list_id, request.path_params["segment_id"])
    body = require_object(ctx.json)
    require_keys(body, ["name"])
    check_type(body, "name", "string")
    check_type(body, "static_segment", "array")
    now = ctx.now().timestamp()
    aud = store.audiences[list_id]
    new_name = body["name"].strip()
    if seg["type"] == "static" and new_name.lower() != seg["name"].lower():
        if aud.tag_by_name(new_name) is not None:
            raise InvalidResourceError(f'A tag with the name "{new_name}" already exists.')
        aud.tag_index.pop(seg["name"].lower(), None)
        aud.tag_index[new_name.lower()] = seg["id"]
    seg["name"] = new_name
    seg["updated_at"] = now
    if "static_segment" in body and seg["type"] == "static":
        wanted = set(_emails_to_hashes(store, list_id, body["static_segment"]))
        for h in list(seg["members"] - wanted):
            store.remove_tag(list_id, h, seg, now)
        for h in wanted - seg["members"]:
            store.add_tag(list_id, h, seg, now)
    if "options" in body and seg["type"] == "saved":
        seg["options"] = body["options"]
    return _segment_doc(request, store, list_id, seg)


@mc_endpoint(paged=False)
async def segment_delete(request: Request, ctx: Ctx) -> None:
    list_id = request.path_params["list_id"]
    seg = _segment_or_404(ctx.store, list_id, request.path_params["segment_id"])
    ctx.store.delete_segment(list_id, seg["id"], ctx.now().timestamp())


@mc_endpoint(paged=False)
async def segment_batch(request: Request, ctx: Ctx) -> dict[str, Any]:
    """`POST /lists/{id}/segments/{sid}`: members_to_add / members_to_remove (≤500 each)."""
    store = ctx.store
    list_id = request.path_params["list_id"]
    seg = _segment_or_404(store, list_id, request.path_params["segment_id"])
    body = require_object(ctx.json)
    check_type(body, "members_to_add", "array")
    check_type(body, "members_to_remove", "array")
    to_add = body.get("members_to_add") or []
    to_remove = body.get("members_to_remove") or []
    for key, values in (("members_to_add", to_add), ("members_to_remove", to_remove)):
        if len(values) > MAX_SEGMENT_MEMBERS:
            raise FieldError(key, f"A maximum of {MAX_SEGMENT_MEMBERS} members can be sent.")
    if seg["type"] != "static":
        raise InvalidActionError(
            "Members can only be added to or removed from static segments (tags)."
        )
    now = ctx.now().timestamp()
    members = store.members[list_id]
    render = MemberRenderer(request, store, list_id)
    added, removed, missing_add, missing_remove = [], [], [], []
    for email in to_add:
        h = subscriber_hash(str(email))
        if h not in members:
            missing_add.append(email)
            continue
        store.add_tag(list_id, h, seg, now)
        added.append(render(members[h]))
    for email in to_remove:
        h = subscriber_hash(str(email))
        if h not in members or h not in seg["members"]:
            missing_remove.append(email)
            continue
        store.remove_tag(list_id, h, seg, now)
        removed.append(render(members[h]))
    errors = []
    if missing_add:
        errors.append(
            {"email_addresses": missing_add, "error": "Email addresses do not belong to this list."}
        )
    if missing_remove:
        errors.append(
            {"email_addresses": missing_remove, "error": "Email addresses are not in this segment."}
        )
    ctx.items = len(to_add) + len(to_remove)
    return {
        "members_added": added,
        "members_removed": removed,
        "errors": errors,
        "total_added": len(added),
        "total_removed": len(removed),
        "error_count": len(missing_add) + len(missing_remove),
        "_links": [link(request, "self", f"/lists/{list_id}/segments/{seg['id']}")],
    }


@mc_endpoint
async def segment_members(request: Request, ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    list_id = request.path_params["list_id"]
    seg = _segment_or_404(store, list_id, request.path_params["segment_id"])
    include = {"subscribed", "pending"}
    for status, param in (
        ("cleaned", "include_cleaned"),
        ("transactional", "include_transactional"),
        ("unsubscribed", "include_unsubscribed"),
    ):
        if parse_bool(request, param):
            include.add(status)
    members = store.members[list_id]
    recs = (
        [r for h, r in members.items() if h in seg["members"] and r["status"] in include]
        if seg["members"]
        else []
    )
    page = recs[ctx.offset : ctx.offset + ctx.count]
    render = MemberRenderer(request, store, list_id)
    ctx.items = len(page)
    return {
        "members": [render(r) for r in page],
        "total_items": len(recs),
        "_links": [link(request, "self", f"/lists/{list_id}/segments/{seg['id']}/members")],
    }


@mc_endpoint(paged=False)
async def segment_member_add(request: Request, ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    list_id = request.path_params["list_id"]
    seg = _segment_or_404(store, list_id, request.path_params["segment_id"])
    body = require_object(ctx.json)
    require_keys(body, ["email_address"])
    if seg["type"] != "static":
        raise InvalidActionError("Members can only be added to static segments (tags).")
    h = subscriber_hash(str(body["email_address"]))
    rec = store.members[list_id].get(h)
    if rec is None:
        raise ResourceNotFoundError()
    store.add_tag(list_id, h, seg, ctx.now().timestamp())
    return MemberRenderer(request, store, list_id)(rec)


@mc_endpoint(paged=False)
async def segment_member_remove(request: Request, ctx: Ctx) -> None:
    store = ctx.store
    list_id = request.path_params["list_id"]
    seg = _segment_or_404(store, list_id, request.path_params["segment_id"])
    h = store.resolve_member(list_id, request.path_params["subscriber_hash"])
    if h not in seg["members"]:
        raise ResourceNotFoundError()
    store.remove_tag(list_id, h, seg, ctx.now().timestamp())


@mc_endpoint
async def tag_search(request: Request, ctx: Ctx) -> dict[str, Any]:
    list_id = _path_list_id(ctx)
    prefix = (ctx.q("name") or "").strip().lower()
    tags = [
        {"id": s["id"], "name": s["name"]}
        for s in ctx.store.audiences[list_id].segments.values()
        if s["type"] == "static" and s["name"].lower().startswith(prefix)
    ]
    page = tags[ctx.offset : ctx.offset + ctx.count]
    ctx.items = len(page)
    return {"tags": page, "total_items": len(tags)}


# =========================================================================== webhooks


WEBHOOK_EVENTS = ("subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign")
WEBHOOK_SOURCES = ("user", "admin", "api")


def _webhook_doc(request: Request, hook: dict[str, Any]) -> dict[str, Any]:
    path = f"/lists/{hook['list_id']}/webhooks/{hook['id']}"
    return {
        **hook,
        "_links": item_links(request, path, f"/lists/{hook['list_id']}/webhooks"),
    }


def _check_webhook_body(body: dict[str, Any]) -> None:
    check_type(body, "url", "string")
    check_type(body, "events", "object")
    check_type(body, "sources", "object")
    if "url" in body and not re.match(r"^https?://\S+$", body["url"]):
        raise FieldError("url", "This value should be a valid URL.")
    for group, names in (("events", WEBHOOK_EVENTS), ("sources", WEBHOOK_SOURCES)):
        for key, val in (body.get(group) or {}).items():
            if key not in names:
                raise FieldError(f"{group}.{key}", "Unknown property.")
            if not isinstance(val, bool):
                raise FieldError(
                    f"{group}.{key}", "Schema describes boolean, non-boolean found instead"
                )


def _webhook_or_404(store: MailchimpStore, list_id: str, webhook_id: str) -> dict[str, Any]:
    _list_or_404(store, list_id)
    hook = store.audiences[list_id].webhooks.get(webhook_id)
    if hook is None:
        raise ResourceNotFoundError()
    return hook


@mc_endpoint(paged=False)
async def webhooks_collection(request: Request, ctx: Ctx) -> dict[str, Any]:
    list_id = _path_list_id(ctx)
    hooks = list(ctx.store.audiences[list_id].webhooks.values())
    ctx.items = len(hooks)
    return {
        "webhooks": [_webhook_doc(request, h) for h in hooks],
        "list_id": list_id,
        "total_items": len(hooks),
        "_links": [link(request, "self", f"/lists/{list_id}/webhooks")],
    }


@mc_endpoint(paged=False)
async def webhook_create(request: Request, ctx: Ctx) -> dict[str, Any]:
    list_id = _path_list_id(ctx)
    body = require_object(ctx.json)
    require_keys(body, ["url"])
    _check_webhook_body(body)
    aud = ctx.store.audiences[list_id]
    if any(h["url"] == body["url"] for h in aud.webhooks.values()):
        raise InvalidResourceError("Sorry, you can't use the same webhook URL more than once.")
    hook_id = short_id("webhook", list_id, body["url"], len(aud.webhooks))
    hook = {
        "id": hook_id,
        "url": body["url"],
        "events": {
            e: bool((body.get("events") or {}).get(e, e != "campaign")) for e in WEBHOOK_EVENTS
        },
        "sources": {
            s: bool((body.get("sources") or {}).get(s, s != "api")) for s in WEBHOOK_SOURCES
        },
        "list_id": list_id,
    }
    aud.webhooks[hook_id] = hook
    return _webhook_doc(request, hook)


@mc_endpoint(paged=False)
async def webhook_one(request: Request, ctx: Ctx) -> dict[str, Any]:
    hook = _webhook_or_404(
        ctx.store, request.path_params["list_id"], request.path_params["webhook_id"]
    )
    return _webhook_doc(request, hook)


@mc_endpoint(paged=False)
async def webhook_patch(request: Request, ctx: Ctx) -> dict[str, Any]:
    hook = _webhook_or_404(
        ctx.store, request.path_params["list_id"], request.path_params["webhook_id"]
    )
    body = require_object(ctx.json)
    _check_webhook_body(body)
    if "url" in body:
        hook["url"] = body["url"]
    for group in ("events", "sources"):
        hook[group].update(body.get(group) or {})
    return _webhook_doc(request, hook)


@mc_endpoint(paged=False)
async def webhook_delete(request: Request, ctx: Ctx) -> None:
    list_id = request.path_params["list_id"]
    hook = _webhook_or_404(ctx.store, list_id, request.path_params["webhook_id"])
    del ctx.store.audiences[list_id].webhooks[hook["id"]]


# =========================================================================== search members


@mc_endpoint(paged=False)
async def search_members(request: Request, ctx: Ctx) -> dict[str, Any]:
    query = (ctx.q("query") or "").strip()
    if not query:
        raise FieldError("query", "Required parameter missing: query")
    only = ctx.q("list_id")
    exact: list[dict[str, Any]] = []
    full: list[dict[str, Any]] = []
    low = query.lower()
    for lid in ctx.store.lists:
        if only and lid != only:
            continue
        render = MemberRenderer(request, ctx.store, lid)
        rec = ctx.store.members[lid].get(subscriber_hash(query)) if "@" in query else None
        if rec is not None:
            exact.append(render(rec))
            continue
        for r in ctx.store.members[lid].values():
            if len(full) >= 10:
                break
            if (
                low in r["email_address"].lower()
                or low
                in f"{r['merge_fields'].get('FNAME', '')} {r['merge_fields'].get('LNAME', '')}".lower()
            ):
                full.append(render(r))
    return {
        "exact_matches": {"members": exact, "total_items": len(exact)},
        "full_search": {"members": full, "total_items": len(full)},
        "_links": [link(request, "self", "/search-members")],
    }


# =========================================================================== fallbacks


async def not_found_fallback(request: Request) -> Response:
    """Any other `/3.0/...` path: 405 with `Allow` when the path exists for other methods, else 404."""
    early = await preflight(request)
    if early is not None:
        return early
    allowed: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.endpoint is not FALLBACK_APP:
            match, _ = route.matches({**request.scope, "method": "__NONE__"})
            if match == Match.PARTIAL and route.methods:
                allowed |= route.methods - {"HEAD"}
    if allowed:
        return MethodNotAllowedError(headers={"Allow": ", ".join(sorted(allowed))}).response(
            request
        )
    return ResourceNotFoundError().response(request)


class _AnyMethodFallback:
    """`not_found_fallback` as a plain ASGI app (Starlette then routes every method to it)."""

    def __init__(self) -> None:
        self.app = request_response(not_found_fallback)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


FALLBACK_APP = _AnyMethodFallback()


async def http_exception_problem(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (paths outside `/3.0`) as problem+json instead of text/plain."""
    status = getattr(exc, "status_code", 404)
    headers = dict(getattr(exc, "headers", None) or {})
    if status == 405:
        return MethodNotAllowedError(headers=headers).response(request)
    return ResourceNotFoundError().response(request)


__all__ = [
    "MemberRenderer",
    "email_problem",
    "http_exception_problem",
    "render_list",
]
