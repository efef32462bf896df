"""Bulk updates through Oro's Batch API (``PATCH /{type}`` + ``X-Mode: sync``, <=100 records).

A sync batch is atomic: one invalid record fails the whole request. Oro's errors then carry
pointers like ``/data/3/attributes/firstName``; the records they name are rejected with Oro's
``detail`` and ``source.pointer`` and the rest is sent again, so one bad record never blocks its
99 neighbours. Resources without a Batch API (405) fall back to one PATCH per record with bounded
concurrency. Updates are idempotent (same values), so plain retries are safe.

When Oro cannot finish a sync request within its ``sync_processing_wait_timeout`` (25 s) it answers
202 with the asynchronous operation instead; the message queue still processes it in synchronous
mode (all records or none). The updater then polls the operation (``Content-Location``) until it
ends and treats its errors (``/asyncoperations/{id}/errors``, same pointers) exactly like a sync
400: nothing is assumed written before Oro says so, and the rest is re-sent only after the first
attempt has ended, so the two can never both apply.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from oromc_common.oro import OroClientError

from target_orocommerce.client import SYNC_BATCH_LIMIT, OroWriter, all_error_details

RejectFn = Callable[[Any, str, str | None], None]
"""``reject(context, detail, pointer)``: called once per record Oro refused."""
DropFn = Callable[[Any, str, str, Any], None]
"""``drop(context, detail, pointer, value)``: called once per optional attribute Oro refused; the
record is written again without it."""


@dataclass
class Update:
    """One record update: ``context`` is passed back to the reject callback."""

    context: Any
    id: str
    attributes: Mapping[str, Any]
    relationships: Mapping[str, Any] | None = None
    #: attributes that may be left out when Oro refuses them (the rest is still written)
    optional: frozenset[str] = frozenset()

    def without_refused(self, errors: Sequence[tuple[str, str]]) -> dict[str, str] | None:
        """``{attribute: detail}`` when every error names an optional attribute of this update
        (``…/attributes/<name>``), else None (the record as a whole is refused)."""
        refused: dict[str, str] = {}
        for detail, pointer in errors:
            parts = _single_pointer(pointer).strip("/").split("/")
            if len(parts) != 3 or parts[:2] != ["data", "attributes"]:
                return None
            name = parts[2]
            if name not in self.optional or name not in self.attributes:
                return None
            refused[name] = f"{refused[name]}; {detail}" if name in refused else detail
        return refused or None

    def resource(self, resource_type: str, *, batch: bool) -> dict[str, Any]:
        """The JSON:API resource object for this update."""
        body: dict[str, Any] = {"type": resource_type, "id": self.id}
        if batch:
            body["meta"] = {"update": True}
        if self.attributes:
            body["attributes"] = dict(self.attributes)
        if self.relationships:
            body["relationships"] = dict(self.relationships)
        return body


def _pointer_index(pointer: str) -> int | None:
    parts = pointer.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "data" and parts[1].isdigit():
        return int(parts[1])
    return None


def _by_index(exc: OroClientError, size: int) -> dict[int, list[tuple[str, str]]] | None:
    """Errors grouped by record index, or None when some error names no record."""
    if exc.status not in {400, 409, 422}:
        return None
    return _group_errors(exc.errors, size)


def _group_errors(errors: Sequence[Mapping[str, Any]], size: int) -> dict[int, list[tuple[str, str]]] | None:
    if not errors:
        return None
    grouped: dict[int, list[tuple[str, str]]] = {}
    for error in errors:
        source = error.get("source")
        pointer = str(source.get("pointer") or "") if isinstance(source, Mapping) else ""
        index = _pointer_index(pointer)
        if index is None or index >= size:
            return None
        detail = str(error.get("detail") or error.get("title") or "")
        grouped.setdefault(index, []).append((detail, pointer))
    return grouped


def _single_pointer(pointer: str) -> str:
    """``/data/3/attributes/x`` -> ``/data/attributes/x`` (the record's own pointer)."""
    parts = pointer.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "data" and parts[1].isdigit():
        return "/" + "/".join([parts[0], *parts[2:]])
    return pointer


OPERATION_WAIT_S = 900.0
"""How long to wait for an asynchronous operation Oro made of a slow sync request."""


class OperationPendingError(RuntimeError):
    """Oro's asynchronous operation did not finish in time: whether the records landed is unknown."""


def operation_errors(writer: OroWriter, accepted: requests.Response) -> list[dict[str, Any]]:
    """Wait for the operation a Batch API 202 announced; its errors (none = every record was written).

    Raises :class:`OperationPendingError` after :data:`OPERATION_WAIT_S`.
    """
    location = accepted.headers.get("Content-Location") or ""
    if not location:
        op_id = str(((accepted.json() or {}).get("data") or {}).get("id") or "")
        location = f"asyncoperations/{op_id}"
    deadline = time.monotonic() + OPERATION_WAIT_S
    pause = 0.2
    while True:
        doc = writer.get_json(location)
        status = str(((doc.get("data") or {}).get("attributes") or {}).get("status") or "")
        if status not in {"new", "running"}:
            break
        if time.monotonic() > deadline:
            msg = f"Oro batch operation {location} still {status} after {OPERATION_WAIT_S:.0f} s"
            raise OperationPendingError(msg)
        time.sleep(pause)
        pause = min(pause * 2, 5.0)
    errors = [
        {**item.get("attributes", {}), "status": str((item.get("attributes") or {}).get("status") or "")}
        for item in writer.iter_resources(f"{location}/errors", {"page[size]": "100"})
    ]
    if status != "success" and not errors:
        errors = [{"detail": f"Oro batch operation ended with status {status}"}]
    return errors


#: ``batch_mode`` -> whether the Batch API is used: True, False, or None (auto: the first answer tells).
BATCH_MODES: dict[str, bool | None] = {"auto": None, "batch": True, "single": False}


class BatchUser(Protocol):
    """A writer that finds out from Oro's answers whether the Batch API serves its resource."""

    batch_supported: bool | None
    _lock: threading.Lock


def note_batch_answer(user: BatchUser, response: Any) -> bool:
    """Record on ``user`` whether a Batch API request's answer shows the API serves the resource
    (405: it does not, from now on; a 200, a 202 for a sync request Oro made asynchronous, or any
    other answer: it does) and return it."""
    supported = not (isinstance(response, requests.Response) and response.status_code == 405)
    with user._lock:
        user.batch_supported = supported
    return supported


class BulkUpdater:
    """Update many records of one resource with as few requests as the API allows."""

    def __init__(self, writer: OroWriter, resource: str, *, batch_mode: str = "auto") -> None:
        self.writer = writer
        self.resource = resource
        self.batch_supported = BATCH_MODES[batch_mode]
        self._lock = threading.Lock()

    def update(self, updates: Sequence[Update], reject: RejectFn, drop: DropFn | None = None) -> list[Update]:
        """Apply ``updates``; return the ones that landed (the others went to ``reject``).

        With ``drop``, an update whose only refused attributes are ``optional`` is sent again without
        them (each reported to ``drop``); the returned update then carries the attributes that landed.
        """
        if self.writer.dry_run:  # planned by the caller; nothing is sent, every update counts as landed
            return list(updates)
        done: list[Update] = []
        pending = list(updates)
        while pending and self.batch_supported is not False:
            chunk, pending = pending[:SYNC_BATCH_LIMIT], pending[SYNC_BATCH_LIMIT:]
            landed = self._batch(chunk, reject, drop)
            if landed is None:
                pending = chunk + pending
                break
            done.extend(landed)
        if pending:
            done.extend(self._single(pending, reject, drop))
        return done

    @staticmethod
    def _refused(
        update: Update, errors: Sequence[tuple[str, str]], reject: RejectFn, drop: DropFn | None
    ) -> Update | None:
        """Answer Oro's errors for one update: the update to send again without refused optional
        attributes (None: nothing left to send, or the record was rejected)."""
        refused = update.without_refused(errors) if drop is not None else None
        if refused is None or drop is None:
            detail = "; ".join(f"{d} ({_single_pointer(p)})" for d, p in errors)
            reject(update.context, detail, _single_pointer(errors[0][1]))
            return None
        for name, detail in refused.items():
            drop(update.context, detail, f"/data/attributes/{name}", update.attributes[name])
        rest = {k: v for k, v in update.attributes.items() if k not in refused}
        if not rest and not update.relationships:
            return None
        return Update(update.context, update.id, rest, update.relationships, update.optional)

    def _batch(self, chunk: list[Update], reject: RejectFn, drop: DropFn | None) -> list[Update] | None:
        while chunk:
            body = {"data": [u.resource(self.resource, batch=True) for u in chunk]}
            try:
                response = self.writer.call(
                    "PATCH", self.resource, body=body, headers={"X-Mode": "sync"}, ok_statuses=(405,)
                )
            except OroClientError as exc:
                grouped = _by_index(exc, len(chunk))
                if grouped is None:
                    return self._single(chunk, reject, drop)
                chunk = self._regroup(chunk, grouped, reject, drop)
                continue
            if not note_batch_answer(self, response):
                return None
            if isinstance(response, requests.Response) and response.status_code == 202:
                op_errors = operation_errors(self.writer, response)
                if op_errors:
                    grouped = _group_errors(op_errors, len(chunk))
                    if grouped is None:
                        return self._single(chunk, reject, drop)  # nothing landed (all or nothing)
                    chunk = self._regroup(chunk, grouped, reject, drop)
                    continue
            return chunk
        return []

    def _regroup(
        self,
        chunk: list[Update],
        grouped: Mapping[int, list[tuple[str, str]]],
        reject: RejectFn,
        drop: DropFn | None,
    ) -> list[Update]:
        """The chunk to send again: records without errors, and records whose refused optional
        attributes were left out; the others are rejected."""
        again: list[Update] = []
        for n, update in enumerate(chunk):
            if n not in grouped:
                again.append(update)
            elif (rest := self._refused(update, grouped[n], reject, drop)) is not None:
                again.append(rest)
        return again

    def _single(self, updates: Sequence[Update], reject: RejectFn, drop: DropFn | None = None) -> list[Update]:
        def patch(u: Update) -> None:
            body = {"data": u.resource(self.resource, batch=False)}
            self.writer.call("PATCH", f"{self.resource}/{u.id}", body=body)

        results = self.writer.run_parallel([functools.partial(patch, u) for u in updates])
        done = []
        again = []
        for update, result in zip(updates, results, strict=True):
            if isinstance(result, OroClientError):
                errors = [
                    (str(e.get("detail") or e.get("title") or ""), str(e["source"]["pointer"]))
                    for e in result.errors
                    if isinstance(e.get("source"), Mapping) and e["source"].get("pointer")
                ]
                if errors and len(errors) == len(result.errors) and result.status in {400, 409, 422}:
                    if (rest := self._refused(update, errors, reject, drop)) is not None:
                        again.append(rest)
                    continue
                reject(update.context, all_error_details(result), errors[0][1] if errors else None)
            elif isinstance(result, BaseException):
                raise result
            else:
                done.append(update)
        if again:
            done.extend(self._single(again, reject, drop))
        return done
