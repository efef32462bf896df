"""Mailchimp's real host name pointing at the sandbox, inside a private network and mount namespace.

Published clients build `https://<dc>.api.mailchimp.com` themselves. To run them unmodified against the
sandbox, a driver re-executes itself with `unshare -n -m` (as root: no network but its own loopback, mounts
private to it) and there: brings the loopback up, makes a throw-away CA and a certificate it signs for the
host names, replaces `/etc/hosts` with a bind mount that maps them to 127.0.0.1 and serves the sandbox over
HTTPS on port 443 with that certificate. Clients trust the CA through `REQUESTS_CA_BUNDLE`; one that ignores
that variable (Airbyte's CDK sends prepared requests, which skip it) gets the CA appended to its venv's
certifi bundle by another bind mount (`trust_ca_in`), so nothing on disk outside the work directory changes.

Used by tests/sandbox_mailchimp/singer_tap_run.py and bench/bench_tap_mailchimp_engagement.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

NAMESPACE_FLAG = "OROMC_IN_REAL_HOST_NAMESPACE"


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def in_namespace() -> bool:
    """True in a process that `reexec_in_namespace` started."""
    return os.environ.get(NAMESPACE_FLAG) == "1"


def reexec_in_namespace(argv: list[str]) -> int:
    """Run ``python argv`` in a private network and mount namespace; its exit code."""
    env = {**os.environ, NAMESPACE_FLAG: "1"}
    return subprocess.run(["unshare", "-n", "-m", sys.executable, *argv], env=env, check=False).returncode


def loopback_up() -> None:
    sh("ip", "link", "set", "lo", "up")


def make_ca_and_cert(work: Path, host: str) -> tuple[Path, Path, Path]:
    """A CA and a certificate for `host` it signs (openssl); returns (ca, chain, key)."""
    ca_key, ca, key, csr, cert = (work / n for n in ("ca.key", "ca.pem", "key.pem", "r.csr", "cert.pem"))
    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(ca_key),
       "-out", str(ca), "-subj", "/CN=oromc sandbox test CA")  # fmt: skip
    sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
       "-subj", f"/CN={host}")  # fmt: skip
    ext = work / "ext.cnf"
    ext.write_text(f"subjectAltName=DNS:{host},DNS:login.mailchimp.com,IP:127.0.0.1\n")
    sh("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
       "-CAcreateserial", "-days", "1", "-out", str(cert), "-extfile", str(ext))  # fmt: skip
    chain = work / "chain.pem"  # served as the sandbox's certificate: leaf + CA
    chain.write_text(cert.read_text() + ca.read_text())
    return ca, chain, key


def point_hosts_at_loopback(work: Path, hosts: list[str]) -> None:
    """This mount namespace's `/etc/hosts` maps `hosts` to 127.0.0.1 (the machine's is untouched)."""
    replacement = work / "hosts"
    replacement.write_text("127.0.0.1 localhost " + " ".join(hosts) + "\n")
    sh("mount", "--bind", str(replacement), "/etc/hosts")


def trust_ca_in(bundle: Path, ca: Path, work: Path) -> None:
    """In this mount namespace, `bundle` (a CA bundle file, e.g. a venv's certifi) also holds `ca`."""
    replacement = work / f"bundle-{abs(hash(str(bundle)))}.pem"
    replacement.write_text(bundle.read_text() + "\n" + ca.read_text())
    sh("mount", "--bind", str(replacement), str(bundle))
