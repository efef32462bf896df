"""oromc_common.readahead: the targets' input is read ahead on a thread, within a byte limit."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator

import pytest
from oromc_common.readahead import ReadAhead
from oromc_common.records import PrivateLineReader


def test_same_lines_in_the_same_order_then_the_end() -> None:
    lines = [f'{{"n": {i}}}\n' for i in range(5000)]
    assert list(ReadAhead(io.StringIO("".join(lines)))) == lines
    assert list(ReadAhead(io.StringIO(""))) == []


def test_the_source_is_read_while_the_consumer_is_busy_but_never_past_the_limit() -> None:
    produced = 0
    lock = threading.Lock()

    def source() -> Iterator[str]:
        nonlocal produced
        for i in range(1000):
            with lock:
                produced += 1
            yield f"{i:09d}\n"  # 10 characters a line

    ahead = ReadAhead(source(), limit_bytes=100)
    lines = iter(ahead)
    assert next(lines) == "000000000\n"
    # the consumer is "draining a window": the thread fills the buffer up to the limit and waits
    for _ in range(200):
        with lock:
            if produced >= 11:
                break
        threading.Event().wait(0.01)
    threading.Event().wait(0.05)
    with lock:
        assert 11 <= produced <= 12  # the first line + 10 held (+ one read, waiting for room)
    assert ahead.peak_bytes == 100
    assert [int(line) for line in lines] == list(range(1, 1000))
    assert ahead.peak_bytes == 100


def test_a_line_longer_than_the_limit_still_passes_alone() -> None:
    lines = ["short\n", "x" * 500 + "\n", "end\n"]
    assert list(ReadAhead(iter(lines), limit_bytes=100)) == lines


def test_an_error_reading_the_input_is_raised_after_the_lines_before_it() -> None:
    def source() -> Iterator[str]:
        yield "a\n"
        yield "b\n"
        raise OSError("pipe broke")

    got: list[str] = []
    with pytest.raises(OSError, match="pipe broke"):
        got.extend(ReadAhead(source()))
    assert got == ["a\n", "b\n"]


def test_the_targets_reader_reads_the_next_lines_while_a_message_is_handled() -> None:
    third_read = threading.Event()

    def source() -> Iterator[str]:
        for i in range(3):
            yield f'{{"type": "STATE", "value": {{"n": {i}}}}}\n'
        third_read.set()

    handled: list[tuple[int, bool]] = []

    def on_state(message: dict) -> None:  # type: ignore[type-arg]
        # while the first message is handled (a drain), the reader has read the rest
        handled.append((message["value"]["n"], third_read.wait(5)))

    counts = PrivateLineReader().process_lines(source(), {"STATE": on_state})  # type: ignore[arg-type]
    assert counts["STATE"] == 3
    assert handled == [(0, True), (1, True), (2, True)]
