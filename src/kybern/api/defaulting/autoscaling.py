"""Defaults for autoscaling HorizontalPodAutoscalers, v1 and v2 shapes.

Source: ``pkg/apis/autoscaling/v1`` and ``v2`` defaults. The shape is chosen from the
object's ``apiVersion``. Kubernetes stores HPAs as v2, whose defaults add an 80% CPU
target when no metric is given; a v1 read therefore shows
``targetCPUUtilizationPercentage: 80``, which we reproduce directly. Scaling behaviour is
defaulted only when ``spec.behavior`` is present, as in Kubernetes.
"""

from __future__ import annotations

from kybern.api.defaulting._util import Obj, child, ensure, setdefault

DEFAULT_CPU_UTILIZATION = 80

_SCALE_UP = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
# Kubernetes leaves the scale-down window unset: the controller's flag (300s) applies.
_SCALE_DOWN = {
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}


def horizontal_pod_autoscaler(obj: Obj, create: bool) -> None:
    if obj.get("apiVersion") == "autoscaling/v1":
        _v1(obj)
    else:
        _v2(obj)


def _v1(obj: Obj) -> None:
    spec = child(obj, "spec")
    if spec is not None:
        setdefault(spec, "minReplicas", 1)
        setdefault(spec, "targetCPUUtilizationPercentage", DEFAULT_CPU_UTILIZATION)
    status = ensure(obj, "status")
    if status is not None:
        setdefault(status, "currentReplicas", 0)
        setdefault(status, "desiredReplicas", 0)


def _v2(obj: Obj) -> None:
    spec = child(obj, "spec")
    if spec is not None:
        setdefault(spec, "minReplicas", 1)
        if not spec.get("metrics"):
            spec["metrics"] = [_cpu_metric()]
        behavior = child(spec, "behavior")
        if behavior is not None:
            _rules(behavior, "scaleUp", _SCALE_UP)
            _rules(behavior, "scaleDown", _SCALE_DOWN)
    status = ensure(obj, "status")
    if status is not None:
        setdefault(status, "desiredReplicas", 0)


def _cpu_metric() -> Obj:
    target = {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}
    return {"type": "Resource", "resource": {"name": "cpu", "target": target}}


def _rules(behavior: Obj, key: str, defaults: Obj) -> None:
    rules = ensure(behavior, key)
    if rules is not None:
        for field, value in defaults.items():
            setdefault(rules, field, value)


DEFAULTERS = {
    ("autoscaling", "HorizontalPodAutoscaler"): horizontal_pod_autoscaler,
}
