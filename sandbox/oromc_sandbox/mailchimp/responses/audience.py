"""Account root, lists, merge fields, members (+tags, events, activity), batch subscribe, segments,
tag search and list webhooks of the Mailchimp Marketing API v3."""

from __future__ import annotations

from itertools import islice
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route, request_response

from .. import lists
from ..common import (
    Ctx,
    api_base,
    collection_links,
    item_links,
    json_response,
    link,
    mc_endpoint,
    parse_bool,
    parse_ts_param,
    preflight,
)
from ..exceptions import (
    FieldError,
    ForbiddenError,
    InvalidResourceError,
    MethodNotAllowedError,
    ResourceNotFoundError,
)
from ..lists import (
    list_or_404,
    member_or_404,
    merge_field_or_404,
    segment_or_404,
    webhook_or_404,
)
from ..members import ALL_STATUSES, SORT_FIELDS, WINDOWS, MemberQuery, select_members
from ..store import MEMBER_TAGS_SHOWN, MailchimpStore
from ..validation import (
    email_problem,
    write_member,
)
from ..values import check_enum, check_type, format_epoch, parse_ts, require_object, subscriber_hash

P = "/3.0"


# =========================================================================== helpers


def _path_list_id(ctx: Ctx) -> str:
    """The `{list_id}` of the request path (404 when there is no such audience)."""
    list_id: str = ctx.request.path_params["list_id"]
    list_or_404(ctx.store, list_id)
    return list_id


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
    doc = list_or_404(ctx.store, request.path_params["list_id"])
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
    doc = list_or_404(ctx.store, request.path_params["list_id"])
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
    mf = lists.create_merge_field(ctx.store, _path_list_id(ctx), require_object(ctx.json))
    ctx.items = 1
    return _render_mf(request, mf)


@mc_endpoint(paged=False)
async def merge_field_one(request: Request, ctx: Ctx) -> dict[str, Any]:
    mf = merge_field_or_404(
        ctx.store, request.path_params["list_id"], request.path_params["merge_id"]
    )
    return _render_mf(request, mf)


@mc_endpoint(paged=False)
async def merge_field_patch(request: Request, ctx: Ctx) -> dict[str, Any]:
    list_id = request.path_params["list_id"]
    mf = merge_field_or_404(ctx.store, list_id, request.path_params["merge_id"])
    lists.update_merge_field(ctx.store, list_id, mf, require_object(ctx.json))
    return _render_mf(request, mf)


@mc_endpoint(paged=False)
async def merge_field_delete(request: Request, ctx: Ctx) -> None:
    list_id = request.path_params["list_id"]
    mf = merge_field_or_404(ctx.store, list_id, request.path_params["merge_id"])
    lists.delete_merge_field(ctx.store, list_id, mf)


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
    rec = member_or_404(ctx.store, list_id, request.path_params["subscriber_hash"])
    ctx.items = 1
    return MemberRenderer(request, ctx.store, list_id)(rec)


@mc_endpoint(paged=False)
async def member_put(request: Request, ctx: Ctx) -> dict[str, Any]:
    return _member_write(request, ctx, "put", request.path_params["subscriber_hash"])


@mc_endpoint(paged=False)
async def member_patch(request: Request, ctx: Ctx) -> dict[str, Any]:
    return _member_write(request, ctx, "patch", request.path_params["subscriber_hash"])


@mc_endpoint(paged=False)
async def member_archive(request: Request, ctx: Ctx) -> None:
    list_id = request.path_params["list_id"]
    rec = member_or_404(ctx.store, list_id, request.path_params["subscriber_hash"])
    lists.archive_member(ctx.store, list_id, rec, ctx.now())
    ctx.items = 1


@mc_endpoint(paged=False)
async def member_delete_permanent(request: Request, ctx: Ctx) -> None:
    list_id = _path_list_id(ctx)
    lists.delete_member_permanently(ctx.store, list_id, request.path_params["subscriber_hash"])
    ctx.items = 1


# --------------------------------------------------------------------------- member tags


@mc_endpoint
async def member_tags(request: Request, ctx: Ctx) -> dict[str, Any]:
    list_id = request.path_params["list_id"]
    rec = member_or_404(ctx.store, list_id, request.path_params["subscriber_hash"])
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
    rec = member_or_404(ctx.store, list_id, request.path_params["subscriber_hash"])
    body = require_object(ctx.json)
    ctx.items = lists.set_member_tags(ctx.store, list_id, rec, body, ctx.now().timestamp())


# --------------------------------------------------------------------------- events, activity


@mc_endpoint
async def member_events(request: Request, ctx: Ctx) -> dict[str, Any]:
    list_id = request.path_params["list_id"]
    rec = member_or_404(ctx.store, list_id, request.path_params["subscriber_hash"])
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
    rec = member_or_404(ctx.store, list_id, request.path_params["subscriber_hash"])
    lists.add_member_event(rec, require_object(ctx.json), ctx.now())
    ctx.items = 1


@mc_endpoint(paged=False)
async def member_activity(request: Request, ctx: Ctx) -> dict[str, Any]:
    list_id = request.path_params["list_id"]
    rec = member_or_404(ctx.store, list_id, request.path_params["subscriber_hash"])
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


@mc_endpoint(paged=False)
async def batch_subscribe(request: Request, ctx: Ctx) -> dict[str, Any]:
    list_id = _path_list_id(ctx)
    body = require_object(ctx.json)
    result = lists.batch_subscribe(
        ctx.store,
        list_id,
        body,
        skip_duplicate_check=parse_bool(request, "skip_duplicate_check"),
        skip_merge_validation=_skip_merge(request),
    )
    render = MemberRenderer(request, ctx.store, list_id)
    ctx.items = len(body["members"])
    return {
        "new_members": [render(r) for r in result.created],
        "updated_members": [render(r) for r in result.updated],
        "errors": result.errors,
        "total_created": len(result.created),
        "total_updated": len(result.updated),
        "error_count": len(result.errors),
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


@mc_endpoint(paged=False)
async def segment_create(request: Request, ctx: Ctx) -> dict[str, Any]:
    list_id = _path_list_id(ctx)
    body = require_object(ctx.json)
    seg = lists.create_segment(ctx.store, list_id, body, ctx.now().timestamp())
    ctx.items = 1
    return _segment_doc(request, ctx.store, list_id, seg)


@mc_endpoint(paged=False)
async def segment_one(request: Request, ctx: Ctx) -> dict[str, Any]:
    list_id = request.path_params["list_id"]
    seg = segment_or_404(ctx.store, list_id, request.path_params["segment_id"])
    return _segment_doc(request, ctx.store, list_id, seg)


@mc_endpoint(paged=False)
async def segment_patch(request: Request, ctx: Ctx) -> dict[str, Any]:
    list_id = request.path_params["list_id"]
    seg = segment_or_404(ctx.store, list_id, request.path_params["segment_id"])
    body = require_object(ctx.json)
    lists.update_segment(ctx.store, list_id, seg, body, ctx.now().timestamp())
    return _segment_doc(request, ctx.store, list_id, seg)


@mc_endpoint(paged=False)
async def segment_delete(request: Request, ctx: Ctx) -> None:
    list_id = request.path_params["list_id"]
    seg = segment_or_404(ctx.store, list_id, request.path_params["segment_id"])
    ctx.store.delete_segment(list_id, seg["id"], ctx.now().timestamp())


@mc_endpoint(paged=False)
async def segment_batch(request: Request, ctx: Ctx) -> dict[str, Any]:
    """`POST /lists/{id}/segments/{sid}`: members_to_add / members_to_remove (≤500 each)."""
    list_id = request.path_params["list_id"]
    seg = segment_or_404(ctx.store, list_id, request.path_params["segment_id"])
    body = require_object(ctx.json)
    change = lists.change_segment_members(ctx.store, list_id, seg, body, ctx.now().timestamp())
    render = MemberRenderer(request, ctx.store, list_id)
    errors = []
    if change.missing_add:
        errors.append(
            {
                "email_addresses": change.missing_add,
                "error": "Email addresses do not belong to this list.",
            }
        )
    if change.missing_remove:
        errors.append(
            {
                "email_addresses": change.missing_remove,
                "error": "Email addresses are not in this segment.",
            }
        )
    ctx.items = len(body.get("members_to_add") or []) + len(body.get("members_to_remove") or [])
    return {
        "members_added": [render(r) for r in change.added],
        "members_removed": [render(r) for r in change.removed],
        "errors": errors,
        "total_added": len(change.added),
        "total_removed": len(change.removed),
        "error_count": len(change.missing_add) + len(change.missing_remove),
        "_links": [link(request, "self", f"/lists/{list_id}/segments/{seg['id']}")],
    }


@mc_endpoint
async def segment_members(request: Request, ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    list_id = request.path_params["list_id"]
    seg = segment_or_404(store, list_id, request.path_params["segment_id"])
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
    list_id = request.path_params["list_id"]
    seg = segment_or_404(ctx.store, list_id, request.path_params["segment_id"])
    body = require_object(ctx.json)
    rec = lists.add_segment_member(ctx.store, list_id, seg, body, ctx.now().timestamp())
    return MemberRenderer(request, ctx.store, list_id)(rec)


@mc_endpoint(paged=False)
async def segment_member_remove(request: Request, ctx: Ctx) -> None:
    list_id = request.path_params["list_id"]
    seg = segment_or_404(ctx.store, list_id, request.path_params["segment_id"])
    key = request.path_params["subscriber_hash"]
    lists.remove_segment_member(ctx.store, list_id, seg, key, ctx.now().timestamp())


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


def _webhook_doc(request: Request, hook: dict[str, Any]) -> dict[str, Any]:
    path = f"/lists/{hook['list_id']}/webhooks/{hook['id']}"
    return {
        **hook,
        "_links": item_links(request, path, f"/lists/{hook['list_id']}/webhooks"),
    }


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
    hook = lists.create_webhook(ctx.store, _path_list_id(ctx), require_object(ctx.json))
    return _webhook_doc(request, hook)


@mc_endpoint(paged=False)
async def webhook_one(request: Request, ctx: Ctx) -> dict[str, Any]:
    hook = webhook_or_404(
        ctx.store, request.path_params["list_id"], request.path_params["webhook_id"]
    )
    return _webhook_doc(request, hook)


@mc_endpoint(paged=False)
async def webhook_patch(request: Request, ctx: Ctx) -> dict[str, Any]:
    hook = webhook_or_404(
        ctx.store, request.path_params["list_id"], request.path_params["webhook_id"]
    )
    lists.update_webhook(hook, require_object(ctx.json))
    return _webhook_doc(request, hook)


@mc_endpoint(paged=False)
async def webhook_delete(request: Request, ctx: Ctx) -> None:
    list_id = request.path_params["list_id"]
    hook = webhook_or_404(ctx.store, list_id, request.path_params["webhook_id"])
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
