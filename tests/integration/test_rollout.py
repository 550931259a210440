"""Deployment rollouts on an in-process cluster (API server, scheduler, three simulated nodes,
every controller): the acceptance cases of the control-loop issue.

A ``PodLog`` watches every pod change of the Deployment and checks the rollout's promises
after each event: RollingUpdate never has more than ``replicas + maxSurge`` pods that are not
terminating, nor fewer than ``replicas - maxUnavailable`` available ones; Recreate never has
old and new pods at the same time. Simulated nodes start pods in milliseconds, so each
rollout takes well under a second; every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kybern import client as kclient
from kybern.kubelet import simulated
from tests.integration.simcluster import SimCluster, sim_cluster

pytestmark = pytest.mark.timeout(60)
Obj = dict[str, Any]
NS = "default"
HASH = "pod-template-hash"


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimCluster]:
    config = simulated.Config(nodes=3, heartbeat=3600, status_interval=3600)
    async with sim_cluster(tmp_path, config, controllers=["*"]) as cluster:
        yield cluster


def deployment(replicas: int, strategy: Obj, image: str = "app:1") -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "replicas": replicas,
            "strategy": strategy,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
        },
    }


def rolling(surge: int | str, unavailable: int | str) -> Obj:
    return {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
    }


def is_available(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def image_of(pod: Obj) -> str:
    return str(pod["spec"]["containers"][0]["image"])


@dataclass
class PodLog:
    """The Deployment's pods as a watch sees them, with extremes recorded after each event."""

    pods: dict[str, Obj] = field(default_factory=dict)
    max_live: int = 0
    min_available: int = 10**9
    mixed_hashes: list[set[str]] = field(default_factory=list)
    events: int = 0

    def live(self) -> list[Obj]:
        return [p for p in self.pods.values() if not p["metadata"].get("deletionTimestamp")]

    def apply(self, event: kclient.WatchEvent) -> None:
        pod = event.object
        name = pod["metadata"]["name"]
        if event.type == "DELETED":
            self.pods.pop(name, None)
        elif event.type in ("ADDED", "MODIFIED"):
            self.pods[name] = pod
        else:
            return
        self.events += 1
        live = self.live()
        self.max_live = max(self.max_live, len(live))
        self.min_available = min(self.min_available, sum(1 for p in live if is_available(p)))
        hashes = {p["metadata"]["labels"].get(HASH, "") for p in self.pods.values()}
        if len(hashes) > 1:
            self.mixed_hashes.append(hashes)

    def settled(self, image: str, count: int) -> bool:
        live = self.live()
        return (
            len(self.pods) == count
            and len(live) == count
            and all(image_of(p) == image and is_available(p) for p in live)
        )


@contextlib.asynccontextmanager
async def watching(sim: SimCluster) -> AsyncIterator[PodLog]:
    """Watch the Deployment's pods from now on (the current ones arrive first as ADDED)."""
    log = PodLog()
    listed = await sim.client.list("v1", "Pod", namespace=NS, label_selector="app=web")
    for pod in listed["items"]:
        log.pods[pod["metadata"]["name"]] = pod
    version = listed["metadata"]["resourceVersion"]

    async def run() -> None:
        stream = sim.client.watch(
            "v1", "Pod", namespace=NS, label_selector="app=web", resource_version=version
        )
        async for event in stream:
            log.apply(event)

    task = asyncio.create_task(run())
    try:
        yield log
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def get_deployment(sim: SimCluster) -> Obj:
    return await sim.client.get("apps/v1", "Deployment", "web", namespace=NS)


async def rolled_out(sim: SimCluster, replicas: int) -> Obj:
    """Wait until the Deployment's status says its rollout is complete."""

    async def complete() -> Obj | None:
        got = await get_deployment(sim)
        status = got.get("status") or {}
        done = (
            status.get("observedGeneration", 0) >= got["metadata"]["generation"]
            and status.get("updatedReplicas") == replicas
            and status.get("replicas") == replicas
            and status.get("availableReplicas") == replicas
        )
        return got if done else None

    return await sim.wait_for(complete, within=20, what="rollout complete")


async def wait_settled(sim: SimCluster, log: PodLog, image: str, count: int) -> None:
    async def settled() -> bool:
        return log.settled(image, count)

    await sim.wait_for(settled, within=20, what=f"{count} pods of {image}")


async def sets(sim: SimCluster) -> dict[str, Obj]:
    items = (await sim.client.list("apps/v1", "ReplicaSet", namespace=NS))["items"]
    return {rs["metadata"]["name"]: rs for rs in items}


async def set_image(sim: SimCluster, image: str, **spec: Any) -> None:
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}], **spec}}}
    }
    await sim.client.patch("apps/v1", "Deployment", "web", patch, namespace=NS)


def resolved(value: int | str, replicas: int, *, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    scaled = int(value.rstrip("%")) * replicas / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)


class TestRollingUpdate:
    @pytest.mark.parametrize(
        ("replicas", "surge", "unavailable"),
        [(4, 1, 0), (4, 0, 1), (5, "25%", "25%"), (6, "50%", "0%"), (3, 2, 2)],
    )
    async def test_never_exceeds_max_surge_or_max_unavailable(
        self, sim: SimCluster, replicas: int, surge: int | str, unavailable: int | str
    ) -> None:
        await sim.client.create(deployment(replicas, rolling(surge, unavailable)))
        await rolled_out(sim, replicas)
        async with watching(sim) as log:
            await wait_settled(sim, log, "app:1", replicas)
            await set_image(sim, "app:2")
            await wait_settled(sim, log, "app:2", replicas)
            await rolled_out(sim, replicas)
        max_surge = resolved(surge, replicas, round_up=True)
        max_unavailable = resolved(unavailable, replicas, round_up=False)
        assert log.events > 2 * replicas  # the whole rollout was seen
        assert log.max_live <= replicas + max_surge
        assert log.min_available >= replicas - max_unavailable
        if max_surge:
            assert log.max_live > replicas  # the surge was used, so the bound was tested
        named = await sets(sim)
        assert sorted(rs["spec"]["replicas"] for rs in named.values()) == [0, replicas]

    async def test_status_counts_and_conditions_follow_the_rollout(self, sim: SimCluster) -> None:
        await sim.client.create(deployment(3, rolling(1, 0)))
        got = await rolled_out(sim, 3)
        reasons = {c["type"]: (c["status"], c["reason"]) for c in got["status"]["conditions"]}
        assert reasons == {
            "Available": ("True", "MinimumReplicasAvailable"),
            "Progressing": ("True", "NewReplicaSetAvailable"),
        }
        assert got["status"]["readyReplicas"] == 3
        assert got["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"


class TestRecreate:
    async def test_old_and_new_pods_never_coexist(self, sim: SimCluster) -> None:
        await sim.client.create(deployment(3, {"type": "Recreate"}))
        await rolled_out(sim, 3)
        async with watching(sim) as log:
            await wait_settled(sim, log, "app:1", 3)
            await set_image(sim, "app:2")
            await wait_settled(sim, log, "app:2", 3)
        assert log.mixed_hashes == []
        assert log.min_available == 0  # everything went down first, as Recreate does
        got = await rolled_out(sim, 3)
        available = next(c for c in got["status"]["conditions"] if c["type"] == "Available")
        assert available["status"] == "True"


class TestRollback:
    async def test_rollback_restores_the_old_template_and_reuses_its_set(
        self, sim: SimCluster
    ) -> None:
        await sim.client.create(deployment(3, rolling(1, 1)))
        await rolled_out(sim, 3)
        [first] = (await sets(sim)).values()
        first_template = first["spec"]["template"]
        await set_image(sim, "app:2")
        await rolled_out(sim, 3)
        # what `kubectl rollout undo` sends: the old set's template without its hash label
        template = {**first_template, "metadata": {"labels": {"app": "web"}}}
        patch = [{"op": "replace", "path": "/spec/template", "value": template}]
        async with watching(sim) as log:
            await sim.client.patch(
                "apps/v1", "Deployment", "web", patch, namespace=NS, patch_type="json"
            )
            await wait_settled(sim, log, "app:1", 3)
        got = await rolled_out(sim, 3)
        named = await sets(sim)
        assert len(named) == 2  # the first set came back; no third one
        reused = named[first["metadata"]["name"]]
        assert reused["spec"]["replicas"] == 3
        annotations = reused["metadata"]["annotations"]
        assert annotations["deployment.kubernetes.io/revision"] == "3"
        assert annotations["deployment.kubernetes.io/revision-history"] == "1"
        assert got["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        assert {p["metadata"]["labels"][HASH] for p in log.live()} == {
            first["metadata"]["labels"][HASH]
        }


class TestScaleDuringRollout:
    async def stuck_rollout(self, sim: SimCluster, replicas: int) -> tuple[str, str]:
        """A rollout whose new pods cannot be scheduled (yet): -> (old set, new set)."""
        await sim.client.create(deployment(replicas, rolling(1, 1)))
        await rolled_out(sim, replicas)
        [old] = await sets(sim)
        await set_image(sim, "app:2", nodeSelector={"rollout": "go"})

        async def stuck() -> tuple[str, str] | None:
            named = await sets(sim)
            new = [n for n in named if n != old]
            if new and named[new[0]]["spec"]["replicas"] == 2:
                return old, new[0]
            return None

        return await sim.wait_for(stuck, within=20, what="a stuck rollout")

    async def unblock(self, sim: SimCluster) -> None:
        for node in (await sim.client.list("v1", "Node"))["items"]:
            patch = {"metadata": {"labels": {"rollout": "go"}}}
            await sim.client.patch("v1", "Node", node["metadata"]["name"], patch)

    async def scale_to(self, sim: SimCluster, replicas: int) -> None:
        await sim.client.patch(
            "apps/v1", "Deployment", "web", {"spec": {"replicas": replicas}}, namespace=NS
        )

    async def test_scale_up_is_shared_proportionally_then_completes(self, sim: SimCluster) -> None:
        old, new = await self.stuck_rollout(sim, 6)  # old 5 + new 2 = 6 + maxSurge 1
        await self.scale_to(sim, 10)

        async def proportional() -> dict[str, int] | None:
            named = await sets(sim)
            sizes = {n: rs["spec"]["replicas"] for n, rs in named.items()}
            return sizes if sum(sizes.values()) == 11 else None

        sizes = await sim.wait_for(proportional, within=20, what="11 pods planned")
        # 7 -> 11 allowed: old 5 * 11 / 7 = 7.9 -> 8; new 2 * 11 / 7 = 3.1 -> 3
        assert sizes == {old: 8, new: 3}
        await self.unblock(sim)
        await rolled_out(sim, 10)
        async with watching(sim) as log:
            await wait_settled(sim, log, "app:2", 10)
        assert (await sets(sim))[old]["spec"]["replicas"] == 0

    async def test_scale_down_mid_rollout_then_completes(self, sim: SimCluster) -> None:
        old, new = await self.stuck_rollout(sim, 6)
        await self.scale_to(sim, 2)

        async def shrunk() -> dict[str, int] | None:
            named = await sets(sim)
            sizes = {n: rs["spec"]["replicas"] for n, rs in named.items()}
            return sizes if sum(sizes.values()) <= 3 else None

        await sim.wait_for(shrunk, within=20, what="sets shrunk to 2 + maxSurge")
        await self.unblock(sim)
        await rolled_out(sim, 2)
        async with watching(sim) as log:
            await wait_settled(sim, log, "app:2", 2)
        named = await sets(sim)
        assert (named[old]["spec"]["replicas"], named[new]["spec"]["replicas"]) == (0, 2)


@pytest.fixture
async def fake_sim(tmp_path: Path) -> AsyncIterator[tuple[SimCluster, kclient.FakeClock]]:
    clock = kclient.FakeClock(wall=datetime.datetime.now(datetime.UTC))
    config = simulated.Config(nodes=3, heartbeat=3600, status_interval=3600)
    async with sim_cluster(tmp_path, config, controllers=["*"], clock=clock) as cluster:
        yield cluster, clock


async def conditions_of(sim: SimCluster) -> dict[str, tuple[str, str]]:
    got = await get_deployment(sim)
    return {
        c["type"]: (c["status"], c["reason"])
        for c in (got.get("status") or {}).get("conditions") or []
    }


class TestTiming:
    async def test_min_ready_seconds_delays_availability(
        self, fake_sim: tuple[SimCluster, kclient.FakeClock]
    ) -> None:
        sim, clock = fake_sim
        body = deployment(2, rolling(1, 0))
        body["spec"]["minReadySeconds"] = 10
        await sim.client.create(body)

        async def ready_not_available() -> Obj | None:
            status = (await get_deployment(sim)).get("status") or {}
            waiting = status.get("readyReplicas") == 2 and status.get("availableReplicas") == 0
            return status if waiting else None

        status = await sim.wait_for(ready_not_available, within=20, what="ready, not available")
        assert status["unavailableReplicas"] == 2
        reasons = await conditions_of(sim)
        assert reasons["Available"] == ("False", "MinimumReplicasUnavailable")
        clock.advance(11)
        await rolled_out(sim, 2)
        assert (await conditions_of(sim))["Available"] == ("True", "MinimumReplicasAvailable")

    async def test_a_stalled_rollout_exceeds_its_progress_deadline(
        self, fake_sim: tuple[SimCluster, kclient.FakeClock]
    ) -> None:
        sim, clock = fake_sim
        body = deployment(2, rolling(1, 0))
        body["spec"]["progressDeadlineSeconds"] = 30
        body["spec"]["template"]["spec"]["nodeSelector"] = {"no": "such-node"}
        await sim.client.create(body)

        async def progressing() -> bool:
            reason = (await conditions_of(sim)).get("Progressing", ("", ""))[1]
            return reason in ("NewReplicaSetCreated", "ReplicaSetUpdated")

        await sim.wait_for(progressing, within=20, what="Progressing")
        assert (await conditions_of(sim))["Progressing"][0] == "True"

        async def timed_out() -> bool:
            clock.advance(1)  # time passes only while nothing else can happen
            reasons = await conditions_of(sim)
            return reasons["Progressing"] == ("False", "ProgressDeadlineExceeded")

        await sim.wait_for(timed_out, within=20, what="ProgressDeadlineExceeded")
        got = await get_deployment(sim)
        progress = next(c for c in got["status"]["conditions"] if c["type"] == "Progressing")
        assert progress["message"].endswith("has timed out progressing.")
