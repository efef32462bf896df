"""Member write rules: email checks, merge-field validation by type, the status machine, upserts.

Shared by the single-member endpoints, batch subscribe (`POST /lists/{id}`) and `/batches`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from .exceptions import (
    BatchMemberExistsError,
    FieldError,
    ForgottenEmailNotSubscribedError,
    InvalidEmailError,
    InvalidResourceError,
    MemberExistsError,
    MemberInComplianceStateError,
    ResourceNotFoundError,
)
from .store import Audience, MailchimpStore
from .values import check_enum, check_type, json_type, parse_ts, subscriber_hash

MEMBER_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
PATCH_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending")
EMAIL_TYPES = ("html", "text")

# The domain may be internationalized (Unicode labels, or their xn-- form); the local part may not
# (https://mailchimp.com/help/international-characters-in-mailchimp/: "test@ñoñó1234.com" is allowed,
# "direcciónelectrónica@domain.com" is blocked).
EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[^\W_](?:(?:[^\W_]|-)*[^\W_])?(?:\.[^\W_](?:(?:[^\W_]|-)*[^\W_])?)*\.(?:[^\W\d_]{2,}|xn--[A-Za-z0-9-]+)$"
)
# Addresses Mailchimp refuses as "fake or invalid" (documented behaviour; the exact list is
# Mailchimp-internal, this one is the sandbox's and is listed in the README).
FAKE_DOMAINS = frozenset({"mailinator.com", "test.com", "fake.com", "fakemail.com", "tempmail.com"})
FAKE_TLDS = (".test", ".invalid", ".localhost", ".example")
FAKE_LOCAL_PARTS = frozenset({"test", "fake", "noreply", "no-reply", "abuse", "postmaster", "asdf"})
# Domains whose addresses trip the signup throttle ("signed up to a lot of lists very recently").
THROTTLED_DOMAIN_PREFIX = "throttled."

MERGE_TYPES = (
    "text",
    "number",
    "address",
    "phone",
    "date",
    "url",
    "imageurl",
    "radio",
    "dropdown",
    "birthday",
    "zip",
)
MERGE_MESSAGES = {
    "required": "Please enter a value",
    "number": "Please enter a number",
    "address": "Please enter a complete address",
    "phone": "Please enter a valid phone number",
    "date": "Please enter a valid date",
    "birthday": "Please enter a valid birthday",
    "url": "Please enter a valid URL",
    "imageurl": "Please enter a valid URL",
    "zip": "Please enter a valid zip code",
    "radio": "Please select one of the choices",
    "dropdown": "Please select one of the choices",
    "text": "Please enter a value",
}
MERGE_INVALID_DETAIL = "Your merge fields were invalid."
US_PHONE_RE = re.compile(r"^\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}$")
INTL_PHONE_RE = re.compile(r"^\+?[\d\s().-]{6,25}$")
ZIP_RE = re.compile(r"^\d{5}(-\d{4})?$")
URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


# --------------------------------------------------------------------------- email


def email_problem(email: str, *, new: bool) -> str | None:
    """The error detail Mailchimp gives for an address, or None when it is acceptable."""
    text = email.strip()
    if not EMAIL_RE.match(text) or ".." in text:
        return "Please provide a valid email address."
    local, _, domain = text.lower().rpartition("@")
    if len(local) > 64 or local.startswith(".") or local.endswith("."):  # RFC 5321/5322, README
        return "Please provide a valid email address."
    if domain in FAKE_DOMAINS or domain.endswith(FAKE_TLDS) or local in FAKE_LOCAL_PARTS:
        return f"{text} looks fake or invalid, please enter a real email address."
    if new and domain.startswith(THROTTLED_DOMAIN_PREFIX):
        return f"{text} has signed up to a lot of lists very recently; we're not allowing more signups for now"
    return None


def check_email(email: Any, *, new: bool) -> str:
    if not isinstance(email, str):
        raise FieldError(
            "email_address", f"Schema describes string, {json_type(email)} found instead"
        )
    problem = email_problem(email, new=new)
    if problem:
        raise InvalidEmailError(problem)
    return email.strip()


# --------------------------------------------------------------------------- merge fields


# One checker per documented merge field type: the normalised value, or None when it is invalid.
ValueCheck = Callable[[Any, dict[str, Any]], Any]
ADDRESS_KEYS = ("addr1", "addr2", "city", "state", "zip", "country")
ADDRESS_REQUIRED = ("addr1", "city", "state", "zip")


def _address(value: Any, opts: dict[str, Any]) -> Any:
    if isinstance(value, str):  # "addr1  addr2  city  state  zip  country" (double spaces)
        parts = [p.strip() for p in value.split("  ")]
        if len(parts) < 4:
            return None
        keys = ADDRESS_KEYS if len(parts) >= 5 else ADDRESS_REQUIRED
        value = dict(zip(keys, parts, strict=False))
    if not isinstance(value, dict):
        return None
    addr = {k: str(value.get(k, "") or "").strip() for k in ADDRESS_KEYS}
    if not all(addr[k] for k in ADDRESS_REQUIRED):
        return None
    if not addr["country"]:
        addr["country"] = "US"
    return addr


def _number(value: Any, opts: dict[str, Any]) -> Any:
    if isinstance(value, (int, float)):
        return value
    try:
        num = float(str(value).strip())
    except ValueError:
        return None
    return int(num) if num.is_integer() and "." not in str(value) else num


def _phone(value: Any, opts: dict[str, Any]) -> Any:
    text = str(value).strip()
    pattern = US_PHONE_RE if opts.get("phone_format") == "US" else INTL_PHONE_RE
    digits = sum(ch.isdigit() for ch in text)
    return text if pattern.match(text) and digits >= 6 else None


def _matching(pattern: re.Pattern[str]) -> ValueCheck:
    def check(value: Any, opts: dict[str, Any]) -> Any:
        text = str(value).strip()
        return text if pattern.match(text) else None

    return check


def _choice(value: Any, opts: dict[str, Any]) -> Any:
    text = str(value).strip()
    return text if text in (opts.get("choices") or []) else None


def _birthday(value: Any, opts: dict[str, Any]) -> Any:
    day_first = (opts.get("date_format") or "MM/DD").upper() == "DD/MM"
    m = re.match(r"^(\d{1,2})/(\d{1,2})$", str(value).strip())
    if not m:
        return None
    a, b = int(m.group(1)), int(m.group(2))
    month, day = (b, a) if day_first else (a, b)
    try:
        date(2000, month, day)
    except ValueError:
        return None
    return f"{day:02d}/{month:02d}" if day_first else f"{month:02d}/{day:02d}"


def _date(value: Any, opts: dict[str, Any]) -> Any:
    text = str(value).strip()
    fmt = (opts.get("date_format") or "MM/DD/YYYY").upper()
    for pattern in ("%Y-%m-%d", fmt.replace("MM", "%m").replace("DD", "%d").replace("YYYY", "%Y")):
        try:  # ISO is always accepted, then the field's own format
            return datetime.strptime(text, pattern).replace(tzinfo=UTC).date().isoformat()
        except ValueError:
            continue
    return None


VALUE_CHECKS: dict[str, ValueCheck] = {
    "address": _address,
    "number": _number,
    "text": lambda value, opts: str(value),
    "phone": _phone,
    "zip": _matching(ZIP_RE),
    "url": _matching(URL_RE),
    "imageurl": _matching(URL_RE),
    "radio": _choice,
    "dropdown": _choice,
    "birthday": _birthday,
    "date": _date,
}


def _check_value(mf: dict[str, Any], value: Any) -> tuple[Any, str | None]:
    """(normalised value, error message) for one merge value."""
    type_ = mf["type"]
    msg = MERGE_MESSAGES[type_]
    if isinstance(value, (bool, list)) or (isinstance(value, dict) and type_ != "address"):
        return None, msg
    check = VALUE_CHECKS.get(type_)
    out = check(value, mf.get("options") or {}) if check else str(value).strip()
    return (None, msg) if out is None else (out, None)


def validate_merge_fields(
    aud: Audience,
    values: Any,
    *,
    current: dict[str, Any] | None,
    skip_required: bool,
) -> dict[str, Any]:
    """Normalise `merge_fields` of a write; raise 400 "Your merge fields were invalid." with errors.

    `current` is the member's existing values (None for a new member). `""` clears a value.
    Unknown tags are ignored (as Mailchimp does).
    """
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise FieldError(
            "merge_fields", f"Schema describes object, {json_type(values)} found instead"
        )
    by_tag = {mf["tag"]: mf for mf in aud.merge_fields.values()}
    out: dict[str, Any] = {}
    errors: list[dict[str, str]] = []
    for raw_tag, value in values.items():
        tag = str(raw_tag).upper()
        mf = by_tag.get(tag)
        if mf is None:
            continue
        if value is None or value == "":
            out[tag] = ""
            continue
        norm, err = _check_value(mf, value)
        if err:
            errors.append({"field": tag, "message": err})
        else:
            out[tag] = norm
    if not skip_required:
        for tag, mf in by_tag.items():
            if not mf.get("required"):
                continue
            if tag in out:  # noqa: SIM108 - two cases, clearer apart
                missing = out[tag] == ""
            else:
                missing = current is None or current.get(tag, "") in ("", None)
            if missing and not any(e["field"] == tag for e in errors):
                errors.append({"field": tag, "message": MERGE_MESSAGES["required"]})
    if errors:
        raise InvalidResourceError(MERGE_INVALID_DETAIL, errors)
    return out


# --------------------------------------------------------------------------- status machine


def check_transition(rec: dict[str, Any], new_status: str) -> None:
    """Refuse `unsubscribed|cleaned -> subscribed` (compliance); everything else is allowed."""
    old = rec["status"]
    if new_status == "subscribed" and old in ("unsubscribed", "cleaned"):
        raise MemberInComplianceStateError(rec["email_address"])


# --------------------------------------------------------------------------- body checks


def _check_member_body(body: dict[str, Any], statuses: tuple[str, ...]) -> None:
    for key, typ in (
        ("email_address", "string"),
        ("email_type", "string"),
        ("status", "string"),
        ("status_if_new", "string"),
        ("merge_fields", "object"),
        ("interests", "object"),
        ("language", "string"),
        ("vip", "boolean"),
        ("location", "object"),
        ("ip_signup", "string"),
        ("timestamp_signup", "string"),
        ("ip_opt", "string"),
        ("timestamp_opt", "string"),
        ("tags", "array"),
        ("marketing_permissions", "array"),
    ):
        check_type(body, key, typ)
    check_enum(body, "status", statuses)
    check_enum(body, "status_if_new", MEMBER_STATUSES)
    check_enum(body, "email_type", EMAIL_TYPES)
    if body.get("interests"):
        bad = next(iter(body["interests"]))
        raise InvalidResourceError(f"Invalid interest ID: '{bad}'.")
    for key in ("timestamp_signup", "timestamp_opt"):
        if body.get(key):
            try:
                parse_ts(body[key])
            except ValueError:
                raise FieldError(key, "This value is not a valid date-time (ISO 8601).") from None
    tags = body.get("tags")
    if tags is not None and not all(isinstance(t, str) and t.strip() for t in tags):
        raise FieldError("tags", "Tag names must be non-empty strings.")


def _plain_changes(body: dict[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for key in ("email_type", "language", "vip", "ip_signup", "ip_opt"):
        if key in body:
            changes[key] = body[key]
    for key, internal in (("timestamp_signup", "ts_signup"), ("timestamp_opt", "ts_opt")):
        if key in body:
            dt = parse_ts(body[key]) if body[key] else None
            changes[internal] = dt.timestamp() if dt else None
    if isinstance(body.get("location"), dict):
        loc = body["location"]
        changes["location"] = {
            "latitude": float(loc.get("latitude", 0) or 0),
            "longitude": float(loc.get("longitude", 0) or 0),
        }
    return changes


def apply_tags(
    store: MailchimpStore, list_id: str, hash_: str, names: list[str], at: float, *, sync: bool
) -> None:
    """Add tags by name (creating them); with `sync`, remove the member's other tags."""
    wanted = []
    for name in names:
        seg = store.ensure_tag(list_id, name, at)
        wanted.append(seg["id"])
        store.add_tag(list_id, hash_, seg, at)
    if sync:
        aud = store.audiences[list_id]
        rec = store.members[list_id][hash_]
        for sid in [s for s in rec["tags"] if s not in wanted]:
            store.remove_tag(list_id, hash_, aud.segments[sid], at)


# --------------------------------------------------------------------------- upserts


def write_member(
    store: MailchimpStore,
    list_id: str,
    body: dict[str, Any],
    *,
    mode: str,
    path_key: str | None = None,
    skip_merge_validation: bool = False,
    update_existing: bool = True,
    sync_tags: bool = False,
) -> tuple[dict[str, Any], bool]:
    """Create or update one member. mode: "post" | "put" | "patch" | "batch".

    Returns (record, created). Raises the `exceptions` class of Mailchimp's error for the situation.
    """
    now = store.now().timestamp()
    aud = store.audiences[list_id]
    members = store.members[list_id]
    _check_member_body(body, PATCH_STATUSES if mode == "patch" else MEMBER_STATUSES)

    if mode in ("post", "batch"):
        required = ["email_address", "status"] if mode == "post" else ["email_address"]
        missing = [k for k in required if k not in body]
        if missing:
            raise FieldError("", "Required fields were not provided: " + ", ".join(missing))
        email = str(body["email_address"]).strip()
        hash_ = subscriber_hash(email)
    else:
        assert path_key is not None
        hash_ = store.resolve_member(list_id, path_key)
        email = str(body.get("email_address") or (path_key if "@" in path_key else "")).strip()

    rec = members.get(hash_)
    if rec is None:
        if mode == "patch":
            raise ResourceNotFoundError()
        return _create(
            store, list_id, body, hash_, email, mode, skip_merge_validation, sync_tags, now
        ), True

    # ---- existing member
    if mode == "post" and rec["status"] != "archived":
        raise MemberExistsError(rec["email_address"])
    if mode == "batch" and not update_existing and rec["status"] != "archived":
        raise BatchMemberExistsError(rec["email_address"])
    new_status = body.get("status")
    if new_status:
        check_transition(rec, new_status)
    merge = validate_merge_fields(
        aud,
        body.get("merge_fields"),
        current=rec["merge_fields"],
        skip_required=skip_merge_validation,
    )
    new_email = body.get("email_address")
    if isinstance(new_email, str) and subscriber_hash(new_email) != hash_:
        check_email(new_email, new=False)
        other = members.get(subscriber_hash(new_email))
        if other is not None:
            raise FieldError(
                "email_address",
                f'{new_email.strip()} is already in this list with a status of "{other["status"]}".',
            )
        rec = store.change_email(list_id, hash_, new_email, now)
        hash_ = rec["id"]
    plain = _plain_changes(body)
    store.update_member_fields(list_id, hash_, {**plain, "merge_fields": merge}, now)
    if new_status and new_status != rec["status"]:
        store.set_member_status(list_id, hash_, new_status, now, None, "API - Generic")
        if "ts_opt" in plain:  # an opt-in time sent with the change is kept (not the call's time)
            rec["ts_opt"] = plain["ts_opt"]
    if body.get("tags") and mode in ("post", "batch"):
        apply_tags(store, list_id, hash_, body["tags"], now, sync=sync_tags)
    elif sync_tags and mode == "batch":
        apply_tags(store, list_id, hash_, [], now, sync=True)
    return rec, False


def _create(
    store: MailchimpStore,
    list_id: str,
    body: dict[str, Any],
    hash_: str,
    email: str,
    mode: str,
    skip_merge_validation: bool,
    sync_tags: bool,
    now: float,
) -> dict[str, Any]:
    aud = store.audiences[list_id]
    if not email:
        raise FieldError("", "Required fields were not provided: email_address")
    email = check_email(email, new=True)
    if subscriber_hash(email) != hash_:
        raise FieldError(
            "email_address", "The email address does not match the subscriber hash in the URL."
        )
    status = body.get("status_if_new") if mode == "put" else None
    status = (
        status or body.get("status") or (body.get("status_if_new") if mode == "batch" else None)
    )
    if not status:
        missing = "status_if_new" if mode == "put" else "status"
        raise FieldError("", f"Required fields were not provided: {missing}")
    if hash_ in aud.forgotten and status != "pending":
        raise ForgottenEmailNotSubscribedError(email)
    merge = validate_merge_fields(
        aud, body.get("merge_fields"), current=None, skip_required=skip_merge_validation
    )
    merge = {k: v for k, v in merge.items() if v != ""}
    changes = _plain_changes(body)
    rec = store.create_member(
        list_id,
        email,
        status,
        now,
        merge_fields=merge,
        email_type=changes.get("email_type", "html"),
        language=changes.get("language", ""),
        vip=bool(changes.get("vip", False)),
        ip_signup=changes.get("ip_signup", ""),
        ts_signup=changes.get("ts_signup"),
        ip_opt=changes.get("ip_opt", ""),
        ts_opt=changes.get("ts_opt"),
        location=changes.get("location"),
    )
    if body.get("tags"):
        apply_tags(store, list_id, hash_, body["tags"], now, sync=sync_tags)
    return rec
