"""A process that uses a Mailchimp account's shared connection budget (run by test_connection_budget).

python budget_worker.py hold API_URL API_KEY N DIR|- URI|-
                                                        take N of the account's shared slots (as a
                                                        MailchimpClient would), print "held", sleep
python budget_worker.py ping API_URL API_KEY N DIR|- URI|- GO_FILE
                                                        wait for GO_FILE, then N GET /ping through a
                                                        MailchimpClient (8 connections), print the peak
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from oromc_common.governor import ConnectionBudget, get_governor, run_concurrently
from oromc_common.mailchimp import MailchimpClient, account_key


def _budget(directory: str, uri: str) -> ConnectionBudget:
    return ConnectionBudget(
        directory=None if directory == "-" else directory, database_uri=None if uri == "-" else uri
    )


def main() -> None:
    mode, *args = sys.argv[1:]
    if mode == "hold":
        api_url, api_key, count, directory, uri = args
        governor = get_governor(account_key(api_url, api_key), 8, _budget(directory, uri))
        for _ in range(int(count)):
            governor.acquire()
        print("held", flush=True)
        time.sleep(3600)
        return
    api_url, api_key, count, directory, uri, go = args
    client = MailchimpClient(
        api_key=api_key,
        api_url=api_url,
        max_connections=8,
        max_tries=20,
        backoff_factor=0.05,
        backoff_max=0.5,
        connection_budget=_budget(directory, uri),
    )
    print("ready", flush=True)
    while not Path(go).exists():
        time.sleep(0.01)
    run_concurrently([client.ping for _ in range(int(count))], max_workers=8)
    print(json.dumps({"peak": client.governor.peak}), flush=True)


if __name__ == "__main__":
    main()
