"""The oldest supported official client (32.x) against the same server as the 37.x tests.

The 32.x client is installed once into ``.venv/k8s32`` with ``pip install --target`` (cached
across runs) and a subset of the compatibility checks (tests/compat/k8s32/client_checks.py)
runs in a subprocess with that directory first on PYTHONPATH. If the client cannot be
installed (no index reachable) this test fails and says so: it never skips silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kybern.testing import server_process

pytestmark = pytest.mark.compat
REPO = Path(__file__).resolve().parents[2]
TARGET = REPO / ".venv" / "k8s32"
# With its own dependencies (32.x needs six and google-auth, which 37.x does not): the
# subprocess sees one consistent set, resolved by pip for that client.
REQUIREMENTS = ["kubernetes>=32,<33"]


def _installed_version(target: Path) -> tuple[str | None, str]:
    """(the client's version as the subprocess imports it, or None; the import's stderr)"""
    probe = subprocess.run(
        [sys.executable, "-c", "import kubernetes; print(kubernetes.__version__)"],
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return (probe.stdout.strip() if probe.returncode == 0 else None), probe.stderr


@pytest.fixture(scope="session")
def k8s32_path() -> Path:
    version, _ = _installed_version(TARGET) if TARGET.exists() else (None, "")
    if version and version.startswith("32."):
        return TARGET
    staging = TARGET.with_name(f"k8s32.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--target",
            str(staging),
            *REQUIREMENTS,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if pip.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        pytest.fail(
            "cannot install the kubernetes 32.x client for the compatibility tests "
            f"(pip install --target {staging} {' '.join(REQUIREMENTS)} failed):\n"
            f"{pip.stdout}\n{pip.stderr}",
            pytrace=False,
        )
    shutil.rmtree(TARGET, ignore_errors=True)
    staging.rename(TARGET)
    version, stderr = _installed_version(TARGET)
    assert version, f"the installed client does not import:\n{stderr}"
    assert version.startswith("32."), f"the installed client is {version}"
    return TARGET


@pytest.mark.timeout(300)  # includes the one-time pip install
def test_client_32_subset(k8s32_path: Path, kybern_server: server_process.ServerProcess) -> None:
    checks = Path(__file__).parent / "k8s32" / "client_checks.py"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(k8s32_path), str(REPO)]),
        "KYBERN_KUBECONFIG": str(kybern_server.kubeconfig),
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--confcutdir={checks.parent}",
            f"--rootdir={REPO}",
            str(checks),
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert run.returncode == 0, f"32.x client checks failed:\n{run.stdout}\n{run.stderr}"
    assert " passed" in run.stdout, run.stdout
    assert "skipped" not in run.stdout, run.stdout
