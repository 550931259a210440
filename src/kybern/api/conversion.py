"""Conversion between the served versions of one resource.

Two resources have versions with different shapes:

- HorizontalPodAutoscaler, autoscaling/v1 <-> autoscaling/v2 (stored as v2).
  ``targetCPUUtilizationPercentage`` is a Resource ``cpu`` metric with a Utilization target;
  ``currentCPUUtilizationPercentage`` its current value. Like Kubernetes, v1 keeps what it
  cannot represent in annotations so a v1 round trip loses nothing: the other metrics in
  ``autoscaling.alpha.kubernetes.io/metrics``, ``behavior`` in ``.../behavior``, the other
  current metrics in ``.../current-metrics`` and the status conditions in ``.../conditions``
  (JSON, in autoscaling/v2 shapes).
- Event, core/v1 <-> events.k8s.io/v1 (stored as core/v1): the same object under other
  field names, following Kubernetes' events/v1 conversion: involvedObject<->regarding,
  message<->note, source<->deprecatedSource, firstTimestamp/lastTimestamp/count <->
  deprecatedFirstTimestamp/deprecatedLastTimestamp/deprecatedCount,
  reportingComponent<->reportingController; reason, type, action, related, series,
  eventTime and reportingInstance keep their names. (``source.component`` is not copied into
  ``reportingController``: Kubernetes keeps the two apart, and doing so would break round trips.)

Every other kind converts by setting ``apiVersion``. The input is never modified.
"""

from __future__ import annotations

import copy
import json
from typing import Any

Obj = dict[str, Any]

HPA_V1, HPA_V2 = "autoscaling/v1", "autoscaling/v2"
EVENT_CORE, EVENT_EVENTS = "v1", "events.k8s.io/v1"
METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
BEHAVIOR_ANNOTATION = "autoscaling.alpha.kubernetes.io/behavior"
CURRENT_METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
_SPEC_KEYS = ("scaleTargetRef", "minReplicas", "maxReplicas")
_HPA_ANNOTATIONS = (
    METRICS_ANNOTATION,
    BEHAVIOR_ANNOTATION,
    CURRENT_METRICS_ANNOTATION,
    CONDITIONS_ANNOTATION,
)

# core/v1 field -> events.k8s.io/v1 field
EVENT_RENAMES = {
    "involvedObject": "regarding",
    "message": "note",
    "source": "deprecatedSource",
    "firstTimestamp": "deprecatedFirstTimestamp",
    "lastTimestamp": "deprecatedLastTimestamp",
    "count": "deprecatedCount",
    "reportingComponent": "reportingController",
}
_EVENT_RENAMES_BACK = {v: k for k, v in EVENT_RENAMES.items()}


def convert(obj: Obj, to_api_version: str) -> Obj:
    """``obj`` as ``to_api_version`` (a new dict; ``obj`` is left alone)."""
    source = obj.get("apiVersion")
    kind = obj.get("kind")
    if source == to_api_version:
        return dict(obj)
    if kind == "HorizontalPodAutoscaler":
        if source == HPA_V1 and to_api_version == HPA_V2:
            return hpa_v1_to_v2(obj)
        if source == HPA_V2 and to_api_version == HPA_V1:
            return hpa_v2_to_v1(obj)
    if kind == "Event":
        if source == EVENT_CORE and to_api_version == EVENT_EVENTS:
            return _rename(obj, EVENT_RENAMES, to_api_version)
        if source == EVENT_EVENTS and to_api_version == EVENT_CORE:
            return _rename(obj, _EVENT_RENAMES_BACK, to_api_version)
    return {**obj, "apiVersion": to_api_version}


def _rename(obj: Obj, renames: dict[str, str], api_version: str) -> Obj:
    out = {renames.get(k, k): v for k, v in obj.items()}
    out["apiVersion"] = api_version
    return out


# -- HPA v2 -> v1 --------------------------------------------------------------------------


def _is_cpu_utilization(metric: Any) -> bool:
    if not isinstance(metric, dict) or metric.get("type") != "Resource":
        return False
    resource = metric.get("resource") or {}
    target = resource.get("target") or {}
    return bool(
        resource.get("name") == "cpu"
        and target.get("type") == "Utilization"
        and target.get("averageUtilization") is not None
    )


def _is_cpu_current(metric: Any) -> bool:
    if not isinstance(metric, dict) or metric.get("type") != "Resource":
        return False
    resource = metric.get("resource") or {}
    current = resource.get("current") or {}
    return resource.get("name") == "cpu" and current.get("averageUtilization") is not None


def hpa_v2_to_v1(obj: Obj) -> Obj:
    out: Obj = {"apiVersion": HPA_V1, "kind": obj.get("kind", "HorizontalPodAutoscaler")}
    metadata = copy.deepcopy(obj.get("metadata") or {})
    annotations = dict(metadata.get("annotations") or {})
    spec = obj.get("spec")
    if spec is not None:
        out["spec"] = _spec_v2_to_v1(spec, annotations)
    status = obj.get("status")
    if status is not None:
        out["status"] = _status_v2_to_v1(status, annotations)
    if annotations:
        metadata["annotations"] = annotations
    out["metadata"] = metadata
    return _ordered(out)


def _spec_v2_to_v1(spec: Obj, annotations: dict[str, str]) -> Obj:
    out: Obj = {k: copy.deepcopy(spec[k]) for k in _SPEC_KEYS if k in spec}
    others = []
    for metric in spec.get("metrics") or []:
        if _is_cpu_utilization(metric) and "targetCPUUtilizationPercentage" not in out:
            target = metric["resource"]["target"]
            out["targetCPUUtilizationPercentage"] = target["averageUtilization"]
        else:
            others.append(metric)
    if others:
        annotations[METRICS_ANNOTATION] = _dump(others)
    if spec.get("behavior") is not None:
        annotations[BEHAVIOR_ANNOTATION] = _dump(spec["behavior"])
    return out


def _status_v2_to_v1(status: Obj, annotations: dict[str, str]) -> Obj:
    keys = ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas")
    out: Obj = {k: copy.deepcopy(status[k]) for k in keys if k in status}
    # v1 serialises both counters always (not omitempty, unlike v2's currentReplicas), and
    # the official clients require them.
    out.setdefault("currentReplicas", 0)
    out.setdefault("desiredReplicas", 0)
    others = []
    for metric in status.get("currentMetrics") or []:
        if _is_cpu_current(metric) and "currentCPUUtilizationPercentage" not in out:
            current = metric["resource"]["current"]
            out["currentCPUUtilizationPercentage"] = current["averageUtilization"]
        else:
            others.append(metric)
    if others:
        annotations[CURRENT_METRICS_ANNOTATION] = _dump(others)
    if status.get("conditions"):
        annotations[CONDITIONS_ANNOTATION] = _dump(status["conditions"])
    return out


# -- HPA v1 -> v2 --------------------------------------------------------------------------


def hpa_v1_to_v2(obj: Obj) -> Obj:
    out: Obj = {"apiVersion": HPA_V2, "kind": obj.get("kind", "HorizontalPodAutoscaler")}
    metadata = copy.deepcopy(obj.get("metadata") or {})
    annotations = dict(metadata.get("annotations") or {})
    stashed = {k: annotations.pop(k) for k in _HPA_ANNOTATIONS if k in annotations}
    if "annotations" in metadata:
        if annotations:
            metadata["annotations"] = annotations
        else:
            del metadata["annotations"]
    out["metadata"] = metadata
    if obj.get("spec") is not None:
        out["spec"] = _spec_v1_to_v2(obj["spec"], stashed)
    if obj.get("status") is not None:
        out["status"] = _status_v1_to_v2(obj["status"], stashed)
    return _ordered(out)


def _spec_v1_to_v2(spec: Obj, stashed: dict[str, str]) -> Obj:
    out: Obj = {k: copy.deepcopy(spec[k]) for k in _SPEC_KEYS if k in spec}
    metrics: list[Any] = []
    target = spec.get("targetCPUUtilizationPercentage")
    if target is not None:
        cpu_target = {"type": "Utilization", "averageUtilization": target}
        metrics.append({"type": "Resource", "resource": {"name": "cpu", "target": cpu_target}})
    metrics += _load(stashed.get(METRICS_ANNOTATION), [])
    if metrics:
        out["metrics"] = metrics
    behavior = _load(stashed.get(BEHAVIOR_ANNOTATION), None)
    if behavior is not None:
        out["behavior"] = behavior
    return out


def _status_v1_to_v2(status: Obj, stashed: dict[str, str]) -> Obj:
    keys = ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas")
    out: Obj = {k: copy.deepcopy(status[k]) for k in keys if k in status}
    current: list[Any] = []
    value = status.get("currentCPUUtilizationPercentage")
    if value is not None:
        resource = {"name": "cpu", "current": {"averageUtilization": value}}
        current.append({"type": "Resource", "resource": resource})
    current += _load(stashed.get(CURRENT_METRICS_ANNOTATION), [])
    if current:
        out["currentMetrics"] = current
    conditions = _load(stashed.get(CONDITIONS_ANNOTATION), None)
    if conditions is not None:
        out["conditions"] = conditions
    return out


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _load(text: str | None, default: Any) -> Any:
    """Annotation contents; a corrupt annotation is ignored, as it cannot be trusted."""
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _ordered(obj: Obj) -> Obj:
    order = ("apiVersion", "kind", "metadata", "spec", "status")
    return {k: obj[k] for k in order if k in obj}
