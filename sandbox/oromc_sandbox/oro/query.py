"""List queries: filters, sorting, paging, sparse fieldsets, include, pagination links (§3.2-3.5)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .jsonapi import ApiError, err, fail, parse_datetime_filter, rfc3986_query
from .schema import (
    F_ASSOC,
    F_BOOL,
    F_DATETIME,
    F_ID,
    F_INT,
    OPERATORS,
    RESOURCES,
    Filter,
    Resource,
    rel_enabled,
)
from .store import OroStore

_FILTER_KEY = re.compile(r"^filter\[([^\[\]]+)\](?:\[([^\[\]]*)\])?$")
_FIELDS_KEY = re.compile(r"^fields\[([^\[\]]+)\]$")
_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n"}
DEFAULT_PAGE_SIZE = 10


@dataclass
class Cond:
    """One parsed filter condition."""

    field: str
    op: str
    spec: Filter
    values: list[Any] | None = None  # eq/neq lists
    range: tuple[Any, Any] | None = None  # inclusive (start, end) for a..b
    period: tuple[int, int] | None = None  # datetime eq/neq/compare: [start, end)
    scalar: Any = None
    flag: bool | None = None  # exists


@dataclass
class ListQuery:
    """A parsed list request."""

    conds: list[Cond] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    page_size: int = DEFAULT_PAGE_SIZE
    page_number: int = 1
    fields: dict[str, set[str]] = field(default_factory=dict)
    include: list[list[str]] = field(default_factory=list)
    has_filters: bool = False
    meta_title: bool = False


def _string_list(key: str, value: str) -> list[str]:
    """Oro's comma list parameter: no empty value, no leading/trailing comma; items are not trimmed."""
    if value == "":
        raise fail(400, "filter constraint", 'Expected string value. Given "".', parameter=key)
    if value.startswith(",") or value.endswith(","):
        raise fail(400, "filter constraint", f'Expected an array of strings. Given "{value}".', parameter=key)
    return value.split(",")


def parse_fields_include(res: Resource, params: list[tuple[str, str]], switches: dict[str, Any],
                         query: ListQuery) -> None:
    """``fields[type]``, ``include`` and ``meta`` (shared by item and list requests)."""
    for key, value in params:
        m = _FIELDS_KEY.match(key)
        if key == "fields" or key == "fields[]":
            raise fail(400, "filter constraint", "An entity type is not specified.", parameter=key)
        if m:
            if m.group(1) not in RESOURCES:
                raise fail(400, "filter constraint", "An entity type is not known.", parameter=key)
            query.fields[m.group(1)] = set() if value == "" else set(_string_list(key, value))
        elif key == "include":
            for path in _string_list(key, value):
                parts = path.split(".")
                if _include_path_exists(res, parts, switches):
                    query.include.append(parts)
        elif key == "meta":
            if value != "title" or not res.title_meta:
                raise fail(400, "filter constraint", "The filter is not supported.", parameter=key)
            query.meta_title = True


def _include_path_exists(res: Resource, parts: list[str], switches: dict[str, Any]) -> bool:
    """Unknown relationships in ``include`` are ignored, as Oro does."""
    current: Resource | None = res
    for part in parts:
        rel = current.rel(part) if current else None
        if rel is None or not rel_enabled(rel, switches):
            return False
        current = RESOURCES.get(rel.target) if rel.target else None
    return True


KNOWN_PARAMS = ("include", "sort", "meta", "page[size]", "page[number]")


def check_known_params(params: list[tuple[str, str]], item: bool = False) -> None:
    """Any other query parameter is an unknown filter (an item request has no filters, sort or paging)."""
    known = ("include", "meta") if item else KNOWN_PARAMS
    for key, _ in params:
        if key in known or key.startswith("fields") or (not item and key.startswith("filter[")):
            continue
        raise fail(400, "filter constraint", "The filter is not supported.", parameter=key)


def parse_list_query(res: Resource, params: list[tuple[str, str]], switches: dict[str, Any],
                     id_is_int: bool) -> ListQuery:
    """Parse and validate the query string of a list request."""
    query = ListQuery()
    check_known_params(params)
    errors: list[dict[str, Any]] = []
    for key, value in params:
        try:
            if key.startswith("filter["):
                cond = _parse_filter(res, key, value, switches, id_is_int)
                query.conds.append(cond)
                query.has_filters = True
            elif key == "page[size]":
                query.page_size = _int_param(key, value, minimum=-1)
            elif key == "page[number]":
                query.page_number = _int_param(key, value, minimum=1)
            elif key == "sort":
                query.sort = _parse_sort(res, value, switches)
        except ApiError as exc:
            errors.extend(exc.errors)
    if errors:
        raise ApiError(400, errors)
    parse_fields_include(res, params, switches, query)
    return query


def _int_param(key: str, value: str, minimum: int) -> int:
    if not re.fullmatch(r"-?\d+", value.strip()):
        raise fail(400, "filter constraint", f'Expected integer value. Given "{value}".', parameter=key)
    number = int(value)
    if number < minimum:
        raise fail(400, "filter constraint", f"The value should be greater than or equals to {minimum}.",
                   parameter=key)
    return number


def _parse_sort(res: Resource, value: str, switches: dict[str, Any]) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    bad: list[str] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        desc = part.startswith("-")
        name = part[1:] if desc else part
        if name not in res.sorters or (res.sorters[name] and not switches.get(str(res.sorters[name]))):
            bad.append(name)
            continue
        out.append((name, desc))
    if bad:
        detail = (f'Sorting by "{bad[0]}" field is not supported.' if len(bad) == 1
                  else f'Sorting by "{", ".join(bad)}" fields are not supported.')
        raise fail(400, "sort constraint", detail, parameter="sort")
    return out


def _parse_filter(res: Resource, key: str, value: str, switches: dict[str, Any], id_is_int: bool) -> Cond:
    m = _FILTER_KEY.match(key)
    name = m.group(1) if m else ""
    spec = res.filters.get(name) if m else None
    if spec is None or (spec.switch and not switches.get(spec.switch)):
        raise fail(400, "filter constraint", "The filter is not supported.", parameter=key)
    assert m is not None
    op = m.group(2) or "eq"
    allowed = OPERATORS[spec.kind]
    rel = res.rel(name)
    if spec.kind == F_ASSOC and rel is not None and rel.many:
        allowed = ("eq", "exists")
    if op not in allowed:
        raise fail(400, "filter constraint", f'The operator "{op}" is not supported.', parameter=f"filter[{name}]")
    cond = Cond(name, op, spec)
    if op == "exists":
        cond.flag = _bool(key, value)
        return cond
    kind = spec.kind
    if kind == F_ASSOC:
        target = _assoc_target(res, name)
        kind = F_INT if _int_ids(target) else "str"
    elif kind == F_ID:
        kind = F_INT if id_is_int else "str"
    convert: Callable[[str], Any] = {
        F_INT: lambda v: _int_value(key, v), F_BOOL: lambda v: _bool(key, v), "str": lambda v: v,
    }.get(kind, lambda v: v)
    if kind == F_DATETIME:
        return _datetime_cond(cond, key, value)
    if ".." in value and kind == F_INT and op in ("eq", "neq"):
        lo, _, hi = value.partition("..")
        cond.range = (convert(lo), convert(hi))
        return cond
    if op in ("eq", "neq", "neq_or_null"):
        parts = value.split(",") if spec.allows_array else [value]
        cond.values = [convert(p) for p in parts]
        return cond
    cond.scalar = convert(value)
    return cond


def _datetime_cond(cond: Cond, key: str, value: str) -> Cond:
    def parse(text: str) -> tuple[int, int]:
        period = parse_datetime_filter(text)
        if period is None:
            raise fail(400, "filter constraint", f'Expected datetime value. Given "{text}".', parameter=key)
        return period

    if ".." in value and cond.op in ("eq", "neq"):
        lo, _, hi = value.partition("..")
        cond.range = (parse(lo)[0], parse(hi)[1] - 1)
        return cond
    cond.period = parse(value)
    return cond


def _assoc_target(res: Resource, name: str) -> str | None:
    spec = res.filters[name]
    if spec.via:
        rel = res.rel(spec.via[0])
        target = RESOURCES.get(rel.target) if rel and rel.target else None
        sub = target.rel(spec.via[1]) if target else None
        return sub.target if sub else None
    rel = res.rel(name)
    return rel.target if rel else None


_STRING_ID_TYPES = {"marketingactivitytypes", "orderinternalstatuses", "orderstatuses", "customerratings",
                    "countries", "regions", "productunits", "customeruserauthstatuses"}


def _int_ids(type_: str | None) -> bool:
    return type_ not in _STRING_ID_TYPES


def _int_value(key: str, value: str) -> int:
    if not re.fullmatch(r"-?\d+", value.strip()):
        raise fail(400, "filter constraint", f'Expected integer value. Given "{value}".', parameter=key)
    return int(value)


def _bool(key: str, value: str) -> bool:
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise fail(400, "filter constraint", f'Expected boolean value. Given "{value}".', parameter=key)


# ---- evaluation -----------------------------------------------------------------------------
def _getter(store: OroStore, res: Resource, name: str) -> Callable[[Any], Any]:
    tbl = store.table(res.type)
    if name == "id":
        return lambda rid: rid
    spec = res.filters.get(name)
    if spec is not None and spec.via:
        rel_name, sub = spec.via
        via_rel = res.rel(rel_name)
        assert via_rel is not None
        assert via_rel.target is not None
        parent = store.table(via_rel.target)

        def via(rid: Any) -> Any:
            link = tbl.value(rid, rel_name)
            if isinstance(link, list):
                link = link[0] if link else None
            return None if link is None else parent.value(link, sub)

        return via
    rel = res.rel(name)
    if rel is not None and rel.computed and rel.inverse is not None:
        child_table, child_field = rel.inverse
        children = store.table(child_table)
        return lambda rid: children.children(child_field, rid)
    return lambda rid: tbl.value(rid, name)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _predicate(cond: Cond, get: Callable[[Any], Any]) -> Callable[[Any], bool]:
    op = cond.op
    if op == "exists":
        want = cond.flag
        return lambda rid: bool(_as_list(get(rid))) is want
    if cond.range is not None:
        lo, hi = cond.range
        inside = lambda rid: any(lo <= v <= hi for v in _as_list(get(rid)))  # noqa: E731
        return inside if op == "eq" else (lambda rid: bool(_as_list(get(rid))) and not inside(rid))
    if cond.period is not None:
        start, end = cond.period
        compare: dict[str, Callable[[Any], bool]] = {
            "eq": lambda v: start <= v < end, "neq": lambda v: not start <= v < end,
            "neq_or_null": lambda v: not start <= v < end,
            "lt": lambda v: v < start, "lte": lambda v: v <= start, "gt": lambda v: v > start,
            "gte": lambda v: v >= start,
        }
        test = compare[op]
        if op == "neq_or_null":
            return lambda rid: (v := get(rid)) is None or test(v)
        return lambda rid: (v := get(rid)) is not None and test(v)
    if cond.values is not None:
        wanted = set(cond.values)
        if op == "eq":
            return lambda rid: any(v in wanted for v in _as_list(get(rid)))
        if op == "neq":
            return lambda rid: bool(vals := _as_list(get(rid))) and not any(v in wanted for v in vals)
        return lambda rid: not any(v in wanted for v in _as_list(get(rid)))
    x = cond.scalar
    cmp: dict[str, Callable[[Any], bool]] = {
        "lt": lambda v: v < x, "lte": lambda v: v <= x, "gt": lambda v: v > x, "gte": lambda v: v >= x,
    }
    test = cmp[op]
    return lambda rid: any(test(v) for v in _as_list(get(rid)) if isinstance(v, type(x)))


def _id_window(store: OroStore, res: Resource, conds: list[Cond]) -> Iterable[Any] | None:
    """Ids narrowed by ``filter[id][gt|gte|lt|lte]`` / ``a..b`` without a full scan (keyset paging)."""
    tbl = store.table(res.type)
    if isinstance(tbl.ids(), list) or not hasattr(tbl, "alive"):
        return None
    lo, hi = 1, tbl.n
    narrowed = False
    for cond in conds:
        if cond.field != "id":
            continue
        if cond.range is not None and cond.op == "eq":
            lo, hi, narrowed = max(lo, cond.range[0]), min(hi, cond.range[1]), True
        elif isinstance(cond.scalar, int) and cond.op in ("gt", "gte", "lt", "lte"):
            x = cond.scalar
            if cond.op in ("gt", "gte"):
                lo = max(lo, x + 1 if cond.op == "gt" else x)
            else:
                hi = min(hi, x - 1 if cond.op == "lt" else x)
            narrowed = True
    if not narrowed:
        return None
    window = range(max(lo, 1), hi + 1)
    return window if not tbl.deleted else [rid for rid in window if tbl.exists(rid)]


def _fast_ids(store: OroStore, res: Resource, conds: list[Cond]) -> Iterable[Any] | None:
    """Candidate ids from an exact e-mail / identifier condition without a full scan."""
    window = _id_window(store, res, conds)
    if window is not None:
        return window
    for cond in conds:
        if cond.op == "eq" and cond.values is not None:
            if res.type == "customerusers" and cond.field == "email":
                return sorted({rid for v in cond.values for rid in store.find_users_by_email(v)})
            if cond.field == "id":
                tbl = store.table(res.type)
                return sorted({v for v in cond.values if tbl.exists(v)}, key=_id_sort_key)
            tbl = store.table(res.type)
            if cond.spec.kind == F_ASSOC and not cond.spec.via and cond.field in getattr(tbl, "indexed", ()):
                # a foreign key the table indexes (e.g. filter[customerUser] on acceptances)
                return sorted({rid for v in cond.values for rid in tbl.children(cond.field, v)})
    return None


def _id_sort_key(value: Any) -> Any:
    return (0, value, "") if isinstance(value, int) else (1, 0, str(value))


def select(store: OroStore, res: Resource, query: ListQuery, base_ids: Iterable[Any] | None = None) -> list[Any]:
    """Ids matching the filters, sorted, before paging."""
    tbl = store.table(res.type)
    default_order = not query.sort or query.sort == [("id", False)]
    if base_ids is None and not query.conds and default_order:
        all_ids = tbl.ids()
        return all_ids if isinstance(all_ids, range) else list(all_ids)  # type: ignore[return-value]
    cache_key = None
    if base_ids is None:
        scrambled = all(name != "id" for name, _ in query.sort) and not default_order
        cache_key = (res.type, repr(query.conds), tuple(query.sort), query.page_number if scrambled else 0,
                     store.version())
        cached = store.query_cache.get(cache_key)
        if cached is not None:
            store.query_cache.move_to_end(cache_key)
            return cached
    candidates = base_ids
    if candidates is None:
        candidates = _fast_ids(store, res, query.conds)
    if candidates is None:
        candidates = tbl.ids()
    conds = sorted(query.conds, key=lambda c: 0 if c.field in getattr(tbl, "cols", {}) or c.field == "id" else 1)
    ids: Iterable[Any] = candidates
    for cond in conds:
        pred = _predicate(cond, _getter(store, res, cond.field))
        ids = [rid for rid in ids if pred(rid)]
    result = list(ids)
    if not default_order:
        result = _sorted(store, res, result, query)
    if cache_key is not None and len(result) > 500:
        store.query_cache[cache_key] = result
        while len(store.query_cache) > 16:
            store.query_cache.popitem(last=False)
    return result


def _sorted(store: OroStore, res: Resource, ids: list[Any], query: ListQuery) -> list[Any]:
    """Stable multi-key sort; NULLs last ascending / first descending (PostgreSQL).

    Without ``id`` among the keys there is no tie-breaker: ties come back in an order that
    changes with the page number, as a database may return them.
    """
    keys = query.sort
    if all(name != "id" for name, _ in keys):
        salt = query.page_number * 0x9E3779B1
        ids = sorted(ids, key=lambda rid: (hash((rid, salt)) & 0xFFFFFFFF))
    for name, desc in reversed(keys):
        if name == "id":
            ids.sort(key=_id_sort_key, reverse=desc)
            continue
        get = _getter(store, res, name)
        present = [(get(rid), rid) for rid in ids]
        nulls = [rid for value, rid in present if value is None]
        values = [(value, rid) for value, rid in present if value is not None]
        values.sort(key=lambda pair: pair[0], reverse=desc)
        ordered = [rid for _, rid in values]
        ids = nulls + ordered if desc else ordered + nulls
    return ids


def page_of(ids: list[Any], query: ListQuery) -> tuple[list[Any], bool]:
    """(page ids, has_more)."""
    if query.page_size == -1:
        return ids, False
    start = (query.page_number - 1) * query.page_size
    end = start + query.page_size
    return ids[start:end], len(ids) > end


# ---- links ----------------------------------------------------------------------------------
def _php_nest(params: list[tuple[str, str]]) -> dict[str, Any]:
    """Parse query pairs into PHP-style nested arrays (insertion ordered; last value wins)."""
    root: dict[str, Any] = {}
    for key, value in params:
        m = re.match(r"^([^\[]+)((?:\[[^\]]*\])*)$", key)
        if not m:
            root[key] = value
            continue
        parts = [m.group(1), *re.findall(r"\[([^\]]*)\]", m.group(2))]
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    return root


def _php_flatten(node: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in node.items():
        name = f"{prefix}[{key}]" if prefix else key
        if isinstance(value, dict):
            out.extend(_php_flatten(value, name))
        else:
            out.append((name, value))
    return out


def page_link(url: str, params: list[tuple[str, str]], number: int | None) -> str:
    """The list URL with the current query and ``page[number]`` set (or removed when None)."""
    nested = _php_nest(params)
    page = nested.get("page")
    if not isinstance(page, dict):
        page = {}
        nested["page"] = page
    if number is None:
        page.pop("number", None)
    else:
        page["number"] = str(number)
    if not page:
        nested.pop("page")
    query = rfc3986_query(_php_flatten(nested))
    return f"{url}?{query}" if query else url


def list_links(url: str, params: list[tuple[str, str]], query: ListQuery, has_more: bool) -> dict[str, str]:
    """``self``/``first``/``prev``/``next`` (never ``last``)."""
    links = {"self": url}
    number = query.page_number
    if query.page_size != -1 and number > 1:
        links["first"] = page_link(url, params, None)
        links["prev"] = page_link(url, params, None if number == 2 else number - 1)
    if has_more:
        links["next"] = page_link(url, params, number + 1)
    return links


def bad_param_errors(errors: list[dict[str, Any]]) -> ApiError:
    """Wrap several parameter errors."""
    return ApiError(400, errors or [err(400, "filter constraint")])
