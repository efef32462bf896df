"""Where Oro keeps a customer user's marketing consent, read and written (``consent_source``).

The same two customizations tap-orocommerce reads (its README, "Consent"; the sandbox's Oro README):

``customer_user_field``
    A boolean custom field (``consent_field``, default ``marketing_consent``) on CustomerUser:
    ``true``/``false``/``null`` (never recorded). Written with ``PATCH /customerusers`` (Batch API).
    The field keeps no time; a change moves the user's ``updatedAt``, which tap-orocommerce reports as
    ``consent_changed_at`` (so a write here reads, on the next audience sync, as a change made now).
``consent_acceptances``
    OroConsentBundle acceptances of the consent named ``consent_name`` (default ``Email subscription``),
    exposed by an ``api.yml`` as ``consent_acceptance_resource`` (default ``consentacceptances``). An
    acceptance means ``true`` (dated by its ``createdAt``); Oro stores no decline, so "no acceptance" is
    ``false`` without a date (declined, or never asked: Oro cannot tell). Given = ``POST`` an acceptance
    (409 = it exists), withdrawn = ``DELETE`` it (404 = already gone). tap-orocommerce notices the
    deletion on its next scan and reports ``false``.
``none``
    Nothing is read or written (marketing lists and activities still are).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from oromc_common.dates import parse_utc
from oromc_common.oro import OroClientError, build_filters, consents_by_name

from target_orocommerce.bulk import BulkUpdater, RejectFn, Update
from target_orocommerce.client import ALREADY_APPLIED, OroWriter, all_error_details, error_pointer
from target_orocommerce.lookups import CustomerUserView

SOURCE_NONE = "none"
SOURCE_FIELD = "customer_user_field"
SOURCE_ACCEPTANCES = "consent_acceptances"
CONSENT_SOURCES = (SOURCE_NONE, SOURCE_FIELD, SOURCE_ACCEPTANCES)


class ConsentConfigError(ValueError):
    """The configured consent source does not exist in this Oro instance (names the setting)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"Setting '{setting}': {message}")
        self.setting = setting


@dataclass
class ConsentValue:
    """What Oro records for one customer user.

    ``given``: True, False, or None (nothing recorded; only a custom field can say so).
    ``changed_at``: when it was last changed, at the latest (``updatedAt`` of the user for a custom
    field, the acceptance's ``createdAt``), None when Oro keeps no date.
    ``explicit``: False when ``given`` False only means "no acceptance" (declined or never asked).
    """

    given: bool | None
    changed_at: datetime | None
    explicit: bool = True


ConsentWrite = tuple[Any, CustomerUserView, bool]
"""``(context with record_key, customer user, value to record)``."""


class ConsentStore:
    """No consent source: nothing to read or write."""

    source = SOURCE_NONE
    writable = False

    @property
    def extra_fields(self) -> tuple[str, ...]:
        """Customer-user attributes the directory must fetch for :meth:`value`."""
        return ()

    def prepare(self, users: Sequence[CustomerUserView]) -> None:
        """Fetch what :meth:`value` needs for these users (one call per 50 users at most)."""

    def value(self, user: CustomerUserView) -> ConsentValue:
        """The consent Oro records for ``user``."""
        return ConsentValue(None, None)

    def write(self, items: Sequence[ConsentWrite], reject: RejectFn) -> list[ConsentWrite]:
        """Record the values; return the items that landed (the others were rejected)."""
        return []


class FieldConsentStore(ConsentStore):
    """A boolean custom field on CustomerUser."""

    source = SOURCE_FIELD
    writable = True

    def __init__(self, writer: OroWriter, field: str, batch_mode: str = "auto") -> None:
        self.field = field
        self.users = BulkUpdater(writer, "customerusers", batch_mode=batch_mode)

    @property
    def extra_fields(self) -> tuple[str, ...]:
        return (self.field,)

    def prepare(self, users: Sequence[CustomerUserView]) -> None:
        for user in users:
            if self.field not in user.extra:
                raise ConsentConfigError(
                    "consent_field",
                    f"Oro customer users have no attribute '{self.field}'. Add the boolean field to "
                    "Customer User in Entity Management, or fix the name.",
                )

    def value(self, user: CustomerUserView) -> ConsentValue:
        given = user.extra.get(self.field)
        return ConsentValue(given if isinstance(given, bool) else None, user.updated_at)

    def write(self, items: Sequence[ConsentWrite], reject: RejectFn) -> list[ConsentWrite]:
        updates = [Update(item, item[1].id, {self.field: item[2]}) for item in items]
        landed: list[ConsentWrite] = [update.context for update in self.users.update(updates, reject)]
        for _, user, value in landed:
            user.extra[self.field] = value
        return landed


@dataclass
class _Acceptance:
    id: str
    created_at: datetime | None


class AcceptanceConsentStore(ConsentStore):
    """OroConsentBundle acceptances of one consent, through an ``api.yml`` customization."""

    source = SOURCE_ACCEPTANCES
    writable = True

    def __init__(self, writer: OroWriter, resource: str, consent_name: str, chunk_size: int = 50) -> None:
        self.writer = writer
        self.resource = resource
        self.consent_name = consent_name
        self.chunk_size = chunk_size
        self._consent_id: str | None = None
        self._known: dict[str, _Acceptance | None] = {}
        self._lock = threading.Lock()

    def consent_id(self) -> str:
        """Id of the consent named ``consent_name`` (looked up once)."""
        with self._lock:
            if self._consent_id is not None:
                return self._consent_id
        probe = self.writer.call(
            "GET", self.resource, params={"page[size]": "1"}, ok_statuses=(400, 404, 405)
        )
        status = getattr(probe, "status_code", 200)
        if status != 200:
            raise ConsentConfigError(
                "consent_acceptance_resource",
                f"Oro does not serve '{self.resource}' (HTTP {status}); expose OroConsentBundle's "
                "ConsentAcceptance in an api.yml (see the README), or use another consent_source.",
            )
        doc = self.writer.get_json("consents", {"include": "names", "page[size]": "-1"})
        found = consents_by_name(doc)
        wanted = self.consent_name.strip().casefold()
        match = [cid for label, cid in found.items() if label.strip().casefold() == wanted]
        if not match:
            listed = ", ".join(f"'{n}'" for n in sorted(found)) or "none"
            raise ConsentConfigError("consent_name", f"no consent named '{self.consent_name}' in "
                                                     f"Oro (found: {listed}).")
        with self._lock:
            self._consent_id = match[0]
            return self._consent_id

    def prepare(self, users: Sequence[CustomerUserView]) -> None:
        consent = self.consent_id()
        with self._lock:
            missing = list(dict.fromkeys(u.id for u in users if u.id not in self._known))
        chunks = [missing[i : i + self.chunk_size] for i in range(0, len(missing), self.chunk_size)]
        fetch: list[Callable[[], dict[str, _Acceptance]]] = [
            functools.partial(self._acceptances, chunk, consent) for chunk in chunks
        ]
        for chunk, result in zip(chunks, self.writer.run_parallel(fetch), strict=True):
            if isinstance(result, BaseException):
                raise result
            with self._lock:
                for user_id in chunk:
                    self._known[user_id] = result.get(user_id)

    def _acceptances(self, user_ids: Sequence[str], consent: str) -> dict[str, _Acceptance]:
        params = build_filters({"customerUser": list(user_ids), "consent": consent})
        params["page[size]"] = str(max(10, 2 * len(user_ids)))
        found: dict[str, _Acceptance] = {}
        for item in self.writer.iter_resources(self.resource, params):
            user = ((item.get("relationships") or {}).get("customerUser") or {}).get("data") or {}
            found[str(user.get("id"))] = _Acceptance(str(item.get("id")), _parse(item))
        return found

    def value(self, user: CustomerUserView) -> ConsentValue:
        with self._lock:
            acceptance = self._known.get(user.id)
        if acceptance is None:
            return ConsentValue(False, None, explicit=False)
        return ConsentValue(True, acceptance.created_at)

    def write(self, items: Sequence[ConsentWrite], reject: RejectFn) -> list[ConsentWrite]:
        results = self.writer.run_parallel([functools.partial(self._write_one, *item) for item in items])
        landed: list[ConsentWrite] = []
        for item, result in zip(items, results, strict=True):
            if isinstance(result, OroClientError):
                reject(item[0], all_error_details(result), error_pointer(result)[1])
            elif isinstance(result, BaseException):
                raise result
            else:
                landed.append(item)
        return landed

    def _write_one(self, context: Any, user: CustomerUserView, value: bool) -> None:
        with self._lock:
            current = self._known.get(user.id)
        if value:
            body = {
                "data": {
                    "type": self.resource,
                    "relationships": {
                        "customerUser": {"data": {"type": "customerusers", "id": user.id}},
                        "consent": {"data": {"type": "consents", "id": self.consent_id()}},
                    },
                }
            }
            if self.writer.dry_run:  # planned by the caller
                with self._lock:
                    self._known[user.id] = _Acceptance("", None)
                return
            # 409 = the person accepted meanwhile (unique consent + customer user): the goal holds.
            response = self.writer.call("POST", self.resource, body=body, ok_statuses=(409,))
            created = None
            if response is not ALREADY_APPLIED and getattr(response, "status_code", 0) == 201:
                data = response.json().get("data") or {}  # type: ignore[union-attr]
                created = _Acceptance(str(data.get("id")), _parse(data))
            with self._lock:
                self._known[user.id] = created or _Acceptance("", None)
        elif current is not None and current.id:
            # 404 = deleted meanwhile: the goal holds.
            if not self.writer.dry_run:  # planned by the caller
                self.writer.call("DELETE", f"{self.resource}/{current.id}", ok_statuses=(404,))
            with self._lock:
                self._known[user.id] = None


def _parse(resource: Mapping[str, Any]) -> datetime | None:
    return parse_utc((resource.get("attributes") or {}).get("createdAt"))


def consent_store(config: Mapping[str, Any], writer: OroWriter, batch_mode: str = "auto") -> ConsentStore:
    """The store for the configured ``consent_source``."""
    source = str(config.get("consent_source") or SOURCE_NONE)
    if source == SOURCE_FIELD:
        return FieldConsentStore(writer, str(config.get("consent_field") or "marketing_consent"), batch_mode)
    if source == SOURCE_ACCEPTANCES:
        return AcceptanceConsentStore(
            writer,
            str(config.get("consent_acceptance_resource") or "consentacceptances"),
            str(config.get("consent_name") or "Email subscription"),
        )
    return ConsentStore()
