"""Each connector composes with other Singer plugins through Meltano."""

from __future__ import annotations

import json
from pathlib import Path

from e2e_harness import Project


def _jsonl_rows(folder: Path, stream: str) -> list[dict[str, object]]:
    files = sorted(folder.glob(f"{stream}*.jsonl"))
    assert files, (
        f"target-jsonl wrote no file for {stream}: {sorted(p.name for p in folder.iterdir())}"
    )
    return [json.loads(line) for f in files for line in f.read_text().splitlines() if line]


def test_tap_orocommerce_to_target_jsonl(project: Project) -> None:
    """`meltano run tap-orocommerce target-jsonl` lands every Oro stream as JSON lines."""
    result = project.run("tap-orocommerce", "target-jsonl")
    out = project.workdir / "jsonl"
    users = _jsonl_rows(out, "customer_users")
    contacts = _jsonl_rows(out, "contacts")
    for stream in ("customers", "customer_groups", "customer_user_addresses", "orders", "products"):
        assert _jsonl_rows(out, stream), stream
    total = project.oro.session.get(
        f"{project.oro.api}/customerusers",
        params={"page[size]": 1},
        headers={"X-Include": "totalCount"},
        timeout=30,
    ).headers["X-Include-Total-Count"]
    assert len({u["id"] for u in users}) == int(total)
    assert {c["email"] for c in contacts} <= {u["email"] for u in users}
    assert result.summaries["tap-orocommerce"]["streams"]["customer_users"]["read"] >= len(users)


def test_tap_mailchimp_engagement_to_target_jsonl(project: Project) -> None:
    """`meltano run tap-mailchimp-engagement target-jsonl` lands members, campaigns and activity."""
    project.run("tap-mailchimp-engagement", "target-jsonl")
    out = project.workdir / "jsonl"
    members = _jsonl_rows(out, "members")
    campaigns = _jsonl_rows(out, "campaigns")
    activity = _jsonl_rows(out, "email_activity")
    total = project.mailchimp.get(f"lists/{project.mailchimp.list_id}", fields="stats")["stats"]
    assert len({m["id"] for m in members}) >= total["member_count"]
    assert campaigns
    assert activity
    assert {a["campaign_id"] for a in activity} <= {c["id"] for c in campaigns}


def test_another_tap_feeds_target_mailchimp_through_a_stream_map(project: Project) -> None:
    """Contacts from tap-jsonl, renamed by a stream map to the `contacts` contract, reach Mailchimp."""
    people = project.workdir / "people.jsonl"
    rows = [
        {
            "mail": " Ada.Byron@Example.net ",
            "given": "Ada",
            "family": "Byron",
            "changed": "2026-01-02T03:04:05Z",
        },
        {
            "mail": "grace.hopper@example.net",
            "given": "Grace",
            "family": "Hopper",
            "changed": "2026-01-03T03:04:05Z",
        },
    ]
    people.write_text("".join(json.dumps(r) + "\n" for r in rows))
    stream_maps = {
        "people": {
            "__alias__": "contacts",
            "__key_properties__": ["email"],
            "email": "mail",
            "first_name": "given",
            "last_name": "family",
            "updated_at": "changed",
            "mail": "__NULL__",
            "given": "__NULL__",
            "family": "__NULL__",
            "changed": "__NULL__",
        }
    }
    project.env.update(
        {
            "TAP_JSONL_PATH": str(people),
            "TAP_JSONL_STREAM_NAME": "people",
            "TAP_JSONL_PRIMARY_KEYS": json.dumps(["mail"]),
            "TAP_JSONL_STREAM_MAPS": json.dumps(stream_maps),
        }
    )
    project.run("tap-jsonl", "target-mailchimp")
    ada = project.mailchimp.member("ada.byron@example.net")
    grace = project.mailchimp.member("grace.hopper@example.net")
    assert (ada["merge_fields"]["FNAME"], ada["merge_fields"]["LNAME"]) == ("Ada", "Byron")
    # no consent in the source: added without marketing (status_if_new defaults to transactional)
    assert (grace["merge_fields"]["FNAME"], grace["status"]) == ("Grace", "transactional")
