"""An untrusted certificate: every connector stops at once with "certificate verify failed for
HOST" and the CA-bundle hint, without retrying; with REQUESTS_CA_BUNDLE set as the hint says, the
same runs succeed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from oromc_sandbox.testing import RunningSandbox, running_sandbox

BIN = Path(sys.executable).parent
RETRY_LOG = re.compile(r"\| (INFO|WARNING|ERROR) .*(retry|retrying|backing off)", re.IGNORECASE)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningSandbox, Path]]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    with running_sandbox(customers=5, tls_cert=str(cert), tls_key=str(key)) as sandbox:
        yield sandbox, cert


def _run(
    tmp_path: Path, command: str, config: dict[str, Any], stdin: bytes = b"", ca: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    path = tmp_path / f"{command}.json"
    path.write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if k not in {"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"}}
    if ca is not None:
        env["REQUESTS_CA_BUNDLE"] = str(ca)
    return subprocess.run(
        [str(BIN / command), "--config", str(path)],
        input=stdin, capture_output=True, env=env, timeout=300, check=False,
    )  # fmt: skip


def _refused(result: subprocess.CompletedProcess[bytes], url: str) -> None:
    err = result.stderr.decode()
    host = url.split("://", 1)[1].split("/", 1)[0]
    assert result.returncode != 0
    assert f"certificate verify failed for {host}: self-signed certificate" in err, err[-3000:]
    assert "REQUESTS_CA_BUNDLE" in err
    retries = [line for line in err.replace("Not retried", "").splitlines() if RETRY_LOG.search(line)]
    assert retries == [], "a TLS failure was retried"


def test_every_connector_fails_clearly_on_an_untrusted_certificate_and_works_with_the_hint(
    tls: tuple[RunningSandbox, Path], tmp_path: Path
) -> None:
    sb, cert = tls
    oro, mc = sb.info["oro"], sb.info["mailchimp"]
    tap_oro = {"base_url": sb.oro_base_url, "client_id": oro["client_id"],
               "client_secret": oro["client_secret"], "streams": ["contacts"]}  # fmt: skip
    target_oro = {**{k: tap_oro[k] for k in ("base_url", "client_id", "client_secret")},
                  "rejects_path": str(tmp_path / "oro-rejects.jsonl")}  # fmt: skip
    tap_mc = {"api_key": mc["api_key"], "api_url": sb.mailchimp_api_url,
              "start_date": "2000-01-01T00:00:00Z", "connection_budget_dir": str(tmp_path)}  # fmt: skip
    target_mc = {**{k: tap_mc[k] for k in ("api_key", "api_url", "connection_budget_dir")},
                 "list_id": mc["list_id"], "rejects_path": str(tmp_path / "mc-rejects.jsonl")}  # fmt: skip

    _refused(_run(tmp_path, "tap-orocommerce", tap_oro), sb.oro_base_url)
    contacts = _run(tmp_path, "tap-orocommerce", tap_oro, ca=cert)
    assert contacts.returncode == 0, contacts.stderr.decode()[-3000:]
    assert b'"type":"RECORD"' in contacts.stdout.replace(b" ", b"")

    _refused(_run(tmp_path, "target-mailchimp", target_mc, contacts.stdout), sb.mailchimp_base_url)
    loaded = _run(tmp_path, "target-mailchimp", target_mc, contacts.stdout, ca=cert)
    assert loaded.returncode == 0, loaded.stderr.decode()[-3000:]

    _refused(_run(tmp_path, "tap-mailchimp-engagement", tap_mc), sb.mailchimp_base_url)
    engagement = _run(tmp_path, "tap-mailchimp-engagement", tap_mc, ca=cert)
    assert engagement.returncode == 0, engagement.stderr.decode()[-3000:]
    assert b'"stream":"members"' in engagement.stdout.replace(b" ", b"")

    _refused(_run(tmp_path, "target-orocommerce", target_oro, engagement.stdout), sb.oro_base_url)
    written = _run(tmp_path, "target-orocommerce", target_oro, engagement.stdout, ca=cert)
    assert written.returncode == 0, written.stderr.decode()[-3000:]
    assert sb.stats("oro")["writes"] > 0
