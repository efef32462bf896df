"""Clients and the Meltano project handle used by the end-to-end tests."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from oromc_sandbox.testing import RunningSandbox  # noqa: E402
from pipelines import (  # noqa: E402
    NO_LATENCY_BATCH_POLL_SECONDS,
    RunResult,
    meltano,
    private_sys_dir,
    sandbox_env,
)

JSONAPI = "application/vnd.api+json"


class Oro:
    """A tiny JSON:API client for the sandbox's OroCommerce (test set-up and assertions only)."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        self.info = sandbox.info["oro"]
        self.api = self.info["api_url"]
        self.session = requests.Session()
        self.session.headers.update({"Accept": JSONAPI, "Content-Type": JSONAPI})
        self._authorize()

    def _authorize(self) -> None:
        token = requests.post(
            self.info["token_url"],
            json={
                "grant_type": "client_credentials",
                "client_id": self.info["client_id"],
                "client_secret": self.info["client_secret"],
            },
            timeout=30,
        ).json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {token}"

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request; a 401 (the sandbox clock may have moved past the token's expiry) re-authorizes once."""
        response = self.session.request(method, f"{self.api}/{path}", timeout=60, **kwargs)
        if response.status_code == 401:
            self._authorize()
            response = self.session.request(method, f"{self.api}/{path}", timeout=60, **kwargs)
        return response

    def get(self, path: str, **params: Any) -> Any:
        response = self._send("GET", path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, document: dict[str, Any]) -> Any:
        response = self._send("POST", path, json=document)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def patch(self, path: str, document: dict[str, Any]) -> Any:
        response = self._send("PATCH", path, json=document)
        assert response.status_code == 200, response.text
        return response.json()

    def all(self, resource: str, **params: Any) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.get(resource, **{"page[size]": -1, **params})["data"]
        return data

    def customer_user_by_email(self, email: str) -> dict[str, Any]:
        rows = self.get("customerusers", **{"filter[email]": email})["data"]
        assert len(rows) == 1, f"expected one customer user for the address, got {len(rows)}"
        row: dict[str, Any] = rows[0]
        return row

    def activities_of(self, customer_user_id: str) -> list[tuple[str, str | None]]:
        """(type, campaign id) of every marketing activity on one customer user."""
        out = []
        for row in self.all("marketingactivities"):
            rel = row["relationships"]
            entity = rel["entity"]["data"]
            if entity and entity["type"] == "customerusers" and entity["id"] == customer_user_id:
                campaign = (rel.get("campaign") or {}).get("data")
                out.append(
                    (rel["marketingActivityType"]["data"]["id"], campaign and campaign["id"])
                )
        return out


class Mailchimp:
    """A tiny Mailchimp client for the sandbox (test set-up and assertions only)."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        info = sandbox.info["mailchimp"]
        self.api = info["api_url"]
        self.list_id = info["list_id"]
        self.session = requests.Session()
        self.session.auth = ("test", info["api_key"])

    @staticmethod
    def hash(email: str) -> str:
        return hashlib.md5(email.strip().lower().encode()).hexdigest()  # noqa: S324 - Mailchimp's id

    def get(self, path: str, **params: Any) -> Any:
        response = self.session.get(f"{self.api}/{path}", params=params, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        response = self.session.request(method, f"{self.api}/{path}", json=body, timeout=60)
        assert response.status_code in (200, 204), response.text
        return response

    def member(self, email: str) -> dict[str, Any]:
        data: dict[str, Any] = self.get(f"lists/{self.list_id}/members/{self.hash(email)}")
        return data

    def snapshot(self) -> dict[str, tuple[str, tuple[tuple[str, Any], ...], tuple[str, ...]]]:
        """Every member's status, merge fields and tags (what a sync decides), keyed by email."""
        out = {}
        offset = 0
        while True:
            page = self.get(
                f"lists/{self.list_id}/members",
                count=1000,
                offset=offset,
                fields="members.email_address,members.status,members.merge_fields,members.tags,total_items",
            )
            for m in page["members"]:
                tags = tuple(sorted(t["name"] for t in m.get("tags", [])))
                merge = tuple(sorted((k, str(v)) for k, v in m["merge_fields"].items()))
                out[m["email_address"].lower()] = (m["status"], merge, tags)
            offset += 1000
            if offset >= page["total_items"]:
                return out

    def send_campaign_to(self, emails: list[str], tag: str) -> str:
        """Create a campaign for ``emails`` only (through a static tag segment) and send it."""
        for email in emails:
            self.call(
                "POST",
                f"lists/{self.list_id}/members/{self.hash(email)}/tags",
                {"tags": [{"name": tag, "status": "active"}]},
            )
        segments = self.get(f"lists/{self.list_id}/segments", count=1000)["segments"]
        segment_id = next(s["id"] for s in segments if s["name"] == tag)
        campaign = self.call(
            "POST",
            "campaigns",
            {
                "type": "regular",
                "recipients": {
                    "list_id": self.list_id,
                    "segment_opts": {"saved_segment_id": segment_id},
                },
                "settings": {
                    "subject_line": "Autumn offers",
                    "title": f"e2e {tag}",
                    "from_name": "Shop",
                    "reply_to": "shop@example.com",
                },
            },
        ).json()
        self.call("POST", f"campaigns/{campaign['id']}/actions/send")
        return str(campaign["id"])


#: The setting every Mailchimp connector gets in :func:`project_copy`: its /batches jobs on a sandbox
#: without latency take a tenth of Mailchimp's time, and so does the wait before the first poll.
QUICK_BATCHES = {"batch_poll_seconds": NO_LATENCY_BATCH_POLL_SECONDS}
MAILCHIMP_CONNECTORS = ("target-mailchimp", "tap-mailchimp-engagement")


def project_copy(
    folder: Path,
    settings: dict[str, Any],
    connectors: Iterable[str] = MAILCHIMP_CONNECTORS,
    required: Iterable[str] | None = None,
) -> Path:
    """A copy of the project's meltano.yml in ``folder`` whose `dev` environment sets ``settings`` on
    each of ``connectors`` (those of them the connector declares; each must declare ``required``,
    by default all of them), for :class:`Project`'s ``root``. Not environment variables: Meltano
    4.4.1 cannot pass a decimal setting from one (README "Known Meltano issues")."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    declared = {
        plugin["name"]: {setting["name"] for setting in plugin.get("settings", [])}
        for plugins in project["plugins"].values()
        for plugin in plugins
    }
    dev = next(env for env in project["environments"] if env["name"] == "dev")
    configs = {p["name"]: p for plugins in dev["config"]["plugins"].values() for p in plugins}
    for name in connectors:
        assert set(settings if required is None else required) <= declared[name], name
        config = configs[name].setdefault("config", {})
        config.update({k: v for k, v in settings.items() if k in declared[name]})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meltano.yml").write_text(yaml.safe_dump(project, sort_keys=False))
    return folder


class Project:
    """The Meltano project pointed at one sandbox, with state and outputs in a temporary folder.

    ``root``: the folder holding the `meltano.yml` to run (the repository's, or a test's copy of it).
    Runs take no project lock: each project has its own system directory (`MELTANO_SYS_DIR_ROOT`),
    so tests on parallel workers run their jobs at the same time.
    """

    def __init__(self, sandbox: RunningSandbox, workdir: Path, root: Path = ROOT) -> None:
        self.sandbox = sandbox
        self.workdir = workdir
        self.root = root
        self.env = sandbox_env(sandbox.info, workdir)
        # its own `.meltano/run`: tests on the other worker run the same plugins at the same time
        self.env["MELTANO_SYS_DIR_ROOT"] = str(private_sys_dir(workdir))
        self.oro = Oro(sandbox)
        self.mailchimp = Mailchimp(sandbox)

    def run(self, *args: str) -> RunResult:
        return meltano("run", *args, env=self.env, cwd=self.root, lock=False).check()


# -- the end state of both systems, compared between a fault-free and a faulty run --

VOLATILE = frozenset(
    {"_links", "created_at", "updated_at", "last_changed", "timestamp_opt", "timestamp_signup",
     "createdAt", "updatedAt", "stats", "web_id", "unique_email_id", "contact_id", "id_hash"}
)  # fmt: skip
"""Keys set from the servers' clocks or their own counters: not what a sync decides."""
LOOPBACK = re.compile(r"https?://127\.0\.0\.1:\d+")


def _stable(value: Any) -> Any:
    """``value`` without :data:`VOLATILE` keys, as nested sorted tuples (hashable and comparable)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _stable(v)) for k, v in value.items() if k not in VOLATILE))
    if isinstance(value, list):
        return _sorted(_stable(v) for v in value)
    if isinstance(value, str):
        return LOOPBACK.sub("http://sandbox", value)  # each sandbox has its own ports
    return value


def _sorted(items: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(sorted(items, key=repr))


def _multiset(items: list[Any]) -> tuple[tuple[Any, int], ...]:
    counts: dict[Any, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return _sorted(counts.items())


def _mailchimp_all(mc: Mailchimp, path: str, key: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = mc.get(path, count=1000, offset=len(out))
        out += page[key]
        if len(out) >= page["total_items"] or not page[key]:
            return out


def _mailchimp_state(mc: Mailchimp) -> dict[str, Any]:
    merge_fields = mc.get(f"lists/{mc.list_id}/merge-fields", count=1000)["merge_fields"]
    state: dict[str, Any] = {
        "members": _sorted(mc.snapshot().items()),
        "merge fields": _stable([{k: f[k] for k in ("tag", "name", "type")} for f in merge_fields]),
    }
    for store in _mailchimp_all(mc, "ecommerce/stores", "stores"):
        base = f"ecommerce/stores/{store['id']}"
        state[f"store {store['id']}"] = _stable(store)
        for kind in ("customers", "products", "orders", "carts"):
            state[f"store {store['id']} {kind}"] = _stable(
                _mailchimp_all(mc, f"{base}/{kind}", kind)
            )
    return state


def _activity(
    row: dict[str, Any], who: str | None, campaign: str | None, runs_from: datetime | None
) -> Any:
    """(type, person, campaign code, date, details) of an activity.

    An event the runs themselves caused (a member unsubscribed by audience-sync, read back by
    engagement-sync) is dated when the run got there: its date, and the time-based key, become
    ``"during the runs"`` (``runs_from``: the sandbox time the runs started).
    """
    kind = (row["relationships"]["marketingActivityType"].get("data") or {}).get("id")
    date = row["attributes"].get("actionDate")
    details = json.loads(row["attributes"].get("details") or "{}")
    if runs_from and date and datetime.fromisoformat(date.replace("Z", "+00:00")) >= runs_from:
        date = "during the runs"
        details = {k: v for k, v in details.items() if k not in {"key", "timestamp"}}
    return (kind, who, campaign, date, _stable(details))


def _oro_state(sandbox: RunningSandbox, oro: Oro, runs_from: datetime | None) -> dict[str, Any]:
    users = {u["id"]: u for u in oro.all("customerusers")}
    email = {i: u["attributes"]["email"].lower() for i, u in users.items()}
    tags = {t["id"]: t["attributes"]["name"] for t in oro.all("tags")}
    campaigns = {c["id"]: c["attributes"]["code"] for c in oro.all("campaigns")}

    def ref(row: dict[str, Any], name: str) -> str | None:
        data = (row["relationships"].get(name) or {}).get("data")
        return str(data["id"]) if data else None

    def user_row(u: dict[str, Any]) -> Any:
        a = u["attributes"]
        own = (u["relationships"].get("tags") or {}).get("data") or []
        return (a["email"].lower(), a.get("firstName"), a.get("lastName"), a.get("marketing_consent"),
                a.get("enabled"), tuple(sorted(tags.get(t["id"], t["id"]) for t in own)))  # fmt: skip

    activities = [
        _activity(
            row,
            email.get(ref(row, "entity") or ""),
            campaigns.get(ref(row, "campaign") or ""),
            runs_from,
        )
        for row in oro.all("marketingactivities")
    ]
    lists = sandbox.control("oro").get("/_sandbox/oro/marketinglists").json()
    addresses = [
        (
            email.get(ref(a, "customerUser") or "", ""),
            a["attributes"].get("phone"),
            a["attributes"].get("primary"),
        )
        for a in oro.all("customeruseraddresses")
    ]
    unsubscribed = [
        (ml_id, tuple(sorted(email.get(str(e), str(e)) for e in ml["unsubscribed"])))
        for ml_id, ml in lists.items()
    ]
    conversions = [
        (o["id"], campaigns.get(ref(o, "campaign") or ""))
        for o in oro.all("orders")
        if ref(o, "campaign")
    ]
    return {
        "customer users": _sorted(user_row(u) for u in users.values()),
        "addresses": _sorted(addresses),
        "campaigns": _sorted(
            (c["attributes"]["code"], c["attributes"]["name"]) for c in oro.all("campaigns")
        ),
        "activities": _multiset(activities),
        "unsubscribes": _sorted(unsubscribed),
        "conversions": _sorted(conversions),
    }


def end_state(project: Project, runs_from: str | None = None) -> dict[str, Any]:
    """What both systems hold that a sync decides, by section (comparable with ``==``).

    Server-set stamps and ids are left out (:data:`VOLATILE`); ``runs_from`` (sandbox time, ISO)
    makes activities dated after it compare without their date (see :func:`_activity`).
    """
    since = datetime.fromisoformat(runs_from) if runs_from else None
    return {
        **{f"mailchimp {k}": v for k, v in _mailchimp_state(project.mailchimp).items()},
        **{f"oro {k}": v for k, v in _oro_state(project.sandbox, project.oro, since).items()},
    }


def diff_states(expected: dict[str, Any], actual: dict[str, Any], limit: int = 12) -> str:
    """A readable difference: per section, the items missing and the items not expected."""
    lines = []
    for section in sorted(set(expected) | set(actual)):
        want, got = expected.get(section, ()), actual.get(section, ())
        if want == got:
            continue
        want_items = set(want) if isinstance(want, tuple) else {want}
        got_items = set(got) if isinstance(got, tuple) else {got}
        missing, extra = (
            sorted(want_items - got_items, key=repr),
            sorted(got_items - want_items, key=repr),
        )
        lines.append(f"{section}: {len(missing)} missing, {len(extra)} unexpected")
        lines += [f"  - {item!r:.300}" for item in missing[:limit]]
        lines += [f"  + {item!r:.300}" for item in extra[:limit]]
    return "\n".join(lines) or "identical"


def run_until_ok(project: Project, job: str, attempts: int = 6) -> list[RunResult]:
    """`meltano run job` again until it exits 0 (as a scheduler would, next time); every run's result.

    ``--force``: a run that failed hard may still be recorded as running.
    """
    results = []
    for _ in range(attempts):
        result = meltano("run", "--force", job, env=project.env, cwd=project.root, lock=False)
        results.append(result)
        if result.returncode == 0:
            return results
    tail = "\n".join(results[-1].log_tail[-40:])
    msg = f"{job} never exited 0 in {attempts} runs; the last one ended with:\n{tail}"
    raise AssertionError(msg)
