"""StatefulSet and DaemonSet controllers in an in-process cluster (API server, scheduler,
simulated nodes, controller manager). Every wait has a deadline; no fixed sleeps."""

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
CONTROLLERS = ["statefulset", "daemonset", "garbagecollector"]


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[SimCluster]:
    config = simulated.Config(nodes=2, heartbeat=3600, status_interval=3600)
    async with sim_cluster(tmp_path, config) as c:
        informers = kclient.SharedInformerFactory(c.client)
        names = [n for n in CONTROLLERS if n in manager.CONTROLLERS]
        started = asyncio.Event()
        task = asyncio.create_task(
            manager.run_controllers(c.client, informers, names=names, started=started)
        )
        await asyncio.wait_for(started.wait(), 30)
        try:
            yield c
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await informers.stop()


def is_ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def container() -> Obj:
    return {"name": "app", "image": "nginx", "resources": {"requests": {"cpu": "10m"}}}


def stateful_set(name: str, replicas: int) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container()]},
            },
        },
    }


async def live_pods(c: SimCluster, selector: str) -> list[Obj]:
    items = (await c.client.list("v1", "Pod", namespace="default", label_selector=selector))[
        "items"
    ]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


class TestStatefulSet:
    async def test_comes_up_in_order_and_scales_down_from_the_top(
        self, cluster: SimCluster
    ) -> None:
        start = (await cluster.client.list("v1", "Pod", namespace="default"))["metadata"][
            "resourceVersion"
        ]
        order: list[tuple[str, str, bool]] = []  # (event, pod, every lower ordinal ready)
        ready: set[str] = set()

        async def record() -> None:
            async for event in cluster.client.watch(
                "v1", "Pod", namespace="default", label_selector="app=web", resource_version=start
            ):
                name = event.object["metadata"]["name"]
                if event.type == "ADDED":
                    ordinal = int(name.rsplit("-", 1)[1])
                    lower_ready = all(f"web-{i}" in ready for i in range(ordinal))
                    order.append(("ADDED", name, lower_ready))
                if event.type == "MODIFIED" and is_ready(event.object):
                    ready.add(name)
                if event.type == "DELETED":
                    order.append(("DELETED", name, True))

        watcher = asyncio.create_task(record())
        try:
            await cluster.client.create(stateful_set("web", 3))

            async def all_ready() -> list[Obj]:
                found = await live_pods(cluster, "app=web")
                return found if len(found) == 3 and all(is_ready(p) for p in found) else []

            up = await cluster.wait_for(all_ready, within=30, what="web never came up")
            added = [(name, ok) for kind, name, ok in order if kind == "ADDED"]
            assert added == [("web-0", True), ("web-1", True), ("web-2", True)]
            by_name = {p["metadata"]["name"]: p for p in up}
            assert by_name["web-1"]["spec"]["hostname"] == "web-1"
            assert by_name["web-1"]["spec"]["subdomain"] == "web"
            assert by_name["web-1"]["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "1"

            async def status_ready() -> Obj | None:
                got = await cluster.client.get("apps/v1", "StatefulSet", "web", namespace="default")
                status = got.get("status") or {}
                done = status.get("readyReplicas") == 3 and status.get("updatedReplicas") == 3
                return got if done else None

            sts = await cluster.wait_for(status_ready, within=30, what="status never caught up")
            assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"]
            assert sts["status"]["observedGeneration"] == sts["metadata"]["generation"]

            await cluster.client.patch(
                "apps/v1",
                "StatefulSet",
                "web",
                {"spec": {"replicas": 1}},
                namespace="default",
                patch_type="merge",
            )

            async def only_web_0() -> bool:
                names = sorted(p["metadata"]["name"] for p in await live_pods(cluster, "app=web"))
                return names == ["web-0"]

            await cluster.wait_for(only_web_0, within=30, what="never scaled down to web-0")

            async def both_deleted() -> list[str]:
                gone = [name for kind, name, _ in order if kind == "DELETED"]
                return gone if len(gone) == 2 else []

            assert await cluster.wait_for(both_deleted, within=30) == ["web-2", "web-1"]
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def test_rolling_update_replaces_pods_from_the_highest_ordinal(
        self, cluster: SimCluster
    ) -> None:
        await cluster.client.create(stateful_set("db", 3))

        async def settled() -> Obj | None:
            got = await cluster.client.get("apps/v1", "StatefulSet", "db", namespace="default")
            status = got.get("status") or {}
            done = (
                status.get("readyReplicas") == 3
                and status.get("updatedReplicas") == 3
                and status.get("currentRevision") == status.get("updateRevision")
                and status.get("observedGeneration") == got["metadata"]["generation"]
            )
            return got if done else None

        before = await cluster.wait_for(settled, within=30, what="db never came up")
        start = (await cluster.client.list("v1", "Pod", namespace="default"))["metadata"][
            "resourceVersion"
        ]
        deleted: list[str] = []

        async def record() -> None:
            async for event in cluster.client.watch(
                "v1", "Pod", namespace="default", label_selector="app=db", resource_version=start
            ):
                name = event.object["metadata"]["name"]
                if event.type == "DELETED":
                    deleted.append(name)

        watcher = asyncio.create_task(record())
        try:
            patch = {"spec": {"template": {"metadata": {"annotations": {"rev": "2"}}}}}
            await cluster.client.patch(
                "apps/v1", "StatefulSet", "db", patch, namespace="default", patch_type="merge"
            )
            after = await cluster.wait_for(settled, within=30, what="update never completed")
            assert after["status"]["updateRevision"] != before["status"]["updateRevision"]
            pods = await live_pods(cluster, "app=db")
            assert {p["metadata"]["labels"]["controller-revision-hash"] for p in pods} == {
                after["status"]["updateRevision"]
            }
            assert deleted == ["db-2", "db-1", "db-0"]
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


def daemon_set(name: str) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container()]},
            },
        },
    }


def bare_node(name: str) -> Obj:
    """A node with no kubelet behind it: the scheduler can bind to it, nothing runs."""
    resources = {"cpu": "4", "memory": "16Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }


class TestDaemonSet:
    async def test_one_pod_per_node_and_on_a_node_added_later(self, cluster: SimCluster) -> None:
        await cluster.client.create(daemon_set("agent"))
        nodes = sorted(
            n["metadata"]["name"] for n in (await cluster.client.list("v1", "Node"))["items"]
        )
        assert len(nodes) == 2

        async def placed(expected: list[str]) -> list[Obj]:
            found = await live_pods(cluster, "app=agent")
            on = sorted(p["spec"].get("nodeName") or "" for p in found)
            return found if on == expected else []

        async def running_everywhere() -> list[Obj]:
            found = await placed(nodes)
            return found if found and all(is_ready(p) for p in found) else []

        await cluster.wait_for(running_everywhere, within=30, what="agent not on every node")

        async def status_of(desired: int, ready: int | None = None) -> Obj | None:
            got = await cluster.client.get("apps/v1", "DaemonSet", "agent", namespace="default")
            status = got.get("status") or {}
            want = {
                "desiredNumberScheduled": desired,
                "currentNumberScheduled": desired,
                "updatedNumberScheduled": desired,
            }
            if ready is not None:  # readiness reaches the status one sync after the pods
                want["numberReady"] = ready
            return got if all(status.get(k) == v for k, v in want.items()) else None

        await cluster.wait_for(lambda: status_of(2, ready=2), within=30, what="status")

        await cluster.client.create(bare_node("late-node"))
        found = await cluster.wait_for(
            lambda: placed(sorted([*nodes, "late-node"])), within=30, what="no pod on the new node"
        )
        late = next(p for p in found if p["spec"]["nodeName"] == "late-node")
        terms = late["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        assert terms[0]["matchFields"][0]["values"] == ["late-node"]
        await cluster.wait_for(lambda: status_of(3), within=30, what="status with the new node")
