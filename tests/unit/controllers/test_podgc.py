"""Pod GC controller on the fake API: terminated surplus, orphans, terminating pods."""

from __future__ import annotations

from typing import Any

import pytest

from kybern import client as kclient
from kybern.controllers import podgc
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)
Obj = dict[str, Any]


def pod(
    name: str,
    phase: str = "Running",
    *,
    node: str = "n1",
    created: str = "2026-01-01T00:00:00Z",
    reason: str = "",
    deleting: bool = False,
) -> Obj:
    meta: Obj = {"name": name, "namespace": "ns", "creationTimestamp": created}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        meta["finalizers"] = ["test/keep"]  # the fake API keeps it until force-deleted
    status: Obj = {"phase": phase}
    if reason:
        status["reason"] = reason
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"nodeName": node},
        "status": status,
    }


def node(name: str, *, ready: str = "True", taints: list[Obj] | None = None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "spec": {"taints": taints or []},
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


def make(
    *objs: Obj, threshold: int = 12500
) -> tuple[fakeclient.FakeCluster, podgc.PodGCController]:
    cluster = fakeclient.FakeCluster()
    cluster.add(*objs)
    controller = podgc.PodGCController(
        client=cluster.client, informers=cluster.informers, terminated_pod_threshold=threshold
    )
    return cluster, controller


def advance(cluster: fakeclient.FakeCluster, seconds: float) -> None:
    fake = cluster.informers.clock
    assert isinstance(fake, kclient.FakeClock)
    fake.advance(seconds)


def deleted(cluster: fakeclient.FakeCluster) -> list[str]:
    return [a.name for a in cluster.writes() if a.verb == "delete" and a.resource == "pods"]


def failed(cluster: fakeclient.FakeCluster) -> list[str]:
    return [
        a.name
        for a in cluster.writes()
        if a.subresource == "status" and a.body["status"].get("phase") == "Failed"
    ]


async def test_terminated_pods_beyond_the_threshold_go_evicted_then_oldest_first() -> None:
    cluster, controller = make(
        node("n1"),
        pod("new", "Succeeded", created="2026-01-01T00:00:03Z"),
        pod("old", "Failed", created="2026-01-01T00:00:01Z"),
        pod("mid", "Succeeded", created="2026-01-01T00:00:02Z"),
        pod("evicted", "Failed", created="2026-01-01T00:00:09Z", reason="Evicted"),
        pod("running"),
        threshold=2,
    )
    assert (await controller.reconcile(podgc.KEY)).requeue_after == 20.0
    assert deleted(cluster) == ["evicted", "old"]
    assert failed(cluster) == []  # already terminal: no status write
    deletes = [a for a in cluster.writes() if a.verb == "delete"]
    assert all(a.body["gracePeriodSeconds"] == 0 for a in deletes)


async def test_passes_run_once_per_check_period() -> None:
    cluster, controller = make(
        node("n1"), pod("a", "Succeeded"), pod("b", "Succeeded"), threshold=1
    )
    await controller.reconcile(podgc.KEY)
    cluster.clear()
    advance(cluster, 5)
    assert (await controller.reconcile(podgc.KEY)).requeue_after == pytest.approx(15)
    assert cluster.actions == []


async def test_orphans_are_deleted_after_the_quarantine_when_the_node_is_really_gone() -> None:
    cluster, controller = make(node("n1"), pod("orphan", node="gone"), pod("fine"))
    await controller.reconcile(podgc.KEY)
    assert deleted(cluster) == []
    advance(cluster, 20)
    await controller.reconcile(podgc.KEY)
    assert deleted(cluster) == []
    advance(cluster, 20)
    await controller.reconcile(podgc.KEY)
    assert deleted(cluster) == ["orphan"]
    status = next(a for a in cluster.writes() if a.subresource == "status")
    assert status.body["status"]["phase"] == "Failed"
    cond = status.body["status"]["conditions"][0]
    assert (cond["reason"], cond["message"]) == ("DeletionByPodGC", "PodGC: node no longer exists")


async def test_a_node_missing_only_from_the_cache_is_not_orphaning() -> None:
    cluster, controller = make(pod("p", node="late"))
    cluster.add(node("late"), cache=False)  # the API has it, the cache is behind
    await controller.reconcile(podgc.KEY)
    advance(cluster, 40)
    await controller.reconcile(podgc.KEY)
    assert deleted(cluster) == []


async def test_unscheduled_terminating_pods_are_force_deleted() -> None:
    cluster, controller = make(pod("pending", "Pending", node="", deleting=True))
    await controller.reconcile(podgc.KEY)
    assert failed(cluster) == ["pending"]
    assert deleted(cluster) == ["pending"]


async def test_terminating_pods_on_out_of_service_nodes_are_force_deleted() -> None:
    out = [{"key": podgc.OUT_OF_SERVICE, "value": "nodeshutdown", "effect": "NoExecute"}]
    cluster, controller = make(
        node("down", ready="False", taints=out),
        node("up", taints=out),
        pod("stuck", node="down", deleting=True),
        pod("other", node="up", deleting=True),
        pod("alive", node="down"),
    )
    await controller.reconcile(podgc.KEY)
    assert deleted(cluster) == ["stuck"]
