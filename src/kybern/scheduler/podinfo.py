"""What the scheduler needs to know about a pod, computed once per pod object.

Pods arrive as plain dicts (informer objects, treated as immutable). Parsing quantities,
selectors and affinity terms on every node of every cycle would dominate the scheduler's
time, so :func:`pod_info` turns a pod into a :class:`PodInfo` once: aggregated requests
(containers, init containers as a max, sidecars, overhead), host ports, tolerations,
parsed node affinity, pod (anti-)affinity terms and topology spread constraints, priority,
and the equivalence key shared by pods with identical scheduling requirements.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from kybern.api import labels, placement, quantity

Obj = dict[str, Any]

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL_STORAGE = "ephemeral-storage"
PODS = "pods"
DEFAULT_MILLI_CPU_REQUEST = 100  # what scoring assumes for a container without a cpu request
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024


def resource_value(name: str, value: str | int | float) -> int:
    """Quantities as the scheduler counts them: cpu in millicores, everything else in units."""
    return quantity.milli_value(value) if name == CPU else quantity.int_value(value)


def resource_list(raw: Mapping[str, Any] | None) -> dict[str, int]:
    return {name: resource_value(name, value) for name, value in (raw or {}).items()}


# Shared with the controllers that place pods themselves (kybern.api.placement).
NodeSelectorTerm = placement.NodeSelectorTerm
node_selector_term = placement.node_selector_term


@dataclass(frozen=True, slots=True)
class AffinityTerm:
    """A podAffinityTerm with its namespaces resolved (weight 0 when required)."""

    selector: labels.Selector
    namespaces: frozenset[str]
    namespace_selector: labels.Selector | None
    topology_key: str
    weight: int = 0

    def matches(self, pod: PodInfo, namespace_labels: Mapping[str, Mapping[str, str]]) -> bool:
        in_namespace = pod.namespace in self.namespaces
        if not in_namespace and self.namespace_selector is not None:
            in_namespace = self.namespace_selector.matches(namespace_labels.get(pod.namespace, {}))
        return in_namespace and self.selector.matches(pod.labels)


@dataclass(frozen=True, slots=True)
class SpreadConstraint:
    max_skew: int
    topology_key: str
    when_unsatisfiable: str
    selector: labels.Selector
    min_domains: int
    honor_node_affinity: bool
    honor_taints: bool


@dataclass(eq=False, slots=True)
class PodInfo:
    obj: Obj
    uid: str
    namespace: str
    name: str
    labels: dict[str, str]
    node_name: str
    scheduler_name: str
    priority: int
    preemption_never: bool
    requests: dict[str, int]
    non_zero_cpu: int
    non_zero_memory: int
    ports: tuple[tuple[str, str, int], ...]
    tolerations: tuple[Mapping[str, Any], ...]
    node_selector: dict[str, str]
    required_node_affinity: tuple[NodeSelectorTerm, ...] | None
    preferred_node_affinity: tuple[tuple[int, NodeSelectorTerm], ...]
    affinity: tuple[AffinityTerm, ...]
    anti_affinity: tuple[AffinityTerm, ...]
    preferred_affinity: tuple[AffinityTerm, ...]
    preferred_anti_affinity: tuple[AffinityTerm, ...]
    spread_constraints: tuple[SpreadConstraint, ...]
    images: tuple[str, ...]
    creation: str
    nominated_node: str
    _key: bytes | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def has_pod_affinity(self) -> bool:
        return bool(
            self.affinity
            or self.anti_affinity
            or self.preferred_affinity
            or self.preferred_anti_affinity
        )

    def equivalence_key(self) -> bytes:
        """Pods with the same key get the same filter results and scores on the same node
        state (Borg's equivalence classes): everything the node-local plugins read."""
        if self._key is None:
            spec = self.obj.get("spec") or {}
            self._key = orjson.dumps(
                [
                    self.scheduler_name,
                    sorted(self.requests.items()),
                    self.non_zero_cpu,
                    self.non_zero_memory,
                    self.ports,
                    spec.get("nodeName"),
                    spec.get("nodeSelector"),
                    spec.get("affinity"),
                    spec.get("tolerations"),
                    self.images,
                ],
                option=orjson.OPT_SORT_KEYS,
            )
        return self._key


def pod_info(pod: Obj) -> PodInfo:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    namespace = meta.get("namespace") or "default"
    pod_labels = dict(meta.get("labels") or {})
    containers = list(spec.get("containers") or [])
    init_containers = list(spec.get("initContainers") or [])
    overhead = resource_list(spec.get("overhead"))
    requests = aggregate_requests(containers, init_containers, overhead, non_zero=False)
    non_zero = aggregate_requests(containers, init_containers, overhead, non_zero=True)
    affinity = spec.get("affinity") or {}
    node_affinity = affinity.get("nodeAffinity") or {}
    pod_affinity = affinity.get("podAffinity") or {}
    anti = affinity.get("podAntiAffinity") or {}
    return PodInfo(
        obj=pod,
        uid=meta.get("uid") or f"{namespace}/{meta.get('name')}",
        namespace=namespace,
        name=meta.get("name") or "",
        labels=pod_labels,
        node_name=spec.get("nodeName") or "",
        scheduler_name=spec.get("schedulerName") or "default-scheduler",
        priority=int(spec.get("priority") or 0),
        preemption_never=spec.get("preemptionPolicy") == "Never",
        requests=requests,
        non_zero_cpu=non_zero.get(CPU, 0),
        non_zero_memory=non_zero.get(MEMORY, 0),
        ports=_host_ports(containers + init_containers),
        tolerations=tuple(spec.get("tolerations") or ()),
        node_selector=dict(spec.get("nodeSelector") or {}),
        required_node_affinity=_required_node_affinity(node_affinity),
        preferred_node_affinity=tuple(
            (int(p.get("weight") or 0), node_selector_term(p.get("preference") or {}))
            for p in node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
        ),
        affinity=_terms(pod_affinity, namespace, preferred=False),
        anti_affinity=_terms(anti, namespace, preferred=False),
        preferred_affinity=_terms(pod_affinity, namespace, preferred=True),
        preferred_anti_affinity=_terms(anti, namespace, preferred=True),
        spread_constraints=_spread(spec.get("topologySpreadConstraints") or (), pod_labels),
        images=tuple(c.get("image") or "" for c in containers + init_containers),
        creation=meta.get("creationTimestamp") or "",
        nominated_node=(pod.get("status") or {}).get("nominatedNodeName") or "",
    )


def aggregate_requests(
    containers: list[Obj], init_containers: list[Obj], overhead: dict[str, int], *, non_zero: bool
) -> dict[str, int]:
    """Kubernetes' AggregateContainerRequests: app containers and sidecars add up, each
    regular init container runs alone (with the sidecars started before it), the max wins,
    then the pod overhead is added."""
    total: dict[str, int] = {}
    for container in containers:
        _add(total, _container_requests(container, non_zero))
    sidecars: dict[str, int] = {}
    init_max: dict[str, int] = {}
    for container in init_containers:
        reqs = _container_requests(container, non_zero)
        if container.get("restartPolicy") == "Always":
            _add(sidecars, reqs)
            running = dict(sidecars)
        else:
            running = dict(reqs)
            _add(running, sidecars)
        _max(init_max, running)
    _add(total, sidecars)
    _max(total, init_max)
    _add(total, overhead)
    return total


def _container_requests(container: Obj, non_zero: bool) -> dict[str, int]:
    reqs = resource_list((container.get("resources") or {}).get("requests"))
    if non_zero:
        return {
            CPU: reqs.get(CPU) or DEFAULT_MILLI_CPU_REQUEST,
            MEMORY: reqs.get(MEMORY) or DEFAULT_MEMORY_REQUEST,
        }
    return reqs


def _add(into: dict[str, int], more: Mapping[str, int]) -> None:
    for name, value in more.items():
        into[name] = into.get(name, 0) + value


def _max(into: dict[str, int], other: Mapping[str, int]) -> None:
    for name, value in other.items():
        if value > into.get(name, 0):
            into[name] = value


def _host_ports(containers: list[Obj]) -> tuple[tuple[str, str, int], ...]:
    found = []
    for container in containers:
        for port in container.get("ports") or ():
            host_port = int(port.get("hostPort") or 0)
            if host_port > 0:
                ip = port.get("hostIP") or "0.0.0.0"
                found.append((ip, port.get("protocol") or "TCP", host_port))
    return tuple(found)


def _required_node_affinity(node_affinity: Obj) -> tuple[NodeSelectorTerm, ...] | None:
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return None
    return tuple(node_selector_term(t) for t in required.get("nodeSelectorTerms") or ())


def _terms(section: Obj, namespace: str, *, preferred: bool) -> tuple[AffinityTerm, ...]:
    if preferred:
        weighted = section.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
        return tuple(
            affinity_term(w.get("podAffinityTerm") or {}, namespace, int(w.get("weight") or 0))
            for w in weighted
        )
    required = section.get("requiredDuringSchedulingIgnoredDuringExecution") or ()
    return tuple(affinity_term(t, namespace, 0) for t in required)


def affinity_term(term: Obj, namespace: str, weight: int) -> AffinityTerm:
    namespaces = frozenset(term.get("namespaces") or ())
    raw_ns_selector = term.get("namespaceSelector")
    ns_selector = None if raw_ns_selector is None else labels.from_label_selector(raw_ns_selector)
    if not namespaces and raw_ns_selector is None:
        namespaces = frozenset((namespace,))
    return AffinityTerm(
        selector=labels.from_label_selector(term.get("labelSelector")),
        namespaces=namespaces,
        namespace_selector=ns_selector,
        topology_key=str(term.get("topologyKey") or ""),
        weight=weight,
    )


def _spread(raw: Any, pod_labels: dict[str, str]) -> tuple[SpreadConstraint, ...]:
    found = []
    for c in raw:
        selector = dict(c.get("labelSelector") or {})
        keys = [k for k in c.get("matchLabelKeys") or () if k in pod_labels]
        if keys:  # matchLabelKeys: AND the pod's own values for those keys into the selector
            exprs = list(selector.get("matchExpressions") or ())
            exprs += [{"key": k, "operator": "In", "values": [pod_labels[k]]} for k in keys]
            selector["matchExpressions"] = exprs
        found.append(
            SpreadConstraint(
                max_skew=int(c.get("maxSkew") or 1),
                topology_key=str(c.get("topologyKey") or ""),
                when_unsatisfiable=str(c.get("whenUnsatisfiable") or "DoNotSchedule"),
                selector=labels.from_label_selector(c.get("labelSelector") and selector),
                min_domains=int(c.get("minDomains") or 1),
                honor_node_affinity=(c.get("nodeAffinityPolicy") or "Honor") == "Honor",
                honor_taints=(c.get("nodeTaintsPolicy") or "Ignore") == "Honor",
            )
        )
    return tuple(found)


def pod_info_uid(pod: Obj) -> str:
    """The key PodInfo uses for a pod (its uid, or namespace/name without one)."""
    meta = pod.get("metadata") or {}
    return meta.get("uid") or f"{meta.get('namespace') or 'default'}/{meta.get('name')}"
