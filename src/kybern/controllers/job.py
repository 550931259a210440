"""Job (batch/v1): run pods until ``completions`` succeed or the Job fails.

One reconcile of ``namespace/name`` (Kubernetes' JobController.syncJob, simplified):

1. A finished Job (Complete or Failed condition) only waits out ``ttlSecondsAfterFinished``
   and is then deleted (Kubernetes' TTL-after-finished controller, folded in here).
2. Claim pods by the Job's selector (ControllerRefManager); count active, ready, succeeded
   and failed pods. Counts never go down: a finished pod that was deleted stays counted.
3. Failure: ``failed > backoffLimit`` (or, for ``restartPolicy: OnFailure``, container
   restarts of active pods reaching it) is ``BackoffLimitExceeded``; running longer than
   ``activeDeadlineSeconds`` since ``startTime`` is ``DeadlineExceeded``. Success: NonIndexed
   ``succeeded >= completions`` (or, without completions, one success and nothing active);
   Indexed every index in ``[0, completions)`` succeeded (``status.completedIndexes``).
   As in 1.32 the Job first gets ``FailureTarget`` / ``SuccessCriteriaMet``, its remaining
   active pods are deleted, and ``Failed`` / ``Complete`` (+ ``completionTime``) follow once
   no active pod is left.
4. Otherwise, when the expectations of earlier writes are met: ``spec.suspend`` deletes the
   active pods (condition ``Suspended``); else create pods up to ``parallelism`` (and the
   completions still missing), or delete the surplus. Indexed pods carry the index in the
   ``batch.kubernetes.io/job-completion-index`` annotation and label, in their name
   (``<job>-<index>-xxxxx``) and hostname.
5. Write status through ``/status``.

Not implemented: podFailurePolicy, backoffLimitPerIndex, successPolicy, the pod-creation
backoff delay after failures, pod tracking finalizers.
"""

from __future__ import annotations

import copy
import datetime
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from kybern import client as kclient
from kybern.api import errors as api_errors
from kybern.api import labels
from kybern.client import store
from kybern.controllers import claims, events, podcontrol, pods, runtime

log = logging.getLogger(__name__)
Obj = dict[str, Any]

API_VERSION = "batch/v1"
KIND = "Job"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
DEFAULT_BACKOFF_LIMIT = 6
BURST = 500

COMPLETE = "Complete"
FAILED = "Failed"
SUCCESS_CRITERIA_MET = "SuccessCriteriaMet"
FAILURE_TARGET = "FailureTarget"
SUSPENDED = "Suspended"
BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
DEADLINE_EXCEEDED = "DeadlineExceeded"
COMPLETIONS_REACHED = "CompletionsReached"
BACKOFF_MESSAGE = "Job has reached the specified backoff limit"
DEADLINE_MESSAGE = "Job was active longer than specified deadline"


def fmt_time(when: datetime.datetime) -> str:
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(job: Obj, type_: str) -> Obj | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_ and cond.get("status") == "True":
            return dict(cond)
    return None


def is_finished(job: Obj) -> bool:
    return condition(job, COMPLETE) is not None or condition(job, FAILED) is not None


def completion_index(pod: Obj) -> int | None:
    meta = pod["metadata"]
    text = (meta.get("annotations") or {}).get(COMPLETION_INDEX)
    if text is None:
        text = (meta.get("labels") or {}).get(COMPLETION_INDEX)
    if text is None or not str(text).isdigit():
        return None
    return int(text)


def parse_indexes(text: str | None) -> set[int]:
    """``"0-2,5"`` -> {0, 1, 2, 5} (``status.completedIndexes``)."""
    out: set[int] = set()
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            out.update(range(int(low), int(high or low) + 1))
    return out


def format_indexes(indexes: Iterable[int]) -> str:
    """{0, 1, 2, 5, 7, 8} -> ``"0-2,5,7,8"``."""
    ordered = sorted(set(indexes))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        sep = "," if j == i + 1 else "-"  # Kubernetes writes a pair as "0,1"
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}{sep}{ordered[j]}")
        i = j + 1
    return ",".join(parts)


class JobController:
    name = "job"
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
        self.jobs = informers.informer_for(API_VERSION, KIND).store
        pod_informer = informers.informer_for("v1", "Pod")
        self.pods = pod_informer.store
        self.expectations = pods.Expectations(
            self.pods, lambda: pod_informer.last_resource_version, self.clock
        )
        self.recorder = events.Recorder(client, "job-controller", clock=self.clock)
        self.pod_control = podcontrol.PodControl(client, self.recorder, self.expectations)

    def watches(self) -> Sequence[runtime.Watch]:
        return [
            runtime.Watch(API_VERSION, KIND, runtime.own_key),
            runtime.Watch("v1", "Pod", runtime.controller_owner_keys(KIND)),
        ]

    async def reconcile(self, key: str) -> runtime.Result:
        cached = self.jobs.get(key)
        if cached is None:
            self.expectations.forget(key)
            return runtime.Result()
        job = {**copy.deepcopy(cached), "apiVersion": API_VERSION, "kind": KIND}
        if is_finished(job):
            return await self.handle_ttl(job)
        if job["metadata"].get("deletionTimestamp"):
            return runtime.Result()
        try:
            selector = labels.from_label_selector((job.get("spec") or {}).get("selector"))
        except api_errors.BadRequest as exc:
            raise runtime.TerminalError(f"{key}: invalid selector: {exc}") from exc
        owned = await claims.claim(
            self.client, job, selector, self.candidates(job), api_version="v1", kind="Pod"
        )
        return await self.sync(key, job, owned)

    def candidates(self, job: Obj) -> list[Obj]:
        uid = job["metadata"]["uid"]
        namespace = job["metadata"].get("namespace", "")
        found = {kclient.key_of(p): p for p in self.pods.by_index(store.OWNER, uid)}
        for pod in self.pods.by_index(store.LABEL, f"{CONTROLLER_UID_LABEL}={uid}"):
            if pod["metadata"].get("namespace") == namespace:
                found.setdefault(kclient.key_of(pod), pod)
        return list(found.values())

    # -- the sync ----------------------------------------------------------------------

    async def sync(self, key: str, job: Obj, owned: list[Obj]) -> runtime.Result:
        spec = job.get("spec") or {}
        old_status = copy.deepcopy(job.get("status") or {})
        status: Obj = copy.deepcopy(old_status)
        now = self.clock.now()
        indexed = spec.get("completionMode") == "Indexed"
        completions = spec.get("completions")
        parallelism = int(spec.get("parallelism", 1) if spec.get("parallelism") is not None else 1)
        suspended = bool(spec.get("suspend"))

        active = [p for p in owned if pods.is_active(p)]
        terminating = [
            p
            for p in owned
            if p["metadata"].get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        succeeded_pods = [p for p in owned if _phase(p) == "Succeeded"]
        failed_pods = [p for p in owned if _phase(p) == "Failed"]
        succeeded = max(int(status.get("succeeded") or 0), len(succeeded_pods))
        failed = max(int(status.get("failed") or 0), len(failed_pods))
        done_indexes: set[int] = set()
        if indexed and completions is not None:
            done_indexes = parse_indexes(status.get("completedIndexes"))
            for pod in succeeded_pods:
                index = completion_index(pod)
                if index is not None and index < int(completions):
                    done_indexes.add(index)
            succeeded = len(done_indexes)  # Kubernetes counts indexes, not pods
            status["completedIndexes"] = format_indexes(done_indexes)

        if not suspended and not status.get("startTime"):
            status["startTime"] = fmt_time(now)
        requeue: float | None = None

        # terminal criteria: an earlier reconcile may already have set the interim condition
        failure = _true(status, FAILURE_TARGET)
        success = _true(status, SUCCESS_CRITERIA_MET)
        if failure is None and success is None:
            limit = spec.get("backoffLimit")
            backoff_limit = DEFAULT_BACKOFF_LIMIT if limit is None else int(limit)
            deadline = spec.get("activeDeadlineSeconds")
            started = pods.parse_time(status.get("startTime"))
            if _past_backoff_limit(spec, active, failed, backoff_limit):
                failure = (BACKOFF_LIMIT_EXCEEDED, BACKOFF_MESSAGE)
            elif deadline is not None and started is not None and not suspended:
                remaining = (started - now).total_seconds() + int(deadline)
                if remaining <= 0:
                    failure = (DEADLINE_EXCEEDED, DEADLINE_MESSAGE)
                else:
                    requeue = remaining
            if failure is None and _succeeded(
                indexed, completions, succeeded, done_indexes, active
            ):
                success = (COMPLETIONS_REACHED, "Reached expected number of succeeded pods")
            if failure is not None:
                _set_condition(status, FAILURE_TARGET, failure[0], failure[1], now)
            elif success is not None:
                _set_condition(status, SUCCESS_CRITERIA_MET, success[0], success[1], now)

        if failure is not None or success is not None:
            await self.delete_pods(key, job, active)
            requeue = None
            if not active and not terminating:
                if failure is not None:
                    _set_condition(status, FAILED, failure[0], failure[1], now)
                    await self.recorder.event(job, events.WARNING, failure[0], failure[1])
                else:
                    _set_condition(status, COMPLETE, "", "", now)
                    status["completionTime"] = fmt_time(now)
                    await self.recorder.event(job, events.NORMAL, "Completed", "Job completed")
            active = []
        elif self.expectations.satisfied(key):
            if suspended:
                if active:
                    await self.delete_pods(key, job, active)
                    active = []
                if _true(status, SUSPENDED) is None:
                    _set_condition(status, SUSPENDED, "JobSuspended", "Job suspended", now)
                    status.pop("startTime", None)
                    await self.recorder.event(job, events.NORMAL, "Suspended", "Job suspended")
            else:
                if _true(status, SUSPENDED) is not None:
                    _set_condition(
                        status, SUSPENDED, "JobResumed", "Job resumed", now, value="False"
                    )
                    await self.recorder.event(job, events.NORMAL, "Resumed", "Job resumed")
                active = await self.manage(
                    key, job, active, parallelism, completions, succeeded, done_indexes, indexed
                )

        status["active"] = len(active)
        status["ready"] = sum(1 for p in active if pods.is_ready(p))
        status["succeeded"] = succeeded
        status["failed"] = failed
        status["terminating"] = len(terminating)
        if status != old_status:
            job["status"] = status
            try:
                await self.client.update_status(job)
            except kclient.NotFound:
                return runtime.Result()
        if is_finished(job) and spec.get("ttlSecondsAfterFinished") is not None:
            return await self.handle_ttl(job)
        return runtime.Result(requeue_after=requeue)

    async def manage(
        self,
        key: str,
        job: Obj,
        active: list[Obj],
        parallelism: int,
        completions: Any,
        succeeded: int,
        done_indexes: set[int],
        indexed: bool,
    ) -> list[Obj]:
        """Create or delete pods; returns the active pods as the status should count them."""
        if indexed and completions is not None:
            running = {completion_index(p) for p in active}
            missing = [i for i in range(int(completions)) if i not in done_indexes]
            want = min(parallelism, len(missing))
            to_create = [i for i in missing if i not in running][: max(0, want - len(active))]
            created = []
            for index in to_create[:BURST]:
                pod = await self.create_pod(key, job, index)
                if pod is None:
                    break
                created.append(pod)
            return active + created
        if completions is None:
            want = len(active) if succeeded > 0 else parallelism
        else:
            want = min(parallelism, max(0, int(completions) - succeeded))
        diff = want - len(active)
        if diff > 0:
            created = []
            for _ in range(min(diff, BURST)):
                pod = await self.create_pod(key, job, None)
                if pod is None:
                    break
                created.append(pod)
            return active + created
        if diff < 0:
            victims = sorted(active, key=pods.deletion_rank)[: min(-diff, BURST)]
            await self.delete_pods(key, job, victims)
            return [p for p in active if p not in victims]
        return active

    async def create_pod(self, key: str, job: Obj, index: int | None) -> Obj | None:
        return await self.pod_control.create(key, job, pod_from_template(job, index))

    async def delete_pods(self, key: str, job: Obj, victims: list[Obj]) -> None:
        for pod in victims:
            await self.pod_control.delete(key, job, pod)

    # -- ttlSecondsAfterFinished -------------------------------------------------------

    async def handle_ttl(self, job: Obj) -> runtime.Result:
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None or job["metadata"].get("deletionTimestamp"):
            return runtime.Result()
        status = job.get("status") or {}
        finished = pods.parse_time(status.get("completionTime"))
        cond = condition(job, COMPLETE) or condition(job, FAILED) or {}
        finished = finished or pods.parse_time(cond.get("lastTransitionTime"))
        if finished is None:
            finished = self.clock.now()
        left = (finished - self.clock.now()).total_seconds() + int(ttl)
        if left > 0:
            return runtime.Result(requeue_after=left)
        meta = job["metadata"]
        try:
            await self.client.delete(
                API_VERSION,
                KIND,
                meta["name"],
                namespace=meta["namespace"],
                propagation_policy="Foreground",
            )
        except kclient.NotFound:
            pass
        log.info("%s: deleted %ss after finishing", kclient.key_of(job), ttl)
        return runtime.Result()


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def _true(status: Obj, type_: str) -> tuple[str, str] | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == type_ and cond.get("status") == "True":
            return str(cond.get("reason") or ""), str(cond.get("message") or "")
    return None


def _set_condition(
    status: Obj, type_: str, reason: str, message: str, now: datetime.datetime, value: str = "True"
) -> None:
    conditions: list[Obj] = status.setdefault("conditions", [])
    stamp = fmt_time(now)
    for cond in conditions:
        if cond.get("type") == type_:
            if cond.get("status") != value:
                cond["lastTransitionTime"] = stamp
            cond.update(status=value, reason=reason, message=message, lastProbeTime=stamp)
            return
    conditions.append(
        {
            "type": type_,
            "status": value,
            "reason": reason,
            "message": message,
            "lastProbeTime": stamp,
            "lastTransitionTime": stamp,
        }
    )


def _restarts(pod: Obj) -> int:
    status = pod.get("status") or {}
    statuses = (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or [])
    return sum(int(s.get("restartCount") or 0) for s in statuses)


def _past_backoff_limit(spec: Obj, active: list[Obj], failed: int, limit: int) -> bool:
    if failed > limit:
        return True
    policy = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy")
    if policy != "OnFailure":
        return False
    restarts = sum(_restarts(p) for p in active)
    return restarts > 0 if limit == 0 else restarts + failed >= limit


def _succeeded(
    indexed: bool, completions: Any, succeeded: int, done: set[int], active: list[Obj]
) -> bool:
    if completions is None:
        return succeeded > 0 and not active
    if indexed:
        return all(i in done for i in range(int(completions)))
    return succeeded >= int(completions)


def pod_from_template(job: Obj, index: int | None = None) -> Obj:
    """A new pod for ``job``: the template, the Job labels, the controllerRef, and for
    Indexed Jobs the completion index (annotation, label, name, hostname)."""
    template = copy.deepcopy((job.get("spec") or {}).get("template") or {})
    meta = template.get("metadata") or {}
    job_meta = job["metadata"]
    name = job_meta["name"]
    pod_labels = dict(meta.get("labels") or {})
    pod_labels.setdefault(CONTROLLER_UID_LABEL, job_meta["uid"])
    pod_labels.setdefault(LEGACY_CONTROLLER_UID_LABEL, job_meta["uid"])
    pod_labels.setdefault(JOB_NAME_LABEL, name)
    pod_labels.setdefault(LEGACY_JOB_NAME_LABEL, name)
    annotations = dict(meta.get("annotations") or {})
    pod_spec = dict(template.get("spec") or {})
    generate_name = f"{name}-"
    if index is not None:
        annotations[COMPLETION_INDEX] = str(index)
        pod_labels[COMPLETION_INDEX] = str(index)
        generate_name = f"{name}-{index}-"
        pod_spec.setdefault("hostname", f"{name}-{index}")
    pod_meta: Obj = {
        "generateName": generate_name,
        "namespace": job_meta["namespace"],
        "labels": pod_labels,
        "ownerReferences": [pods.owner_reference(job)],
    }
    if annotations:
        pod_meta["annotations"] = annotations
    if meta.get("finalizers"):
        pod_meta["finalizers"] = meta["finalizers"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec}
