"""Reports of the seeded sent campaigns: summary consistent with the per-member endpoints (§10.2-10.3)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

PROBLEM = "application/problem+json; charset=utf-8"


def _all(mc: Any, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a collection, paging with count/offset like a client does."""
    items: list[dict[str, Any]] = []
    while True:
        body = mc.get(path, params={**params, "count": 1000, "offset": len(items)}).json()
        items.extend(body[key])
        if len(items) >= body["total_items"] or not body[key]:
            return items


@pytest.fixture(scope="module")
def oldest(mc: Any) -> dict[str, Any]:
    """The report of the oldest seeded campaign (engagement complete, stable)."""
    reports = _all(mc, "/reports", "reports")
    report: dict[str, Any] = min(reports, key=lambda r: r["send_time"])
    return report


@pytest.fixture(scope="module")
def activity(mc: Any, oldest: dict[str, Any]) -> list[dict[str, Any]]:
    return _all(mc, f"/reports/{oldest['id']}/email-activity", "emails")


def test_reports_cover_sent_campaigns_only(mc: Any) -> None:
    reports = _all(mc, "/reports", "reports")
    sent = _all(mc, "/campaigns", "campaigns", status="sent")
    # automation emails keep `sending`; each has a report once it was sent to someone
    automation = _all(mc, "/campaigns", "campaigns", type="automation")
    started = {c["id"] for c in automation if c["emails_sent"]}
    assert {r["id"] for r in reports} == {c["id"] for c in sent} | started
    draft = _all(mc, "/campaigns", "campaigns", status="save")[0]
    resp = mc.get(f"/reports/{draft['id']}")
    assert resp.status_code == 404
    assert resp.headers["Content-Type"] == PROBLEM


def test_report_shape(oldest: dict[str, Any]) -> None:
    for key in (
        "id",
        "campaign_title",
        "type",
        "list_id",
        "list_is_active",
        "list_name",
        "subject_line",
        "emails_sent",
        "abuse_reports",
        "unsubscribed",
        "send_time",
        "bounces",
        "forwards",
        "opens",
        "clicks",
        "industry_stats",
        "list_stats",
        "timeseries",
        "ecommerce",
        "delivery_status",
        "_links",
    ):
        assert key in oldest, key
    assert set(oldest["bounces"]) == {"hard_bounces", "soft_bounces", "syntax_errors"}
    assert {"opens_total", "unique_opens", "open_rate", "last_open", "proxy_excluded_opens"} <= set(
        oldest["opens"]
    )
    assert {
        "clicks_total",
        "unique_clicks",
        "unique_subscriber_clicks",
        "click_rate",
        "last_click",
    } <= set(oldest["clicks"])
    assert {"total_orders", "total_spent", "total_revenue", "currency_code"} == set(
        oldest["ecommerce"]
    )
    assert 0 <= oldest["opens"]["open_rate"] <= 1
    assert len(oldest["timeseries"]) == 24
    assert oldest["timeseries"][0]["emails_sent"] == oldest["emails_sent"]


def test_report_since_send_time_filter(mc: Any, oldest: dict[str, Any]) -> None:
    later = _all(mc, "/reports", "reports", since_send_time=oldest["send_time"])
    assert oldest["id"] not in {r["id"] for r in later}
    assert all(r["send_time"] > oldest["send_time"] for r in later)


def test_email_activity_has_a_row_per_recipient(
    oldest: dict[str, Any], activity: list[dict[str, Any]]
) -> None:
    assert len(activity) == oldest["emails_sent"]
    row = activity[0]
    assert set(row) >= {
        "campaign_id",
        "list_id",
        "list_is_active",
        "email_id",
        "email_address",
        "activity",
    }
    assert any(not r["activity"] for r in activity), "recipients without activity still have a row"
    assert len({r["email_id"] for r in activity}) == len(activity)


def test_report_counters_match_email_activity(
    oldest: dict[str, Any], activity: list[dict[str, Any]]
) -> None:
    actions = Counter(a["action"] for r in activity for a in r["activity"])
    assert actions["open"] == oldest["opens"]["opens_total"]
    assert (
        sum(1 for r in activity if any(a["action"] == "open" for a in r["activity"]))
        == oldest["opens"]["unique_opens"]
    )
    assert actions["click"] == oldest["clicks"]["clicks_total"]
    assert (
        sum(1 for r in activity if any(a["action"] == "click" for a in r["activity"]))
        == oldest["clicks"]["unique_subscriber_clicks"]
    )
    bounce_types = Counter(
        a["type"] for r in activity for a in r["activity"] if a["action"] == "bounce"
    )
    assert bounce_types["hard"] == oldest["bounces"]["hard_bounces"]
    assert bounce_types["soft"] == oldest["bounces"]["soft_bounces"]
    last_open = max(
        a["timestamp"] for r in activity for a in r["activity"] if a["action"] == "open"
    )
    assert last_open == oldest["opens"]["last_open"]


def test_campaign_report_summary_matches_report(mc: Any, oldest: dict[str, Any]) -> None:
    summary = mc.get(f"/campaigns/{oldest['id']}").json()["report_summary"]
    assert summary["opens"] == oldest["opens"]["opens_total"]
    assert summary["unique_opens"] == oldest["opens"]["unique_opens"]
    assert summary["clicks"] == oldest["clicks"]["clicks_total"]
    assert summary["subscriber_clicks"] == oldest["clicks"]["unique_subscriber_clicks"]
    assert summary["ecommerce"]["total_orders"] == oldest["ecommerce"]["total_orders"]


def test_activity_item_shapes(activity: list[dict[str, Any]]) -> None:
    items = [a for r in activity for a in r["activity"]]
    for item in items:
        assert item["action"] in ("open", "click", "bounce")
        assert item["timestamp"].endswith("+00:00")
        assert ("url" in item) == (item["action"] == "click")
        assert ("type" in item) == (item["action"] == "bounce")
        if "type" in item:
            assert item["type"] in ("hard", "soft")
    assert any(i["action"] == "click" for i in items)


def test_email_activity_since_filters_by_activity_time(
    mc: Any, oldest: dict[str, Any], activity: list[dict[str, Any]]
) -> None:
    stamps = sorted(a["timestamp"] for r in activity for a in r["activity"])
    pivot = stamps[len(stamps) // 2]
    later = _all(mc, f"/reports/{oldest['id']}/email-activity", "emails", since=pivot)
    got = [a["timestamp"] for r in later for a in r["activity"]]
    assert got
    assert all(t > pivot for t in got)
    assert len(got) == sum(1 for t in stamps if t > pivot)
    assert all(r["activity"] for r in later), "with since, only members with newer activity"


def test_email_activity_pages_do_not_overlap(mc: Any, oldest: dict[str, Any]) -> None:
    first = mc.get(f"/reports/{oldest['id']}/email-activity", params={"count": 7}).json()
    second = mc.get(
        f"/reports/{oldest['id']}/email-activity", params={"count": 7, "offset": 7}
    ).json()
    assert len(first["emails"]) == 7
    assert not {r["email_id"] for r in first["emails"]} & {r["email_id"] for r in second["emails"]}
    assert first["campaign_id"] == oldest["id"]


def test_email_activity_for_one_member(
    mc: Any, oldest: dict[str, Any], activity: list[dict[str, Any]]
) -> None:
    row = next(r for r in activity if r["activity"])
    one = mc.get(f"/reports/{oldest['id']}/email-activity/{row['email_id']}").json()
    assert one["email_address"] == row["email_address"]
    assert one["activity"] == row["activity"]
    assert mc.get(f"/reports/{oldest['id']}/email-activity/{'0' * 32}").status_code == 404


def test_open_details_consistent(
    mc: Any, oldest: dict[str, Any], activity: list[dict[str, Any]]
) -> None:
    members = _all(mc, f"/reports/{oldest['id']}/open-details", "members")
    body = mc.get(f"/reports/{oldest['id']}/open-details").json()
    assert body["total_opens"] == oldest["opens"]["opens_total"]
    assert len(members) == oldest["opens"]["unique_opens"]
    assert sum(m["opens_count"] for m in members) == oldest["opens"]["opens_total"]
    assert all(m["opens_count"] == len(m["opens"]) for m in members)
    assert {"contact_status", "merge_fields", "vip", "email_id"} <= set(members[0])
    ranked = mc.get(
        f"/reports/{oldest['id']}/open-details",
        params={"sort_field": "opens_count", "sort_dir": "DESC", "count": 1000},
    ).json()["members"]
    counts = [m["opens_count"] for m in ranked]
    assert counts == sorted(counts, reverse=True)


def test_click_details_and_members(
    mc: Any, oldest: dict[str, Any], activity: list[dict[str, Any]]
) -> None:
    urls = _all(mc, f"/reports/{oldest['id']}/click-details", "urls_clicked")
    assert sum(u["total_clicks"] for u in urls) == oldest["clicks"]["clicks_total"]
    assert sum(u["unique_clicks"] for u in urls) == oldest["clicks"]["unique_clicks"]
    clicked_urls = {a["url"] for r in activity for a in r["activity"] if a["action"] == "click"}
    assert clicked_urls <= {u["url"] for u in urls}
    top = max(urls, key=lambda u: u["total_clicks"])
    assert mc.get(f"/reports/{oldest['id']}/click-details/{top['id']}").json()["url"] == top["url"]
    members = _all(mc, f"/reports/{oldest['id']}/click-details/{top['id']}/members", "members")
    assert sum(m["clicks"] for m in members) == top["total_clicks"]
    assert len(members) == top["unique_clicks"]
    assert all(m["url_id"] == top["id"] for m in members)
    one = mc.get(
        f"/reports/{oldest['id']}/click-details/{top['id']}/members/{members[0]['email_id']}"
    ).json()
    assert one["clicks"] == members[0]["clicks"]
    assert mc.get(f"/reports/{oldest['id']}/click-details/nolink/members").status_code == 404


def test_sent_to_status_reflects_bounces(
    mc: Any, oldest: dict[str, Any], activity: list[dict[str, Any]]
) -> None:
    sent = {r["email_id"]: r for r in _all(mc, f"/reports/{oldest['id']}/sent-to", "sent_to")}
    assert len(sent) == oldest["emails_sent"]
    for row in activity:
        types = {a["type"] for a in row["activity"] if a["action"] == "bounce"}
        expected = "hard" if "hard" in types else "soft" if "soft" in types else "sent"
        assert sent[row["email_id"]]["status"] == expected
        assert sent[row["email_id"]]["open_count"] == sum(
            1 for a in row["activity"] if a["action"] == "open"
        )


def test_unsubscribed_rows_have_reason_and_count(mc: Any) -> None:
    reports = _all(mc, "/reports", "reports")
    with_unsubs = [r for r in reports if r["unsubscribed"]]
    assert with_unsubs, "the seed produces unsubscribes"
    report = with_unsubs[0]
    rows = _all(mc, f"/reports/{report['id']}/unsubscribed", "unsubscribes")
    assert len(rows) == report["unsubscribed"]
    assert all(r["reason"] and r["timestamp"] and r["campaign_id"] == report["id"] for r in rows)
    one = mc.get(f"/reports/{report['id']}/unsubscribed/{rows[0]['email_id']}").json()
    assert one["reason"] == rows[0]["reason"]
    member = mc.get(f"{mc.members}/{rows[0]['email_id']}").json()
    assert member["status"] in ("unsubscribed", "cleaned", "archived")


def test_hard_bounced_recipients_are_cleaned(mc: Any) -> None:
    reports = _all(mc, "/reports", "reports")
    report = next(r for r in reports if r["bounces"]["hard_bounces"])
    rows = _all(mc, f"/reports/{report['id']}/sent-to", "sent_to")
    hard = [r for r in rows if r["status"] == "hard"]
    assert hard
    for row in hard:
        assert mc.get(f"{mc.members}/{row['email_id']}").json()["status"] in (
            "cleaned",
            "unsubscribed",
            "archived",
        )


def test_product_activity_matches_attributed_orders(mc: Any) -> None:
    reports = _all(mc, "/reports", "reports")
    report = next(r for r in reports if r["ecommerce"]["total_orders"])
    orders = _all(mc, "/ecommerce/orders", "orders", campaign_id=report["id"])
    assert len(orders) == report["ecommerce"]["total_orders"]
    assert round(sum(o["order_total"] for o in orders), 2) == report["ecommerce"]["total_spent"]
    products = _all(mc, f"/reports/{report['id']}/ecommerce-product-activity", "products")
    kept = [
        o
        for o in orders
        if not o["cancelled_at_foreign"] and o["financial_status"] not in ("cancelled", "refunded")
    ]
    units = sum(line["quantity"] for o in kept for line in o["lines"])
    assert round(sum(o["order_total"] for o in kept), 2) == report["ecommerce"]["total_revenue"]
    assert sum(p["total_purchased"] for p in products) == units
    assert {"title", "sku", "total_revenue", "total_purchased", "currency_code"} <= set(products[0])
    ranked = mc.get(
        f"/reports/{report['id']}/ecommerce-product-activity",
        params={"sort_field": "total_revenue"},
    ).json()["products"]
    assert [p["total_revenue"] for p in ranked] == sorted(
        (p["total_revenue"] for p in ranked), reverse=True
    )


def test_unknown_campaign_report_endpoints_are_404(mc: Any) -> None:
    for path in (
        "",
        "/email-activity",
        "/open-details",
        "/click-details",
        "/unsubscribed",
        "/sent-to",
        "/ecommerce-product-activity",
    ):
        resp = mc.get(f"/reports/abcdef0123{path}")
        assert resp.status_code == 404, path
        assert resp.json()["status"] == 404


def test_email_activity_partial_response(mc: Any, oldest: dict[str, Any]) -> None:
    path = f"/reports/{oldest['id']}/email-activity"
    slim = mc.get(path, params={"fields": "emails.email_id,emails.activity,total_items"}).json()
    assert set(slim) == {"emails", "total_items"}
    assert all(set(r) == {"email_id", "activity"} for r in slim["emails"])
    no_links = mc.get(path, params={"exclude_fields": "emails._links,_links"}).json()
    assert "_links" not in no_links
    assert all("_links" not in r for r in no_links["emails"])
    assert mc.get(path, params={"fields": "emails.nope"}).status_code == 422
