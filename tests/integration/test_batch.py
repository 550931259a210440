"""Jobs on an in-process cluster with simulated nodes: API server, scheduler, simulated
kubelets and the job controller. Every wait has a deadline; no fixed sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kybern import client as kclient
from kybern.controllers import cronjob, manager, runtime
from kybern.controllers import job as jobctl
from kybern.kubelet import simulated
from tests.integration.simcluster import SimCluster, sim_cluster

pytestmark = pytest.mark.timeout(60)
Obj = dict[str, Any]


@pytest.fixture
async def c(tmp_path: Path) -> AsyncIterator[SimCluster]:
    config = simulated.Config(nodes=2, heartbeat=3600, status_interval=3600, job_duration=0.05)
    async with sim_cluster(tmp_path, config) as sim:
        started = asyncio.Event()
        task = asyncio.create_task(
            manager.run_controllers(
                sim.client, sim.informers, names=["job", "garbagecollector"], started=started
            )
        )
        async with asyncio.timeout(30):
            await started.wait()
        try:
            yield sim
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def batch_job(name: str, *, exit_code: int = 0, **spec: Any) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {
                        simulated.EXIT_CODE_ANNOTATION: str(exit_code),
                        simulated.DURATION_ANNOTATION: "50ms",
                    }
                },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "c",
                            "image": "busybox",
                            "resources": {"requests": {"cpu": "10m"}},
                        }
                    ],
                },
            },
            **spec,
        },
    }


async def finished(c: SimCluster, name: str, condition: str) -> Obj | None:
    got = await c.client.get("batch/v1", "Job", name, namespace="default")
    return got if jobctl.condition(got, condition) else None


async def job_pods(c: SimCluster, name: str) -> list[Obj]:
    selector = f"{jobctl.JOB_NAME_LABEL}={name}"
    found = await c.client.list("v1", "Pod", namespace="default", label_selector=selector)
    items: list[Obj] = found["items"]
    return items


async def test_a_job_with_three_completions_two_at_a_time_completes(c: SimCluster) -> None:
    created = await c.client.create(batch_job("three", completions=3, parallelism=2))
    done = await c.wait_for(lambda: finished(c, "three", jobctl.COMPLETE), within=30)
    status = done["status"]
    assert status["succeeded"] == 3
    assert status["active"] == 0
    assert status.get("failed", 0) == 0
    assert status["startTime"]
    assert status["completionTime"]
    assert jobctl.condition(done, jobctl.SUCCESS_CRITERIA_MET) is not None
    pods = await job_pods(c, "three")
    assert len(pods) == 3
    assert all(p["status"]["phase"] == "Succeeded" for p in pods)
    uid = created["metadata"]["uid"]
    assert all(p["metadata"]["labels"][jobctl.CONTROLLER_UID_LABEL] == uid for p in pods)
    assert all(p["metadata"]["ownerReferences"][0]["uid"] == uid for p in pods)
    assert await c.wait_for(lambda: c.events("three", "Completed"), within=10)
    assert len(await c.events("three", "SuccessfulCreate")) == 3


async def test_a_failing_job_hits_its_backoff_limit(c: SimCluster) -> None:
    await c.client.create(batch_job("bad", exit_code=1, backoffLimit=2))
    failed = await c.wait_for(lambda: finished(c, "bad", jobctl.FAILED), within=30)
    cond = jobctl.condition(failed, jobctl.FAILED)
    assert cond is not None
    assert cond["reason"] == "BackoffLimitExceeded"
    assert failed["status"]["failed"] == 3
    assert failed["status"]["active"] == 0
    assert len(await job_pods(c, "bad")) == 3
    assert await c.wait_for(lambda: c.events("bad", "BackoffLimitExceeded"), within=10)


async def test_an_indexed_job_completes_every_index(c: SimCluster) -> None:
    await c.client.create(batch_job("idx", completions=3, parallelism=3, completionMode="Indexed"))
    done = await c.wait_for(lambda: finished(c, "idx", jobctl.COMPLETE), within=30)
    assert done["status"]["completedIndexes"] == "0-2"
    names = sorted(p["metadata"]["name"] for p in await job_pods(c, "idx"))
    assert [n.rsplit("-", 1)[0] for n in names] == ["idx-0", "idx-1", "idx-2"]


async def test_a_finished_job_is_deleted_after_its_ttl(c: SimCluster) -> None:
    await c.client.create(batch_job("brief", ttlSecondsAfterFinished=0))

    async def gone() -> bool:
        try:
            await c.client.get("batch/v1", "Job", "brief", namespace="default")
        except kclient.NotFound:
            return True
        return False

    assert await c.wait_for(gone, within=30)


async def test_a_cronjob_starts_a_job_on_schedule_and_records_its_success(
    c: SimCluster,
) -> None:
    # the CronJob controller on a fake clock: a minute passes when the test says so
    clock = kclient.FakeClock(wall=datetime.datetime.now(datetime.UTC))
    controller = cronjob.CronJobController(client=c.client, informers=c.informers, clock=clock)
    runner = runtime.Runner(controller, c.informers, clock=clock)
    runner.register()
    c.informers.start()
    task = asyncio.create_task(runner.run())
    try:
        async with asyncio.timeout(10):
            await c.informers.wait_for_cache_sync()
        template = {"spec": batch_job("unused")["spec"]}
        await c.client.create(
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {"name": "tick", "namespace": "default"},
                "spec": {"schedule": "* * * * *", "jobTemplate": template},
            }
        )
        await c.wait_for(lambda: _sleeping(clock), within=10)  # requeued for the next minute
        clock.advance(120)  # the next minute boundary is well past the creation time

        async def succeeded() -> Obj | None:
            got = await c.client.get("batch/v1", "CronJob", "tick", namespace="default")
            status = got.get("status") or {}
            return got if status.get("lastSuccessfulTime") and not status.get("active") else None

        done = await c.wait_for(succeeded, within=30)
        assert done["status"]["lastScheduleTime"]
        jobs = (await c.client.list("batch/v1", "Job", namespace="default"))["items"]
        assert len(jobs) == 1
        assert jobs[0]["metadata"]["name"].startswith("tick-")
        assert jobctl.condition(jobs[0], jobctl.COMPLETE) is not None
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _sleeping(clock: kclient.FakeClock) -> bool:
    return clock.sleepers > 0
