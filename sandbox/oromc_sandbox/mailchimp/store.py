"""In-memory state of the emulated Mailchimp account: audiences, members, tags, segments, batches.

Members are plain dicts kept per audience in insertion order, keyed by subscriber hash. Times are
stored as POSIX floats (fast to compare and sort) and formatted only when a member is rendered.

Internal member record (what `get_member` returns; treat it as read-only outside this module):
`id` (subscriber hash), `email_address`, `unique_email_id`, `contact_id`, `web_id`, `email_type`,
`status`, `unsubscribe_reason`, `merge_fields` (dict), `ip_signup`, `ts_signup` (float|None),
`ip_opt`, `ts_opt` (float|None), `member_rating`, `lc` (last_changed, float), `language`, `vip`,
`email_client`, `location` (dict|None), `source`, `tags` (dict tag id -> date_added float),
`avg_open_rate`, `avg_click_rate`, `events` (list|None), `activity` (list|None), `last_note`.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .values import format_epoch, parse_ts, short_id, subscriber_hash

__all__ = ["Audience", "MailchimpStore"]

STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional", "archived")
ACTIVITY_CAP = 50
MEMBER_TAGS_SHOWN = 50


def _epoch(at: datetime | float | None) -> float | None:
    if at is None:
        return None
    if isinstance(at, (int, float)):
        return float(int(at))  # Mailchimp keeps whole seconds
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return float(int(at.timestamp()))


@dataclass
class Audience:
    """Everything that belongs to one list besides its public document and its members."""

    merge_fields: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_merge_id: int = 1
    segments: dict[int, dict[str, Any]] = field(default_factory=dict)  # static (= tags) and saved
    tag_index: dict[str, int] = field(default_factory=dict)  # lower-cased tag name -> segment id
    counts: Counter[str] = field(default_factory=Counter)  # members per status
    forgotten: set[str] = field(default_factory=set)  # subscriber hashes permanently deleted
    contact_index: dict[str, str] = field(default_factory=dict)  # contact_id -> hash
    uid_index: dict[str, str] = field(default_factory=dict)  # unique_email_id -> hash
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    status_times: dict[str, list[float]] = field(
        default_factory=lambda: {"subscribed": [], "unsubscribed": [], "cleaned": []}
    )
    version: int = 0  # bumped on every member change (invalidates sort caches)
    membership_version: int = 0  # bumped when members are added or removed
    sort_cache: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def tag_by_name(self, name: str) -> dict[str, Any] | None:
        sid = self.tag_index.get(name.strip().lower())
        return self.segments.get(sid) if sid is not None else None


class MailchimpStore:
    """The account: lists, members, tags/segments, webhooks and batches."""

    def __init__(self, options: Any, clock: Any) -> None:
        self.options = options
        self.clock = clock
        self.oro_source: Any = None  # the Oro store seeded next to this one (e-commerce seed)
        self.seed_declined: set[str] = set()  # seeded addresses whose Oro consent is declined
        seed = int(getattr(options, "seed", 42))
        self.dc: str = str(getattr(options, "mailchimp_dc", "us21"))
        self.api_secret: str = short_id("api-key", seed, length=32)
        self.oauth_token: str = short_id("oauth-token", seed, length=32)
        self.account_id: str = short_id("account", seed, length=25)
        self.account: dict[str, Any] = {}
        self.lists: dict[str, dict[str, Any]] = {}
        self.members: dict[str, dict[str, dict[str, Any]]] = {}
        self.audiences: dict[str, Audience] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.batch_results: dict[str, bytes] = {}
        self.next_web_id: int = 100_000_001
        self.next_segment_id: int = 10_001
        # Engagement (campaigns, reports) contributes list stats via these hooks:
        # hook(list_id) -> dict merged into the list's `stats` (e.g. campaign_count, open_rate).
        self.list_stats_hooks: list[Callable[[str], dict[str, Any]]] = []
        # hook(list_id, subscriber_hash) whenever a member becomes `subscribed` (automation triggers).
        self.subscribe_hooks: list[Callable[[str, str], None]] = []
        # Free slot for the engagement part's own state (dumped if it has `dump()`).
        self.engagement: Any = None

    # ------------------------------------------------------------------ identity

    @property
    def api_key(self) -> str:
        return f"{self.api_secret}-{self.dc}"

    def sync_engagement(self) -> None:
        """Apply engagement events that are due by the sandbox clock (before any API read/write)."""
        engagement = self.engagement
        if engagement is not None and hasattr(engagement, "sync"):
            engagement.sync()

    def default_list_id(self) -> str:
        return next(iter(self.lists))

    def now(self) -> datetime:
        now: datetime = self.clock.now()
        return now

    # ------------------------------------------------------------------ lists

    def add_list(self, doc: dict[str, Any]) -> dict[str, Any]:
        list_id = doc["id"]
        self.lists[list_id] = doc
        self.members[list_id] = {}
        self.audiences[list_id] = Audience()
        return doc

    def list_stats(self, list_id: str) -> dict[str, Any]:
        """The `stats` object of a list, computed from the members."""
        aud = self.audiences[list_id]
        doc = self.lists[list_id]
        counts = aud.counts
        stats: dict[str, Any] = {
            "member_count": counts["subscribed"],
            "total_contacts": sum(v for k, v in counts.items() if k != "archived"),
            "unsubscribe_count": counts["unsubscribed"],
            "cleaned_count": counts["cleaned"],
            "member_count_since_send": 0,
            "unsubscribe_count_since_send": 0,
            "cleaned_count_since_send": 0,
            "campaign_count": 0,
            "campaign_last_sent": "",
            "merge_field_count": len(aud.merge_fields),
            "avg_sub_rate": doc.get("_avg_sub_rate", 0),
            "avg_unsub_rate": doc.get("_avg_unsub_rate", 0),
            "target_sub_rate": doc.get("_target_sub_rate", 0),
            "open_rate": 0,
            "click_rate": 0,
            "last_sub_date": format_epoch(aud.status_times["subscribed"][-1])
            if aud.status_times["subscribed"]
            else "",
            "last_unsub_date": format_epoch(aud.status_times["unsubscribed"][-1])
            if aud.status_times["unsubscribed"]
            else "",
        }
        for hook in self.list_stats_hooks:
            stats.update(hook(list_id))
        last_sent = stats.get("campaign_last_sent")
        if last_sent:
            sent_dt = parse_ts(last_sent)
            since = sent_dt.timestamp() if sent_dt else 0.0
            for key, status in (
                ("member_count_since_send", "subscribed"),
                ("unsubscribe_count_since_send", "unsubscribed"),
                ("cleaned_count_since_send", "cleaned"),
            ):
                times = aud.status_times[status]
                stats[key] = len(times) - bisect.bisect_right(times, since)
        return stats

    # ------------------------------------------------------------------ members: lookup

    def get_member(self, list_id: str, hash_: str) -> dict[str, Any] | None:
        """The internal member record (including archived), or None."""
        members = self.members.get(list_id)
        return members.get(hash_) if members is not None else None

    def iter_members(self, list_id: str) -> Iterator[dict[str, Any]]:
        """All member records of a list (any status, archived included), in insertion order."""
        return iter(self.members.get(list_id, {}).values())

    def resolve_member(self, list_id: str, key: str) -> str:
        """Subscriber hash for a path key: md5 hash, email address or contact_id."""
        if "@" in key:
            return subscriber_hash(key)
        low = key.lower()
        members = self.members.get(list_id, {})
        if low in members:
            return low
        return self.audiences[list_id].contact_index.get(key, low)

    # ------------------------------------------------------------------ members: writes

    def _changed(self, list_id: str, rec: dict[str, Any], at: float) -> None:
        rec["lc"] = max(float(int(at)), rec.get("lc") or 0.0)
        self.audiences[list_id].version += 1

    def create_member(
        self,
        list_id: str,
        email: str,
        status: str,
        at: datetime | float,
        *,
        merge_fields: dict[str, Any] | None = None,
        email_type: str = "html",
        source: str = "API - Generic",
        language: str = "",
        vip: bool = False,
        ip_signup: str = "",
        ts_signup: float | None = None,
        ip_opt: str = "",
        ts_opt: float | None = None,
        location: dict[str, Any] | None = None,
        member_rating: int = 2,
    ) -> dict[str, Any]:
        """Insert a new member (the caller has validated everything)."""
        when = _epoch(at) or 0.0
        email = email.strip()
        hash_ = subscriber_hash(email)
        aud = self.audiences[list_id]
        seed = getattr(self.options, "seed", 42)
        rec: dict[str, Any] = {
            "id": hash_,
            "email_address": email,
            "unique_email_id": short_id("uid", seed, email.lower()),
            "contact_id": short_id("contact", seed, email.lower(), length=32),
            "web_id": self.next_web_id,
            "email_type": email_type,
            "status": status,
            "unsubscribe_reason": "",
            "merge_fields": dict(merge_fields or {}),
            "ip_signup": ip_signup,
            "ts_signup": ts_signup,
            "ip_opt": ip_opt,
            "ts_opt": ts_opt if ts_opt is not None else (when if status == "subscribed" else None),
            "member_rating": member_rating,
            "lc": when,
            "language": language,
            "vip": vip,
            "email_client": "",
            "location": location,
            "source": source,
            "tags": {},
            "avg_open_rate": 0,
            "avg_click_rate": 0,
            "events": None,
            "activity": None,
            "last_note": None,
        }
        self.next_web_id += 1
        self.members[list_id][hash_] = rec
        aud.counts[status] += 1
        aud.contact_index[rec["contact_id"]] = hash_
        aud.uid_index[rec["unique_email_id"]] = hash_
        aud.forgotten.discard(hash_)
        if status in aud.status_times:
            aud.status_times[status].append(when)
        aud.version += 1
        aud.membership_version += 1
        if status == "subscribed":
            for hook in self.subscribe_hooks:
                hook(list_id, hash_)
        return rec

    def set_member_status(
        self,
        list_id: str,
        hash_: str,
        status: str,
        at: datetime | float,
        reason: str | None = None,
        source: str = "API - Generic",
    ) -> dict[str, Any] | None:
        """Change a member's status (unsubscribe, clean, archive, re-subscribe ...).

        Bumps `last_changed` and keeps the list stats right. No consent checks here: callers that
        act for an API client apply the status machine first. Returns the record (None if unknown).
        """
        rec = self.get_member(list_id, hash_)
        if rec is None:
            return None
        when = _epoch(at) or 0.0
        old = rec["status"]
        if old != status:
            aud = self.audiences[list_id]
            aud.counts[old] -= 1
            aud.counts[status] += 1
            rec["status"] = status
            if status in aud.status_times:
                aud.status_times[status].append(when)
            if status == "subscribed":
                rec["ts_opt"] = when
                for hook in self.subscribe_hooks:
                    hook(list_id, hash_)
            if status == "unsubscribed":
                rec["unsubscribe_reason"] = reason or "N/A (Unsubscribed by an admin)"
            elif status != "archived":
                rec["unsubscribe_reason"] = ""
        elif reason and status == "unsubscribed":
            rec["unsubscribe_reason"] = reason
        if source:
            rec["last_source"] = source
        self._changed(list_id, rec, when)
        return rec

    def touch_member(self, list_id: str, hash_: str, at: datetime | float) -> None:
        """Bump `last_changed` (e.g. engagement updated a member's stats or rating)."""
        rec = self.get_member(list_id, hash_)
        if rec is not None:
            self._changed(list_id, rec, _epoch(at) or 0.0)

    def add_member_activity(self, list_id: str, hash_: str, activity: dict[str, Any]) -> None:
        """Append one `/activity` entry (`{action, timestamp, url, type, campaign_id, title, ...}`).

        Only the latest 50 are kept, as Mailchimp serves only the last 50. Does not bump `last_changed`.
        """
        rec = self.get_member(list_id, hash_)
        if rec is None:
            return
        feed = rec["activity"]
        if feed is None:
            feed = rec["activity"] = []
        feed.append(activity)
        if len(feed) > ACTIVITY_CAP:
            del feed[: len(feed) - ACTIVITY_CAP]

    def update_member_fields(
        self, list_id: str, hash_: str, changes: dict[str, Any], at: float
    ) -> bool:
        """Apply plain field changes (merge_fields merged); bump last_changed if anything changed."""
        rec = self.members[list_id][hash_]
        changed = False
        for key, value in changes.items():
            if key == "merge_fields":
                mf = rec["merge_fields"]
                for tag, val in value.items():
                    if mf.get(tag, "") != val:
                        changed = True
                        if val == "":
                            mf.pop(tag, None)
                        else:
                            mf[tag] = val
            elif rec.get(key) != value:
                rec[key] = value
                changed = True
        if changed:
            self._changed(list_id, rec, at)
        return changed

    def change_email(self, list_id: str, hash_: str, new_email: str, at: float) -> dict[str, Any]:
        """Move a member to a new address (new hash, same contact/unique ids)."""
        members = self.members[list_id]
        rec = members.pop(hash_)
        new_hash = subscriber_hash(new_email)
        rec["email_address"] = new_email.strip()
        rec["id"] = new_hash
        members[new_hash] = rec
        aud = self.audiences[list_id]
        aud.contact_index[rec["contact_id"]] = new_hash
        aud.uid_index[rec["unique_email_id"]] = new_hash
        for sid in rec["tags"]:
            seg = aud.segments.get(sid)
            if seg is not None:
                seg["members"].discard(hash_)
                seg["members"].add(new_hash)
        self._changed(list_id, rec, at)
        return rec

    def forget_member(self, list_id: str, hash_: str) -> None:
        """Permanent delete: remove every trace; remember the hash so re-imports are refused."""
        rec = self.members[list_id].pop(hash_)
        aud = self.audiences[list_id]
        aud.counts[rec["status"]] -= 1
        aud.contact_index.pop(rec["contact_id"], None)
        aud.uid_index.pop(rec["unique_email_id"], None)
        for sid in rec["tags"]:
            seg = aud.segments.get(sid)
            if seg is not None:
                seg["members"].discard(hash_)
        aud.forgotten.add(hash_)
        aud.version += 1
        aud.membership_version += 1

    # ------------------------------------------------------------------ tags / static segments

    def ensure_tag(self, list_id: str, name: str, at: float) -> dict[str, Any]:
        """The static segment (tag) called `name` (case-insensitive), created if missing."""
        aud = self.audiences[list_id]
        seg = aud.tag_by_name(name)
        if seg is None:
            seg = self.new_segment(list_id, name.strip(), "static", at)
        return seg

    def new_segment(
        self, list_id: str, name: str, type_: str, at: float, options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        aud = self.audiences[list_id]
        sid = self.next_segment_id
        self.next_segment_id += 1
        seg: dict[str, Any] = {
            "id": sid,
            "name": name,
            "type": type_,
            "created_at": at,
            "updated_at": at,
            "options": options,
            "members": set(),
        }
        aud.segments[sid] = seg
        if type_ == "static":
            aud.tag_index[name.lower()] = sid
        return seg

    def delete_segment(self, list_id: str, sid: int, at: float) -> None:
        aud = self.audiences[list_id]
        seg = aud.segments.pop(sid)
        if seg["type"] == "static":
            aud.tag_index.pop(seg["name"].lower(), None)
        members = self.members[list_id]
        for hash_ in seg["members"]:
            rec = members.get(hash_)
            if rec is not None:
                rec["tags"].pop(sid, None)
                self._changed(list_id, rec, at)

    def add_tag(self, list_id: str, hash_: str, seg: dict[str, Any], at: float) -> bool:
        rec = self.members[list_id][hash_]
        if seg["id"] in rec["tags"]:
            return False
        rec["tags"][seg["id"]] = at
        seg["members"].add(hash_)
        seg["updated_at"] = at
        self._changed(list_id, rec, at)
        return True

    def remove_tag(self, list_id: str, hash_: str, seg: dict[str, Any], at: float) -> bool:
        rec = self.members[list_id][hash_]
        if seg["id"] not in rec["tags"]:
            return False
        del rec["tags"][seg["id"]]
        seg["members"].discard(hash_)
        seg["updated_at"] = at
        self._changed(list_id, rec, at)
        return True

    def member_tag_list(self, list_id: str, rec: dict[str, Any]) -> list[dict[str, Any]]:
        """`[{id, name, date_added}]` for a member, oldest first."""
        segs = self.audiences[list_id].segments
        out = []
        for sid, added in rec["tags"].items():
            seg = segs.get(sid)
            if seg is not None:
                out.append({"id": sid, "name": seg["name"], "date_added": format_epoch(added)})
        return out

    # ------------------------------------------------------------------ persistence

    def dump(self) -> dict[str, Any]:
        """JSON-able snapshot (sets become sorted lists; int dict keys become strings)."""
        audiences: dict[str, Any] = {}
        for lid, aud in self.audiences.items():
            audiences[lid] = {
                "merge_fields": list(aud.merge_fields.values()),
                "next_merge_id": aud.next_merge_id,
                "segments": [{**s, "members": sorted(s["members"])} for s in aud.segments.values()],
                "forgotten": sorted(aud.forgotten),
                "webhooks": list(aud.webhooks.values()),
                "status_times": aud.status_times,
            }
        members = {
            lid: [{**m, "tags": [[k, v] for k, v in m["tags"].items()]} for m in ms.values()]
            for lid, ms in self.members.items()
        }
        data: dict[str, Any] = {
            "account": self.account,
            "lists": self.lists,
            "members": members,
            "audiences": audiences,
            "batches": self.batches,
            "next_web_id": self.next_web_id,
            "next_segment_id": self.next_segment_id,
        }
        if self.engagement is not None and hasattr(self.engagement, "dump"):
            data["engagement"] = self.engagement.dump()
        return data

    @classmethod
    def load(cls, data: dict[str, Any], options: Any, clock: Any) -> MailchimpStore:
        store = cls(options, clock)
        store.account = data["account"]
        store.next_web_id = data["next_web_id"]
        store.next_segment_id = data["next_segment_id"]
        store.batches = data.get("batches", {})
        for lid, doc in data["lists"].items():
            store.add_list(doc)
            saved = data["audiences"][lid]
            aud = store.audiences[lid]
            aud.merge_fields = {mf["merge_id"]: mf for mf in saved["merge_fields"]}
            aud.next_merge_id = saved["next_merge_id"]
            for seg in saved["segments"]:
                seg = {**seg, "members": set(seg["members"])}
                aud.segments[seg["id"]] = seg
                if seg["type"] == "static":
                    aud.tag_index[seg["name"].lower()] = seg["id"]
            aud.forgotten = set(saved["forgotten"])
            aud.webhooks = {w["id"]: w for w in saved["webhooks"]}
            aud.status_times = saved["status_times"]
            members = store.members[lid]
            for m in data["members"][lid]:
                rec = {**m, "tags": {int(k): v for k, v in m["tags"]}}
                members[rec["id"]] = rec
                aud.counts[rec["status"]] += 1
                aud.contact_index[rec["contact_id"]] = rec["id"]
                aud.uid_index[rec["unique_email_id"]] = rec["id"]
        store.engagement_dump = data.get("engagement")
        return store

    engagement_dump: Any = None
