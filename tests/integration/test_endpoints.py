"""The Endpoints controller in an in-process cluster (API server, scheduler, simulated nodes,
controller manager): a Service over a Deployment's pods. Every wait has a deadline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kybern import client as kclient
from kybern.controllers import manager
from kybern.kubelet import simulated
from tests.integration.simcluster import SimCluster, sim_cluster

pytestmark = pytest.mark.timeout(90)
Obj = dict[str, Any]
CONTROLLERS = ["deployment", "replicaset", "endpoint", "endpointslice", "garbagecollector"]


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[SimCluster]:
    config = simulated.Config(nodes=2, heartbeat=3600, status_interval=3600)
    async with sim_cluster(tmp_path, config) as c:
        informers = kclient.SharedInformerFactory(c.client)
        started = asyncio.Event()
        task = asyncio.create_task(
            manager.run_controllers(c.client, informers, names=CONTROLLERS, started=started)
        )
        await asyncio.wait_for(started.wait(), 30)
        try:
            yield c
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await informers.stop()


def deployment(replicas: int) -> Obj:
    container = {
        "name": "app",
        "image": "nginx",
        "ports": [{"name": "http", "containerPort": 8080}],
        "resources": {"requests": {"cpu": "10m"}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [container]},
            },
        },
    }


async def scale(c: SimCluster, replicas: int) -> None:
    patch = {"spec": {"replicas": replicas}}
    await c.client.patch("apps/v1", "Deployment", "web", patch, namespace="default")


SERVICE: Obj = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
    },
}


async def ready_pod_ips(c: SimCluster) -> set[str]:
    items = (await c.client.list("v1", "Pod", namespace="default", label_selector="app=web"))[
        "items"
    ]
    return {
        p["status"]["podIP"]
        for p in items
        if not p["metadata"].get("deletionTimestamp")
        and (p.get("status") or {}).get("podIP")
        and any(
            cond.get("type") == "Ready" and cond.get("status") == "True"
            for cond in (p.get("status") or {}).get("conditions") or []
        )
    }


async def endpoints_ips(c: SimCluster) -> tuple[set[str], list[Obj]]:
    try:
        ep = await c.client.get("v1", "Endpoints", "web", namespace="default")
    except kclient.NotFound:
        return set(), []
    subsets = ep.get("subsets") or []
    ips = {a["ip"] for s in subsets for a in s.get("addresses") or []}
    return ips, subsets


async def test_service_endpoints_follow_deployment_pods(cluster: SimCluster) -> None:
    c = cluster
    await c.client.create(SERVICE)
    await c.client.create(deployment(3))

    async def three_ready() -> set[str] | None:
        ips = await ready_pod_ips(c)
        return ips if len(ips) == 3 else None

    pod_ips = await c.wait_for(three_ready, within=30, what="3 ready pods")

    async def endpoints_match() -> list[Obj] | None:
        ips, subsets = await endpoints_ips(c)
        return subsets if ips == pod_ips else None

    subsets = await c.wait_for(endpoints_match, within=30, what="endpoints with 3 pod IPs")
    assert [s["ports"] for s in subsets] == [[{"name": "http", "port": 8080, "protocol": "TCP"}]]
    [subset] = subsets
    for address in subset["addresses"]:
        assert address["targetRef"]["kind"] == "Pod"
        assert address["nodeName"]

    # scale down: the removed pods' addresses go
    await scale(c, 1)

    async def one_left() -> set[str] | None:
        ips, _ = await endpoints_ips(c)
        live = await ready_pod_ips(c)
        return ips if len(ips) == 1 and ips <= pod_ips and ips == live else None

    await c.wait_for(one_left, within=30, what="endpoints down to 1 address")


async def ready_slice_ips(c: SimCluster) -> tuple[set[str], list[Obj]]:
    items = (
        await c.client.list(
            "discovery.k8s.io/v1",
            "EndpointSlice",
            namespace="default",
            label_selector="kubernetes.io/service-name=web",
        )
    )["items"]
    ips = {
        address
        for s in items
        for e in s.get("endpoints") or []
        if e["conditions"]["ready"]
        for address in e["addresses"]
    }
    return ips, items


async def test_service_endpoint_slices_follow_deployment_pods(cluster: SimCluster) -> None:
    c = cluster
    await c.client.create(SERVICE)
    await c.client.create(deployment(2))

    async def two_ready() -> set[str] | None:
        ips = await ready_pod_ips(c)
        return ips if len(ips) == 2 else None

    pod_ips = await c.wait_for(two_ready, within=30, what="2 ready pods")

    async def slices_match() -> list[Obj] | None:
        ips, items = await ready_slice_ips(c)
        return items if ips == pod_ips and len(items) == 1 else None

    [slice_] = await c.wait_for(slices_match, within=30, what="a slice with 2 ready pod IPs")
    assert slice_["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert slice_["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == (
        "endpointslice-controller.k8s.io"
    )
    assert slice_["metadata"]["ownerReferences"][0]["kind"] == "Service"

    await scale(c, 0)

    async def placeholder_only() -> bool:
        _, items = await ready_slice_ips(c)
        return len(items) == 1 and not items[0].get("endpoints")

    await c.wait_for(placeholder_only, within=30, what="only the placeholder slice")


async def test_deleting_service_deletes_endpoints(cluster: SimCluster) -> None:
    c = cluster
    await c.client.create(SERVICE)

    async def exists() -> bool:
        try:
            await c.client.get("v1", "Endpoints", "web", namespace="default")
        except kclient.NotFound:
            return False
        return True

    await c.wait_for(exists, within=30, what="endpoints created")
    await c.client.delete("v1", "Service", "web", namespace="default")

    async def gone() -> bool:
        return not await exists()

    await c.wait_for(gone, within=30, what="endpoints deleted")
