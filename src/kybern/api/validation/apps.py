"""Rules for apps/v1: Deployment, ReplicaSet, StatefulSet, DaemonSet, ControllerRevision.

The shared core: a non-empty selector that matches the template's labels, a pod template
that restarts Always, non-negative counts, and a selector that never changes after create.
"""

from __future__ import annotations

from typing import Any

from kybern.api import errors
from kybern.api.validation import common, core, podspec

DEPLOYMENT_STRATEGIES = ("Recreate", "RollingUpdate")
SET_UPDATE_STRATEGIES = ("RollingUpdate", "OnDelete")
POD_MANAGEMENT_POLICIES = ("OrderedReady", "Parallel")
RETENTION_POLICIES = ("Retain", "Delete")
STATEFULSET_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


def _spec(obj: common.Obj) -> common.Obj:
    return common.as_dict(obj.get("spec"))


def selector_and_template(spec: common.Obj, kind_word: str) -> common.Causes:
    """Selector present, non-empty, valid and matching the (valid) template's labels."""
    selector, template = spec.get("selector"), spec.get("template")
    out: common.Causes = []
    if selector is None:
        out.append(common.required("spec.selector"))
    else:
        out += common.label_selector(selector, "spec.selector")
        if common.selector_empty(selector):
            detail = f"empty selector is invalid for {kind_word}"
            out.append(common.invalid("spec.selector", selector, detail))
    out += podspec.validate_template(template, "spec.template")
    if isinstance(template, dict):
        labels = common.as_dict(common.as_dict(template.get("metadata")).get("labels"))
        selective = selector is not None and not common.selector_empty(selector)
        if selective and not common.selector_matches(selector, labels):
            detail = "`selector` does not match template `labels`"
            out.append(common.invalid("spec.template.metadata.labels", labels, detail))
        out += core.restart_policy_always(template, "spec.template")
    return out


def _counts(spec: common.Obj, *fields: str) -> common.Causes:
    out: common.Causes = []
    for field in fields:
        out += common.non_negative(spec, field, "spec")
    return out


def _status_counts(
    obj: common.Obj, fields: tuple[str, ...], capped: tuple[str, ...]
) -> common.Causes:
    status = common.as_dict(obj.get("status"))
    out: common.Causes = []
    for field in fields:
        out += common.non_negative(status, field, "status")
    replicas = status.get("replicas")
    for field in capped:
        value = status.get(field)
        if isinstance(value, int) and isinstance(replicas, int) and value > replicas:
            detail = "cannot be greater than status.replicas"
            out.append(common.invalid(f"status.{field}", value, detail))
    return out


_STATUS_FIELDS = ("replicas", "readyReplicas", "availableReplicas", "observedGeneration")


# -- Deployment ----------------------------------------------------------------------------


def deployment_create(obj: common.Obj) -> common.Causes:
    spec = _spec(obj)
    out = _counts(spec, "replicas", "minReadySeconds", "revisionHistoryLimit")
    out += _counts(spec, "progressDeadlineSeconds")
    out += selector_and_template(spec, "deployment")
    out += _deployment_strategy(common.as_dict(spec.get("strategy")))
    deadline, min_ready = spec.get("progressDeadlineSeconds"), spec.get("minReadySeconds") or 0
    if isinstance(deadline, int) and isinstance(min_ready, int) and deadline <= min_ready:
        detail = "must be greater than minReadySeconds"
        out.append(common.invalid("spec.progressDeadlineSeconds", deadline, detail))
    return out


def _deployment_strategy(strategy: common.Obj) -> common.Causes:
    strategy_type = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    if strategy_type is None:
        return []
    if strategy_type == "Recreate":
        if rolling is not None:
            detail = "may not be specified when strategy `type` is 'Recreate'"
            return [errors.forbidden("spec.strategy.rollingUpdate", detail)]
        return []
    if strategy_type == "RollingUpdate":
        return rolling_update(common.as_dict(rolling), "spec.strategy.rollingUpdate")
    return [errors.not_supported("spec.strategy.type", strategy_type, list(DEPLOYMENT_STRATEGIES))]


def rolling_update(rolling: common.Obj, path: str) -> common.Causes:
    """maxUnavailable / maxSurge: int-or-percent, not both 0, maxUnavailable <= 100%."""
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    out = common.int_or_percent(unavailable, f"{path}.maxUnavailable")
    out += common.int_or_percent(surge, f"{path}.maxSurge")
    if _is_zero(unavailable) and _is_zero(surge):
        detail = "may not be 0 when `maxSurge` is 0"
        out.append(common.invalid(f"{path}.maxUnavailable", unavailable, detail))
    return out + common.percent_at_most_100(unavailable, f"{path}.maxUnavailable")


def _is_zero(value: Any) -> bool:
    return value in (0, "0%")


def deployment_status(new: common.Obj, old: common.Obj) -> common.Causes:
    fields = (*_STATUS_FIELDS, "updatedReplicas", "unavailableReplicas", "collisionCount")
    out = _status_counts(new, fields, ("updatedReplicas", "readyReplicas", "availableReplicas"))
    status = common.as_dict(new.get("status"))
    available, ready = status.get("availableReplicas"), status.get("readyReplicas")
    if isinstance(available, int) and isinstance(ready, int) and available > ready:
        detail = "cannot be greater than readyReplicas"
        out.append(common.invalid("status.availableReplicas", available, detail))
    return out


# -- ReplicaSet ----------------------------------------------------------------------------


def replica_set_create(obj: common.Obj) -> common.Causes:
    spec = _spec(obj)
    out = _counts(spec, "replicas", "minReadySeconds")
    return out + selector_and_template(spec, "deployment")


def replica_set_status(new: common.Obj, old: common.Obj) -> common.Causes:
    fields = (*_STATUS_FIELDS, "fullyLabeledReplicas")
    capped = ("fullyLabeledReplicas", "readyReplicas", "availableReplicas")
    return _status_counts(new, fields, capped)


# -- StatefulSet ---------------------------------------------------------------------------


def stateful_set_create(obj: common.Obj) -> common.Causes:
    spec = _spec(obj)
    out = _counts(spec, "replicas", "minReadySeconds", "revisionHistoryLimit")
    out += selector_and_template(spec, "statefulset")
    out += common.enum(spec, "podManagementPolicy", "spec", POD_MANAGEMENT_POLICIES)
    strategy = common.as_dict(spec.get("updateStrategy"))
    out += common.enum(strategy, "type", "spec.updateStrategy", SET_UPDATE_STRATEGIES)
    rolling = common.as_dict(strategy.get("rollingUpdate"))
    out += common.non_negative(rolling, "partition", "spec.updateStrategy.rollingUpdate")
    retention = common.as_dict(spec.get("persistentVolumeClaimRetentionPolicy"))
    for field in ("whenDeleted", "whenScaled"):
        path = "spec.persistentVolumeClaimRetentionPolicy"
        out += common.enum(retention, field, path, RETENTION_POLICIES)
    ordinals = common.as_dict(spec.get("ordinals"))
    return out + common.non_negative(ordinals, "start", "spec.ordinals")


def stateful_set_update(new: common.Obj, old: common.Obj) -> common.Causes:
    new_spec, old_spec = dict(_spec(new)), dict(_spec(old))
    for field in STATEFULSET_MUTABLE:
        new_spec.pop(field, None)
        old_spec.pop(field, None)
    if new_spec == old_spec:
        return []
    shown = ", ".join(f"'{f}'" for f in STATEFULSET_MUTABLE[:-1])
    detail = (
        f"updates to statefulset spec for fields other than {shown} and "
        f"'{STATEFULSET_MUTABLE[-1]}' are forbidden"
    )
    return [errors.forbidden("spec", detail)]


def stateful_set_status(new: common.Obj, old: common.Obj) -> common.Causes:
    fields = (*_STATUS_FIELDS, "currentReplicas", "updatedReplicas", "collisionCount")
    capped = ("readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas")
    return _status_counts(new, fields, capped)


# -- DaemonSet, ControllerRevision ---------------------------------------------------------


def daemon_set_create(obj: common.Obj) -> common.Causes:
    spec = _spec(obj)
    out = _counts(spec, "minReadySeconds", "revisionHistoryLimit")
    out += selector_and_template(spec, "daemonset")
    strategy = common.as_dict(spec.get("updateStrategy"))
    out += common.enum(strategy, "type", "spec.updateStrategy", SET_UPDATE_STRATEGIES)
    if strategy.get("type") == "RollingUpdate" and strategy.get("rollingUpdate") is not None:
        rolling = common.as_dict(strategy.get("rollingUpdate"))
        out += rolling_update(rolling, "spec.updateStrategy.rollingUpdate")
    return out


def daemon_set_status(new: common.Obj, old: common.Obj) -> common.Causes:
    status = common.as_dict(new.get("status"))
    out: common.Causes = []
    for field in (
        "currentNumberScheduled",
        "desiredNumberScheduled",
        "numberMisscheduled",
        "numberReady",
        "numberAvailable",
        "numberUnavailable",
        "updatedNumberScheduled",
        "observedGeneration",
        "collisionCount",
    ):
        out += common.non_negative(status, field, "status")
    return out


def controller_revision_create(obj: common.Obj) -> common.Causes:
    return common.non_negative(obj, "revision", "")


def controller_revision_update(new: common.Obj, old: common.Obj) -> common.Causes:
    return common.immutable(new.get("data"), old.get("data"), "data")


RULES: dict[str, common.KindRules] = {
    "io.k8s.api.apps.v1.Deployment": common.KindRules(
        create=deployment_create,
        update=common.spec_immutable("selector"),
        status=deployment_status,
    ),
    "io.k8s.api.apps.v1.ReplicaSet": common.KindRules(
        create=replica_set_create,
        update=common.spec_immutable("selector"),
        status=replica_set_status,
    ),
    "io.k8s.api.apps.v1.StatefulSet": common.KindRules(
        create=stateful_set_create, update=stateful_set_update, status=stateful_set_status
    ),
    "io.k8s.api.apps.v1.DaemonSet": common.KindRules(
        create=daemon_set_create,
        update=common.spec_immutable("selector"),
        status=daemon_set_status,
    ),
    "io.k8s.api.apps.v1.ControllerRevision": common.KindRules(
        create=controller_revision_create, update=controller_revision_update
    ),
}
