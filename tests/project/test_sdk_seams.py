"""The SDK seams (oromc_common/sdk_seams.py): pinned to the SDK version, each seam exercised, and no
private singer-sdk name used anywhere else in the repository.

When singer-sdk is upgraded: re-read the SDK code each seam wraps, update ``SDK_VERSION``, run this file.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import io
import json
import logging
import textwrap
from collections.abc import Iterable
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from oromc_common import sdk_seams
from oromc_common.sdk_seams import (
    SeamTap,
    SeamTarget,
    emit_stream_state,
    reset_state_manager,
    tap_of,
    write_record,
    write_schema,
)
from oromc_common.settings import Renamed
from singer_sdk import Stream
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.sinks import RecordSink, Sink

ROOT = Path(__file__).resolve().parents[2]
SEAM_MODULE = ROOT / "common" / "oromc_common" / "sdk_seams.py"


def test_installed_sdk_is_the_one_the_seams_were_written_for() -> None:
    assert version("singer-sdk") == sdk_seams.SDK_VERSION


# -- the seams, exercised -----------------------------------------------------------------------


class _Sink(RecordSink):
    written: list[dict[str, Any]]

    def process_record(self, record: dict, context: dict) -> None:
        type(self).written.append(record)


class _Target(SeamTarget):
    name = "target-seam-test"
    config_jsonschema = th.PropertiesList().to_dict()
    default_sink_class = _Sink

    def __init__(self) -> None:
        super().__init__(config={}, validate_config=False)
        self.events: list[Any] = []

    def on_record_processed(self) -> None:
        self.events.append(("record", [s.stream_name for s in self.active_sinks()]))

    def on_state_received(self, previous: dict[str, Any] | None) -> None:
        self.events.append(("state", previous, self.latest_state))

    def write_state(self, state: dict[str, Any]) -> None:
        self.events.append(("write", state))
        if state.get("skip"):
            return
        super().write_state(state)

    def drain_sinks(self, sinks: list[Sink], parallelism: int) -> None:
        self.events.append(("drain", [s.stream_name for s in sinks], parallelism))
        super().drain_sinks(sinks, parallelism)


def _lines(*messages: dict[str, Any]) -> io.StringIO:
    return io.StringIO("".join(json.dumps(m) + "\n" for m in messages))


def test_target_seams_call_the_hooks_and_emit_state(capsys: pytest.CaptureFixture[str]) -> None:
    _Sink.written = []
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    target = _Target()
    target.listen(
        _lines(
            {"type": "SCHEMA", "stream": "a", "schema": schema, "key_properties": ["id"]},
            {"type": "RECORD", "stream": "a", "record": {"id": 1}},
            {"type": "STATE", "value": {"n": 1}},
            {"type": "STATE", "value": {"skip": True}},
        )
    )
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert _Sink.written == [{"id": 1}]
    assert ("record", ["a"]) in target.events
    assert ("state", None, {"n": 1}) in target.events
    assert ("state", {"n": 1}, {"skip": True}) in target.events
    drains = [e for e in target.events if e[0] == "drain"]
    assert ("drain", ["a"], target.max_parallelism) in drains  # the active sinks, at end of pipe
    assert target.events[-1] == ("write", {"skip": True})  # the final drain emits the latest state
    assert out == []  # ... through write_state, which chose to skip it
    target.write_state({"n": 2})
    assert json.loads(capsys.readouterr().out) == {"n": 2}
    assert target.latest_state == {"skip": True}


class _Numbers(Stream):
    name = "numbers"
    schema = th.PropertiesList(th.Property("n", th.IntegerType)).to_dict()

    def get_records(self, context: dict | None) -> Iterable[dict[str, Any]]:
        if self.tap.fail:  # type: ignore[attr-defined]
            msg = "stream failed"
            raise RuntimeError(msg)
        yield {"n": 1}

    @property
    def tap(self) -> Any:
        return tap_of(self)


class _Letters(_Numbers):
    name = "a_letters"

    def get_records(self, context: dict | None) -> Iterable[dict[str, Any]]:
        yield {"n": 2}


class _Tap(SeamTap):
    name = "tap-seam-test"
    config_jsonschema = th.PropertiesList().to_dict()

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.events: list[str] = []
        super().__init__(config={}, validate_config=False)

    def discover_streams(self) -> list[Stream]:
        return [_Numbers(self), _Letters(self)]

    def before_sync_all(self) -> None:
        self.events.append("before")

    def after_sync_all(self) -> None:
        self.events.append("after")


def _records(out: str) -> list[tuple[str, Any]]:
    return [(m["stream"], m["record"]) for m in map(json.loads, out.splitlines()) if m["type"] == "RECORD"]


def test_tap_seams_wrap_the_run_and_order_the_streams(capsys: pytest.CaptureFixture[str]) -> None:
    tap = _Tap()
    assert list(tap.streams) == ["a_letters", "numbers"]  # the SDK sorts by name
    tap.set_stream_order({"numbers": tap.streams["numbers"], "a_letters": tap.streams["a_letters"]})
    assert list(tap.streams) == ["numbers", "a_letters"]
    tap.sync_all()
    assert tap.events == ["before", "after"]
    assert _records(capsys.readouterr().out) == [("numbers", {"n": 1}), ("a_letters", {"n": 2})]

    failing = _Tap(fail=True)
    with pytest.raises(RuntimeError, match="stream failed"):
        failing.sync_all()
    assert failing.events == ["before", "after"]  # the end-of-run hook runs after a failure too


def test_streams_in_the_order_of_their_classes(capsys: pytest.CaptureFixture[str]) -> None:
    tap = _Tap()
    assert list(tap.streams_in_order([_Numbers])) == ["numbers", "a_letters"]  # the rest by name
    assert list(tap.streams) == ["numbers", "a_letters"]
    tap.sync_all()
    assert _records(capsys.readouterr().out) == [("numbers", {"n": 1}), ("a_letters", {"n": 2})]
    assert list(_Tap().streams_in_order([_Letters, _Numbers])) == ["a_letters", "numbers"]


def test_stream_seams(capsys: pytest.CaptureFixture[str]) -> None:
    tap = _Tap()
    stream = tap.streams["numbers"]
    assert tap_of(stream) is tap
    write_schema(stream)
    write_record(stream, {"n": 7})
    messages = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [m["type"] for m in messages] == ["SCHEMA", "RECORD"]
    assert messages[1]["record"] == {"n": 7}

    stream.stream_state["bookmark"] = "b1"
    emit_stream_state(stream)
    stream.stream_state["bookmark"] = "b2"
    emit_stream_state(stream)  # emitted again although no record was written in between
    states = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [s["type"] for s in states] == ["STATE", "STATE"]
    assert [s["value"]["bookmarks"]["numbers"]["bookmark"] for s in states] == ["b1", "b2"]

    before = stream.state_manager
    reset_state_manager(stream)
    assert stream.state_manager is not before
    assert stream.stream_state["bookmark"] == "b2"  # the state itself is kept


class _RenamingTap(_Tap):
    name = "tap-seam-rename-test"
    config_jsonschema = th.PropertiesList(th.Property("new_name", th.IntegerType, required=True)).to_dict()
    renamed_settings = (Renamed("old_name", "new_name"),)

    def __init__(self, config: dict[str, Any]) -> None:
        self.fail = False
        self.events = []
        SeamTap.__init__(self, config=config)


def test_config_seam_renames_before_the_sdk_validates(caplog: pytest.LogCaptureFixture) -> None:
    given = {"old_name": 3}
    with caplog.at_level(logging.WARNING):
        tap = _RenamingTap(given)  # validated: the required new_name is there
    assert dict(tap.config) == {"new_name": 3}
    assert given == {"old_name": 3}
    assert "Setting 'old_name' is deprecated" in caplog.text
    with pytest.raises(ConfigValidationError):
        _RenamingTap({})


# -- no private SDK name outside the seam module --------------------------------------------------


#: Attributes of SDK classes that live in private modules (``singer_sdk.helpers._state``), reached
#: through a public property (``Stream.state_manager``).
PRIVATE_MODULE_ATTRIBUTES = frozenset({"is_flushed"})


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


@cache
def _sdk_privates(cls: type) -> frozenset[str]:
    """Private names an SDK class defines: class attributes and ``self._x`` it assigns."""
    names = {n for n in vars(cls) if _private(n)}
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return frozenset(names)
    names |= {
        n.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store) and _private(n.attr)
    }
    return frozenset(names)


@cache
def _all_sdk_privates() -> frozenset[str]:
    root = Path(importlib.import_module("singer_sdk").__file__ or "").parent
    names: set[str] = set()
    for path in root.rglob("*.py"):
        for n in ast.walk(ast.parse(path.read_text())):
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and _private(n.name):
                names.add(n.name)
            elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store) and _private(n.attr):
                names.add(n.attr)
    return frozenset(names)


def _is_sdk(obj: object) -> bool:
    return str(getattr(obj, "__module__", "")).split(".")[0] == "singer_sdk"


def _imported(tree: ast.Module) -> dict[str, object]:
    """Names a file imports, resolved (what cannot be imported is left out)."""
    found: dict[str, object] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            try:
                module = importlib.import_module(node.module)
            except Exception:  # noqa: S112 - a test-only or optional module: not resolved
                continue
            for alias in node.names:
                if hasattr(module, alias.name):
                    found[alias.asname or alias.name] = getattr(module, alias.name)
    return found


def _sdk_bases(node: ast.ClassDef, names: dict[str, object], local: dict[str, ast.ClassDef]) -> list[type]:
    """The SDK classes in the MRO of a class statement's bases (followed through the same file)."""
    result: list[type] = []
    for base in node.bases:
        if isinstance(base, ast.Subscript):
            base = base.value
        if isinstance(base, ast.Name) and base.id in local and local[base.id] is not node:
            result += _sdk_bases(local[base.id], names, local)
        elif isinstance(base, ast.Name) and isinstance(names.get(base.id), type):
            result += [c for c in names[base.id].__mro__ if _is_sdk(c)]  # type: ignore[union-attr]
    return result


def _violations(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = _imported(tree)
    local = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    where = path.relative_to(root)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("singer_sdk"):
            module = node.module or ""
            if any(_private(part) for part in module.split(".")) or any(
                _private(a.name) for a in node.names
            ):
                found.append(f"{where}:{node.lineno}: import from {module}")
        elif isinstance(node, ast.Import):
            found += [
                f"{where}:{node.lineno}: import {a.name}"
                for a in node.names
                if a.name.startswith("singer_sdk") and any(_private(p) for p in a.name.split("."))
            ]
        elif isinstance(node, ast.ClassDef):
            sdk = _sdk_bases(node, names, local)
            private = frozenset().union(*(_sdk_privates(c) for c in sdk))
            finals = {n for c in sdk for n, v in vars(c).items() if getattr(v, "__final__", False)}
            for item in ast.walk(node):
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item in node.body:
                    if item.name in private:
                        found.append(f"{where}:{item.lineno}: overrides SDK {item.name}")
                    if item.name in finals:
                        found.append(f"{where}:{item.lineno}: overrides final SDK {item.name}")
                if (
                    isinstance(item, ast.Attribute)
                    and item.attr in private
                    and (
                        (isinstance(item.value, ast.Name) and item.value.id in {"self", "cls"})
                        or (isinstance(item.value, ast.Call) and getattr(item.value.func, "id", "") == "super")
                    )
                ):
                    found.append(f"{where}:{item.lineno}: self.{item.attr}")
        if isinstance(node, ast.Attribute) and (
            node.attr in PRIVATE_MODULE_ATTRIBUTES
            or (
                node.attr in _all_sdk_privates()
                and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})
                and not (isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "super")
            )
        ):
            found.append(f"{where}:{node.lineno}: .{node.attr}")
    return found


def _python_files() -> list[Path]:
    skip = {".git", ".meltano", "node_modules"}
    return sorted(
        p
        for p in ROOT.rglob("*.py")
        if p != SEAM_MODULE
        and not any(part in skip or part.startswith(".venv") for part in p.relative_to(ROOT).parts)
    )


def test_no_private_sdk_name_outside_the_seam_module() -> None:
    files = _python_files()
    assert len(files) > 50
    found = [v for path in files for v in _violations(path)]
    assert found == [], "use oromc_common.sdk_seams instead:\n" + "\n".join(found)


def test_the_scan_finds_private_sdk_use(tmp_path: Path) -> None:
    """The scan itself: each kind of private use in a throwaway file is reported."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from singer_sdk.helpers._typing import is_object_type\n"
        "from singer_sdk import Stream, Tap\n"
        "class T(Tap):\n"
        "    def sync_all(self): ...\n"
        "    def _reset_state_progress_markers(self): ...\n"
        "class S(Stream):\n"
        "    def f(self):\n"
        "        self.state_manager.is_flushed = False\n"
        "        return self._tap, other._state_manager\n"
    )
    text = "\n".join(_violations(probe, tmp_path))
    for expected in (
        "import from singer_sdk.helpers._typing",
        "overrides final SDK sync_all",
        "overrides SDK _reset_state_progress_markers",
        "self._tap",
        "._state_manager",
        ".is_flushed",
    ):
        assert expected in text
