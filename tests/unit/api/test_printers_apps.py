"""Printers of apps/v1 kinds and ReplicationControllers: golden rows with a fixed clock."""

from __future__ import annotations

from typing import Any

from tests.unit.api.test_printers_helpers import cells, headers, obj

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {
        "containers": [{"name": "app", "image": "nginx:1"}, {"name": "log", "image": "busybox"}]
    },
}
SELECTOR = {"matchLabels": {"app": "web", "tier": "fe"}}


def workload(kind: str, **fields: Any) -> dict[str, Any]:
    return obj("apps/v1", kind, "web", 3 * 3600 + 600, **fields)


def test_deployment() -> None:
    assert headers("apps", "Deployment") == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert headers("apps", "Deployment", wide=True)[5:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    item = workload(
        "Deployment",
        spec={"replicas": 3, "selector": SELECTOR, "template": TEMPLATE},
        status={"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    )
    assert cells("apps", "Deployment", item) == [
        "web",
        "2/3",
        3,
        2,
        "3h10m",
        "app,log",
        "nginx:1,busybox",
        "app=web,tier=fe",
    ]


def test_deployment_without_status_and_expressions() -> None:
    selector = {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]}
    item = workload("Deployment", spec={"selector": selector, "template": TEMPLATE})
    row = cells("apps", "Deployment", item)
    assert row[1:4] == ["0/1", 0, 0]
    assert row[7] == "env in (dev,prod)"


def test_replica_set_and_replication_controller() -> None:
    assert headers("apps", "ReplicaSet") == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    rs = workload(
        "ReplicaSet",
        spec={"replicas": 2, "selector": SELECTOR, "template": TEMPLATE},
        status={"replicas": 2, "readyReplicas": 1},
    )
    assert cells("apps", "ReplicaSet", rs) == [
        "web",
        2,
        2,
        1,
        "3h10m",
        "app,log",
        "nginx:1,busybox",
        "app=web,tier=fe",
    ]
    rc = obj(
        "v1",
        "ReplicationController",
        "old",
        60,
        spec={"replicas": 1, "selector": {"app": "old"}, "template": TEMPLATE},
    )
    assert cells("", "ReplicationController", rc) == [
        "old",
        1,
        0,
        0,
        "60s",
        "app,log",
        "nginx:1,busybox",
        "app=old",
    ]
    assert headers("", "ReplicationController") == headers("apps", "ReplicaSet")


def test_stateful_set() -> None:
    assert headers("apps", "StatefulSet", wide=True) == [
        "NAME",
        "READY",
        "AGE",
        "CONTAINERS",
        "IMAGES",
    ]
    item = workload(
        "StatefulSet", spec={"replicas": 3, "template": TEMPLATE}, status={"readyReplicas": 3}
    )
    assert cells("apps", "StatefulSet", item) == [
        "web",
        "3/3",
        "3h10m",
        "app,log",
        "nginx:1,busybox",
    ]


def test_daemon_set() -> None:
    assert headers("apps", "DaemonSet") == [
        "NAME",
        "DESIRED",
        "CURRENT",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "NODE SELECTOR",
        "AGE",
    ]
    template = {
        **TEMPLATE,
        "spec": {**TEMPLATE["spec"], "nodeSelector": {"kubernetes.io/os": "linux"}},
    }
    item = workload(
        "DaemonSet",
        spec={"selector": {"matchLabels": {"app": "web"}}, "template": template},
        status={
            "desiredNumberScheduled": 3,
            "currentNumberScheduled": 3,
            "numberReady": 2,
            "updatedNumberScheduled": 3,
            "numberAvailable": 2,
        },
    )
    assert cells("apps", "DaemonSet", item) == [
        "web",
        3,
        3,
        2,
        3,
        2,
        "kubernetes.io/os=linux",
        "3h10m",
        "app,log",
        "nginx:1,busybox",
        "app=web",
    ]
    bare = workload("DaemonSet", spec={"selector": {}, "template": TEMPLATE})
    assert cells("apps", "DaemonSet", bare)[6] == "<none>"
    assert cells("apps", "DaemonSet", bare)[10] == "<none>"


def test_controller_revision() -> None:
    assert headers("apps", "ControllerRevision") == ["NAME", "CONTROLLER", "REVISION", "AGE"]
    owner = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "name": "web",
        "uid": "u",
        "controller": True,
    }
    item = workload("ControllerRevision", revision=4, metadata={"ownerReferences": [owner]})
    assert cells("apps", "ControllerRevision", item) == ["web", "daemonset.apps/web", 4, "3h10m"]
    orphan = workload("ControllerRevision", revision=1)
    assert cells("apps", "ControllerRevision", orphan)[1] == "<none>"
