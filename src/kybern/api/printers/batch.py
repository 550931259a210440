"""batch/v1: Jobs (STATUS COMPLETIONS DURATION AGE) and CronJobs."""

from __future__ import annotations

from typing import Any

from kybern.api.printers import base, duration
from kybern.api.printers.base import AGE, CONTAINERS, IMAGES, NAME, Cell, Column, Obj, Printer

_JOB_SPEC = "io.k8s.api.batch.v1.JobSpec"
_CRON_SPEC = "io.k8s.api.batch.v1.CronJobSpec"
_CRON_STATUS = "io.k8s.api.batch.v1.CronJobStatus"
_SELECTOR = Column("Selector", doc=(_JOB_SPEC, "selector"), priority=1)


def _job(obj: Obj, now: float) -> list[Cell]:
    spec = base.as_map(obj.get("spec"))
    names, images = base.containers_cells(base.get(spec, "template", "spec", "containers"))
    return [
        base.name(obj),
        _job_status(obj),
        _completions(obj),
        _duration(obj, now),
        base.age(obj, now),
        names,
        images,
        base.format_selector(spec.get("selector")),
    ]


def _completions(obj: Obj) -> str:
    succeeded = base.as_int(base.get(obj, "status", "succeeded"))
    completions = base.get(obj, "spec", "completions")
    if isinstance(completions, int):
        return f"{succeeded}/{completions}"
    parallelism = base.as_int(base.get(obj, "spec", "parallelism"))
    if parallelism > 1:
        return f"{succeeded}/1 of {parallelism}"
    return f"{succeeded}/1"


def _duration(obj: Obj, now: float) -> str:
    start = base.timestamp(base.get(obj, "status", "startTime"))
    if start is None:
        return ""
    end = base.timestamp(base.get(obj, "status", "completionTime"))
    return duration.human_duration((now if end is None else end) - start)


def _job_status(obj: Obj) -> str:
    conditions = base.as_list(base.get(obj, "status", "conditions"))
    if _has(conditions, "Complete"):
        return "Complete"
    if _has(conditions, "Failed"):
        return "Failed"
    if base.get(obj, "metadata", "deletionTimestamp") is not None:
        return "Terminating"
    if _has(conditions, "Suspended"):
        return "Suspended"
    if _has(conditions, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def _has(conditions: list[Any], kind: str) -> bool:
    for cond in conditions:
        if base.get(cond, "type") == kind:
            return bool(base.get(cond, "status") == "True")
    return False


JOB = Printer(
    (
        NAME,
        Column("Status", doc="Status of the job."),
        Column("Completions", doc=("io.k8s.api.batch.v1.JobStatus", "succeeded")),
        Column("Duration", doc="Time required to complete the job."),
        AGE,
        CONTAINERS,
        IMAGES,
        _SELECTOR,
    ),
    _job,
)


def _cron_job(obj: Obj, now: float) -> list[Cell]:
    spec = base.as_map(obj.get("spec"))
    job_spec = base.as_map(base.get(spec, "jobTemplate", "spec"))
    names, images = base.containers_cells(base.get(job_spec, "template", "spec", "containers"))
    last = base.get(obj, "status", "lastScheduleTime")
    return [
        base.name(obj),
        base.text(spec.get("schedule")),
        base.text(spec.get("timeZone")) or "<none>",
        base.bool_pointer(spec.get("suspend")),
        len(base.as_list(base.get(obj, "status", "active"))),
        "<none>" if last is None else base.since(last, now),
        base.age(obj, now),
        names,
        images,
        base.format_selector(job_spec.get("selector")),
    ]


CRON_JOB = Printer(
    (
        NAME,
        Column("Schedule", doc=(_CRON_SPEC, "schedule")),
        Column("Timezone", doc=(_CRON_SPEC, "timeZone")),
        Column("Suspend", "boolean", doc=(_CRON_SPEC, "suspend")),
        Column("Active", "integer", doc=(_CRON_STATUS, "active")),
        Column("Last Schedule", doc=(_CRON_STATUS, "lastScheduleTime")),
        AGE,
        CONTAINERS,
        IMAGES,
        _SELECTOR,
    ),
    _cron_job,
)
