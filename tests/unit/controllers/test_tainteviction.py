"""Taint eviction controller on the fake API: who is deleted, when, and cancellations."""

from __future__ import annotations

from typing import Any

import pytest

from kybern import client as kclient
from kybern.controllers import tainteviction as te
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)
Obj = dict[str, Any]
T0 = "2026-01-01T00:00:00Z"  # the FakeClock's wall time at start
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": T0}


def node(*taints: Obj) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "n1"},
        "spec": {"taints": list(taints)},
    }


def tolerate(seconds: int | None = None, key: str = "node.kubernetes.io/unreachable") -> Obj:
    toleration: Obj = {"key": key, "operator": "Exists", "effect": "NoExecute"}
    if seconds is not None:
        toleration["tolerationSeconds"] = seconds
    return toleration


def pod(*tolerations: Obj, name: str = "web", created: str = "2025-12-31T00:00:00Z") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "creationTimestamp": created,
        },
        "spec": {"nodeName": "n1", "tolerations": list(tolerations)},
        "status": {"phase": "Running"},
    }


def make(*objs: Obj) -> tuple[fakeclient.FakeCluster, te.TaintEvictionController]:
    cluster = fakeclient.FakeCluster()
    cluster.add(*objs)
    controller = te.TaintEvictionController(client=cluster.client, informers=cluster.informers)
    return cluster, controller


def advance(cluster: fakeclient.FakeCluster, seconds: float) -> None:
    fake = cluster.informers.clock
    assert isinstance(fake, kclient.FakeClock)
    fake.advance(seconds)


def deleted(cluster: fakeclient.FakeCluster) -> list[str]:
    return [a.name for a in cluster.writes() if a.verb == "delete" and a.resource == "pods"]


def event_messages(cluster: fakeclient.FakeCluster) -> list[str]:
    return [a.body["message"] for a in cluster.writes() if a.resource == "events"]


def test_min_toleration_seconds() -> None:
    assert te.min_toleration_seconds([tolerate(300), tolerate(60)]) == 60
    assert te.min_toleration_seconds([tolerate(), tolerate(30)]) == 30
    assert te.min_toleration_seconds([tolerate()]) is None
    assert te.min_toleration_seconds([tolerate(-5)]) == 0
    assert te.min_toleration_seconds([]) == 0


async def test_an_untolerated_taint_deletes_the_pod_at_once() -> None:
    cluster, controller = make(node(UNREACHABLE), pod())
    assert (await controller.reconcile("ns/web")).requeue_after is None
    assert deleted(cluster) == ["web"]
    assert event_messages(cluster) == ["Marking for deletion Pod ns/web"]
    status = next(a for a in cluster.writes() if a.subresource == "status")
    cond = status.body["status"]["conditions"][0]
    assert (cond["type"], cond["reason"]) == ("DisruptionTarget", "DeletionByTaintManager")


async def test_toleration_seconds_delay_the_deletion_from_the_taint_time() -> None:
    cluster, controller = make(node(UNREACHABLE), pod(tolerate(300)))
    advance(cluster, 100)  # the taint was added 100 s ago
    result = await controller.reconcile("ns/web")
    assert result.requeue_after == pytest.approx(200)
    assert deleted(cluster) == []
    advance(cluster, 199)
    assert (await controller.reconcile("ns/web")).requeue_after == pytest.approx(1)
    advance(cluster, 1)
    await controller.reconcile("ns/web")
    assert deleted(cluster) == ["web"]


async def test_a_pod_bound_after_the_taint_gets_its_full_toleration() -> None:
    late = pod(tolerate(60), created="2026-01-01T00:01:40Z")
    cluster, controller = make(node(UNREACHABLE), late)
    advance(cluster, 100)
    assert (await controller.reconcile("ns/web")).requeue_after == pytest.approx(60)


async def test_a_toleration_without_seconds_tolerates_forever() -> None:
    cluster, controller = make(node(UNREACHABLE), pod(tolerate()))
    advance(cluster, 10_000)
    assert (await controller.reconcile("ns/web")).requeue_after is None
    assert cluster.writes() == []


async def test_removing_the_taint_cancels_the_eviction() -> None:
    cluster, controller = make(node(UNREACHABLE), pod(tolerate(300)))
    await controller.reconcile("ns/web")
    cluster.preload(node())
    assert (await controller.reconcile("ns/web")).requeue_after is None
    assert deleted(cluster) == []
    assert event_messages(cluster) == ["Cancelling deletion of Pod ns/web"]


async def test_the_countdown_survives_a_swapped_taint() -> None:
    cluster, controller = make(node(UNREACHABLE), pod(tolerate(300, key="")))
    await controller.reconcile("ns/web")
    advance(cluster, 100)
    not_ready = {
        "key": "node.kubernetes.io/not-ready",
        "effect": "NoExecute",
        "timeAdded": "2026-01-01T00:01:40Z",
    }
    cluster.preload(node(not_ready))
    assert (await controller.reconcile("ns/web")).requeue_after == pytest.approx(200)


async def test_node_events_enqueue_pods_only_when_no_execute_taints_change() -> None:
    _cluster, controller = make(node(), pod())
    assert controller._node_changed(node()) == []
    assert controller._node_changed(node(UNREACHABLE)) == ["ns/web"]
    assert controller._node_changed(node(UNREACHABLE)) == []
    assert controller._node_deleted(node(UNREACHABLE)) == ["ns/web"]


async def test_pods_being_deleted_or_unbound_are_left_alone() -> None:
    going = pod()
    going["metadata"]["deletionTimestamp"] = T0
    cluster, controller = make(node(UNREACHABLE), going)
    await controller.reconcile("ns/web")
    assert cluster.writes() == []
