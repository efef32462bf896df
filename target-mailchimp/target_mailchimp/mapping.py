"""Pure mapping logic: contact records -> Mailchimp merge values, tags and consent decisions.

Nothing here does I/O, so every rule is unit-testable.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

EMAIL_RE = re.compile(
    r"^[^@\s\"(),:;<>\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+$"
)
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

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> MergeFieldSpec:
        """Build from a ``GET /lists/{id}/merge-fields`` item."""
        return cls(
            tag=str(item["tag"]),
            type=str(item.get("type") or "text"),
            options=dict(item.get("options") or {}),
        )


def is_valid_email(email: str) -> bool:
    """Cheap syntactic check so malformed addresses never cost an API call."""
    return bool(EMAIL_RE.match(email)) and len(email) <= 254


def _to_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        return date.fromisoformat(text[:10])


def _format_date(day: date, fmt: str) -> str:
    fmt = (fmt or "").upper()
    if not fmt or fmt == "YYYY-MM-DD":
        return day.isoformat()
    return (
        fmt.replace("YYYY", f"{day.year:04d}")
        .replace("MM", f"{day.month:02d}")
        .replace("DD", f"{day.day:02d}")
    )


def coerce_merge_value(spec: MergeFieldSpec, source_field: str, value: Any) -> Any:
    """Convert ``value`` to what Mailchimp accepts for ``spec``.

    Returns ``None`` when nothing should be sent (value absent/null) and ``""`` to clear the field.
    Raises :class:`MergeValueError` when the value cannot fit the field's type.
    """
    if value is None:
        return None
    if isinstance(value, str) and not value.strip():
        return ""
    kind = spec.type

    def fail(message: str) -> MergeValueError:
        return MergeValueError(spec.tag, source_field, message)

    if kind == "number":
        if isinstance(value, bool):
            raise fail("expected a number, got a boolean")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise fail("expected a number") from exc
        if not number.is_finite():
            raise fail("expected a finite number")
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == "address":
        if not isinstance(value, Mapping):
            raise fail("an address needs an object with addr1, city, state and zip")
        address = {k: str(value.get(k) or "").strip() for k in ADDRESS_KEYS}
        missing = [k for k in ADDRESS_REQUIRED if not address[k]]
        if missing:
            raise fail(f"incomplete address, missing {', '.join(missing)}")
        return {k: v for k, v in address.items() if v or k in ADDRESS_REQUIRED}
    if isinstance(value, Mapping | list):
        raise fail(f"expected a scalar for a {kind} field")
    if kind == "phone":
        text = str(value).strip()
        digits = re.sub(r"\D", "", text)
        if len(digits) < 6 or len(digits) > 20 or re.search(r"[A-Za-z]", text.replace("ext", "")):
            raise fail("not a phone number")
        if str(spec.options.get("phone_format", "")).upper() == "US":
            if len(digits) == 11 and digits.startswith("1"):
                digits = digits[1:]
            if len(digits) != 10:
                raise fail("US phone numbers need 10 digits")
            return f"{digits[0:3]}-{digits[3:6]}-{digits[6:]}"
        return text
    if kind in {"date", "birthday"}:
        try:
            day = _to_date(value)
        except ValueError as exc:
            raise fail(f"not a {kind}") from exc
        if kind == "birthday":
            return _format_date(day, str(spec.options.get("date_format") or "MM/DD"))
        return _format_date(day, str(spec.options.get("date_format") or ""))
    if kind in {"url", "imageurl"}:
        text = str(value).strip()
        if not re.match(r"^https?://\S+$", text):
            raise fail("not an http(s) URL")
        return text
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    else:
        text = str(value).strip()
    if kind in {"dropdown", "radio"}:
        choices = [str(c) for c in spec.options.get("choices") or []]
        if choices and text not in choices:
            raise fail("value is not one of the field's choices")
    if len(text) > MAX_MERGE_TEXT:  # options.size is only the signup-form width, not a limit
        raise fail(f"longer than {MAX_MERGE_TEXT} characters")
    return text


def comparable_text(value: Any) -> str:
    """A text value as compared with what Mailchimp holds: Unicode NFC, whitespace runs collapsed,
    trimmed (so a value that only differs in Unicode composition or spacing is not a change)."""
    return " ".join(unicodedata.normalize("NFC", str(value)).split())


def _phone_digits(value: Any) -> str:
    return re.sub(r"\D", "", str(value))


def merge_values_equal(spec: MergeFieldSpec, desired: Any, current: Any) -> bool:
    """True when Mailchimp already holds ``desired`` (so no write is needed).

    Values are compared as Mailchimp means them, not byte for byte: numbers by value, addresses part
    by part, phones by their digits (``+1 555-010-0077`` = ``+1 (555) 0100077``), text after Unicode
    NFC normalisation and whitespace collapsing (see :func:`comparable_text`).
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


@dataclass
class ConsentDecision:
    """What to do with a member's subscription status."""

    status: str | None  # status to send, None = leave unchanged
    blocked: bool = False  # the source asked for a subscription Mailchimp must not grant


def new_member_status(record: Mapping[str, Any], status_if_new: str) -> str:
    """Status for a contact that is not in the audience yet."""
    if record.get("marketing_consent") is False:
        return "unsubscribed"  # record the opt-out; never add someone who said no as subscribed
    return status_if_new


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def consent_change(
    record: Mapping[str, Any],
    current_status: str,
    last_changed: str | None,
    *,
    resubscribe_with_pending: bool,
) -> ConsentDecision:
    """Decide a status change for an existing member.

    Only an *explicit* consent change counts: ``marketing_consent`` is true/false and
    ``consent_changed_at`` is later than the member's ``last_changed`` in Mailchimp (so a change made
    in Mailchimp afterwards, e.g. an unsubscribe, wins). Unsubscribed/cleaned people are never set to
    ``subscribed``; an explicit opt-in may ask them to re-confirm (``pending``) when
    ``resubscribe_with_pending`` is on.
    """
    consent = record.get("marketing_consent")
    changed_at = _as_datetime(record.get("consent_changed_at"))
    if consent not in (True, False) or changed_at is None:
        return ConsentDecision(None)
    member_changed = _as_datetime(last_changed)
    if member_changed is not None:
        if changed_at.tzinfo is None and member_changed.tzinfo is not None:
            member_changed = member_changed.replace(tzinfo=None)
        elif changed_at.tzinfo is not None and member_changed.tzinfo is None:
            changed_at = changed_at.replace(tzinfo=None)
        if changed_at <= member_changed:
            return ConsentDecision(None)
    if consent is False:
        if current_status in {"subscribed", "pending"}:
            return ConsentDecision("unsubscribed")
        return ConsentDecision(None)
    if current_status in {"subscribed", "pending"}:
        return ConsentDecision(None)
    if current_status in {"transactional", "archived"}:
        return ConsentDecision("subscribed")
    if current_status == "unsubscribed" and resubscribe_with_pending:
        return ConsentDecision("pending")
    return ConsentDecision(None, blocked=True)  # unsubscribed / cleaned: never re-subscribed
