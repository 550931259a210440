"""Job controller on the fake API."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from kybern import client as kclient
from kybern.controllers import job as jobctl
from kybern.controllers import runtime
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)
KEY = "ns/pi"
UID = "job-uid"


def job(**spec: Any) -> dict[str, Any]:
    status = spec.pop("status", {})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "namespace": "ns", "uid": UID},
        "spec": {
            "completions": 1,
            "parallelism": 1,
            "backoffLimit": 6,
            "completionMode": "NonIndexed",
            "selector": {"matchLabels": {jobctl.CONTROLLER_UID_LABEL: UID}},
            "template": {
                "metadata": {"labels": {jobctl.CONTROLLER_UID_LABEL: UID, "app": "pi"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox"}],
                },
            },
            **spec,
        },
        "status": status,
    }


def pod(
    name: str, phase: str = "Running", index: int | None = None, restarts: int = 0
) -> dict[str, Any]:
    labels = {jobctl.CONTROLLER_UID_LABEL: UID, "app": "pi"}
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "ns",
        "uid": f"uid-{name}",
        "labels": labels,
        "ownerReferences": [
            {"apiVersion": "batch/v1", "kind": "Job", "name": "pi", "uid": UID, "controller": True}
        ],
    }
    if index is not None:
        meta["annotations"] = {jobctl.COMPLETION_INDEX: str(index)}
        labels[jobctl.COMPLETION_INDEX] = str(index)
    status: dict[str, Any] = {"phase": phase}
    if restarts:
        status["containerStatuses"] = [{"name": "c", "restartCount": restarts}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {}, "status": status}


def make(*objs: dict[str, Any]) -> tuple[fakeclient.FakeCluster, jobctl.JobController]:
    cluster = fakeclient.FakeCluster()
    cluster.add(*objs)
    controller = jobctl.JobController(client=cluster.client, informers=cluster.informers)
    return cluster, controller


def writes(cluster: fakeclient.FakeCluster, resource: str, verb: str) -> list[fakeclient.Action]:
    return [a for a in cluster.writes() if a.resource == resource and a.verb == verb]


def stored(cluster: fakeclient.FakeCluster) -> dict[str, Any]:
    got = cluster.get("batch/v1", "Job", "pi", "ns")
    assert got is not None
    return got


def conditions(cluster: fakeclient.FakeCluster) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in stored(cluster)["status"].get("conditions") or []}


def reasons(cluster: fakeclient.FakeCluster) -> list[str]:
    return [a.body["reason"] for a in writes(cluster, "events", "create")]


def refresh(cluster: fakeclient.FakeCluster) -> None:
    """The status write reached the cache."""
    cluster.preload(stored(cluster))


def now(cluster: fakeclient.FakeCluster) -> datetime.datetime:
    return cluster.informers.clock.now()


class TestCreate:
    async def test_creates_parallelism_pods_with_job_labels_and_owner(self) -> None:
        cluster, controller = make(job(completions=5, parallelism=2))
        assert await controller.reconcile(KEY) == runtime.Result()
        creates = writes(cluster, "pods", "create")
        assert len(creates) == 2
        meta = creates[0].body["metadata"]
        assert meta["generateName"] == "pi-"
        assert meta["labels"][jobctl.CONTROLLER_UID_LABEL] == UID
        assert meta["labels"][jobctl.JOB_NAME_LABEL] == "pi"
        assert meta["labels"]["job-name"] == "pi"
        assert meta["ownerReferences"][0]["kind"] == "Job"
        assert meta["ownerReferences"][0]["controller"] is True
        assert reasons(cluster) == ["SuccessfulCreate"] * 2
        status = stored(cluster)["status"]
        assert status["active"] == 2
        assert status["startTime"] == "2026-01-01T00:00:00Z"

    async def test_creates_only_the_completions_still_missing(self) -> None:
        cluster, controller = make(
            job(completions=3, parallelism=3), pod("a", "Succeeded"), pod("b", "Succeeded")
        )
        await controller.reconcile(KEY)
        assert len(writes(cluster, "pods", "create")) == 1
        assert stored(cluster)["status"]["succeeded"] == 2

    async def test_expectations_block_a_second_create(self) -> None:
        cluster, controller = make(job(completions=2, parallelism=2))
        await controller.reconcile(KEY)
        refresh(cluster)
        cluster.clear()
        await controller.reconcile(KEY)
        assert writes(cluster, "pods", "create") == []

    async def test_surplus_active_pods_are_deleted(self) -> None:
        cluster, controller = make(job(completions=5, parallelism=1), pod("a"), pod("b"))
        await controller.reconcile(KEY)
        assert len(writes(cluster, "pods", "delete")) == 1


class TestIndexed:
    async def test_pods_carry_their_index(self) -> None:
        cluster, controller = make(
            job(completions=3, parallelism=3, completionMode="Indexed"),
            pod("pi-1-x", "Succeeded", index=1),
        )
        await controller.reconcile(KEY)
        creates = writes(cluster, "pods", "create")
        got = sorted(a.body["metadata"]["annotations"][jobctl.COMPLETION_INDEX] for a in creates)
        assert got == ["0", "2"]
        body = creates[0].body
        index = body["metadata"]["labels"][jobctl.COMPLETION_INDEX]
        assert body["metadata"]["generateName"] == f"pi-{index}-"
        assert body["spec"]["hostname"] == f"pi-{index}"
        assert stored(cluster)["status"]["completedIndexes"] == "1"

    async def test_completes_when_every_index_succeeded(self) -> None:
        cluster, controller = make(
            job(completions=2, parallelism=2, completionMode="Indexed"),
            pod("a", "Succeeded", index=0),
            pod("b", "Succeeded", index=1),
            pod("c", "Succeeded", index=1),
        )
        await controller.reconcile(KEY)
        status = stored(cluster)["status"]
        assert status["completedIndexes"] == "0,1"
        assert status["succeeded"] == 2
        assert conditions(cluster)[jobctl.COMPLETE]["status"] == "True"

    def test_index_formatting_round_trips(self) -> None:
        assert jobctl.format_indexes({0, 1, 2, 5, 7, 8}) == "0-2,5,7,8"
        assert jobctl.parse_indexes("0-2,5,7,8") == {0, 1, 2, 5, 7, 8}
        assert jobctl.parse_indexes("") == set()


class TestSuccess:
    async def test_complete_sets_conditions_completion_time_and_event(self) -> None:
        cluster, controller = make(
            job(completions=2, parallelism=2), *(pod(n, "Succeeded") for n in "ab")
        )
        await controller.reconcile(KEY)
        conds = conditions(cluster)
        assert conds[jobctl.SUCCESS_CRITERIA_MET]["reason"] == jobctl.COMPLETIONS_REACHED
        assert conds[jobctl.COMPLETE]["status"] == "True"
        status = stored(cluster)["status"]
        assert status["completionTime"] == "2026-01-01T00:00:00Z"
        assert (status["succeeded"], status["active"], status["failed"]) == (2, 0, 0)
        assert "Completed" in reasons(cluster)
        assert writes(cluster, "pods", "create") == []

    async def test_without_completions_one_success_and_nothing_active_completes(self) -> None:
        spec = job(parallelism=2)
        spec["spec"].pop("completions")
        cluster, controller = make(spec, pod("a", "Succeeded"), pod("b"))
        await controller.reconcile(KEY)
        assert jobctl.COMPLETE not in conditions(cluster)
        assert writes(cluster, "pods", "create") == []  # no new pods after a success


class TestFailure:
    async def test_backoff_limit_exceeded(self) -> None:
        cluster, controller = make(
            job(completions=3, backoffLimit=1), pod("a", "Failed"), pod("b", "Failed"), pod("c")
        )
        await controller.reconcile(KEY)
        conds = conditions(cluster)
        assert conds[jobctl.FAILURE_TARGET]["reason"] == "BackoffLimitExceeded"
        assert jobctl.FAILED not in conds  # an active pod is still being deleted
        assert [a.name for a in writes(cluster, "pods", "delete")] == ["c"]
        # the pod is gone from the cache: now the Job fails
        cluster.informers.informer_for("v1", "Pod").store.remove("ns/c")
        refresh(cluster)
        await controller.reconcile(KEY)
        conds = conditions(cluster)
        assert conds[jobctl.FAILED]["reason"] == "BackoffLimitExceeded"
        assert conds[jobctl.FAILED]["message"] == "Job has reached the specified backoff limit"
        assert stored(cluster)["status"]["failed"] == 2
        assert "BackoffLimitExceeded" in reasons(cluster)

    async def test_failed_pods_within_the_limit_are_replaced(self) -> None:
        cluster, controller = make(job(backoffLimit=2), pod("a", "Failed"))
        await controller.reconcile(KEY)
        assert len(writes(cluster, "pods", "create")) == 1
        assert stored(cluster)["status"]["failed"] == 1

    async def test_on_failure_restarts_count_toward_the_limit(self) -> None:
        spec = job(backoffLimit=2)
        spec["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
        cluster, controller = make(spec, pod("a", restarts=2))
        await controller.reconcile(KEY)
        assert conditions(cluster)[jobctl.FAILURE_TARGET]["reason"] == "BackoffLimitExceeded"

    async def test_active_deadline_exceeded(self) -> None:
        cluster, controller = make(
            job(activeDeadlineSeconds=30, status={"startTime": "2026-01-01T00:00:00Z"})
        )
        result = await controller.reconcile(KEY)
        assert result.requeue_after == pytest.approx(30)
        refresh(cluster)
        clock = cluster.informers.clock
        assert isinstance(clock, kclient.FakeClock)
        clock.advance(31)
        await controller.reconcile(KEY)
        assert conditions(cluster)[jobctl.FAILED]["reason"] == "DeadlineExceeded"
        assert "DeadlineExceeded" in reasons(cluster)


class TestSuspendAndTtl:
    async def test_suspend_deletes_active_pods_and_sets_the_condition(self) -> None:
        cluster, controller = make(job(suspend=True), pod("a"))
        await controller.reconcile(KEY)
        assert [a.name for a in writes(cluster, "pods", "delete")] == ["a"]
        assert writes(cluster, "pods", "create") == []
        assert conditions(cluster)[jobctl.SUSPENDED]["status"] == "True"
        assert stored(cluster)["status"]["active"] == 0

    async def test_resume_flips_the_condition_and_creates_pods(self) -> None:
        cluster, controller = make(job(suspend=True))
        await controller.reconcile(KEY)
        resumed = stored(cluster)
        resumed["spec"]["suspend"] = False
        cluster.preload(resumed)
        await controller.reconcile(KEY)
        assert conditions(cluster)[jobctl.SUSPENDED]["status"] == "False"
        assert len(writes(cluster, "pods", "create")) == 1

    async def test_finished_job_is_deleted_after_its_ttl(self) -> None:
        finished = job(
            ttlSecondsAfterFinished=60,
            status={
                "completionTime": "2026-01-01T00:00:00Z",
                "conditions": [{"type": "Complete", "status": "True"}],
            },
        )
        cluster, controller = make(finished)
        result = await controller.reconcile(KEY)
        assert result.requeue_after == pytest.approx(60)
        assert writes(cluster, "jobs", "delete") == []
        clock = cluster.informers.clock
        assert isinstance(clock, kclient.FakeClock)
        clock.advance(60)
        await controller.reconcile(KEY)
        assert [a.name for a in writes(cluster, "jobs", "delete")] == ["pi"]

    async def test_missing_job_is_a_no_op(self) -> None:
        cluster, controller = make()
        await controller.reconcile(KEY)
        assert cluster.writes() == []
