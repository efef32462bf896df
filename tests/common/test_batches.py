"""``oromc_common.batches``: result files decoded one result at a time, and the first poll's wait."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from contextlib import contextmanager
from typing import Any

import pytest
from oromc_common import batches

RESULTS: list[Any] = [
    {"status_code": 200, "operation_id": "c1:0", "response": json.dumps({"emails": [{"a": "é" * 40}]})},
    {"status_code": 404, "operation_id": "c2:0", "response": json.dumps({"title": "]["})},
    {"status_code": 200, "operation_id": "c3:0", "response": json.dumps({"n": [1, 23, 4.5e3], "x": None})},
]


def _archive(files: list[bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for n, data in enumerate(files):
            info = tarfile.TarInfo(f"{n}.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


class _Download:
    def __init__(self, data: bytes) -> None:
        self.raw = io.BytesIO(data)
        self.raw.decode_content = False  # type: ignore[attr-defined]


class _Client:
    def __init__(self, data: bytes) -> None:
        self.data = data

    @contextmanager
    def open_download(self, url: str) -> Any:
        yield _Download(self.data)


@pytest.mark.parametrize("chunk", [1, 5, 64, 1 << 20])
def test_results_are_the_same_whatever_the_read_size(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """Results split across reads anywhere (inside multi-byte characters, numbers, strings) decode
    as a whole file would; empty files have none."""
    monkeypatch.setattr(batches, "READ_CHUNK", chunk)
    files = [json.dumps(RESULTS[:2], indent=2).encode(), b" \n", b"", json.dumps(RESULTS[2:]).encode()]
    got = list(batches.iter_results(_Client(_archive(files)), "https://example.invalid/r.tar.gz"))  # type: ignore[arg-type]
    assert [(r.operation_id, r.status_code) for r in got] == [("c1:0", 200), ("c2:0", 404), ("c3:0", 200)]
    assert [r.body for r in got] == [json.loads(r["response"]) for r in RESULTS]


@pytest.mark.parametrize("data", [b'[{"a": 1}, {"b": 2}', b'[{"a": 1}', b"{}", b'[{"a": ]'])
def test_a_file_that_is_not_one_json_array_raises(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(batches, "READ_CHUNK", 3)
    with pytest.raises(json.JSONDecodeError):
        list(batches.iter_results(_Client(_archive([data])), "https://example.invalid/r.tar.gz"))  # type: ignore[arg-type]


def test_the_first_poll_waits_first_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple[str, float]] = []
    monkeypatch.setattr(batches.time, "sleep", lambda s: events.append(("sleep", s)))

    class Client:
        def get(self, path: str) -> dict[str, Any]:
            events.append(("get", 0.0))
            return {"id": "b1", "status": "finished"}

    doc = batches.wait_for_batch(Client(), "b1", first_wait=4.5)  # type: ignore[arg-type]
    assert doc["status"] == "finished"
    assert events == [("sleep", 4.5), ("get", 0.0)]
