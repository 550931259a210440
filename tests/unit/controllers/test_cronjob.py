"""CronJob controller on the fake API with a fake clock (2026-01-01T00:00:00Z at start)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from kybern import client as kclient
from kybern.controllers import cronjob as cjctl
from kybern.controllers import job as jobctl
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)
KEY = "ns/tick"
UID = "cj-uid"
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
MINUTE0 = int(START.timestamp()) // 60


def cronjob(schedule: str = "*/5 * * * *", **spec: Any) -> dict[str, Any]:
    status = spec.pop("status", {})
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": "tick",
            "namespace": "ns",
            "uid": UID,
            "creationTimestamp": "2025-12-31T23:50:00Z",
        },
        "spec": {
            "schedule": schedule,
            "concurrencyPolicy": "Allow",
            "suspend": False,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 1,
            "jobTemplate": {
                "metadata": {"labels": {"app": "tick"}},
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "c", "image": "busybox"}],
                        }
                    }
                },
            },
            **spec,
        },
        "status": status,
    }


def owned_job(name: str, state: str = "", start: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    status: dict[str, Any] = {"startTime": start}
    if state:
        status["conditions"] = [{"type": state, "status": "True"}]
        if state == "Complete":
            status["completionTime"] = start
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": "tick",
                    "uid": UID,
                    "controller": True,
                }
            ],
        },
        "spec": {},
        "status": status,
    }


def make(
    *objs: dict[str, Any],
) -> tuple[fakeclient.FakeCluster, cjctl.CronJobController, kclient.FakeClock]:
    clock = kclient.FakeClock(wall=START)
    cluster = fakeclient.FakeCluster(clock=clock)
    cluster.add(*objs)
    controller = cjctl.CronJobController(
        client=cluster.client, informers=cluster.informers, clock=clock
    )
    return cluster, controller, clock


def writes(cluster: fakeclient.FakeCluster, resource: str, verb: str) -> list[fakeclient.Action]:
    return [a for a in cluster.writes() if a.resource == resource and a.verb == verb]


def status(cluster: fakeclient.FakeCluster) -> dict[str, Any]:
    got = cluster.get("batch/v1", "CronJob", "tick", "ns")
    assert got is not None
    return dict(got.get("status") or {})


def refresh(cluster: fakeclient.FakeCluster) -> None:
    """Everything written so far reaches the caches."""
    for obj in list(cluster.objects.values()):
        if obj.get("kind") in ("CronJob", "Job"):
            cluster.preload(obj)


def created(cluster: fakeclient.FakeCluster) -> list[str]:
    return [a.body["metadata"]["name"] for a in writes(cluster, "jobs", "create")]


def reasons(cluster: fakeclient.FakeCluster) -> list[str]:
    return [a.body["reason"] for a in writes(cluster, "events", "create")]


class TestScheduling:
    async def test_creates_the_job_for_the_due_time_and_requeues_for_the_next(self) -> None:
        cluster, controller, _ = make(cronjob())
        result = await controller.reconcile(KEY)
        creates = writes(cluster, "jobs", "create")
        assert [a.body["metadata"]["name"] for a in creates] == [f"tick-{MINUTE0}"]
        body = creates[0].body
        assert body["metadata"]["labels"] == {"app": "tick"}
        assert body["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
        assert body["metadata"]["annotations"][cjctl.SCHEDULED_TIMESTAMP] == START.isoformat()
        assert body["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        st = status(cluster)
        assert st["lastScheduleTime"] == "2026-01-01T00:00:00Z"
        assert [r["name"] for r in st["active"]] == [f"tick-{MINUTE0}"]
        assert result.requeue_after == pytest.approx(300.1)
        assert "SuccessfulCreate" in reasons(cluster)

    async def test_nothing_due_before_the_first_time(self) -> None:
        cluster, controller, clock = make(cronjob("0 * * * *"))
        clock.advance(60)
        cluster.preload(cronjob("0 * * * *", status={"lastScheduleTime": "2026-01-01T00:00:00Z"}))
        result = await controller.reconcile(KEY)
        assert writes(cluster, "jobs", "create") == []
        assert result.requeue_after == pytest.approx(59 * 60 + 0.1)

    async def test_a_second_reconcile_does_not_start_the_same_run_twice(self) -> None:
        cluster, controller, clock = make(cronjob())
        await controller.reconcile(KEY)
        refresh(cluster)
        cluster.clear()
        await controller.reconcile(KEY)
        assert writes(cluster, "jobs", "create") == []
        clock.advance(300)
        await controller.reconcile(KEY)
        assert created(cluster) == [f"tick-{MINUTE0 + 5}"]

    async def test_missed_runs_start_only_the_most_recent(self) -> None:
        cluster, controller, clock = make(cronjob())
        clock.advance(3600)
        await controller.reconcile(KEY)
        assert created(cluster) == [f"tick-{MINUTE0 + 60}"]

    async def test_starting_deadline_missed(self) -> None:
        cluster, controller, clock = make(
            cronjob(
                "0 * * * *",
                startingDeadlineSeconds=10,
                status={"lastScheduleTime": "2025-12-31T23:00:00Z"},
            )
        )
        clock.advance(30)  # 00:00:30: the 00:00 run is 30 s late, beyond the 10 s deadline
        await controller.reconcile(KEY)
        assert writes(cluster, "jobs", "create") == []

    async def test_time_zone(self) -> None:
        # 19:00 in New York is 00:00 UTC
        cluster, controller, _ = make(cronjob("0 19 * * *", timeZone="America/New_York"))
        await controller.reconcile(KEY)
        assert created(cluster) == [f"tick-{MINUTE0}"]

    async def test_suspend_starts_nothing(self) -> None:
        cluster, controller, _ = make(cronjob(suspend=True))
        await controller.reconcile(KEY)
        assert writes(cluster, "jobs", "create") == []

    async def test_invalid_schedule_is_an_event_not_a_retry(self) -> None:
        cluster, controller, _ = make(cronjob("61 * * * *"))
        result = await controller.reconcile(KEY)
        assert result.requeue_after is None
        assert reasons(cluster) == ["InvalidSchedule"]

    async def test_unknown_time_zone(self) -> None:
        cluster, controller, _ = make(cronjob(timeZone="Mars/Olympus"))
        await controller.reconcile(KEY)
        assert reasons(cluster) == ["UnknownTimeZone"]


class TestConcurrency:
    async def test_forbid_skips_while_a_job_runs(self) -> None:
        running = owned_job("tick-1")
        cluster, controller, _ = make(cronjob(concurrencyPolicy="Forbid"), running)
        await controller.reconcile(KEY)
        assert writes(cluster, "jobs", "create") == []
        assert [r["name"] for r in status(cluster)["active"]] == ["tick-1"]
        assert "lastScheduleTime" not in status(cluster)

    async def test_replace_deletes_the_running_job(self) -> None:
        running = owned_job("tick-1")
        cluster, controller, _ = make(cronjob(concurrencyPolicy="Replace"), running)
        await controller.reconcile(KEY)
        assert [a.name for a in writes(cluster, "jobs", "delete")] == ["tick-1"]
        assert created(cluster) == [f"tick-{MINUTE0}"]
        assert [r["name"] for r in status(cluster)["active"]] == [f"tick-{MINUTE0}"]

    async def test_allow_runs_alongside(self) -> None:
        cluster, controller, _ = make(cronjob(), owned_job("tick-1"))
        await controller.reconcile(KEY)
        assert len(writes(cluster, "jobs", "create")) == 1
        assert len(status(cluster)["active"]) == 2


class TestHistory:
    async def test_finished_jobs_leave_active_and_set_last_successful_time(self) -> None:
        done = owned_job("tick-1", "Complete", start="2025-12-31T23:55:00Z")
        cj = cronjob(
            suspend=True,
            status={"active": [{"name": "tick-1", "uid": "uid-tick-1", "namespace": "ns"}]},
        )
        cluster, controller, _ = make(cj, done)
        await controller.reconcile(KEY)
        st = status(cluster)
        assert "active" not in st
        assert st["lastSuccessfulTime"] == "2025-12-31T23:55:00Z"
        assert reasons(cluster) == ["SawCompletedJob"]

    async def test_history_limits_delete_the_oldest(self) -> None:
        jobs = [
            owned_job(f"ok-{i}", jobctl.COMPLETE, start=f"2025-12-31T23:0{i}:00Z") for i in range(5)
        ] + [
            owned_job(f"bad-{i}", jobctl.FAILED, start=f"2025-12-31T23:0{i}:00Z") for i in range(3)
        ]
        cluster, controller, _ = make(cronjob(suspend=True, successfulJobsHistoryLimit=2), *jobs)
        await controller.reconcile(KEY)
        deleted = sorted(a.name for a in writes(cluster, "jobs", "delete"))
        assert deleted == ["bad-0", "bad-1", "ok-0", "ok-1", "ok-2"]


def test_job_names_use_the_scheduled_minute() -> None:
    assert cjctl.job_name("tick", START) == f"tick-{MINUTE0}"
    assert cjctl.job_name("tick", START + datetime.timedelta(seconds=59)) == f"tick-{MINUTE0}"
