"""The EndpointSlice controller on the fake API."""

from __future__ import annotations

from typing import Any

import pytest

from kybern import client as kclient
from kybern.controllers import endpointslice
from kybern.testing import fakeclient
from tests.unit.controllers.test_endpoints import KEY, pod, service

pytestmark = pytest.mark.timeout(10)
Obj = dict[str, Any]
HTTP = {"name": "http", "port": 8080, "protocol": "TCP"}


def make(*objs: Obj) -> tuple[fakeclient.FakeCluster, endpointslice.EndpointSliceController]:
    cluster = fakeclient.FakeCluster()
    cluster.add(*objs)
    controller = endpointslice.EndpointSliceController(
        client=cluster.client, informers=cluster.informers
    )
    return cluster, controller


def node(name: str, zone: str | None = None) -> Obj:
    meta: Obj = {"name": name}
    if zone:
        meta["labels"] = {endpointslice.ZONE_LABEL: zone}
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta}


RESOURCE = kclient.resource_info(endpointslice.API_VERSION, endpointslice.KIND).storage_resource


def slices(cluster: fakeclient.FakeCluster) -> list[Obj]:
    return sorted(
        (o for (res, _, _), o in cluster.objects.items() if res == RESOURCE),
        key=lambda s: s["metadata"]["name"],
    )


def sync_cache(cluster: fakeclient.FakeCluster) -> None:
    """What the informer would deliver: the server's slices, and nothing deleted."""
    store = cluster.informers.informer_for(endpointslice.API_VERSION, endpointslice.KIND).store
    for old in store.list_keys():
        store.remove(old)
    cluster.preload(*slices(cluster))


def target(name: str) -> Obj:
    return {"kind": "Pod", "namespace": "ns", "name": name, "uid": f"uid-{name}"}


async def test_creates_a_slice_with_conditions_zone_and_owner() -> None:
    cluster, controller = make(
        service(),
        node("n1", zone="z1"),
        node("n2"),
        pod("a", "10.0.0.1"),
        pod("b", "10.0.0.2", ready=False, node="n2"),
        pod("c", "10.0.0.3", deleting=True),
        pod("noip", ""),
    )
    await controller.reconcile(KEY)
    [slice_] = slices(cluster)
    meta = slice_["metadata"]
    assert meta["name"].startswith("web-")
    assert meta["labels"] == {
        "a": "b",
        endpointslice.SERVICE_NAME_LABEL: "web",
        endpointslice.MANAGED_BY_LABEL: endpointslice.MANAGED_BY,
    }
    assert meta["ownerReferences"][0]["kind"] == "Service"
    assert meta["ownerReferences"][0]["uid"] == "svc-uid"
    assert slice_["addressType"] == "IPv4"
    assert slice_["ports"] == [HTTP]
    assert slice_["endpoints"] == [
        {
            "addresses": ["10.0.0.1"],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "targetRef": target("a"),
            "nodeName": "n1",
            "zone": "z1",
        },
        {
            "addresses": ["10.0.0.2"],
            "conditions": {"ready": False, "serving": False, "terminating": False},
            "targetRef": target("b"),
            "nodeName": "n2",
        },
        {
            "addresses": ["10.0.0.3"],
            "conditions": {"ready": False, "serving": True, "terminating": True},
            "targetRef": target("c"),
            "nodeName": "n1",
            "zone": "z1",
        },
    ]


async def test_splits_at_max_endpoints_and_by_port_set() -> None:
    many = [pod(f"p{i:03d}", f"10.0.{i // 200}.{i % 200}") for i in range(150)]
    odd = pod("odd", "10.1.0.1", ports=[{"name": "http", "containerPort": 9090}])
    cluster, controller = make(service(), *many, odd)
    await controller.reconcile(KEY)
    got = slices(cluster)
    assert sorted(len(s["endpoints"]) for s in got) == [1, 50, 100]
    assert sorted(s["ports"][0]["port"] for s in got) == [8080, 8080, 9090]


async def test_placeholder_then_update_in_place_then_no_op() -> None:
    cluster, controller = make(service())
    await controller.reconcile(KEY)
    [placeholder] = slices(cluster)
    assert placeholder["endpoints"] == []
    assert placeholder["ports"] == []

    sync_cache(cluster)
    cluster.preload(pod("a", "10.0.0.1", ports=[]), node("n1"))
    cluster.clear()
    await controller.reconcile(KEY)  # still no port for the pod: nothing to change
    assert cluster.writes() == []

    service_without_target = service(ports=[{"port": 80, "targetPort": 8080}])
    cluster.preload(service_without_target)
    await controller.reconcile(KEY)
    # a new port set: a new slice, the placeholder goes
    assert [(a.verb, a.resource) for a in cluster.writes()] == [
        ("create", "endpointslices"),
        ("delete", "endpointslices"),
    ]
    [slice_] = slices(cluster)
    assert slice_["ports"] == [{"name": "", "port": 8080, "protocol": "TCP"}]

    sync_cache(cluster)
    cluster.preload(pod("b", "10.0.0.2", ports=[]))
    cluster.clear()
    await controller.reconcile(KEY)
    [write] = cluster.writes()
    assert write.verb == "update"
    [slice_] = slices(cluster)
    assert [e["addresses"] for e in slice_["endpoints"]] == [["10.0.0.1"], ["10.0.0.2"]]

    sync_cache(cluster)
    cluster.clear()
    await controller.reconcile(KEY)
    assert cluster.writes() == []


async def test_stale_cache_waits_for_own_writes() -> None:
    cluster, controller = make(service(), pod("a", "10.0.0.1"))
    await controller.reconcile(KEY)
    cluster.clear()
    result = await controller.reconcile(KEY)  # the cache has not seen the create yet
    assert result.requeue_after == endpointslice.STALE_RECHECK
    assert cluster.writes() == []
    sync_cache(cluster)
    assert (await controller.reconcile(KEY)).requeue_after is None
    assert cluster.writes() == []


async def test_deleted_service_deletes_managed_slices_only() -> None:
    ours = {
        "apiVersion": endpointslice.API_VERSION,
        "kind": endpointslice.KIND,
        "metadata": {
            "name": "web-abc",
            "namespace": "ns",
            "labels": {
                endpointslice.SERVICE_NAME_LABEL: "web",
                endpointslice.MANAGED_BY_LABEL: endpointslice.MANAGED_BY,
            },
        },
        "addressType": "IPv4",
        "endpoints": [],
    }
    theirs = {
        **ours,
        "metadata": {
            "name": "web-mine",
            "namespace": "ns",
            "labels": {endpointslice.SERVICE_NAME_LABEL: "web"},
        },
    }
    cluster, controller = make(ours, theirs)
    assert list(controller.slice_keys(ours)) == [KEY]
    assert list(controller.slice_keys(theirs)) == []
    await controller.reconcile(KEY)
    assert [(a.verb, a.name) for a in cluster.writes()] == [("delete", "web-abc")]


async def test_service_without_selector_is_left_alone() -> None:
    svc = service()
    del svc["spec"]["selector"]
    cluster, controller = make(svc, pod("a", "10.0.0.1"))
    await controller.reconcile(KEY)
    assert cluster.writes() == []
