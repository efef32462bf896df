"""`make test` runs `pytest -n 2 --dist loadgroup`: the tests that share a module-scoped fixture (a
sandbox, a pipeline run the module's assertions read in order) must stay on one worker (the tests of
one parameter of a parametrized module fixture, at least).

The grouping is the root `conftest.py`'s; pytest-xdist applies it by renaming node ids, which some
pytest releases ignore (9.2 with xdist 3.8: every test then runs wherever, silently).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SHARED = '''
import os
import pytest

@pytest.fixture(scope="module")
def shared():
    return object()

@pytest.fixture(scope="module", params=["a", "b"])
def per_param(request):
    return request.param

def _note(name):
    with open(os.environ["WORKERS_FILE"], "a") as out:
        out.write(f"{name} {os.environ['PYTEST_XDIST_WORKER']}\\n")
'''


def test_tests_sharing_a_module_fixture_run_on_one_worker(tmp_path: Path) -> None:
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    tests = [f"def test_{n}(shared):\n    _note('shared')\n" for n in range(8)]
    (tmp_path / "test_shared.py").write_text(SHARED + "\n\n" + "\n\n".join(tests))
    (tmp_path / "test_params.py").write_text(
        SHARED + "\n\n" + "\n\n".join(
            f"def test_{n}(per_param):\n    _note(f'param-{{per_param}}')\n" for n in range(4)
        )
    )
    (tmp_path / "test_free.py").write_text(
        SHARED + "\n\n" + "\n\n".join(f"def test_{n}():\n    _note('free')\n" for n in range(8))
    )
    workers_file = tmp_path / "workers.txt"
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup",
         "--rootdir", str(tmp_path), str(tmp_path)],
        env={**os.environ, "WORKERS_FILE": str(workers_file)}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    seen = [line.split() for line in workers_file.read_text().splitlines()]
    assert len(seen) == 24
    assert len({worker for name, worker in seen if name == "shared"}) == 1, seen
    # a module fixture set up once per parameter: each parameter's tests on one worker
    for param in ("param-a", "param-b"):
        assert [name for name, _ in seen].count(param) == 4, seen
        assert len({worker for name, worker in seen if name == param}) == 1, seen
