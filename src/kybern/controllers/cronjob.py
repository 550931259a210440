"""CronJob (batch/v1): create a Job for every scheduled time (Kubernetes' CronJobControllerV2).

One reconcile of ``namespace/name``:

1. Look at the Jobs it controls (owner index): finished ones leave ``status.active``
   (``SawCompletedJob``; a Complete one moves ``lastSuccessfulTime``), running ones are in it;
   finished Jobs beyond ``successfulJobsHistoryLimit`` / ``failedJobsHistoryLimit`` are deleted,
   oldest first.
2. Unless suspended or being deleted: the most recent scheduled time (``cron.parse`` of
   ``spec.schedule`` in ``spec.timeZone``) after ``lastScheduleTime`` (or the creation time),
   and no earlier than ``now - startingDeadlineSeconds``, is due. Its Job is
   ``<cronjob>-<scheduled time in minutes since the epoch>``, so a retried reconcile cannot
   start it twice. ``concurrencyPolicy``: Allow starts it regardless, Forbid skips the run
   while a Job is active (it is tried again while still within the deadline), Replace deletes
   the active Jobs first.
3. Write status; requeue at the next scheduled time. The clock is injected (tests use a fake).

An invalid schedule or time zone is a Warning Event (``InvalidSchedule``/``UnknownTimeZone``)
and no retry until the CronJob changes.
"""

from __future__ import annotations

import copy
import datetime
import logging
from collections.abc import Sequence
from typing import Any

from kybern import client as kclient
from kybern.client import store
from kybern.controllers import cron, events, job, pods, runtime

log = logging.getLogger(__name__)
Obj = dict[str, Any]

API_VERSION = "batch/v1"
KIND = "CronJob"
SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
NEXT_SCHEDULE_SLACK = 0.1  # Kubernetes adds 100 ms so the requeue lands after the minute


def job_name(cronjob_name: str, scheduled: datetime.datetime) -> str:
    return f"{cronjob_name}-{int(scheduled.timestamp()) // 60}"


class CronJobController:
    name = "cronjob"
    workers = 5

    def __init__(
        self,
        *,
        client: kclient.Client,
        informers: kclient.SharedInformerFactory,
        clock: kclient.Clock | None = None,
    ) -> None:
        self.client = client
        self.clock = clock or informers.clock
        self.cronjobs = informers.informer_for(API_VERSION, KIND).store
        self.jobs = informers.informer_for(job.API_VERSION, job.KIND).store
        self.recorder = events.Recorder(client, "cronjob-controller", clock=self.clock)

    def watches(self) -> Sequence[runtime.Watch]:
        return [
            runtime.Watch(API_VERSION, KIND, runtime.own_key),
            runtime.Watch(job.API_VERSION, job.KIND, runtime.controller_owner_keys(KIND)),
        ]

    async def reconcile(self, key: str) -> runtime.Result:
        cached = self.cronjobs.get(key)
        if cached is None:
            return runtime.Result()
        cj = {**copy.deepcopy(cached), "apiVersion": API_VERSION, "kind": KIND}
        spec = cj.get("spec") or {}
        status: Obj = copy.deepcopy(cj.get("status") or {})
        old_status = copy.deepcopy(status)
        uid = cj["metadata"]["uid"]
        owned = [
            j
            for j in self.jobs.by_index(store.OWNER, uid)
            if (pods.controller_ref(j) or {}).get("uid") == uid
        ]
        await self.track_jobs(cj, status, owned)
        await self.clean_history(cj, owned)
        requeue: float | None = None
        if not spec.get("suspend") and not cj["metadata"].get("deletionTimestamp"):
            requeue = await self.schedule(cj, status, owned)
        if status != old_status:
            cj["status"] = status
            try:
                await self.client.update_status(cj)
            except kclient.NotFound:
                return runtime.Result()
        return runtime.Result(requeue_after=requeue)

    # -- jobs it owns ------------------------------------------------------------------

    async def track_jobs(self, cj: Obj, status: Obj, owned: list[Obj]) -> None:
        by_uid = {j["metadata"]["uid"]: j for j in owned}
        active: list[Obj] = []
        for ref in status.get("active") or []:
            found = by_uid.get(ref.get("uid"))
            if found is None:
                continue  # deleted (or never seen again): drop it
            if job.is_finished(found):
                await self.saw_finished(cj, status, found)
            else:
                active.append(ref)
        listed = {ref.get("uid") for ref in active}
        active.extend(
            _reference(j)
            for j in owned
            if not job.is_finished(j) and j["metadata"]["uid"] not in listed
        )
        if active:
            status["active"] = active
        else:
            status.pop("active", None)

    async def saw_finished(self, cj: Obj, status: Obj, found: Obj) -> None:
        name = found["metadata"]["name"]
        complete = job.condition(found, job.COMPLETE)
        if complete is not None:
            when = (found.get("status") or {}).get("completionTime") or complete.get(
                "lastTransitionTime"
            )
            last = pods.parse_time(status.get("lastSuccessfulTime"))
            parsed = pods.parse_time(when)
            if parsed is not None and (last is None or parsed > last):
                status["lastSuccessfulTime"] = job.fmt_time(parsed)
        state = "Complete" if complete is not None else "Failed"
        await self.recorder.event(
            cj, events.NORMAL, "SawCompletedJob", f"Saw completed job: {name}, status: {state}"
        )

    async def clean_history(self, cj: Obj, owned: list[Obj]) -> None:
        spec = cj.get("spec") or {}
        for condition, field, default in (
            (job.COMPLETE, "successfulJobsHistoryLimit", 3),
            (job.FAILED, "failedJobsHistoryLimit", 1),
        ):
            limit = spec.get(field)
            limit = default if limit is None else int(limit)
            finished = [
                j
                for j in owned
                if job.condition(j, condition) and not j["metadata"].get("deletionTimestamp")
            ]
            finished.sort(key=_start_time)
            for old in finished[: max(0, len(finished) - limit)]:
                await self.delete_job(cj, old)

    async def delete_job(self, cj: Obj, victim: Obj) -> None:
        meta = victim["metadata"]
        try:
            await self.client.delete(
                job.API_VERSION,
                job.KIND,
                meta["name"],
                namespace=meta["namespace"],
                propagation_policy="Background",
            )
        except kclient.NotFound:
            return
        await self.recorder.event(
            cj, events.NORMAL, "SuccessfulDelete", f"Deleted job {meta['name']}"
        )

    # -- scheduling --------------------------------------------------------------------

    async def schedule(self, cj: Obj, status: Obj, owned: list[Obj]) -> float | None:
        """Start the due run, if any; seconds until the next scheduled time."""
        spec = cj.get("spec") or {}
        try:
            sched = cron.parse(str(spec.get("schedule") or ""), spec.get("timeZone"))
        except cron.CronError as exc:
            reason = "UnknownTimeZone" if "time zone" in str(exc) else "InvalidSchedule"
            await self.recorder.event(cj, events.WARNING, reason, str(exc))
            return None
        now = self.clock.now()
        nxt = sched.next(now)
        requeue = None if nxt is None else (nxt - now).total_seconds() + NEXT_SCHEDULE_SLACK
        earliest = pods.parse_time(status.get("lastScheduleTime")) or pods.parse_time(
            cj["metadata"].get("creationTimestamp")
        )
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None:
            window = now - datetime.timedelta(seconds=int(deadline))
            earliest = window if earliest is None or window > earliest else earliest
        scheduled = sched.prev(now)
        if scheduled is None or (earliest is not None and scheduled <= earliest):
            return requeue
        name = job_name(cj["metadata"]["name"], scheduled)
        if any(j["metadata"]["name"] == name for j in owned):
            status["lastScheduleTime"] = job.fmt_time(scheduled)
            return requeue
        policy = spec.get("concurrencyPolicy") or "Allow"
        running = [j for j in owned if not job.is_finished(j)]
        if policy == "Forbid" and running:
            log.info("%s: %s not started: a run is active", kclient.key_of(cj), name)
            await self.recorder.event(
                cj,
                events.NORMAL,
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency "
                "policy is Forbid",
            )
            return requeue
        if policy == "Replace":
            for old in running:
                await self.delete_job(cj, old)
            status.pop("active", None)
        try:
            created = await self.client.create(job_from_template(cj, scheduled, name))
        except kclient.AlreadyExists:  # an earlier attempt got through
            status["lastScheduleTime"] = job.fmt_time(scheduled)
            return requeue
        except kclient.ApiError as exc:
            await self.recorder.event(
                cj, events.WARNING, "FailedCreate", f"Error creating job: {exc}"
            )
            raise
        await self.recorder.event(cj, events.NORMAL, "SuccessfulCreate", f"Created job {name}")
        status.setdefault("active", []).append(_reference(created))
        status["lastScheduleTime"] = job.fmt_time(scheduled)
        return requeue


def _reference(obj: Obj) -> Obj:
    meta = obj["metadata"]
    return {
        "apiVersion": job.API_VERSION,
        "kind": job.KIND,
        "name": meta["name"],
        "namespace": meta.get("namespace", ""),
        "uid": meta["uid"],
        "resourceVersion": meta.get("resourceVersion", ""),
    }


def _start_time(j: Obj) -> str:
    return str((j.get("status") or {}).get("startTime") or j["metadata"].get("creationTimestamp"))


def job_from_template(cj: Obj, scheduled: datetime.datetime, name: str) -> Obj:
    template = copy.deepcopy((cj.get("spec") or {}).get("jobTemplate") or {})
    meta = template.get("metadata") or {}
    annotations = dict(meta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP] = scheduled.isoformat()
    job_meta: Obj = {
        "name": name,
        "namespace": cj["metadata"]["namespace"],
        "labels": dict(meta.get("labels") or {}),
        "annotations": annotations,
        "ownerReferences": [pods.owner_reference(cj)],
    }
    return {
        "apiVersion": job.API_VERSION,
        "kind": job.KIND,
        "metadata": job_meta,
        "spec": template.get("spec") or {},
    }
