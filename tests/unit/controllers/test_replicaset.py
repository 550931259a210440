"""ReplicaSet / ReplicationController on the fake API."""

from __future__ import annotations

from typing import Any

import pytest

from kybern.controllers import pods, replicaset, runtime
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)
KEY = "ns/web"


def rs(replicas: int, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web", "namespace": "ns", "uid": "rs-uid", "generation": 2},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "front"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
            **spec,
        },
    }


def pod(
    name: str,
    *,
    owned: bool = True,
    node: str = "",
    phase: str = "Pending",
    ready: str | None = None,
    created: str = "2026-01-01T00:00:00Z",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "ns",
        "uid": f"uid-{name}",
        "labels": {"app": "web", "tier": "front"} if labels is None else labels,
        "creationTimestamp": created,
    }
    if owned:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web",
                "uid": "rs-uid",
                "controller": True,
            }
        ]
    status: dict[str, Any] = {"phase": phase}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": ready}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"nodeName": node},
        "status": status,
    }


def make(*objs: dict[str, Any]) -> tuple[fakeclient.FakeCluster, replicaset.ReplicaSetController]:
    cluster = fakeclient.FakeCluster()
    cluster.add(*objs)
    controller = replicaset.ReplicaSetController(client=cluster.client, informers=cluster.informers)
    return cluster, controller


def writes(cluster: fakeclient.FakeCluster, resource: str) -> list[fakeclient.Action]:
    return [a for a in cluster.writes() if a.resource == resource]


class TestScaleUp:
    async def test_creates_the_missing_pods_from_the_template(self) -> None:
        cluster, controller = make(rs(3))
        await controller.reconcile(KEY)
        creates = writes(cluster, "pods")
        assert [a.verb for a in creates] == ["create"] * 3
        body = creates[0].body
        assert body["metadata"]["generateName"] == "web-"
        assert body["metadata"]["labels"] == {"app": "web", "tier": "front"}
        assert body["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web",
                "uid": "rs-uid",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        reasons = [a.body["reason"] for a in writes(cluster, "events") if a.verb == "create"]
        assert reasons == ["SuccessfulCreate"] * 3

    async def test_slow_start_stops_after_a_failing_batch(self) -> None:
        cluster, controller = make(rs(10))
        calls = 0

        def fail_from_the_second(action: fakeclient.Action) -> Any:
            nonlocal calls
            if action.resource != "pods":
                return None
            calls += 1
            return fakeclient.status_response(500, "InternalError", "quota") if calls >= 2 else None

        cluster.on("create", "pods", fail_from_the_second)
        with pytest.raises(Exception, match="quota"):
            await controller.reconcile(KEY)
        assert calls == 2  # batch of 1 succeeded, batch of 2 failed at its first create

    async def test_expectations_prevent_a_second_create_before_the_cache_sees_the_first(
        self,
    ) -> None:
        cluster, controller = make(rs(2))
        await controller.reconcile(KEY)
        assert len(writes(cluster, "pods")) == 2
        stored = cluster.get("apps/v1", "ReplicaSet", "web", "ns")
        assert stored is not None
        cluster.preload(stored)  # the status write reached the cache; the pods did not
        cluster.clear()
        await controller.reconcile(KEY)
        assert writes(cluster, "pods") == []
        informer = cluster.informers.informer_for("v1", "Pod")
        informer.last_resource_version = "1000"  # the informer caught up past the creates
        await controller.reconcile(KEY)
        assert len(writes(cluster, "pods")) == 2  # still no pods in the cache: create again


class TestScaleDown:
    async def test_deletes_unscheduled_then_pending_then_unready_then_newest(self) -> None:
        objs = [
            pod("running-ready-old", node="n", phase="Running", ready="2026-01-01T00:00:00Z"),
            pod("running-ready-new", node="n", phase="Running", ready="2026-01-01T01:00:00Z"),
            pod("running-unready", node="n", phase="Running"),
            pod("pending-scheduled", node="n"),
            pod("unscheduled"),
        ]
        cluster, controller = make(rs(1), *objs)
        await controller.reconcile(KEY)
        deleted = [a.name for a in writes(cluster, "pods") if a.verb == "delete"]
        assert deleted == [
            "unscheduled",
            "pending-scheduled",
            "running-unready",
            "running-ready-new",
        ]

    def test_newer_pods_go_first_among_equals(self) -> None:
        old = pod("old", created="2026-01-01T00:00:00Z")
        new = pod("new", created="2026-01-02T00:00:00Z")
        assert sorted([old, new], key=pods.deletion_rank) == [new, old]


class TestClaiming:
    async def test_adopts_a_matching_orphan(self) -> None:
        cluster, controller = make(rs(1), pod("stray", owned=False))
        await controller.reconcile(KEY)
        [patch] = list(writes(cluster, "pods"))
        assert patch.verb == "patch"
        assert patch.name == "stray"
        assert patch.body["metadata"]["ownerReferences"][0]["uid"] == "rs-uid"

    async def test_releases_an_owned_pod_that_no_longer_matches(self) -> None:
        cluster, controller = make(rs(1), pod("a"), pod("relabelled", labels={"app": "other"}))
        await controller.reconcile(KEY)
        patches = [a for a in writes(cluster, "pods") if a.verb == "patch"]
        assert [p.name for p in patches] == ["relabelled"]
        assert patches[0].body["metadata"]["ownerReferences"] == [
            {"$patch": "delete", "uid": "rs-uid"}
        ]

    async def test_pods_of_another_controller_are_ignored(self) -> None:
        other = pod("theirs", owned=False)
        other["metadata"]["ownerReferences"] = [
            {"kind": "ReplicaSet", "name": "x", "uid": "x", "controller": True}
        ]
        cluster, controller = make(rs(0), other)
        await controller.reconcile(KEY)
        assert writes(cluster, "pods") == []

    def test_pod_events_map_to_the_owner_or_to_would_be_adopters(self) -> None:
        _cluster, controller = make(rs(1))
        assert list(controller.pod_keys(pod("a"))) == [KEY]
        assert list(controller.pod_keys(pod("b", owned=False))) == [KEY]
        assert list(controller.pod_keys(pod("c", owned=False, labels={"app": "x"}))) == []


class TestStatus:
    async def test_status_counts_through_the_status_subresource(self) -> None:
        cluster, controller = make(
            rs(3, minReadySeconds=10),
            pod("ready-long", phase="Running", node="n", ready="2025-12-31T00:00:00Z"),
            pod("ready-just-now", phase="Running", node="n", ready="2026-01-01T00:00:00Z"),
            pod("partial", labels={"app": "web"}),
        )
        result = await controller.reconcile(KEY)
        [update] = [a for a in writes(cluster, "replicasets") if a.subresource == "status"]
        assert update.body["status"] == {
            "replicas": 3,
            "fullyLabeledReplicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 1,
            "observedGeneration": 2,
        }
        assert result == runtime.Result()

    async def test_unchanged_status_is_not_written(self) -> None:
        obj = rs(0)
        obj["status"] = {
            "replicas": 0,
            "fullyLabeledReplicas": 0,
            "readyReplicas": 0,
            "availableReplicas": 0,
            "observedGeneration": 2,
        }
        cluster, controller = make(obj)
        await controller.reconcile(KEY)
        assert cluster.writes() == []


class TestReplicationController:
    async def test_a_map_selector_works_the_same(self) -> None:
        rc = {
            "apiVersion": "v1",
            "kind": "ReplicationController",
            "metadata": {"name": "web", "namespace": "ns", "uid": "rc-uid"},
            "spec": {
                "replicas": 2,
                "selector": {"app": "web"},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}},
            },
        }
        cluster = fakeclient.FakeCluster()
        cluster.add(rc, pod("stray", owned=False))
        controller = replicaset.ReplicationControllerController(
            client=cluster.client, informers=cluster.informers
        )
        await controller.reconcile(KEY)
        verbs = [a.verb for a in writes(cluster, "pods")]
        assert verbs == ["patch", "create"]
        create = next(a for a in writes(cluster, "pods") if a.verb == "create")
        assert create.body["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController"
