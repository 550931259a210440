"""Pod QoS class (``status.qosClass``), which the pod strategy sets on create.

Follows Kubernetes' GetPodQOS: only cpu and memory count; init containers count,
ephemeral containers do not. Quantities are compared exactly with a minimal parser
(enough for summing and comparing; validation of quantities happens elsewhere).
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from kybern.api.defaulting._util import Obj, child, items

_QOS_RESOURCES = frozenset({"cpu", "memory"})
_QUANTITY = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))([A-Za-z]{0,2}|[eE][+-]?[0-9]+)")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def parse_quantity(value: Any) -> Fraction | None:
    """The exact value of a Kubernetes quantity string (or number); None if malformed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Fraction(value)
    if not isinstance(value, str):
        return None
    match = _QUANTITY.fullmatch(value.strip())
    if match is None:
        return None
    number, suffix = Fraction(match.group(1)), match.group(2)
    if suffix in _BINARY:
        return number * 1024 ** _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * Fraction(10) ** _DECIMAL[suffix]
    if suffix[:1] in ("e", "E"):
        return number * Fraction(10) ** int(suffix[1:])
    return None


def qos_class(spec: Obj) -> str:
    """``Guaranteed``, ``Burstable`` or ``BestEffort`` for a pod spec."""
    requests: dict[str, Fraction] = {}
    limits: dict[str, Fraction] = {}
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
    if guaranteed and all(limits.get(name) == value for name, value in requests.items()):
        if len(requests) == len(limits):
            return "Guaranteed"
    return "Burstable"


def _accumulate(resource_list: Obj | None, totals: dict[str, Fraction]) -> set[str]:
    """Add the positive cpu/memory quantities into totals; return the names found."""
    found: set[str] = set()
    for name, raw in (resource_list or {}).items():
        if name not in _QOS_RESOURCES:
            continue
        amount = parse_quantity(raw)
        if amount is not None and amount > 0:
            totals[name] = totals.get(name, Fraction(0)) + amount
            found.add(name)
    return found
