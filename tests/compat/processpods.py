"""Helpers of the process-runtime end-to-end tests (test_process_runtime_e2e.py,
test_process_agent_outages.py, test_services_process.py): manifests of process pods, kubectl
shorthands, and cleanup of what the process runtime leaves running (the shorthands every
end-to-end test shares are in tests/support/e2e.py).

Process pods outlive the agent on purpose (the runtime's per-container monitors detach), so
a test's teardown deletes its pods through the API and then :func:`reap` kills by pid whatever
a monitor under the test's data directory still runs: a failed test leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

from kybern.testing.agentprocess import monitors
from tests.support import kubectl as kubectl_
from tests.support.e2e import get

Obj = dict[str, Any]
PY = "python3"  # on PATH on every supported host: the process runtime runs it as is
# The service proxy and cluster DNS are not under test here, and with the process runtime
# they listen on fixed host ports (service ports, 10053) that other servers on the machine
# may hold: they stay off.
NO_SERVICES = ("--disable-dns", "--proxy-mode", "none")


def delete_everything(kubectl: kubectl_.Kubectl, namespace: str = "") -> None:
    where = ["-n", namespace] if namespace else ["--all-namespaces"]
    kubectl("delete", "deployments,jobs", "--all", *where, "--wait=true", check=False)
    kubectl("delete", "pods", "--all", *where, "--wait=true", "--timeout=30s", check=False)


def reap(data_dir: Path) -> None:
    """SIGKILL every container process (its whole group) and monitor left under data_dir."""
    for pid in monitors(data_dir):
        for child in children(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child, signal.SIGKILL)  # the container's own process group
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def children(pid: int) -> list[int]:
    pids: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(p) for p in (task / "children").read_text().split()]
    return pids


def pod(name: str, *containers: Obj, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": list(containers), "terminationGracePeriodSeconds": 5, **spec},
    }


def container(name: str, *command: str, **extra: Any) -> Obj:
    return {"name": name, "image": "python", "command": list(command), **extra}


def sh(name: str, script: str, **extra: Any) -> Obj:
    return container(name, "sh", "-c", script, **extra)


def status_of(kubectl: kubectl_.Kubectl, ns: str, name: str, container: str = "") -> Obj:
    statuses = get(kubectl, ns, f"pod/{name}").get("status", {}).get("containerStatuses") or []
    for entry in statuses:
        if not container or entry["name"] == container:
            return dict(entry)
    return {}


def wait_ready(kubectl: kubectl_.Kubectl, ns: str, *pods: str, timeout: int = 30) -> None:
    names = [f"pod/{name}" for name in pods]
    kubectl("wait", "-n", ns, "--for=condition=Ready", *names, f"--timeout={timeout}s")


def http_get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return reply.status, reply.read().decode()


def web_server(port: int) -> Obj:
    """``python3 -m http.server`` on a loopback port with readiness and liveness probes."""
    return container(
        "web",
        PY,
        "-m",
        "http.server",
        str(port),
        "--bind",
        "127.0.0.1",
        ports=[{"name": "http", "containerPort": port}],
        readinessProbe={"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
        livenessProbe={"httpGet": {"path": "/", "port": port}, "periodSeconds": 2},
    )


def read_some(fd: int) -> bytes:
    ready, _, _ = select.select([fd], [], [], 0.5)
    if not ready:
        return b""
    try:
        return os.read(fd, 4096)
    except OSError:  # EIO: the other side closed
        return b""


def waitpid_for(pid: int, timeout: float) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return done, os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[0], -9
