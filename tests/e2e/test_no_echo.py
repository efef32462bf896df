"""No echo loop, and consent travelling each way: the rounds of `make demo` on a small sandbox.

scripts/demo.py's rounds run here as they do in `make demo`: a full cycle; a second that writes
nothing; an opt-out made in OroCommerce and an unsubscribe made in Mailchimp, each of which must
reach the other system; and a fourth cycle that writes nothing on either side (the opt-outs do not
come back as work).

The same rounds' outputs are then scanned for secrets and personal data: every log line of every
`meltano run`, the rejects reports, the Meltano system database (state payloads and job records) and
what is left in the plugins' run folders hold no secret, no OAuth token and no e-mail address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import demo
import pytest
from e2e_harness import Project

# An access token as the sandbox issues them (`secrets.token_urlsafe(48)`: 64 URL-safe characters),
# and any bearer credential written out.
TOKEN_RE = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{64}(?![A-Za-z0-9_-])")
BEARER_RE = re.compile(r"Bearer\s+(?!\*\*\*)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)


@dataclass
class Demo:
    """What the rounds did, and every line Meltano printed while doing it."""

    played: demo.Played
    lines: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def rounds(project: Project) -> Demo:
    project.sandbox.advance_clock(30 * 86400)  # all seeded engagement has arrived
    lines: list[str] = []
    played = demo.play(project.sandbox, project.env, on_raw=lines.append, cwd=project.root)
    return Demo(played, lines)


def test_demo_rounds_carry_an_opt_out_each_way_and_then_write_nothing(rounds: Demo) -> None:
    played = rounds.played
    assert played.returncode == 0
    outcomes = [o.line() for o in played.opt_outs]
    assert [o.where for o in played.opt_outs] == ["OroCommerce", "Mailchimp"], outcomes
    assert all(o.reached for o in played.opt_outs), outcomes
    assert played.ok
    in_oro, in_mailchimp = played.opt_outs
    assert (in_oro.now, in_mailchimp.now) == ("unsubscribed", "false")
    assert played.writes[3]["audience-sync"] >= 1, "the Oro opt-out was written to Mailchimp"
    assert played.writes[3]["engagement-sync"] >= 1, "the Mailchimp unsubscribe was written to Oro"
    quiet = {"audience-sync": 0, "engagement-sync": 0}
    assert played.writes[2] == quiet, f"cycle 2 wrote {played.writes[2]}"
    assert played.writes[4] == quiet, f"cycle 4 (after the opt-outs) wrote {played.writes[4]}"


class Scanner:
    """Finds the configured secrets, OAuth tokens and the sandbox's e-mail addresses in text."""

    def __init__(self, project: Project) -> None:
        oro, mc = project.sandbox.info["oro"], project.sandbox.info["mailchimp"]
        key = mc["api_key"]
        self.secrets = {
            "Oro client secret": oro["client_secret"],
            "Mailchimp API key": key,
            "Mailchimp API key (without data center)": key.rpartition("-")[0] or key,
        }
        emails = {u["attributes"]["email"] for u in project.oro.all("customerusers")}
        emails |= set(project.mailchimp.snapshot())
        self.emails = {e.lower() for e in emails if e}
        self.found: list[str] = []

    def scan(self, where: str, text: str) -> None:
        for name, secret in self.secrets.items():
            if secret in text:
                self.found.append(f"{where}: {name}")
        tokens = [t for t in TOKEN_RE.findall(text) if not re.fullmatch(r"[0-9a-f]+", t)]
        tokens += BEARER_RE.findall(text)
        self.found += [f"{where}: OAuth token {t[:12]}..." for t in tokens]
        lowered = text.lower()
        self.found += [f"{where}: e-mail {e}" for e in sorted(self.emails) if e in lowered]


def test_no_secret_token_or_email_in_logs_state_rejects_or_run_files(
    rounds: Demo, project: Project
) -> None:
    assert rounds.played.returncode == 0
    scanner = Scanner(project)
    assert len(scanner.emails) >= 40, "the sandbox's people are known to the scan"

    # The scan finds what it looks for: a token the sandbox really issues, a secret, an address.
    probe = Scanner(project)
    planted = f"Authorization: Bearer {project.sandbox.oro_token()} {min(probe.emails).upper()}"
    probe.scan("probe", planted + " " + project.sandbox.info["oro"]["client_secret"])
    assert len(probe.found) == 4, probe.found  # the token twice (as a token, as a bearer)

    for number, line in enumerate(rounds.lines, 1):
        scanner.scan(f"meltano log line {number}", line)

    # Everything the runs left in the project's folder but the target-jsonl outputs (the data
    # itself): rejects reports, plan reports, the Meltano system database with every state
    # payload, and the plugins' run folders (catalogs, logging configs, leftover config files).
    scanned_files = []
    workdir = project.workdir
    for path in sorted(workdir.rglob("*")):
        if path.is_symlink() or not path.is_file() or (workdir / "jsonl") in path.parents:
            continue
        scanned_files.append(path.relative_to(workdir))
        scanner.scan(str(path.relative_to(workdir)), path.read_bytes().decode("latin-1"))
    sys_run = Path(project.env["MELTANO_SYS_DIR_ROOT"]) / "run"
    assert list(sys_run.glob("*/*.config.json")) == [], "finished runs leave no config file"
    assert Path("meltano.db") in scanned_files, scanned_files

    print(  # the figures of the README's "Reliability and security" table
        f"\nsecurity scan: {len(rounds.lines)} log lines of {len(rounds.played.writes) * 2} "
        f"meltano runs, {len(scanned_files)} files ({', '.join(map(str, scanned_files))}); "
        f"{len(scanner.secrets)} secrets, tokens, {len(scanner.emails)} e-mail addresses looked "
        f"for; found: {len(scanner.found)}"
    )
    assert scanner.found == [], scanner.found[:20]
