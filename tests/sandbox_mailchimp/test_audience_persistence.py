"""`--data-dir`: a stopped sandbox restarts with the audience as it was."""

from __future__ import annotations

from pathlib import Path

import requests
from oromc_sandbox.testing import running_sandbox


def test_audience_survives_restart(tmp_path: Path) -> None:
    email = "persisted.member@gmail.com"
    with running_sandbox(customers=50, data_dir=str(tmp_path)) as sb:
        auth = ("x", sb.info["mailchimp"]["api_key"])
        members = f"{sb.mailchimp_api_url}/lists/{sb.info['mailchimp']['list_id']}/members"
        created = requests.post(
            members,
            auth=auth,
            json={
                "email_address": email,
                "status": "subscribed",
                "tags": ["Kept"],
                "merge_fields": {"FNAME": "Per"},
            },
            timeout=30,
        )
        assert created.status_code == 200
        gone = requests.get(members, auth=auth, params={"count": 1}, timeout=30).json()["members"][
            0
        ]
        assert (
            requests.post(
                f"{members}/{gone['id']}/actions/delete-permanent", auth=auth, timeout=30
            ).status_code
            == 204
        )
        assert sb.control("mailchimp").post("/_sandbox/save").status_code == 200
    with running_sandbox(customers=50, data_dir=str(tmp_path)) as sb:
        auth = ("x", sb.info["mailchimp"]["api_key"])
        members = f"{sb.mailchimp_api_url}/lists/{sb.info['mailchimp']['list_id']}/members"
        doc = requests.get(f"{members}/{email}", auth=auth, timeout=30).json()
        assert doc["merge_fields"]["FNAME"] == "Per"
        assert [t["name"] for t in doc["tags"]] == ["Kept"]
        readd = requests.post(
            members,
            auth=auth,
            json={"email_address": gone["email_address"], "status": "subscribed"},
            timeout=30,
        )
        assert readd.json()["title"] == "Forgotten Email Not Subscribed"
