"""`make demo`: both pipelines against the sandbox, again to show they are incremental, then
consent travelling each way.

1. installs the Meltano plugins (from this repository's folders, locked versions) unless nothing
   changed since the last install,
2. starts the sandbox on the `dev` environment's ports (OroCommerce :8801, Mailchimp :8802),
3. round 1: runs `meltano run audience-sync` (OroCommerce -> Mailchimp) and `meltano run
   engagement-sync` (Mailchimp -> OroCommerce), printing progress and a short summary of what moved
   and what was rejected,
4. round 2: both jobs again: they find (almost) nothing to do,
5. round 3: one subscribed person withdraws consent in OroCommerce and another unsubscribes in
   Mailchimp (through each system's API, as the storefront and the unsubscribe link would); both
   jobs run and the demo checks that each opt-out reached the other system,
6. round 4: both jobs again: the opt-outs do not echo (nothing written),
7. prints each campaign's results (sends, opens, rates, orders, revenue) read back from OroCommerce
   and checks them against Mailchimp's reports,
8. an abandoned cart: the clock moves an hour, Mailchimp's abandoned-cart automation emails the carts
   round 1 pushed, one buyer clicks; `engagement-sync` brings the click to OroCommerce, as an activity
   of the Oro campaign that mirrors the automation email (:func:`abandoned_cart`),
9. stops the sandbox.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from oromc_sandbox.testing import RunningSandbox, running_sandbox
from pipelines import (
    DEV_SANDBOX_OPTIONS,
    ROOT,
    InstallError,
    RunResult,
    install_env,
    meltano,
    meltano_install,
    remove_leftover_configs,
    sandbox_env,
    write_counts,
)

JOBS = (
    ("audience-sync", "OroCommerce -> Mailchimp"),
    ("engagement-sync", "Mailchimp -> OroCommerce"),
)
ROUNDS = {
    1: "first sync",
    2: "again, nothing changed",
    3: "an opt-out in each system",
    4: "again: the opt-outs do not echo",
}
CONSENT_FIELD = (
    "marketing_consent"  # the dev environment's consent source (tap-orocommerce's default field)
)
IDENTITY = "OROID"  # target-mailchimp's default identity merge field: the Oro customer user id
JSONAPI = "application/vnd.api+json"


def _say(text: str = "") -> None:
    print(text, flush=True)


class Progress:
    """Prints a heartbeat with the sandbox's request counts while a job runs."""

    def __init__(self, sandbox: RunningSandbox, job: str) -> None:
        self.sandbox, self.job = sandbox, job
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started = time.monotonic()

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(5.0):
            try:
                oro = self.sandbox.stats("oro")
                mc = self.sandbox.stats("mailchimp")
            except OSError:
                continue
            _say(
                f"    ... {self.job}: {time.monotonic() - self.started:5.0f} s, "
                f"OroCommerce API calls {oro['total_requests']}, Mailchimp API calls {mc['total_requests']}"
            )


def _records(summary: dict[str, Any], *names: str) -> int:
    return sum(int(s.get(n, 0)) for s in summary.get("streams", {}).values() for n in names)


def _rejects(summary: dict[str, Any]) -> Counter[str]:
    reasons: Counter[str] = Counter()
    for stream, counts in summary.get("streams", {}).items():
        for reason, n in counts.get("rejected_by_reason", {}).items():
            reasons[f"{stream}: {reason}"] += n
        for reason, n in counts.get("fields_rejected_by_reason", {}).items():
            reasons[f"{stream}: {reason} (field left out, record written)"] += n
    return reasons


def report(job: str, result: RunResult, oro: dict[str, Any], mc: dict[str, Any]) -> None:
    """Print what one job moved, from the connectors' RUN SUMMARY lines and the sandbox's counts."""
    _say(f"  {job} finished in {result.seconds:.0f} s (exit {result.returncode})")
    for plugin, summary in sorted(result.summaries.items()):
        streams = summary.get("streams", {})
        moved = {
            stream: {k: v for k, v in counts.items() if isinstance(v, int) and v}
            for stream, counts in streams.items()
        }
        moved = {s: c for s, c in moved.items() if c}
        _say(f"    {plugin}: {summary.get('api_calls', 0)} API calls")
        for stream, counts in sorted(moved.items()):
            _say(f"      {stream:<24} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        rejects = _rejects(summary)
        if rejects:
            _say("      rejected (see " + str(summary.get("rejects_file")) + "):")
            for reason, n in rejects.most_common(8):
                _say(f"        {n:>5}  {reason}")
    _say(
        f"    sandbox: OroCommerce {oro['total_requests']} requests ({write_counts(oro)} writes), "
        f"Mailchimp {mc['total_requests']} requests ({write_counts(mc)} writes), "
        f"peak Mailchimp connections {max(mc['connections']['peak'].values(), default=0)}"
    )


class Apis:
    """The two sandbox APIs, used as the shop's storefront and a subscriber would change consent."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        self.sandbox = sandbox
        self.oro_api = sandbox.info["oro"]["api_url"]
        mc = sandbox.info["mailchimp"]
        self.members = f"{mc['api_url']}/lists/{mc['list_id']}/members"
        self.mc = requests.Session()
        self.mc.auth = ("demo", mc["api_key"])
        self.mc.verify = sandbox.verify

    def oro(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        headers = {
            "Accept": JSONAPI,
            "Content-Type": JSONAPI,
            "Authorization": f"Bearer {self.sandbox.oro_token()}",
        }
        response = requests.request(
            method,
            f"{self.oro_api}/{path}",
            headers=headers,
            timeout=60,
            verify=self.sandbox.verify,
            **kwargs,
        )
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def member(self, subscriber_hash: str) -> dict[str, Any]:
        response = self.mc.get(
            f"{self.members}/{subscriber_hash}", params={"fields": "status"}, timeout=60
        )
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def linked_subscribers(self) -> dict[str, str]:
        """Oro customer user id -> subscriber hash of every subscribed member carrying one."""
        out: dict[str, str] = {}
        offset = 0
        while True:
            params: dict[str, Any] = {
                "status": "subscribed",
                "count": 1000,
                "offset": offset,
                "fields": f"members.id,members.merge_fields.{IDENTITY},total_items",
            }
            page = self.mc.get(self.members, params=params, timeout=60)
            page.raise_for_status()
            body = page.json()
            for m in body["members"]:
                oro_id = str((m.get("merge_fields") or {}).get(IDENTITY) or "").strip()
                if oro_id:
                    out[oro_id] = m["id"]
            offset += 1000
            if offset >= body["total_items"]:
                return out


#: Campaign results: Oro custom field on the campaign (target-orocommerce campaign_results) -> where
#: Mailchimp's campaign report has the figure.
RESULT_FIELDS = {
    "mc_emails_sent": ("emails_sent",),
    "mc_opens": ("opens", "opens_total"),
    "mc_unique_opens": ("opens", "unique_opens"),
    "mc_clicks": ("clicks", "clicks_total"),
    "mc_bounces": ("bounces", "hard_bounces", "+soft_bounces"),
    "mc_unsubscribes": ("unsubscribed",),
    "mc_open_rate": ("opens", "open_rate"),
    "mc_click_rate": ("clicks", "click_rate"),
    "mc_orders": ("ecommerce", "total_orders"),
    "mc_revenue": ("ecommerce", "total_revenue"),
}


def _report_figure(report: dict[str, Any], path: tuple[str, ...]) -> float:
    if path[-1].startswith("+"):  # a sum of two counters of the same object
        part = report[path[0]]
        return float(part[path[1]]) + float(part[path[2][1:]])
    value: Any = report
    for key in path:
        value = value[key]
    return float(value)


def campaign_results(sandbox: RunningSandbox, synced_at: str) -> bool:
    """Each sent campaign's results as an Oro user sees them (the campaign's ``mc_*`` fields), checked
    against Mailchimp's ``/reports``. A campaign opened or clicked after the last engagement-sync started
    (``synced_at``) is listed as moved on since, not as a mismatch."""
    apis = Apis(sandbox)
    page = apis.mc.get(f"{sandbox.mailchimp_api_url}/reports", params={"count": 1000}, timeout=60)
    page.raise_for_status()
    since = datetime.fromisoformat(synced_at)
    equal = moved = 0
    mismatches: list[str] = []
    for report in sorted(page.json()["reports"], key=lambda r: r["send_time"]):
        found = apis.oro("GET", "campaigns", params={"filter[code]": report["id"]})["data"]
        held = found[0]["attributes"] if found else {}
        differ = [
            name for name, path in RESULT_FIELDS.items()
            if held.get(name) is None
            or not math.isclose(float(held[name]), _report_figure(report, path), abs_tol=1e-4)
        ]
        title = held.get("name") or report["id"]
        if not held or held.get("mc_open_rate") is None:
            _say(f"   {title}: no results in OroCommerce")
        else:
            _say(
                f"   {title}: sent {held['mc_emails_sent']}, open rate {100 * held['mc_open_rate']:.1f} % "
                f"({held['mc_unique_opens']} unique, {held['mc_opens']} opens), click rate "
                f"{100 * held['mc_click_rate']:.1f} % ({held['mc_clicks']} clicks), bounces {held['mc_bounces']}, "
                f"unsubscribes {held['mc_unsubscribes']}, orders {held['mc_orders']}, "
                f"revenue {float(held['mc_revenue']):.2f}"
            )
        latest = [report["opens"].get("last_open"), report["clicks"].get("last_click")]
        if not differ:
            equal += 1
        elif any(t and datetime.fromisoformat(t) > since for t in latest):
            moved += 1
            _say(f"     (Mailchimp's report moved on since the sync: {', '.join(differ)}; the next sync writes it)")
        else:
            mismatches.append(f"{report['id']}: {', '.join(differ)}")
    _say(
        f"   equal to Mailchimp's /reports: {equal} of {equal + moved + len(mismatches)} campaigns"
        + (f", {moved} moved on since the sync" if moved else "")
        + (f"; DIFFERENT: {'; '.join(mismatches)}" if mismatches else "")
    )
    return not mismatches


@dataclass
class OptOut:
    """One person's opt-out: where it was made, and whether the other system ended up agreeing."""

    where: str  # "OroCommerce" or "Mailchimp"
    customer_user_id: str
    subscriber_hash: str
    reached: bool = False
    now: str = ""  # what the other system holds after the round

    def line(self) -> str:
        if self.where == "OroCommerce":
            who = f"customer user {self.customer_user_id}"
            made = f"opt-out in OroCommerce ({who}, {CONSENT_FIELD}: false)"
            seen = f"Mailchimp member {self.now}"
        else:
            made = f"unsubscribe in Mailchimp (member of customer user {self.customer_user_id})"
            seen = f"OroCommerce {CONSENT_FIELD}: {self.now}"
        return f"{made} -> {seen}: " + (
            "reached the other system" if self.reached else "NOT as expected"
        )


def stage_opt_outs(sandbox: RunningSandbox) -> list[OptOut]:
    """Two subscribed people with consent in Oro: one withdraws it in Oro, the other unsubscribes
    in Mailchimp (the lowest customer user ids that qualify: the same seed, the same people)."""
    apis = Apis(sandbox)
    linked = apis.linked_subscribers()
    users = apis.oro("GET", "customerusers", params={"page[size]": -1})["data"]
    eligible = sorted(
        (
            u["id"]
            for u in users
            if u["id"] in linked
            and u["attributes"].get("enabled")
            and not u["attributes"].get("isGuest")
            and u["attributes"].get(CONSENT_FIELD) is True
        ),
        key=int,
    )
    if len(eligible) < 2:
        msg = "the sandbox has fewer than two subscribed members with consent in OroCommerce"
        raise RuntimeError(msg)
    in_oro, in_mc = (
        OptOut("OroCommerce", eligible[0], linked[eligible[0]]),
        OptOut("Mailchimp", eligible[1], linked[eligible[1]]),
    )
    # The connectors' cut-offs are whole seconds: the changes come after the last run's.
    time.sleep(1.1)
    apis.oro(
        "PATCH",
        f"customerusers/{in_oro.customer_user_id}",
        json={
            "data": {
                "type": "customerusers",
                "id": in_oro.customer_user_id,
                "attributes": {CONSENT_FIELD: False},
            }
        },
    )
    response = apis.mc.patch(
        f"{apis.members}/{in_mc.subscriber_hash}", json={"status": "unsubscribed"}, timeout=60
    )
    response.raise_for_status()
    time.sleep(1.1)
    return [in_oro, in_mc]


def check_opt_outs(sandbox: RunningSandbox, opt_outs: list[OptOut]) -> None:
    """Read what the other system now holds for each opt-out."""
    apis = Apis(sandbox)
    for opt_out in opt_outs:
        if opt_out.where == "OroCommerce":
            opt_out.now = str(apis.member(opt_out.subscriber_hash)["status"])
            opt_out.reached = opt_out.now == "unsubscribed"
        else:
            user = apis.oro("GET", f"customerusers/{opt_out.customer_user_id}")["data"]
            value = user["attributes"].get(CONSENT_FIELD)
            opt_out.now = json.dumps(value)
            opt_out.reached = value is False


@dataclass
class Played:
    """What the rounds did: writes per round and job, the opt-outs, the first failing exit code."""

    writes: dict[int, dict[str, int]] = field(default_factory=dict)
    opt_outs: list[OptOut] = field(default_factory=list)
    returncode: int = 0
    started: dict[str, str] = field(default_factory=dict)  # job -> sandbox time its last run started

    @property
    def ok(self) -> bool:
        return (
            self.returncode == 0 and bool(self.opt_outs) and all(o.reached for o in self.opt_outs)
        )


def play(
    sandbox: RunningSandbox,
    env: dict[str, str],
    rounds: tuple[int, ...] = tuple(ROUNDS),
    on_line: Callable[[str], None] | None = None,
    on_raw: Callable[[str], None] | None = None,
    cwd: Path = ROOT,
) -> Played:
    """The demo's rounds against a running sandbox (also run by tests/e2e/test_no_echo.py).

    ``on_line`` and ``on_raw`` get each run's log lines (see :func:`pipelines.meltano`); ``cwd`` is
    the Meltano project (a test's copy of meltano.yml)."""
    played = Played()
    for round_no in rounds:
        _say()
        _say(f"== Round {round_no}: {ROUNDS[round_no]} ==")
        if round_no == 3:
            played.opt_outs = stage_opt_outs(sandbox)
            for opt_out in played.opt_outs:
                who = f"customer user {opt_out.customer_user_id}"
                _say(
                    f"   {opt_out.where}: {who} "
                    + (
                        "withdraws marketing consent (as the storefront's account page saves it)"
                        if opt_out.where == "OroCommerce"
                        else "unsubscribes (as the unsubscribe link does)"
                    )
                )
        played.writes[round_no] = {}
        for job, direction in JOBS:
            _say(f"  -> meltano run {job}   ({direction})")
            sandbox.reset_stats()
            played.started[job] = sandbox.now()
            with Progress(sandbox, job):
                result = meltano("run", job, env=env, on_line=on_line, on_raw=on_raw, cwd=cwd)
            oro, mc = sandbox.stats("oro"), sandbox.stats("mailchimp")
            report(job, result, oro, mc)
            if result.returncode != 0:
                _say("\n".join(result.log_tail[-40:]))
                played.returncode = result.returncode
                return played
            played.writes[round_no][job] = write_counts(oro) + write_counts(mc)
        if round_no == 3:
            check_opt_outs(sandbox, played.opt_outs)
            for opt_out in played.opt_outs:
                _say("   " + opt_out.line())
    return played


@dataclass
class AbandonedCart:
    """The abandoned-cart step: the cart, its buyer, the automation email and what Oro shows."""

    cart_id: str = ""
    customer_user_id: str = ""
    email_id: str = ""
    sent_to: int = 0  # carts the automation emailed
    oro_campaign: str = ""
    reached: bool = False
    returncode: int = 0

    def line(self) -> str:
        if not self.email_id:
            return "abandoned cart: no cart of a subscribed buyer was emailed (NOT as expected)"
        seen = (
            f"click activity on customer user {self.customer_user_id} in Oro campaign "
            f"'{self.oro_campaign}'"
            if self.reached
            else "no click activity in OroCommerce (NOT as expected)"
        )
        return (
            f"abandoned cart {self.cart_id}: automation email {self.email_id} sent to {self.sent_to} "
            f"cart(s), clicked by customer user {self.customer_user_id} -> {seen}"
        )


def abandoned_cart(sandbox: RunningSandbox, env: dict[str, str]) -> AbandonedCart:
    """An hour passes: the abandoned-cart email reaches the carts round 1 pushed; a buyer clicks it;
    `engagement-sync` brings the click to OroCommerce (sandbox README, "Automations")."""
    apis = Apis(sandbox)
    mc = sandbox.info["mailchimp"]["api_url"]
    done = AbandonedCart()
    _say("   an hour passes: Mailchimp's abandoned-cart automation emails the carts older than its delay")
    sandbox.advance_clock(3600 + 60)
    workflow = next(
        a
        for a in apis.mc.get(f"{mc}/automations", timeout=60).json()["automations"]
        if a["trigger_settings"]["workflow_type"] == "abandonedCart"
    )
    email_id = apis.mc.get(f"{mc}/automations/{workflow['id']}/emails", timeout=60).json()[
        "emails"
    ][0]["id"]
    store = workflow["recipients"]["store_id"]
    sent = apis.mc.get(
        f"{mc}/reports/{email_id}/sent-to", params={"count": 1000}, timeout=60
    ).json()["sent_to"]
    carts = apis.mc.get(
        f"{mc}/ecommerce/stores/{store}/carts", params={"count": 1000}, timeout=60
    ).json()["carts"]
    by_email = {c["customer"].get("email_address", "").lower(): c for c in carts}
    clicked = next((r for r in sent if r["email_address"].lower() in by_email), None)
    done.sent_to = len(sent)
    if clicked is None:
        return done
    cart = by_email[clicked["email_address"].lower()]
    done.cart_id, done.customer_user_id, done.email_id = cart["id"], cart["customer"]["id"], email_id
    _say(f"   the buyer of cart {cart['id']} (customer user {done.customer_user_id}) clicks its link")
    requests.post(
        f"{sandbox.info['mailchimp']['base_url']}/_sandbox/mailchimp/campaigns/{email_id}/engage",
        json={"subscriber_hash": clicked["email_id"], "action": "click"},
        timeout=60,
    ).raise_for_status()
    _say("  -> meltano run engagement-sync   (Mailchimp -> OroCommerce)")
    sandbox.reset_stats()
    with Progress(sandbox, "engagement-sync"):
        result = meltano("run", "engagement-sync", env=env)
    report("engagement-sync", result, sandbox.stats("oro"), sandbox.stats("mailchimp"))
    done.returncode = result.returncode
    campaigns = apis.oro("GET", "campaigns", params={"filter[code]": email_id})["data"]
    if not campaigns:
        return done
    campaign = campaigns[0]
    done.oro_campaign = str(campaign["attributes"]["name"])
    activities = apis.oro(
        "GET",
        "marketingactivities",
        params={"filter[campaign]": campaign["id"], "page[size]": -1},
    )["data"]
    done.reached = any(
        a["relationships"]["marketingActivityType"]["data"]["id"] == "click"
        and (a["relationships"]["entity"]["data"] or {}).get("id") == done.customer_user_id
        for a in activities
    )
    return done


def main() -> int:
    """Entry point of `make demo`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=300, help="sandbox size (Oro customers)")
    parser.add_argument("--workdir", default=str(ROOT / "output" / "demo"))
    parser.add_argument("--verbose", action="store_true", help="echo every log line of meltano")
    args = parser.parse_args()

    workdir = Path(args.workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    for leftover in remove_leftover_configs():  # an earlier run was killed: its secrets stay no more
        _say(f"   removed {leftover.relative_to(ROOT)} (left by a killed run)")

    _say("== Meltano plugins (from this repository, locked versions) ==")
    try:
        installed = meltano_install(install_env(workdir))
    except InstallError as err:
        _say(str(err))
        return 1
    _say("   installed" if installed else "   already installed, nothing changed: not reinstalled")

    _say(f"== Starting the sandbox ({args.customers} OroCommerce customers) on :8801 / :8802 ==")
    with running_sandbox(
        customers=args.customers,
        oro_port=8801,
        mailchimp_port=8802,
        **DEV_SANDBOX_OPTIONS,
    ) as sandbox:
        env = sandbox_env(sandbox.info, workdir)
        _say(f"   OroCommerce {sandbox.oro_api_url}   Mailchimp {sandbox.mailchimp_api_url}")
        echo = (lambda line: _say("     | " + line)) if args.verbose else None
        played = play(sandbox, env, on_line=echo)
        if played.returncode != 0:
            return played.returncode
        _say()
        _say("== Campaign results in OroCommerce (the campaigns' mc_* fields, read back) ==")
        results_ok = campaign_results(sandbox, played.started["engagement-sync"])
        _say("== An abandoned cart: the automation email, a click, the click in OroCommerce ==")
        cart = abandoned_cart(sandbox, env)
        if cart.returncode != 0:
            return cart.returncode
        _say()
        _say("== Summary ==")
        for job, _ in JOBS:
            _say(
                f"  {job:<16} writes: "
                + ", ".join(f"round {n} {w[job]:>5}" for n, w in sorted(played.writes.items()))
            )
        for opt_out in played.opt_outs:
            _say("  " + opt_out.line())
        _say("  " + cart.line())
        _say(f"  outputs, rejects and Meltano state: {workdir}")
        (workdir / "demo-summary.json").write_text(
            json.dumps(
                {
                    "writes": played.writes,
                    "opt_outs": [
                        {
                            "made_in": o.where,
                            "customer_user_id": o.customer_user_id,
                            "other_system_now": o.now,
                            "reached": o.reached,
                        }
                        for o in played.opt_outs
                    ],
                    "abandoned_cart": {
                        "cart_id": cart.cart_id,
                        "customer_user_id": cart.customer_user_id,
                        "automation_email_id": cart.email_id,
                        "carts_emailed": cart.sent_to,
                        "oro_campaign": cart.oro_campaign,
                        "click_reached_oro": cart.reached,
                    },
                },
                indent=2,
            )
        )
    _say("== Sandbox stopped ==")
    return 0 if played.ok and results_ok and cart.reached else 1


if __name__ == "__main__":
    raise SystemExit(main())
