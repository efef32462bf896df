"""Audience rules (model, no HTTP): lookups, merge fields, member tags/events/archive, batch
subscribe, segments and tags, webhooks. Each function changes the store or raises the
`exceptions` class Mailchimp answers with; `responses/audience.py` parses and renders around them.
Member writes themselves (email, merge values, status machine, upserts) are `validation.py`;
member-list queries are `members.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .exceptions import (
    ApiError,
    FieldError,
    InvalidActionError,
    InvalidResourceError,
    MethodNotAllowedError,
    ResourceNotFoundError,
)
from .store import Audience, MailchimpStore
from .validation import MERGE_TYPES, apply_tags, write_member
from .values import (
    check_enum,
    check_type,
    format_epoch,
    parse_ts,
    require_keys,
    short_id,
    subscriber_hash,
)

MAX_BATCH_MEMBERS = 500


MAX_SEGMENT_MEMBERS = 500


def list_or_404(store: MailchimpStore, list_id: str) -> dict[str, Any]:
    doc = store.lists.get(list_id)
    if doc is None:
        raise ResourceNotFoundError()
    return doc


def member_or_404(store: MailchimpStore, list_id: str, key: str) -> dict[str, Any]:
    list_or_404(store, list_id)
    rec = store.get_member(list_id, store.resolve_member(list_id, key))
    if rec is None:
        raise ResourceNotFoundError()
    return rec


def by_number(items: dict[int, dict[str, Any]], raw_id: str) -> dict[str, Any]:
    """The item whose integer id is `raw_id` (404 when it is not a number or not there)."""
    try:
        item = items.get(int(raw_id))
    except ValueError:
        raise ResourceNotFoundError() from None
    if item is None:
        raise ResourceNotFoundError()
    return item


def merge_field_or_404(store: MailchimpStore, list_id: str, merge_id: str) -> dict[str, Any]:
    list_or_404(store, list_id)
    return by_number(store.audiences[list_id].merge_fields, merge_id)


TAG_RE = re.compile(r"^[A-Z0-9_]{1,10}$")


def check_merge_field_body(body: dict[str, Any]) -> None:
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


def default_options(type_: str, opts: dict[str, Any]) -> dict[str, Any]:
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


ARCHIVE_REFUSED = "This list member cannot be removed. Can not archive a contact that is bounced, pending or archived"


ERROR_CODES = {"Member Exists": "ERROR_CONTACT_EXISTS"}


def segment_or_404(store: MailchimpStore, list_id: str, segment_id: str) -> dict[str, Any]:
    list_or_404(store, list_id)
    return by_number(store.audiences[list_id].segments, segment_id)


def emails_to_hashes(store: MailchimpStore, list_id: str, emails: list[Any]) -> list[str]:
    members = store.members[list_id]
    return [h for e in emails if isinstance(e, str) and (h := subscriber_hash(e)) in members]


WEBHOOK_EVENTS = ("subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign")


WEBHOOK_SOURCES = ("user", "admin", "api")


def check_webhook_body(body: dict[str, Any]) -> None:
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


def webhook_or_404(store: MailchimpStore, list_id: str, webhook_id: str) -> dict[str, Any]:
    list_or_404(store, list_id)
    hook = store.audiences[list_id].webhooks.get(webhook_id)
    if hook is None:
        raise ResourceNotFoundError()
    return hook


# --------------------------------------------------------------------------- merge fields


def _check_tag(tag: str) -> None:
    if not TAG_RE.match(tag):
        raise FieldError(
            "tag",
            "Merge tags may contain only letters, numbers and underscores, up to 10 characters.",
        )


def _check_tag_free(aud: Audience, tag: str) -> None:
    if tag == "EMAIL" or any(m["tag"] == tag for m in aud.merge_fields.values()):
        raise InvalidResourceError(
            f'A Merge Field with the tag "{tag}" already exists for this list.'
        )


def create_merge_field(store: MailchimpStore, list_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """`POST /lists/{id}/merge-fields`: the tag defaults to `MERGE<n>` and must be unused."""
    require_keys(body, ["name", "type"])
    check_merge_field_body(body)
    aud = store.audiences[list_id]
    mid = aud.next_merge_id
    tag = (body.get("tag") or f"MERGE{mid}").strip().upper()
    _check_tag(tag)
    _check_tag_free(aud, tag)
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
        "options": default_options(body["type"], body.get("options") or {}),
        "help_text": body.get("help_text", ""),
        "list_id": list_id,
    }
    aud.merge_fields[mid] = mf
    return mf


def update_merge_field(
    store: MailchimpStore, list_id: str, mf: dict[str, Any], body: dict[str, Any]
) -> None:
    """`PATCH`: the type never changes; a new tag renames the members' values too."""
    require_keys(body, ["name"])
    check_merge_field_body(body)
    if "type" in body and body["type"] != mf["type"]:
        raise FieldError("type", "The type of a merge field cannot be changed.")
    if "tag" in body:
        tag = body["tag"].strip().upper()
        _check_tag(tag)
        if tag != mf["tag"]:
            _check_tag_free(store.audiences[list_id], tag)
            old = mf["tag"]
            for rec in store.iter_members(list_id):
                if old in rec["merge_fields"]:
                    rec["merge_fields"][tag] = rec["merge_fields"].pop(old)
            mf["tag"] = tag
    for key in ("name", "required", "default_value", "public", "display_order", "help_text"):
        if key in body:
            mf[key] = body[key]
    if "options" in body:
        mf["options"] = {
            **mf["options"],
            **default_options(mf["type"], {**mf["options"], **body["options"]}),
        }


def delete_merge_field(store: MailchimpStore, list_id: str, mf: dict[str, Any]) -> None:
    del store.audiences[list_id].merge_fields[mf["merge_id"]]
    for rec in store.iter_members(list_id):
        rec["merge_fields"].pop(mf["tag"], None)


# --------------------------------------------------------------------------- members


def archive_member(store: MailchimpStore, list_id: str, rec: dict[str, Any], now: datetime) -> None:
    """`DELETE /lists/{id}/members/{hash}`: archive (405 for bounced, pending or archived)."""
    if rec["status"] in ("archived", "cleaned", "pending"):
        raise MethodNotAllowedError(ARCHIVE_REFUSED, headers={"Allow": "GET, PUT"})
    store.set_member_status(list_id, rec["id"], "archived", now, None, "API - Generic")


def delete_member_permanently(store: MailchimpStore, list_id: str, key: str) -> None:
    """`actions/delete-permanent`: by md5 only (no email / contact_id here)."""
    key = key.lower()
    if key not in store.members[list_id]:
        raise ResourceNotFoundError()
    store.forget_member(list_id, key)


def _check_tag_items(items: list[Any]) -> None:
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


def set_member_tags(
    store: MailchimpStore, list_id: str, rec: dict[str, Any], body: dict[str, Any], now: float
) -> int:
    """`POST .../tags`: add the `active` tags, remove the `inactive` ones; how many were sent."""
    require_keys(body, ["tags"])
    check_type(body, "tags", "array")
    check_type(body, "is_syncing", "boolean")
    items = body["tags"]
    _check_tag_items(items)
    aud = store.audiences[list_id]
    for item in items:
        if item["status"] == "active":
            apply_tags(store, list_id, rec["id"], [item["name"]], now, sync=False)
        else:
            seg = aud.tag_by_name(item["name"])
            if seg is not None:
                store.remove_tag(list_id, rec["id"], seg, now)
    return len(items)


def add_member_event(rec: dict[str, Any], body: dict[str, Any], now: datetime) -> None:
    """`POST .../events`: a named event (2-30 characters) with string properties."""
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
    occurred = now
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


# --------------------------------------------------------------------------- batch subscribe


@dataclass
class BatchResult:
    """What `POST /lists/{id}` did: member records created and updated, and one row per error."""

    created: list[dict[str, Any]] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def _error_row(email: Any, exc: ApiError) -> dict[str, Any]:
    field_err = (exc.errors or [{}])[0]
    generic = bool(exc.errors) and exc.detail == InvalidResourceError.default_detail
    return {
        "email_address": email,
        "error": field_err.get("message", exc.detail) if generic else exc.detail,
        "error_code": ERROR_CODES.get(exc.title, "ERROR_GENERIC"),
        "field": field_err.get("field", ""),
        "field_message": field_err.get("message", ""),
    }


def _duplicate_row(email: Any) -> dict[str, Any]:
    return {
        "email_address": email,
        "error": f"{email} was included more than once in this request.",
        "error_code": "ERROR_GENERIC",
        "field": "email_address",
        "field_message": "Duplicate email address",
    }


def batch_subscribe(
    store: MailchimpStore,
    list_id: str,
    body: dict[str, Any],
    *,
    skip_duplicate_check: bool,
    skip_merge_validation: bool,
) -> BatchResult:
    """Write up to 500 members; a member's error becomes a row, the others still go through."""
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
    update_existing = bool(body.get("update_existing", False))
    sync_tags = bool(body.get("sync_tags", False))
    out = BatchResult()
    seen: set[str] = set()
    for item in members:
        email = item.get("email_address", "") if isinstance(item, dict) else ""
        key = str(email).strip().lower()
        if key and key in seen:
            if not skip_duplicate_check:
                out.errors.append(_duplicate_row(email))
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
                skip_merge_validation=skip_merge_validation,
                update_existing=update_existing,
                sync_tags=sync_tags,
            )
        except ApiError as exc:
            out.errors.append(_error_row(email, exc))
            continue
        (out.created if was_created else out.updated).append(rec)
    return out


# --------------------------------------------------------------------------- segments and tags


def create_segment(
    store: MailchimpStore, list_id: str, body: dict[str, Any], now: float
) -> dict[str, Any]:
    """A static segment (a tag) from `static_segment` emails, else a saved segment with `options`."""
    require_keys(body, ["name"])
    check_type(body, "name", "string")
    check_type(body, "static_segment", "array")
    check_type(body, "options", "object")
    if "static_segment" in body and "options" in body:
        raise FieldError(
            "static_segment", "static_segment cannot be provided with the options field."
        )
    if "static_segment" in body:
        if store.audiences[list_id].tag_by_name(body["name"]) is not None:
            raise InvalidResourceError(f'A tag with the name "{body["name"]}" already exists.')
        seg = store.new_segment(list_id, body["name"].strip(), "static", now)
        for h in emails_to_hashes(store, list_id, body["static_segment"]):
            store.add_tag(list_id, h, seg, now)
        return seg
    opts = body.get("options") or {"match": "any", "conditions": []}
    check_enum(opts, "match", ("any", "all"), "options.")
    return store.new_segment(list_id, body["name"].strip(), "saved", now, opts)


def update_segment(
    store: MailchimpStore, list_id: str, seg: dict[str, Any], body: dict[str, Any], now: float
) -> None:
    """Rename (a tag's new name must be free); a static segment's members become `static_segment`."""
    require_keys(body, ["name"])
    check_type(body, "name", "string")
    check_type(body, "static_segment", "array")
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
        wanted = set(emails_to_hashes(store, list_id, body["static_segment"]))
        for h in list(seg["members"] - wanted):
            store.remove_tag(list_id, h, seg, now)
        for h in wanted - seg["members"]:
            store.add_tag(list_id, h, seg, now)
    if "options" in body and seg["type"] == "saved":
        seg["options"] = body["options"]


@dataclass
class SegmentChange:
    """What `POST /lists/{id}/segments/{sid}` did: member records added and removed, emails refused."""

    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    missing_add: list[Any] = field(default_factory=list)
    missing_remove: list[Any] = field(default_factory=list)


def change_segment_members(
    store: MailchimpStore, list_id: str, seg: dict[str, Any], body: dict[str, Any], now: float
) -> SegmentChange:
    """`members_to_add` / `members_to_remove` (500 each at most) of a static segment."""
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
    members = store.members[list_id]
    out = SegmentChange()
    for email in to_add:
        h = subscriber_hash(str(email))
        if h not in members:
            out.missing_add.append(email)
            continue
        store.add_tag(list_id, h, seg, now)
        out.added.append(members[h])
    for email in to_remove:
        h = subscriber_hash(str(email))
        if h not in members or h not in seg["members"]:
            out.missing_remove.append(email)
            continue
        store.remove_tag(list_id, h, seg, now)
        out.removed.append(members[h])
    return out


def add_segment_member(
    store: MailchimpStore, list_id: str, seg: dict[str, Any], body: dict[str, Any], now: float
) -> dict[str, Any]:
    require_keys(body, ["email_address"])
    if seg["type"] != "static":
        raise InvalidActionError("Members can only be added to static segments (tags).")
    h = subscriber_hash(str(body["email_address"]))
    rec = store.members[list_id].get(h)
    if rec is None:
        raise ResourceNotFoundError()
    store.add_tag(list_id, h, seg, now)
    return rec


def remove_segment_member(
    store: MailchimpStore, list_id: str, seg: dict[str, Any], key: str, now: float
) -> None:
    h = store.resolve_member(list_id, key)
    if h not in seg["members"]:
        raise ResourceNotFoundError()
    store.remove_tag(list_id, h, seg, now)


# --------------------------------------------------------------------------- webhooks


def create_webhook(store: MailchimpStore, list_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """A webhook (events default on except `campaign`, sources except `api`); URLs are unique."""
    require_keys(body, ["url"])
    check_webhook_body(body)
    aud = store.audiences[list_id]
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
    return hook


def update_webhook(hook: dict[str, Any], body: dict[str, Any]) -> None:
    check_webhook_body(body)
    if "url" in body:
        hook["url"] = body["url"]
    for group in ("events", "sources"):
        hook[group].update(body.get(group) or {})
