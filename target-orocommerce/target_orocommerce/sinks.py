"""One small sink per tap-mailchimp-engagement stream; the work happens in the shared services."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from oromc_common.keys import record_key
from singer_sdk.helpers.conform import DatetimeErrorTreatmentEnum
from singer_sdk.sinks import BatchSink
from typing_extensions import override

from target_orocommerce.activities import (
    ACTIVITY_KEY,
    ActivityIntent,
    MappingError,
    intents_from_email_activity,
    intents_from_sent_to,
    intents_from_unsubscribes,
)
from target_orocommerce.conversions import ORDER_KEY, ConversionError, parse_conversion
from target_orocommerce.members import (
    MEMBER_KEY,
    MemberError,
    forgotten_key,
    parse_forgotten,
    parse_member,
)

T = TypeVar("T")

if TYPE_CHECKING:
    from singer_sdk import Target

    from target_orocommerce.services import Services


class OroSink(BatchSink):
    """Base sink: batches of ``batch_size_rows`` (default 500) handed to the shared services.

    The SDK's per-record JSON-schema validation is replaced by the sinks' own checks, which reject a
    bad record with a message naming the field (and never log its values), and let the run go on.
    """

    MAX_SIZE_DEFAULT = 500

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: Sequence[str] | None,
    ) -> None:
        self.services: Services = target.services  # type: ignore[attr-defined]
        self._positions: dict[int, int] = {}  # id(record) -> position in the stream, for the batch
        super().__init__(target, stream_name, schema, key_properties)

    @property
    @override
    def datetime_error_treatment(self) -> DatetimeErrorTreatmentEnum:
        return DatetimeErrorTreatmentEnum.NULL

    @override
    def get_validator(self) -> None:
        return None

    @override
    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        self.services.report.count(self.stream_name, "read")
        self._positions[id(record)] = self.services.report.get(self.stream_name, "read")
        super().process_record(record, context)

    @override
    def process_batch(self, context: dict[str, Any]) -> None:
        records = context.get("records") or []
        try:
            if records:
                self.write(records)
        finally:
            self._positions.clear()

    def where(self, record: dict[str, Any]) -> dict[str, Any]:
        """What names ``record`` when its own id fields are missing: key properties, position."""
        return {"key_properties": self.key_properties or (), "position": self._positions.get(id(record))}

    def key_of(self, record: dict[str, Any], fields: Sequence[str]) -> str:
        """The record's name in rejects (:func:`oromc_common.keys.record_key`): never ``None/None``."""
        return record_key(record, fields, **self.where(record))

    def write(self, records: list[dict[str, Any]]) -> None:
        """Write one batch (implemented per stream)."""
        raise NotImplementedError

    def parsed(
        self,
        records: list[dict[str, Any]],
        parse: Callable[[dict[str, Any]], T],
        key: Callable[[dict[str, Any]], str],
    ) -> list[T]:
        """Records parsed by ``parse``; a :class:`MemberError` rejects that record (named by ``key``)."""
        rows = []
        report = self.services.report
        for record in records:
            try:
                row = parse(record)
            except MemberError as exc:
                report.reject(self.stream_name, key(record), "invalid_record", str(exc), exc.field)
                continue
            for name, problem, value in getattr(row, "field_problems", ()):
                report.reject_field(
                    self.stream_name, key(record), "invalid_field", name, value,
                    f"{name}: {problem}; the field was left out",
                )
            rows.append(row)
        return rows


class MembersSink(OroSink):
    """``members`` -> customer user names, phone, owned tags, consent."""

    @override
    def write(self, records: list[dict[str, Any]]) -> None:
        settings = self.services.member_settings
        rows = self.parsed(
            records,
            lambda r: parse_member(r, settings, self.key_of(r, MEMBER_KEY)),
            lambda r: self.key_of(r, MEMBER_KEY),
        )
        self.services.members.process(rows)


class ForgottenMembersSink(OroSink):
    """``forgotten_members`` -> the customer user's opt-out, and a GDPR erasure request to act on."""

    @override
    def write(self, records: list[dict[str, Any]]) -> None:
        rows = self.parsed(
            records,
            lambda r: parse_forgotten(r, forgotten_key(r, **self.where(r))),
            lambda r: forgotten_key(r, **self.where(r)),
        )
        if rows:
            self.services.members.forget(rows)


class CampaignsSink(OroSink):
    """``campaigns`` -> Oro ``campaigns`` upserted by ``code`` = Mailchimp campaign id."""

    @override
    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        send_time = record.get("send_time")
        if isinstance(send_time, datetime) and isinstance(record.get("id"), str):
            self.services.remember_send_time(record["id"], send_time.astimezone(UTC))
        super().process_record(record, context)

    @override
    def write(self, records: list[dict[str, Any]]) -> None:
        self.services.campaign_sync.process(self.stream_name, records)


class ReportsSink(OroSink):
    """``reports``: their ``send_time`` dates ``send`` activities; with ``campaign_results`` their figures
    land on the Oro campaign (:mod:`target_orocommerce.results`)."""

    @override
    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        send_time = record.get("send_time")
        if isinstance(send_time, datetime) and isinstance(record.get("id"), str):
            self.services.remember_send_time(record["id"], send_time.astimezone(UTC))
        if self.services.campaign_results is not None:
            super().process_record(record, context)
            return
        self.services.report.count(self.stream_name, "read")
        self.services.report.count(self.stream_name, "used_for_send_times")

    @override
    def write(self, records: list[dict[str, Any]]) -> None:
        if self.services.campaign_results is not None:
            self.services.campaign_results.process(self.stream_name, records)


class ActivitySink(OroSink):
    """``email_activity``, ``sent_to``, ``unsubscribes`` -> one marketing activity per event."""

    def intents(self, record: dict[str, Any]) -> list[ActivityIntent]:
        """Activities asked for by one record."""
        key = self.key_of(record, ACTIVITY_KEY)
        if self.stream_name == "sent_to":
            return intents_from_sent_to(self.stream_name, record, self.services.send_times(), key)
        if self.stream_name == "unsubscribes":
            return intents_from_unsubscribes(self.stream_name, record, key)
        return intents_from_email_activity(self.stream_name, record, key)

    @override
    def write(self, records: list[dict[str, Any]]) -> None:
        services = self.services
        if self.stream_name == "sent_to":
            services.fill_send_times({r.get("campaign_id") for r in records})
        intents: list[ActivityIntent] = []
        for record in records:
            try:
                intents.extend(self.intents(record))
            except MappingError as exc:
                key = self.key_of(record, ACTIVITY_KEY)
                services.report.reject(self.stream_name, key, "invalid_record", str(exc), exc.field)
        outcome = services.activities.write(intents)
        report = services.report
        report.count(self.stream_name, "created", outcome.created)
        report.count(self.stream_name, "unchanged", outcome.duplicates)
        report.count(self.stream_name, "skipped_not_first_of_action", outcome.skipped_granularity)
        if outcome.enriched:
            report.count(self.stream_name, "updated", outcome.enriched)
            report.count(self.stream_name, "campaign_added_to_member_status_unsubscribe", outcome.enriched)
        if outcome.skipped_type:
            report.count(self.stream_name, "skipped_type_not_configured", outcome.skipped_type)


class ConversionsSink(OroSink):
    """``attributed_orders`` with a ``campaign_id`` -> the Oro order's campaign relationship."""

    @override
    def write(self, records: list[dict[str, Any]]) -> None:
        services = self.services
        conversions = []
        for record in records:
            key = self.key_of(record, ORDER_KEY)
            try:
                conversion = parse_conversion(record, key)
            except ConversionError as exc:
                services.report.reject(self.stream_name, key, "invalid_record", str(exc), exc.field)
                continue
            if conversion is None:
                services.report.count(self.stream_name, "not_attributed")
                continue
            conversions.append(conversion)
        services.conversions.process(self.stream_name, conversions)


class IgnoredSink(OroSink):
    """Streams this target has no Oro destination for: counted, then dropped on purpose."""

    @override
    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        self.services.report.count(self.stream_name, "read")
        self.services.report.count(self.stream_name, "ignored_no_oro_destination")

    @override
    def write(self, records: list[dict[str, Any]]) -> None:  # pragma: no cover - never batched
        return
