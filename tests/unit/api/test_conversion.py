"""Conversion between autoscaling/v1 and v2 HPAs and between the two Event shapes."""

from __future__ import annotations

import copy
import json
from typing import Any

from kybern.api import conversion

TARGET = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}


def hpa_v2(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"scaleTargetRef": TARGET, "minReplicas": 1, "maxReplicas": 5, **spec},
    }


def cpu_metric(utilization: int) -> dict[str, Any]:
    target = {"type": "Utilization", "averageUtilization": utilization}
    return {"type": "Resource", "resource": {"name": "cpu", "target": target}}


MEMORY = {
    "type": "Resource",
    "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}},
}


def test_identity_for_other_kinds_sets_api_version_only() -> None:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 1}}
    out = conversion.convert(obj, "apps/v1beta9")
    assert out == {**obj, "apiVersion": "apps/v1beta9"}
    assert obj["apiVersion"] == "apps/v1"


def test_hpa_v2_to_v1_cpu_target() -> None:
    v1 = conversion.convert(hpa_v2(metrics=[cpu_metric(70)]), "autoscaling/v1")
    assert v1["apiVersion"] == "autoscaling/v1"
    assert v1["spec"] == {
        "scaleTargetRef": TARGET,
        "minReplicas": 1,
        "maxReplicas": 5,
        "targetCPUUtilizationPercentage": 70,
    }
    assert "annotations" not in v1["metadata"]


def test_hpa_v1_to_v2_cpu_target() -> None:
    v1 = {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": TARGET, "maxReplicas": 3, "targetCPUUtilizationPercentage": 50},
        "status": {
            "currentReplicas": 2,
            "desiredReplicas": 3,
            "currentCPUUtilizationPercentage": 40,
        },
    }
    v2 = conversion.convert(v1, "autoscaling/v2")
    assert v2["spec"]["metrics"] == [cpu_metric(50)]
    assert v2["status"]["currentMetrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 40}}}
    ]
    assert v2["status"]["currentReplicas"] == 2


def test_hpa_v2_only_data_survives_a_v1_round_trip() -> None:
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 60}}
    conditions = [{"type": "AbleToScale", "status": "True"}]
    original = hpa_v2(metrics=[cpu_metric(70), MEMORY], behavior=behavior)
    original["metadata"]["annotations"] = {"team": "a"}
    original["status"] = {"currentReplicas": 1, "desiredReplicas": 1, "conditions": conditions}
    snapshot = copy.deepcopy(original)
    v1 = conversion.convert(original, "autoscaling/v1")
    annotations = v1["metadata"]["annotations"]
    assert json.loads(annotations[conversion.METRICS_ANNOTATION]) == [MEMORY]
    assert json.loads(annotations[conversion.BEHAVIOR_ANNOTATION]) == behavior
    assert json.loads(annotations[conversion.CONDITIONS_ANNOTATION]) == conditions
    back = conversion.convert(v1, "autoscaling/v2")
    assert back == snapshot
    assert original == snapshot  # input untouched


def test_hpa_without_metrics_converts_without_target() -> None:
    v1 = conversion.convert(hpa_v2(), "autoscaling/v1")
    assert "targetCPUUtilizationPercentage" not in v1["spec"]
    assert "metrics" not in conversion.convert(v1, "autoscaling/v2")["spec"]


def test_corrupt_annotation_is_ignored() -> None:
    v1 = conversion.convert(hpa_v2(), "autoscaling/v1")
    v1["metadata"]["annotations"] = {conversion.METRICS_ANNOTATION: "{not json"}
    v2 = conversion.convert(v1, "autoscaling/v2")
    assert "metrics" not in v2["spec"]
    assert "annotations" not in v2["metadata"]


CORE_EVENT = {
    "apiVersion": "v1",
    "kind": "Event",
    "metadata": {"name": "p.1", "namespace": "default"},
    "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
    "reason": "Pulled",
    "message": "pulled image",
    "source": {"component": "kubelet", "host": "node-1"},
    "firstTimestamp": "2024-05-01T10:00:00Z",
    "lastTimestamp": "2024-05-01T10:01:00Z",
    "count": 3,
    "type": "Normal",
    "reportingComponent": "kubelet",
    "reportingInstance": "node-1",
    "action": "Pull",
    "eventTime": None,
}


def test_core_event_to_events_v1() -> None:
    out = conversion.convert(CORE_EVENT, "events.k8s.io/v1")
    assert out["apiVersion"] == "events.k8s.io/v1"
    assert out["regarding"] == CORE_EVENT["involvedObject"]
    assert out["note"] == "pulled image"
    assert out["deprecatedSource"] == {"component": "kubelet", "host": "node-1"}
    assert out["deprecatedFirstTimestamp"] == "2024-05-01T10:00:00Z"
    assert out["deprecatedLastTimestamp"] == "2024-05-01T10:01:00Z"
    assert out["deprecatedCount"] == 3
    assert out["reportingController"] == "kubelet"
    assert out["reportingInstance"] == "node-1"
    assert out["reason"] == "Pulled"
    assert out["action"] == "Pull"
    assert out["type"] == "Normal"
    for old_name in ("involvedObject", "message", "source", "count", "reportingComponent"):
        assert old_name not in out


def test_event_round_trip() -> None:
    there = conversion.convert(CORE_EVENT, "events.k8s.io/v1")
    assert conversion.convert(there, "v1") == CORE_EVENT


def test_same_version_is_a_copy() -> None:
    out = conversion.convert(CORE_EVENT, "v1")
    assert out == CORE_EVENT
    assert out is not CORE_EVENT
