"""ResourceQuota usage evaluators: what one object charges against a quota. Pure.

Kubernetes' quota evaluators (pkg/quota/v1/evaluator/core and the generic object-count
evaluator), shared by the quota admission plugin (which charges a new object's usage) and
the ResourceQuota controller (which recomputes ``status.used`` from caches):

- pods: ``pods``, ``count/pods``; ``cpu``/``memory``/``ephemeral-storage`` (= requests),
  ``requests.*``, ``limits.*``, ``requests.<extended>``, hugepages. Terminal pods (and pods
  past their deletion grace period) only count in ``count/pods``.
- services (``services.nodeports``, ``services.loadbalancers``), persistentvolumeclaims
  (``requests.storage`` and the per-StorageClass forms), configmaps, secrets,
  replicationcontrollers, resourcequotas: their legacy name plus ``count/<resource>``.
- anything else: ``count/<resource>.<group>``.

Scopes (``spec.scopes`` and ``spec.scopeSelector``) only ever match pods, as in Kubernetes.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kybern.api import resourcelist
from kybern.api.defaulting import qos

Obj = dict[str, Any]
ResourceList = resourcelist.ResourceList
UsageFn = Callable[[Obj, "datetime.datetime | None"], ResourceList]

_POD_RESOURCES = frozenset(
    {
        "pods",
        "count/pods",
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
    }
)
_POD_PREFIXES = ("hugepages-", "requests.hugepages-")
# Quotas on these force every container to state them (a backward-compatibility rule).
_MUST_SPECIFY = frozenset(
    {"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"}
)
STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
IGNORED = frozenset({("", "events"), ("events.k8s.io", "events")})


def count_name(resource: str, group: str) -> str:
    """``count/pods``, ``count/deployments.apps``."""
    return f"count/{resource}.{group}" if group else f"count/{resource}"


def parse_count_name(name: str) -> tuple[str, str] | None:
    """``count/deployments.apps`` -> ("deployments", "apps"); None for other names."""
    if not name.startswith("count/"):
        return None
    resource, _, group = name[len("count/") :].partition(".")
    return resource, group


def is_extended(name: str) -> bool:
    """Extended resources (``example.com/gpu``): qualified, outside kubernetes.io."""
    if "/" not in name or "kubernetes.io/" in name or name.startswith("requests."):
        return False
    prefix, _, rest = name.partition("/")
    return bool(prefix) and bool(rest)


# -- pods --------------------------------------------------------------------------------


def _parse_time(text: object) -> datetime.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def pod_counts(pod: Obj, now: datetime.datetime | None) -> bool:
    """Does a pod still count for compute quota (QuotaV1Pod)? Not once terminal, nor once
    its deletion grace period has passed."""
    if (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded"):
        return False
    meta = pod.get("metadata") or {}
    deleted = _parse_time(meta.get("deletionTimestamp"))
    grace = meta.get("deletionGracePeriodSeconds")
    if now is not None and deleted is not None and isinstance(grace, int):
        return not now > deleted + datetime.timedelta(seconds=grace)
    return True


def compute_usage(requests: ResourceList, limits: ResourceList) -> ResourceList:
    """podComputeUsageHelper: a pod's (or one container's) compute usage names."""
    out: ResourceList = {"pods": "1"}
    for name in ("cpu", "memory", "ephemeral-storage"):
        if name in requests:
            out[name] = out[f"requests.{name}"] = requests[name]
        if name in limits:
            out[f"limits.{name}"] = limits[name]
    for name, text in requests.items():
        if name.startswith("hugepages-"):
            out[name] = out[f"requests.{name}"] = text
        if is_extended(name):
            out[f"requests.{name}"] = text
    return out


def pod_usage(pod: Obj, now: datetime.datetime | None = None) -> ResourceList:
    usage: ResourceList = {"count/pods": "1"}
    if not pod_counts(pod, now):
        return usage
    spec = pod.get("spec") or {}
    requests, limits = resourcelist.pod_requests(spec), resourcelist.pod_limits(spec)
    return resourcelist.add(usage, compute_usage(requests, limits))


def pod_matching(names: Iterable[str]) -> list[str]:
    return [
        n
        for n in names
        if n in _POD_RESOURCES
        or n.startswith(_POD_PREFIXES)
        or (n.startswith("requests.") and is_extended(n[len("requests.") :]))
    ]


def pod_constraints(required: Iterable[str], pod: Obj) -> str | None:
    """A quota on cpu/memory needs every container to state them: the refusal text."""
    wanted = set(required) & _MUST_SPECIFY
    if not wanted:
        return None
    missing: dict[str, set[str]] = {}
    spec = pod.get("spec") or {}
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            if not isinstance(container, dict):
                continue
            usage = compute_usage(
                resourcelist.container_list(container, "requests"),
                resourcelist.container_list(container, "limits"),
            )
            for name in wanted - usage.keys():
                missing.setdefault(name, set()).add(str(container.get("name", "")))
    if not missing:
        return None
    parts = [f"{name} for: {','.join(sorted(missing[name]))}" for name in sorted(missing)]
    return "must specify " + "; ".join(parts)


def _expressions(quota: Obj) -> list[Obj]:
    spec = quota.get("spec") or {}
    out: list[Obj] = [{"scopeName": s, "operator": "Exists"} for s in spec.get("scopes") or []]
    selector = spec.get("scopeSelector") or {}
    out.extend(e for e in selector.get("matchExpressions") or [] if isinstance(e, dict))
    return out


def _scope_matches(expr: Obj, pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    scope, operator = expr.get("scopeName"), expr.get("operator")
    if scope == "PriorityClass":
        priority = spec.get("priorityClassName") or ""
        values = expr.get("values") or []
        return {
            "Exists": bool(priority),
            "DoesNotExist": not priority,
            "In": priority in values,
            "NotIn": priority not in values,
        }.get(str(operator), False)
    matched = _named_scope(str(scope), spec, pod)
    return not matched if operator == "DoesNotExist" else matched


def _named_scope(scope: str, spec: Obj, pod: Obj) -> bool:
    deadline = spec.get("activeDeadlineSeconds")
    terminating = isinstance(deadline, int) and deadline >= 0
    best_effort = qos.qos_class(spec) == "BestEffort"
    if scope == "CrossNamespacePodAffinity":
        return _cross_namespace_affinity(spec)
    return {
        "Terminating": terminating,
        "NotTerminating": not terminating,
        "BestEffort": best_effort,
        "NotBestEffort": not best_effort,
    }.get(scope, False)


def _cross_namespace_affinity(spec: Obj) -> bool:
    affinity = spec.get("affinity") or {}
    for kind in ("podAffinity", "podAntiAffinity"):
        rules = affinity.get(kind) or {}
        terms = list(rules.get("requiredDuringSchedulingIgnoredDuringExecution") or [])
        terms += [
            t.get("podAffinityTerm") or {}
            for t in rules.get("preferredDuringSchedulingIgnoredDuringExecution") or []
        ]
        if any(t.get("namespaces") or t.get("namespaceSelector") is not None for t in terms):
            return True
    return False


# -- other kinds -------------------------------------------------------------------------


def service_usage(svc: Obj, now: datetime.datetime | None = None) -> ResourceList:
    spec = svc.get("spec") or {}
    ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
    usage = {
        "services": "1",
        "count/services": "1",
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }
    kind = spec.get("type")
    if kind == "NodePort":
        usage["services.nodeports"] = str(len(ports))
    elif kind == "LoadBalancer":
        usage["services.loadbalancers"] = "1"
        if spec.get("allocateLoadBalancerNodePorts") is False:
            usage["services.nodeports"] = str(sum(1 for p in ports if p.get("nodePort")))
        else:
            usage["services.nodeports"] = str(len(ports))
    return usage


def storage_class_of(pvc: Obj) -> str:
    annotations = (pvc.get("metadata") or {}).get("annotations") or {}
    beta = annotations.get("volume.beta.kubernetes.io/storage-class")
    return str(beta or (pvc.get("spec") or {}).get("storageClassName") or "")


def pvc_usage(pvc: Obj, now: datetime.datetime | None = None) -> ResourceList:
    usage = {"persistentvolumeclaims": "1", "count/persistentvolumeclaims": "1"}
    klass = storage_class_of(pvc)
    if klass:
        usage[f"{klass}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"] = "1"
    requested = ((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}
    allocated = (pvc.get("status") or {}).get("allocatedResources") or {}
    sizes = [t for t in (requested.get("storage"), allocated.get("storage")) if t is not None]
    if sizes:
        storage = resourcelist.canonical(max(sizes, key=resourcelist.value))
        usage["requests.storage"] = storage
        if klass:
            usage[f"{klass}{STORAGE_CLASS_SUFFIX}requests.storage"] = storage
    return usage


def pvc_matching(names: Iterable[str]) -> list[str]:
    own = {"persistentvolumeclaims", "count/persistentvolumeclaims", "requests.storage"}
    return [
        n
        for n in names
        if n in own
        or (
            STORAGE_CLASS_SUFFIX in n
            and n.endswith((f"{STORAGE_CLASS_SUFFIX}persistentvolumeclaims", "/requests.storage"))
        )
    ]


# -- the registry ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evaluator:
    """How one resource is charged against quotas."""

    resource: str
    group: str
    usage: UsageFn
    matching: Callable[[Iterable[str]], list[str]]
    handles_update: bool = False
    constraints: Callable[[Iterable[str], Obj], str | None] | None = None
    scoped: bool = False  # only pods answer to quota scopes

    def matches(self, quota: Obj, obj: Obj, hard: Iterable[str]) -> bool:
        """Does ``quota`` (with these hard names) cover ``obj``? (generic.Matches)"""
        if not self.matching(hard):
            return False
        expressions = _expressions(quota)
        if not expressions:
            return True
        return self.scoped and all(_scope_matches(e, obj) for e in expressions)


def _names(*names: str) -> Callable[[Iterable[str]], list[str]]:
    own = frozenset(names)
    return lambda given: [n for n in given if n in own]


def _object_count(resource: str, group: str, legacy: str = "") -> Evaluator:
    names = (count_name(resource, group), legacy) if legacy else (count_name(resource, group),)
    usage = dict.fromkeys(names, "1")
    return Evaluator(resource, group, lambda obj, now: dict(usage), _names(*names))


EVALUATORS: dict[tuple[str, str], Evaluator] = {
    ("", "pods"): Evaluator(
        "pods", "", pod_usage, pod_matching, constraints=pod_constraints, scoped=True
    ),
    ("", "services"): Evaluator(
        "services",
        "",
        service_usage,
        _names("services", "count/services", "services.loadbalancers", "services.nodeports"),
        handles_update=True,
    ),
    ("", "persistentvolumeclaims"): Evaluator(
        "persistentvolumeclaims", "", pvc_usage, pvc_matching, handles_update=True
    ),
    **{
        ("", name): _object_count(name, "", name)
        for name in ("configmaps", "secrets", "replicationcontrollers", "resourcequotas")
    },
}


def evaluator_for(resource: str, group: str) -> Evaluator | None:
    """The evaluator of a resource (the generic object counter by default); None for the
    resources quota ignores (events)."""
    if (group, resource) in IGNORED:
        return None
    found = EVALUATORS.get((group, resource))
    return found if found is not None else _object_count(resource, group)


def hard_of(quota: Obj) -> ResourceList:
    """What admission enforces: ``status.hard``, set by the controller from ``spec.hard``."""
    return dict((quota.get("status") or {}).get("hard") or {})


def used_of(quota: Obj) -> ResourceList:
    return dict((quota.get("status") or {}).get("used") or {})


def usage_stats(
    evaluator: Evaluator,
    quota: Obj,
    objects: Iterable[Obj],
    now: datetime.datetime | None,
) -> ResourceList:
    """The controller's sum for one resource: every matched name starts at 0, then the
    usage of each object the quota's scopes select."""
    hard = list(((quota.get("spec") or {}).get("hard") or {}).keys())
    names = evaluator.matching(hard)
    total: ResourceList = dict.fromkeys(names, "0")
    if not names:
        return total
    expressions = _expressions(quota)
    for obj in objects:
        if expressions and not (
            evaluator.scoped and all(_scope_matches(e, obj) for e in expressions)
        ):
            continue
        total = resourcelist.add(total, resourcelist.mask(evaluator.usage(obj, now), names))
    return total
