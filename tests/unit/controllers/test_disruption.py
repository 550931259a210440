"""The disruption (PodDisruptionBudget status) controller on the fake API."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from kybern import client as kclient
from kybern.controllers import disruption
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)
Obj = dict[str, Any]
KEY = "ns/budget"
WALL = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def stamp(at: datetime.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def pdb(*, generation: int = 1, status: Obj | None = None, **spec: Any) -> Obj:
    obj: Obj = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": "budget",
            "namespace": "ns",
            "uid": "pdb-uid",
            "generation": generation,
        },
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
    }
    if status is not None:
        obj["status"] = status
    return obj


def owner(kind: str, name: str, api_version: str = "apps/v1") -> Obj:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": f"uid-{name}",
        "controller": True,
    }


def pod(
    name: str,
    *,
    ready: bool = True,
    owned_by: Obj | None = None,
    deleting: bool = False,
    labels: Obj | None = None,
) -> Obj:
    meta: Obj = {
        "name": name,
        "namespace": "ns",
        "uid": f"uid-{name}",
        "labels": {"app": "web"} if labels is None else labels,
    }
    if owned_by is not None:
        meta["ownerReferences"] = [owned_by]
    if deleting:
        meta["deletionTimestamp"] = stamp(WALL)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": [{"name": "app", "image": "nginx"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def workload(
    kind: str,
    name: str,
    replicas: int,
    *,
    owned_by: Obj | None = None,
    api_version: str = "apps/v1",
) -> Obj:
    meta: Obj = {"name": name, "namespace": "ns", "uid": f"uid-{name}"}
    if owned_by is not None:
        meta["ownerReferences"] = [owned_by]
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": meta,
        "spec": {"replicas": replicas},
    }


def make(*objs: Obj) -> tuple[fakeclient.FakeCluster, disruption.DisruptionController]:
    cluster = fakeclient.FakeCluster(clock=kclient.FakeClock(wall=WALL))
    cluster.add(*objs)
    controller = disruption.DisruptionController(client=cluster.client, informers=cluster.informers)
    return cluster, controller


def status(cluster: fakeclient.FakeCluster) -> Obj:
    got = cluster.get("policy/v1", "PodDisruptionBudget", "budget", "ns")
    assert got is not None
    return dict(got["status"])


def condition(st: Obj) -> Obj:
    [cond] = [c for c in st["conditions"] if c["type"] == "DisruptionAllowed"]
    return dict(cond)


class TestCounts:
    async def test_integer_min_available_counts_matched_pods(self) -> None:
        cluster, controller = make(
            pdb(minAvailable=2),
            pod("a"),
            pod("b"),
            pod("c", ready=False),
            pod("other", labels={"app": "db"}),
        )
        await controller.reconcile(KEY)
        st = status(cluster)
        assert (st["expectedPods"], st["desiredHealthy"], st["currentHealthy"]) == (3, 2, 2)
        assert st["disruptionsAllowed"] == 0
        assert st["observedGeneration"] == 1
        cond = condition(st)
        assert (cond["status"], cond["reason"]) == ("False", "InsufficientPods")
        [write] = cluster.writes()
        assert (write.verb, write.subresource) == ("update", "status")

    async def test_sufficient_pods_allow_disruptions(self) -> None:
        cluster, controller = make(pdb(minAvailable=1), pod("a"), pod("b"), pod("c"))
        await controller.reconcile(KEY)
        st = status(cluster)
        assert st["disruptionsAllowed"] == 2
        cond = condition(st)
        assert (cond["status"], cond["reason"], cond["message"]) == ("True", "SufficientPods", "")
        assert cond["observedGeneration"] == 1

    async def test_max_unavailable_percentage_rounds_up_over_deployment_scale(self) -> None:
        dep = workload("Deployment", "web", 5)
        rs = workload("ReplicaSet", "web-1", 5, owned_by=owner("Deployment", "web"))
        pods_ = [pod(f"p{i}", owned_by=owner("ReplicaSet", "web-1")) for i in range(4)]
        cluster, controller = make(pdb(maxUnavailable="30%"), dep, rs, *pods_)
        await controller.reconcile(KEY)
        st = status(cluster)
        # expected = the Deployment's 5 replicas; ceil(30% of 5) = 2 -> desired 3
        assert (st["expectedPods"], st["desiredHealthy"], st["currentHealthy"]) == (5, 3, 4)
        assert st["disruptionsAllowed"] == 1

    async def test_min_available_percentage_sums_controllers(self) -> None:
        sts = workload("StatefulSet", "db", 3)
        rc = workload("ReplicationController", "old", 2, api_version="v1")
        objs = [
            pdb(minAvailable="50%"),
            sts,
            rc,
            pod("db-0", owned_by=owner("StatefulSet", "db")),
            pod("db-1", owned_by=owner("StatefulSet", "db")),
            pod("old-a", owned_by=owner("ReplicationController", "old", "v1")),
        ]
        cluster, controller = make(*objs)
        await controller.reconcile(KEY)
        st = status(cluster)
        # expected 3 + 2 = 5; ceil(2.5) = 3
        assert (st["expectedPods"], st["desiredHealthy"], st["currentHealthy"]) == (5, 3, 3)
        assert st["disruptionsAllowed"] == 0

    async def test_integer_max_unavailable_with_replicaset(self) -> None:
        rs = workload("ReplicaSet", "rs", 3)
        pods_ = [pod(f"p{i}", owned_by=owner("ReplicaSet", "rs")) for i in range(3)]
        cluster, controller = make(pdb(maxUnavailable=1), rs, *pods_)
        await controller.reconcile(KEY)
        st = status(cluster)
        assert (st["expectedPods"], st["desiredHealthy"], st["disruptionsAllowed"]) == (3, 2, 1)

    async def test_no_pods_records_event_and_allows_nothing(self) -> None:
        cluster, controller = make(pdb(maxUnavailable=1))
        await controller.reconcile(KEY)
        st = status(cluster)
        assert (st["expectedPods"], st["disruptionsAllowed"]) == (0, 0)
        reasons = [a.body["reason"] for a in cluster.writes() if a.resource == "events"]
        assert reasons == ["NoPods"]

    async def test_being_deleted_pods_are_not_healthy(self) -> None:
        cluster, controller = make(pdb(minAvailable=1), pod("a"), pod("b", deleting=True))
        await controller.reconcile(KEY)
        st = status(cluster)
        assert (st["currentHealthy"], st["disruptionsAllowed"]) == (1, 0)

    async def test_empty_selector_matches_every_pod_and_missing_selector_none(self) -> None:
        budget = pdb(minAvailable=0)
        budget["spec"]["selector"] = {}
        cluster, controller = make(budget, pod("a", labels={"x": "y"}), pod("b", labels={}))
        await controller.reconcile(KEY)
        assert status(cluster)["currentHealthy"] == 2
        budget = pdb(minAvailable=0)
        del budget["spec"]["selector"]
        cluster, controller = make(budget, pod("a"))
        await controller.reconcile(KEY)
        assert status(cluster)["currentHealthy"] == 0


class TestUnchangedAndFailures:
    async def test_no_write_when_status_is_current(self) -> None:
        cluster, controller = make(pdb(minAvailable=1), pod("a"), pod("b"))
        await controller.reconcile(KEY)
        updated = cluster.get("policy/v1", "PodDisruptionBudget", "budget", "ns")
        assert updated is not None
        cluster.preload(updated)
        cluster.clear()
        await controller.reconcile(KEY)
        assert cluster.writes() == []

    async def test_generation_change_rewrites_observed_generation(self) -> None:
        cluster, controller = make(pdb(minAvailable=1), pod("a"), pod("b"))
        await controller.reconcile(KEY)
        updated = cluster.get("policy/v1", "PodDisruptionBudget", "budget", "ns")
        assert updated is not None
        updated["metadata"]["generation"] = 2
        cluster.add(updated)
        await controller.reconcile(KEY)
        assert status(cluster)["observedGeneration"] == 2

    async def test_missing_controller_fails_safe(self) -> None:
        orphan = pod("a", owned_by=owner("ReplicaSet", "gone"))
        cluster, controller = make(pdb(maxUnavailable=1, status={"disruptionsAllowed": 3}), orphan)
        result = await controller.reconcile(KEY)
        assert result.requeue_after is None
        st = status(cluster)
        assert st["disruptionsAllowed"] == 0
        cond = condition(st)
        assert (cond["status"], cond["reason"]) == ("False", "SyncFailed")
        assert 'found no controllers for pod "a"' in cond["message"]

    async def test_controller_without_scale_fails_safe(self) -> None:
        job_pod = pod("j", owned_by=owner("Job", "batch-job", "batch/v1"))
        cluster, controller = make(pdb(maxUnavailable="10%"), job_pod)
        await controller.reconcile(KEY)
        cond = condition(status(cluster))
        assert cond["reason"] == "SyncFailed"
        assert cond["message"] == "jobs.batch does not implement the scale subresource"

    async def test_unmanaged_pods_get_a_warning_event(self) -> None:
        cluster, controller = make(pdb(maxUnavailable="50%"), pod("a"))
        await controller.reconcile(KEY)
        events = [a.body for a in cluster.writes() if a.resource == "events"]
        assert [(e["type"], e["reason"]) for e in events] == [("Warning", "UnmanagedPods")]
        assert "app=web" in events[0]["message"]
        assert status(cluster)["expectedPods"] == 0

    async def test_deleted_budget_is_a_no_op(self) -> None:
        cluster, controller = make(pod("a"))
        assert await controller.reconcile(KEY) == disruption.runtime.Result()
        assert cluster.writes() == []


class TestDisruptedPods:
    async def test_recent_disruption_is_kept_and_rechecked(self) -> None:
        at = WALL - datetime.timedelta(seconds=30)
        budget = pdb(minAvailable=1, status={"disruptedPods": {"a": stamp(at)}})
        cluster, controller = make(budget, pod("a"), pod("b"), pod("c"))
        result = await controller.reconcile(KEY)
        st = status(cluster)
        assert st["disruptedPods"] == {"a": stamp(at)}
        assert (st["currentHealthy"], st["disruptionsAllowed"]) == (2, 1)
        assert result.requeue_after == pytest.approx(90, abs=1)

    async def test_expired_disruption_is_dropped(self) -> None:
        at = WALL - datetime.timedelta(minutes=3)
        budget = pdb(minAvailable=1, status={"disruptedPods": {"a": stamp(at)}})
        cluster, controller = make(budget, pod("a"), pod("b"))
        result = await controller.reconcile(KEY)
        st = status(cluster)
        assert "disruptedPods" not in st
        assert st["currentHealthy"] == 2
        assert result.requeue_after is None

    async def test_deleting_pod_leaves_the_map(self) -> None:
        budget = pdb(minAvailable=1, status={"disruptedPods": {"a": stamp(WALL)}})
        cluster, controller = make(budget, pod("a", deleting=True), pod("b"))
        await controller.reconcile(KEY)
        assert "disruptedPods" not in status(cluster)


class TestKeysAndStaleConditions:
    def test_pod_maps_to_matching_budgets(self) -> None:
        other = pdb(minAvailable=1)
        other["metadata"]["name"] = "db"
        other["spec"]["selector"] = {"matchLabels": {"app": "db"}}
        _, controller = make(pdb(minAvailable=1), other)
        assert list(controller.pod_keys(pod("a"))) == [KEY]

    async def test_stale_disruption_target_is_reset(self) -> None:
        target = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "EvictionByEvictionAPI",
            "lastTransitionTime": stamp(WALL - datetime.timedelta(minutes=5)),
        }
        p = pod("a")
        p["status"]["conditions"].append(target)
        cluster, controller = make(p)
        assert "pod:ns/a" in list(controller.pod_keys(p))
        await controller.reconcile("pod:ns/a")
        [write] = cluster.writes()
        assert (write.verb, write.subresource) == ("patch", "status")
        assert write.body["status"]["conditions"][0]["status"] == "False"

    async def test_recent_disruption_target_waits(self) -> None:
        target = {"type": "DisruptionTarget", "status": "True", "lastTransitionTime": stamp(WALL)}
        p = pod("a")
        p["status"]["conditions"].append(target)
        cluster, controller = make(p)
        result = await controller.reconcile("pod:ns/a")
        assert cluster.writes() == []
        assert result.requeue_after == pytest.approx(120, abs=1)


def test_scaled_value() -> None:
    assert disruption.scaled_value(3, 10) == 3
    assert disruption.scaled_value("25%", 10) == 3  # 2.5 rounds up
    assert disruption.scaled_value("100%", 7) == 7
    with pytest.raises(disruption.SyncError):
        disruption.scaled_value("5", 10)
    with pytest.raises(disruption.SyncError):
        disruption.scaled_value("x%", 10)
