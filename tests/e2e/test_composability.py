"""Each connector composes with other Singer plugins through Meltano."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from e2e_harness import Project
from pipelines import ROOT, meltano

sys.path.insert(0, str(ROOT / "tests"))
from readme_snippets import snippet


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
    """Contacts from tap-jsonl, renamed by target-mailchimp's README stream map, reach Mailchimp.

    The README block is merged into a copy of meltano.yml as it stands (YAML parsed by Meltano, as a
    user's would be); the copy shares this project's installed plugins (MELTANO_SYS_DIR_ROOT).
    """
    block = snippet("target-mailchimp/README.md", "Input contract: the `contacts` stream", 0)
    assert block.run_by == "tests/e2e/test_composability.py"
    documented = yaml.safe_load(block.text)["plugins"]["extractors"][0]
    meltano_yml = yaml.safe_load((ROOT / "meltano.yml").read_text())
    tap = next(p for p in meltano_yml["plugins"]["extractors"] if p["name"] == documented["name"])
    tap["config"] = documented["config"]
    copy = project.workdir / "own-project"
    copy.mkdir()
    (copy / "meltano.yml").write_text(yaml.safe_dump(meltano_yml, sort_keys=False))

    people = project.workdir / "people.jsonl"
    rows = [
        {
            "Email": " Ada.Byron@Example.net ",
            "Given name": "Ada",
            "Family name": "Byron",
            "Changed": "2026-01-02T03:04:05Z",
        },
        {
            "Email": "grace.hopper@example.net",
            "Given name": "Grace",
            "Family name": "Hopper",
            "Changed": "2026-01-03T03:04:05Z",
        },
    ]
    people.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {
        **project.env,
        "TAP_JSONL_PATH": str(people),
    }
    # what the tap emits through Meltano: only the contract's fields, under the new key
    emitted = meltano("invoke", "tap-jsonl", env=env, cwd=copy).check()
    messages = [json.loads(line) for line in emitted.log_tail if line.startswith('{"type":')]
    schema = next(m for m in messages if m["type"] == "SCHEMA")
    records = [m["record"] for m in messages if m["type"] == "RECORD"]
    assert (schema["stream"], schema["key_properties"]) == ("contacts", ["email"])
    assert [sorted(r) for r in records] == [["email", "first_name", "last_name"]] * 2
    meltano("run", "tap-jsonl", "target-mailchimp", env=env, cwd=copy).check()
    ada = project.mailchimp.member("ada.byron@example.net")
    grace = project.mailchimp.member("grace.hopper@example.net")
    assert (ada["merge_fields"]["FNAME"], ada["merge_fields"]["LNAME"]) == ("Ada", "Byron")
    # no consent in the source: added without marketing (status_if_new defaults to transactional)
    assert (grace["merge_fields"]["FNAME"], grace["status"]) == ("Grace", "transactional")
