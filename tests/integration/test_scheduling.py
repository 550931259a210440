"""The scheduler component against a real in-process API server and simulated nodes:
binding through pods/binding, Kubernetes' Events and messages, nodeSelector and taints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kybern.kubelet import simulated
from tests.integration.simcluster import SimCluster, pod, sim_cluster

pytestmark = pytest.mark.timeout(60)
Obj = dict[str, Any]


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[SimCluster]:
    config = simulated.Config(
        nodes=3, cpu="2", labels={"zone": "a"}, heartbeat=3600, job_duration=0.05
    )
    async with sim_cluster(tmp_path, config) as c:
        yield c


async def test_pod_is_bound_with_a_scheduled_event(cluster: SimCluster) -> None:
    await cluster.client.create(pod("web"))
    bound = await cluster.wait_for(lambda: _bound(cluster, "web"), what="web never bound")
    node = bound["spec"]["nodeName"]
    assert node.startswith("sim-node-")
    scheduled = [c for c in bound["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert scheduled[0]["status"] == "True"
    events = await cluster.wait_for(lambda: cluster.events("web", "Scheduled"))
    event = events[0]
    assert event["message"] == f"Successfully assigned default/web to {node}"
    assert event["type"] == "Normal"
    assert event["source"]["component"] == "default-scheduler"
    assert event["reportingComponent"] == "default-scheduler"
    assert event["involvedObject"]["uid"] == bound["metadata"]["uid"]


async def test_pod_that_fits_nowhere_gets_failed_scheduling(cluster: SimCluster) -> None:
    await cluster.client.create(pod("huge", cpu="3"))
    events = await cluster.wait_for(lambda: cluster.events("huge", "FailedScheduling"))
    assert events[0]["type"] == "Warning"
    assert events[0]["message"] == (
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
        "3 No preemption victims found for incoming pod."
    )
    got = await cluster.wait_for(lambda: _condition(cluster, "huge", "PodScheduled", "False"))
    assert got["reason"] == "Unschedulable"
    assert got["message"].startswith("0/3 nodes are available: 3 Insufficient cpu.")
    current = await cluster.pod("huge")
    assert current is not None
    assert not current["spec"].get("nodeName")


async def test_node_selector_is_honoured(cluster: SimCluster) -> None:
    await cluster.client.create(pod("picky", nodeSelector={"kubernetes.io/hostname": "sim-node-2"}))
    bound = await cluster.wait_for(lambda: _bound(cluster, "picky"))
    assert bound["spec"]["nodeName"] == "sim-node-2"
    await cluster.client.create(pod("nowhere", nodeSelector={"zone": "b"}))
    events = await cluster.wait_for(lambda: cluster.events("nowhere", "FailedScheduling"))
    assert events[0]["message"].startswith(
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
    )


async def test_taints_are_honoured(tmp_path: Path) -> None:
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    config = simulated.Config(nodes=2, taints=[taint], heartbeat=3600)
    async with sim_cluster(tmp_path, config) as cluster:
        await cluster.client.create(pod("plain"))
        events = await cluster.wait_for(lambda: cluster.events("plain", "FailedScheduling"))
        assert events[0]["message"].startswith(
            "0/2 nodes are available: 2 node(s) had untolerated taint {dedicated: gpu}."
        )
        toleration = {
            "key": "dedicated",
            "operator": "Equal",
            "value": "gpu",
            "effect": "NoSchedule",
        }
        await cluster.client.create(pod("tolerant", tolerations=[toleration]))
        bound = await cluster.wait_for(lambda: _bound(cluster, "tolerant"))
        assert bound["spec"]["nodeName"] in ("sim-node-0", "sim-node-1")


async def test_pod_scheduled_once_capacity_frees(cluster: SimCluster) -> None:
    """An unschedulable pod is retried when a bound pod goes away (event-driven requeue)."""
    await cluster.client.create(
        pod("big", cpu="1500m", nodeSelector={"kubernetes.io/hostname": "sim-node-0"})
    )
    await cluster.wait_for(lambda: cluster.pod_phase("big", "Running"))
    await cluster.client.create(
        pod("next", cpu="1500m", nodeSelector={"kubernetes.io/hostname": "sim-node-0"})
    )
    await cluster.wait_for(lambda: cluster.events("next", "FailedScheduling"))
    await cluster.client.delete("v1", "Pod", "big", namespace="default")
    bound = await cluster.wait_for(lambda: _bound(cluster, "next"), within=20)
    assert bound["spec"]["nodeName"] == "sim-node-0"


async def test_preemption_evicts_a_lower_priority_pod(cluster: SimCluster) -> None:
    """Victims get DisruptionTarget and are deleted (the simulated node finishes them);
    the preemptor is nominated, then bound and Running on that node."""
    high = {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": "high"},
        "value": 1000,
    }
    await cluster.client.create(high)
    here = {"kubernetes.io/hostname": "sim-node-0"}
    await cluster.client.create(pod("low", cpu="1500m", nodeSelector=here))
    victim = await cluster.wait_for(lambda: cluster.pod_phase("low", "Running"))
    await cluster.client.create(
        pod("vip", cpu="1500m", nodeSelector=here, priorityClassName="high")
    )
    await cluster.wait_for(lambda: _gone(cluster, "low"), within=20)
    preempted = await cluster.wait_for(lambda: cluster.events("low", "Preempted"))
    assert preempted[0]["message"].startswith("Preempted by pod ")
    assert preempted[0]["involvedObject"]["uid"] == victim["metadata"]["uid"]
    running = await cluster.wait_for(lambda: cluster.pod_phase("vip", "Running"), within=20)
    assert running["spec"]["nodeName"] == "sim-node-0"


async def _gone(cluster: SimCluster, name: str) -> bool:
    return await cluster.pod(name) is None


async def _bound(cluster: SimCluster, name: str) -> Obj | None:
    got = await cluster.pod(name)
    return got if got and got["spec"].get("nodeName") else None


async def _condition(cluster: SimCluster, name: str, type_: str, status: str) -> Obj | None:
    got = await cluster.pod(name)
    for cond in ((got or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == type_ and cond["status"] == status:
            return cond  # type: ignore[no-any-return]
    return None
