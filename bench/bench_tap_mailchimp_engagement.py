"""Benchmark: tap-mailchimp-engagement vs. singer-io tap-mailchimp on the same sandbox data.

Run:  .venv/bin/python bench/bench_tap_mailchimp_engagement.py [--customers 60000] [--extra-campaigns 16]
          [--skip-singer]

What it does:
1. makes a self-signed certificate (``openssl``) for ``*.api.mailchimp.com``, ``localhost`` and
   ``127.0.0.1`` and starts the sandbox over HTTPS with it (``--tls-cert/--tls-key``, latency "none");
2. sends ``--extra-campaigns`` more campaigns through the API and moves the sandbox clock 12 days on, so the
   account holds >= 1,000,000 email-activity rows and (with 60,000 customers) > 100,000 members;
3. runs ``tap-mailchimp-engagement`` as a subprocess against ``https://127.0.0.1:<port>/3.0`` with
   ``REQUESTS_CA_BUNDLE`` = the certificate, three times from empty state: streams lists, members, campaigns,
   email_activity, unsubscribes with default settings (``/batches`` for this first read) and with paged reads
   (``use_batches=never``), then lists + members only;
4. creates ``bench/.venv-tap-mailchimp`` (git-ignored: a ``.gitignore`` with ``*`` inside), installs singer-io
   ``tap-mailchimp`` 1.3.3 into it from ``requirements/tap-mailchimp-singer.txt`` (hashed lock), and runs it on the
   equivalent streams (lists, list_members, campaigns, unsubscribes, reports_email_activity, and lists +
   list_members only). That tap builds ``https://<dc>.api.mailchimp.com`` itself, so a ``sitecustomize.py`` in its
   venv resolves ``*.api.mailchimp.com`` to the sandbox's 127.0.0.1 port (nothing leaves the machine); the tap's
   requests are not changed (tests/sandbox_mailchimp/test_singer_tap_mailchimp.py runs it entirely unmodified,
   on the real host name in a network namespace);
5. prints and writes ``bench/results/tap_mailchimp_engagement.json``: rows per stream, wall time, rows/s,
   API calls (sandbox stats), peak RSS of each tap process, and ratios (ours / theirs).

The sandbox runs every page of a batch GET operation that names no ``count``/``offset`` (as Mailchimp does: "each
page counts as a separate operation"), so the published tap, which sends its email-activity operations that way,
gets every email-activity row and the email-activity comparison is like for like.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path
from typing import Any

import requests
from oromc_sandbox.testing import running_sandbox
from tap_mailchimp_engagement.tap import TapMailchimpEngagement

BENCH = Path(__file__).resolve().parent
SINGER_VENV = BENCH / ".venv-tap-mailchimp"
RESULTS = BENCH / "results" / "tap_mailchimp_engagement.json"
OURS = ["lists", "members", "campaigns", "email_activity", "unsubscribes"]
THEIRS = ["lists", "list_members", "campaigns", "unsubscribes", "reports_email_activity"]
SAME = {"lists": "lists", "list_members": "members", "campaigns": "campaigns",
        "unsubscribes": "unsubscribes", "reports_email_activity": "email_activity"}  # fmt: skip

# Resolve *.api.mailchimp.com to the sandbox (loaded by the singer tap's interpreter at start-up).
SITECUSTOMIZE = '''
import os, socket
_port = os.environ.get("BENCH_MAILCHIMP_PORT")
_orig = socket.getaddrinfo
def _getaddrinfo(host, port, *args, **kwargs):
    if _port and isinstance(host, str) and host.endswith(".api.mailchimp.com"):
        return _orig("127.0.0.1", int(_port), *args, **kwargs)
    return _orig(host, port, *args, **kwargs)
socket.getaddrinfo = _getaddrinfo

'''

# Runs a command and reports its peak RSS (KiB) from getrusage(RUSAGE_CHILDREN) on stderr's last line.
PEAK_WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:]).returncode\n"
    "sys.stderr.write('PEAK_RSS_KB=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(rc)\n"
)


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A throw-away self-signed certificate (``openssl``) for the sandbox's HTTPS listener."""
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "7", "-subj", "/CN=sandbox.api.mailchimp.com", "-keyout", str(key_path), "-out", str(cert_path),
         "-addext", "subjectAltName=DNS:*.api.mailchimp.com,DNS:localhost,IP:127.0.0.1",
         "-addext", "basicConstraints=critical,CA:TRUE"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert_path, key_path


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
    """Mark ``streams`` (and every field of them) selected, everything else not."""
    for entry in catalog["streams"]:
        wanted = entry["tap_stream_id"] in streams
        if not any(meta["breadcrumb"] == [] for meta in entry["metadata"]):
            entry["metadata"].append({"breadcrumb": [], "metadata": {}})
        for meta in entry["metadata"]:
            meta["metadata"]["selected"] = wanted
    return catalog


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
            if line.startswith(b'{"type":"RECORD"') or line.startswith(b'{"type": "RECORD"'):
                stream = json.loads(line)["stream"]
                counts[stream] = counts.get(stream, 0) + 1
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(peak / 1024, 1), "rows": counts,
            "rows_total": sum(counts.values()), "stderr_tail": err[-1500:]}  # fmt: skip


def api_calls(sb: Any) -> dict[str, Any]:
    stats = sb.stats("mailchimp")
    return {"total": stats["total_requests"], "by_route": {
        route: sum(statuses.values()) for route, statuses in stats["requests"].items()},
        "peak_connections": max((stats["connections"]["peak"] or {"-": 0}).values())}  # fmt: skip


def singer_venv() -> Path:
    """``bench/.venv-tap-mailchimp``: singer-io tap-mailchimp 1.3.3 installed from its hashed lock (made once)."""
    python = SINGER_VENV / "bin" / "python"
    if not (SINGER_VENV / "bin" / "tap-mailchimp").exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(SINGER_VENV)
        lock = BENCH.parent / "requirements" / "tap-mailchimp-singer.txt"
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--require-hashes", "--no-deps", "-r", str(lock)],
                       check=True)  # fmt: skip
    (SINGER_VENV / ".gitignore").write_text("*\n")
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return SINGER_VENV


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=60000)
    parser.add_argument("--extra-campaigns", type=int, default=16)
    parser.add_argument("--skip-singer", action="store_true")
    args = parser.parse_args()
    home = None if args.skip_singer else singer_venv()  # before the CA bundle below replaces the system one
    with tempfile.TemporaryDirectory(prefix="bench-mc-") as tmp_name:
        tmp = Path(tmp_name)
        cert, key = make_certificate(tmp)
        os.environ["REQUESTS_CA_BUNDLE"] = os.environ["CURL_CA_BUNDLE"] = str(cert)
        t0 = time.perf_counter()
        with running_sandbox(customers=args.customers, latency="none", tls_cert=str(cert), tls_key=str(key)) as sb:
            seeded = time.perf_counter() - t0
            session = requests.Session()
            session.auth = ("bench", sb.info["mailchimp"]["api_key"])
            add_campaigns(sb, session, args.extra_campaigns)
            port = sb.mailchimp_api_url.split(":")[-1].split("/")[0]
            env = {**os.environ, "BENCH_MAILCHIMP_PORT": port}
            results: dict[str, Any] = {
                "sandbox": {"customers": args.customers, "extra_campaigns": args.extra_campaigns,
                            "start_and_seed_s": round(seeded, 1)},
            }  # fmt: skip

            key = sb.info["mailchimp"]["api_key"]
            ours_exe = str(Path(sys.executable).parent / "tap-mailchimp-engagement")

            def ours(name: str, streams: list[str], **settings: Any) -> dict[str, Any]:
                cfg = {"api_key": key, "api_url": sb.mailchimp_api_url, **settings}
                (tmp / f"{name}.json").write_text(json.dumps(cfg))
                catalog = TapMailchimpEngagement(config=cfg, parse_env_config=False).catalog_dict
                (tmp / f"{name}-catalog.json").write_text(json.dumps(select(catalog, streams)))
                sb.reset_stats()
                run = run_tap([ours_exe, "--config", str(tmp / f"{name}.json"), "--catalog",
                               str(tmp / f"{name}-catalog.json")], env, tmp / f"{name}.singer")  # fmt: skip
                run["api_calls"] = api_calls(sb)
                return finish(run)

            def theirs(name: str, streams: list[str]) -> dict[str, Any]:
                assert home is not None
                cfg = {"api_key": key, "dc": sb.info["mailchimp"]["dc"], "start_date": "2020-01-01T00:00:00Z",
                       "page_size": "1000"}  # fmt: skip
                (tmp / f"{name}.json").write_text(json.dumps(cfg))
                exe = str(home / "bin" / "tap-mailchimp")
                disc = subprocess.run([exe, "--config", str(tmp / f"{name}.json"), "--discover"],
                                      capture_output=True, env=env, check=True)  # fmt: skip
                (tmp / f"{name}-catalog.json").write_text(json.dumps(select(json.loads(disc.stdout), streams)))
                sb.reset_stats()
                run = run_tap([exe, "--config", str(tmp / f"{name}.json"), "--catalog",
                               str(tmp / f"{name}-catalog.json")], env, tmp / f"{name}.singer")  # fmt: skip
                run["api_calls"] = api_calls(sb)
                return finish(run)

            # 1. engagement + members, our default settings (auto: /batches for this first read)
            results["ours_engagement_batches"] = ours("ours-a", OURS)
            # 2. the same through paged reads with 8 connections
            results["ours_engagement_paged"] = ours("ours-b", OURS, use_batches="never")
            # 3. members only
            results["ours_members_only"] = ours("ours-c", ["lists", "members"])
            if home is not None:
                results["theirs_engagement"] = theirs("theirs-a", THEIRS)
                results["theirs_members_only"] = theirs("theirs-c", ["lists", "list_members"])
                results["ratios_ours_over_theirs"] = {
                    "engagement_batches": ratios(results["ours_engagement_batches"], results["theirs_engagement"]),
                    "engagement_paged": ratios(results["ours_engagement_paged"], results["theirs_engagement"]),
                    "members_only": ratios(results["ours_members_only"], results["theirs_members_only"]),
                }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(json.dumps(results, indent=2, sort_keys=True))


def finish(run: dict[str, Any]) -> dict[str, Any]:
    """Add rows/s; keep the stderr tail only when the run produced nothing."""
    run["rows_per_s"] = round(run["rows_total"] / run["wall_s"], 1) if run["wall_s"] else None
    if run["rows_total"]:
        run.pop("stderr_tail", None)
    return run


def ratios(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """Ours / theirs for speed, calls and memory, plus rows per matching stream."""
    ours_rate = ours["rows_total"] / ours["wall_s"]
    theirs_rate = theirs["rows_total"] / theirs["wall_s"] if theirs["wall_s"] else 0
    return {
        "rows_per_s": round(ours_rate / theirs_rate, 2) if theirs_rate else None,
        "wall_s": round(ours["wall_s"] / theirs["wall_s"], 2),
        "api_calls": round(ours["api_calls"]["total"] / max(1, theirs["api_calls"]["total"]), 3),
        "peak_rss": round(ours["peak_rss_mb"] / max(0.1, theirs["peak_rss_mb"]), 2),
        "rows_by_stream": {
            f"{theirs_name}->{ours_name}": [theirs["rows"].get(theirs_name, 0), ours["rows"].get(ours_name, 0)]
            for theirs_name, ours_name in SAME.items()
        },
    }


if __name__ == "__main__":
    main()
