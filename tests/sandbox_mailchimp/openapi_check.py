"""Validate the sandbox's Mailchimp responses against the OpenAPI description's 200 schemas.

The schemas are the derived type table the sandbox ships (`openapi_types.json`, generated from
Mailchimp's OpenAPI 3.0.55 file by `scripts/gen_mailchimp_openapi_types.py`): JSON types of every
field of every operation's 200 response. `MailchimpClient` runs every 200 JSON response of the
suite through `check_response`, so each test is also a conformance check of what it reads.

Known defects of the 3.0.55 file (listed in the shared reference's README, and in
`SPEC_DEFECTS` below with the correct shape's source) are handled explicitly: the response schema of
those operations is replaced by the documented shape, never silently skipped. A second, smaller
defect: the Campaign schema's `type` enum omits `automation`, although the file's own report
schema documents it ("regular, plain-text, ab_split, rss, automation, variate, or auto") and real
accounts list every automation email in `/campaigns` with that type (see the sandbox README,
"Automations"); `_CAMPAIGN_TYPES` adds exactly that value.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

from jsonschema import Draft7Validator, ValidationError, validators
from oromc_sandbox.mailchimp.schemas import openapi_types

_STR = {"type": "string"}
_INT = {"type": "integer"}
_NUM = {"type": "number"}
_BOOL = {"type": "boolean"}
_OBJ = {"type": "object"}
_LINKS = {"type": "array", "items": _OBJ}


def _obj(**props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props}


def _recipient(**props: dict[str, Any]) -> dict[str, Any]:
    """The fields every per-recipient report row has (mailchimp-api.md §10.3)."""
    return _obj(
        campaign_id=_STR,
        list_id=_STR,
        list_is_active=_BOOL,
        email_id=_STR,
        email_address=_STR,
        merge_fields=_OBJ,
        vip=_BOOL,
        _links=_LINKS,
        **props,
    )


def _member() -> dict[str, Any]:
    """The member object: the file's batch-subscribe `new_members` items, its one intact copy,
    with `archived` among the statuses (a member read back after `DELETE` is archived:
    mailchimp-api.md §6.4; the file's `getListsIdMembers` `status` filter lists it too)."""
    schema: dict[str, Any] = openapi_types()["responses"]["POST /lists/{list_id}"]
    member: dict[str, Any] = copy.deepcopy(schema["properties"]["new_members"]["items"])
    status = member["properties"]["status"]
    status["enum"] = [*status["enum"], "archived"]
    return member


# Known defect of the 3.0.55 file (shared/reference/README.md; mailchimp-api.md §1 [SPEC]): some
# schemas are wrongly de-duplicated -- the item (or single-resource) schema was replaced by the
# collection schema, whose array items refer to the collection itself. The generator marks such
# items `{"x-recursive-ref": <schema name>}`; here each name maps to the item's correct shape and its
# source. Single-resource operations (a path ending in a parameter, or a write) answer the item
# itself; collections get their items fixed. Nothing is skipped: an unknown name fails the suite.
SPEC_DEFECTS: dict[str, tuple[str, dict[str, Any]]] = {
    "List_Members_2": ("member object, mailchimp-api.md §6.4", _member()),
    "Email_Activity": (
        "email-activity row, mailchimp-api.md §10.3",
        _recipient(
            activity={
                "type": "array",
                "items": _obj(action=_STR, type=_STR, timestamp=_STR, url=_STR, ip=_STR),
            }
        ),
    ),
    "Sent_To": (
        "sent-to row, mailchimp-api.md §10.3",
        _recipient(
            status=_STR, open_count=_INT, last_open=_STR, absplit_group=_STR, gmt_offset=_INT
        ),
    ),
    "Unsubscribes": (
        "unsubscribed row, mailchimp-api.md §10.3",
        _recipient(timestamp=_STR, reason=_STR),
    ),
    "Click_Detail_Report": (
        "click-details url, mailchimp-api.md §10.3",
        _obj(
            id=_STR,
            url=_STR,
            total_clicks=_INT,
            click_percentage=_NUM,
            unique_clicks=_INT,
            unique_click_percentage=_NUM,
            last_click=_STR,
            ab_split=_OBJ,
            campaign_id=_STR,
            _links=_LINKS,
        ),
    ),
    "List_Webhooks": (
        "webhook: the fields of the file's webhook request body plus id/list_id (mailchimp-api.md §1)",
        _obj(
            id=_STR,
            url=_STR,
            events=_OBJ,
            sources=_OBJ,
            list_id=_STR,
            _links=_LINKS,
        ),
    ),
    "Growth_History": (
        "growth-history month (not emulated): an object",
        _OBJ,
    ),
}


def _fix_items(node: Any) -> Any:
    """A copy of `node` with every `{"x-recursive-ref": name}` replaced by the item's shape."""
    if not isinstance(node, dict):
        return node
    if "x-recursive-ref" in node:
        name = node["x-recursive-ref"]
        assert name in SPEC_DEFECTS, f"unhandled de-duplicated schema {name}"
        return SPEC_DEFECTS[name][1]
    return {
        k: _fix_items(v) if k == "items" else _fix_props(v) if k == "properties" else v
        for k, v in node.items()
    }


def _fix_props(props: dict[str, Any]) -> dict[str, Any]:
    return {name: _fix_items(sub) for name, sub in props.items()}


def _recursive_name(schema: dict[str, Any]) -> str | None:
    for sub in schema.get("properties", {}).values():
        ref = sub.get("items", {}).get("x-recursive-ref") if isinstance(sub, dict) else None
        if ref is not None:
            return str(ref)
    return None


def response_schema(key: str) -> dict[str, Any]:
    """The 200 schema used for an operation, de-duplication defects repaired (see SPEC_DEFECTS)."""
    schema: dict[str, Any] = openapi_types()["responses"][key]
    method, path = key.split(" ", 1)
    name = _recursive_name(schema)
    if name is not None and (method != "GET" or path.endswith("}")):
        assert name in SPEC_DEFECTS, f"unhandled de-duplicated schema {name}"
        return SPEC_DEFECTS[name][1]
    fixed: dict[str, Any] = _fix_items(schema)
    return fixed


@functools.cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    """(regex, "METHOD /template") for every response schema, literal segments first."""
    out = []
    for key in openapi_types()["responses"]:
        method, path = key.split(" ", 1)
        pattern = re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(path))
        out.append((re.compile(f"^{method} {pattern}$"), key))
    # a literal segment beats a parameter: sort by the number of parameters
    out.sort(key=lambda item: item[1].count("{"))
    return out


def operation_of(method: str, path: str) -> str | None:
    """The OpenAPI operation (`METHOD /template`) a request path (relative to /3.0) belongs to."""
    probe = f"{method.upper()} {path.rstrip('/') or '/'}"
    for regex, key in _templates():
        if regex.match(probe):
            return key
    return None


def _enum_or_unset(validator: Any, enums: Any, instance: Any, schema: Any) -> Any:
    """`enum`, except that `""` is accepted: Mailchimp answers an unset string field as `""`
    (reference §2: unset timestamps, a fresh batch's `completed_at`/`response_body_url`), which
    the enums of the 3.0.55 file do not list (e.g. an order's `tracking_code`: `["prec"]`)."""
    if instance != "" and instance not in enums:
        yield ValidationError(f"{instance!r} is not one of {enums!r}")


_Validator = validators.extend(Draft7Validator, {"enum": _enum_or_unset})

_PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "instance"],
    "properties": {
        "type": _STR,
        "title": _STR,
        "status": _INT,
        "detail": _STR,
        "instance": _STR,
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}
# Problem documents recorded without `type` (Member Exists, Member In Compliance State).
_PROBLEM_NO_TYPE = {**_PROBLEM, "required": ["title", "status", "detail", "instance"]}


_CAMPAIGN_TYPES = ["regular", "plaintext", "absplit", "rss", "variate"]


def _allow_automation_type(node: Any) -> Any:
    """`node` with the Campaign `type` enum extended by `automation` (the defect named above)."""
    if isinstance(node, list):
        return [_allow_automation_type(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("enum") == _CAMPAIGN_TYPES:
        return {**node, "enum": [*_CAMPAIGN_TYPES, "automation"]}
    return {key: _allow_automation_type(value) for key, value in node.items()}


@functools.cache
def _validator(key: str) -> Any:
    return _Validator(_allow_automation_type(response_schema(key)))


SAMPLE = 40  # items per array checked: a page of 1,000 members would take a second to validate


def _sample(node: Any) -> Any:
    """`node` with every array cut to its first SAMPLE items (shapes repeat; time does not)."""
    if isinstance(node, list):
        return [_sample(item) for item in node[:SAMPLE]]
    if isinstance(node, dict):
        return {key: _sample(value) for key, value in node.items()}
    return node


def response_problems(method: str, path: str, body: Any) -> list[str]:
    """What in `body` contradicts the operation's 200 schema (empty when it conforms)."""
    key = operation_of(method, path)
    if key is None:
        return []
    return [
        f"{key}: {'.'.join(str(p) for p in e.path) or '<root>'}: {e.message}"
        for e in _validator(key).iter_errors(_sample(body))
    ]


def check_response(method: str, path: str, resp: Any) -> None:
    """Assert that one response of the suite conforms: a 200 JSON body to its operation's schema;
    every error (4xx/5xx) to the Problem Detail Document (`application/problem+json`)."""
    ctype = resp.headers.get("content-type", "")
    if resp.status_code >= 400:
        assert resp.status_code < 500, f"{method} {path}: {resp.status_code} {resp.text[:300]}"
        assert ctype.startswith("application/problem+json"), f"{method} {path}: {ctype}"
        body = resp.json()
        schema = _PROBLEM if "type" in body else _PROBLEM_NO_TYPE
        errors = [e.message for e in Draft7Validator(schema).iter_errors(body)]
        assert not errors, f"{method} {path}: {errors}"
        assert body["status"] == resp.status_code
        return
    if resp.status_code == 200 and ctype.startswith("application/json"):
        problems = response_problems(method, path.split("?", 1)[0], resp.json())
        assert not problems, "response contradicts the OpenAPI schema:\n" + "\n".join(problems[:10])
