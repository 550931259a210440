"""HorizontalPodAutoscalers, both autoscaling/v1 and v2 (v1 objects are printed after
conversion to v2, as Kubernetes prints its internal version): REFERENCE TARGETS MINPODS
MAXPODS REPLICAS AGE, targets like ``cpu: 40%/80%`` or ``<unknown>/500m``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kybern.api import conversion
from kybern.api.printers import base
from kybern.api.printers.base import AGE, NAME, Cell, Column, Obj, Printer

_SPEC = "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec"
_STATUS = "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus"
_SHOWN = 2
_UNKNOWN = "<unknown>"


def _row(obj: Obj, now: float) -> list[Cell]:
    if obj.get("apiVersion") == conversion.HPA_V1:
        obj = conversion.convert(obj, conversion.HPA_V2)
    spec = base.as_map(obj.get("spec"))
    status = base.as_map(obj.get("status"))
    target = base.as_map(spec.get("scaleTargetRef"))
    min_replicas = spec.get("minReplicas")
    return [
        base.name(obj),
        f"{base.text(target.get('kind'))}/{base.text(target.get('name'))}",
        format_metrics(
            base.as_list(spec.get("metrics")), base.as_list(status.get("currentMetrics"))
        ),
        str(min_replicas) if isinstance(min_replicas, int) else "<unset>",
        base.as_int(spec.get("maxReplicas")),
        base.as_int(status.get("currentReplicas")),
        base.age(obj, now),
    ]


def format_metrics(specs: list[Any], statuses: list[Any]) -> str:
    """formatHPAMetrics: the first two metrics as current/target, then ``+ N more...``."""
    if not specs:
        return "<none>"
    shown = [
        _metric(spec, statuses[i] if i < len(statuses) else None) for i, spec in enumerate(specs)
    ]
    joined = ", ".join(shown[:_SHOWN])
    if len(shown) > _SHOWN:
        return f"{joined} + {len(shown) - _SHOWN} more..."
    return joined


def _metric(spec: Any, status: Any) -> str:
    kind = base.text(base.get(spec, "type"))
    field = {
        "External": "external",
        "Pods": "pods",
        "Object": "object",
        "Resource": "resource",
        "ContainerResource": "containerResource",
    }.get(kind)
    if field is None:
        return "<unknown type>"
    source = base.as_map(base.get(spec, field))
    current = base.get(status, field)
    current = current if isinstance(current, Mapping) else None
    if kind in ("Resource", "ContainerResource"):
        return f"{base.text(source.get('name'))}: {_resource_value(source, current)}"
    if kind == "Pods":
        return f"{_current(current, 'averageValue')}/{_quantity(base.get(source, 'target', 'averageValue'))}"
    target = base.as_map(source.get("target"))
    if target.get("averageValue") is not None:
        return f"{_current(current, 'averageValue')}/{_quantity(target.get('averageValue'))} (avg)"
    return f"{_current(current, 'value')}/{_quantity(target.get('value'))}"


def _resource_value(source: Mapping[str, Any], current: Mapping[str, Any] | None) -> str:
    target = base.as_map(source.get("target"))
    if target.get("averageValue") is not None:
        return f"{_current(current, 'averageValue')}/{_quantity(target.get('averageValue'))}"
    now_util = base.get(current, "current", "averageUtilization")
    shown = f"{now_util}%" if isinstance(now_util, int) else _UNKNOWN
    util = target.get("averageUtilization")
    goal = f"{util}%" if isinstance(util, int) else "<auto>"
    return f"{shown}/{goal}"


def _current(current: Mapping[str, Any] | None, field: str) -> str:
    if current is None:
        return _UNKNOWN
    value = base.get(current, "current", field)
    if value is None and field == "averageValue":
        return _UNKNOWN
    return _quantity(value)


def _quantity(value: Any) -> str:
    return base.quantity_string(value)


HORIZONTAL_POD_AUTOSCALER = Printer(
    (
        NAME,
        Column("Reference", doc=(_SPEC, "scaleTargetRef")),
        Column("Targets", doc=(_SPEC, "metrics")),
        Column("MinPods", doc=(_SPEC, "minReplicas")),
        Column("MaxPods", doc=(_SPEC, "maxReplicas")),
        Column("Replicas", doc=(_STATUS, "currentReplicas")),
        AGE,
    ),
    _row,
)
