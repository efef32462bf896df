"""Marketing consent of customer users, from the source the shop uses (``consent_source``).

Stock Oro has no consent in its API; shops add one of two customizations (sandbox Oro README,
"Consent"), read here while the ``contacts`` stream scans every customer user (no extra listing):

``customer_user_field``
    A boolean custom field (``consent_field``) on CustomerUser: ``true``/``false``/``null``. The field
    keeps no time; a change moves the user's ``updatedAt`` (``CustomerUser::preUpdate``), so
    ``consent_changed_at`` is that ``updatedAt``: the change happened at or before it (an upper bound).
``consent_acceptances``
    OroConsentBundle acceptances exposed by an ``api.yml`` (``consent_acceptance_resource``): the users
    are read with ``include=acceptedConsents``. An acceptance of the consent named ``consent_name``
    means ``true`` with ``consent_changed_at`` = its ``createdAt`` (exact). Oro deletes the acceptance
    when the person declines and keeps no trace, so a withdrawal is found by comparing with the users
    that held one at the end of the previous run (kept in state as an id set): ``false``, with
    ``consent_changed_at`` = the server time of the page on which it was found missing (an upper
    bound). Withdrawn users stay ``false`` (and keep that time) until they accept again.

``marketing_consent`` is ``None`` (and ``consent_changed_at`` too) when nothing is recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from oromc_common.idsets import BitMap, decode, encode
from singer_sdk.exceptions import ConfigValidationError

if TYPE_CHECKING:
    from tap_orocommerce.client import OroStream

SOURCE_NONE = "none"
SOURCE_FIELD = "customer_user_field"
SOURCE_ACCEPTANCES = "consent_acceptances"
CONSENT_SOURCES = (SOURCE_NONE, SOURCE_FIELD, SOURCE_ACCEPTANCES)
STATE_KEY = "consent"
MAX_WITHDRAWAL_STAMPS = 64

Consent = tuple[bool | None, str | None]  # (marketing_consent, consent_changed_at)


def _fail(setting: str, message: str) -> ConfigValidationError:
    msg = f"Setting '{setting}': {message}"
    return ConfigValidationError(msg, errors=[msg])


class ConsentReader:
    """No consent source: every contact has ``marketing_consent: null``."""

    def user_fields(self) -> list[str]:
        """Customer-user fields to request for the consent."""
        return []

    def params(self) -> dict[str, Any]:
        """Extra query parameters of the customer-user pages."""
        return {}

    def check(self, stream: OroStream, sample: Mapping[str, Any] | None) -> None:
        """Verify the source exists in this Oro instance (one or two requests); fail naming the setting."""

    def start(self, state: Mapping[str, Any]) -> None:
        """Begin a run from the stream's previous state."""

    def read_page(self, doc: Mapping[str, Any], server_time: str | None) -> None:
        """Index what a page of customer users brought along (``included``)."""

    def value(self, uid: int, resource: Mapping[str, Any]) -> Consent:
        """The consent of one customer user (called for every user of the scan)."""
        return None, None

    def finish(self, state: dict[str, Any], live: BitMap) -> None:
        """End of a complete scan: persist what the next run compares with."""


class FieldConsent(ConsentReader):
    """A boolean custom field on CustomerUser."""

    def __init__(self, field: str) -> None:
        self.field = field

    def user_fields(self) -> list[str]:
        return [self.field]

    def check(self, stream: OroStream, sample: Mapping[str, Any] | None) -> None:
        if sample is None:
            return  # no customer user yet: nothing to check against
        if self.field not in (sample.get("attributes") or {}):
            raise _fail(
                "consent_field",
                f"Oro customer users have no attribute '{self.field}'. Add the boolean field to "
                "Customer User in Entity Management (then apply the schema change), or fix the name.",
            )

    def value(self, uid: int, resource: Mapping[str, Any]) -> Consent:
        attrs = resource.get("attributes") or {}
        consent = attrs.get(self.field)
        if not isinstance(consent, bool):
            return None, None
        updated = attrs.get("updatedAt")
        return consent, updated if isinstance(updated, str) else None


class AcceptanceConsent(ConsentReader):
    """OroConsentBundle acceptances of one consent, read through ``acceptedConsents``."""

    def __init__(self, resource: str, name: str) -> None:
        self.resource = resource
        self.name = name
        self.consent_id: str | None = None
        self._page: dict[str, tuple[str | None, str | None]] = {}
        self._page_time: str | None = None
        self._before = BitMap()
        self._withdrawn: dict[str, BitMap] = {}
        self._accepted = BitMap()
        self._new_withdrawals: BitMap = BitMap()
        self._new_stamp: str | None = None

    def user_fields(self) -> list[str]:
        return ["acceptedConsents"]

    def params(self) -> dict[str, Any]:
        return {"include": "acceptedConsents", f"fields[{self.resource}]": "consent,createdAt"}

    def check(self, stream: OroStream, sample: Mapping[str, Any] | None) -> None:
        probe = stream.fetch(
            self.resource,
            {"page[size]": 1, f"fields[{self.resource}]": "consent"},
            accept=(400, 403, 404, 405),
        )
        if probe.status_code != 200:
            raise _fail(
                "consent_acceptance_resource",
                f"Oro does not serve '{self.resource}' (HTTP {probe.status_code}); expose "
                "OroConsentBundle's ConsentAcceptance in an api.yml (see the tap's README), or use "
                "another consent_source.",
            )
        rows = probe._oro_doc["data"]  # type: ignore[attr-defined]
        link = ((rows[0].get("relationships") or {}).get("consent") or {}).get("data") if rows else None
        consent_type = link["type"] if isinstance(link, dict) else "consents"
        doc = stream.fetch(consent_type, {"include": "names", "page[size]": -1})._oro_doc  # type: ignore[attr-defined]
        names = {
            item["id"]: (item.get("attributes") or {}).get("string")
            for item in doc.get("included") or []
            if not ((item.get("relationships") or {}).get("localization") or {}).get("data")
        }
        found: dict[str, str] = {}
        for consent in doc["data"]:
            for ref in ((consent.get("relationships") or {}).get("names") or {}).get("data") or []:
                label = names.get(ref["id"])
                if isinstance(label, str):
                    found[label] = str(consent["id"])
        wanted = self.name.strip().casefold()
        match = [cid for label, cid in found.items() if label.strip().casefold() == wanted]
        if not match:
            listed = ", ".join(f"'{n}'" for n in sorted(found)) or "none"
            raise _fail("consent_name", f"no consent named '{self.name}' in Oro (found: {listed}).")
        self.consent_id = match[0]
        if sample is not None and "acceptedConsents" not in (sample.get("relationships") or {}):
            raise _fail(
                "consent_acceptance_resource",
                "customer users have no 'acceptedConsents' relationship; the api.yml must not "
                "exclude it.",
            )

    def start(self, state: Mapping[str, Any]) -> None:
        saved = state.get(STATE_KEY) or {}
        same = saved.get("consent_id") == self.consent_id
        self._before = decode(saved.get("accepted"), f"{STATE_KEY}.accepted") if same else BitMap()
        self._withdrawn = (
            {stamp: decode(ids, f"{STATE_KEY}.withdrawn") for stamp, ids in (saved.get("withdrawn") or {}).items()}
            if same
            else {}
        )
        self._accepted = BitMap()
        self._new_withdrawals = BitMap()
        self._new_stamp = None

    def read_page(self, doc: Mapping[str, Any], server_time: str | None) -> None:
        self._page_time = server_time
        self._page = {}
        for item in doc.get("included") or []:
            if item.get("type") != self.resource:
                continue
            link = ((item.get("relationships") or {}).get("consent") or {}).get("data")
            created = (item.get("attributes") or {}).get("createdAt")
            self._page[str(item.get("id"))] = (
                str(link["id"]) if isinstance(link, dict) else None,
                created if isinstance(created, str) else None,
            )

    def value(self, uid: int, resource: Mapping[str, Any]) -> Consent:
        refs = ((resource.get("relationships") or {}).get("acceptedConsents") or {}).get("data") or []
        for ref in refs:
            consent, created = self._page.get(str(ref.get("id")), (None, None))
            if consent == self.consent_id:
                self._accepted.add(uid)
                return True, created
        for when, ids in self._withdrawn.items():
            if uid in ids:
                return False, when
        if uid in self._before:  # held an acceptance at the end of the last run: withdrawn since
            stamp = self._page_time or self._new_stamp
            self._new_stamp = max(filter(None, (self._new_stamp, stamp)), default=None)
            self._new_withdrawals.add(uid)
            return False, stamp
        return None, None

    def finish(self, state: dict[str, Any], live: BitMap) -> None:
        withdrawn = {stamp: ids - self._accepted for stamp, ids in self._withdrawn.items()}
        if self._new_withdrawals and self._new_stamp:
            withdrawn[self._new_stamp] = withdrawn.get(self._new_stamp, BitMap()) | self._new_withdrawals
        kept = {stamp: ids & live for stamp, ids in withdrawn.items()}
        kept = {stamp: ids for stamp, ids in sorted(kept.items()) if ids}
        while len(kept) > MAX_WITHDRAWAL_STAMPS:  # fold the two oldest into the later one
            (old, first), (newer, second) = list(kept.items())[:2]
            del kept[old]
            kept[newer] = first | second
        state[STATE_KEY] = {
            "consent_id": self.consent_id,
            "accepted": encode(self._accepted),
            "withdrawn": {stamp: encode(ids) for stamp, ids in kept.items()},
        }


def consent_reader(config: Mapping[str, Any]) -> ConsentReader:
    """The reader for the configured ``consent_source``."""
    source = str(config.get("consent_source") or SOURCE_NONE)
    if source == SOURCE_FIELD:
        return FieldConsent(str(config.get("consent_field") or "marketing_consent"))
    if source == SOURCE_ACCEPTANCES:
        return AcceptanceConsent(
            str(config.get("consent_acceptance_resource") or "consentacceptances"),
            str(config.get("consent_name") or "Email subscription"),
        )
    return ConsentReader()
