"""Per-kind rules for apps/v1 and batch/v1, and the cron schedule check."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kybern.api import defaulting, kinds, validation
from kybern.api.validation import common, cron

from .test_validation_valid import sample


def info(api_version: str, kind: str) -> kinds.ResourceInfo:
    found = kinds.for_kind(api_version, kind)
    assert found is not None
    return found


DEPLOYMENT = info("apps/v1", "Deployment")
REPLICA_SET = info("apps/v1", "ReplicaSet")
STATEFUL_SET = info("apps/v1", "StatefulSet")
DAEMON_SET = info("apps/v1", "DaemonSet")
JOB = info("batch/v1", "Job")
CRON_JOB = info("batch/v1", "CronJob")


def create(kind_info: kinds.ResourceInfo, obj: dict[str, Any]) -> list[str]:
    return [c.message for c in validation.validate_create(kind_info, obj)]


def update(kind_info: kinds.ResourceInfo, new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    return [c.message for c in validation.validate_update(kind_info, new, old)]


def status(kind_info: kinds.ResourceInfo, new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    return [c.message for c in validation.validate_status_update(kind_info, new, old)]


def defaulted(kind_info: kinds.ResourceInfo) -> dict[str, Any]:
    obj = sample(kind_info)
    defaulting.default(kind_info.group, kind_info.kind, obj)
    return obj


# -- Deployment ----------------------------------------------------------------------------


def test_selector_must_match_template_labels() -> None:
    obj = defaulted(DEPLOYMENT)
    obj["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    assert create(DEPLOYMENT, obj) == [
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
        "`selector` does not match template `labels`"
    ]


def test_selector_match_expressions() -> None:
    obj = defaulted(DEPLOYMENT)
    obj["spec"]["selector"] = {
        "matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]
    }
    assert create(DEPLOYMENT, obj) == []
    obj["spec"]["selector"]["matchExpressions"][0]["operator"] = "NotIn"
    assert create(DEPLOYMENT, obj)[0].endswith("`selector` does not match template `labels`")
    obj["spec"]["selector"]["matchExpressions"] = [{"key": "app", "operator": "Near"}]
    assert (
        'spec.selector.matchExpressions[0].operator: Unsupported value: "Near": supported values: '
        '"In", "NotIn", "Exists", "DoesNotExist"'
    ) in create(DEPLOYMENT, obj)


def test_selector_required_and_not_empty() -> None:
    obj = defaulted(DEPLOYMENT)
    del obj["spec"]["selector"]
    assert create(DEPLOYMENT, obj) == ["spec.selector: Required value"]
    obj["spec"]["selector"] = {}
    assert create(DEPLOYMENT, obj) == [
        "spec.selector: Invalid value: map[string]string{}: empty selector is invalid for deployment"
    ]


def test_deployment_counts_and_template_rules() -> None:
    obj = defaulted(DEPLOYMENT)
    obj["spec"]["replicas"] = -1
    obj["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    obj["spec"]["progressDeadlineSeconds"] = 5
    obj["spec"]["minReadySeconds"] = 10
    assert create(DEPLOYMENT, obj) == [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        'spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always"',
        "spec.progressDeadlineSeconds: Invalid value: 5: must be greater than minReadySeconds",
    ]


def test_template_containers_are_validated() -> None:
    obj = defaulted(DEPLOYMENT)
    del obj["spec"]["template"]["spec"]["containers"][0]["image"]
    assert create(DEPLOYMENT, obj) == ["spec.template.spec.containers[0].image: Required value"]


def test_deployment_strategy() -> None:
    obj = defaulted(DEPLOYMENT)
    obj["spec"]["strategy"] = {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}
    assert create(DEPLOYMENT, obj) == [
        "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"
    ]
    obj["spec"]["strategy"] = {"type": "Blue"}
    assert create(DEPLOYMENT, obj) == [
        'spec.strategy.type: Unsupported value: "Blue": supported values: "Recreate", "RollingUpdate"'
    ]
    obj["spec"]["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"},
    }
    assert create(DEPLOYMENT, obj) == [
        'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "0%": may not be 0 when `maxSurge` is 0'
    ]
    obj["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": "x", "maxUnavailable": "150%"}
    causes = create(DEPLOYMENT, obj)
    assert causes[0].startswith(
        'spec.strategy.rollingUpdate.maxSurge: Invalid value: "x": a valid percent string'
    )
    assert causes[1] == (
        'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "150%": must not be greater than 100%'
    )


def test_deployment_selector_immutable() -> None:
    old = defaulted(DEPLOYMENT)
    new = copy.deepcopy(old)
    new["spec"]["selector"]["matchLabels"]["tier"] = "x"
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    assert update(DEPLOYMENT, new, old) == [
        'spec.selector: Invalid value: {"matchLabels":{"app":"web","tier":"x"}}: field is immutable'
    ]
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 10
    assert update(DEPLOYMENT, scaled, old) == []


def test_deployment_status_counts() -> None:
    old = defaulted(DEPLOYMENT)
    new = copy.deepcopy(old)
    new["status"] = {
        "replicas": 2,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "updatedReplicas": -1,
    }
    assert status(DEPLOYMENT, new, old) == [
        "status.updatedReplicas: Invalid value: -1: must be greater than or equal to 0",
        "status.readyReplicas: Invalid value: 3: cannot be greater than status.replicas",
        "status.availableReplicas: Invalid value: 3: cannot be greater than status.replicas",
    ]
    new["status"] = {"replicas": 3, "readyReplicas": 1, "availableReplicas": 2}
    assert status(DEPLOYMENT, new, old) == [
        "status.availableReplicas: Invalid value: 2: cannot be greater than readyReplicas"
    ]


def test_status_update_reports_missing_condition_fields() -> None:
    old = defaulted(DEPLOYMENT)
    new = copy.deepcopy(old)
    new["status"] = {"conditions": [{"type": "Available"}]}
    assert status(DEPLOYMENT, new, old) == ["status.conditions[0].status: Required value"]


# -- ReplicaSet, StatefulSet, DaemonSet ----------------------------------------------------


def test_replica_set_empty_selector_message() -> None:
    obj = defaulted(REPLICA_SET)
    obj["spec"]["selector"] = {"matchLabels": {}}
    assert create(REPLICA_SET, obj) == [
        'spec.selector: Invalid value: {"matchLabels":{}}: empty selector is invalid for deployment'
    ]


def test_stateful_set_rules() -> None:
    obj = defaulted(STATEFUL_SET)
    obj["spec"]["podManagementPolicy"] = "Random"
    obj["spec"]["updateStrategy"] = {"type": "Rolling"}
    assert create(STATEFUL_SET, obj) == [
        'spec.podManagementPolicy: Unsupported value: "Random": supported values: "OrderedReady", "Parallel"',
        'spec.updateStrategy.type: Unsupported value: "Rolling": supported values: "RollingUpdate", "OnDelete"',
    ]


def test_stateful_set_update_limits_mutable_fields() -> None:
    old = defaulted(STATEFUL_SET)
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    assert update(STATEFUL_SET, new, old) == []
    new["spec"]["serviceName"] = "other"
    [message] = update(STATEFUL_SET, new, old)
    assert message.startswith(
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', "
    )
    assert message.endswith("and 'minReadySeconds' are forbidden")


def test_daemon_set_rules() -> None:
    obj = defaulted(DAEMON_SET)
    obj["spec"]["selector"] = {"matchLabels": {}}
    assert create(DAEMON_SET, obj) == [
        'spec.selector: Invalid value: {"matchLabels":{}}: empty selector is invalid for daemonset'
    ]
    old = defaulted(DAEMON_SET)
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "web", "x": "y"}}
    new["spec"]["template"]["metadata"]["labels"]["x"] = "y"
    assert update(DAEMON_SET, new, old)[0].endswith("field is immutable")


# -- Job, CronJob --------------------------------------------------------------------------


def test_job_restart_policy() -> None:
    obj = sample(JOB)
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert create(JOB, obj) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"'
    ]
    del obj["spec"]["template"]["spec"]["restartPolicy"]
    assert create(JOB, obj) == ["spec.template.spec.restartPolicy: Required value"]


def test_job_counts_and_completion_mode() -> None:
    obj = defaulted(JOB)
    obj["spec"].update(parallelism=-1, completionMode="Indexed")
    obj["spec"].pop("completions", None)
    assert create(JOB, obj) == [
        "spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
        "spec.completions: Required value: when completion mode is Indexed",
    ]


def test_job_defaulted_selector_is_valid_and_immutable() -> None:
    old = defaulted(JOB)
    assert create(JOB, old) == []
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "other"
    assert update(JOB, new, old) == [
        "spec.template: Invalid value: "
        + common.show(new["spec"]["template"])
        + ": field is immutable"
    ]
    suspended = copy.deepcopy(old)
    suspended["spec"]["suspend"] = True
    changed = copy.deepcopy(suspended)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "other"
    assert update(JOB, changed, suspended) == []


def test_cron_job_schedule_and_name() -> None:
    obj = defaulted(CRON_JOB)
    obj["spec"]["schedule"] = "61 * * * *"
    obj["metadata"]["name"] = "a" * 53
    assert create(CRON_JOB, obj) == [
        f'metadata.name: Invalid value: "{"a" * 53}": must be no more than 52 characters',
        'spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61',
    ]
    obj = defaulted(CRON_JOB)
    obj["spec"]["schedule"] = "TZ=UTC 0 * * * *"
    assert create(CRON_JOB, obj) == [
        'spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, '
        "use timeZone field instead"
    ]


def test_cron_job_template_is_a_job() -> None:
    obj = defaulted(CRON_JOB)
    obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    obj["spec"]["concurrencyPolicy"] = "Sometimes"
    assert create(CRON_JOB, obj) == [
        'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"',
        'spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: "Always": '
        'supported values: "OnFailure", "Never"',
    ]


@pytest.mark.parametrize(
    "schedule",
    [
        "*/5 * * * *",
        "0 0 * * MON-FRI",
        "0 12 1,15 jan-jun ?",
        "@hourly",
        "@daily",
        "@every 1h30m",
        "5-10/2 0-23 1-31 1-12 0-6",
    ],
)
def test_valid_schedules(schedule: str) -> None:
    assert cron.parse_error(schedule) is None


@pytest.mark.parametrize(
    ("schedule", "error"),
    [
        ("", "empty spec string"),
        ("bogus", "expected exactly 5 fields, found 1: [bogus]"),
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        ("* 24 * * *", "end of range (24) above maximum (23): 24"),
        ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
        ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
        ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ],
)
def test_invalid_schedules(schedule: str, error: str) -> None:
    assert cron.parse_error(schedule) == error
