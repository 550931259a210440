"""The real kubectl's node operations against `kybern server --simulated-nodes 3` (scheduler,
controllers and simulated nodes running): cordon, uncordon, drain through the Eviction API
(PodDisruptionBudgets honoured), taint, label nodes and get events.

One server for the module; every test works in its own namespace and leaves the nodes as it
found them (uncordoned, untainted)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import cluster
from tests.support import kubectl as kubectl_

pytestmark = pytest.mark.timeout(60)
NODES = ("sim-node-0", "sim-node-1", "sim-node-2")
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kubectl_.Kubectl]:
    proc = cluster.start_server(
        tmp_path_factory.mktemp("kybern-nodeops"), "--simulated-nodes", "3", api_only=False
    )
    try:
        run = kubectl_.Kubectl(proc.kubeconfig)
        cluster.wait_until(lambda: len(ready_nodes(run)) == 3, timeout=30, what="3 Ready nodes")
        yield run
    finally:
        proc.stop()
    assert "Traceback" not in proc.logs(), proc.logs()


@pytest.fixture
def ns(kubectl: kubectl_.Kubectl) -> Iterator[str]:
    name = f"n-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


def ready_nodes(kubectl: kubectl_.Kubectl) -> list[str]:
    out = kubectl("get", "nodes", "--no-headers").out
    return [line.split()[0] for line in out.splitlines() if line.split()[1:2] == ["Ready"]]


def node(kubectl: kubectl_.Kubectl, name: str) -> dict[str, Any]:
    return dict(json.loads(kubectl("get", "node", name, "-o", "json").out))


def pods(kubectl: kubectl_.Kubectl, ns: str, app: str) -> list[dict[str, Any]]:
    out = kubectl("get", "pods", "-n", ns, "-l", f"app={app}", "-o", "json").out
    return list(json.loads(out)["items"])


def running(kubectl: kubectl_.Kubectl, ns: str, app: str, count: int) -> list[dict[str, Any]]:
    """Wait for exactly ``count`` Running, not terminating pods of ``app``."""

    def check() -> list[dict[str, Any]] | None:
        items = pods(kubectl, ns, app)
        live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
        ok = len(items) == count and all(p["status"].get("phase") == "Running" for p in live)
        return live if ok else None

    return cluster.wait_until(check, timeout=30, interval=0.2, what=f"{count} {app} pods")


def deployment(ns: str, name: str, replicas: int) -> str:
    """A Deployment whose pods use an emptyDir (drain needs --delete-emptydir-data)."""
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx",
                            "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                        }
                    ],
                    "volumes": [{"name": "scratch", "emptyDir": {}}],
                },
            },
        },
    }
    return json.dumps(manifest)


def node_of(kubectl: kubectl_.Kubectl, ns: str, app: str) -> str:
    return str(running(kubectl, ns, app, len(pods(kubectl, ns, app)))[0]["spec"]["nodeName"])


def test_cordon_and_uncordon(kubectl: kubectl_.Kubectl) -> None:
    name = NODES[2]
    try:
        assert f"node/{name} cordoned" in kubectl("cordon", name).out
        assert node(kubectl, name)["spec"]["unschedulable"] is True
        line = kubectl("get", "node", name, "--no-headers").out.split()
        assert line[1] == "Ready,SchedulingDisabled"
        assert f"node/{name} already cordoned" in kubectl("cordon", name).out
    finally:
        assert f"node/{name} uncordoned" in kubectl("uncordon", name).out
    assert not node(kubectl, name)["spec"].get("unschedulable")
    assert kubectl("get", "node", name, "--no-headers").out.split()[1] == "Ready"


def test_taint_and_remove_taint(kubectl: kubectl_.Kubectl) -> None:
    name = NODES[1]
    out = kubectl("taint", "nodes", name, "dedicated=db:NoSchedule").out
    assert f"node/{name} tainted" in out
    taints = node(kubectl, name)["spec"]["taints"]
    assert {"key": "dedicated", "value": "db", "effect": "NoSchedule"} in taints
    again = kubectl("taint", "nodes", name, "dedicated=db:NoSchedule", check=False)
    assert again.code != 0
    assert "already has dedicated taint(s) with same effect(s)" in again.err
    out = kubectl("taint", "nodes", name, "dedicated-").out
    assert f"node/{name} untainted" in out
    left = node(kubectl, name)["spec"].get("taints") or []
    assert all(t["key"] != "dedicated" for t in left)


def test_label_nodes(kubectl: kubectl_.Kubectl) -> None:
    name = NODES[0]
    assert f"node/{name} labeled" in kubectl("label", "nodes", name, "disk=ssd").out
    assert kubectl("get", "nodes", "-l", "disk=ssd", "-o", "name").out.split() == [f"node/{name}"]
    refused = kubectl("label", "nodes", name, "disk=hdd", check=False)
    assert refused.code != 0
    assert "already has a value (ssd)" in refused.err
    kubectl("label", "nodes", name, "disk=hdd", "--overwrite")
    assert node(kubectl, name)["metadata"]["labels"]["disk"] == "hdd"
    assert f"node/{name} unlabeled" in kubectl("label", "nodes", name, "disk-").out
    assert "disk" not in node(kubectl, name)["metadata"]["labels"]


def daemon_set(ns: str, name: str) -> str:
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "agent", "image": "busybox"}]},
            },
        },
    }
    return json.dumps(manifest)


def test_drain_evicts_and_pods_are_rescheduled(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl("apply", "-f", "-", stdin=deployment(ns, "web", 2))
    kubectl("apply", "-f", "-", stdin=daemon_set(ns, "agent"))
    running(kubectl, ns, "agent", 3)
    target = node_of(kubectl, ns, "web")
    try:
        result = kubectl(
            "drain", target, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=30s"
        )
        assert f"node/{target} cordoned" in result.out
        assert "Warning: ignoring DaemonSet-managed Pods: " + ns + "/agent-" in result.err
        assert "evicted" in result.out
        assert f"node/{target} drained" in result.out
        assert node(kubectl, target)["spec"]["unschedulable"] is True
        moved = running(kubectl, ns, "web", 2)
        assert all(p["spec"]["nodeName"] != target for p in moved)
        agents = running(kubectl, ns, "agent", 3)  # DaemonSet pods stay where they are
        assert target in {p["spec"]["nodeName"] for p in agents}
    finally:
        kubectl("uncordon", target)


def test_drain_refuses_emptydir_without_the_flag(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl("apply", "-f", "-", stdin=deployment(ns, "local", 1))
    target = node_of(kubectl, ns, "local")
    try:
        result = kubectl("drain", target, "--ignore-daemonsets", "--timeout=5s", check=False)
        assert result.code != 0
        assert "cannot delete Pods with local storage" in result.err
    finally:
        kubectl("uncordon", target)


def test_drain_blocked_by_budget_then_allowed(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl("apply", "-f", "-", stdin=deployment(ns, "db", 3))
    running(kubectl, ns, "db", 3)
    kubectl("create", "pdb", "db", "-n", ns, "--selector=app=db", "--min-available=3")

    def allowed(value: int) -> bool:
        out = kubectl("get", "pdb", "db", "-n", ns, "-o", "json").out
        status = json.loads(out).get("status") or {}
        return bool(status.get("currentHealthy") == 3 and status.get("disruptionsAllowed") == value)

    cluster.wait_until(lambda: allowed(0), timeout=15, what="budget observed")
    line = kubectl("get", "pdb", "db", "-n", ns, "--no-headers").out.split()
    assert line[1:4] == ["3", "N/A", "0"]  # MIN AVAILABLE, MAX UNAVAILABLE, ALLOWED
    target = node_of(kubectl, ns, "db")
    try:
        blocked = kubectl(
            "drain",
            target,
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=2s",
            check=False,
        )
        assert blocked.code != 0
        assert "(will retry after 5s): " + VIOLATION in blocked.err
        assert "global timeout reached: 2s" in blocked.err
        assert len(running(kubectl, ns, "db", 3)) == 3  # nothing was evicted

        kubectl("patch", "pdb", "db", "-n", ns, "--type=merge", "-p", '{"spec":{"minAvailable":2}}')
        cluster.wait_until(lambda: allowed(1), timeout=15, what="one disruption allowed")
        done = kubectl(
            "drain", target, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=30s"
        )
        assert "evicted" in done.out
        assert f"node/{target} drained" in done.out
        moved = running(kubectl, ns, "db", 3)
        assert all(p["spec"]["nodeName"] != target for p in moved)
    finally:
        kubectl("uncordon", target)


def test_get_events(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl("create", "deployment", "ev", "-n", ns, "--image=nginx", "--replicas=1")
    running(kubectl, ns, "ev", 1)

    def reasons() -> set[str] | None:
        out = kubectl("get", "events", "-n", ns, "--no-headers").out
        found = {line.split()[2] for line in out.splitlines() if len(line.split()) > 2}
        return found if {"Scheduled", "SuccessfulCreate"} <= found else None

    cluster.wait_until(reasons, timeout=15, interval=0.2, what="events")
    table = kubectl("get", "events", "-n", ns).out
    assert table.splitlines()[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert "Successfully assigned" in table
    selected = kubectl(
        "get", "events", "-n", ns, "--field-selector", "reason=Scheduled", "-o", "json"
    ).out
    items = json.loads(selected)["items"]
    assert items
    assert all(e["reason"] == "Scheduled" for e in items)
    assert items[0]["involvedObject"]["kind"] == "Pod"
