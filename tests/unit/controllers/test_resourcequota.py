"""The ResourceQuota controller: status.hard/used recounted from the caches."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from kybern import client as kclient
from kybern.controllers import resourcequota, runtime
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)
Obj = dict[str, Any]
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def quota(hard: Obj, status: Obj | None = None, **spec: Any) -> Obj:
    body: Obj = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "q", "namespace": "ns"},
        "spec": {"hard": hard, **spec},
    }
    if status is not None:
        body["status"] = status
    return body


def pod(name: str, cpu: str = "100m", phase: str = "Running", ns: str = "ns", **meta: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, **meta},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]},
        "status": {"phase": phase},
    }


def make(*objs: Obj) -> tuple[fakeclient.FakeCluster, resourcequota.ResourceQuotaController]:
    cluster = fakeclient.FakeCluster(clock=kclient.FakeClock(wall=START))
    cluster.add(*objs)
    controller = resourcequota.ResourceQuotaController(
        client=cluster.client, informers=cluster.informers
    )
    return cluster, controller


def written_status(cluster: fakeclient.FakeCluster) -> Obj:
    [action] = cluster.writes()
    assert (action.verb, action.resource, action.subresource) == (
        "update",
        "resourcequotas",
        "status",
    )
    status: Obj = action.body["status"]
    return status


async def test_status_gets_hard_and_the_usage_of_active_pods() -> None:
    cluster, controller = make(
        quota({"pods": "5", "requests.cpu": "2", "count/pods": "10"}),
        pod("a", "250m"),
        pod("b", "500m"),
        pod("done", "1", phase="Succeeded"),
        pod("other-namespace", "1", ns="elsewhere"),
    )
    result = await controller.reconcile("ns/q")
    assert result == runtime.Result(requeue_after=resourcequota.RESYNC)
    assert written_status(cluster) == {
        "hard": {"pods": "5", "requests.cpu": "2", "count/pods": "10"},
        "used": {"pods": "2", "requests.cpu": "750m", "count/pods": "3"},
    }


async def test_nothing_is_written_when_status_is_current() -> None:
    current = {"hard": {"pods": "5"}, "used": {"pods": "1"}}
    cluster, controller = make(quota({"pods": "5"}, current), pod("a"))
    await controller.reconcile("ns/q")
    assert cluster.writes() == []


async def test_scopes_select_the_pods_counted() -> None:
    best_effort = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "be", "namespace": "ns"},
        "spec": {"containers": [{"name": "c"}]},
    }
    cluster, controller = make(
        quota({"pods": "5"}, scopes=["BestEffort"]), pod("burstable"), best_effort
    )
    await controller.reconcile("ns/q")
    assert written_status(cluster)["used"] == {"pods": "1"}


async def test_object_counts_and_services() -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {"type": "NodePort", "ports": [{"port": 80}]},
    }
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}}
    cluster, controller = make(
        quota({"services.nodeports": "3", "count/configmaps": "2", "secrets": "1"}), svc, cm
    )
    await controller.reconcile("ns/q")
    assert written_status(cluster)["used"] == {
        "services.nodeports": "1",
        "count/configmaps": "1",
        "secrets": "0",
    }


async def test_pods_past_their_grace_period_are_released() -> None:
    deleting = pod("going", deletionTimestamp="2025-12-31T23:59:00Z", deletionGracePeriodSeconds=30)
    cluster, controller = make(quota({"pods": "5"}), deleting)
    await controller.reconcile("ns/q")
    assert written_status(cluster)["used"] == {"pods": "0"}


async def test_a_missing_quota_is_nothing_to_do() -> None:
    cluster, controller = make()
    assert await controller.reconcile("ns/q") == runtime.Result()
    assert cluster.actions == []


class TestEventMapping:
    def test_status_only_changes_are_not_looked_at(self) -> None:
        synced = quota({"pods": "2"}, {"hard": {"pods": "2"}, "used": {"pods": "1"}})
        assert list(resourcequota.unsynced_key(synced)) == []
        changed = quota({"pods": "3"}, {"hard": {"pods": "2"}, "used": {"pods": "1"}})
        assert list(resourcequota.unsynced_key(changed)) == ["ns/q"]
        assert list(resourcequota.unsynced_key(quota({"pods": "3"}))) == ["ns/q"]

    def test_finished_or_deleting_pods_wake_their_namespaces_quotas(self) -> None:
        _, controller = make(quota({"pods": "5"}))
        assert list(controller.finished_pod_keys(pod("run"))) == []
        assert list(controller.finished_pod_keys(pod("done", phase="Failed"))) == ["ns/q"]
        assert list(controller.quota_keys(pod("x", ns="elsewhere"))) == []
