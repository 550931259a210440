"""The service proxy's rule set: a pure function from Services and EndpointSlices to what
every backend (nftables, iptables, userspace) must implement on this node.

One :class:`ServicePort` per (service, port): its virtual IPs, NodePort, LoadBalancer ingress
and external IPs, and two endpoint lists: ``endpoints`` for traffic to the ClusterIP
(internalTrafficPolicy applied) and ``external_endpoints`` for NodePort/LoadBalancer/external
IP traffic (externalTrafficPolicy applied). Endpoint choice follows kube-proxy
(pkg/proxy/topology.go): ready endpoints; when none is ready, the serving-and-terminating
ones (ProxyTerminatingEndpoints); a ``Local`` policy keeps only this node's endpoints, and
then no local endpoint means the traffic is dropped, not sent elsewhere.

Skipped, as kube-proxy skips them: headless services (``clusterIP: None``), services whose
ClusterIP is not allocated yet, ExternalName services, FQDN EndpointSlices, and (for now) IPv6.
Named targetPorts need no work here: the EndpointSlice controller already resolved them into
the slices' ``ports``, matched to the service port by name.

Everything is a frozen dataclass, so :func:`diff` between two rule sets is a dict comparison.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds, Kubernetes' sessionAffinityConfig default
PROTOCOLS = ("TCP", "UDP", "SCTP")


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    ip: str
    port: int
    local: bool = False  # runs on this node

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True, slots=True)
class ServicePort:
    """Everything the data path needs for one port of one service."""

    namespace: str
    service: str
    port_name: str
    protocol: str  # TCP, UDP or SCTP
    port: int
    cluster_ips: tuple[str, ...]
    node_port: int = 0
    load_balancer_ips: tuple[str, ...] = ()
    external_ips: tuple[str, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    external_endpoints: tuple[Endpoint, ...] = ()
    affinity_timeout: int = 0  # seconds of ClientIP affinity; 0 = none
    external_local: bool = False  # externalTrafficPolicy Local: keep the client's address

    @property
    def key(self) -> str:
        """``namespace/service:port`` (kube-proxy's ServicePortName, proto added)."""
        return f"{self.namespace}/{self.service}:{self.port_name}/{self.protocol.lower()}"

    @property
    def has_external(self) -> bool:
        return bool(self.node_port or self.load_balancer_ips or self.external_ips)


@dataclass(frozen=True, slots=True)
class RuleSet:
    node_name: str = ""
    node_ips: tuple[str, ...] = ()  # where NodePorts answer; empty = every local address
    cluster_cidr: str = ""  # pod network: traffic to a VIP from outside it is masqueraded
    services: Mapping[str, ServicePort] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.services)


@dataclass(frozen=True, slots=True)
class Diff:
    added: tuple[ServicePort, ...]
    removed: tuple[ServicePort, ...]
    changed: tuple[tuple[ServicePort, ServicePort], ...]  # (old, new)
    node_changed: bool  # node IPs or cluster CIDR: the backends then resync fully

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.node_changed)


def diff(old: RuleSet, new: RuleSet) -> Diff:
    """What changed from ``old`` to ``new``, by service port key."""
    before, after = old.services, new.services
    added = tuple(sp for k, sp in after.items() if k not in before)
    removed = tuple(sp for k, sp in before.items() if k not in after)
    # Identity first: an incremental rule set reuses the unchanged ServicePort objects.
    changed = tuple(
        (before[k], sp)
        for k, sp in after.items()
        if k in before and before[k] is not sp and before[k] != sp
    )
    node_changed = (old.node_ips, old.cluster_cidr) != (new.node_ips, new.cluster_cidr)
    return Diff(added, removed, changed, node_changed)


# -- computing a rule set ------------------------------------------------------------------


def compute(
    services: Iterable[Obj],
    slices: Iterable[Obj],
    *,
    node_name: str = "",
    node_ips: Iterable[str] = (),
    cluster_cidr: str = "",
) -> RuleSet:
    """The rule set for this node from every Service and EndpointSlice in the cluster."""
    by_service = slices_by_service(slices)
    result: dict[str, ServicePort] = {}
    for svc in services:
        meta = svc.get("metadata") or {}
        key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        for sp in service_ports(svc, by_service.get(key, []), node_name=node_name):
            result[sp.key] = sp
    ips = tuple(sorted({ip for ip in node_ips if _is_ipv4(ip)}))
    return RuleSet(node_name=node_name, node_ips=ips, cluster_cidr=cluster_cidr, services=result)


def service_key(obj: Obj) -> str:
    """``namespace/name`` of a Service, or of the Service an EndpointSlice belongs to."""
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    if obj.get("kind") == "EndpointSlice" or "addressType" in obj:
        name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL, "")
    return f"{meta.get('namespace', '')}/{name}" if name else ""


def slices_by_service(slices: Iterable[Obj]) -> dict[str, list[Obj]]:
    """``namespace/service`` -> its IPv4 EndpointSlices (FQDN/IPv6 slices dropped)."""
    out: dict[str, list[Obj]] = {}
    for slice_ in slices:
        meta = slice_.get("metadata") or {}
        svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not svc or slice_.get("addressType", "IPv4") != "IPv4":
            continue
        out.setdefault(f"{meta.get('namespace', '')}/{svc}", []).append(slice_)
    return out


def service_ports(svc: Obj, slices: list[Obj], *, node_name: str) -> list[ServicePort]:
    """One ServicePort per port of ``svc``; none for services the proxy skips."""
    spec = svc.get("spec") or {}
    cluster_ips = _cluster_ips(spec)
    if spec.get("type") == "ExternalName" or not cluster_ips:
        return []
    meta = svc.get("metadata") or {}
    affinity = _affinity_timeout(spec)
    lb = (svc.get("status") or {}).get("loadBalancer") or {}
    lb_ips = ipv4s(i.get("ip") for i in lb.get("ingress") or [])
    external_ips = ipv4s(spec.get("externalIPs") or [])
    internal_local = spec.get("internalTrafficPolicy") == "Local"
    external_local = spec.get("externalTrafficPolicy") == "Local" and spec.get("type") in (
        "NodePort",
        "LoadBalancer",
    )
    out = []
    for port in spec.get("ports") or []:
        protocol = port.get("protocol") or "TCP"
        if protocol not in PROTOCOLS or not isinstance(port.get("port"), int):
            continue
        name = port.get("name") or ""
        all_eps = endpoints_for(slices, name, protocol, node_name=node_name)
        cluster = select(all_eps, local_only=internal_local)
        node_port = port.get("nodePort") if spec.get("type") in ("NodePort", "LoadBalancer") else 0
        node_port = node_port if isinstance(node_port, int) else 0
        external = bool(node_port or lb_ips or external_ips)
        out.append(
            ServicePort(
                namespace=meta.get("namespace", ""),
                service=meta.get("name", ""),
                port_name=name,
                protocol=protocol,
                port=port["port"],
                cluster_ips=cluster_ips,
                node_port=node_port,
                load_balancer_ips=lb_ips,
                external_ips=external_ips,
                endpoints=cluster,
                external_endpoints=select(all_eps, local_only=external_local) if external else (),
                affinity_timeout=affinity,
                external_local=external_local,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class _Candidate:
    endpoint: Endpoint
    ready: bool
    serving: bool
    terminating: bool


def endpoints_for(
    slices: list[Obj], port_name: str, protocol: str, *, node_name: str
) -> list[_Candidate]:
    """Every endpoint of the slices' port named ``port_name`` (deduplicated by address)."""
    seen: dict[tuple[str, int], _Candidate] = {}
    for slice_ in slices:
        port = _slice_port(slice_, port_name, protocol)
        if port is None:
            continue
        for ep in slice_.get("endpoints") or []:
            for cand in _candidates(ep, port, node_name):
                key = (cand.endpoint.ip, cand.endpoint.port)
                # A ready copy wins over a stale not-ready one from another slice.
                if key not in seen or (cand.ready and not seen[key].ready):
                    seen[key] = cand
    return sorted(seen.values(), key=lambda c: c.endpoint)


def _slice_port(slice_: Obj, port_name: str, protocol: str) -> int | None:
    for p in slice_.get("ports") or []:
        if (p.get("name") or "") == port_name and (p.get("protocol") or "TCP") == protocol:
            number = p.get("port")
            return number if isinstance(number, int) and 0 < number < 65536 else None
    return None


def _candidates(ep: Obj, port: int, node_name: str) -> list[_Candidate]:
    cond = ep.get("conditions") or {}
    # Unset conditions mean: ready unless said otherwise, serving = ready, not terminating.
    ready = cond.get("ready") is not False
    serving = cond.get("serving") if cond.get("serving") is not None else ready
    terminating = cond.get("terminating") is True
    local = bool(node_name) and ep.get("nodeName") == node_name
    return [
        _Candidate(Endpoint(ip, port, local), ready, bool(serving), terminating)
        for ip in ipv4s(ep.get("addresses") or [])
    ]


def select(cands: list[_Candidate], *, local_only: bool) -> tuple[Endpoint, ...]:
    """Ready endpoints; serving+terminating ones only when none is ready (kube-proxy's
    CategorizeEndpoints), computed among this node's endpoints for a Local policy."""
    pool = [c for c in cands if c.endpoint.local] if local_only else cands
    ready = [c.endpoint for c in pool if c.ready]
    if ready:
        return tuple(ready)
    return tuple(c.endpoint for c in pool if c.serving and c.terminating)


def _cluster_ips(spec: Obj) -> tuple[str, ...]:
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    if "None" in ips:
        return ()
    return ipv4s(ips)


def _affinity_timeout(spec: Obj) -> int:
    if spec.get("sessionAffinity") != "ClientIP":
        return 0
    cfg = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds")
    return cfg if isinstance(cfg, int) and cfg > 0 else DEFAULT_AFFINITY_TIMEOUT


def ipv4s(values: Iterable[Any]) -> tuple[str, ...]:
    return tuple(v for v in values if isinstance(v, str) and _is_ipv4(v))


def _is_ipv4(value: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(value), ipaddress.IPv4Address)
    except ValueError:
        return False
