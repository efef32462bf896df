"""Sinks: ``contacts`` -> one Mailchimp audience."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from singer_sdk.helpers.conform import DatetimeErrorTreatmentEnum
from singer_sdk.sinks import BatchSink
from typing_extensions import override

from target_mailchimp.client import BATCH_SUBSCRIBE_MAX, email_hash

ECOMMERCE_WINDOW = 5000
"""E-commerce records per window (without ``batch_size_rows``): a backfill's window is one ``/batches``
job, and each job costs its queueing, polls and download; fewer, larger ones finish sooner."""

if TYPE_CHECKING:
    from singer_sdk.target_base import Target

    from target_mailchimp.ecommerce import EcommerceSync
    from target_mailchimp.sync import ContactSync


class ContactsSink(BatchSink):
    """Collects a window of contacts, then syncs it in bulk (see ``ContactSync``).

    The SDK's own size trigger is disabled (``max_size`` is huge); the target drains *all* sinks when a
    window is full, so the tap's state is emitted right after the window's writes are acknowledged.
    """

    datetime_error_treatment = DatetimeErrorTreatmentEnum.NULL

    def __init__(self, target: Target, *args: Any, **kwargs: Any) -> None:
        """Bind the sink to the target's shared audience sync."""
        super().__init__(target, *args, **kwargs)
        self._sync_factory = getattr(target, "contact_sync")  # noqa: B009
        self._keep = getattr(target, "keep_contacts", None)  # read-ahead (readahead.py)
        self._kept = getattr(target, "contacts_kept", None)
        self._sync: ContactSync | None = None
        self._settled = 0

    @property
    @override
    def max_size(self) -> int:
        return 1_000_000_000

    @property
    def window_size(self) -> int:
        """Records per batch window: ``batch_size_rows``, default ``max_connections`` x 500.

        The default fills every allowed connection with one full batch-subscribe call per window.
        """
        configured = self.config.get("batch_size_rows")
        if configured:
            return int(configured)
        return int(self.config.get("max_connections") or 8) * BATCH_SUBSCRIBE_MAX

    @property
    def window_full(self) -> bool:
        """True when the current window should be written."""
        return self.current_size >= self.window_size

    @override
    def get_validator(self) -> None:
        # Records are checked field by field with reasons (rejects report) instead of failing the run
        # or logging the record (which holds personal data).
        return None

    @override
    def process_record(self, record: dict, context: dict) -> None:
        pending: set[str] = context.setdefault("pending", set())
        if (
            self._sync is not None
            and not (self._kept is not None and self._kept(record))  # a kept window changes it
            and self._sync.settle_if_unchanged(record, pending)
        ):
            self._settled += 1
            return
        context.setdefault("records", []).append(record)
        email = record.get("email")
        if isinstance(email, str):
            pending.add(email_hash(email.strip()))

    @override
    def setup(self) -> None:
        # Check credentials, the list and the merge fields as soon as the stream starts.
        self._sync = self._sync_factory()

    @property
    @override
    def current_size(self) -> int:
        # Records settled on arrival (unchanged) do not occupy the window.
        return max(0, super().current_size - self._settled)

    @override
    def process_batch(self, context: dict) -> None:
        records = context.get("records", [])
        full = self.current_size >= self.window_size
        if self._keep is None or not self._keep(records, context.get("pending", set()), full=full):
            self._sync = self._sync_factory()
            self._sync.process(records)
        context["records"] = []
        context["pending"] = set()

    @override
    def mark_drained(self) -> None:
        super().mark_drained()
        self._settled = 0


class EcommerceSink(BatchSink):
    """``ecommerce_customers|products|orders|carts`` -> the configured Mailchimp store."""

    datetime_error_treatment = DatetimeErrorTreatmentEnum.NULL

    def __init__(self, target: Target, *args: Any, **kwargs: Any) -> None:
        """Bind the sink to the target's shared e-commerce sync."""
        super().__init__(target, *args, **kwargs)
        self._sync_factory = getattr(target, "ecommerce_sync")  # noqa: B009
        self._target_of_sink = target
        self._store: EcommerceSync | None = None
        self._window: list[dict[str, Any]] = []  # the records of the window not drained yet

    @property
    @override
    def max_size(self) -> int:
        return 1_000_000_000

    @property
    def window_full(self) -> bool:
        """True when the current window should be written."""
        return self.current_size >= int(self.config.get("batch_size_rows") or ECOMMERCE_WINDOW)

    @override
    def get_validator(self) -> None:
        return None

    @override
    def setup(self) -> None:
        self._sync_factory()  # fails fast without store_id

    @override
    def process_record(self, record: dict, context: dict) -> None:
        # the store's records are read while the window fills (when they will be compared)
        if self._store is None:
            self._store = self._sync_factory()
            arrived = getattr(self._target_of_sink, "store_record_arrived", None)
            if arrived is not None:
                arrived()  # the contacts before it may be kept (readahead.py)
        self._store.arrived(self.stream_name)
        self._window = context.setdefault("records", [])
        self._window.append(record)

    @property
    def window_records(self) -> list[dict[str, Any]]:
        """The records of the window not drained yet (read, not taken: the drain writes them)."""
        return self._window

    @override
    def process_batch(self, context: dict) -> None:
        sync: EcommerceSync = self._sync_factory()
        self._window = []
        sync.process(self.stream_name, context.get("records", []))
        context["records"] = []


class IgnoredStreamSink(BatchSink):
    """Any other stream: counted in the run summary as ``ignored`` and not written (e-commerce streams are
    not synced by this version)."""

    @override
    def get_validator(self) -> None:
        return None

    @override
    def process_record(self, record: dict, context: dict) -> None:
        report = getattr(self._target_ref, "report", None)
        if report is not None:
            report.count(self.stream_name, "ignored")

    @override
    def process_batch(self, context: dict) -> None:
        return

    def __init__(self, target: Target, *args: Any, **kwargs: Any) -> None:
        """Remember the target to reach its run report."""
        super().__init__(target, *args, **kwargs)
        self._target_ref = target
        self.logger.warning(
            "Stream '%s' is not synced by target-mailchimp; its records are counted as ignored.",
            self.stream_name,
        )
