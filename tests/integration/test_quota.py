"""ResourceQuota and LimitRange end to end: admission refusals, dry runs (judged, never
charged), concurrent creates against a limit, usage released after deletes (the resourcequota
controller running), defaults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kybern import client as kclient
from kybern.api import kinds
from kybern.apiserver import admission, errors
from kybern.apiserver import quota as quota_
from tests.integration.simcluster import SimCluster, sim_cluster

pytestmark = pytest.mark.timeout(30)
Obj = dict[str, Any]


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimCluster]:
    async with sim_cluster(tmp_path, None, scheduler=False, controllers=["resourcequota"]) as c:
        yield c


def quota(name: str, **hard: str) -> Obj:
    hard = {k.replace("_", "."): v for k, v in hard.items()}
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"hard": hard},
    }


def pod(name: str, requests: dict[str, str] | None = None, **limits: str) -> Obj:
    resources: Obj = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    container = {"name": "app", "image": "busybox", "resources": resources}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [container]},
    }


async def ready_quota(sim: SimCluster, body: Obj) -> Obj:
    """Create a quota and wait for the controller to fill its status."""
    await sim.client.create(body)

    async def filled() -> Obj | None:
        got = await sim.client.get(
            "v1", "ResourceQuota", body["metadata"]["name"], namespace="default"
        )
        status = got.get("status") or {}
        return got if status.get("hard") and status.get("used") is not None else None

    return await sim.wait_for(filled, what="quota status")


async def used(sim: SimCluster, name: str) -> dict[str, str]:
    got = await sim.client.get("v1", "ResourceQuota", name, namespace="default")
    return dict((got.get("status") or {}).get("used") or {})


class TestAdmission:
    async def test_a_pod_over_the_quota_is_refused_with_kubernetes_message(
        self, sim: SimCluster
    ) -> None:
        await ready_quota(sim, quota("compute", pods="2", requests_cpu="1"))
        await sim.client.create(pod("a", {"cpu": "500m"}))
        await sim.client.create(pod("b", {"cpu": "500m"}))
        with pytest.raises(kclient.errors.Forbidden) as refused:
            await sim.client.create(pod("c", {"cpu": "500m"}))
        assert refused.value.code == 403
        assert refused.value.message == (
            'pods "c" is forbidden: exceeded quota: compute, requested: pods=1,requests.cpu=500m, '
            "used: pods=2,requests.cpu=1, limited: pods=2,requests.cpu=1"
        )

    async def test_usage_is_charged_at_admission(self, sim: SimCluster) -> None:
        await ready_quota(sim, quota("compute", pods="5", requests_memory="1Gi"))
        await sim.client.create(pod("a", {"memory": "256Mi"}))
        got = await used(sim, "compute")
        assert got["pods"] == "1"
        assert got["requests.memory"] == "256Mi"

    async def test_a_cpu_quota_requires_containers_to_state_cpu(self, sim: SimCluster) -> None:
        await ready_quota(sim, quota("compute", limits_cpu="2", requests_cpu="1"))
        with pytest.raises(kclient.errors.Forbidden) as refused:
            await sim.client.create(pod("bare"))
        assert refused.value.message == (
            'pods "bare" is forbidden: failed quota: compute: must specify '
            "limits.cpu for: app; requests.cpu for: app"
        )

    async def test_object_counts_for_any_resource(self, sim: SimCluster) -> None:
        await ready_quota(sim, quota("objects", **{"count/configmaps": "1", "services": "0"}))
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one"}}
        await sim.client.create({**cm, "metadata": {"name": "one", "namespace": "default"}})
        with pytest.raises(kclient.errors.Forbidden) as refused:
            await sim.client.create({**cm, "metadata": {"name": "two", "namespace": "default"}})
        assert "exceeded quota: objects, requested: count/configmaps=1" in refused.value.message
        svc = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"ports": [{"port": 80}]},
        }
        with pytest.raises(kclient.errors.Forbidden):
            await sim.client.create(svc)

    async def test_a_service_update_that_adds_node_ports_is_charged(self, sim: SimCluster) -> None:
        await ready_quota(sim, quota("ports", **{"services.nodeports": "1"}))
        svc = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]},
        }
        created = await sim.client.create(svc)
        created["spec"]["type"] = "NodePort"
        with pytest.raises(kclient.errors.Forbidden) as refused:
            await sim.client.update(created)
        assert refused.value.message == (
            'services "web" is forbidden: exceeded quota: ports, requested: '
            "services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1"
        )

    async def test_a_create_refused_as_already_existing_is_not_charged(
        self, sim: SimCluster
    ) -> None:
        await ready_quota(sim, quota("pods", pods="2"))
        await sim.client.create(pod("same"))
        with pytest.raises(kclient.AlreadyExists):
            await sim.client.create(pod("same"))
        assert (await used(sim, "pods"))["pods"] == "1"

    async def test_other_namespaces_are_not_limited(self, sim: SimCluster) -> None:
        await ready_quota(sim, quota("none", pods="0"))
        await sim.client.create(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "free"}}
        )
        body = pod("p")
        body["metadata"]["namespace"] = "free"
        await sim.client.create(body)


def service(name: str, ports: int) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ports": [{"name": f"p{i}", "port": 80 + i} for i in range(ports)]},
    }


class TestDryRun:
    """A dry run is judged like the real write (same refusals) but charges nothing."""

    async def test_a_dry_run_create_with_room_is_admitted_and_not_charged(
        self, sim: SimCluster
    ) -> None:
        await ready_quota(sim, quota("compute", pods="2", requests_cpu="1"))
        answered = await sim.client.create(pod("a", {"cpu": "500m"}), dry_run=True)
        assert answered["metadata"]["name"] == "a"
        assert await used(sim, "compute") == {"pods": "0", "requests.cpu": "0"}
        assert await sim.pod("a") is None
        await sim.client.create(pod("a", {"cpu": "500m"}))
        assert await used(sim, "compute") == {"pods": "1", "requests.cpu": "500m"}

    async def test_dry_runs_never_use_up_the_quota(self, sim: SimCluster) -> None:
        await ready_quota(sim, quota("pods", pods="1"))
        for i in range(3):
            await sim.client.create(pod(f"try{i}"), dry_run=True)
        await sim.client.create(pod("real"))
        assert (await used(sim, "pods"))["pods"] == "1"

    async def test_a_dry_run_over_the_quota_is_refused_like_a_create(self, sim: SimCluster) -> None:
        await ready_quota(sim, quota("compute", pods="1", requests_cpu="1"))
        await sim.client.create(pod("a", {"cpu": "500m"}))
        with pytest.raises(kclient.errors.Forbidden) as refused:
            await sim.client.create(pod("b", {"cpu": "500m"}), dry_run=True)
        assert refused.value.message == (
            'pods "b" is forbidden: exceeded quota: compute, requested: pods=1, '
            "used: pods=1, limited: pods=1"
        )
        with pytest.raises(kclient.errors.Forbidden) as unstated:
            await sim.client.create(pod("c"), dry_run=True)
        assert unstated.value.message == (
            'pods "c" is forbidden: failed quota: compute: must specify requests.cpu for: app'
        )
        assert await used(sim, "compute") == {"pods": "1", "requests.cpu": "500m"}

    async def test_a_dry_run_update_that_raises_usage_is_judged_not_charged(
        self, sim: SimCluster
    ) -> None:
        await ready_quota(sim, quota("ports", **{"services.nodeports": "1"}))
        one = await sim.client.create(service("one", 1))
        one["spec"]["type"] = "NodePort"
        answered = await sim.client.update(one, dry_run=True)
        assert answered["spec"]["type"] == "NodePort"
        assert await used(sim, "ports") == {"services.nodeports": "0"}
        two = await sim.client.create(service("two", 2))
        two["spec"]["type"] = "NodePort"
        with pytest.raises(kclient.errors.Forbidden) as refused:
            await sim.client.update(two, dry_run=True)
        assert refused.value.message == (
            'services "two" is forbidden: exceeded quota: ports, requested: '
            "services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1"
        )
        await sim.client.update(one)  # the real update is charged
        assert await used(sim, "ports") == {"services.nodeports": "1"}


class TestConcurrency:
    async def test_concurrent_creates_never_exceed_the_limit(self, sim: SimCluster) -> None:
        limit = 5
        await ready_quota(sim, quota("pods", pods=str(limit)))

        async def create(i: int) -> bool:
            try:
                await sim.client.create(pod(f"p{i}"))
            except kclient.errors.Forbidden:
                return False
            return True

        results = await asyncio.gather(*(create(i) for i in range(20)))
        assert sum(results) == limit
        listed = await sim.client.list("v1", "Pod", namespace="default")
        assert len(listed["items"]) == limit

    async def test_two_api_servers_charging_one_quota_never_exceed_it(
        self, sim: SimCluster
    ) -> None:
        """Two admission plugins (as in two API servers over one store) only meet at the
        store's compare-and-swap on the quota."""
        await ready_quota(sim, quota("pods", pods="5"))
        assert sim.api.cache is not None
        servers = [
            quota_.ResourceQuotaAdmission(sim.api.cache, sim.api.cache.backend) for _ in "ab"
        ]
        info = kinds.lookup("", "v1", "pods")
        assert info is not None

        async def admit(i: int) -> str:
            try:
                await servers[i % 2].on_create(admission.Request(info), pod(f"p{i}"))
            except errors.StatusError as exc:
                return exc.reason
            return "admitted"

        results = await asyncio.gather(*(admit(i) for i in range(16)))
        assert sorted(results) == ["Forbidden"] * 11 + ["admitted"] * 5
        assert (await used(sim, "pods"))["pods"] == "5"


class TestController:
    async def test_status_mirrors_hard_and_counts_what_exists(self, sim: SimCluster) -> None:
        await sim.client.create(pod("before", {"cpu": "250m"}))
        got = await ready_quota(sim, quota("compute", pods="3", cpu="1"))
        assert got["status"]["hard"] == {"pods": "3", "cpu": "1"}

        async def counted() -> bool:
            return await used(sim, "compute") == {"pods": "1", "cpu": "250m"}

        await sim.wait_for(counted, what="existing pod counted")

    async def test_raising_the_limit_takes_effect_once_status_follows(
        self, sim: SimCluster
    ) -> None:
        await ready_quota(sim, quota("pods", pods="1"))
        await sim.client.create(pod("one"))
        current = await sim.client.get("v1", "ResourceQuota", "pods", namespace="default")
        current["spec"]["hard"]["pods"] = "2"
        await sim.client.update(current)

        async def followed() -> bool:
            got = await sim.client.get("v1", "ResourceQuota", "pods", namespace="default")
            return bool(got["status"]["hard"] == {"pods": "2"})

        await sim.wait_for(followed, what="status.hard follows spec.hard")
        assert (await used(sim, "pods"))["pods"] == "1"
        await sim.client.create(pod("two"))

    async def test_usage_is_released_after_a_delete(self, sim: SimCluster) -> None:
        await ready_quota(sim, quota("pods", pods="1"))
        await sim.client.create(pod("first"))
        with pytest.raises(kclient.errors.Forbidden):
            await sim.client.create(pod("second"))
        await sim.client.delete("v1", "Pod", "first", namespace="default", grace_period_seconds=0)

        async def released() -> bool:
            return (await used(sim, "pods")).get("pods") == "0"

        await sim.wait_for(released, what="usage released")
        await sim.client.create(pod("second"))

    async def test_finished_pods_stop_counting(self, sim: SimCluster) -> None:
        await ready_quota(sim, quota("pods", pods="1", **{"count/pods": "5"}))
        created = await sim.client.create(pod("job"))
        created["status"] = {"phase": "Succeeded"}
        await sim.client.update_status(created)

        async def released() -> bool:
            return await used(sim, "pods") == {"pods": "0", "count/pods": "1"}

        await sim.wait_for(released, what="finished pod released")


async def test_a_full_resync_every_five_minutes_corrects_leaked_usage(tmp_path: Path) -> None:
    clock = kclient.FakeClock()
    async with sim_cluster(
        tmp_path, None, scheduler=False, controllers=["resourcequota"], clock=clock
    ) as sim:
        await ready_quota(sim, quota("pods", pods="3"))
        leaked = await sim.client.get("v1", "ResourceQuota", "pods", namespace="default")
        leaked["status"]["used"] = {"pods": "3"}  # a charge for a write that never happened
        await sim.client.update_status(leaked)
        await clock.run_for(299)
        assert (await used(sim, "pods"))["pods"] == "3"
        await clock.run_for(2)

        async def corrected() -> bool:
            return (await used(sim, "pods"))["pods"] == "0"

        await sim.wait_for(corrected, what="resync")


class TestLimitRange:
    async def test_defaults_are_applied_and_quota_sees_them(self, sim: SimCluster) -> None:
        await sim.client.create(
            {
                "apiVersion": "v1",
                "kind": "LimitRange",
                "metadata": {"name": "defaults", "namespace": "default"},
                "spec": {
                    "limits": [
                        {
                            "type": "Container",
                            "default": {"cpu": "500m"},
                            "defaultRequest": {"cpu": "200m"},
                            "max": {"cpu": "1"},
                        }
                    ]
                },
            }
        )
        await ready_quota(sim, quota("compute", requests_cpu="1"))
        created = await sim.client.create(pod("defaulted"))
        resources = created["spec"]["containers"][0]["resources"]
        assert resources == {"limits": {"cpu": "500m"}, "requests": {"cpu": "200m"}}
        assert created["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
            "LimitRanger plugin set: cpu request for container app; cpu limit for container app"
        )
        assert (await used(sim, "compute"))["requests.cpu"] == "200m"
        with pytest.raises(kclient.errors.Forbidden) as refused:
            await sim.client.create(pod("big", {"cpu": "2"}, cpu="2"))
        assert refused.value.message == (
            'pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2'
        )


async def test_a_replica_set_over_quota_records_failed_create(tmp_path: Path) -> None:
    names = ["replicaset", "resourcequota"]
    async with sim_cluster(tmp_path, None, scheduler=False, controllers=names) as sim:
        await ready_quota(sim, quota("pods", pods="2"))
        template = {"metadata": {"labels": {"app": "web"}}, "spec": pod("x")["spec"]}
        spec = {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template}
        meta = {"name": "web", "namespace": "default"}
        await sim.client.create(
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta, "spec": spec}
        )

        async def refused() -> list[Obj]:
            return await sim.events("web", "FailedCreate")

        events = await sim.wait_for(refused, what="FailedCreate event")
        expected = "is forbidden: exceeded quota: pods, requested: pods=1, used: pods=2, "
        assert all(expected in e["message"] for e in events), [e["message"] for e in events]
        assert len((await sim.client.list("v1", "Pod", namespace="default"))["items"]) == 2
