"""The Mailchimp route table: (method, path template) -> handler, in matching order.

Starlette tries routes in order and the catch-all `/3.0/{rest:path}` (problem+json 404/405) must come
last. `responses/batches.py` and `responses/ecommerce.py` export their own route lists
(`batch_routes()`, `routes()`); they are included at their place in the order. Adding an endpoint:
write the handler in its `responses` module, add one row here (and a `LATENCY_PROFILE` entry when
it is not a plain GET).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.routing import BaseRoute, Route

from .constants import API_PREFIX
from .responses import audience, automations, batches, campaigns, ecommerce, reports

P = API_PREFIX
LIST = P + "/lists/{list_id}"
MEMBER = LIST + "/members/{subscriber_hash}"
SEGMENT = LIST + "/segments/{segment_id}"
CAMPAIGN = P + "/campaigns/{campaign_id}"
REPORT = P + "/reports/{campaign_id}"
WORKFLOW = P + "/automations/{workflow_id}"
WORKFLOW_EMAIL = WORKFLOW + "/emails/{workflow_email_id}"

RouteRow = tuple[str, str, Callable[..., Any]]

AUDIENCE: tuple[RouteRow, ...] = (
    ("GET", P + "/ping", audience.ping),
    ("GET", P + "/", audience.root),
    ("GET", "/oauth2/metadata", audience.oauth_metadata),
    ("GET", P + "/lists", audience.lists_collection),
    ("POST", P + "/lists", audience.lists_create),
    ("GET", LIST, audience.list_one),
    ("PATCH", LIST, audience.list_patch),
    ("POST", LIST, audience.batch_subscribe),
    ("GET", LIST + "/merge-fields", audience.merge_fields_collection),
    ("POST", LIST + "/merge-fields", audience.merge_field_create),
    ("GET", LIST + "/merge-fields/{merge_id}", audience.merge_field_one),
    ("PATCH", LIST + "/merge-fields/{merge_id}", audience.merge_field_patch),
    ("DELETE", LIST + "/merge-fields/{merge_id}", audience.merge_field_delete),
    ("GET", LIST + "/members", audience.members_collection),
    ("POST", LIST + "/members", audience.member_create),
    ("GET", MEMBER, audience.member_one),
    ("PUT", MEMBER, audience.member_put),
    ("PATCH", MEMBER, audience.member_patch),
    ("DELETE", MEMBER, audience.member_archive),
    ("POST", MEMBER + "/actions/delete-permanent", audience.member_delete_permanent),
    ("GET", MEMBER + "/tags", audience.member_tags),
    ("POST", MEMBER + "/tags", audience.member_tags_post),
    ("GET", MEMBER + "/events", audience.member_events),
    ("POST", MEMBER + "/events", audience.member_events_post),
    ("GET", MEMBER + "/activity", audience.member_activity),
    ("GET", LIST + "/segments", audience.segments_collection),
    ("POST", LIST + "/segments", audience.segment_create),
    ("GET", SEGMENT, audience.segment_one),
    ("PATCH", SEGMENT, audience.segment_patch),
    ("POST", SEGMENT, audience.segment_batch),
    ("DELETE", SEGMENT, audience.segment_delete),
    ("GET", SEGMENT + "/members", audience.segment_members),
    ("POST", SEGMENT + "/members", audience.segment_member_add),
    ("DELETE", SEGMENT + "/members/{subscriber_hash}", audience.segment_member_remove),
    ("GET", LIST + "/tag-search", audience.tag_search),
    ("GET", LIST + "/webhooks", audience.webhooks_collection),
    ("POST", LIST + "/webhooks", audience.webhook_create),
    ("GET", LIST + "/webhooks/{webhook_id}", audience.webhook_one),
    ("PATCH", LIST + "/webhooks/{webhook_id}", audience.webhook_patch),
    ("DELETE", LIST + "/webhooks/{webhook_id}", audience.webhook_delete),
    ("GET", P + "/search-members", audience.search_members),
)

CAMPAIGNS_AND_REPORTS: tuple[RouteRow, ...] = (
    ("GET", P + "/campaigns", campaigns.get_campaigns),
    ("POST", P + "/campaigns", campaigns.post_campaigns),
    ("GET", CAMPAIGN, campaigns.get_campaign),
    ("PATCH", CAMPAIGN, campaigns.patch_campaign),
    ("DELETE", CAMPAIGN, campaigns.delete_campaign),
    ("POST", CAMPAIGN + "/actions/send", campaigns.send_campaign),
    ("GET", P + "/reports", reports.get_reports),
    ("GET", REPORT, reports.get_report),
    ("GET", REPORT + "/email-activity", reports.get_email_activity),
    ("GET", REPORT + "/email-activity/{subscriber_hash}", reports.get_email_activity_member),
    ("GET", REPORT + "/open-details", reports.get_open_details),
    ("GET", REPORT + "/open-details/{subscriber_hash}", reports.get_open_details_member),
    ("GET", REPORT + "/click-details", reports.get_click_details),
    ("GET", REPORT + "/click-details/{link_id}", reports.get_click_detail),
    ("GET", REPORT + "/click-details/{link_id}/members", reports.get_click_members),
    (
        "GET",
        REPORT + "/click-details/{link_id}/members/{subscriber_hash}",
        reports.get_click_member,
    ),
    ("GET", REPORT + "/unsubscribed", reports.get_unsubscribed),
    ("GET", REPORT + "/unsubscribed/{subscriber_hash}", reports.get_unsubscribed_member),
    ("GET", REPORT + "/sent-to", reports.get_sent_to),
    ("GET", REPORT + "/sent-to/{subscriber_hash}", reports.get_sent_to_member),
    ("GET", REPORT + "/ecommerce-product-activity", reports.get_product_activity),
)

AUTOMATIONS: tuple[RouteRow, ...] = (
    ("GET", P + "/automations", automations.get_automations),
    ("GET", WORKFLOW, automations.get_automation),
    ("POST", WORKFLOW + "/actions/start-all-emails", automations.start_all),
    ("POST", WORKFLOW + "/actions/pause-all-emails", automations.pause_all),
    ("GET", WORKFLOW + "/emails", automations.get_emails),
    ("GET", WORKFLOW_EMAIL, automations.get_email),
    ("POST", WORKFLOW_EMAIL + "/actions/start", automations.start_email),
    ("POST", WORKFLOW_EMAIL + "/actions/pause", automations.pause_email),
    ("GET", WORKFLOW_EMAIL + "/queue", automations.get_queue),
    ("POST", WORKFLOW_EMAIL + "/queue", automations.post_queue),
    ("GET", WORKFLOW_EMAIL + "/queue/{subscriber_hash}", automations.get_queue_member),
    # sandbox control (not Mailchimp): make recipients of a sent campaign open/click/unsubscribe
    ("POST", "/_sandbox/mailchimp/campaigns/{campaign_id}/engage", reports.engage),
)


def _routes(rows: tuple[RouteRow, ...]) -> list[BaseRoute]:
    return [Route(path, handler, methods=[method]) for method, path, handler in rows]


def routes() -> list[BaseRoute]:
    """Every Mailchimp route (absolute paths on the Mailchimp server), in matching order."""
    return [
        *_routes(AUDIENCE),
        *batches.batch_routes(),
        *_routes(CAMPAIGNS_AND_REPORTS),
        *ecommerce.routes(),
        *_routes(AUTOMATIONS),
        # Last: an ASGI app without a method list matches every method, so OPTIONS, TRACE or any
        # other method on a known path reach it (a full match) instead of Starlette's text/plain 405.
        Route(P + "/{rest:path}", audience.FALLBACK_APP),
    ]
