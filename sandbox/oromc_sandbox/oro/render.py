"""Build JSON:API resource objects and documents on demand from stored records."""

from __future__ import annotations

from typing import Any

from .jsonapi import fmt_datetime
from .query import ListQuery
from .schema import DATETIME, MONEY, RESOURCES, Rel, Resource, rel_enabled
from .store import OroStore


class Renderer:
    """Renders records of one request (base URL, switches, fieldsets, HATEOAS on/off)."""

    def __init__(self, store: OroStore, base: str, switches: dict[str, Any], hateoas: bool,
                 fields: dict[str, set[str]] | None = None, meta_title: bool = False) -> None:
        self.store = store
        self.base = base  # e.g. http://127.0.0.1:8801/admin/api
        self.switches = switches
        self.hateoas = hateoas
        self.fields = fields or {}
        self.meta_title = meta_title
        self._plans: dict[str, tuple[list[tuple[str, str]], list[Rel]]] = {}

    def _plan(self, res: Resource) -> tuple[list[tuple[str, str]], list[Rel]]:
        """Attributes (name, kind) and relationships to render for ``res`` in this request."""
        plan = self._plans.get(res.type)
        if plan is None:
            wanted = self.fields.get(res.type)
            attrs = [(a.name, a.kind) for a in res.attrs
                     if not a.write_only and (wanted is None or a.name in wanted) and rel_enabled(a, self.switches)]
            rels = [r for r in res.rels
                    if (wanted is None or r.name in wanted) and rel_enabled(r, self.switches)]
            plan = (attrs, rels)
            self._plans[res.type] = plan
        return plan

    def resource(self, res: Resource, rid: Any, rec: dict[str, Any]) -> dict[str, Any]:
        """One resource object."""
        sid = str(rid)
        attrs_plan, rels_plan = self._plan(res)
        obj: dict[str, Any] = {"type": res.type, "id": sid}
        if self.meta_title and res.title_meta:
            obj["meta"] = {"title": title(res.type, rid, rec)}
        item_url = f"{self.base}/{res.type}/{sid}"
        if self.hateoas and "get" in res.actions:
            obj["links"] = {"self": item_url}
        attrs: dict[str, Any] = {}
        for name, kind in attrs_plan:
            value = rec.get(name)
            if kind == DATETIME:
                value = fmt_datetime(value)
            elif kind == MONEY and value is not None:
                value = str(value)
            attrs[name] = value
        if attrs:
            obj["attributes"] = attrs
        rels: dict[str, Any] = {}
        related_ids = self.store.related_ids
        for rel in rels_plan:
            raw = related_ids(res.type, rel, rid, rec)
            target = rel.target
            if rel.many:
                if target is None:
                    data: Any = [{"type": v[0], "id": str(v[1])} for v in raw]
                else:
                    data = [{"type": target, "id": str(v)} for v in raw]
            elif raw is None:
                data = None
            else:
                data = self._ident(target, raw)
            if self.hateoas:
                rels[rel.name] = {"links": {"self": f"{item_url}/relationships/{rel.name}",
                                            "related": f"{item_url}/{rel.name}"}, "data": data}
            else:
                rels[rel.name] = {"data": data}
        if rels:
            obj["relationships"] = rels
        return obj

    @staticmethod
    def _ident(target: str | None, value: Any) -> dict[str, str]:
        if isinstance(value, tuple):
            return {"type": value[0], "id": str(value[1])}
        return {"type": str(target), "id": str(value)}

    def included(self, res: Resource, records: list[tuple[Any, dict[str, Any]]],
                 query: ListQuery) -> list[dict[str, Any]]:
        """The ``included`` section for ``include`` paths (deduplicated, primary data excluded)."""
        seen: set[tuple[str, str]] = {(res.type, str(rid)) for rid, _ in records}
        out: list[dict[str, Any]] = []
        for path in query.include:
            level: list[tuple[Resource, Any, dict[str, Any]]] = [(res, rid, rec) for rid, rec in records]
            for part in path:
                nxt: list[tuple[Resource, Any, dict[str, Any]]] = []
                for owner, rid, rec in level:
                    rel = owner.rel(part)
                    if rel is None:
                        continue
                    raw = self.store.related_ids(owner.type, rel, rid, rec)
                    for value in (raw if rel.many else [raw]):
                        if value is None:
                            continue
                        type_, tid = value if isinstance(value, tuple) else (rel.target, value)
                        target = RESOURCES.get(str(type_))
                        child = self.store.get(str(type_), tid)
                        if target is None or child is None:
                            continue
                        nxt.append((target, tid, child))
                        key = (target.type, str(tid))
                        if key not in seen:
                            seen.add(key)
                            out.append(self.resource(target, tid, child))
                level = nxt
        return out


def title(type_: str, rid: Any, rec: dict[str, Any]) -> str:
    """The entity title ``meta=title`` returns (Oro's entity name provider, simplified)."""
    if type_ in ("customerusers", "customeruseraddresses", "users"):
        return " ".join(str(rec[k]) for k in ("firstName", "lastName") if rec.get(k)) or str(rid)
    for key in ("name", "label", "identifier", "code", "sku", "string", "role"):
        if rec.get(key):
            return str(rec[key])
    return str(rid)


def plain(res: Resource, rid: Any, rec: dict[str, Any], store: OroStore, switches: dict[str, Any]) -> dict[str, Any]:
    """The "plain" REST representation (non-JSON:API Accept): a flat object."""
    out: dict[str, Any] = {"id": rid}
    for attr in res.attrs:
        if attr.write_only or not rel_enabled(attr, switches):
            continue
        value = rec.get(attr.name)
        out[attr.name] = fmt_datetime(value) if attr.kind == DATETIME else value
    for rel in res.rels:
        if not rel_enabled(rel, switches):
            continue
        raw = store.related_ids(res.type, rel, rid, rec)
        if rel.many:
            out[rel.name] = [v[1] if isinstance(v, tuple) else v for v in raw]
        else:
            out[rel.name] = raw[1] if isinstance(raw, tuple) else raw
    return out
