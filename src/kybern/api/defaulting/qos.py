"""Pod QoS class (``status.qosClass``), which the pod strategy sets on create.

Follows Kubernetes' GetPodQOS: only cpu and memory count; init containers count,
ephemeral containers do not; quantities are summed across containers and compared
exactly. Malformed quantities are skipped (validation rejects them afterwards).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kybern.api import quantity
from kybern.api.defaulting._util import Obj, child, items

_QOS_RESOURCES = frozenset({"cpu", "memory"})


def qos_class(spec: Obj) -> str:
    """``Guaranteed``, ``Burstable`` or ``BestEffort`` for a pod spec."""
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for key in ("containers", "initContainers"):
        for container in items(spec, key):
            resources = child(container, "resources") or {}
            _accumulate(child(resources, "requests"), requests)
            found = _accumulate(child(resources, "limits"), limits)
            if found != _QOS_RESOURCES:
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    equal = all(limits.get(name) == value for name, value in requests.items())
    if guaranteed and equal and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


def _accumulate(resource_list: Obj | None, totals: dict[str, Decimal]) -> set[str]:
    """Add the positive cpu/memory quantities into totals; return the names found."""
    found: set[str] = set()
    for name, raw in (resource_list or {}).items():
        if name not in _QOS_RESOURCES:
            continue
        amount = _parse(raw)
        if amount is not None and amount > 0:
            totals[name] = totals.get(name, Decimal(0)) + amount
            found.add(name)
    return found


def _parse(raw: Any) -> Decimal | None:
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        return None
    try:
        return quantity.parse(raw)
    except quantity.QuantityError:
        return None
