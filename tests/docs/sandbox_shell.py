"""Run a shell block against a sandbox on the `dev` environment's ports (Oro :8801, Mailchimp :8802).

Used by test_readme_snippets.py inside a private network namespace (`unshare -n`), so the fixed
ports never clash with other work on the machine: starts the sandbox the way `make sandbox` does
(smaller), runs `bash -euo pipefail -c <block>` in the given folder, stops the sandbox and exits with
the block's exit code.

    python sandbox_shell.py <folder> <file with the block>
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from oromc_sandbox.testing import running_sandbox

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from pipelines import DEV_SANDBOX_OPTIONS  # the customizations `make sandbox` turns on


def main() -> int:
    """Entry point."""
    folder, block = Path(sys.argv[1]), Path(sys.argv[2]).read_text()
    with running_sandbox(
        customers=20,
        oro_port=8801,
        mailchimp_port=8802,
        **DEV_SANDBOX_OPTIONS,
    ):
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block], cwd=folder, check=False
        ).returncode


if __name__ == "__main__":
    raise SystemExit(main())
