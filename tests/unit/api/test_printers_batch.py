"""Job and CronJob printers: STATUS, COMPLETIONS, DURATION, schedules."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.api.test_printers_helpers import ago, cells, headers, obj

TEMPLATE = {"spec": {"containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Never"}}


def job(spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"template": TEMPLATE, "selector": {"matchLabels": {"job-name": "pi"}}, **(spec or {})}
    return obj("batch/v1", "Job", "pi", 600, spec=body, status=status or {})


def test_job_headers() -> None:
    assert headers("batch", "Job") == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert headers("batch", "Job", wide=True)[5:] == ["CONTAINERS", "IMAGES", "SELECTOR"]


def test_complete_job_golden_row() -> None:
    status = {
        "succeeded": 1,
        "startTime": ago(600),
        "completionTime": ago(545),
        "conditions": [{"type": "Complete", "status": "True"}],
    }
    assert cells("batch", "Job", job({"completions": 1}, status)) == [
        "pi",
        "Complete",
        "1/1",
        "55s",
        "10m",
        "pi",
        "perl",
        "job-name=pi",
    ]


def test_running_job_duration_counts_to_now() -> None:
    row = cells("batch", "Job", job({"completions": 3}, {"succeeded": 1, "startTime": ago(200)}))
    assert row[1:4] == ["Running", "1/3", "3m20s"]


@pytest.mark.parametrize(
    ("spec", "shown"),
    [({}, "0/1"), ({"parallelism": 1}, "0/1"), ({"parallelism": 4}, "0/1 of 4")],
)
def test_completions_without_a_count(spec: dict[str, Any], shown: str) -> None:
    assert cells("batch", "Job", job(spec))[2] == shown


@pytest.mark.parametrize(
    ("condition", "shown"),
    [("Failed", "Failed"), ("Suspended", "Suspended"), ("FailureTarget", "FailureTarget")],
)
def test_job_status(condition: str, shown: str) -> None:
    status = {"conditions": [{"type": condition, "status": "True"}]}
    assert cells("batch", "Job", job({}, status))[1] == shown


def test_terminating_job() -> None:
    item = job()
    item["metadata"]["deletionTimestamp"] = ago(1)
    assert cells("batch", "Job", item)[1:4] == ["Terminating", "0/1", ""]


def test_cron_job() -> None:
    assert headers("batch", "CronJob") == [
        "NAME",
        "SCHEDULE",
        "TIMEZONE",
        "SUSPEND",
        "ACTIVE",
        "LAST SCHEDULE",
        "AGE",
    ]
    spec = {
        "schedule": "*/5 * * * *",
        "suspend": False,
        "jobTemplate": {"spec": {"template": TEMPLATE}},
    }
    item = obj(
        "batch/v1",
        "CronJob",
        "tick",
        2 * 86400,
        spec=spec,
        status={"active": [{"name": "a"}], "lastScheduleTime": ago(90)},
    )
    assert cells("batch", "CronJob", item) == [
        "tick",
        "*/5 * * * *",
        "<none>",
        "False",
        1,
        "90s",
        "2d",
        "pi",
        "perl",
        "<none>",
    ]
    zoned = obj(
        "batch/v1",
        "CronJob",
        "z",
        60,
        spec={
            "schedule": "@daily",
            "timeZone": "Etc/UTC",
            "jobTemplate": {"spec": {"template": TEMPLATE}},
        },
    )
    assert cells("batch", "CronJob", zoned)[2:6] == ["Etc/UTC", "<unset>", 0, "<none>"]
