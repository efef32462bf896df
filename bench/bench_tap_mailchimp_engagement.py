"""Benchmark: tap-mailchimp-engagement against its published peers on the same sandbox data.

Run:  .venv/bin/python bench/bench_tap_mailchimp_engagement.py [--customers 20000] [--extra-campaigns 16]
          [--peers singer,airbyte | --peers none]

Two jobs, each run by every tap from empty state on the same sandbox:

* ``members``: the audience (ours ``lists`` + ``members``; singer-io ``lists`` + ``list_members``;
  Airbyte ``lists`` + ``list_members``);
* ``email_activity``: every campaign's email activity (ours ``email_activity``, once through ``/batches``
  (``use_batches=always``) and once through paged reads (``never``); singer-io ``reports_email_activity``, which
  uses ``/batches``; Airbyte ``email_activity``, paged, one campaign after another).

The peers are the published singer-io ``tap-mailchimp`` 1.3.3 and Airbyte's ``airbyte-source-mailchimp``
2.0.37 (airbyte-cdk 4.6.2), each installed into its own venv from its hashed lock by scripts/peer_venvs.py
(before anything else, with network). Nothing of them is changed: they build ``https://us21.api.mailchimp.com``
themselves, so the benchmark re-executes itself in a private network and mount namespace (scripts/real_host.py)
where that name is the loopback address, the sandbox serves HTTPS on port 443 with a certificate from a
throw-away CA, and every tap trusts that CA (``REQUESTS_CA_BUNDLE``; Airbyte's CDK ignores the variable, so its
venv's certifi bundle gets the CA through a bind mount of this namespace). Ours runs on the same URL.

The sandbox clock starts in the past (``--epoch``, now minus 30 days plus the campaigns' span) and ends, after
``--extra-campaigns`` more campaigns are sent and it moves 12 days on, still before the machine's clock: Airbyte's
incremental streams read up to the machine's now and would skip activity "in the future". The account then holds
~320,000 email-activity rows and ~37,000 members with the default 20,000 customers (about 20 minutes on a loaded
2-core machine, 12 of them Airbyte's); 60,000 customers give > 1,000,000 rows and > 100,000 members.

Every tap runs from compiled bytecode (:func:`compile_bytecode`, before the runs, into ``.venv/pycache`` as
``make test`` does): with PYTHONDONTWRITEBYTECODE set (as on the benchmark machine) a process would otherwise
compile every module it imports at each start, ~1 s of each run of ours, which a user's installation does
not pay after its first run.

Per run: rows per stream, wall time, rows/s, API calls (the sandbox's stats), peak connections, peak RSS of the
tap process, and, per job, ratios ours / peer and the rows each side read (a peer that reads fewer rows than
ours is reported, not hidden). Written to ``bench/results/tap_mailchimp_engagement.json``; a Markdown table
is printed last.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from oromc_sandbox.testing import running_sandbox
from tap_mailchimp_engagement.tap import TapMailchimpEngagement

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "scripts"))
from peer_venvs import ensure  # noqa: E402
from real_host import (  # noqa: E402
    in_namespace,
    loopback_up,
    make_ca_and_cert,
    point_hosts_at_loopback,
    reexec_in_namespace,
    trust_ca_in,
)

RESULTS = BENCH / "results" / "tap_mailchimp_engagement.json"
DC = "us21"
HOST = f"{DC}.api.mailchimp.com"
PEERS = {"singer": "tap-mailchimp-singer", "airbyte": "airbyte-source-mailchimp"}
# job -> tap -> streams selected (the first is the job's main stream: its rows are compared)
JOBS: dict[str, dict[str, list[str]]] = {
    "members": {"ours": ["members", "lists"], "singer": ["list_members", "lists"],
                "airbyte": ["list_members", "lists"]},
    "email_activity": {"ours": ["email_activity"], "singer": ["reports_email_activity"],
                       "airbyte": ["email_activity"]},
}  # fmt: skip

# Runs a command and reports its peak RSS (KiB) from getrusage(RUSAGE_CHILDREN) on stderr's last line.
PEAK_WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:]).returncode\n"
    "sys.stderr.write('PEAK_RSS_KB=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(rc)\n"
)


def add_campaigns(sb: Any, session: requests.Session, count: int) -> None:
    """Send ``count`` campaigns spread over the next days, then move the clock past their engagement."""
    api, list_id = sb.mailchimp_api_url, sb.info["mailchimp"]["list_id"]
    for i in range(count):
        body = {
            "type": "regular",
            "recipients": {"list_id": list_id},
            "settings": {"subject_line": f"Bench {i}", "title": f"Bench {i}", "from_name": "Shop",
                         "reply_to": "news@shop.example.com"},
        }  # fmt: skip
        cid = session.post(f"{api}/campaigns", json=body, timeout=600).json()["id"]
        session.post(f"{api}/campaigns/{cid}/actions/send", timeout=600).raise_for_status()
        sb.advance_clock(12 * 3600)
    sb.advance_clock(12 * 86400)


def select(catalog: dict[str, Any], streams: list[str]) -> dict[str, Any]:
    """A Singer catalog with ``streams`` (and every field of them) selected, everything else not."""
    for entry in catalog["streams"]:
        wanted = entry["tap_stream_id"] in streams
        if not any(meta["breadcrumb"] == [] for meta in entry["metadata"]):
            entry["metadata"].append({"breadcrumb": [], "metadata": {}})
        for meta in entry["metadata"]:
            meta["metadata"]["selected"] = wanted
    return catalog


def configure(airbyte_catalog: dict[str, Any], streams: list[str]) -> dict[str, Any]:
    """An Airbyte configured catalog of ``streams``: incremental where the stream supports it."""
    chosen = []
    for stream in airbyte_catalog["streams"]:
        if stream["name"] in streams:
            mode = "incremental" if "incremental" in stream["supported_sync_modes"] else "full_refresh"
            chosen.append({"stream": stream, "sync_mode": mode, "destination_sync_mode": "append"})
    return {"streams": chosen}


def compile_bytecode(venvs: list[Path]) -> None:
    """Bytecode of every module of ``venvs`` and of this repository's packages, for this process and
    every process it starts: PYTHONDONTWRITEBYTECODE unset and PYTHONPYCACHEPREFIX ``.venv/pycache`` (as
    ``make test``), then ``compileall`` (files it cannot compile, e.g. test data, are skipped), each venv
    with its own interpreter; a second call only checks the files' times."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(Path(sys.prefix) / "pycache")
    ours = [str(ROOT / "common" / "oromc_common"),
            str(ROOT / "tap-mailchimp-engagement" / "tap_mailchimp_engagement"),
            str(ROOT / "sandbox" / "oromc_sandbox")]  # fmt: skip
    for venv in venvs:
        python = venv / "bin" / "python"
        targets = [str(lib) for lib in sorted(venv.glob("lib/python3*"))]
        if venv == Path(sys.prefix):
            targets += ours
        subprocess.run([str(python), "-m", "compileall", "-q", "-j", "0", *targets],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)  # fmt: skip


def run_tap(argv: list[str], env: dict[str, str], out: Path) -> dict[str, Any]:
    """Run a tap under the peak-RSS wrapper, stdout to ``out``; return wall time, peak RSS, counts."""
    start = time.perf_counter()
    with out.open("wb") as sink:
        proc = subprocess.run(
            [sys.executable, "-c", PEAK_WRAPPER, *argv], stdout=sink, stderr=subprocess.PIPE,
            env=env, check=False,
        )  # fmt: skip
    wall = time.perf_counter() - start
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        sys.stderr.write(err[-6000:])
        msg = f"{argv[0]} failed with exit code {proc.returncode}"
        raise RuntimeError(msg)
    peak = int(err.rsplit("PEAK_RSS_KB=", 1)[1].split()[0])
    counts: dict[str, int] = {}
    with out.open("rb") as handle:
        for line in handle:
            if line.startswith((b'{"type":"RECORD"', b'{"type": "RECORD"')):
                message = json.loads(line)
                stream = message.get("stream") or message["record"]["stream"]  # Singer or Airbyte
                counts[stream] = counts.get(stream, 0) + 1
    out.unlink()
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(peak / 1024, 1), "rows": counts,
            "stderr_tail": err[-1500:]}  # fmt: skip


def api_calls(sb: Any) -> dict[str, Any]:
    stats = sb.stats("mailchimp")
    return {"total": stats["total_requests"], "by_route": {
        route: sum(statuses.values()) for route, statuses in stats["requests"].items()},
        "peak_connections": max((stats["connections"]["peak"] or {"-": 0}).values())}  # fmt: skip


class Runner:
    """Runs each tap on a job against one sandbox, in a work directory."""

    def __init__(self, sb: Any, work: Path, peers: dict[str, Path]) -> None:
        self.sb, self.work, self.peers = sb, work, peers
        self.key = sb.info["mailchimp"]["api_key"]
        self.env = dict(os.environ)

    def _measure(self, name: str, argv: list[str], main_stream: str) -> dict[str, Any]:
        self.sb.reset_stats()
        run = run_tap(argv, self.env, self.work / f"{name}.out")
        run["api_calls"] = api_calls(self.sb)
        rows = run["rows"].get(main_stream, 0)
        run["main_rows"] = rows
        run["main_rows_per_s"] = round(rows / run["wall_s"], 1) if run["wall_s"] else None
        if rows:
            run.pop("stderr_tail", None)
        return run

    def ours(self, name: str, streams: list[str], **settings: Any) -> dict[str, Any]:
        cfg = {"api_key": self.key, "api_url": f"https://{HOST}/3.0", **settings}
        config, catalog = self.work / f"{name}.json", self.work / f"{name}-catalog.json"
        config.write_text(json.dumps(cfg))
        tap_catalog = TapMailchimpEngagement(config=cfg, parse_env_config=False).catalog_dict
        catalog.write_text(json.dumps(select(tap_catalog, streams)))
        exe = str(Path(sys.executable).parent / "tap-mailchimp-engagement")
        return self._measure(name, [exe, "--config", str(config), "--catalog", str(catalog)], streams[0])

    def singer(self, name: str, streams: list[str]) -> dict[str, Any]:
        cfg = {"api_key": self.key, "dc": DC, "start_date": "2000-01-01T00:00:00Z", "page_size": "1000"}
        config, catalog = self.work / f"{name}.json", self.work / f"{name}-catalog.json"
        config.write_text(json.dumps(cfg))
        exe = str(self.peers["singer"])
        disc = subprocess.run([exe, "--config", str(config), "--discover"], capture_output=True, env=self.env,
                              check=True)  # fmt: skip
        catalog.write_text(json.dumps(select(json.loads(disc.stdout), streams)))
        return self._measure(name, [exe, "--config", str(config), "--catalog", str(catalog)], streams[0])

    def airbyte(self, name: str, streams: list[str]) -> dict[str, Any]:
        cfg = {"credentials": {"auth_type": "apikey", "apikey": self.key}, "start_date": "2000-01-01T00:00:00.000Z"}
        config, catalog = self.work / f"{name}.json", self.work / f"{name}-catalog.json"
        config.write_text(json.dumps(cfg))
        exe = str(self.peers["airbyte"])
        disc = subprocess.run([exe, "discover", "--config", str(config)], capture_output=True, env=self.env,
                              check=True)  # fmt: skip
        found = next(json.loads(line)["catalog"] for line in disc.stdout.splitlines()
                     if line.startswith(b'{"type": "CATALOG"') or line.startswith(b'{"type":"CATALOG"'))  # fmt: skip
        catalog.write_text(json.dumps(configure(found, streams)))
        return self._measure(name, [exe, "read", "--config", str(config), "--catalog", str(catalog)], streams[0])


def compare(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    """Ours / peer on the job's main stream: speed, calls, memory, and the rows each side read."""
    return {
        "rows_per_s": round(ours["main_rows_per_s"] / peer["main_rows_per_s"], 2) if peer["main_rows_per_s"] else None,
        "wall_s": round(ours["wall_s"] / peer["wall_s"], 2),
        "api_calls": round(ours["api_calls"]["total"] / max(1, peer["api_calls"]["total"]), 3),
        "peak_rss": round(ours["peak_rss_mb"] / max(0.1, peer["peak_rss_mb"]), 2),
        "rows_read": {"ours": ours["main_rows"], "peer": peer["main_rows"],
                      "peer_missed": ours["main_rows"] - peer["main_rows"]},
    }  # fmt: skip


def table(results: dict[str, Any]) -> str:
    """The runs as a Markdown table."""
    lines = ["| job | tap | rows | wall s | rows/s | API calls | peak RSS MB |", "|---|---|---:|---:|---:|---:|---:|"]
    for job, runs in results["jobs"].items():
        for tap, run in runs.items():
            lines.append(f"| {job} | {tap} | {run['main_rows']:,} | {run['wall_s']} | {run['main_rows_per_s']:,} "
                         f"| {run['api_calls']['total']:,} | {run['peak_rss_mb']} |")  # fmt: skip
    return "\n".join(lines)


def bench(args: argparse.Namespace, peers: dict[str, Path]) -> dict[str, Any]:
    """In the namespace: start the sandbox on the real host name, run every tap on every job."""
    loopback_up()
    with tempfile.TemporaryDirectory(prefix="bench-mc-") as tmp_name:
        work = Path(tmp_name)
        ca, chain, key = make_ca_and_cert(work, HOST)
        point_hosts_at_loopback(work, [HOST, "login.mailchimp.com"])
        os.environ["REQUESTS_CA_BUNDLE"] = os.environ["CURL_CA_BUNDLE"] = str(ca)
        if "airbyte" in peers:
            certifi = subprocess.run(
                [str(peers["airbyte"].with_name("python")), "-c", "import certifi; print(certifi.where())"],
                capture_output=True, text=True, check=True,
            ).stdout.strip()  # fmt: skip
            trust_ca_in(Path(certifi), ca, work)
        epoch = datetime.now(UTC) - timedelta(days=30 + args.extra_campaigns / 2)
        t0 = time.perf_counter()
        with running_sandbox(customers=args.customers, latency="none", mailchimp_dc=DC, mailchimp_port=443,
                             tls_cert=str(chain), tls_key=str(key), epoch=epoch.isoformat()) as sb:  # fmt: skip
            seeded = time.perf_counter() - t0
            session = requests.Session()
            session.auth = ("bench", sb.info["mailchimp"]["api_key"])
            add_campaigns(sb, session, args.extra_campaigns)
            session.close()
            results: dict[str, Any] = {
                "sandbox": {"customers": args.customers, "extra_campaigns": args.extra_campaigns,
                            "start_and_seed_s": round(seeded, 1), "clock_at_end": sb.now(), "host": HOST},
                "jobs": {}, "ratios_ours_over_peer": {},
            }  # fmt: skip
            run = Runner(sb, work, peers)
            for job, taps in JOBS.items():
                runs: dict[str, Any] = {}
                if job == "email_activity":
                    runs["ours_batches"] = run.ours(f"{job}-ours-b", taps["ours"], use_batches="always")
                    runs["ours_paged"] = run.ours(f"{job}-ours-p", taps["ours"], use_batches="never")
                else:
                    runs["ours"] = run.ours(f"{job}-ours", taps["ours"])
                if "singer" in peers:
                    runs["singer"] = run.singer(f"{job}-singer", taps["singer"])
                if "airbyte" in peers:
                    runs["airbyte"] = run.airbyte(f"{job}-airbyte", taps["airbyte"])
                results["jobs"][job] = runs
                for ours_name in (n for n in runs if n.startswith("ours")):
                    for peer in peers:
                        results["ratios_ours_over_peer"][f"{job}:{ours_name}/{peer}"] = compare(
                            runs[ours_name], runs[peer]
                        )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--extra-campaigns", type=int, default=16)
    parser.add_argument("--peers", default="singer,airbyte", help="comma-separated: singer, airbyte; or none")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON results go")
    args = parser.parse_args()
    names = [] if args.peers == "none" else [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = sorted(set(names) - set(PEERS))
    if unknown:
        parser.error(f"unknown peer(s): {', '.join(unknown)}")
    if not in_namespace():
        commands = [ensure(PEERS[name]) for name in names]  # venvs first: the namespace has no network
        compile_bytecode([Path(sys.prefix), *(command.parent.parent for command in commands)])
        return reexec_in_namespace([str(Path(__file__).resolve()), *sys.argv[1:]])
    peers = {name: ensure(PEERS[name]) for name in names}
    results = bench(args, peers)
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(json.dumps(results, indent=2, sort_keys=True))
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
