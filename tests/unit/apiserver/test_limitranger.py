"""LimitRanger admission: defaults, min/max/ratio enforcement and Kubernetes' messages."""

from __future__ import annotations

from typing import Any

import pytest

from kybern.api import kinds
from kybern.apiserver import admission, errors, limitranger, watchcache

pytestmark = pytest.mark.timeout(10)
Obj = dict[str, Any]


def container(name: str = "app", requests: Obj | None = None, limits: Obj | None = None) -> Obj:
    resources: Obj = {}
    if requests is not None:
        resources["requests"] = requests
    if limits is not None:
        resources["limits"] = limits
    return {"name": name, "image": "busybox", "resources": resources}


def pod(*containers: Obj, **spec: Any) -> Obj:
    return {
        "metadata": {"name": "x", "namespace": "ns"},
        "spec": {"containers": list(containers), **spec},
    }


class FakeCache:
    """The slice of the watch cache the plugin reads."""

    def __init__(self, *ranges: Obj) -> None:
        self.cache = watchcache.ResourceCache("limitranges", 0, 10)
        for item in ranges:
            meta = item["metadata"]
            key = watchcache.object_key("limitranges", meta["namespace"], meta["name"])
            self.cache.objects[key] = item

    def resource(self, name: str) -> watchcache.ResourceCache:
        return self.cache


def limit_range(*items: Obj, name: str = "lr") -> Obj:
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": {"limits": list(items)}}


async def admit(obj: Obj, *ranges: Obj, plural: str = "pods") -> Obj:
    info = kinds.lookup("", "v1", plural)
    assert info is not None
    plugin = limitranger.LimitRanger(FakeCache(*ranges))  # type: ignore[arg-type]
    await plugin.on_create(admission.Request(info), obj)
    return obj


class TestDefaults:
    async def test_missing_limits_and_requests_are_filled_and_annotated(self) -> None:
        item = {"type": "Container", "default": {"cpu": "1"}, "defaultRequest": {"cpu": "500m"}}
        admitted = await admit(pod(container()), limit_range(item))
        assert admitted["spec"]["containers"][0]["resources"] == {
            "requests": {"cpu": "500m"},
            "limits": {"cpu": "1"},
        }
        assert admitted["metadata"]["annotations"][limitranger.ANNOTATION] == (
            "LimitRanger plugin set: cpu request for container app; cpu limit for container app"
        )

    async def test_stated_values_are_kept(self) -> None:
        item = {"type": "Container", "default": {"cpu": "1"}, "defaultRequest": {"cpu": "1"}}
        stated = container(requests={"cpu": "100m"}, limits={"cpu": "200m"})
        admitted = await admit(pod(stated), limit_range(item))
        assert admitted["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "100m"}
        assert "annotations" not in admitted["metadata"]

    async def test_init_containers_are_named_as_such(self) -> None:
        item = {"type": "Container", "defaultRequest": {"memory": "64Mi", "cpu": "1"}}
        admitted = await admit(
            pod(container(requests={"cpu": "1", "memory": "1Mi"}), initContainers=[container("i")]),
            limit_range(item),
        )
        assert admitted["metadata"]["annotations"][limitranger.ANNOTATION] == (
            "LimitRanger plugin set: cpu, memory request for init container i"
        )


class TestEnforcement:
    async def refused(self, obj: Obj, *items: Obj, plural: str = "pods") -> str:
        with pytest.raises(errors.StatusError) as refusal:
            await admit(obj, limit_range(*items), plural=plural)
        assert refusal.value.code == 403
        return refusal.value.message

    async def test_max_limit(self) -> None:
        message = await self.refused(
            pod(container(limits={"cpu": "2"})), {"type": "Container", "max": {"cpu": "1"}}
        )
        assert (
            message == 'pods "x" is forbidden: maximum cpu usage per Container is 1, but limit is 2'
        )

    async def test_max_without_a_limit(self) -> None:
        message = await self.refused(
            pod(container()), {"type": "Container", "max": {"memory": "1Gi"}}
        )
        assert message.endswith("maximum memory usage per Container is 1Gi.  No limit is specified")

    async def test_min_request(self) -> None:
        message = await self.refused(
            pod(container(requests={"cpu": "50m"})), {"type": "Container", "min": {"cpu": "100m"}}
        )
        assert message.endswith("minimum cpu usage per Container is 100m, but request is 50m")

    async def test_ratio(self) -> None:
        message = await self.refused(
            pod(container(requests={"cpu": "100m"}, limits={"cpu": "1"})),
            {"type": "Container", "maxLimitRequestRatio": {"cpu": "4"}},
        )
        assert message.endswith(
            "cpu max limit to request ratio per Container is 4, but provided ratio is 10.000000"
        )

    async def test_pod_totals(self) -> None:
        message = await self.refused(
            pod(container("a", limits={"cpu": "1"}), container("b", limits={"cpu": "1"})),
            {"type": "Pod", "max": {"cpu": "1500m"}},
        )
        assert message.endswith("maximum cpu usage per Pod is 1500m, but limit is 2")

    async def test_several_problems_are_bracketed(self) -> None:
        message = await self.refused(
            pod(container("a", limits={"cpu": "2"}), container("b", limits={"cpu": "3"})),
            {"type": "Container", "max": {"cpu": "1"}},
        )
        assert message == (
            'pods "x" is forbidden: [maximum cpu usage per Container is 1, but limit is 2, '
            "maximum cpu usage per Container is 1, but limit is 3]"
        )

    async def test_pvc_storage_bounds(self) -> None:
        pvc = {
            "metadata": {"name": "data", "namespace": "ns"},
            "spec": {"resources": {"requests": {"storage": "5Gi"}}},
        }
        message = await self.refused(
            pvc,
            {"type": "PersistentVolumeClaim", "max": {"storage": "2Gi"}},
            plural="persistentvolumeclaims",
        )
        assert message == (
            'persistentvolumeclaims "data" is forbidden: maximum storage usage per '
            "PersistentVolumeClaim is 2Gi, but request is 5Gi"
        )

    async def test_within_bounds_is_admitted(self) -> None:
        within = pod(container(requests={"cpu": "500m"}, limits={"cpu": "1"}))
        await admit(
            within, limit_range({"type": "Container", "max": {"cpu": "1"}, "min": {"cpu": "100m"}})
        )

    async def test_other_namespaces_ranges_do_not_apply(self) -> None:
        other = pod(container(limits={"cpu": "5"}))
        other["metadata"]["namespace"] = "elsewhere"
        await admit(other, limit_range({"type": "Container", "max": {"cpu": "1"}}))


async def test_a_default_limit_below_the_stated_request_makes_the_pod_invalid() -> None:
    item = {"type": "Container", "default": {"cpu": "1"}}
    with pytest.raises(errors.StatusError) as refusal:
        await admit(pod(container(requests={"cpu": "2"})), limit_range(item))
    assert refusal.value.code == 422
    assert "must be less than or equal to cpu limit" in refusal.value.message


class TestDryRunAndSubresources:
    """A dry run is defaulted and judged like a create; subresource writes are not limited."""

    async def test_a_dry_run_is_defaulted_and_refused_like_a_create(self) -> None:
        info = kinds.lookup("", "v1", "pods")
        assert info is not None
        defaults = limit_range({"type": "Container", "default": {"cpu": "1"}, "max": {"cpu": "1"}})
        plugin = limitranger.LimitRanger(FakeCache(defaults))  # type: ignore[arg-type]
        dry = pod(container())
        await plugin.on_create(admission.Request(info, dry_run=True), dry)
        assert dry["spec"]["containers"][0]["resources"]["limits"] == {"cpu": "1"}
        with pytest.raises(errors.StatusError) as refused:
            await plugin.on_create(
                admission.Request(info, dry_run=True), pod(container(limits={"cpu": "2"}))
            )
        assert refused.value.code == 403

    async def test_a_pvc_status_update_is_not_limited(self) -> None:
        info = kinds.lookup("", "v1", "persistentvolumeclaims")
        assert info is not None
        ranges = limit_range({"type": "PersistentVolumeClaim", "max": {"storage": "2Gi"}})
        plugin = limitranger.LimitRanger(FakeCache(ranges))  # type: ignore[arg-type]
        pvc = {
            "metadata": {"name": "data", "namespace": "ns"},
            "spec": {"resources": {"requests": {"storage": "5Gi"}}},
        }
        bound = {**pvc, "status": {"phase": "Bound"}}
        await plugin.on_update(admission.Request(info, subresource="status"), bound, pvc)
        with pytest.raises(errors.StatusError):
            await plugin.on_update(admission.Request(info), bound, pvc)

    async def test_a_pod_eviction_is_not_a_pod(self) -> None:
        eviction = {"kind": "Eviction", "metadata": {"name": "x", "namespace": "ns"}}
        before = dict(eviction)
        info = kinds.lookup("", "v1", "pods")
        assert info is not None
        ranges = limit_range({"type": "Container", "default": {"cpu": "1"}})
        plugin = limitranger.LimitRanger(FakeCache(ranges))  # type: ignore[arg-type]
        await plugin.on_create(admission.Request(info, subresource="eviction"), eviction)
        assert eviction == before
