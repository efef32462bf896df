"""Every fenced block of every README is run or checked.

* `bash` blocks are run, checked, or run by the test their marker names (see tests/readme_snippets.py):
  - RUN_IN_SANDBOX: run as they stand (`bash -euo pipefail`) in a copy of the Meltano project that
    shares this repository's installed plugins, against a sandbox on the `dev` environment's ports,
    inside a private network namespace;
  - ILLUSTRATIVE (short, each with its reason): parsed (`bash -n`) and every command checked: `make -n
    <target>`, `<command> --help`, `meltano <command> --help`, `meltano run --dry-run <args>`, `pytest
    --collect-only`, and every path argument exists;
* `yaml` and `json` blocks parse; a YAML block with Meltano `plugins` is run by the test its marker names;
* `text` blocks (directory trees) are prose.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from readme_snippets import ROOT, Snippet, all_snippets

sys.path.insert(0, str(ROOT / "scripts"))
from pipelines import install_env, meltano_install, private_sys_dir

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent

RUN_IN_SANDBOX = {
    "README.md :: After the demo :: 1",
    "tap-orocommerce/README.md :: Install and run :: 0",
    "target-mailchimp/README.md :: Usage :: 0",
    "tap-mailchimp-engagement/README.md :: Installation and usage :: 0",
    "target-orocommerce/README.md :: target-orocommerce :: 0",
}
ILLUSTRATIVE = {
    "README.md :: Two commands :: 0": "`make demo` and `make test` (this suite): checked with make -n",
    "README.md :: After the demo :: 0": "reads the output of a finished `make demo`",
    "README.md :: Pointing the same project at a real OroCommerce and Mailchimp :: 0": (
        "production credentials and hosts"
    ),
    "README.md :: The sandbox :: 0": "`make sandbox` serves in the foreground until Ctrl-C",
    "README.md :: The Meltano project :: 0": "example audience ids of a real account (dry run)",
    "README.md :: Using the connectors in your own project :: 0": "a published tag's URLs",
    "tap-mailchimp-engagement/README.md :: Development :: 0": "test suites and a benchmark",
    "tap-orocommerce/README.md :: Tests and benchmark :: 0": "a test suite and benchmarks",
    "target-mailchimp/README.md :: Tests :: 0": "a test suite",
    "target-orocommerce/README.md :: Development :: 0": "a test suite and a benchmark",
}
LANGS = {"bash", "yaml", "json", "text"}
SNIPPETS = all_snippets()
BASH_BUILTINS = {"cd", "export", "cat", "head", "ls", "echo", "true"}


def _ids(block: Snippet) -> str:
    return block.key


def test_every_block_is_classified() -> None:
    keys = {s.key for s in SNIPPETS}
    assert len(keys) == len(SNIPPETS), "two blocks share a README, heading and position"
    for s in SNIPPETS:
        assert s.lang in LANGS, f"{s.readme}:{s.line}: fence language {s.lang!r} not in {LANGS}"
        if s.lang == "bash":
            places = [s.run_by is not None, s.key in RUN_IN_SANDBOX, s.key in ILLUSTRATIVE]
            assert sum(places) == 1, f"{s.key}: run it here, mark it run by a test, or explain it"
    assert keys >= RUN_IN_SANDBOX, RUN_IN_SANDBOX - keys
    assert set(ILLUSTRATIVE) <= keys, set(ILLUSTRATIVE) - keys


@pytest.mark.parametrize("block", [s for s in SNIPPETS if s.run_by], ids=_ids)
def test_block_marked_as_run_elsewhere_is_read_by_that_test(block: Snippet) -> None:
    source = (ROOT / str(block.run_by)).read_text()
    assert "snippet(" in source, block.run_by
    assert f'"{block.readme}"' in source, f"{block.run_by} does not read {block.readme}"
    assert block.heading in source, (
        f"{block.run_by} does not read the block under {block.heading!r}"
    )


@pytest.mark.parametrize("block", [s for s in SNIPPETS if s.lang in {"yaml", "json"}], ids=_ids)
def test_data_blocks_parse(block: Snippet) -> None:
    data = yaml.safe_load(block.text) if block.lang == "yaml" else json.loads(block.text)
    assert data is not None
    if block.lang == "yaml" and isinstance(data, dict) and "plugins" in data:
        assert block.run_by, f"{block.key}: Meltano config must be run through Meltano by a test"


@pytest.fixture(scope="session")
def plugins_installed(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The project's plugins, installed (once, and only if something changed) before the namespace
    without network uses them."""
    meltano_install(install_env(tmp_path_factory.mktemp("install")))


@pytest.mark.parametrize("block", [s for s in SNIPPETS if s.key in RUN_IN_SANDBOX], ids=_ids)
def test_block_runs_against_the_sandbox(
    block: Snippet, tmp_path: Path, plugins_installed: None
) -> None:
    """The block as it stands, in a copy of the project, against a sandbox on the dev ports."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "meltano.yml", project / "meltano.yml")
    for shared in (".venv", "requirements"):
        (project / shared).symlink_to(ROOT / shared)
    (tmp_path / "block.sh").write_text(block.text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MELTANO_", "TAP_", "TARGET_"))}
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "MELTANO_SYS_DIR_ROOT": str(private_sys_dir(tmp_path)),
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
        }
    )
    out = subprocess.run(
        ["unshare", "-n", "bash", "-c", 'ip link set lo up && exec "$@"', "_",
         sys.executable, str(HERE / "sandbox_shell.py"), str(project), str(tmp_path / "block.sh")],
        env=env, capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, f"{block.key}:\n{(out.stdout + out.stderr)[-5000:]}"


def _commands(text: str) -> list[list[str]]:
    """The simple commands of a block: lines joined at `\\`, comments dropped, split at `&&`, `||`,
    `|` and `;`, redirections (`> file`, `< file`) removed."""
    commands: list[list[str]] = []
    for line in text.replace("\\\n", " ").splitlines():
        current: list[str] = []
        words = iter(shlex.split(line, comments=True))
        for word in words:
            if word in {"&&", "||", "|", ";"}:
                commands.append(current)
                current = []
            elif word in {">", "<", ">>", "2>"}:
                next(words, None)
            elif not word.startswith((">", "<")):
                current.append(word)
        commands.append(current)
    return [c for c in commands if c]


def _check(command: list[str], env: dict[str, str]) -> None:
    while command and re.match(r"^[A-Z_][A-Z0-9_]*=", command[0]):
        command = command[1:]  # VAR=value prefix
    if not command or command[0] in BASH_BUILTINS:
        return
    exe, args = command[0], command[1:]
    path = ROOT / exe if "/" in exe else BIN / exe
    assert path.exists() or shutil.which(exe), f"{exe} does not exist"
    run = [str(path) if path.exists() else exe]
    name = Path(exe).name
    if name == "make":
        probe = [*run, "-n", *args]
    elif name == "meltano":
        sub = args[0]
        probe = [*run, "run", "--dry-run", *args[1:]] if sub == "run" else [*run, sub, "--help"]
    elif name.startswith("python") and args:
        probe = [*run, args[0], "--help"]  # a script: its own --help
    elif name == "pytest":
        probe = [*run, "--collect-only", "-q", *[a for a in args if a != "-q"]]
    else:
        probe = [*run, "--help"]
    for arg in args:
        if "/" in arg and not arg.startswith(("-", "http", "$")) and "://" not in arg:
            assert (ROOT / arg).exists(), f"{' '.join(command)}: {arg} does not exist"
    out = subprocess.run(
        probe, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    assert out.returncode == 0, f"{' '.join(probe)}:\n{(out.stdout + out.stderr)[-2000:]}"


@pytest.mark.parametrize("block", [s for s in SNIPPETS if s.key in ILLUSTRATIVE], ids=_ids)
def test_illustrative_block_parses_and_its_commands_exist(block: Snippet, tmp_path: Path) -> None:
    parsed = subprocess.run(["bash", "-n"], input=block.text, capture_output=True, text=True)
    assert parsed.returncode == 0, parsed.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("MELTANO_")}
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
        }
    )
    commands = _commands(block.text)
    assert commands, block.key
    # the probes at once (each mostly a Meltano or Python start-up); the first failure is raised.
    # Each probe has a system database of its own: Meltano commands creating one fresh SQLite
    # database at once race in its migrations ("Cannot upgrade the system database").
    envs = [
        {**env, "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / f'meltano-{i}.db'}"}
        for i in range(len(commands))
    ]
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        for done in [pool.submit(_check, c, e) for c, e in zip(commands, envs, strict=True)]:
            done.result()
