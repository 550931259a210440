"""Rules for HorizontalPodAutoscalers, autoscaling/v1 and autoscaling/v2 shapes."""

from __future__ import annotations

from typing import Any

from kybern.api import errors
from kybern.api.validation import common, names

METRIC_TYPES = ("ContainerResource", "External", "Object", "Pods", "Resource")
_SOURCE_FIELD = {
    "Object": "object",
    "Pods": "pods",
    "Resource": "resource",
    "ContainerResource": "containerResource",
    "External": "external",
}
TARGET_TYPES = ("AverageValue", "Utilization", "Value")
SELECT_POLICIES = ("Disabled", "Max", "Min")
SCALING_POLICY_TYPES = ("Percent", "Pods")


def _common_spec(spec: common.Obj) -> common.Causes:
    out = _scale_target(common.as_dict(spec.get("scaleTargetRef")), "spec.scaleTargetRef")
    min_replicas, max_replicas = spec.get("minReplicas"), spec.get("maxReplicas")
    if isinstance(min_replicas, int) and min_replicas < 1:
        detail = "must be greater than or equal to 1"
        out.append(common.invalid("spec.minReplicas", min_replicas, detail))
    if isinstance(max_replicas, int) and max_replicas < 1:
        out.append(common.invalid("spec.maxReplicas", max_replicas, common.POSITIVE))
    if (
        isinstance(min_replicas, int)
        and isinstance(max_replicas, int)
        and min_replicas > max_replicas
    ):
        detail = "must be greater than or equal to `minReplicas`"
        out.append(common.invalid("spec.maxReplicas", max_replicas, detail))
    return out


def _scale_target(ref: common.Obj, path: str) -> common.Causes:
    out: common.Causes = []
    for field in ("kind", "name"):
        value = ref.get(field) or ""
        if not value:
            out.append(common.required(f"{path}.{field}"))
        else:
            out += common.messages(f"{path}.{field}", value, names.is_path_segment_name(value))
    return out


def v1_create(obj: common.Obj) -> common.Causes:
    spec = common.as_dict(obj.get("spec"))
    out = _common_spec(spec)
    return out + common.positive(spec, "targetCPUUtilizationPercentage", "spec")


def v2_create(obj: common.Obj) -> common.Causes:
    spec = common.as_dict(obj.get("spec"))
    out = _common_spec(spec)
    for i, metric in common.dicts(spec.get("metrics")):
        out += _metric(metric, f"spec.metrics[{i}]")
    behavior = common.as_dict(spec.get("behavior"))
    for direction in ("scaleUp", "scaleDown"):
        if behavior.get(direction) is not None:
            out += _scaling_rules(common.as_dict(behavior[direction]), f"spec.behavior.{direction}")
    return out


def _metric(metric: common.Obj, path: str) -> common.Causes:
    metric_type = metric.get("type") or ""
    if not metric_type:
        return [common.required(f"{path}.type", "must specify a metric source type")]
    if metric_type not in METRIC_TYPES:
        return [errors.not_supported(f"{path}.type", metric_type, list(METRIC_TYPES))]
    present = [t for t, f in _SOURCE_FIELD.items() if metric.get(f) is not None]
    source_field = _SOURCE_FIELD[metric_type]
    if metric_type not in present:
        detail = "must populate information for the given metric source"
        return [errors.forbidden(f"{path}.{source_field}", detail)]
    if len(present) > 1:
        return [errors.forbidden(path, "must populate the given metric source only")]
    source = common.as_dict(metric.get(source_field))
    out: common.Causes = []
    if metric_type in ("Resource", "ContainerResource") and not source.get("name"):
        out.append(common.required(f"{path}.{source_field}.name"))
    target = source.get("target")
    if target is not None:
        out += _target(common.as_dict(target), f"{path}.{source_field}.target")
    return out


def _target(target: common.Obj, path: str) -> common.Causes:
    target_type = target.get("type")
    out = common.enum(target, "type", path, TARGET_TYPES, required_=True)
    field = {"Utilization": "averageUtilization", "Value": "value", "AverageValue": "averageValue"}
    wanted = field.get(str(target_type))
    if wanted and target.get(wanted) is None:
        out.append(
            common.required(f"{path}.{wanted}", f"must set {wanted} when type is {target_type}")
        )
    return out + common.positive(target, "averageUtilization", path)


def _scaling_rules(rules: common.Obj, path: str) -> common.Causes:
    out = common.enum(rules, "selectPolicy", path, SELECT_POLICIES)
    window = rules.get("stabilizationWindowSeconds")
    if isinstance(window, int) and not 0 <= window <= 3600:
        detail = "must be less than or equal to 3600" if window > 0 else common.NON_NEGATIVE
        out.append(common.invalid(f"{path}.stabilizationWindowSeconds", window, detail))
    for i, policy in common.dicts(rules.get("policies")):
        out += _scaling_policy(policy, f"{path}.policies[{i}]")
    return out


def _scaling_policy(policy: common.Obj, path: str) -> common.Causes:
    out = common.enum(policy, "type", path, SCALING_POLICY_TYPES, required_=True)
    out += common.positive(policy, "value", path)
    period: Any = policy.get("periodSeconds")
    if isinstance(period, int) and not 1 <= period <= 1800:
        detail = "must be less than or equal to 1800" if period > 0 else common.POSITIVE
        out.append(common.invalid(f"{path}.periodSeconds", period, detail))
    return out


def status(new: common.Obj, old: common.Obj) -> common.Causes:
    current = common.as_dict(new.get("status"))
    out = common.non_negative(current, "currentReplicas", "status")
    return out + common.non_negative(current, "desiredReplicas", "status")


RULES: dict[str, common.KindRules] = {
    "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler": common.KindRules(
        create=v1_create, status=status
    ),
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler": common.KindRules(
        create=v2_create, status=status
    ),
}
