"""Simulated nodes against a real in-process API server: registration, Lease heartbeats,
pause, and pods walked through kubelet's status transitions."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kybern import client as kclient
from kybern.kubelet import simulated
from tests.integration.simcluster import SimCluster, pod, sim_cluster

pytestmark = pytest.mark.timeout(60)
Obj = dict[str, Any]


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[SimCluster]:
    config = simulated.Config(nodes=3, heartbeat=3600, job_duration=0.05)
    async with sim_cluster(tmp_path, config) as c:
        yield c


def _cond(obj: Obj, type_: str) -> Obj:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


async def _lease(cluster: SimCluster, name: str) -> Obj:
    return await cluster.client.get(
        "coordination.k8s.io/v1", "Lease", name, namespace="kube-node-lease"
    )


# -- registration and heartbeats ---------------------------------------------------------


async def test_nodes_register_like_a_kubelet(cluster: SimCluster) -> None:
    nodes = (await cluster.client.list("v1", "Node"))["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == [
        "sim-node-0",
        "sim-node-1",
        "sim-node-2",
    ]
    node = next(n for n in nodes if n["metadata"]["name"] == "sim-node-1")
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "sim-node-1"
    assert labels["kubernetes.io/os"] == "linux"
    assert labels["kubernetes.io/arch"] == "amd64"
    assert labels["node.kubernetes.io/instance-type"] == "simulated"
    status = node["status"]
    assert status["capacity"]["cpu"] == "4"
    assert status["capacity"]["memory"] == "16Gi"
    assert status["allocatable"]["pods"] == "110"
    ready = _cond(node, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "True",
        "KubeletReady",
        "kubelet is posting ready status",
    )
    assert _cond(node, "MemoryPressure")["reason"] == "KubeletHasSufficientMemory"
    assert _cond(node, "DiskPressure")["reason"] == "KubeletHasNoDiskPressure"
    assert _cond(node, "PIDPressure")["reason"] == "KubeletHasSufficientPID"
    assert status["nodeInfo"]["kubeletVersion"] == "v1.32.0-kybern"
    assert {"type": "InternalIP", "address": "192.0.2.2"} in status["addresses"]
    assert {"type": "Hostname", "address": "sim-node-1"} in status["addresses"]
    assert node["spec"]["podCIDR"] == "10.244.1.0/24"
    lease = await _lease(cluster, "sim-node-1")
    assert lease["spec"]["holderIdentity"] == "sim-node-1"
    assert lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"][0]["kind"] == "Node"


async def test_lease_renewed_every_heartbeat_and_paused_node_stops(tmp_path: Path) -> None:
    clock = kclient.FakeClock()
    config = simulated.Config(nodes=2, heartbeat=10, status_interval=10, stagger=False)
    async with sim_cluster(tmp_path, config, scheduler=False, clock=clock) as cluster:
        assert cluster.fleet is not None
        first = (await _lease(cluster, "sim-node-0"))["spec"]["renewTime"]
        assert first == "2026-01-01T00:00:00.000000Z"
        fleet = cluster.fleet
        fleet.pause("sim-node-1")
        for second in (10, 20, 30):
            updates = fleet.nodes["sim-node-0"].status_updates
            await clock.run_for(10)
            expected = f"2026-01-01T00:00:{second}.000000Z"
            assert await cluster.wait_for(lambda e=expected: _renewed(cluster, "sim-node-0", e, 0))
            # back asleep once its status is posted: the next step starts a fresh period
            await cluster.wait_for(
                lambda u=updates: _true(fleet.nodes["sim-node-0"].status_updates > u)
            )
            assert (await _lease(cluster, "sim-node-1"))["spec"]["renewTime"] == first
        node1 = await cluster.client.get("v1", "Node", "sim-node-1")
        assert _cond(node1, "Ready")["lastHeartbeatTime"] == "2026-01-01T00:00:00Z"
        node0 = await cluster.client.get("v1", "Node", "sim-node-0")
        assert _cond(node0, "Ready")["lastHeartbeatTime"] == "2026-01-01T00:00:30Z"
        assert _cond(node0, "Ready")["lastTransitionTime"] == "2026-01-01T00:00:00Z"
        fleet.resume("sim-node-1")
        await clock.run_for(10)
        assert await cluster.wait_for(lambda: _renewed(cluster, "sim-node-1", first))


async def test_pause_annotation_on_the_node(tmp_path: Path) -> None:
    clock = kclient.FakeClock()
    config = simulated.Config(nodes=1, heartbeat=10, stagger=False)
    async with sim_cluster(tmp_path, config, scheduler=False, clock=clock) as cluster:
        assert cluster.fleet is not None
        node = cluster.fleet.nodes["sim-node-0"]
        patch = {"metadata": {"annotations": {simulated.PAUSED_ANNOTATION: "true"}}}
        await cluster.client.patch("v1", "Node", "sim-node-0", patch)
        await cluster.wait_for(lambda: _true(node.paused))
        before = node.lease_renewals
        await clock.run_for(60)
        assert node.lease_renewals == before
        # a pod bound to a paused node stays Pending: nothing reports it
        await cluster.client.create(pod("stuck", nodeName="sim-node-0"))
        await clock.run_for(1)
        got = await cluster.pod("stuck")
        assert got is not None
        assert got["status"].get("phase") == "Pending"
        patch = {"metadata": {"annotations": {simulated.PAUSED_ANNOTATION: None}}}
        await cluster.client.patch("v1", "Node", "sim-node-0", patch)
        await cluster.wait_for(lambda: cluster.pod_phase("stuck", "Running"))


async def _renewed(cluster: SimCluster, name: str, after: str, slack: int = 1) -> str | None:
    """The Lease's renewTime once it is past ``after`` (at ``after`` with slack 0)."""
    renew = (await _lease(cluster, name))["spec"]["renewTime"]
    return renew if (renew > after if slack else renew == after) else None


async def _true(value: bool) -> bool:
    return value


# -- pods ---------------------------------------------------------------------------------


async def test_scheduled_pod_becomes_running_and_ready(cluster: SimCluster) -> None:
    await cluster.client.create(pod("web"))
    got = await cluster.wait_for(lambda: cluster.pod_phase("web", "Running"))
    node = got["spec"]["nodeName"]
    index = int(node.rsplit("-", 1)[1])
    status = got["status"]
    assert status["hostIP"] == f"192.0.2.{index + 1}"
    assert status["hostIPs"] == [{"ip": status["hostIP"]}]
    assert status["podIP"].startswith(f"10.244.{index}.")
    assert status["podIPs"] == [{"ip": status["podIP"]}]
    assert status["startTime"]
    for type_ in (
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        "Ready",
        "PodScheduled",
    ):
        cond = _cond(got, type_)
        assert cond["status"] == "True", cond
        assert cond["lastTransitionTime"]
    (container,) = status["containerStatuses"]
    uid = got["metadata"]["uid"]
    assert container["name"] == "app"
    assert container["ready"] is True
    assert container["started"] is True
    assert container["restartCount"] == 0
    assert container["image"] == "busybox"
    assert container["imageID"] == "sim://busybox"
    assert container["containerID"] == f"sim://{uid}/app"
    assert container["state"]["running"]["startedAt"]


async def test_init_containers_go_through_init_states(cluster: SimCluster) -> None:
    spec = pod("init", nodeName="sim-node-0")
    spec["spec"]["initContainers"] = [
        {"name": "first", "image": "busybox"},
        {"name": "second", "image": "busybox"},
    ]
    seen: list[tuple[str, str]] = []
    watcher = asyncio.create_task(_watch_pod(cluster, "init", seen))
    await cluster.client.create(spec)
    got = await cluster.wait_for(lambda: cluster.pod_phase("init", "Running"))
    await asyncio.wait_for(watcher, 10)
    assert ("Pending", "Init:first") in seen
    assert ("Pending", "Init:second") in seen
    inits = got["status"]["initContainerStatuses"]
    assert [s["state"]["terminated"]["reason"] for s in inits] == ["Completed", "Completed"]
    assert _cond(got, "Initialized")["status"] == "True"


async def _watch_pod(cluster: SimCluster, name: str, seen: list[tuple[str, str]]) -> None:
    async for event in cluster.client.watch("v1", "Pod", namespace="default", name=name):
        status = event.object.get("status") or {}
        running = [
            s["name"]
            for s in status.get("initContainerStatuses") or []
            if "running" in s.get("state", {})
        ]
        stage = f"Init:{running[0]}" if running else ""
        seen.append((status.get("phase", ""), stage))
        if status.get("phase") == "Running":
            return


async def test_deleting_a_running_pod_removes_it(cluster: SimCluster) -> None:
    await cluster.client.create(pod("doomed"))
    await cluster.wait_for(lambda: cluster.pod_phase("doomed", "Running"))
    answer = await cluster.client.delete("v1", "Pod", "doomed", namespace="default")
    assert answer["metadata"]["deletionTimestamp"]  # graceful: the node finishes it
    await cluster.wait_for(lambda: _gone(cluster, "doomed"))


async def _gone(cluster: SimCluster, name: str) -> bool:
    return await cluster.pod(name) is None


@pytest.mark.parametrize(
    ("annotations", "phase", "code", "reason"),
    [
        ({}, "Succeeded", 0, "Completed"),
        ({"kybern.io/simulate-exit-code": "3"}, "Failed", 3, "Error"),
        ({"kybern.io/simulate-duration": "100ms"}, "Succeeded", 0, "Completed"),
    ],
)
async def test_job_pod_finishes_per_annotation(
    cluster: SimCluster, annotations: dict[str, str], phase: str, code: int, reason: str
) -> None:
    job = pod("job", restartPolicy="Never", metadata={"annotations": annotations})
    await cluster.client.create(job)
    got = await cluster.wait_for(lambda: cluster.pod_phase("job", phase))
    (container,) = got["status"]["containerStatuses"]
    terminated = container["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (code, reason)
    assert terminated["finishedAt"]
    assert container["ready"] is False
    assert _cond(got, "Ready")["reason"] == "PodCompleted"


async def test_on_failure_pod_restarts_its_container(cluster: SimCluster) -> None:
    annotations = {"kybern.io/simulate-exit-code": "1"}
    job = pod("retry", restartPolicy="OnFailure", metadata={"annotations": annotations})
    await cluster.client.create(job)
    got = await cluster.wait_for(lambda: _restarted(cluster, "retry"))
    (container,) = got["status"]["containerStatuses"]
    assert container["lastState"]["terminated"]["exitCode"] == 1
    assert got["status"]["phase"] == "Running"


async def _restarted(cluster: SimCluster, name: str) -> Obj | None:
    got = await cluster.pod(name)
    statuses = ((got or {}).get("status") or {}).get("containerStatuses") or []
    return got if statuses and statuses[0]["restartCount"] >= 1 else None


async def test_job_duration_follows_the_fake_clock(tmp_path: Path) -> None:
    clock = kclient.FakeClock()
    config = simulated.Config(nodes=1, heartbeat=3600)
    async with sim_cluster(tmp_path, config, scheduler=False, clock=clock) as cluster:
        annotations = {"kybern.io/simulate-duration": "30s"}
        job = pod(
            "slow",
            nodeName="sim-node-0",
            restartPolicy="Never",
            metadata={"annotations": annotations},
        )
        await cluster.client.create(job)
        await cluster.wait_for(lambda: cluster.pod_phase("slow", "Running"))
        await clock.run_for(29)
        assert (await cluster.pod("slow") or {})["status"]["phase"] == "Running"
        await clock.run_for(2)
        got = await cluster.wait_for(lambda: cluster.pod_phase("slow", "Succeeded"))
        started = got["status"]["containerStatuses"][0]["state"]["terminated"]["startedAt"]
        finished = got["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]
        delta = _ts(finished) - _ts(started)
        assert 30 <= delta.total_seconds() <= 32


def _ts(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


def test_parsers() -> None:
    assert simulated.parse_duration("1m30s") == 90
    assert simulated.parse_duration("500ms") == 0.5
    assert simulated.parse_duration("soon") is None
    assert simulated.parse_labels("a=1,b=2") == {"a": "1", "b": "2"}
    assert simulated.parse_taints("k=v:NoSchedule,x:NoExecute") == [
        {"key": "k", "value": "v", "effect": "NoSchedule"},
        {"key": "x", "effect": "NoExecute"},
    ]
    with pytest.raises(ValueError, match="taint"):
        simulated.parse_taints("k=v:Sometimes")
