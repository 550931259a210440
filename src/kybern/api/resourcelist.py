"""Resource lists (``{"cpu": "500m", "memory": "1Gi"}``): arithmetic and a pod's totals.

Quota usage, quota admission and LimitRanger all add, compare and mask resource lists the
way apimachinery's ``quota`` helpers do. Lists stay plain ``dict[str, str]`` of quantity
strings, as on the wire; a sum keeps the format of its first non-zero operand (``1Gi`` +
``512Mi`` -> ``1536Mi``), as ``resource.Quantity.Add`` does, so messages read like
Kubernetes' own.

``pod_requests``/``pod_limits`` follow Kubernetes' PodRequests/PodLimits: app containers
summed, restartable (sidecar) init containers added to them, the pod's value is the larger of
that sum and the largest init-container step, plus ``spec.overhead``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from kybern.api import quantity

ResourceList = dict[str, str]
Obj = dict[str, Any]
_Q = tuple[Decimal, str]  # value and format (DecimalSI, BinarySI, DecimalExponent)


def _parse(text: object) -> _Q | None:
    if not isinstance(text, str | int | float) or isinstance(text, bool):
        return None
    try:
        return quantity.parse_with_format(text)
    except quantity.QuantityError:
        return None  # validation reports it; usage ignores it


def _fmt(q: _Q) -> str:
    return quantity.format_value(q[0], q[1])


def value(text: object) -> Decimal:
    """A quantity's value; 0 for a missing or malformed one."""
    q = _parse(text)
    return q[0] if q is not None else Decimal(0)


def canonical(text: object) -> str:
    q = _parse(text)
    return _fmt(q) if q is not None else str(text)


def _sum(a: _Q | None, b: _Q) -> _Q:
    if a is None:
        return b
    return (a[0] + b[0], a[1] if a[0] != 0 else b[1])


def add(a: Mapping[str, str], b: Mapping[str, str]) -> ResourceList:
    """Every key of either list; shared keys summed."""
    out = dict(a)
    for name, text in b.items():
        q = _parse(text)
        if q is not None:
            out[name] = _fmt(_sum(_parse(out.get(name)), q))
    return out


def subtract(a: Mapping[str, str], b: Mapping[str, str]) -> ResourceList:
    out = dict(a)
    for name, text in b.items():
        q = _parse(text)
        if q is not None:
            out[name] = _fmt(_sum(_parse(out.get(name)), (-q[0], q[1])))
    return out


def mask(items: Mapping[str, str], names: Iterable[str]) -> ResourceList:
    keep = set(names)
    return {name: text for name, text in items.items() if name in keep}


def equal(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    return a.keys() == b.keys() and all(value(a[k]) == value(b[k]) for k in a)


def exceeded(used: Mapping[str, str], hard: Mapping[str, str]) -> list[str]:
    """Names whose value in ``used`` is above ``hard`` (quota.LessThanOrEqual)."""
    return sorted(n for n, t in used.items() if n in hard and value(t) > value(hard[n]))


def is_zero(items: Mapping[str, str]) -> bool:
    return all(value(t) == 0 for t in items.values())


def without_negatives(items: Mapping[str, str]) -> ResourceList:
    return {n: t for n, t in items.items() if value(t) >= 0}


def pretty(items: Mapping[str, str]) -> str:
    """``a=1,b=2`` in name order (the quota admission's prettyPrint)."""
    return ",".join(f"{name}={items[name]}" for name in sorted(items))


# -- a pod's requests and limits ---------------------------------------------------------


def container_list(container: Obj, key: str) -> ResourceList:
    resources = container.get("resources") or {}
    found = resources.get(key) if isinstance(resources, dict) else None
    return dict(found) if isinstance(found, dict) else {}


def _into(totals: dict[str, _Q], items: Mapping[str, str]) -> None:
    for name, text in items.items():
        q = _parse(text)
        if q is not None:
            totals[name] = _sum(totals.get(name), q)


def _max_into(totals: dict[str, _Q], items: Mapping[str, _Q]) -> None:
    for name, q in items.items():
        if name not in totals or q[0] > totals[name][0]:
            totals[name] = q


def _containers(spec: Obj, key: str) -> list[Obj]:
    found = spec.get(key) or []
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def pod_totals(spec: Obj, key: str) -> ResourceList:
    """``key`` = ``requests`` or ``limits``: the pod's effective total (PodRequests/PodLimits)."""
    totals: dict[str, _Q] = {}
    for container in _containers(spec, "containers"):
        _into(totals, container_list(container, key))
    sidecars: dict[str, _Q] = {}
    init_max: dict[str, _Q] = {}
    for container in _containers(spec, "initContainers"):
        own = container_list(container, key)
        if container.get("restartPolicy") == "Always":
            _into(totals, own)
            _into(sidecars, own)
            step = dict(sidecars)
        else:
            step = dict(sidecars)
            _into(step, own)
        _max_into(init_max, step)
    _max_into(totals, init_max)
    overhead = spec.get("overhead")
    if isinstance(overhead, dict):
        if key == "requests":
            _into(totals, overhead)
        else:  # overhead only raises limits that are set
            _into(totals, {n: t for n, t in overhead.items() if n in totals})
    return {name: _fmt(q) for name, q in totals.items()}


def pod_requests(spec: Obj) -> ResourceList:
    return pod_totals(spec, "requests")


def pod_limits(spec: Obj) -> ResourceList:
    return pod_totals(spec, "limits")
