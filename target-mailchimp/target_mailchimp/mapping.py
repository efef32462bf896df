"""Pure mapping logic: contact records -> Mailchimp merge values, tags and consent decisions.

Nothing here does I/O, so every rule is unit-testable.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from oromc_common.dates import parse_date, parse_utc
from oromc_common.records import CONTROL_CHARS

#: What Mailchimp accepts as an address (see :func:`is_valid_email` for the sources): an ASCII
#: dot-atom local part of at most 64 characters (no leading, trailing or double dot; UTF-8 local parts
#: are refused) at a domain whose labels may be internationalized (``test@ñoñó1234.com`` is accepted).
EMAIL_LOCAL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = r"[^\W_](?:(?:[^\W_]|-)*[^\W_])?"
EMAIL_DOMAIN_RE = re.compile(rf"^(?:{_LABEL}\.)+(?:[^\W\d_]{{2,}}|xn--[A-Za-z0-9-]+)$")
MAX_EMAIL_LOCAL = 64
MAX_EMAIL_LENGTH = 254
MAX_TAG_LENGTH = 100
MAX_MERGE_TEXT = 255
MERGE_FIELD_TYPES = (
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
ADDRESS_REQUIRED = ("addr1", "city", "state", "zip")
ADDRESS_KEYS = ("addr1", "addr2", "city", "state", "zip", "country")

DEFAULT_MERGE_FIELDS = {"FNAME": "first_name", "LNAME": "last_name", "PHONE": "phone"}
#: Source tag prefixes owned by other connectors: target-orocommerce mirrors Mailchimp tags into Oro as
#: ``mc:<tag>``; turning those back into Mailchimp tags would echo them (``oro:tag:mc:VIP``).
DEFAULT_EXCLUDE_TAG_PREFIXES = ("mc:",)
DEFAULT_TAG_FIELDS = {
    "customer_group": "group",
    "customer_group_name": "group",  # tap-orocommerce's name for the same field
    "customer_name": "account",
    "tags": "tag",
}


class MergeValueError(ValueError):
    """A record value that cannot be written to a merge field (the message never contains the value)."""

    def __init__(self, tag: str, source_field: str, message: str) -> None:
        """Remember the merge tag and the contact field that failed."""
        super().__init__(f"{source_field} -> {tag}: {message}")
        self.tag = tag
        self.source_field = source_field


@dataclass(frozen=True)
class MergeFieldSpec:
    """One audience merge field as Mailchimp describes it."""

    tag: str
    type: str = "text"
    options: Mapping[str, Any] = field(default_factory=dict)
    merge_id: int | None = None
    name: str = ""
    public: bool = False  # shown on Mailchimp's signup and profile forms

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> MergeFieldSpec:
        """Build from a ``GET /lists/{id}/merge-fields`` item."""
        merge_id = item.get("merge_id")
        if isinstance(merge_id, bool) or not isinstance(merge_id, int):
            merge_id = None
        return cls(
            tag=str(item["tag"]),
            type=str(item.get("type") or "text"),
            options=dict(item.get("options") or {}),
            merge_id=merge_id,
            name=str(item.get("name") or ""),
            public=item.get("public") is True,
        )


def is_valid_email(email: str) -> bool:
    """Cheap syntactic check so addresses Mailchimp refuses never cost an API call.

    Mailchimp does not publish its rule; this follows what it documents and was seen to do:
    UTF-8 characters are refused in the local part and accepted in the domain ("International
    characters in Mailchimp", https://mailchimp.com/help/international-characters-in-mailchimp/);
    the local part is a dot-atom of at most 64 characters (RFC 5322 §3.2.3, RFC 5321 §4.5.3.1.1:
    ``name.@…`` and a 65-character local part are refused, issue 14); at most 254 characters in all
    (RFC 5321 §4.5.3.1.3 with the angle brackets); no control or space characters anywhere.
    """
    if len(email) > MAX_EMAIL_LENGTH or email.count("@") != 1:
        return False
    local, _, domain = email.partition("@")
    return (
        len(local) <= MAX_EMAIL_LOCAL
        and bool(EMAIL_LOCAL_RE.match(local))
        and bool(EMAIL_DOMAIN_RE.match(domain))
    )


def _format_date(day: date, fmt: str) -> str:
    fmt = (fmt or "").upper()
    if not fmt or fmt == "YYYY-MM-DD":
        return day.isoformat()
    return (
        fmt.replace("YYYY", f"{day.year:04d}")
        .replace("MM", f"{day.month:02d}")
        .replace("DD", f"{day.day:02d}")
    )


class _UnfitError(Exception):
    """A value that cannot fit a merge field (the message says why); see :func:`coerce_merge_value`."""


def _coerce_number(spec: MergeFieldSpec, value: Any) -> Any:
    if isinstance(value, bool):
        raise _UnfitError("expected a number, got a boolean")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise _UnfitError("expected a number") from exc
    if not number.is_finite():
        raise _UnfitError("expected a finite number")
    return int(number) if number == number.to_integral_value() else float(number)


def _coerce_address(spec: MergeFieldSpec, value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise _UnfitError("an address needs an object with addr1, city, state and zip")
    address = {k: str(value.get(k) or "").strip() for k in ADDRESS_KEYS}
    missing = [k for k in ADDRESS_REQUIRED if not address[k]]
    if missing:
        raise _UnfitError(f"incomplete address, missing {', '.join(missing)}")
    return {k: v for k, v in address.items() if v or k in ADDRESS_REQUIRED}


def _coerce_phone(spec: MergeFieldSpec, value: Any) -> Any:
    text = str(value).strip()
    if re.search(r"[^\x00-\x7f]", text):  # RFC 3966: phone digits are ASCII 0-9
        raise _UnfitError("not a phone number (only ASCII digits)")
    digits = re.sub(r"[^0-9]", "", text)
    if len(digits) < 6 or len(digits) > 20 or re.search(r"[A-Za-z]", text.replace("ext", "")):
        raise _UnfitError("not a phone number")
    if str(spec.options.get("phone_format", "")).upper() == "US":
        if len(digits) == 11 and digits.startswith("1"):
            digits = digits[1:]
        if len(digits) != 10:
            raise _UnfitError("US phone numbers need 10 digits")
        return f"{digits[0:3]}-{digits[3:6]}-{digits[6:]}"
    return text


def _coerce_date(spec: MergeFieldSpec, value: Any) -> Any:
    try:
        day = parse_date(value)
    except ValueError as exc:
        raise _UnfitError(f"not a {spec.type}") from exc
    default_format = "MM/DD" if spec.type == "birthday" else ""
    return _format_date(day, str(spec.options.get("date_format") or default_format))


def _coerce_url(spec: MergeFieldSpec, value: Any) -> Any:
    text = str(value).strip()
    if not re.match(r"^https?://\S+$", text):
        raise _UnfitError("not an http(s) URL")
    return text


def _coerce_text(spec: MergeFieldSpec, value: Any) -> Any:
    if isinstance(value, str) and CONTROL_CHARS.search(value):
        raise _UnfitError("contains control characters (e.g. NUL)")
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    else:
        text = str(value).strip()
    if spec.type in {"dropdown", "radio"}:
        choices = [str(c) for c in spec.options.get("choices") or []]
        if choices and text not in choices:
            raise _UnfitError("value is not one of the field's choices")
    if len(text) > MAX_MERGE_TEXT:  # options.size is only the signup-form width, not a limit
        raise _UnfitError(f"longer than {MAX_MERGE_TEXT} characters")
    return text


#: Merge field types whose value may be structured (an address is an object).
_STRUCTURED_COERCERS: dict[str, Callable[[MergeFieldSpec, Any], Any]] = {
    "number": _coerce_number,
    "address": _coerce_address,
}
#: Merge field types that take a scalar; any other type is text.
_SCALAR_COERCERS: dict[str, Callable[[MergeFieldSpec, Any], Any]] = {
    "phone": _coerce_phone,
    "date": _coerce_date,
    "birthday": _coerce_date,
    "url": _coerce_url,
    "imageurl": _coerce_url,
}


def coerce_merge_value(spec: MergeFieldSpec, source_field: str, value: Any) -> Any:
    """Convert ``value`` to what Mailchimp accepts for ``spec``.

    Returns ``None`` when nothing should be sent (value absent/null) and ``""`` to clear the field.
    Raises :class:`MergeValueError` when the value cannot fit the field's type.
    """
    if value is None:
        return None
    if isinstance(value, str) and not value.strip():
        return ""
    try:
        if spec.type in _STRUCTURED_COERCERS:
            return _STRUCTURED_COERCERS[spec.type](spec, value)
        if isinstance(value, Mapping | list):
            raise _UnfitError(f"expected a scalar for a {spec.type} field")
        return _SCALAR_COERCERS.get(spec.type, _coerce_text)(spec, value)
    except _UnfitError as exc:
        raise MergeValueError(spec.tag, source_field, str(exc)) from exc.__cause__


def comparable_text(value: Any) -> str:
    """A text value as compared with what Mailchimp holds: Unicode NFC, whitespace runs collapsed,
    trimmed (so a value that only differs in Unicode composition or spacing is not a change)."""
    return " ".join(unicodedata.normalize("NFC", str(value)).split())


def _phone_digits(value: Any) -> str:
    return re.sub(r"\D", "", str(value))


def _parse_merge_date(value: Any, fmt: str) -> date | None:
    """A date merge value: Mailchimp reads and returns ``YYYY-MM-DD`` whatever the field's
    ``date_format``, and also accepts that format; None when it is neither."""
    text = str(value).strip()
    for pattern in ("%Y-%m-%d", fmt.upper().replace("YYYY", "%Y").replace("MM", "%m").replace("DD", "%d")):
        try:
            return datetime.strptime(text, pattern).date()  # noqa: DTZ007 - a calendar date, no zone
        except ValueError:
            continue
    return None


def merge_values_equal(spec: MergeFieldSpec, desired: Any, current: Any) -> bool:
    """True when Mailchimp already holds ``desired`` (so no write is needed).

    Values are compared as Mailchimp means them, not byte for byte: numbers by value, addresses part
    by part, phones by their digits (``+1 555-010-0077`` = ``+1 (555) 0100077``), text after Unicode
    NFC normalisation and whitespace collapsing (see :func:`comparable_text`), dates as calendar days
    (``2026-12-05`` = ``12/05/2026`` in an ``MM/DD/YYYY`` field).
    """
    if current is None:
        current = ""
    if spec.type == "number" and desired != "" and current != "":
        try:
            return float(desired) == float(current)
        except (TypeError, ValueError):
            return False
    if isinstance(desired, Mapping):
        if not isinstance(current, Mapping):
            return False
        return all(
            comparable_text(desired.get(k) or "") == comparable_text(current.get(k) or "")
            for k in ADDRESS_KEYS
        )
    if isinstance(current, Mapping):
        return desired == "" and not any(current.values())
    if spec.type == "phone" and _phone_digits(desired) and _phone_digits(current):
        return _phone_digits(desired) == _phone_digits(current)
    if spec.type == "date" and desired != "" and current != "":
        fmt = str(spec.options.get("date_format") or "MM/DD/YYYY")
        return _parse_merge_date(desired, fmt) == _parse_merge_date(current, fmt)
    return comparable_text(desired) == comparable_text(current)


def tag_key(name: str) -> str:
    """How tag names are matched: case-insensitively (as Mailchimp does), after Unicode NFC
    normalisation and whitespace collapsing."""
    return comparable_text(name).lower()


def excluded_tag_value(value: str, exclude_prefixes: Sequence[str]) -> bool:
    """True when a source tag value carries another owner's prefix (case-insensitive), e.g. ``mc:VIP``
    that target-orocommerce mirrored from Mailchimp into the source."""
    low = tag_key(value)
    return any(p and low.startswith(tag_key(p)) for p in exclude_prefixes)


def desired_tags(
    record: Mapping[str, Any],
    prefix: str,
    tag_fields: Mapping[str, str],
    tag_rules: Sequence[Mapping[str, Any]],
    exclude_prefixes: Sequence[str] = (),
) -> dict[str, str]:
    """The owned tags a contact should carry: ``{tag_key(name): name}``.

    ``tag_fields`` maps a contact field to a label: ``customer_group: group`` turns ``"Wholesale"`` into
    ``<prefix>group:Wholesale``; list values (``tags``) give one tag each, except items starting with
    one of ``exclude_prefixes`` (another connector's tags in the source, e.g. ``mc:``). ``tag_rules``
    items ``{"tag": "guest", "field": "is_guest", "equals": true}`` add ``<prefix>guest`` when the field
    equals the value.
    """
    names: list[str] = []
    for source, label in tag_fields.items():
        value = record.get(source)
        is_list = isinstance(value, list)
        items: list[Any] = value if isinstance(value, list) else [value]
        for item in items:
            if item is None or isinstance(item, Mapping):
                continue
            text = str(item).strip()
            if is_list and excluded_tag_value(text, exclude_prefixes):
                continue  # another owner's tag in the source's tag list
            if text:
                names.append(f"{prefix}{label}:{text}" if label else f"{prefix}{text}")
    names += [
        f"{prefix}{rule.get('tag')}"
        for rule in tag_rules
        if record.get(str(rule.get("field"))) == rule.get("equals")
    ]
    result: dict[str, str] = {}
    for name in names:
        clean = " ".join(name.split())[:MAX_TAG_LENGTH].strip()  # Mailchimp trims tag names
        result.setdefault(tag_key(clean), clean)
    return result


def owned(name: str, prefix: str) -> bool:
    """True when the connector owns a tag (its name starts with the prefix, case-insensitively)."""
    return bool(prefix) and name.lower().startswith(prefix.lower())


MARKETING = frozenset({"subscribed", "pending"})
DISABLED_USER_POLICIES = ("archive", "unsubscribe", "keep")


@dataclass(frozen=True)
class ConsentPolicy:
    """The consent settings of the target (see the README, "Consent")."""

    status_if_new: str = "transactional"
    double_opt_in: bool = False
    disabled_user_policy: str = "archive"
    resubscribe_with_pending: bool = False

    @property
    def opt_in(self) -> str:
        """What an opt-in becomes: ``subscribed``, or ``pending`` (Mailchimp asks to confirm)."""
        return "pending" if self.double_opt_in else "subscribed"


@dataclass(frozen=True)
class MemberFacts:
    """What the consent rules need to know about an existing member."""

    status: str
    timestamp_opt: str | None = None
    timestamp_signup: str | None = None
    last_changed: str | None = None
    linked: bool = True  # already carries the contact's source id (False: first linked now)


@dataclass
class ConsentDecision:
    """What to do with a member's subscription status."""

    status: str | None  # status to send, None = leave unchanged
    blocked: bool = False  # the source asked for a subscription Mailchimp must not grant
    archive: bool = False  # archive the member (disabled user, policy "archive")
    counter: str | None = None  # what the summary counts it as


def is_disabled(record: Mapping[str, Any]) -> bool:
    """A login the shop disabled. Guests are created disabled by Oro (they cannot log in), so
    ``enabled: false`` says nothing about them: they follow the consent rules like anyone."""
    return record.get("enabled") is False and record.get("is_guest") is not True


def new_member_status(record: Mapping[str, Any], policy: ConsentPolicy) -> str:
    """Status for a contact that is not in the audience yet: nobody is subscribed without consent.

    Consent false -> ``unsubscribed`` (the opt-out is recorded, so no import can subscribe them);
    a disabled user -> ``transactional``; consent true -> ``subscribed`` (``pending`` with
    ``double_opt_in``); no recorded consent -> ``status_if_new`` (default ``transactional``).
    """
    consent = record.get("marketing_consent")
    if consent is False:
        return "unsubscribed"
    if is_disabled(record):
        return "transactional"
    if consent is True:
        return policy.opt_in
    if policy.status_if_new == "subscribed":
        return policy.opt_in
    return policy.status_if_new


def mailchimp_opt_in_after(member: MemberFacts, changed_at: Any) -> bool:
    """True when the member opted in (or signed up) in Mailchimp after the source's change.

    ``timestamp_opt`` / ``timestamp_signup`` move only when someone opts in (a form, a confirmation,
    or our own opt-in, which sends the source's consent time as ``timestamp_opt``). ``last_changed``
    is no use here: every merge-field or tag write (ours included) moves it, so it would hide an
    opt-out that arrives after a profile update. A source change with no time counts as the latest.
    """
    source = parse_utc(changed_at)
    if source is None:
        return False
    stamps = [parse_utc(member.timestamp_opt), parse_utc(member.timestamp_signup)]
    return any(stamp is not None and stamp > source for stamp in stamps)


def consent_change(record: Mapping[str, Any], member: MemberFacts, policy: ConsentPolicy) -> ConsentDecision:
    """Decide a status change for an existing member (rules in the README, "Consent").

    * consent false: ``subscribed``/``pending``/``transactional`` -> ``unsubscribed``, unless the
      person opted in in Mailchimp after the source's opt-out (:func:`mailchimp_opt_in_after`);
    * a disabled (non-guest) user: a ``subscribed``/``pending`` member is archived, unsubscribed or
      kept per ``disabled_user_policy`` (a pending member cannot be archived: it is unsubscribed);
    * consent true: ``transactional`` -> ``subscribed`` (``pending`` with ``double_opt_in``);
      ``unsubscribed``/``cleaned`` are never re-subscribed (``pending`` for an unsubscribed member
      with ``resubscribe_with_pending`` when the consent is newer than its last change);
      archived members are left archived;
    * a ``transactional`` member that carries no source id yet (e.g. created by an e-commerce
      write) is linked as if new: it gets :func:`new_member_status`.
    """
    consent = record.get("marketing_consent")
    status = member.status
    changed_at = record.get("consent_changed_at")
    if consent is False and status in MARKETING | {"transactional"}:
        if status in MARKETING and mailchimp_opt_in_after(member, changed_at):
            return ConsentDecision(None, counter="opt_out_older_than_mailchimp_opt_in")
        return ConsentDecision("unsubscribed", counter="opted_out")
    if is_disabled(record):
        # Mailchimp cannot archive a pending member: it is unsubscribed instead
        if status == "subscribed" and policy.disabled_user_policy == "archive":
            return ConsentDecision(None, archive=True, counter="disabled_archived")
        if status in MARKETING and policy.disabled_user_policy != "keep":
            return ConsentDecision("unsubscribed", counter="disabled_unsubscribed")
        return ConsentDecision(None)
    if status == "transactional" and not member.linked:
        wanted = new_member_status(record, policy)
        return ConsentDecision(None) if wanted == status else ConsentDecision(wanted, counter="linked_as_new")
    if consent is not True:
        return ConsentDecision(None)
    if status == "transactional":
        return ConsentDecision(policy.opt_in, counter="opted_in")
    if status == "unsubscribed" and policy.resubscribe_with_pending:
        source, last = parse_utc(changed_at), parse_utc(member.last_changed)
        if source is not None and (last is None or source > last):
            return ConsentDecision("pending", counter="asked_to_reconfirm")
    if status in {"unsubscribed", "cleaned"}:
        return ConsentDecision(None, blocked=True)
    return ConsentDecision(None)


def opt_in_times(record: Mapping[str, Any], status: str) -> dict[str, str]:
    """``timestamp_opt`` (``subscribed``) or ``timestamp_signup`` (``pending``) to send with an opt-in
    made on the source's consent: the time the source recorded it, so Mailchimp keeps when the
    person consented and a later opt-out at the source compares correctly."""
    if record.get("marketing_consent") is not True:
        return {}
    when = parse_utc(record.get("consent_changed_at"))
    if when is None or status not in MARKETING:
        return {}
    key = "timestamp_opt" if status == "subscribed" else "timestamp_signup"
    return {key: when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")}
