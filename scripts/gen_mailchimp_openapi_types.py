"""Derive the sandbox's Mailchimp type table from Mailchimp's OpenAPI description.

    .venv/bin/python scripts/gen_mailchimp_openapi_types.py [path/to/mailchimp-openapi-3.0.55.yaml]
    .venv/bin/python scripts/gen_mailchimp_openapi_types.py --check [path]   # exit 1 when stale

Writes `sandbox/oromc_sandbox/mailchimp/openapi_types.json`: for every operation of the OpenAPI file,
the JSON types of its request body (`requests`, writes only) and of its 200 response (`responses`),
`$ref`s resolved, reduced to the keywords that describe types (`type`, `properties`, `items`,
`enum`), and the list of all operations (`operations`). The
sandbox type-checks every write body against `requests` (400 "Schema describes string, object found
instead", as Mailchimp's schema validation answers); the conformance suite validates every response
it receives against `responses` (enums included). Descriptions, titles and examples are not
carried over.

The OpenAPI file lives outside the repository (`../shared/reference/`, or `MAILCHIMP_OPENAPI`);
the project never reads it at run time, only this derived table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "sandbox" / "oromc_sandbox" / "mailchimp" / "openapi_types.json"
CANDIDATES = (
    ROOT.parent / "shared" / "reference" / "mailchimp-openapi-3.0.55.yaml",
    Path("/work/shared/reference/mailchimp-openapi-3.0.55.yaml"),
)
KEPT = ("type", "properties", "items", "enum")
WRITES = ("post", "put", "patch")


def find_spec(given: str | None) -> Path:
    for candidate in (given, os.environ.get("MAILCHIMP_OPENAPI"), *CANDIDATES):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    sys.exit("mailchimp-openapi-3.0.55.yaml not found: pass its path or set MAILCHIMP_OPENAPI")


def reduce(node: Any, schemas: dict[str, Any], seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The type skeleton of one schema (refs resolved).

    A recursive ref (the 3.0.55 file's wrongly de-duplicated collections, whose items refer to the
    collection itself) becomes `{"x-recursive-ref": name}`: no type, so consumers must handle it.
    """
    if not isinstance(node, dict):
        return {}
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in seen:
            return {"x-recursive-ref": name}
        return reduce(schemas[name], schemas, (*seen, name))
    out: dict[str, Any] = {}
    for key in KEPT:
        if key not in node:
            continue
        value = node[key]
        if key == "properties":
            out[key] = {name: reduce(sub, schemas, seen) for name, sub in sorted(value.items())}
        elif key == "items":
            out[key] = reduce(value, schemas, seen)
        else:
            out[key] = value
    return out


def build(spec: dict[str, Any]) -> dict[str, Any]:
    schemas = spec["components"]["schemas"]
    operations: list[str] = []
    requests: dict[str, Any] = {}
    responses: dict[str, Any] = {}
    for path, ops in sorted(spec["paths"].items()):
        for method, op in sorted(ops.items()):
            if not isinstance(op, dict) or "responses" not in op:
                continue
            key = f"{method.upper()} {path}"
            operations.append(key)
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            if method in WRITES and "schema" in body:
                requests[key] = reduce(body["schema"], schemas)
            ok = op["responses"].get("200", {}).get("content", {}).get("application/json", {})
            if "schema" in ok:
                responses[key] = reduce(ok["schema"], schemas)
    return {
        "source": f"Mailchimp Marketing API OpenAPI {spec['info']['version']} (types only)",
        "operations": operations,
        "requests": requests,
        "responses": responses,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("spec", nargs="?")
    parser.add_argument("--check", action="store_true", help="exit 1 when the table is stale")
    args = parser.parse_args()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load(find_spec(args.spec).read_text(encoding="utf-8"), Loader=loader)  # noqa: S506
    # one value per line: regenerations give reviewable diffs
    text = json.dumps(build(spec), sort_keys=True, indent=0, separators=(",", ":")) + "\n"
    if args.check:
        stale = not OUT.is_file() or OUT.read_text(encoding="utf-8") != text
        print(f"{OUT.relative_to(ROOT)}: {'stale' if stale else 'up to date'}")
        return 1 if stale else 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
