"""Node failure end to end: simulated nodes, every controller, admission, one fake clock.

A paused simulated node stops heartbeating like a dead machine. The node lifecycle
controller must mark it Unknown after the 50 s grace period, taint it (0.1 nodes/s, never
when every node is down), the taint eviction controller must delete its pods once their
default 300 s tolerations run out, and pod GC must clean up after deleted nodes and
terminated pods. Time moves only when the test says so.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import itertools
from pathlib import Path
from typing import Any

import pytest

from kybern import client as kclient
from kybern.controllers import manager, podgc
from kybern.kubelet import simulated
from tests.integration.simcluster import SimCluster, pod, sim_cluster

pytestmark = pytest.mark.timeout(60)
Obj = dict[str, Any]
UNREACHABLE = "node.kubernetes.io/unreachable"


def fake_clock() -> kclient.FakeClock:
    return kclient.FakeClock(wall=datetime.datetime.now(datetime.UTC).replace(microsecond=0))


async def tick(clock: kclient.FakeClock, seconds: float, *, step: float = 1.0) -> None:
    """Move the fake clock in steps, giving the woken tasks (and the store's writer thread)
    a moment of real time after each: heartbeats and controller writes keep up."""
    end = clock.monotonic() + seconds
    while clock.monotonic() < end - 1e-9:
        clock.advance(min(step, end - clock.monotonic()))
        for _ in range(3):
            await asyncio.sleep(0.002)


async def ready_status(c: SimCluster, name: str) -> str:
    node = await c.client.get("v1", "Node", name)
    cond = next(x for x in node["status"]["conditions"] if x["type"] == "Ready")
    return str(cond["status"])


async def no_execute(c: SimCluster, name: str) -> list[Obj]:
    node = await c.client.get("v1", "Node", name)
    return [t for t in node["spec"].get("taints") or [] if t["effect"] == "NoExecute"]


async def evicted(c: SimCluster, name: str) -> bool:
    got = await c.pod(name)
    return got is None or bool(got["metadata"].get("deletionTimestamp"))


def parse(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


async def running(c: SimCluster, *names: str) -> None:
    for name in names:
        await c.wait_for(lambda n=name: c.pod_phase(n, "Running"), what=f"{name} Running")


async def test_a_dead_node_is_tainted_after_the_grace_period_and_its_pods_evicted_at_300s(
    tmp_path: Path,
) -> None:
    clock = fake_clock()
    config = simulated.Config(nodes=3)
    async with sim_cluster(tmp_path, config, controllers=["*"], clock=clock) as c:
        assert c.fleet is not None
        for name, node in (("doomed-a", "sim-node-1"), ("doomed-b", "sim-node-1")):
            await c.client.create(pod(name, nodeName=node))
        await c.client.create(pod("safe", nodeName="sim-node-0"))
        await running(c, "doomed-a", "doomed-b", "safe")
        created = await c.pod("doomed-a")
        assert created is not None
        seconds = {t["key"]: t.get("tolerationSeconds") for t in created["spec"]["tolerations"]}
        assert seconds == {UNREACHABLE: 300, "node.kubernetes.io/not-ready": 300}

        c.fleet.pause("sim-node-1")  # its last heartbeat was now (fake time 0)
        await tick(clock, 49, step=5)
        await tick(clock, 1)
        assert await ready_status(c, "sim-node-1") == "True"  # not before the grace period
        await tick(clock, 6)  # grace period + one monitor period: Unknown by now
        await c.wait_for(lambda: _status_is(c, "sim-node-1", "Unknown"), what="node Unknown")
        assert await ready_status(c, "sim-node-0") == "True"
        await tick(clock, 6)  # one more monitor period: the NoExecute taint
        await c.wait_for(lambda: no_execute(c, "sim-node-1"), what="NoExecute taint")
        (taint,) = await no_execute(c, "sim-node-1")
        assert taint["key"] == UNREACHABLE
        tainted_at = parse(taint["timeAdded"])

        # the pods tolerate the taint for 300 s from when it was added, not a second less
        await tick(clock, (tainted_at - clock.now()).total_seconds() + 295, step=5)
        await tick(clock, 4)
        assert not await evicted(c, "doomed-a")
        assert not await evicted(c, "doomed-b")
        await tick(clock, 2)
        for name in ("doomed-a", "doomed-b"):
            await c.wait_for(lambda n=name: evicted(c, n), what=f"{name} evicted")
        assert not await evicted(c, "safe")
        messages = [e["message"] for e in await c.events("doomed-a", "TaintManagerEviction")]
        assert messages == ["Marking for deletion Pod default/doomed-a"]

        # the node comes back: taints go, and its kubelet finishes the evicted pods
        c.fleet.resume("sim-node-1")
        await tick(clock, 11)
        await c.wait_for(lambda: _untainted(c, "sim-node-1"), what="taints removed")
        assert await ready_status(c, "sim-node-1") == "True"


async def _status_is(c: SimCluster, name: str, status: str) -> bool:
    return await ready_status(c, name) == status


async def _untainted(c: SimCluster, name: str) -> bool:
    node = await c.client.get("v1", "Node", name)
    return not node["spec"].get("taints")


async def test_several_dead_nodes_are_tainted_at_a_tenth_of_a_node_per_second(
    tmp_path: Path,
) -> None:
    clock = fake_clock()
    config = simulated.Config(nodes=8)  # 3 of 8 down: below the 55 % disruption threshold
    async with sim_cluster(tmp_path, config, scheduler=False, controllers=["*"], clock=clock) as c:
        assert c.fleet is not None
        dead = ["sim-node-1", "sim-node-2", "sim-node-3"]
        for name in dead:
            c.fleet.pause(name)
        await tick(clock, 50, step=5)
        await tick(clock, 40)  # Unknown at ~55 s, then one taint every 10 s
        for name in dead:
            await c.wait_for(lambda n=name: no_execute(c, n), what=f"{name} tainted")
        # timeAdded is the controller's own (fake) clock: immune to how fast the test polls
        times = sorted([parse((await no_execute(c, name))[0]["timeAdded"]) for name in dead])
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        assert all(9 <= gap <= 11 for gap in gaps), gaps


async def test_a_node_back_after_a_short_outage_is_ready_and_untainted_at_once(
    tmp_path: Path,
) -> None:
    clock = fake_clock()
    async with sim_cluster(
        tmp_path, simulated.Config(nodes=3), controllers=["*"], clock=clock
    ) as c:
        assert c.fleet is not None
        await c.client.create(pod("patient", nodeName="sim-node-1"))
        await running(c, "patient")
        c.fleet.pause("sim-node-1")
        await tick(clock, 100, step=5)
        await c.wait_for(lambda: no_execute(c, "sim-node-1"), what="tainted while down")
        c.fleet.resume("sim-node-1")
        # one heartbeat (10 s) and one monitor pass (5 s): not the 5-minute status period
        await tick(clock, 20, step=1)
        await c.wait_for(
            lambda: _true(ready_status_is(c, "sim-node-1", "True")), what="Ready again"
        )
        await c.wait_for(lambda: _true(untainted(c, "sim-node-1")), what="taint removed")
        assert not await evicted(c, "patient")


async def ready_status_is(c: SimCluster, name: str, status: str) -> bool:
    return await ready_status(c, name) == status


async def untainted(c: SimCluster, name: str) -> bool:
    return await no_execute(c, name) == []


async def _true(check: Any) -> bool:
    return bool(await check)


async def test_no_eviction_when_every_node_is_down(tmp_path: Path) -> None:
    clock = fake_clock()
    async with sim_cluster(
        tmp_path, simulated.Config(nodes=3), controllers=["*"], clock=clock
    ) as c:
        assert c.fleet is not None
        await c.client.create(pod("survivor", nodeName="sim-node-2"))
        await running(c, "survivor")
        for name in c.fleet.nodes:
            c.fleet.pause(name)
        await tick(clock, 420, step=5)
        for name in c.fleet.nodes:
            assert await ready_status(c, name) == "Unknown"
            assert await no_execute(c, name) == []
        assert not await evicted(c, "survivor")


async def test_pod_gc_removes_pods_of_deleted_nodes_and_old_terminated_pods(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gc = functools.partial(podgc.PodGCController, terminated_pod_threshold=2)
    monkeypatch.setitem(manager.CONTROLLERS, "podgc", gc)
    clock = fake_clock()
    config = simulated.Config(nodes=3, job_duration=1.0)
    async with sim_cluster(tmp_path, config, controllers=["*"], clock=clock) as c:
        assert c.fleet is not None
        await c.client.create(pod("orphan", nodeName="sim-node-2"))
        await running(c, "orphan")
        c.fleet.pause("sim-node-2")  # a dead machine, so it does not register again
        await c.client.delete("v1", "Node", "sim-node-2")
        for i in range(4):
            job = pod(f"done-{i}", nodeName="sim-node-0", restartPolicy="Never")
            await c.client.create(job)
        await running(c, *(f"done-{i}" for i in range(4)))
        await tick(clock, 2)
        await tick(clock, 20, step=5)  # the next GC pass

        async def two_left() -> bool:
            items = (await c.client.list("v1", "Pod", namespace="default"))["items"]
            names = {p["metadata"]["name"] for p in items}
            return names & {f"done-{i}" for i in range(4)} == {"done-2", "done-3"}

        await c.wait_for(two_left, what="oldest terminated pods collected")
        assert await c.pod("orphan") is not None  # still in quarantine
        await tick(clock, 45, step=5)
        await c.wait_for(lambda: _gone(c, "orphan"), what="orphan collected")


async def _gone(c: SimCluster, name: str) -> bool:
    return await c.pod(name) is None
