"""LimitRanger admission: LimitRange defaults and bounds for pods and PVCs.

Kubernetes' LimitRanger plugin. On a pod create, each LimitRange of type ``Container`` in the
namespace first fills what containers leave out: ``default`` into missing limits and
``defaultRequest`` into missing requests (the LimitRange's own defaulting already made the
request default to the limit, and the limit to ``max``), recorded in the
``kubernetes.io/limit-ranger`` annotation. Then every range is enforced: ``min``, ``max``
and ``maxLimitRequestRatio`` per container (``Container``) and for the pod's totals
(``Pod``), and ``min``/``max`` of a PVC's storage request (``PersistentVolumeClaim``, on
create and update). Refusals are 403 Forbidden with Kubernetes' messages, several joined as
``[a, b]``. It runs before ResourceQuota so quota charges the defaulted requests.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from kybern.api import kinds, resourcelist, validation
from kybern.apiserver import errors, watchcache

if TYPE_CHECKING:  # admission imports the plugins to build its chain
    from kybern.apiserver import admission

Obj = dict[str, Any]
ANNOTATION = "kubernetes.io/limit-ranger"
RESOURCE = "limitranges"
_LIMITED = ("pods", "persistentvolumeclaims")


class LimitRanger:
    """The ``LimitRanger`` admission plugin over the watch cache."""

    def __init__(self, cache: watchcache.WatchCache) -> None:
        self.cache = cache

    def ranges(self, namespace: str) -> list[Obj]:
        cache = self.cache.resource(RESOURCE)
        prefix = watchcache.collection_prefix(RESOURCE, namespace)
        return [cache.objects[key] for key in cache.keys_in(prefix) if key in cache.objects]

    async def on_create(self, req: admission.Request, obj: Obj) -> None:
        # A dry run is judged and defaulted like any create (it records nothing elsewhere);
        # subresources (a pod's eviction, a PVC's status) are not limited, as in Kubernetes.
        info = req.info
        if not req.subresource and info.group == "" and info.plural in _LIMITED:
            self._admit(info, obj)

    async def on_update(self, req: admission.Request, new: Obj, old: Obj) -> None:
        # Pod containers are immutable: only PVCs are checked again on update.
        deleting = (old.get("metadata") or {}).get("deletionTimestamp")
        pvc = req.info.group == "" and req.info.plural == "persistentvolumeclaims"
        if pvc and not req.subresource and not deleting:
            self._admit(req.info, new)

    async def on_delete(self, req: admission.Request, obj: Obj) -> None:
        return None

    def _admit(self, info: kinds.ResourceInfo, obj: Obj) -> None:
        namespace = (obj.get("metadata") or {}).get("namespace") or ""
        ranges = self.ranges(namespace) if namespace else []
        if not ranges:
            return
        problems: list[str] = []
        if info.plural == "pods":  # mutate with every range, then validate (two phases)
            before = _resources(obj)
            for limit_range in ranges:
                default_pod(obj, _items(limit_range))
            if _resources(obj) != before:
                _revalidate(info, obj)
            for limit_range in ranges:
                problems += validate_pod(obj, _items(limit_range))
        else:
            for limit_range in ranges:
                problems += validate_pvc(obj, _items(limit_range))
        if problems:
            name = (obj.get("metadata") or {}).get("name") or ""
            raise errors.forbidden(info.plural, name, info.group, aggregate(problems))


def _resources(pod: Obj) -> list[Any]:
    spec = pod.get("spec") or {}
    return [
        copy.deepcopy(c.get("resources"))
        for key in ("containers", "initContainers")
        for c in spec.get(key) or []
        if isinstance(c, dict)
    ]


def _revalidate(info: kinds.ResourceInfo, pod: Obj) -> None:
    """Kubernetes validates after mutating admission: a default limit below a stated request
    makes the pod invalid (422), not stored."""
    causes = validation.validate_create(info, pod)
    if causes:
        name = (pod.get("metadata") or {}).get("name") or ""
        raise errors.invalid(info.kind, name, causes, info.group)


def _items(limit_range: Obj) -> list[Obj]:
    limits = (limit_range.get("spec") or {}).get("limits") or []
    return [item for item in limits if isinstance(item, dict)]


def aggregate(messages: list[str]) -> str:
    """utilerrors.NewAggregate's text: one message alone, several deduplicated in [a, b]."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


# -- defaults ----------------------------------------------------------------------------


def default_pod(pod: Obj, items: list[Obj]) -> None:
    """Fill containers' missing limits/requests from the ``Container`` items' defaults."""
    limits: dict[str, str] = {}
    requests: dict[str, str] = {}
    for item in items:
        if item.get("type") == "Container":
            limits.update(item.get("default") or {})
            requests.update(item.get("defaultRequest") or {})
    if not limits and not requests:
        return
    spec = pod.get("spec") or {}
    notes: list[str] = []
    for key, label in (("containers", "container"), ("initContainers", "init container")):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                notes += _merge(container, limits, requests, label)
    if notes:
        annotations = pod["metadata"].setdefault("annotations", {})
        annotations[ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)


def _merge(
    container: Obj, limits: Mapping[str, str], requests: Mapping[str, str], label: str
) -> list[str]:
    resources = container.setdefault("resources", {})
    notes = []
    set_requests = _fill(resources, "requests", requests)
    set_limits = _fill(resources, "limits", limits)
    name = container.get("name", "")
    if set_requests:
        notes.append(f"{', '.join(sorted(set_requests))} request for {label} {name}")
    if set_limits:
        notes.append(f"{', '.join(sorted(set_limits))} limit for {label} {name}")
    return notes


def _fill(resources: Obj, key: str, defaults: Mapping[str, str]) -> list[str]:
    if not defaults:
        return []
    current = resources.get(key)
    if not isinstance(current, dict):
        current = resources[key] = {}
    added = [name for name in defaults if name not in current]
    for name in added:
        current[name] = defaults[name]
    return added


# -- enforcement -------------------------------------------------------------------------


def validate_pod(pod: Obj, items: list[Obj]) -> list[str]:
    spec = pod.get("spec") or {}
    problems: list[str] = []
    for item in items:
        kind = item.get("type")
        if kind == "Container":
            for key in ("containers", "initContainers"):
                for container in spec.get(key) or []:
                    if isinstance(container, dict):
                        problems += _bounds(
                            "Container",
                            item,
                            resourcelist.container_list(container, "requests"),
                            resourcelist.container_list(container, "limits"),
                        )
        elif kind == "Pod":
            problems += _bounds(
                "Pod", item, resourcelist.pod_requests(spec), resourcelist.pod_limits(spec)
            )
    return problems


def validate_pvc(pvc: Obj, items: list[Obj]) -> list[str]:
    requests = ((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}
    problems: list[str] = []
    for item in items:
        if item.get("type") != "PersistentVolumeClaim":
            continue
        for name, enforced in (item.get("min") or {}).items():
            problems += _min(item["type"], name, enforced, requests, {})
        for name, enforced in (item.get("max") or {}).items():
            problems += _max_request(item["type"], name, enforced, requests)
    return problems


def _bounds(
    kind: str, item: Obj, requests: Mapping[str, str], limits: Mapping[str, str]
) -> list[str]:
    out: list[str] = []
    for name, enforced in (item.get("min") or {}).items():
        out += _min(kind, name, enforced, requests, limits)
    for name, enforced in (item.get("max") or {}).items():
        out += _max(kind, name, enforced, requests, limits)
    for name, enforced in (item.get("maxLimitRequestRatio") or {}).items():
        out += _ratio(kind, name, enforced, requests, limits)
    return out


def _q(text: object) -> Decimal:
    return resourcelist.value(text)


def _min(
    kind: str, name: str, enforced: str, requests: Mapping[str, str], limits: Mapping[str, str]
) -> list[str]:
    bound = resourcelist.canonical(enforced)
    head = f"minimum {name} usage per {kind} is {bound}"
    if name not in requests:
        return [f"{head}.  No request is specified"]
    if _q(requests[name]) < _q(enforced):
        return [f"{head}, but request is {resourcelist.canonical(requests[name])}"]
    if name in limits and _q(limits[name]) < _q(enforced):
        return [f"{head}, but limit is {resourcelist.canonical(limits[name])}"]
    return []


def _max(
    kind: str, name: str, enforced: str, requests: Mapping[str, str], limits: Mapping[str, str]
) -> list[str]:
    bound = resourcelist.canonical(enforced)
    head = f"maximum {name} usage per {kind} is {bound}"
    if name not in limits:
        return [f"{head}.  No limit is specified"]
    if _q(limits[name]) > _q(enforced):
        return [f"{head}, but limit is {resourcelist.canonical(limits[name])}"]
    if name in requests and _q(requests[name]) > _q(enforced):
        return [f"{head}, but request is {resourcelist.canonical(requests[name])}"]
    return []


def _max_request(kind: str, name: str, enforced: str, requests: Mapping[str, str]) -> list[str]:
    """PVCs: their limits are not user input, so max bounds the request."""
    head = f"maximum {name} usage per {kind} is {resourcelist.canonical(enforced)}"
    if name not in requests:
        return [f"{head}.  No request is specified"]
    if _q(requests[name]) > _q(enforced):
        return [f"{head}, but request is {resourcelist.canonical(requests[name])}"]
    return []


def _ratio(
    kind: str, name: str, enforced: str, requests: Mapping[str, str], limits: Mapping[str, str]
) -> list[str]:
    head = f"{name} max limit to request ratio per {kind} is {resourcelist.canonical(enforced)}"
    request, limit = _q(requests.get(name)), _q(limits.get(name))
    if name not in requests or _milli(request) == 0:
        return [f"{head}, but no request is specified or request is 0"]
    if name not in limits or _milli(limit) == 0:
        return [f"{head}, but no limit is specified or limit is 0"]
    observed = _milli(limit) / _milli(request)
    if observed * 1000 > _milli(_q(enforced)):
        return [f"{head}, but provided ratio is {observed:f}"]
    return []


def _milli(value: Decimal) -> float:
    """Kubernetes compares these in whole milli-units (MilliValue rounds up)."""
    return float((value * 1000).to_integral_value(rounding="ROUND_CEILING"))
