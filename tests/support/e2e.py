"""Shorthands shared by the end-to-end tests that run a whole ``kybern server``
(tests/compat/test_oci_e2e.py, the process-runtime and the services tests): the skip marks of
real-container tests, Ready nodes, applying and getting objects as JSON through kubectl, a
throwaway namespace per test, a server stopped and checked for tracebacks at the end, and
whether a process is alive.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from kybern.testing import server_process
from tests.support import kubectl as kubectl_

Obj = dict[str, Any]
# The skip marks of the tests that run real containers (kybern server --runtime oci).
NEEDS_OCI = [
    pytest.mark.skipif(os.geteuid() != 0, reason="real containers (runc, cgroups, CNI) need root"),
    pytest.mark.skipif(
        shutil.which("runc") is None and shutil.which("crun") is None,
        reason="needs runc or crun",
    ),
    pytest.mark.skipif(
        not Path("/bin/busybox").exists() or not Path("/usr/lib/cni/bridge").exists(),
        reason="needs busybox-static and containernetworking-plugins",
    ),
]


def ready_nodes(kubectl: kubectl_.Kubectl) -> list[str]:
    out = kubectl("get", "nodes", "--no-headers", check=False).out
    return [line.split()[0] for line in out.splitlines() if line.split()[1:2] == ["Ready"]]


def apply(kubectl: kubectl_.Kubectl, ns: str, *objects: Obj) -> None:
    document = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(document))


def get(kubectl: kubectl_.Kubectl, ns: str, what: str) -> Obj:
    return dict(json.loads(kubectl("get", "-n", ns, what, "-o", "json").out))


def delete_workloads(kubectl: kubectl_.Kubectl, namespace: str) -> None:
    kubectl("delete", "deployments,pods", "--all", "-n", namespace, "--wait=true", check=False)


@contextmanager
def namespace(
    kubectl: kubectl_.Kubectl, prefix: str, cleanup: Callable[[kubectl_.Kubectl, str], None]
) -> Iterator[str]:
    """A new namespace ``<prefix>-<random>``; ``cleanup(kubectl, name)`` runs when the block
    ends (a fixture's teardown ends it even after a failed test)."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    yield name
    cleanup(kubectl, name)


@contextmanager
def serving(
    proc: server_process.ServerProcess, cleanup: Callable[[], None]
) -> Iterator[kubectl_.Kubectl]:
    """kubectl against a started ``kybern server``; at the end the server stops and
    ``cleanup`` kills what its pods left running, whatever happened, and then (if nothing
    failed) the server's log must hold no traceback."""
    try:
        yield kubectl_.Kubectl(proc.kubeconfig)
    finally:
        proc.stop()
        cleanup()
    assert "Traceback" not in proc.logs(), proc.logs()


def alive(pid: int) -> bool:
    """Running and not a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"
