"""GatheringWriter: RECORD lines gathered into larger writes, every other message written at once."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from oromc_common import output
from singer_sdk.singerlib.encoding.simple import RecordMessage, SchemaMessage, StateMessage


class _Out:
    """A stdout whose binary layer takes at most ``limit`` bytes per write (as a raw pipe may)."""

    def __init__(self, limit: int = 1 << 30) -> None:
        self.writes: list[bytes] = []
        self.limit = limit
        self.buffer = self

    def write(self, data: Any) -> int:
        chunk = bytes(data[: self.limit])
        self.writes.append(chunk)
        return len(chunk)

    def flush(self) -> None:
        pass

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in b"".join(self.writes).splitlines()]


def _record(n: int) -> RecordMessage:
    return RecordMessage(stream="s", record={"n": n, "pad": "x" * 100})


def test_records_wait_for_the_next_other_message_and_keep_their_order(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _Out(limit=7)
    monkeypatch.setattr(sys, "stdout", out)
    writer = output.GatheringWriter()
    writer.write_message(SchemaMessage(stream="s", schema={"type": "object"}, key_properties=[]))
    assert [m["type"] for m in out.lines()] == ["SCHEMA"]  # written at once
    for n in range(3):
        writer.write_message(_record(n))
    assert [m["type"] for m in out.lines()] == ["SCHEMA"]  # records gathered
    writer.write_message(StateMessage(value={"bookmarks": {"s": {"n": 2}}}))
    assert [(m["type"], m.get("record", {}).get("n")) for m in out.lines()] == [
        ("SCHEMA", None), ("RECORD", 0), ("RECORD", 1), ("RECORD", 2), ("STATE", None),
    ]  # fmt: skip


def test_records_are_written_once_gather_bytes_are_pending_and_at_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _Out()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(output, "GATHER_BYTES", 1000)
    writer = output.GatheringWriter()
    for n in range(20):
        writer.write_message(_record(n))
    assert 1 <= len(out.writes) < 20
    assert all(len(w) >= 1000 for w in out.writes)
    output._flush_at_exit(lambda: writer)  # type: ignore[arg-type]
    assert [m["record"]["n"] for m in out.lines()] == list(range(20))
