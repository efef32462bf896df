"""The denormalised ``contacts`` stream (DESIGN.md section 3): one row per customer user.

``updated_at`` of a contact is the latest of: the user's ``updatedAt``, the ``updatedAt`` of any of
the user's addresses (phone), the customer's ``updatedAt`` (account name, group assignment), and
the moment a change of the customer group's name or of a tag's name was first seen (Oro keeps no
timestamp on groups; names are fingerprinted in this stream's state). So a contact is emitted again
whenever any value it carries moves, and only then.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from oromc_common.oro import format_oro_datetime, parse_oro_datetime
from singer_sdk import typing as th
from typing_extensions import override

from tap_orocommerce.client import MODE_SCAN, Field, OroStream, fingerprint

LOOKUPS = "lookups"


class ContactsStream(OroStream):
    """Marketing view of customer users: contact info, account, group, tags, flags."""

    name = "contacts"
    resource = "customerusers"
    replication_key = "updated_at"
    default_mode = MODE_SCAN
    primary_keys: ClassVar[list[str]] = ["customer_user_id"]
    columns: ClassVar[tuple[Field, ...]] = ()
    user_fields: ClassVar[tuple[str, ...]] = (
        "email", "firstName", "lastName", "enabled", "confirmed", "isGuest",
        "createdAt", "updatedAt", "customer",
    )  # fmt: skip

    def __init__(self, tap: Any) -> None:
        self.tagging = True
        self._groups: dict[int, str] = {}
        self._group_changed: dict[int, str] = {}
        self._customers: dict[int, tuple[str | None, int | None, str]] = {}
        self._addresses: dict[int, list[Any]] = {}
        self._tags: dict[int, str] = {}
        self._tag_changed: dict[int, str] = {}
        self._new_lookups: dict[str, dict[str, list[Any]]] = {}
        super().__init__(tap)

    @classmethod
    @override
    def build_schema(cls) -> dict[str, Any]:
        return th.PropertiesList(
            th.Property("customer_user_id", th.IntegerType(), required=True,
                        description="Oro customer user id (primary key)."),
            th.Property("email", th.StringType(), required=True, description="Email address."),
            th.Property("first_name", th.StringType()),
            th.Property("last_name", th.StringType()),
            th.Property("phone", th.StringType(), description="Phone of the primary address."),
            th.Property("primary_address_id", th.IntegerType(),
                        description="Oro id of the primary address (where the phone lives)."),
            th.Property("customer_id", th.IntegerType(), description="Oro customer (account) id."),
            th.Property("customer_name", th.StringType(), description="Account name."),
            th.Property("customer_group_id", th.IntegerType()),
            th.Property("customer_group_name", th.StringType(), description="Customer group name."),
            th.Property("tags", th.ArrayType(th.StringType()), required=True,
                        description="Oro tag names of the customer user (sorted)."),
            th.Property("enabled", th.BooleanType()),
            th.Property("confirmed", th.BooleanType()),
            th.Property("is_guest", th.BooleanType()),
            th.Property("created_at", th.DateTimeType()),
            th.Property("updated_at", th.DateTimeType(), required=True,
                        description="Latest change of any value carried by this row."),
        ).to_dict()  # fmt: skip

    @override
    def sparse_fields(self) -> list[str]:
        names = list(self.user_fields)
        if self.tagging:
            names.append("tags")
        return names

    # -- lookups ----------------------------------------------------------------------------

    @override
    def prepare_sync(self) -> None:
        super().prepare_sync()
        old = self.stream_state.get(LOOKUPS) or {}
        changed_at = self._change_stamp()
        self._new_lookups = {"groups": {}, "tags": {}}

        self._groups = {}
        for res in self.iter_resource("customergroups", ["name"]):
            gid = int(res["id"])
            self._groups[gid] = str((res.get("attributes") or {}).get("name") or "")
        self._group_changed = self._track_changes("groups", self._groups, old, changed_at)

        self._tags, self._tag_changed = {}, {}
        if self.tagging:
            for res in self.iter_resource("tags", ["name"]):
                self._tags[int(res["id"])] = str((res.get("attributes") or {}).get("name") or "")
            self._tag_changed = self._track_changes("tags", self._tags, old, changed_at)

        self._customers = {}
        for res in self.iter_resource("customers", ["name", "updatedAt", "group"]):
            attrs = res.get("attributes") or {}
            group = ((res.get("relationships") or {}).get("group") or {}).get("data")
            self._customers[int(res["id"])] = (
                attrs.get("name"),
                int(group["id"]) if isinstance(group, dict) else None,
                attrs.get("updatedAt") or "",
            )

        # user id -> [max address updatedAt, primary address id, primary phone]
        self._addresses = {}
        for res in self.iter_resource(
            "customeruseraddresses", ["phone", "primary", "updatedAt", "customerUser"]
        ):
            user = ((res.get("relationships") or {}).get("customerUser") or {}).get("data")
            if not isinstance(user, dict):
                continue
            attrs = res.get("attributes") or {}
            entry = self._addresses.setdefault(int(user["id"]), ["", None, None])
            updated = attrs.get("updatedAt") or ""
            if updated > entry[0]:
                entry[0] = updated
            if attrs.get("primary") and (entry[1] is None or int(res["id"]) < entry[1]):
                entry[1] = int(res["id"])
                entry[2] = attrs.get("phone")

    def _change_stamp(self) -> str:
        """Time given to a group/tag name change first seen in this run (just before run start)."""
        start = self.oro_tap.run_started_at
        return (
            format_oro_datetime(parse_oro_datetime(start) - timedelta(seconds=1)) if start else ""
        )

    def _track_changes(
        self,
        kind: str,
        names: dict[int, str],
        old: dict[str, Any],
        changed_at: str,
    ) -> dict[int, str]:
        """Compare name fingerprints with the previous run; return id -> changed-at stamp."""
        previous: dict[str, list[Any]] = old.get(kind) or {}
        first_run = not previous
        result: dict[int, str] = {}
        for rid, name in names.items():
            digest = fingerprint({"name": name})
            before = previous.get(str(rid))
            if before is not None and before[0] == digest:
                stamp = before[1]
            else:
                stamp = "" if first_run else changed_at
            self._new_lookups[kind][str(rid)] = [digest, stamp]
            result[rid] = stamp
        return result

    @override
    def finish_sync(self) -> None:
        super().finish_sync()
        self.stream_state[LOOKUPS] = self._new_lookups

    # -- rows -------------------------------------------------------------------------------

    @override
    def flatten(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        try:
            uid = int(resource["id"])
        except (KeyError, TypeError, ValueError):
            self.oro_tap.report.reject(
                self.name,
                resource.get("id"),
                "invalid_id",
                "customer user without a numeric id",
                "id",
            )
            return None
        attrs = resource.get("attributes") or {}
        rels = resource.get("relationships") or {}
        email = attrs.get("email")
        updated = attrs.get("updatedAt")
        if not email or not isinstance(updated, str):
            field = "email" if not email else "updatedAt"
            self.oro_tap.report.reject(
                self.name, uid, f"missing_{field}", f"customer user has no {field}", field
            )
            return None
        cust = (rels.get("customer") or {}).get("data")
        cid = int(cust["id"]) if isinstance(cust, dict) else None
        cname, gid, cupdated = (
            self._customers.get(cid, (None, None, "")) if cid else (None, None, "")
        )
        addr = self._addresses.get(uid)
        tag_ids = [int(t["id"]) for t in ((rels.get("tags") or {}).get("data") or [])]
        stamps = [updated, cupdated]
        if addr:
            stamps.append(addr[0])
        if gid is not None:
            stamps.append(self._group_changed.get(gid, ""))
        stamps.extend(self._tag_changed.get(t, "") for t in tag_ids)
        return {
            "customer_user_id": uid,
            "email": email,
            "first_name": attrs.get("firstName"),
            "last_name": attrs.get("lastName"),
            "phone": addr[2] if addr else None,
            "primary_address_id": addr[1] if addr else None,
            "customer_id": cid,
            "customer_name": cname,
            "customer_group_id": gid,
            "customer_group_name": self._groups.get(gid) if gid is not None else None,
            "tags": sorted(n for n in (self._tags.get(t) for t in tag_ids) if n),
            "enabled": attrs.get("enabled"),
            "confirmed": attrs.get("confirmed"),
            "is_guest": attrs.get("isGuest"),
            "created_at": attrs.get("createdAt"),
            "updated_at": max(stamps),
        }

    @override
    def row_key(self, row: dict[str, Any]) -> str:
        return str(row["customer_user_id"])
