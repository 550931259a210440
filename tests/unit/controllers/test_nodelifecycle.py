"""Node lifecycle controller on the fake API: health, condition taints, zones, rates."""

from __future__ import annotations

from typing import Any

import pytest

from kybern import client as kclient
from kybern.controllers import nodelifecycle as nlc
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)
Obj = dict[str, Any]
T0 = "2026-01-01T00:00:00Z"


def node(
    name: str,
    ready: str | None = "True",
    *,
    heartbeat: str = T0,
    labels: dict[str, str] | None = None,
    taints: list[Obj] | None = None,
    unschedulable: bool = False,
) -> Obj:
    conditions = []
    if ready is not None:
        conditions.append(
            {
                "type": "Ready",
                "status": ready,
                "reason": "KubeletReady",
                "lastHeartbeatTime": heartbeat,
                "lastTransitionTime": T0,
            }
        )
        conditions.append(
            {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": heartbeat}
        )
    spec: Obj = {"taints": taints} if taints else {}
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels or {}, "creationTimestamp": T0},
        "spec": spec,
        "status": {"conditions": conditions},
    }


def lease(name: str, renew: str) -> Obj:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": name, "renewTime": renew},
    }


def pod(name: str, node_name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"nodeName": node_name},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


def make(*objs: Obj, **options: Any) -> tuple[fakeclient.FakeCluster, nlc.NodeLifecycleController]:
    cluster = fakeclient.FakeCluster()
    cluster.add(*objs)
    controller = nlc.NodeLifecycleController(
        client=cluster.client, informers=cluster.informers, **options
    )
    return cluster, controller


def clock(cluster: fakeclient.FakeCluster) -> kclient.FakeClock:
    fake = cluster.informers.clock
    assert isinstance(fake, kclient.FakeClock)
    return fake


def refresh(cluster: fakeclient.FakeCluster) -> None:
    """What the informers would have seen of the controller's own writes."""
    for obj in cluster.objects.values():
        cluster.preload(obj)


def stored(cluster: fakeclient.FakeCluster, name: str) -> Obj:
    got = cluster.get("v1", "Node", name)
    assert got is not None
    return got


def taints(cluster: fakeclient.FakeCluster, name: str) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in stored(cluster, name)["spec"].get("taints") or []}


def ready(cluster: fakeclient.FakeCluster, name: str) -> Obj:
    cond = nlc.condition(stored(cluster, name), "Ready")
    assert cond is not None
    return cond


UNREACHABLE_EXEC = (nlc.UNREACHABLE, "NoExecute")
NOT_READY_EXEC = (nlc.NOT_READY, "NoExecute")


async def run(
    controller: nlc.NodeLifecycleController, cluster: fakeclient.FakeCluster, *names: str
) -> None:
    for name in names:
        await controller.reconcile(name)
    refresh(cluster)


# -- pure helpers ----------------------------------------------------------------------


def test_zone_state_follows_kubernetes_thresholds() -> None:
    assert nlc.zone_state(0, 3, 0.55) == nlc.FULL
    assert nlc.zone_state(0, 0, 0.55) == nlc.NORMAL
    assert nlc.zone_state(1, 2, 0.55) == nlc.NORMAL  # 2 unhealthy is never a disruption
    assert nlc.zone_state(2, 3, 0.55) == nlc.PARTIAL
    assert nlc.zone_state(7, 3, 0.55) == nlc.NORMAL


def test_zone_key_combines_region_and_zone() -> None:
    assert nlc.zone_key(node("a")) == ""
    labelled = node("b", labels={"topology.kubernetes.io/zone": "z1"})
    assert nlc.zone_key(labelled) == ":\x00:z1"
    both = node(
        "c", labels={"topology.kubernetes.io/region": "r", "topology.kubernetes.io/zone": "z"}
    )
    assert nlc.zone_key(both) == "r:\x00:z"


def test_token_bucket_admits_one_then_one_per_period() -> None:
    fake = kclient.FakeClock()
    bucket = nlc.TokenBucket(0.1, fake)
    assert bucket.try_accept()
    assert not bucket.try_accept()
    assert bucket.wait() == pytest.approx(10)
    assert bucket.wait(1) == pytest.approx(20)
    fake.advance(10)
    assert bucket.try_accept()
    bucket.swap(0)
    assert bucket.wait() is None
    assert not bucket.try_accept()


# -- health ------------------------------------------------------------------------------


async def test_a_heartbeating_node_is_left_alone() -> None:
    cluster, controller = make(node("n1"), lease("n1", "2026-01-01T00:00:00.000000Z"))
    result = await controller.reconcile("n1")
    assert result.requeue_after == 5.0
    (event,) = cluster.writes()  # only Kubernetes' hello
    assert (event.body["reason"], event.body["message"]) == (
        "RegisteredNode",
        "Registered Node n1 in Controller",
    )
    cluster.clear()
    await controller.reconcile("n1")
    assert cluster.writes() == []


async def test_a_silent_node_goes_unknown_after_the_grace_period_not_before() -> None:
    # n2 and n3 stay Ready (never reconciled here): no full disruption
    cluster, controller = make(node("n1"), node("n2"), node("n3"), pod("web", "n1"))
    await run(controller, cluster, "n1")
    clock(cluster).advance(50)
    await run(controller, cluster, "n1")
    assert ready(cluster, "n1")["status"] == "True"
    clock(cluster).advance(1)
    await run(controller, cluster, "n1")
    cond = ready(cluster, "n1")
    assert cond["status"] == "Unknown"
    assert cond["reason"] == "NodeStatusUnknown"
    assert cond["message"] == "Kubelet stopped posting node status."
    assert cond["lastHeartbeatTime"] == T0  # the kubelet's, untouched
    pressure = nlc.condition(stored(cluster, "n1"), "MemoryPressure")
    assert pressure is not None
    assert pressure["status"] == "Unknown"
    # conditions that were never posted appear as never updated
    disk = nlc.condition(stored(cluster, "n1"), "DiskPressure")
    assert disk is not None
    assert disk["reason"] == "NodeStatusNeverUpdated"
    got = cluster.get("v1", "Pod", "web", "ns")
    assert got is not None
    assert got["status"]["conditions"][0]["status"] == "False"
    events = [a.body for a in cluster.writes() if a.resource == "events"]
    assert {(e["reason"], e["message"]) for e in events} >= {
        ("NodeNotReady", "Node n1 status is now: NodeNotReady"),
        ("NodeNotReady", "Node is not ready"),
    }
    # NoSchedule at once; the NoExecute taint only on the next pass, as in Kubernetes
    assert taints(cluster, "n1") == {(nlc.UNREACHABLE, "NoSchedule")}
    clock(cluster).advance(5)
    await run(controller, cluster, "n1")
    assert taints(cluster, "n1") == {(nlc.UNREACHABLE, "NoSchedule"), UNREACHABLE_EXEC}
    added = [t for t in stored(cluster, "n1")["spec"]["taints"] if t["effect"] == "NoExecute"]
    assert added[0]["timeAdded"] == "2026-01-01T00:00:56Z"


async def test_lease_renewals_keep_a_node_alive() -> None:
    cluster, controller = make(node("n1"), lease("n1", "2026-01-01T00:00:00.000000Z"))
    await run(controller, cluster, "n1")
    clock(cluster).advance(40)
    cluster.preload(lease("n1", "2026-01-01T00:00:40.000000Z"))
    await run(controller, cluster, "n1")
    clock(cluster).advance(40)
    await run(controller, cluster, "n1")
    assert ready(cluster, "n1")["status"] == "True"
    clock(cluster).advance(11)
    await run(controller, cluster, "n1")
    assert ready(cluster, "n1")["status"] == "Unknown"


async def test_a_node_that_never_posted_status_gets_the_startup_grace_period() -> None:
    cluster, controller = make(node("n1", ready=None))
    clock(cluster).advance(59)
    await run(controller, cluster, "n1")
    assert [a.resource for a in cluster.writes()] == ["events"]
    clock(cluster).advance(2)
    await run(controller, cluster, "n1")
    assert ready(cluster, "n1")["reason"] == "NodeStatusNeverUpdated"


# -- taints ------------------------------------------------------------------------------


async def test_not_ready_node_gets_not_ready_taints_and_swaps_from_unreachable() -> None:
    tainted = node("n1", ready="False", taints=[{"key": nlc.UNREACHABLE, "effect": "NoExecute"}])
    cluster, controller = make(tainted, node("n2"), node("n3"))
    await run(controller, cluster, "n1")
    assert taints(cluster, "n1") == {(nlc.NOT_READY, "NoSchedule"), NOT_READY_EXEC}


async def test_a_ready_node_loses_its_taints() -> None:
    old = [
        {"key": nlc.UNREACHABLE, "effect": "NoExecute", "timeAdded": T0},
        {"key": nlc.UNREACHABLE, "effect": "NoSchedule"},
        {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
    ]
    cluster, controller = make(node("n1", taints=old), node("n2"))
    await run(controller, cluster, "n1")
    assert taints(cluster, "n1") == {("dedicated", "NoSchedule")}


async def test_cordoned_node_gets_the_unschedulable_taint() -> None:
    cluster, controller = make(node("n1", unschedulable=True))
    await run(controller, cluster, "n1")
    assert taints(cluster, "n1") == {(nlc.UNSCHEDULABLE, "NoSchedule")}
    cluster.clear()
    await run(controller, cluster, "n1")
    assert cluster.writes() == []  # stable: nothing rewritten


async def test_no_execute_taints_are_rate_limited_per_zone() -> None:
    healthy = [node(f"ok{i}") for i in range(7)]
    sick = [node(f"bad{i}", ready="Unknown") for i in range(3)]
    cluster, controller = make(*healthy, *sick)
    waits = [(await controller.reconcile(n)).requeue_after for n in ("bad0", "bad1", "bad2")]
    refresh(cluster)
    assert UNREACHABLE_EXEC in taints(cluster, "bad0")
    assert UNREACHABLE_EXEC not in taints(cluster, "bad1")
    assert waits == [5.0, 5.0, 5.0]  # looked at again within the monitor period
    clock(cluster).advance(9)
    await run(controller, cluster, "bad2", "bad1")
    assert UNREACHABLE_EXEC not in taints(cluster, "bad1")
    clock(cluster).advance(1)
    await run(controller, cluster, "bad2", "bad1")  # first come, first served
    assert UNREACHABLE_EXEC in taints(cluster, "bad1")
    assert UNREACHABLE_EXEC not in taints(cluster, "bad2")
    clock(cluster).advance(10)
    await run(controller, cluster, "bad2")
    assert UNREACHABLE_EXEC in taints(cluster, "bad2")


async def test_zones_have_their_own_rate() -> None:
    a = {"topology.kubernetes.io/zone": "a"}
    b = {"topology.kubernetes.io/zone": "b"}
    objs = [node("a-ok", labels=a), node("b-ok", labels=b)]
    objs += [node("a-bad", ready="Unknown", labels=a), node("b-bad", ready="Unknown", labels=b)]
    cluster, controller = make(*objs)
    await run(controller, cluster, "a-bad", "b-bad")
    assert UNREACHABLE_EXEC in taints(cluster, "a-bad")
    assert UNREACHABLE_EXEC in taints(cluster, "b-bad")


async def test_full_disruption_removes_and_adds_no_no_execute_taints() -> None:
    old = [{"key": nlc.UNREACHABLE, "effect": "NoExecute", "timeAdded": T0}]
    cluster, controller = make(
        node("n1", ready="Unknown", taints=old), node("n2", ready="Unknown"), node("n3", "Unknown")
    )
    await run(controller, cluster, "n1", "n2", "n3")
    for name in ("n1", "n2", "n3"):
        assert taints(cluster, name) == {(nlc.UNREACHABLE, "NoSchedule")}
    assert controller.zones.all_full


async def test_partial_disruption_in_a_small_cluster_stops_tainting() -> None:
    objs = [node(f"ok{i}") for i in range(4)] + [node(f"bad{i}", "Unknown") for i in range(6)]
    cluster, controller = make(*objs)
    await run(controller, cluster, *(f"bad{i}" for i in range(6)))
    assert controller.zones.states[""] == nlc.PARTIAL
    assert all(UNREACHABLE_EXEC not in taints(cluster, f"bad{i}") for i in range(6))


async def test_leaving_full_disruption_gives_every_node_a_fresh_grace_period() -> None:
    cluster, controller = make(node("n1"), node("n2"))
    await run(controller, cluster, "n1", "n2")
    clock(cluster).advance(51)
    await run(controller, cluster, "n1", "n2")  # both silent: Unknown, full disruption
    assert controller.zones.all_full
    cluster.preload(node("n1", heartbeat="2026-01-01T00:00:51Z"))  # n1 is back
    await run(controller, cluster, "n1")
    assert not controller.zones.all_full
    assert controller.health["n2"].probe < clock(cluster).monotonic()
    cluster.clear()
    # n2 already reads Unknown; the point is its next taint decision waits a monitor pass
    await run(controller, cluster, "n2")
    assert controller.health["n2"].probe == clock(cluster).monotonic()


async def test_a_deleted_node_is_forgotten() -> None:
    cluster, controller = make(node("n1"))
    await run(controller, cluster, "n1")
    informer = cluster.informers.informer_for("v1", "Node")
    informer.store.remove("n1")
    assert (await controller.reconcile("n1")).requeue_after is None
    assert "n1" not in controller.health
    assert cluster.writes()[-1].body["message"] == "Removing Node n1 from Controller"


async def test_a_failed_taint_write_gives_the_token_back() -> None:
    cluster, controller = make(node("bad", ready="Unknown"), node("ok1"), node("ok2"))
    failures = [fakeclient.status_response(409, "Conflict", "stale")]

    def conflict_once(action: fakeclient.Action) -> Any:
        return failures.pop() if failures and not action.subresource else None

    cluster.on("patch", "nodes", conflict_once)
    with pytest.raises(kclient.Conflict):
        await controller.reconcile("bad")
    await run(controller, cluster, "bad")  # the runner's retry, moments later
    assert UNREACHABLE_EXEC in taints(cluster, "bad")
