"""The type check's fast path (`schemas._types_conform`) agrees with the JSON-schema validator.

Every request schema of `openapi_types.json` gets a body that conforms and, for each value in it,
the same body with that one value of every other JSON type: the fast path calls a body conforming
exactly when the validator finds no `type` error in it, so `type_errors` answers as before.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft7Validator
from oromc_sandbox.mailchimp.schemas import _types_conform, openapi_types

SAMPLES: dict[str, Any] = {
    "string": "x",
    "object": {},
    "boolean": True,
    "number": 1.5,
    "integer": 3,
    "array": [],
    "null": None,
}
OTHERS = ("x", {}, True, False, 1.5, 2.0, 3, [], None, [1], {"a": 1})


def _sample(schema: dict[str, Any]) -> Any:
    kind = schema.get("type", "object")
    if kind == "object":
        return {k: _sample(v) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        items = schema.get("items")
        return [_sample(items)] if isinstance(items, dict) else []
    return copy.deepcopy(SAMPLES[kind])


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, (*path, i))


def _replaced(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    out = copy.deepcopy(body)
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


def _no_type_error(validator: Draft7Validator, body: Any) -> bool:
    return not any(e.validator == "type" for e in validator.iter_errors(body))


def test_the_fast_path_calls_a_body_conforming_exactly_when_the_validator_does() -> None:
    checked = 0
    for key, schema in openapi_types()["requests"].items():
        validator = Draft7Validator(schema)
        body = _sample(schema)
        assert _types_conform(schema, body), key
        assert _no_type_error(validator, body), key
        for path in _paths(body):
            for other in OTHERS:
                changed = _replaced(body, path, other)
                assert _types_conform(schema, changed) == _no_type_error(validator, changed), (
                    key,
                    path,
                    other,
                )
                checked += 1
    assert checked > 5000
