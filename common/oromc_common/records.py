"""Incoming records checked against their stream's schema, answered per record and per field.

Both targets put every RECORD message through a :class:`RecordGate` before the SDK sees it:

* a record whose key property is missing, or whose *essential* field violates the stream schema
  (a key property, a field the schema requires, or one the target names as essential because
  leaving it out would change what the record means, e.g. ``marketing_consent`` or ``last_changed``)
  is rejected as a whole (``reason`` ``missing_key`` / ``schema_violation``, ``field`` = the field,
  ``value`` = its redacted shape), and the run goes on;
* any other field that violates the schema, or holds a string with control characters (NUL and the
  other C0/C1 characters except tab, line feed and carriage return: no API stores them as text), is
  left out of the record with a *field reject* (``report.reject_field``), and the rest of the record
  is written.

Input lines that are not JSON stop the run with ``InvalidInputLine`` without quoting the line
(:class:`PrivateLineReader`). Nothing is coerced: a value of the wrong type is never turned into one
of the right type. Messages never quote a value (it may be personal data). Date-time strings are
checked as RFC 3339 / ISO 8601 (the SDK would otherwise turn an unparseable one into null, silently).
The :class:`GatedTarget` hooks the SDK's message handling only through the public hooks of
:class:`oromc_common.sdk_seams.SeamTarget`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import jsonschema
import msgspec
from jsonschema.exceptions import ValidationError, best_match
from singer_sdk.contrib.msgspec import MsgSpecReader
from singer_sdk.singerlib.exceptions import InvalidInputLine
from typing_extensions import override

from oromc_common.dates import parse_iso_datetime
from oromc_common.keys import record_key
from oromc_common.report import RunReport
from oromc_common.sdk_seams import SeamTarget

CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    text = value.strip()
    if "T" not in text.upper() and " " not in text:
        raise ValueError("not a date-time")
    parse_iso_datetime(text)
    return True


@_FORMATS.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    if isinstance(value, str):
        date.fromisoformat(value.strip())
    return True


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a record: the field (dotted path), what is wrong, the value."""

    field: str
    message: str
    value: Any
    path: tuple[str | int, ...]


@dataclass
class Verdict:
    """The gate's answer: ``rejected`` is the problem that rejects the record (None: keep it);
    ``dropped`` are the fields removed from the (mutated) record."""

    rejected: Problem | None
    reason: str = ""
    dropped: list[Problem] | None = None


def _dotted(path: Iterable[str | int]) -> str:
    return ".".join(str(p) for p in path)


def _strings(value: Any, path: tuple[str | int, ...]) -> Iterable[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _strings(v, (*path, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*path, i))


Check = Callable[[Any], bool]
_ANNOTATIONS = frozenset(
    {"description", "title", "default", "examples", "$comment", "readOnly", "writeOnly", "deprecated",
     "$schema", "$id"}
)
_TYPES: dict[str, Check] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def _all(checks: list[Check]) -> Check:
    def check(value: Any) -> bool:
        return all(c(value) for c in checks)

    return check


def _one_of_types(kinds: list[Check]) -> Check:
    def check(value: Any) -> bool:
        return any(kind(value) for kind in kinds)

    return check


def _object(subs: dict[str, Check], extra: Check | None) -> Check:
    def check(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        for key, item in value.items():
            sub = subs.get(key, extra)
            if sub is not None and not sub(item):
                return False
        return True

    return check


def _array(item: Check) -> Check:
    def check(value: Any) -> bool:
        return not isinstance(value, list) or all(item(x) for x in value)

    return check


def _required(names: list[str]) -> Check:
    def check(value: Any) -> bool:
        return not isinstance(value, dict) or all(n in value for n in names)

    return check


def _any_of(options: list[Check]) -> Check:
    def check(value: Any) -> bool:
        return any(o(value) for o in options)

    return check


def _format(fmt: str) -> Check:
    def check(value: Any) -> bool:
        return not isinstance(value, str) or _FORMATS.conforms(value, fmt)

    return check


def _length(low: int, high: int) -> Check:
    def check(value: Any) -> bool:
        return not isinstance(value, str) or low <= len(value) <= high

    return check


def _compile(schema: Any) -> Check | None:  # noqa: C901  (one branch per JSON Schema keyword)
    """A fast yes/no check for the JSON Schema subset Singer schemas use (``type``, ``properties``,
    ``additionalProperties``, ``items``, ``required``, ``anyOf``, ``format``, ``maxLength``,
    ``minLength``); None when the schema uses anything else (then every record goes through
    ``jsonschema``). Only a "no" is explained, by ``jsonschema``, so the messages are always its
    findings. jsonschema's own check costs ~0.4 ms per contact, this one a few microseconds."""
    if schema is True or schema == {}:
        return lambda _v: True
    if not isinstance(schema, dict):
        return None
    checks: list[Check] = []
    subs: dict[str, Check] = {}
    extra: Check | None = None
    for key, arg in schema.items():
        if key in _ANNOTATIONS:
            continue
        compiled: Check | None
        if key == "type":
            names = [arg] if isinstance(arg, str) else list(arg)
            if any(n not in _TYPES for n in names):
                return None
            checks.append(_one_of_types([_TYPES[n] for n in names]))
        elif key == "properties" and isinstance(arg, dict):
            for name, sub in arg.items():
                compiled = _compile(sub)
                if compiled is None:
                    return None
                subs[name] = compiled
        elif key == "additionalProperties":
            if arg is not True:
                extra = _compile(arg) if isinstance(arg, dict) else None
                if extra is None:
                    return None
        elif key == "items" and isinstance(arg, dict):
            compiled = _compile(arg)
            if compiled is None:
                return None
            checks.append(_array(compiled))
        elif key == "required" and isinstance(arg, list):
            checks.append(_required([str(n) for n in arg]))
        elif key == "anyOf" and isinstance(arg, list):
            options = [_compile(sub) for sub in arg]
            if any(o is None for o in options):
                return None
            checks.append(_any_of([o for o in options if o is not None]))
        elif key == "format" and isinstance(arg, str):
            checks.append(_format(arg))
        elif key in {"maxLength", "minLength"} and isinstance(arg, int):
            checks.append(_length(arg, 2**63) if key == "minLength" else _length(0, arg))
        else:
            return None
    if subs or extra is not None:
        checks.append(_object(subs, extra))
    return _all(checks)


def _has_control(value: Any) -> bool:
    if isinstance(value, str):
        return CONTROL_CHARS.search(value) is not None
    if isinstance(value, dict):
        return any(_has_control(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_control(v) for v in value)
    return False


def _message(error: ValidationError) -> str:
    """What is wrong, in words that never quote the value (it may be personal data)."""
    rule, expected = error.validator, error.validator_value
    if rule == "type":
        return f"expected {expected}"
    if rule == "format":
        return f"not a valid {expected}"
    if rule in {"maxLength", "maxItems"}:
        return f"longer than {expected}"
    if rule in {"minLength", "minItems"}:
        return f"shorter than {expected}"
    if rule == "enum":
        return "not one of the allowed values"
    if rule == "required":
        return f"missing one of {', '.join(map(str, expected))}"
    return f"violates the schema's '{rule}' rule"


class RecordGate:
    """Checks the records of one stream against its schema (see the module docstring)."""

    def __init__(
        self,
        schema: Mapping[str, Any],
        key_properties: Iterable[str] = (),
        essential: Iterable[str] = (),
    ) -> None:
        """``essential``: top-level fields or dotted paths (``merge_fields.OROID``) whose problems
        reject the whole record, in addition to the key properties and the schema's ``required``."""
        self.schema = dict(schema)
        self.key_properties = tuple(key_properties)
        required = self.schema.get("required") or []
        self.essential = {*self.key_properties, *required, *essential}
        self.validator = jsonschema.Draft202012Validator(self.schema, format_checker=_FORMATS)
        self._fast = _compile(self.schema)

    def _is_essential(self, path: tuple[str | int, ...]) -> bool:
        names = [str(p) for p in path]
        return any(".".join(names[:n]) in self.essential for n in range(1, len(names) + 1))

    def problems(self, record: Mapping[str, Any]) -> list[Problem]:
        """Everything wrong with ``record`` (schema violations, then control characters)."""
        found = []
        if self._fast is None or not self._fast(record):
            found = [self._problem(error, record) for error in self.validator.iter_errors(record)]
        if not _has_control(record):
            return found
        for path, text in _strings(record, ()):
            if CONTROL_CHARS.search(text):
                found.append(Problem(_dotted(path), "contains control characters", text, path))
        return found

    @staticmethod
    def _problem(error: ValidationError, record: Mapping[str, Any]) -> Problem:
        path = tuple(error.absolute_path)
        if not path:  # a record-level rule: a required property (possibly inside anyOf/oneOf)
            leaf = best_match(error.context) if error.context else error
            missing = [
                str(n)
                for n in (leaf.validator_value if leaf.validator == "required" else [])
                if n not in record
            ]
            name = missing[0] if missing else ""
            return Problem(name, "missing" if name else _message(error), None, (name,) if name else ())
        if error.validator == "required" and isinstance(error.instance, Mapping):
            missing = [str(n) for n in error.validator_value if n not in error.instance]
            if missing:  # named by the missing property; the object holding it is what goes
                return Problem(_dotted((*path, missing[0])), "missing", None, path)
        return Problem(_dotted(path), _message(error), error.instance, path)

    def check(self, record: dict[str, Any]) -> Verdict:
        """Check ``record``; drop the fields with problems that do not reject it (in place)."""
        missing = [k for k in self.key_properties if k not in record]
        if missing:
            return Verdict(Problem(missing[0], "key property missing", None, (missing[0],)), "missing_key")
        problems = self.problems(record)
        if not problems:
            return Verdict(None, dropped=[])
        for problem in problems:
            if not problem.path or self._is_essential(problem.path):
                return Verdict(problem, "schema_violation")
        dropped = []
        for problem in problems:
            removed = self._drop(record, problem.path)
            if removed is not None:  # named by what was left out; the detail says what was wrong
                message = problem.message if removed == problem.field else f"{problem.field}: {problem.message}"
                dropped.append(Problem(removed, message, problem.value, problem.path))
        return Verdict(None, dropped=dropped)

    @staticmethod
    def _drop(record: dict[str, Any], path: tuple[str | int, ...]) -> str | None:
        """Remove the innermost object property on ``path`` (an array item takes its array along);
        the dotted path of what was removed (None: already gone)."""
        container: Any = record
        last_dict: tuple[dict[str, Any], str, int] | None = None
        for depth, part in enumerate(path):
            if isinstance(container, dict) and part in container:
                last_dict = (container, str(part), depth)
                container = container[part]
            elif isinstance(container, list) and isinstance(part, int) and part < len(container):
                container = container[part]
            else:
                break
        if last_dict is None:
            return None
        owner, key, depth = last_dict
        del owner[key]
        return _dotted(path[: depth + 1])


KeyFn = Callable[[str, Mapping[str, Any]], str]

_DECODER = msgspec.json.Decoder()


class PrivateLineReader(MsgSpecReader):
    """The SDK's msgspec reader, except that a line that is not JSON (e.g. the truncated last line
    of a killed tap) is never logged or quoted: the SDK's reader logs the whole line, which holds
    personal data (and may be 50 MB). The run still stops with ``InvalidInputLine``."""

    @override
    def deserialize_json(self, line: str) -> dict:
        try:
            return _DECODER.decode(line)
        except msgspec.DecodeError as exc:
            msg = (
                f"Unable to parse an input line of {len(line)} characters as JSON ({exc}); a truncated "
                "line usually means the tap was stopped mid-write. The line is not shown: it may hold "
                "personal data."
            )
            raise InvalidInputLine(msg) from None


class GatedTarget(SeamTarget):
    """A target whose every RECORD goes through the stream's :class:`RecordGate` first.

    The target provides :meth:`gate_report`, :meth:`gate_essential` and :meth:`gate_record_key`.
    A rejected record never reaches the SDK (so a missing key property no longer stops the run);
    a record with dropped fields reaches it without them.
    """

    _gates: dict[str, RecordGate]
    #: the summary counter of records read (target-mailchimp: ``received``, target-orocommerce: ``read``)
    gate_read_counter = "received"

    def gate_report(self) -> RunReport:
        """The run report rejects are written to."""
        raise NotImplementedError

    def gate_essential(self, stream: str) -> Iterable[str]:
        """Fields of ``stream`` whose problems reject the whole record."""
        return ()

    def gate_applies(self, stream: str) -> bool:
        """False for streams the target ignores (their records are only counted)."""
        return True

    def gate_record_key(
        self, stream: str, record: Mapping[str, Any], key_properties: Iterable[str], position: int
    ) -> str:
        """How a record is named in the rejects report (default: :func:`oromc_common.keys.record_key`:
        its key properties, else its 1-based position in the stream)."""
        return record_key(record, (), key_properties=key_properties, position=position)

    def _gate(self, stream: str) -> RecordGate | None:
        gates: dict[str, RecordGate] = getattr(self, "_gates", {})
        return gates.get(stream)

    @override
    def on_schema_received(self, message_dict: dict[str, Any]) -> None:
        super().on_schema_received(message_dict)
        stream = str(message_dict["stream"])
        if not hasattr(self, "_gates"):
            self._gates = {}
        if not self.gate_applies(stream):
            self._gates.pop(stream, None)
            return
        self._gates[stream] = RecordGate(
            message_dict["schema"],
            message_dict.get("key_properties") or (),
            self.gate_essential(stream),
        )

    @override
    def admit_record(self, message_dict: dict[str, Any]) -> bool:
        stream = message_dict.get("stream")
        record = message_dict.get("record")
        gate = self._gate(str(stream)) if isinstance(stream, str) else None
        if gate is not None and isinstance(record, dict):
            verdict = gate.check(record)
            report = self.gate_report()
            positions: dict[str, int] = self.__dict__.setdefault("_gate_positions", {})
            positions[str(stream)] = positions.get(str(stream), 0) + 1
            key = self.gate_record_key(str(stream), record, gate.key_properties, positions[str(stream)])
            if verdict.rejected is not None:
                problem = verdict.rejected
                report.count(str(stream), self.gate_read_counter)
                report.reject(
                    str(stream), key, verdict.reason, f"{problem.field or 'record'}: {problem.message}",
                    problem.field or None, problem.value,
                )
                return False
            for problem in verdict.dropped or []:
                report.reject_field(
                    str(stream), key, "invalid_field", problem.field,
                    problem.value, f"{problem.field}: {problem.message}; the field was left out",
                )
        return super().admit_record(message_dict)
