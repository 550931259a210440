"""Quota usage evaluators (kybern.api.quotausage, kybern.api.resourcelist) and the
ResourceQuota admission plugin's decisions and messages (kybern.apiserver.quota)."""

from __future__ import annotations

import datetime
from typing import Any

import orjson
import pytest

from kybern.api import kinds, quotausage, resourcelist
from kybern.apiserver import admission, errors, quota, watchcache

pytestmark = pytest.mark.timeout(10)
Obj = dict[str, Any]
PODS = kinds.lookup("", "v1", "pods")
assert PODS is not None


def container(name: str = "app", requests: Obj | None = None, limits: Obj | None = None) -> Obj:
    resources: Obj = {}
    if requests is not None:
        resources["requests"] = requests
    if limits is not None:
        resources["limits"] = limits
    return {"name": name, "image": "busybox", "resources": resources}


def pod(*containers: Obj, name: str = "p", **spec: Any) -> Obj:
    return {
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"containers": list(containers), **spec},
    }


def rq(name: str, hard: Obj, used: Obj | None = None, **spec: Any) -> Obj:
    return {
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": "7"},
        "spec": {"hard": hard, **spec},
        "status": {"hard": hard, "used": used if used is not None else dict.fromkeys(hard, "0")},
    }


class TestResourceLists:
    def test_sums_keep_the_first_operands_format(self) -> None:
        assert resourcelist.add({"memory": "1Gi"}, {"memory": "512Mi"}) == {"memory": "1536Mi"}
        assert resourcelist.add({"cpu": "0"}, {"cpu": "250m"}) == {"cpu": "250m"}
        assert resourcelist.add({"cpu": "500m"}, {"cpu": "500m"}) == {"cpu": "1"}

    def test_pretty_is_sorted_and_comma_joined(self) -> None:
        assert resourcelist.pretty({"requests.cpu": "1", "pods": "2"}) == "pods=2,requests.cpu=1"

    def test_exceeded_names(self) -> None:
        assert resourcelist.exceeded({"pods": "3", "cpu": "1"}, {"pods": "2", "cpu": "2"}) == [
            "pods"
        ]


class TestPodUsage:
    def test_requests_limits_and_the_bare_names(self) -> None:
        usage = quotausage.pod_usage(
            pod(container(requests={"cpu": "250m", "memory": "64Mi"}, limits={"cpu": "1"}))
        )
        assert usage == {
            "count/pods": "1",
            "pods": "1",
            "cpu": "250m",
            "requests.cpu": "250m",
            "memory": "64Mi",
            "requests.memory": "64Mi",
            "limits.cpu": "1",
        }

    def test_init_containers_count_as_their_maximum_against_the_app_sum(self) -> None:
        spec_pod = pod(
            container("a", requests={"cpu": "300m"}),
            container("b", requests={"cpu": "300m"}),
            initContainers=[container("init", requests={"cpu": "1"})],
            overhead={"cpu": "100m"},
        )
        assert quotausage.pod_usage(spec_pod)["requests.cpu"] == "1100m"

    def test_sidecars_add_to_the_app_containers(self) -> None:
        sidecar = {**container("log", requests={"cpu": "100m"}), "restartPolicy": "Always"}
        spec_pod = pod(container("a", requests={"cpu": "500m"}), initContainers=[sidecar])
        assert quotausage.pod_usage(spec_pod)["requests.cpu"] == "600m"

    def test_extended_resources_and_hugepages(self) -> None:
        usage = quotausage.pod_usage(
            pod(container(requests={"example.com/gpu": "2", "hugepages-2Mi": "4Mi"}))
        )
        assert usage["requests.example.com/gpu"] == "2"
        assert "example.com/gpu" not in usage
        assert usage["requests.hugepages-2Mi"] == usage["hugepages-2Mi"] == "4Mi"

    def test_terminal_pods_only_count_in_count_pods(self) -> None:
        done = pod(container(requests={"cpu": "1"}))
        done["status"] = {"phase": "Succeeded"}
        assert quotausage.pod_usage(done) == {"count/pods": "1"}

    def test_pods_past_their_grace_period_stop_counting(self) -> None:
        gone = pod(container())
        gone["metadata"] |= {
            "deletionTimestamp": "2026-01-01T00:00:00Z",
            "deletionGracePeriodSeconds": 30,
        }
        early = datetime.datetime(2026, 1, 1, 0, 0, 10, tzinfo=datetime.UTC)
        late = datetime.datetime(2026, 1, 1, 0, 1, 0, tzinfo=datetime.UTC)
        assert quotausage.pod_counts(gone, early)
        assert not quotausage.pod_counts(gone, late)

    def test_missing_cpu_is_reported_per_resource_and_container(self) -> None:
        problem = quotausage.pod_constraints(
            ["limits.cpu", "requests.memory", "pods"],
            pod(container("a", requests={"memory": "1Mi"}), container("b")),
        )
        assert problem == "must specify limits.cpu for: a,b; requests.memory for: b"


class TestOtherEvaluators:
    def test_services_count_node_ports_and_load_balancers(self) -> None:
        svc = {"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]}}
        assert quotausage.service_usage(svc) == {
            "services": "1",
            "count/services": "1",
            "services.loadbalancers": "1",
            "services.nodeports": "2",
        }
        plain = quotausage.service_usage({"spec": {"ports": [{"port": 80}]}})
        assert plain["services.nodeports"] == "0"

    def test_pvcs_charge_storage_per_class(self) -> None:
        pvc = {
            "spec": {"storageClassName": "fast", "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"allocatedResources": {"storage": "2Gi"}},
        }
        usage = quotausage.pvc_usage(pvc)
        assert usage["requests.storage"] == "2Gi"
        assert usage["fast.storageclass.storage.k8s.io/requests.storage"] == "2Gi"
        assert usage["fast.storageclass.storage.k8s.io/persistentvolumeclaims"] == "1"

    def test_any_resource_has_an_object_count(self) -> None:
        evaluator = quotausage.evaluator_for("deployments", "apps")
        assert evaluator is not None
        assert evaluator.usage({}, None) == {"count/deployments.apps": "1"}
        secrets = quotausage.evaluator_for("secrets", "")
        assert secrets is not None
        assert secrets.usage({}, None) == {"secrets": "1", "count/secrets": "1"}
        assert quotausage.evaluator_for("events", "") is None

    def test_scopes_only_match_pods(self) -> None:
        scoped = rq("be", {"pods": "1", "count/configmaps": "1"}, scopes=["BestEffort"])
        pods = quotausage.evaluator_for("pods", "")
        cms = quotausage.evaluator_for("configmaps", "")
        assert pods is not None
        assert cms is not None
        hard = quotausage.hard_of(scoped)
        assert pods.matches(scoped, pod(container()), hard)
        assert not pods.matches(scoped, pod(container(requests={"cpu": "1"})), hard)
        assert not cms.matches(scoped, {}, hard)

    def test_priority_class_selector(self) -> None:
        selector = {
            "matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": ["hi"]}]
        }
        scoped = rq("prio", {"pods": "1"}, scopeSelector=selector)
        pods = quotausage.evaluator_for("pods", "")
        assert pods is not None
        hard = quotausage.hard_of(scoped)
        assert pods.matches(scoped, pod(container(), priorityClassName="hi"), hard)
        assert not pods.matches(scoped, pod(container(), priorityClassName="lo"), hard)


class TestAdmissionCheck:
    def check(self, obj: Obj, *quotas: Obj) -> list[tuple[Obj, Obj]]:
        plugin = quota.ResourceQuotaAdmission(None, None)  # type: ignore[arg-type]
        assert PODS is not None
        evaluator = quotausage.evaluator_for("pods", "")
        assert evaluator is not None
        return plugin._check(PODS, obj, evaluator, evaluator.usage(obj, None), list(quotas), set())

    def test_exceeded_message_names_only_the_exceeded_resources(self) -> None:
        compute = rq(
            "compute-quota",
            {"pods": "2", "requests.cpu": "1", "requests.memory": "1Gi"},
            {"pods": "2", "requests.cpu": "1", "requests.memory": "0"},
        )
        with pytest.raises(errors.StatusError) as refused:
            self.check(pod(container(requests={"cpu": "500m", "memory": "1Mi"}), name="x"), compute)
        assert refused.value.code == 403
        assert refused.value.reason == "Forbidden"
        assert refused.value.message == (
            'pods "x" is forbidden: exceeded quota: compute-quota, requested: '
            "pods=1,requests.cpu=500m, used: pods=2,requests.cpu=1, limited: pods=2,requests.cpu=1"
        )

    def test_within_the_limit_the_new_usage_is_returned(self) -> None:
        compute = rq("q", {"pods": "3", "cpu": "2"}, {"pods": "1", "cpu": "500m"})
        [(_, new_used)] = self.check(pod(container(requests={"cpu": "1"})), compute)
        assert new_used == {"pods": "2", "cpu": "1500m"}

    def test_a_quota_without_status_hard_covers_nothing_yet(self) -> None:
        fresh = {"metadata": {"name": "q", "namespace": "ns"}, "spec": {"hard": {"pods": "0"}}}
        assert self.check(pod(container()), fresh) == []

    def test_missing_usage_is_status_unknown(self) -> None:
        partial = rq("q", {"pods": "3", "requests.cpu": "1"}, {"pods": "0"})
        with pytest.raises(errors.StatusError) as refused:
            self.check(pod(container(requests={"cpu": "1"}), name="x"), partial)
        assert refused.value.message == (
            'pods "x" is forbidden: status unknown for quota: q, resources: pods,requests.cpu'
        )

    def test_constraints_come_first(self) -> None:
        compute = rq("compute", {"limits.memory": "1Gi"})
        with pytest.raises(errors.StatusError) as refused:
            self.check(pod(container(), name="x"), compute)
        assert refused.value.message == (
            'pods "x" is forbidden: failed quota: compute: must specify limits.memory for: app'
        )

    def test_unrelated_quotas_are_skipped(self) -> None:
        storage = rq("storage", {"requests.storage": "1Gi"})
        assert self.check(pod(container()), storage) == []


class FakeCache:
    """The slice of the watch cache the plugin reads: quotas (and pods, for existence)."""

    def __init__(self, *quotas: Obj) -> None:
        self.caches: dict[str, watchcache.ResourceCache] = {}
        for item in quotas:
            meta = item["metadata"]
            key = watchcache.object_key("resourcequotas", meta["namespace"], meta["name"])
            self.resource("resourcequotas").objects[key] = item

    def resource(self, name: str) -> watchcache.ResourceCache:
        return self.caches.setdefault(name, watchcache.ResourceCache(name, 0, 10))

    async def wait_for(self, revision: int, within: float = 0) -> None:
        return None


class RecordingBackend:
    """Records the quota writes (the charges) the plugin makes."""

    def __init__(self) -> None:
        self.writes: list[Obj] = []

    async def update(self, key: str, value: bytes, expected: int) -> int:
        self.writes.append(orjson.loads(value))
        return expected + 1


def plugin_with(*quotas: Obj) -> tuple[quota.ResourceQuotaAdmission, RecordingBackend]:
    backend = RecordingBackend()
    cache = FakeCache(*quotas)
    return quota.ResourceQuotaAdmission(cache, backend), backend  # type: ignore[arg-type]


def service(ports: int, kind: str = "ClusterIP") -> Obj:
    spec = {"type": kind, "ports": [{"port": 80 + i} for i in range(ports)]}
    return {"metadata": {"name": "web", "namespace": "ns"}, "spec": spec}


def resource(plural: str) -> kinds.ResourceInfo:
    info = kinds.lookup("", "v1", plural)
    assert info is not None
    return info


PODS_INFO, SERVICES = resource("pods"), resource("services")


class TestDryRun:
    """Kubernetes' quota evaluator judges a dry run but skips the status update."""

    async def test_a_real_create_is_charged_and_a_dry_run_is_not(self) -> None:
        plugin, backend = plugin_with(rq("q", {"pods": "2"}))
        await plugin.on_create(
            admission.Request(PODS_INFO, dry_run=True), pod(container(), name="dry")
        )
        assert backend.writes == []
        await plugin.on_create(admission.Request(PODS_INFO), pod(container(), name="real"))
        assert [w["status"]["used"] for w in backend.writes] == [{"pods": "1"}]

    @pytest.mark.parametrize("dry_run", [True, False])
    async def test_a_dry_run_is_refused_like_the_real_create(self, dry_run: bool) -> None:
        plugin, backend = plugin_with(rq("q", {"pods": "1"}, {"pods": "1"}))
        with pytest.raises(errors.StatusError) as refused:
            await plugin.on_create(
                admission.Request(PODS_INFO, dry_run=dry_run), pod(container(), name="x")
            )
        assert refused.value.code == 403
        assert refused.value.message == (
            'pods "x" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, '
            "limited: pods=1"
        )
        assert backend.writes == []

    async def test_a_dry_run_update_that_grows_usage_is_checked_not_charged(self) -> None:
        plugin, backend = plugin_with(rq("ports", {"services.nodeports": "1"}))
        old = service(1)
        await plugin.on_update(
            admission.Request(SERVICES, dry_run=True), service(1, "NodePort"), old
        )
        assert backend.writes == []
        with pytest.raises(errors.StatusError) as refused:
            await plugin.on_update(
                admission.Request(SERVICES, dry_run=True), service(2, "NodePort"), service(2)
            )
        assert "exceeded quota: ports, requested: services.nodeports=2" in refused.value.message
        await plugin.on_update(admission.Request(SERVICES), service(1, "NodePort"), old)
        assert [w["status"]["used"] for w in backend.writes] == [{"services.nodeports": "1"}]


class TestSubresources:
    """Kubernetes' quota plugin ignores every subresource write."""

    async def test_an_eviction_is_not_a_pod_create(self) -> None:
        plugin, backend = plugin_with(rq("q", {"pods": "0"}))
        eviction = {"kind": "Eviction", "metadata": {"name": "p", "namespace": "ns"}}
        await plugin.on_create(admission.Request(PODS_INFO, subresource="eviction"), eviction)
        assert backend.writes == []

    async def test_a_status_update_is_not_judged(self) -> None:
        plugin, backend = plugin_with(rq("ports", {"services.nodeports": "0"}))
        new, old = service(1, "NodePort"), service(1)
        await plugin.on_update(admission.Request(SERVICES, subresource="status"), new, old)
        assert backend.writes == []
