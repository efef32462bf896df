"""The Oro sandbox README's filter/sort table is the one `schema.py` serves (the README cannot drift)."""

from __future__ import annotations

from pathlib import Path

from oromc_sandbox.oro.schema import ACTIONS, READ_ONLY, RESOURCES, STRING_ID_TYPES, Resource

README = Path(__file__).resolve().parents[2] / "sandbox" / "oromc_sandbox" / "oro" / "README.md"


def _switch(name: str, switch: str | None) -> str:
    return f"{name} ({switch})" if switch else name


def row(res: Resource) -> str:
    """The README table row of one resource."""
    if "get_list" in res.actions:
        int_ids = res.type not in STRING_ID_TYPES
        filters = ", ".join(
            _switch(n + ("[]" if f.array and f.value_type(int_ids) == "string" else ""), f.switch)
            for n, f in res.filters.items())
        sorts = ", ".join(_switch(n, s) for n, s in res.sorters.items()) or "—"
    else:
        filters = sorts = "—"
    actions = (
        "all" if res.actions == ACTIONS else "get, get_list" if res.actions == READ_ONLY else ", ".join(res.actions)
    )
    batch = "yes" if res.batch else f"no (yes with switch `{res.batch_switch}`)" if res.batch_switch else "no"
    name = f"`{res.type}`" + (f" (switch `{res.switch}`)" if res.switch else "")
    return f"| {name} | {filters} | {sorts} | {actions} | {batch} |"


def test_readme_whitelist_table_matches_the_schema() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("| resource | filters | sorts | actions | Batch |")
    lines = text[start:].splitlines()[2:]
    table = []
    for line in lines:
        if not line.startswith("| `"):
            break
        table.append(line)
    assert table == [row(res) for res in RESOURCES.values()]
