"""Type checks of Mailchimp write bodies against the OpenAPI description's request schemas.

Mailchimp validates every request body against its JSON schema and answers a mistyped value with
400 Invalid Resource, one `errors[]` entry per value: `{"field": "address.country_code", "message":
"Schema describes string, object found instead"}` (a null is reported as `NULL`: "Schema describes
string, NULL found instead", recorded in https://github.com/drewm/mailchimp-api/issues/212). The
schemas come from `openapi_types.json`, derived from Mailchimp's OpenAPI 3.0.55 file by
`scripts/gen_mailchimp_openapi_types.py`; only `type` is checked here (`enum`s are the handlers'
business, with Mailchimp's own wording).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

from .constants import API_PREFIX
from .exceptions import InvalidResourceError
from .values import json_type

TYPES_FILE = Path(__file__).with_name("openapi_types.json")
_PARAM = re.compile(r"\{[^}]*\}")


@functools.cache
def openapi_types() -> dict[str, Any]:
    """The derived type table: `{"requests": {...}, "responses": {...}}` keyed `METHOD /path`."""
    data: dict[str, Any] = json.loads(TYPES_FILE.read_text(encoding="utf-8"))
    return data


def operation_key(method: str, template: str) -> str:
    """`POST /3.0/lists/{list_id}` -> `POST /lists/{}` (path parameters named alike)."""
    path = template.removeprefix(API_PREFIX) or "/"
    return f"{method.upper()} {_PARAM.sub('{}', path)}"


@functools.cache
def _index(kind: str) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = openapi_types()[kind]
    return {operation_key(*key.split(" ", 1)): schema for key, schema in table.items()}


@functools.cache
def _validator(kind: str, key: str) -> Draft7Validator | None:
    schema = _index(kind).get(key)
    return Draft7Validator(schema) if schema is not None else None


def schema_for(kind: str, method: str, template: str) -> dict[str, Any] | None:
    """The request (`kind="requests"`) or 200-response schema of an operation, if the file has one."""
    return _index(kind).get(operation_key(method, template))


def _json_name(value: Any) -> str:
    """The JSON type of a value as Mailchimp names it in type errors (null is `NULL`)."""
    return "NULL" if value is None else json_type(value)


_IS_TYPE = Draft7Validator.TYPE_CHECKER.is_type


def _types_conform(schema: dict[str, Any], value: Any) -> bool:
    """Whether `value` has no mistyped value under `schema` (its `type`, `properties`, `items`).

    The same type rules as the validator (its type checker), without building an error per
    keyword: most bodies conform, and the validator's walk was a quarter of the sandbox's CPU in a
    large `/batches` backfill (issue 16). A body that does not conform goes to the validator for
    its `errors[]`. The derived schemas use no other keyword that checks types (`enum` errors are
    not reported here).
    """
    expected = schema.get("type")
    if isinstance(expected, str):
        if not _IS_TYPE(value, expected):
            return False
    elif expected is not None:
        return False  # a list of types: the validator decides
    if isinstance(value, dict):
        properties = schema.get("properties")
        if properties:
            for key, item in value.items():
                sub = properties.get(key)
                if sub is not None and not _types_conform(sub, item):
                    return False
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            return all(_types_conform(items, item) for item in value)
        if items is not None:
            return False
    return True


def type_errors(method: str, template: str, body: Any) -> list[dict[str, str]]:
    """Mailchimp-style `errors[]` for every mistyped value of a write body (empty when it conforms)."""
    key = operation_key(method, template)
    validator = _validator("requests", key)
    if validator is None:
        return []
    if _types_conform(_index("requests")[key], body):
        return []
    out = []
    for err in sorted(validator.iter_errors(body), key=lambda e: [str(p) for p in e.path]):
        if err.validator != "type":
            continue
        expected = err.validator_value
        expected_text = expected if isinstance(expected, str) else " or ".join(expected)
        out.append(
            {
                "field": ".".join(str(p) for p in err.path),
                "message": f"Schema describes {expected_text}, {_json_name(err.instance)} found instead",
            }
        )
    return out


def check_body(method: str, template: str, body: Any) -> None:
    """Raise 400 Invalid Resource when a write body has a value of the wrong JSON type."""
    errors = type_errors(method, template, body)
    if errors:
        raise InvalidResourceError(errors=errors)


def request_fields(method: str, template: str, exclude: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The top-level fields of an operation's request body (in the types file's order), minus `exclude`.

    One source for the fields a handler copies from a body: e.g. the writable fields of an
    e-commerce store are those of `PATCH /ecommerce/stores/{store_id}`.
    """
    schema = schema_for("requests", method, template)
    if schema is None:
        raise LookupError(f"{TYPES_FILE.name} has no request schema for {method} {template}")
    return tuple(key for key in schema.get("properties", {}) if key not in exclude)
