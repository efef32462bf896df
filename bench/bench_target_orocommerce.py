"""Benchmark target-orocommerce's activity path against the sandbox.

    .venv/bin/python bench/bench_target_orocommerce.py [--recipients 400] [--latency realistic]

Input: one Mailchimp campaign sent to ``--recipients`` real Oro customer users, with engagement in
Mailchimp-like proportions (seeded RNG): 30 % of recipients open, openers open 2.5 times on average
(Apple Mail Privacy Protection inflates opens), 4 % click (1.6 clicks each), 1.5 % bounce.

Phases (same sandbox process, re-seeded between phases):
  1. target, every_event granularity, default settings (Batch API where Oro allows it, bounded
     concurrency elsewhere, cached lookups, windowed dedupe lookups);
  2. the same input replayed (dedupe: must create nothing);
  3. target, first_per_action granularity (the default): how much smaller the Oro side gets;
  4. baseline on the same input: one request per activity, strictly sequential
     (``batch_mode=single``, ``max_connections=1``);
  5. members: a name change for every recipient through the Batch API (``PATCH /customerusers``,
     ``X-Mode: sync``, 100 per request) vs 6. one PATCH per member, sequential.
Stock Oro has no Batch API for ``marketingactivities`` (405; the sandbox too unless its switch
``marketingactivities_batch`` is on, see ``job_engagement_oro.py``), so the activity path's
speed-up comes from bounded concurrency and amortised lookups; the Batch API ratio is phase 5 / 6.
Reported per phase: wall seconds, activities written, activities/s, API calls (sandbox counter) and
calls per 1,000 activities; plus the ratio phase 1 / phase 4. JSON to stdout and
``bench/results/target_orocommerce.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from oromc_common.oro import OroOAuth2Authenticator, clear_token_cache
from oromc_sandbox.testing import RunningSandbox, running_sandbox
from tap_mailchimp_engagement import schemas
from tap_mailchimp_engagement.engagement import activity_event_id
from target_orocommerce.target import TargetOroCommerce

ROOT = Path(__file__).resolve().parent.parent
CID = "bench00001"
T0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)


def _emails(sb: RunningSandbox, n: int) -> list[str]:
    oro = sb.info["oro"]
    session = requests.Session()
    session.auth = OroOAuth2Authenticator(
        base_url=sb.oro_base_url, client_id=oro["client_id"], client_secret=oro["client_secret"]
    )
    url: str | None = sb.oro_base_url + "/admin/api/customerusers?page[size]=1000"
    emails: list[str] = []
    while url and len(emails) < n:
        doc = session.get(url, headers={"Accept": "application/vnd.api+json"}, timeout=60).json()
        emails += [u["attributes"]["email"] for u in doc["data"] if not u["attributes"].get("isGuest")]
        url = doc.get("links", {}).get("next")
    return sorted(set(emails))[:n]


def _engagement(emails: list[str], seed: int = 1, campaign: str = CID) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(seed)
    rows = []
    for email in emails:
        eid = hashlib.md5(email.encode(), usedforsecurity=False).hexdigest()
        base = {"campaign_id": campaign, "list_id": "benchlist0", "email_id": eid, "email_address": email,
                "url": "", "bounce_type": None, "ip": ""}
        if rng.random() < 0.015:
            rows.append({**base, "action": "bounce", "bounce_type": rng.choice(["hard", "soft"]),
                         "timestamp": (T0 + timedelta(minutes=2)).isoformat()})
            continue
        if rng.random() < 0.30:
            for _ in range(max(1, round(rng.expovariate(1 / 2.5)))):
                at = T0 + timedelta(seconds=rng.randint(60, 3 * 86400))
                rows.append({**base, "action": "open", "timestamp": at.isoformat()})
            if rng.random() < 0.04 / 0.30:
                for _ in range(max(1, round(rng.expovariate(1 / 1.6)))):
                    at = T0 + timedelta(seconds=rng.randint(120, 3 * 86400))
                    rows.append({**base, "action": "click", "timestamp": at.isoformat(),
                                 "url": f"https://shop.example.com/p/{rng.randint(1, 40)}"})
    for row in rows:
        row["event_id"] = activity_event_id(campaign, row["email_id"], row["action"], row["timestamp"], row["url"])
    return {
        "campaigns": [{"id": campaign, "status": "sent", "send_time": T0.isoformat(),
                       "settings": {"title": "Bench campaign", "subject_line": "Hello"}}],
        "sent_to": [{"campaign_id": campaign, "list_id": "benchlist0", "email_address": e, "status": "sent",
                     "email_id": hashlib.md5(e.encode(), usedforsecurity=False).hexdigest()} for e in emails],
        "email_activity": sorted(rows, key=lambda r: r["timestamp"]),
    }


def _lines(streams: dict[str, list[dict[str, Any]]]) -> str:
    keys = {"campaigns": ["id"], "sent_to": ["campaign_id", "email_id"],
            "email_activity": ["event_id"]}
    schema = {"campaigns": schemas.CAMPAIGNS, "sent_to": schemas.SENT_TO, "email_activity": schemas.EMAIL_ACTIVITY}
    out = []
    for stream, records in streams.items():
        out.append(json.dumps({"type": "SCHEMA", "stream": stream, "schema": schema[stream],
                               "key_properties": keys[stream]}))
        out += [json.dumps({"type": "RECORD", "stream": stream, "record": r}) for r in records]
    out.append(json.dumps({"type": "STATE", "value": {"bench": True}}))
    return "\n".join(out) + "\n"


def _member_lines(emails: list[str]) -> str:
    out = [json.dumps({"type": "SCHEMA", "stream": "members", "schema": schemas.MEMBERS,
                       "key_properties": ["list_id", "id"]})]
    for i, email in enumerate(emails):
        record = {"list_id": "benchlist0", "id": hashlib.md5(email.encode(), usedforsecurity=False).hexdigest(),
                  "email_address": email, "status": "subscribed", "last_changed": T0.isoformat(),
                  "merge_fields": {"FNAME": f"Bench{i}", "LNAME": f"Member{i}"}}
        out.append(json.dumps({"type": "RECORD", "stream": "members", "record": record}))
    out.append(json.dumps({"type": "STATE", "value": {"bench": True}}))
    return "\n".join(out) + "\n"


def _member_phase(sb: RunningSandbox, config: dict[str, Any], lines: str) -> dict[str, Any]:
    clear_token_cache()
    sb.reset_stats()
    target = TargetOroCommerce(config=config, validate_config=True)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        target.listen(io.StringIO(lines))
    seconds = time.perf_counter() - started
    updated = target.services.report.summary()["streams"]["members"].get("names_updated", 0)
    stats = sb.stats("oro")
    calls = sum(n for route, c in stats["requests"].items() if "oauth2-token" not in route for n in c.values())
    return {"seconds": round(seconds, 2), "members_updated": updated,
            "members_per_second": round(updated / seconds, 1), "api_calls": calls,
            "api_calls_per_1000_members": round(calls * 1000 / max(updated, 1), 1)}


def _phase(sb: RunningSandbox, config: dict[str, Any], lines: str) -> dict[str, Any]:
    clear_token_cache()
    sb.reset_stats()
    target = TargetOroCommerce(config=config, validate_config=True)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        target.listen(io.StringIO(lines))
    seconds = time.perf_counter() - started
    summary = target.services.report.summary()
    streams = summary["streams"]
    written = sum(streams.get(s, {}).get("created", 0) for s in ("email_activity", "sent_to"))
    stats = sb.stats("oro")
    calls = sum(n for route, c in stats["requests"].items() if "oauth2-token" not in route for n in c.values())
    processed = sum(streams.get(s, {}).get("read", 0) for s in ("email_activity", "sent_to"))
    per = max(written, 1)
    return {
        "input_activity_rows": processed,
        "api_calls_per_1000_input_rows": round(calls * 1000 / max(processed, 1), 1),
        "seconds": round(seconds, 2),
        "activities_written": written,
        "activities_per_second": round(written / seconds, 1) if written else 0.0,
        "api_calls": calls,
        "api_calls_per_1000_activities_written": round(calls * 1000 / per, 1) if written else None,
        "skipped_not_first_of_action": streams.get("email_activity", {}).get("skipped_not_first_of_action", 0),
        "rejected": sum(s.get("rejected", 0) for s in streams.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=400)
    parser.add_argument("--latency", choices=["none", "realistic"], default="realistic")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    report: dict[str, Any] = {"recipients": args.recipients, "latency": args.latency}
    with running_sandbox(customers=max(args.recipients * 2, 200), seed=3, latency=args.latency) as sb:
        emails = _emails(sb, args.recipients)
        streams = _engagement(emails)
        lines = _lines(streams)
        events = len(streams["email_activity"])
        firsts = len({(r["action"], r["email_id"]) if r["action"] in {"open", "click"}
                      else json.dumps(r, sort_keys=True)
                      for r in streams["email_activity"]})
        report["input"] = {"sends": len(streams["sent_to"]), "email_activity_events": events,
                           "first_of_action_events": firsts,
                           "first_per_action_reduction": round(events / max(firsts, 1), 2)}
        oro = sb.info["oro"]
        base = {"base_url": sb.oro_base_url, "client_id": oro["client_id"], "client_secret": oro["client_secret"],
                "rejects_path": str(ROOT / "output" / "bench-target-orocommerce.rejects.jsonl"),
                "max_connections": args.concurrency}
        every = {**base, "activity_granularity": "every_event"}
        report["target_every_event"] = _phase(sb, every, lines)
        report["replay_every_event"] = _phase(sb, every, lines)
        sb.reset()
        report["target_first_per_action"] = _phase(sb, {**base, "activity_granularity": "first_per_action"}, lines)
        sb.reset()
        report["baseline_one_request_per_activity"] = _phase(
            sb, {**every, "batch_mode": "single", "max_connections": 1}, lines
        )
        sb.reset()
        member_lines = _member_lines(emails)
        report["members_batch_api"] = _member_phase(sb, base, member_lines)
        sb.reset()
        report["members_baseline_one_request_per_member"] = _member_phase(
            sb, {**base, "batch_mode": "single", "max_connections": 1}, member_lines
        )
    fast, slow = report["target_every_event"], report["baseline_one_request_per_activity"]
    mfast, mslow = report["members_batch_api"], report["members_baseline_one_request_per_member"]
    report["ratio_members_batch_vs_baseline"] = {
        "throughput": round(mfast["members_per_second"] / max(mslow["members_per_second"], 0.001), 2),
        "api_calls": round(mslow["api_calls"] / max(mfast["api_calls"], 1), 2),
    }
    report["ratio_target_vs_baseline"] = {
        "throughput": round(fast["activities_per_second"] / max(slow["activities_per_second"], 0.001), 2),
        "api_calls": round(slow["api_calls"] / max(fast["api_calls"], 1), 2),
    }
    out = ROOT / "bench" / "results" / "target_orocommerce.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
