"""Writes applied by Mailchimp whose answer never arrived (the sandbox's ``lost_response`` fault): the
retry finds what the first attempt did instead of failing or writing it twice."""

from __future__ import annotations

from typing import Any

from oromc_common.mailchimp import MailchimpClient
from oromc_sandbox.testing import RunningSandbox, fault_seed_for

from .conftest import DOMAIN, contact, member, run_target, singer_lines


def test_a_merge_field_created_with_its_answer_lost_is_read_back(
    sb: RunningSandbox, config: dict[str, Any], api: MailchimpClient
) -> None:
    route = "POST /3.0/lists/{list_id}/merge-fields"
    # the first create of each field applied and its answer lost, the retry answered
    seed = fault_seed_for({route: [True, False, True, False]}, rate=0.5)
    sb.set_faults("mailchimp", rate=0.5, kinds=["lost_response"], routes=[route], seed=seed)
    cfg = {
        **config,
        "merge_fields": {"FNAME": "first_name", "COMPANY": "customer_name", "SINCE": "updated_at"},
        "create_missing_merge_fields": True,
    }
    run_target(cfg, singer_lines([contact(1)]))
    sb.set_faults("mailchimp", rate=0)
    assert sb.stats("mailchimp")["lost_responses"][route] == {"200": 2}
    fields = [
        f["tag"] for f in api.paginate(f"/lists/{config['list_id']}/merge-fields", "merge_fields")
    ]
    assert fields.count("COMPANY") == fields.count("SINCE") == 1
    got = member(api, config["list_id"], f"person1@{DOMAIN}")
    assert got is not None
    assert got["merge_fields"]["COMPANY"] == "Account 1"
