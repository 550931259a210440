"""The process runtime as a non-root user (``nobody``): containers, exec, stop, and volumes in a
user + mount namespace. Run from root (as CI does) through ``setpriv``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import kybern

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        os.geteuid() != 0, reason="not root: the other tests already run as a non-root user"
    ),
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) not found"),
]

AGENT = Path(__file__).with_name("nonroot_agent.py")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory nobody can write (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="kybern-nobody-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--init-groups"]
SRC = str(Path(kybern.__file__).resolve().parent.parent)


def python_for_nobody() -> str | None:
    """An interpreter nobody may run, and run again from inside (the runtime starts its monitors
    with ``sys.executable``); the venv's may live in root's private home."""
    spawn_again = "import subprocess, sys; subprocess.run([sys.executable, '-c', ''], check=True)"
    for candidate in (sys.executable, "/usr/bin/python3"):
        probe = [*AS_NOBODY, candidate, "-c", spawn_again]
        if subprocess.run(probe, capture_output=True).returncode == 0:
            return candidate
    return None


def test_runtime_as_nobody(shared_dir: Path) -> None:
    python = python_for_nobody()
    if python is None:
        pytest.skip("no Python interpreter that the user nobody may execute")
    result = subprocess.run(
        [*AS_NOBODY, python, str(AGENT), str(shared_dir)],
        capture_output=True,
        text=True,
        timeout=50,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": SRC},
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    nobody = str(seen["uid"])
    assert nobody != "0"
    assert seen["plain_uid"] == nobody
    assert seen["mounted_output"] == f"{nobody}\nhello\n", seen["mounted_error"]
    assert seen["readonly_exit"] != 0
    assert seen["stopped_exit"] == 143
