"""Cluster DNS records: a pure lookup from cached Services, EndpointSlices and Pods.

This is what CoreDNS's ``kubernetes`` plugin answers, following the Kubernetes DNS-Based
Service Discovery specification, for the zone (``cluster.local`` by default):

- ``<svc>.<ns>.svc.<zone>``: A/AAAA with the ClusterIPs; for a headless service
  (``clusterIP: None``) the ready endpoint IPs; for an ExternalName service a CNAME to
  ``spec.externalName`` (the server resolves a target outside the zone through the upstream).
- ``<host>.<svc>.<ns>.svc.<zone>``: one endpoint, named by its ``hostname`` (StatefulSet pods
  through ``subdomain``) or else by its IP with dashes (``10-0-0-5``).
- ``_<port>._<proto>.<svc>.<ns>.svc.<zone>`` SRV for named ports (a bare service name answers
  every port): a ClusterIP service has one target, ``<svc>.<ns>.svc.<zone>``; a headless one
  one per ready endpoint, ``<host>.<svc>.<ns>.svc.<zone>``; the targets' addresses go in the
  additional section. Priority 0, weight ``floor(100 / n)`` as CoreDNS computes it.
- ``a-b-c-d.<ns>.pod.<zone>``: pod records. :data:`INSECURE` (CoreDNS ``pods insecure``, what
  kubeadm's and k3s's Corefiles use, kybern's default) answers with the IP spelled in the
  name; :data:`VERIFIED` only when a pod in that namespace has that IP; :data:`DISABLED`
  answers NXDOMAIN.
- ``dns-version.<zone>`` TXT ``1.1.0`` (the specification's schema version); SOA and NS at the
  apex (``ns.dns.<zone>``, whose address is the ``kube-system/kube-dns`` service's ClusterIP).
- PTR in ``in-addr.arpa``/``ip6.arpa``: a ClusterIP names its service; a ready endpoint IP
  names the endpoint (``<host>.<svc>.<ns>.svc.<zone>``), as CoreDNS does. Beyond CoreDNS, a
  pod IP that is no endpoint names the pod (``a-b-c-d.<ns>.pod.<zone>``). An address nobody
  in the cluster has is not ours: the caller forwards it (CoreDNS's ``fallthrough``).

A name in the zone that does not exist gets NXDOMAIN, one that exists but has no record of the
asked type NOERROR with no answer (NODATA), both with the zone's SOA in the authority section.
Every record has a TTL of 5 s (CoreDNS's default). Names match case-insensitively; answers keep
the case of the question. :meth:`Resolver.resolve` returns ``None`` for names outside the zone
(the server forwards those): cluster names are never forwarded.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dnslib import AAAA, CNAME, NS, PTR, QTYPE, RCODE, RR, SOA, SRV, TXT, A

from kybern.client import store

Obj = dict[str, Any]

TTL = 5  # seconds, CoreDNS's kubernetes plugin default
SCHEMA_VERSION = "1.1.0"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
INSECURE, VERIFIED, DISABLED = "insecure", "verified", "disabled"
POD_MODES = (INSECURE, VERIFIED, DISABLED)
MAX_CNAME_DEPTH = 8  # as CoreDNS: stop following in-zone ExternalName chains after this

# Index names this module adds to the informers' stores.
BY_SERVICE = "dns-service"  # EndpointSlice -> "<ns>/<service>"
BY_CLUSTER_IP = "dns-cluster-ip"  # Service -> each ClusterIP
BY_ADDRESS = "dns-address"  # EndpointSlice -> each endpoint address
BY_POD_IP = "dns-pod-ip"  # Pod -> each pod IP (host-network pods excluded)


# -- the cached state ------------------------------------------------------------------


def _slice_service(obj: Obj) -> Iterable[str]:
    meta = obj.get("metadata") or {}
    name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return [f"{meta.get('namespace', '')}/{name}"] if name else []


def cluster_ips(service: Obj) -> list[str]:
    """The allocated ClusterIPs (``clusterIPs`` first; none when headless or unallocated)."""
    spec = service.get("spec") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [ip for ip in ips if ip and ip != "None"]


def _service_ips(obj: Obj) -> Iterable[str]:
    return [_canonical(ip) for ip in cluster_ips(obj)]


def _slice_addresses(obj: Obj) -> Iterable[str]:
    if obj.get("addressType") == "FQDN":
        return []
    return [_canonical(a) for ep in obj.get("endpoints") or [] for a in ep.get("addresses") or []]


def _pod_ips(obj: Obj) -> Iterable[str]:
    if (obj.get("spec") or {}).get("hostNetwork"):
        return []  # the node's address: it names the node, not this pod
    status = obj.get("status") or {}
    ips = [p.get("ip") for p in status.get("podIPs") or []] or [status.get("podIP")]
    return [_canonical(ip) for ip in ips if ip]


def _canonical(ip: str) -> str:
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ip


class View:
    """The three caches the records come from, with the indexes the lookups need.

    Give it the informers' stores (it adds its indexers to them) or, in tests, plain
    ``store.Store`` objects. Whoever changes the stores calls :meth:`changed` (the component
    does, from the informers' handlers): it moves ``serial``, the SOA serial, which also tells
    the server its cached replies are stale.
    """

    def __init__(self, services: store.Store, slices: store.Store, pods: store.Store) -> None:
        self.services, self.slices, self.pods = services, slices, pods
        self.serial = 1
        services.add_indexer(BY_CLUSTER_IP, _service_ips)
        slices.add_indexer(BY_SERVICE, _slice_service)
        slices.add_indexer(BY_ADDRESS, _slice_addresses)
        pods.add_indexer(BY_POD_IP, _pod_ips)

    def changed(self, now: float) -> None:
        """Something in the caches changed; the serial follows the clock (as CoreDNS's
        modification time) and always moves forward, wrapping within 32 bits."""
        self.serial = max(self.serial + 1, int(now)) & 0xFFFFFFFF or 1

    def service(self, namespace: str, name: str) -> Obj | None:
        return self.services.get_by_name(name, namespace)

    def slices_of(self, namespace: str, service: str) -> list[Obj]:
        return self.slices.by_index(BY_SERVICE, f"{namespace}/{service}")

    def services_with_ip(self, ip: str) -> list[Obj]:
        return self.services.by_index(BY_CLUSTER_IP, ip)

    def slices_with_address(self, ip: str) -> list[Obj]:
        return self.slices.by_index(BY_ADDRESS, ip)

    def pods_with_ip(self, ip: str) -> list[Obj]:
        return self.pods.by_index(BY_POD_IP, ip)


# -- answers -----------------------------------------------------------------------------


@dataclass
class Answer:
    """What the server puts in a reply. ``chase``: (name, qtype) pairs outside the zone whose
    upstream answers must follow the CNAMEs already in ``answer`` (ExternalName targets)."""

    rcode: int = RCODE.NOERROR
    answer: list[RR] = field(default_factory=list)
    authority: list[RR] = field(default_factory=list)
    additional: list[RR] = field(default_factory=list)
    chase: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Target:
    """One thing a name stands for (CoreDNS's ``msg.Service``): ``host`` is an IP or, for
    ExternalName, a domain; ``owner`` is the name an SRV record points to."""

    host: str
    owner: str
    port: int = -1  # -1: no port (a headless service without ports)


@dataclass(frozen=True, slots=True)
class Query:
    """A name in the zone split as CoreDNS's parseRequest does (labels lower-cased)."""

    kind: str = ""  # "svc", "pod" or "" (apex, bare svc/pod, namespace: NODATA)
    namespace: str = ""
    service: str = ""
    endpoint: str = ""
    port: str = ""
    protocol: str = ""


class Invalid(Exception):
    """A name in the zone that cannot exist (NXDOMAIN)."""


def parse(base: list[str]) -> Query:
    """``base``: the labels left of the zone, lower-cased; raises :class:`Invalid`."""
    if not base:
        return Query()
    kind = base[-1]
    if kind not in ("svc", "pod"):
        raise Invalid
    rest = base[:-1]
    if len(rest) <= 1:
        return Query(kind, rest[0] if rest else "")
    namespace, service, left = rest[-1], rest[-2], rest[:-2]
    if not left:
        return Query(kind, namespace, service)
    if len(left) == 1:
        return Query(kind, namespace, service, endpoint=left[0])
    if len(left) == 2:
        port, protocol = _strip_underscore(left[0]), _strip_underscore(left[1])
        return Query(kind, namespace, service, port=port, protocol=protocol)
    raise Invalid


def _strip_underscore(label: str) -> str:
    return label[1:] if label.startswith("_") else label


def endpoint_hostname(endpoint: Obj, ip: str) -> str:
    """An endpoint's DNS label: its hostname, or its IP with dashes (CoreDNS)."""
    return str(endpoint.get("hostname") or ip.replace(".", "-").replace(":", "-"))


def _ready(endpoint: Obj) -> bool:
    return (endpoint.get("conditions") or {}).get("ready") is not False


def _matches(wanted: str, value: str) -> bool:
    return not wanted or wanted == value.lower()


class Resolver:
    """Answers questions for one zone from a :class:`View`."""

    def __init__(
        self, view: View, *, zone: str = "cluster.local", pods: str = INSECURE, ttl: int = TTL
    ) -> None:
        if pods not in POD_MODES:
            raise ValueError(f"pods mode must be one of {POD_MODES}, not {pods!r}")
        self.view = view
        self.zone = zone.strip(".").lower()
        self.zone_labels = self.zone.split(".")
        self.pod_mode = pods
        self.ttl = ttl

    # -- entry point ---------------------------------------------------------------------

    def in_zone(self, name: str) -> bool:
        labels = _labels(name)
        n = len(self.zone_labels)
        return len(labels) >= n and labels[len(labels) - n :] == self.zone_labels

    def resolve(self, qname: str, qtype: int) -> Answer | None:
        """The answer for a question, or ``None`` when it is not the cluster's to answer."""
        if self.in_zone(qname):
            return self._zone_answer(qname, qtype)
        if qtype == QTYPE.PTR:
            return self._reverse(qname)
        return None

    # -- the zone ------------------------------------------------------------------------

    def _zone_answer(self, qname: str, qtype: int) -> Answer:
        base = _labels(qname)[: -len(self.zone_labels)]
        try:
            records, extra, chase = self._records(qname, base, qtype, depth=0)
        except Invalid:
            return Answer(RCODE.NXDOMAIN, authority=[self.soa()])
        if not records:
            return Answer(authority=[self.soa()])
        return Answer(answer=records, additional=extra, chase=chase)

    def _records(
        self, qname: str, base: list[str], qtype: int, *, depth: int
    ) -> tuple[list[RR], list[RR], list[tuple[str, int]]]:
        """-> (answer, additional, chase); raises Invalid for a name that does not exist."""
        if base == ["dns-version"]:
            txt = RR(qname, QTYPE.TXT, ttl=self.ttl, rdata=TXT(SCHEMA_VERSION))
            return ([txt] if qtype == QTYPE.TXT else []), [], []
        if base == ["ns", "dns"]:
            return self._address_records(qname, self._dns_targets(qname), qtype), [], []
        if not base and qtype in (QTYPE.SOA, QTYPE.NS):
            return self._apex(qtype)
        targets = self._targets(parse(base))
        if qtype in (QTYPE.A, QTYPE.AAAA):
            return self._addresses(qname, targets, qtype, depth=depth)
        if qtype == QTYPE.SRV:
            return self._srv(qname, targets)
        if qtype == QTYPE.CNAME:
            names = [t.host for t in targets if not _is_ip(t.host)]
            return (
                [RR(qname, QTYPE.CNAME, ttl=self.ttl, rdata=CNAME(names[0]))][:1] if names else [],
                [],
                [],
            )
        return [], [], []

    def _apex(self, qtype: int) -> tuple[list[RR], list[RR], list[tuple[str, int]]]:
        if qtype == QTYPE.SOA:
            return [self.soa()], [], []
        ns_name = f"ns.dns.{self.zone}."
        ns = RR(f"{self.zone}.", QTYPE.NS, ttl=self.ttl, rdata=NS(ns_name))
        glue: list[RR] = []
        for family in (QTYPE.A, QTYPE.AAAA):
            glue += self._address_records(ns_name, self._dns_targets(ns_name), family)
        return [ns], glue, []

    def _dns_targets(self, owner: str) -> list[Target]:
        """``ns.dns.<zone>``: the cluster DNS service's ClusterIPs."""
        svc = self.view.service("kube-system", "kube-dns")
        return [Target(ip, owner) for ip in cluster_ips(svc)] if svc else []

    def soa(self) -> RR:
        times = (self.view.serial, 7200, 1800, 86400, self.ttl)
        rdata = SOA(f"ns.dns.{self.zone}.", f"hostmaster.{self.zone}.", times)
        return RR(f"{self.zone}.", QTYPE.SOA, ttl=min(self.ttl, 300), rdata=rdata)

    # -- names to targets ----------------------------------------------------------------

    def _targets(self, query: Query) -> list[Target]:
        """Every target a parsed name stands for; [] is NODATA, Invalid is NXDOMAIN."""
        if not query.service:
            return []  # apex, bare svc/pod or a namespace: exists, holds nothing
        if query.kind == "pod":
            if query.endpoint or query.port:
                raise Invalid
            return self._pod_targets(query)
        svc = self.view.service(query.namespace, query.service)
        if svc is None:
            raise Invalid
        found = self._service_targets(svc, query)
        if found is None:
            raise Invalid
        return found

    def _pod_targets(self, query: Query) -> list[Target]:
        name = query.service
        ip = (
            name.replace("-", ".")
            if name.count("-") == 3 and "--" not in name
            else name.replace("-", ":")
        )
        if self.pod_mode == DISABLED or not _is_ip(ip):
            raise Invalid
        ip = _canonical(ip)
        if self.pod_mode == VERIFIED and not any(
            (p.get("metadata") or {}).get("namespace") == query.namespace
            for p in self.view.pods_with_ip(ip)
        ):
            raise Invalid
        return [Target(ip, "")]

    def _service_targets(self, svc: Obj, query: Query) -> list[Target] | None:
        """None: nothing matched (NXDOMAIN), as CoreDNS's errNoItems."""
        spec = svc.get("spec") or {}
        owner = f"{query.service}.{query.namespace}.svc.{self.zone}."
        if spec.get("type") == "ExternalName":
            target = str(spec.get("externalName") or "").rstrip(".")
            if query.endpoint or not target or _is_ip(target):
                return None
            return [Target(target, owner, 0)]
        if spec.get("clusterIP") == "None" or query.endpoint:
            found = self._endpoint_targets(query, owner)
            return found or None
        return self._cluster_ip_targets(svc, query, owner)

    def _cluster_ip_targets(self, svc: Obj, query: Query, owner: str) -> list[Target] | None:
        ports = [
            p
            for p in (svc.get("spec") or {}).get("ports") or []
            if _matches(query.port, p.get("name") or "")
            and _matches(query.protocol, p.get("protocol") or "TCP")
        ]
        if not ports:
            return None
        return [
            Target(ip, owner, int(p.get("port") or 0)) for p in ports for ip in cluster_ips(svc)
        ]

    def _endpoint_targets(self, query: Query, owner: str) -> list[Target]:
        found: list[Target] = []
        for eps in self.view.slices_of(query.namespace, query.service):
            if eps.get("addressType") == "FQDN":
                continue
            ports = eps.get("ports") or [{"port": -1}]  # no ports: addresses still count
            for endpoint in eps.get("endpoints") or []:
                if not _ready(endpoint):
                    continue
                for ip in endpoint.get("addresses") or []:
                    found += self._endpoint_port_targets(query, owner, endpoint, ip, ports)
        return found

    def _endpoint_port_targets(
        self, query: Query, owner: str, endpoint: Obj, ip: str, ports: list[Obj]
    ) -> list[Target]:
        host = endpoint_hostname(endpoint, ip)
        if query.endpoint and query.endpoint != host.lower():
            return []
        return [
            Target(
                _canonical(ip),
                f"{host}.{owner}",
                _port(p),
            )
            for p in ports
            if _matches(query.port, p.get("name") or "")
            and _matches(query.protocol, p.get("protocol") or "TCP")
        ]

    # -- targets to records --------------------------------------------------------------

    def _address_records(self, name: str, targets: list[Target], qtype: int) -> list[RR]:
        seen: set[str] = set()
        records = []
        for t in targets:
            if t.host in seen or not _is_ip(t.host) or _qtype_of(t.host) != qtype:
                continue
            seen.add(t.host)
            rdata = A(t.host) if qtype == QTYPE.A else AAAA(t.host)
            records.append(RR(name, qtype, ttl=self.ttl, rdata=rdata))
        return records

    def _addresses(
        self, qname: str, targets: list[Target], qtype: int, *, depth: int
    ) -> tuple[list[RR], list[RR], list[tuple[str, int]]]:
        records = self._address_records(qname, targets, qtype)
        chase: list[tuple[str, int]] = []
        for t in targets:
            if _is_ip(t.host) or t.host.lower() == qname.rstrip(".").lower():
                continue  # an address, or a direct CNAME loop
            cname = RR(qname, QTYPE.CNAME, ttl=self.ttl, rdata=CNAME(t.host + "."))
            if not self.in_zone(t.host):
                records.append(cname)
                chase.append((t.host + ".", qtype))
                continue
            if depth >= MAX_CNAME_DEPTH:
                continue
            try:
                more, _, more_chase = self._records(
                    t.host + ".", _labels(t.host)[: -len(self.zone_labels)], qtype, depth=depth + 1
                )
            except Invalid:
                continue
            if more:
                records += [cname, *more]
                chase += more_chase
        return records, [], chase

    def _srv(
        self, qname: str, targets: list[Target]
    ) -> tuple[list[RR], list[RR], list[tuple[str, int]]]:
        weight = max(1, math.floor(100 / len(targets))) if targets else 0
        records: list[RR] = []
        extra: list[RR] = []
        seen_srv: set[tuple[str, int]] = set()
        seen_addr: set[tuple[str, str]] = set()
        for t in targets:
            if t.port == -1:
                continue
            target = t.host + "." if not _is_ip(t.host) else t.owner
            if (target, t.port) not in seen_srv:
                seen_srv.add((target, t.port))
                rdata = SRV(priority=0, weight=weight, port=t.port, target=target)
                records.append(RR(qname, QTYPE.SRV, ttl=self.ttl, rdata=rdata))
            if _is_ip(t.host) and (target, t.host) not in seen_addr:
                seen_addr.add((target, t.host))
                extra += self._address_records(target, [t], _qtype_of(t.host))
        return records, extra, []

    # -- reverse lookups -----------------------------------------------------------------

    def _reverse(self, qname: str) -> Answer | None:
        ip = reverse_ip(qname)
        if ip is None:
            return None
        names = self._reverse_names(ip)
        if not names:
            return None
        records = [RR(qname, QTYPE.PTR, ttl=self.ttl, rdata=PTR(n)) for n in names]
        return Answer(answer=records)

    def _reverse_names(self, ip: str) -> list[str]:
        names: list[str] = []
        for svc in self.view.services_with_ip(ip):
            meta = svc.get("metadata") or {}
            names.append(f"{meta.get('name')}.{meta.get('namespace')}.svc.{self.zone}.")
        for eps in self.view.slices_with_address(ip):
            names += self._endpoint_names(eps, ip)
        if not names:
            for pod in self.view.pods_with_ip(ip):
                dashed = ip.replace(".", "-").replace(":", "-")
                names.append(
                    f"{dashed}.{(pod.get('metadata') or {}).get('namespace')}.pod.{self.zone}."
                )
        return list(dict.fromkeys(names))

    def _endpoint_names(self, eps: Obj, ip: str) -> list[str]:
        meta = eps.get("metadata") or {}
        service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not service:
            return []
        return [
            f"{endpoint_hostname(ep, ip)}.{service}.{meta.get('namespace')}.svc.{self.zone}."
            for ep in eps.get("endpoints") or []
            if _ready(ep) and ip in (_canonical(a) for a in ep.get("addresses") or [])
        ]


def reverse_ip(qname: str) -> str | None:
    """``4.3.2.1.in-addr.arpa.`` -> ``1.2.3.4`` (and nibble ``ip6.arpa`` names); else None."""
    labels = _labels(qname)
    if labels[-2:] == ["in-addr", "arpa"] and len(labels) == 6:
        text = ".".join(reversed(labels[:4]))
    elif labels[-2:] == ["ip6", "arpa"] and len(labels) == 34:
        nibbles = "".join(reversed(labels[:32]))
        text = ":".join(nibbles[i : i + 4] for i in range(0, 32, 4))
    else:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _labels(name: str) -> list[str]:
    name = name.rstrip(".").lower()
    return name.split(".") if name else []


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _qtype_of(ip: str) -> int:
    return int(QTYPE.A if ipaddress.ip_address(ip).version == 4 else QTYPE.AAAA)


def _port(port: Obj) -> int:
    value = port.get("port")
    return int(value) if isinstance(value, int) else -1
