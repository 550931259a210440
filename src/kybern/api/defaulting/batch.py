"""Defaults for the batch group: Job and CronJob.

Source: Kubernetes' ``pkg/apis/batch/v1/defaults.go`` plus the Job strategy's selector
generation on create. A CronJob's ``jobTemplate.spec`` gets pod-template defaults only:
Kubernetes does not run the Job defaults (backoffLimit, ...) on templates.
"""

from __future__ import annotations

from kybern.api.defaulting import podspec
from kybern.api.defaulting._util import (
    Obj,
    child,
    ensure,
    items,
    path,
    setdefault,
    setdefault_empty,
)

MAX_INT32 = 2**31 - 1
CONTROLLER_UID_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")
JOB_NAME_LABELS = ("job-name", "batch.kubernetes.io/job-name")


def job(obj: Obj, create: bool) -> None:
    ensure(obj, "status")
    spec = child(obj, "spec")
    if spec is None:
        return
    template_had_labels = path(spec, "template", "metadata", "labels") is not None
    if create:
        _generate_selector(obj, spec)
    _job_spec(spec)
    labels = path(spec, "template", "metadata", "labels")
    metadata = ensure(obj, "metadata")
    copy_labels = template_had_labels and labels is not None and metadata is not None
    if copy_labels and metadata is not None and labels is not None and not metadata.get("labels"):
        metadata["labels"] = dict(labels)
    podspec.pod_template(child(spec, "template"))


def _job_spec(spec: Obj) -> None:
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    setdefault(spec, "parallelism", 1)
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    setdefault(spec, "completionMode", "NonIndexed")
    setdefault(spec, "suspend", False)
    failure_policy = child(spec, "podFailurePolicy")
    for rule in items(failure_policy, "rules"):
        for pattern in items(rule, "onPodConditions"):
            setdefault_empty(pattern, "status", "True")
    replacement = "Failed" if failure_policy is not None else "TerminatingOrFailed"
    setdefault(spec, "podReplacementPolicy", replacement)
    setdefault(spec, "manualSelector", False)


def _generate_selector(obj: Obj, spec: Obj) -> None:
    """The Job strategy's selector: needs metadata.uid and name, so runs only on create."""
    metadata = child(obj, "metadata") or {}
    uid, name = metadata.get("uid"), metadata.get("name")
    if spec.get("manualSelector") is True or not isinstance(uid, str) or not uid:
        return
    template = ensure(spec, "template")
    template_meta = ensure(template, "metadata") if template is not None else None
    labels = ensure(template_meta, "labels") if template_meta is not None else None
    selector = ensure(spec, "selector")
    match_labels = ensure(selector, "matchLabels") if selector is not None else None
    if labels is None or match_labels is None:
        return
    for key in JOB_NAME_LABELS:
        if isinstance(name, str):
            labels.setdefault(key, name)
    for key in CONTROLLER_UID_LABELS:
        labels.setdefault(key, uid)
    match_labels.setdefault(CONTROLLER_UID_LABELS[1], uid)


def cron_job(obj: Obj, create: bool) -> None:
    ensure(obj, "status")
    spec = child(obj, "spec")
    if spec is None:
        return
    setdefault_empty(spec, "concurrencyPolicy", "Allow")
    setdefault(spec, "suspend", False)
    setdefault(spec, "successfulJobsHistoryLimit", 3)
    setdefault(spec, "failedJobsHistoryLimit", 1)
    podspec.pod_template(path(spec, "jobTemplate", "spec", "template"))


DEFAULTERS = {
    ("batch", "Job"): job,
    ("batch", "CronJob"): cron_job,
}
