"""The one place that touches singer-sdk internals (written for singer-sdk ``SDK_VERSION``).

Every connector builds on the SDK's public classes. A few behaviours need more than the public API
offers; each is wrapped here behind a small, documented interface, so an SDK upgrade is checked in one
file (``tests/project/test_sdk_seams.py`` pins the version, exercises every seam and scans all package
code for private SDK names used anywhere else):

Taps and targets (both classes below)
    * ``renamed_settings`` (:class:`oromc_common.settings.Renamed`): former setting names, moved to the
      current ones before the SDK validates the configuration (the SDK's ``_validate_config``);
      :meth:`SeamTarget.upgrade_config` / :meth:`SeamTap.upgrade_config` to do more.

Targets (:class:`SeamTarget`, a :class:`singer_sdk.Target`)
    * :meth:`SeamTarget.on_record_processed` / :meth:`SeamTarget.on_state_received`: hooks after each
      RECORD / STATE line (the SDK's ``_process_*_message``);
    * :meth:`SeamTarget.write_state`: emits a STATE line (the SDK's ``_write_state_message``), the place
      to make durable what the state covers, or to skip a repeated state;
    * :meth:`SeamTarget.drain_sinks`: drains a group of sinks (the SDK's ``_drain_all``, called by the
      final ``drain_all``), the place to choose the drain order;
    * :attr:`SeamTarget.latest_state`, :meth:`SeamTarget.active_sinks`: what the SDK keeps privately.

Taps (:class:`SeamTap`, a :class:`singer_sdk.Tap`)
    * :meth:`SeamTap.before_sync_all` / :meth:`SeamTap.after_sync_all`: around the final
      ``Tap.sync_all`` (the end-of-run summary is logged even when a stream fails);
    * :meth:`SeamTap.set_stream_order`, :meth:`SeamTap.streams_in_order`: the order ``sync_all`` runs the
      streams in (the SDK sorts them by name).

Streams (functions, so any :class:`singer_sdk.Stream` subclass can use them)
    :func:`tap_of`, :func:`emit_stream_state`, :func:`write_schema`, :func:`write_record`,
    :func:`reset_state_manager`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from singer_sdk import Stream, Tap, Target
from singer_sdk.sinks import Sink
from typing_extensions import override

from oromc_common.settings import Renamed, apply_renamed_settings

#: The singer-sdk release these seams were written and tested against.
SDK_VERSION = "0.54.9"

__all__ = [
    "SDK_VERSION",
    "SeamTap",
    "SeamTarget",
    "emit_stream_state",
    "reset_state_manager",
    "tap_of",
    "write_record",
    "write_schema",
]


# -- configuration (taps and targets) ----------------------------------------------------------


class _ConfigSeam:
    """Former setting names moved to the current ones before the SDK validates the configuration."""

    #: Former names of this plugin's settings (one release of grace, with a warning).
    renamed_settings: ClassVar[tuple[Renamed, ...]] = ()
    logger: Any
    _config: dict[str, Any]

    def upgrade_config(self, config: dict[str, Any]) -> None:
        """Rewrite the raw configuration in place before validation (default: the renamed settings)."""
        apply_renamed_settings(config, self.renamed_settings, self.logger)

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        if not getattr(self, "_oromc_config_upgraded", False):
            self._oromc_config_upgraded = True
            self._config = dict(self._config)  # the caller's dict stays as it was
            self.upgrade_config(self._config)
        result: list[str] = super()._validate_config(raise_errors=raise_errors)  # type: ignore[misc]
        return result


# -- targets ----------------------------------------------------------------------------------


class SeamTarget(_ConfigSeam, Target):
    """A :class:`singer_sdk.Target` with public hooks over the SDK's private message handling."""

    @property
    def latest_state(self) -> dict[str, Any] | None:
        """The last STATE value read from the input (not yet necessarily emitted)."""
        return self._latest_state

    def active_sinks(self) -> list[Sink]:
        """The sinks of the streams seen so far."""
        return list(self._sinks_active.values())

    def on_record_processed(self) -> None:
        """Called after each RECORD line has been handed to its sink (default: nothing)."""

    def on_state_received(self, previous: dict[str, Any] | None) -> None:
        """Called after each STATE line; ``previous`` is :attr:`latest_state` before it (default: nothing)."""

    def write_state(self, state: dict[str, Any]) -> None:
        """Emit ``state`` on stdout (every STATE the target emits goes through here).

        Override to make the records the state covers durable first, or to skip a repeated state;
        call ``super().write_state(state)`` to emit it.
        """
        Target._write_state_message(self, state)

    def drain_sinks(self, sinks: list[Sink], parallelism: int) -> None:
        """Drain ``sinks`` (``parallelism`` threads; 1 = in order). Override to choose the order."""
        Target._drain_all(self, sinks, parallelism)

    def on_schema_received(self, message_dict: dict[str, Any]) -> None:
        """Called after each SCHEMA line has been handled by the SDK (default: nothing)."""

    def admit_record(self, message_dict: dict[str, Any]) -> bool:
        """Called with each RECORD line before the SDK hands it to its sink: False drops the record
        (the target has answered it, e.g. rejected it); the record may be changed in place."""
        return True

    # The SDK's private methods, routed to the hooks above.
    @override
    def _process_schema_message(self, message_dict: dict) -> None:
        super()._process_schema_message(message_dict)
        self.on_schema_received(message_dict)

    @override
    def _process_record_message(self, message_dict: dict) -> None:
        if not self.admit_record(message_dict):
            return
        super()._process_record_message(message_dict)
        self.on_record_processed()

    @override
    def _process_state_message(self, message_dict: dict) -> None:
        previous = self._latest_state
        super()._process_state_message(message_dict)
        self.on_state_received(previous)

    @override
    def _write_state_message(self, state: dict) -> None:
        self.write_state(state)

    @override
    def _drain_all(self, sink_list: Iterable[Sink], parallelism: int) -> None:
        self.drain_sinks(list(sink_list), parallelism)


# -- taps -------------------------------------------------------------------------------------


class SeamTap(_ConfigSeam, Tap):
    """A :class:`singer_sdk.Tap` with hooks around the run and a chosen stream order."""

    def before_sync_all(self) -> None:
        """Called before the first stream syncs (default: nothing)."""

    def after_sync_all(self) -> None:
        """Called after the run, also when it fails (default: nothing)."""

    def set_stream_order(self, streams: Mapping[str, Stream]) -> None:
        """Make ``streams`` (same streams, new order) what :attr:`streams` returns and syncs in."""
        self._streams = dict(streams)

    def streams_in_order(self, classes: Sequence[type[Stream]]) -> dict[str, Stream]:
        """The SDK's streams in the order of their ``classes`` (any other stream after them, by
        name); also the order ``sync_all`` runs them in. For a tap's ``streams`` property."""
        found: dict[str, Stream] = Tap.streams.fget(self)  # type: ignore[attr-defined]
        rank = {str(getattr(cls, "name", "")): i for i, cls in enumerate(classes)}
        ordered = dict(sorted(found.items(), key=lambda item: rank.get(item[0], len(rank))))
        if list(ordered) != list(found):
            self.set_stream_order(ordered)
        return ordered

    @override  # type: ignore[misc]  # Tap.sync_all is final: wrapped unchanged, in this one place
    def sync_all(self) -> None:
        try:
            self.before_sync_all()
            super().sync_all()
        finally:
            self.after_sync_all()


# -- streams ----------------------------------------------------------------------------------


def tap_of(stream: Stream) -> Tap:
    """The tap a stream belongs to."""
    return stream._tap


def emit_stream_state(stream: Stream) -> None:
    """Emit a STATE message now, even when no record was written since the last one."""
    stream.state_manager.is_flushed = False
    stream._write_state_message()


def write_schema(stream: Stream) -> None:
    """Write the stream's SCHEMA message (for a stream that writes its records itself)."""
    stream._write_schema_message()


def write_record(stream: Stream, record: dict[str, Any]) -> None:
    """Write one RECORD message of ``stream`` (after :func:`write_schema`), outside its own sync."""
    stream._write_record_message(record)


def reset_state_manager(stream: Stream) -> None:
    """Rebuild the stream's state manager on next use (e.g. after ``is_sorted`` changed)."""
    stream._state_manager = None
