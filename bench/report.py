"""Figures, goals, Markdown table and charts of a `bench_jobs.py` result document.

    .venv/bin/python bench/report.py bench/results/<date>.json   # render it again (table, charts)

``enrich`` adds the derived figures to the document (``*_bound_ratio`` per job and phase, calls per
1,000 contacts, CPU seconds per 1,000 records, the incremental fractions); ``goals`` states each goal
of issue 16 as met / missed / not measured; ``markdown`` renders the table; ``write`` stores
``<date>.json``, ``latest.json``, ``latest.md`` and the PNG charts under the results folder.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bounds  # noqa: E402

RSS_LIMIT_MB = 300.0
SANDBOX_MEMORY_LIMIT_MB = 4096.0
BOUND_GOAL = 1.3
INCREMENTAL_SHARE = 0.02
CHARTS = ("wall_vs_bound.png", "incremental.png", "calls_per_1000.png")


def per_1000(value: float, records: int) -> float | None:
    """``value`` per 1,000 records (None without records)."""
    if records <= 0:
        return None
    return round(value * 1000 / records, 3)


def _records(run: Mapping[str, Any]) -> dict[str, int]:
    bound = run.get("bound") or {}
    return {
        "contacts": int((bound.get("contacts") or {}).get("records", 0)),
        "ecommerce": int((bound.get("ecommerce") or {}).get("records", 0)),
    }


def figures(run: Mapping[str, Any]) -> dict[str, Any]:
    """Derived figures of one measured run that carries its ``bound``."""
    records = _records(run)
    bound = run.get("bound") or {}
    phases = run.get("phases") or {}
    out: dict[str, Any] = {
        "contacts": records["contacts"],
        "ecommerce_records": records["ecommerce"],
        "audience_sync_bound_ratio": bounds.ratio(
            float(run["wall_s"]), float(bound.get("seconds", 0))
        ),
        "mailchimp_calls_per_1000_contacts": per_1000(run["mailchimp_calls"], records["contacts"]),
        "oro_calls_per_1000_contacts": per_1000(run["oro_calls"], records["contacts"]),
    }
    for name, key in (("contacts", "contacts"), ("ecommerce", "ecommerce")):
        phase = phases.get(name)
        part = bound.get(key) or {}
        if not phase:
            continue
        out[f"{name}_bound_ratio"] = bounds.ratio(
            float(phase["wall_s"]), float(part.get("seconds", 0))
        )
        for role in ("tap", "target"):
            out[f"{name}_{role}_cpu_s_per_1000"] = per_1000(phase["cpu_s"][role], records[key])
            out[f"{name}_{role}_peak_rss_mb"] = phase["peak_rss_mb"][role]
    return out


def incremental(full: Mapping[str, Any], reruns: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each re-run's calls and wall time as a fraction of the full run."""
    return [
        {
            "changed_percent": r["changed_percent"],
            "changed_customer_users": r.get("changed_customer_users", 0),
            "mailchimp_calls": r["mailchimp_calls"],
            "oro_calls": r["oro_calls"],
            "wall_s": r["wall_s"],
            "calls_fraction": round(
                (r["mailchimp_calls"] + r["oro_calls"])
                / max(full["mailchimp_calls"] + full["oro_calls"], 1),
                4,
            ),
            "mailchimp_calls_fraction": round(
                r["mailchimp_calls"] / max(full["mailchimp_calls"], 1), 4
            ),
            "wall_fraction": round(r["wall_s"] / max(full["wall_s"], 0.01), 4),
        }
        for r in reruns
    ]


def enrich(doc: dict[str, Any]) -> dict[str, Any]:
    """Add the derived figures (in place; also returned)."""
    for size in doc.get("sizes", []):
        full = size["full"]
        for run in (full, *size.get("reruns", [])):
            run["bound"] = bounds.audience_sync_bound(run, size.get("audience_members"))
            run["figures"] = figures(run)
        size["incremental"] = incremental(full, size.get("reruns", []))
    doc["audience_sync_bound_ratio"] = {
        str(s["full"]["figures"]["contacts"]): s["full"]["figures"]["audience_sync_bound_ratio"]
        for s in doc.get("sizes", [])
    }
    return doc


def _status(ok: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "not measured"}[ok]


def _goal_bound(doc: Mapping[str, Any]) -> dict[str, Any]:
    rows = []
    verdicts = []
    for size in doc.get("sizes", []):
        fig = size["full"]["figures"]
        r = fig["audience_sync_bound_ratio"]
        rows.append(f"{fig['contacts']:,} contacts: {r}x")
        if size["target_contacts"] >= 100_000 and r is not None:
            verdicts.append(r <= BOUND_GOAL)
    ok = all(verdicts) if verdicts else None
    detail = "; ".join(rows) or "no run"
    status = _status(ok)
    if not any(s["target_contacts"] >= 1_000_000 for s in doc.get("sizes", [])):
        detail += "; 1M not run (see README)"
        if ok:  # the goal names both sizes: met at one is not met
            status = "met at 100k; 1M not measured"
    if not verdicts:
        detail += "; the goal is judged at 100k (`bench_jobs.py --sizes 100000`)"
    return {
        "goal": f"audience sync <= {BOUND_GOAL}x the lower bound at 100k and 1M",
        "status": status,
        "detail": detail,
    }


def _goal_incremental(doc: Mapping[str, Any]) -> dict[str, Any]:
    goal = "a 1% change costs <= 2% of the full run's API calls plus a constant"
    for size in doc.get("sizes", []):
        inc = {i["changed_percent"]: i for i in size.get("incremental", [])}
        if 1.0 not in inc:
            continue
        full = size["full"]
        full_calls = full["mailchimp_calls"] + full["oro_calls"]
        one = inc[1.0]
        if 0.0 in inc:
            constant = inc[0.0]["mailchimp_calls"] + inc[0.0]["oro_calls"]
            how = "the 0% re-run's calls"
        else:
            rerun = next(r for r in size["reruns"] if r["changed_percent"] == 1.0)
            constant = sum(
                n
                for route, n in {
                    **rerun["mailchimp_calls_by_route"],
                    **rerun["oro_calls_by_route"],
                }.items()
                if route.startswith("GET ")
            )
            how = "the 1% re-run's reads"
        calls = one["mailchimp_calls"] + one["oro_calls"]
        allowed = INCREMENTAL_SHARE * full_calls + constant
        detail = (
            f"{full['figures']['contacts']:,} contacts: 1% re-run {calls} calls vs full {full_calls}; "
            f"allowed {allowed:.0f} (2% + constant {constant}, {how}); wall {one['wall_fraction']:.0%} of the full run"
        )
        return {"goal": goal, "status": _status(calls <= allowed), "detail": detail}
    return {"goal": goal, "status": _status(None), "detail": "no 1% re-run"}


# issue 16's memory goal holds for each of them (bench_memory.py's rows are "<connector>[ <phase>]")
CONNECTORS = ("tap-orocommerce", "target-mailchimp", "tap-mailchimp-engagement", "target-orocommerce")


def _memory_rows(stored: Mapping[str, Any]) -> tuple[dict[str, Any], list[float]]:
    """``bench_memory.py``'s rows (the audience part's and the engagement part's) and every peak RSS
    it measured."""
    parts = [stored, stored.get("engagement") or {}]
    connectors = {name: row for part in parts for name, row in (part.get("connectors") or {}).items()}
    measured = [
        mb
        for part in parts
        for run in part.get("runs") or []
        for mb in [(run.get("tap") or {}).get("peak_rss_mb")]
        + [p.get("peak_rss_mb") for p in (run.get("target") or {}).values()]
        if mb is not None
    ]
    return connectors, measured


def _memory_bench(stored: Mapping[str, Any] | None) -> tuple[bool | None, str]:
    """From ``bench_memory.py``: False if a measured run went over the limit, True if every
    connector (:data:`CONNECTORS`) was measured at 1M records under it, else None; and the figures
    per connector (MB per 100k records, the 1M figure labelled measured or extrapolated), or that
    a connector was not measured."""
    connectors, measured = _memory_rows(stored or {})
    if not connectors:
        return None, ""
    parts, verdicts = [], []
    for name, c in sorted(connectors.items()):
        at_1m = c.get("peak_rss_mb_at_1m")
        parts.append(
            f"{name} {c.get('mb_per_100k_records')} MB/100k, {at_1m} MB at 1M ({c.get('how')})"
        )
        verdicts.append(
            None if not str(c.get("how", "")).startswith("measured") else at_1m < RSS_LIMIT_MB
        )
    missing = [c for c in CONNECTORS if not any(n.split(" ")[0] == c for n in connectors)]
    parts += [f"{c} not measured" for c in missing]
    if measured and max(measured) >= RSS_LIMIT_MB:
        ok: bool | None = False
    else:
        ok = True if not missing and all(v is True for v in verdicts) else None
    over = [c for c in connectors.values() if (c.get("peak_rss_mb_at_1m") or 0) >= RSS_LIMIT_MB]
    if ok is None:
        parts.append("extrapolated: " + ("over the limit" if over else "under the limit"))
    return ok, "bench_memory.py: " + "; ".join(parts)


def _goal_memory(doc: Mapping[str, Any], stored: Mapping[str, Any] | None = None) -> dict[str, Any]:
    goal = (
        f"peak RSS of every connector < {RSS_LIMIT_MB:.0f} MB at 1M records ({', '.join(CONNECTORS)})"
    )
    bench_ok, bench_detail = _memory_bench(stored)
    sizes = doc.get("sizes", [])
    if not sizes:
        return {"goal": goal, "status": _status(bench_ok), "detail": bench_detail or "no run"}
    worst = max(max(s["full"]["peak_rss_mb"].values()) for s in sizes)
    biggest = max(sizes, key=lambda s: s["target_contacts"])
    rss = biggest["full"]["peak_rss_mb"]
    detail = (
        f"audience-sync job at {biggest['full']['figures']['contacts']:,} contacts: "
        f"tap-orocommerce {rss['tap']} MB, target-mailchimp {rss['target']} MB"
    )
    if worst >= RSS_LIMIT_MB or bench_ok is False:
        ok: bool | None = False
    elif biggest["target_contacts"] >= 1_000_000 or bench_ok:
        ok = True
    else:
        ok = None
        detail += " (under the limit so far; 1M records not run)"
    if bench_detail:
        detail += f"; {bench_detail}"
    return {"goal": goal, "status": _status(ok), "detail": detail}


def _goal_sandbox(doc: Mapping[str, Any]) -> dict[str, Any]:
    goal = f"the sandbox holds 1M members (and 1M Oro customer users) in < {SANDBOX_MEMORY_LIMIT_MB / 1024:.0f} GB"
    scale = doc.get("sandbox_scale")
    if not scale:
        return {
            "goal": goal,
            "status": _status(None),
            "detail": "bench/bench_sandbox_scale.py not run",
        }
    ok = scale["members"] >= 1_000_000 and scale["peak_rss_mb"] < SANDBOX_MEMORY_LIMIT_MB
    detail = (
        f"{scale['members']:,} members + {scale['customer_users']:,} customer users: "
        f"{scale['peak_rss_mb']:,.0f} MB, seeded in {scale['seed_s']} s"
        + (f" ({scale['seed_cpu_s']} s CPU)" if "seed_cpu_s" in scale else "")
    )
    return {"goal": goal, "status": _status(ok), "detail": detail}


PEER_GOAL = 2.0
ORO_CAPACITY_GOAL = 0.8


def _stored(name: str, results: Path | None) -> dict[str, Any] | None:
    """A per-connector bench's stored result (``bench/results/<name>``), or None if never run."""
    path = (results or HERE / "results") / name
    if not path.exists():
        return None
    loaded = json.loads(path.read_text())
    return loaded if isinstance(loaded, dict) else None


def _goal_peers(stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """From ``bench_tap_mailchimp_engagement.py``: ours over the faster peer on email activity, with
    the peer reading every row (a peer that under-reads is not a fair rows/s comparison)."""
    goal = "tap-mailchimp-engagement >= 2x the faster peer's rows/s with fewer API calls"
    ratios = (stored or {}).get("ratios_ours_over_peer") or {}
    fair = {
        key: r
        for key, r in ratios.items()
        if key.startswith("email_activity:") and not (r.get("rows_read") or {}).get("peer_missed")
    }
    if not fair:
        return {
            "goal": goal,
            "status": _status(None),
            "detail": "bench/bench_tap_mailchimp_engagement.py not run",
        }
    best = max(
        fair.items(),
        key=lambda kv: (
            kv[1]["rows_per_s"] >= PEER_GOAL and kv[1]["api_calls"] < 1,
            kv[1]["rows_per_s"],
        ),
    )
    key, r = best
    ok = r["rows_per_s"] >= PEER_GOAL and r["api_calls"] < 1
    detail = "; ".join(
        f"{k.split(':', 1)[1]}: {v['rows_per_s']}x rows/s, {v['api_calls']}x calls"
        for k, v in sorted(fair.items())
    )
    return {
        "goal": goal,
        "status": _status(ok),
        "detail": f"email activity, {detail} (best: {key})",
    }


def _goal_oro_capacity(stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """From ``job_engagement_oro.py``: the capacity share of Oro's worker slots the target reached,
    with no overload (503) answer left unretried (``rejects_left``)."""
    goal = "engagement into Oro >= 80% of the modelled Oro capacity"
    runs = {
        label: run
        for label, run in (stored or {}).items()
        if isinstance(run, dict) and "capacity_share" in run
    }
    if not runs:
        return {
            "goal": goal,
            "status": _status(None),
            "detail": "bench/job_engagement_oro.py not run",
        }
    details, verdicts = [], []
    for label, run in sorted(runs.items()):
        share, left = float(run["capacity_share"]), int(run.get("rejects_left") or 0)
        verdicts.append(share >= ORO_CAPACITY_GOAL and left == 0)
        details.append(
            f"{label}: share {share:.2f}, {run.get('rows_per_second')} rows/s, {left} left"
        )
    recipients = (stored or {}).get("recipients")
    prefix = f"{recipients:,} recipients; " if isinstance(recipients, int) else ""
    return {"goal": goal, "status": _status(any(verdicts)), "detail": prefix + "; ".join(details)}


def goals(doc: Mapping[str, Any], results: Path | None = None) -> list[dict[str, Any]]:
    """Each goal of issue 16, with its status and the figures behind it (the audience-sync ones from
    ``doc``, the others from the per-connector benches' stored results in ``results``)."""
    others = [
        _goal_oro_capacity(_stored("job_engagement_oro.json", results)),
        _goal_peers(_stored("tap_mailchimp_engagement.json", results)),
    ]
    return [
        _goal_bound(doc),
        _goal_incremental(doc),
        _goal_memory(doc, _stored("memory.json", results)),
        _goal_sandbox(doc),
        *others,
    ]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown(doc: Mapping[str, Any]) -> str:
    """The results as Markdown: the full runs, the re-runs and the goals."""
    m = doc.get("machine", {})
    lines = [
        f"`audience-sync` end to end, `meltano run`, sandbox `--latency realistic` — {doc.get('date', '?')}, "
        f"{doc.get('mode', '?')} run; machine: {m.get('cpu_count', '?')} cores, {m.get('memory_gb', '?')} GB, "
        f"Python {m.get('python', '?')}, load average {m.get('load_average_at_start', '?')} at start "
        "(shared with other work: wall times are noisy).",
        "",
        "| contacts | e-commerce records | wall s | lower bound s | ratio | contacts ratio | e-commerce ratio "
        "| Mailchimp calls /1k contacts | Oro calls /1k contacts | peak connections | 429s "
        "| peak RSS tap / target MB | CPU s /1k contacts tap / target | CPU s /1k e-commerce target "
        "| sandbox CPU share |",
        "|" + "---|" * 15,
    ]
    for size in doc.get("sizes", []):
        run = size["full"]
        f = run["figures"]
        cells = [
            f["contacts"],
            f["ecommerce_records"],
            run["wall_s"],
            run["bound"]["seconds"],
            f["audience_sync_bound_ratio"],
            f.get("contacts_bound_ratio"),
            f.get("ecommerce_bound_ratio"),
            f["mailchimp_calls_per_1000_contacts"],
            f["oro_calls_per_1000_contacts"],
            run["peak_connections"],
            run["responses_429"],
            f"{_fmt(run['peak_rss_mb']['tap'])} / {_fmt(run['peak_rss_mb']['target'])}",
            f"{_fmt(f.get('contacts_tap_cpu_s_per_1000'))} / {_fmt(f.get('contacts_target_cpu_s_per_1000'))}",
            f.get("ecommerce_target_cpu_s_per_1000"),
            run["sandbox_cpu_share"],
        ]
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    for size in doc.get("sizes", []):
        if not size.get("incremental"):
            continue
        lines += [
            "",
            f"Re-runs at {size['full']['figures']['contacts']:,} contacts after a share of the "
            "customer users changed in Oro:",
            "",
            "| changed | customer users | Mailchimp calls | Oro calls | calls / full run | wall s | wall / full run |",
            "|---|---|---|---|---|---|---|",
        ]
        for i in size["incremental"]:
            lines.append(
                f"| {i['changed_percent']:g}% | {i['changed_customer_users']:,} | {i['mailchimp_calls']:,} "
                f"| {i['oro_calls']:,} | {i['calls_fraction']:.1%} | {i['wall_s']:.0f} | {i['wall_fraction']:.0%} |"
            )
    lines += _profile_lines(doc)
    lines += ["", "| goal | status | figures |", "|---|---|---|"]
    lines += [f"| {g['goal']} | **{g['status']}** | {g['detail']} |" for g in goals(doc)]
    for note in doc.get("notes", []):
        lines += ["", note]
    return "\n".join(lines) + "\n"


def _profile_lines(doc: Mapping[str, Any]) -> list[str]:
    """Where each profiled run's tap and target spent their samples (py-spy, idle included)."""
    lines: list[str] = []
    for size in doc.get("sizes", []):
        contacts = size["full"]["figures"]["contacts"]
        runs = [("full run", size["full"])]
        runs += [(f"{r['changed_percent']:g}% re-run", r) for r in size.get("reruns", [])]
        for label, run in runs:
            for role, prof in sorted((run.get("profiles") or {}).items()):
                own = ", ".join(
                    f"`{name}` {share:.0%}" for name, share in prof["top_own_frames"][:5]
                )
                lines += [
                    "",
                    f"Profile of the {role}, {label} at {contacts:,} contacts "
                    f"({prof['samples']:,} samples, waiting included), deepest project frames: {own}",
                ]
    return lines


def charts(doc: Mapping[str, Any], out: Path) -> list[Path]:
    """PNG charts: wall time against the bound, incremental cost, calls per 1,000 contacts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = doc.get("sizes", [])
    labels = [f"{s['full']['figures']['contacts']:,}" for s in sizes]
    written = []

    fig, ax = plt.subplots(figsize=(7, 4))
    xs = range(len(sizes))
    ax.bar([x - 0.2 for x in xs], [s["full"]["wall_s"] for s in sizes], 0.4, label="measured")
    ax.bar(
        [x + 0.2 for x in xs],
        [s["full"]["bound"]["seconds"] for s in sizes],
        0.4,
        label="lower bound",
    )
    ax.set_xticks(list(xs), labels)
    ax.set_xlabel("contacts")
    ax.set_ylabel("wall time (s)")
    ax.set_title("audience-sync: measured vs the Mailchimp API's lower bound")
    ax.legend()
    written.append(_save(fig, out / CHARTS[0]))

    fig, ax = plt.subplots(figsize=(7, 4))
    for size in sizes:
        inc = size.get("incremental") or []
        if inc:
            pct = [i["changed_percent"] for i in inc]
            ax.plot(
                pct,
                [i["calls_fraction"] * 100 for i in inc],
                "o-",
                label=f"calls, {size['full']['figures']['contacts']:,}",
            )
            ax.plot(
                pct,
                [i["wall_fraction"] * 100 for i in inc],
                "s--",
                label=f"wall time, {size['full']['figures']['contacts']:,}",
            )
    ax.set_xlabel("customer users changed in Oro (%)")
    ax.set_ylabel("% of the full run")
    ax.set_title("Incremental re-runs")
    ax.legend()
    written.append(_save(fig, out / CHARTS[1]))

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(
        [x - 0.2 for x in xs],
        [s["full"]["figures"]["mailchimp_calls_per_1000_contacts"] or 0 for s in sizes],
        0.4,
        label="Mailchimp",
    )
    ax.bar(
        [x + 0.2 for x in xs],
        [s["full"]["figures"]["oro_calls_per_1000_contacts"] or 0 for s in sizes],
        0.4,
        label="OroCommerce",
    )
    ax.set_xticks(list(xs), labels)
    ax.set_xlabel("contacts")
    ax.set_ylabel("API calls per 1,000 contacts")
    ax.set_title("audience-sync: API calls per 1,000 contacts, each side")
    ax.legend()
    written.append(_save(fig, out / CHARTS[2]))
    return written


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write(doc: dict[str, Any], out: Path) -> str:
    """Enrich ``doc``, write ``<date>.json``, ``latest.json``, ``latest.md`` and the charts; the table."""
    enrich(doc)
    doc["goals"] = goals(doc)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=2) + "\n"
    day = str(doc.get("date", "undated"))[:10]
    (out / f"{day}.json").write_text(text)
    (out / "latest.json").write_text(text)
    table = markdown(doc)
    (out / "latest.md").write_text(table)
    charts(doc, out)
    return table


def main(argv: list[str] | None = None) -> int:
    """Render a stored result document again."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else HERE / "results" / "latest.json"
    doc = json.loads(path.read_text())
    print(write(doc, path.parent))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
