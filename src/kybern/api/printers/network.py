"""Services, Endpoints, EndpointSlices (discovery.k8s.io), Ingresses, IngressClasses and
NetworkPolicies (networking.k8s.io)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kybern.api.printers import base
from kybern.api.printers.base import AGE, NAME, Cell, Column, Obj, Printer

_SVC_SPEC = "io.k8s.api.core.v1.ServiceSpec"
_SLICE = "io.k8s.api.discovery.v1.EndpointSlice"
_SHOWN = 3


# -- Service ---------------------------------------------------------------------------------


def _service(obj: Obj, now: float) -> list[Cell]:
    spec = base.as_map(obj.get("spec"))
    cluster_ips = base.as_list(spec.get("clusterIPs"))
    cluster_ip = base.text(cluster_ips[0]) if cluster_ips else base.text(spec.get("clusterIP"))
    ports = _ports(base.as_list(spec.get("ports")))
    return [
        base.name(obj),
        base.text(spec.get("type")),
        cluster_ip or "<none>",
        _external_ip(obj, spec),
        ports or "<none>",
        base.age(obj, now),
        base.format_labels(spec.get("selector")),
    ]


def _ports(ports: list[Any]) -> str:
    pieces = []
    for port in ports:
        number = base.as_int(base.get(port, "port"))
        protocol = base.text(base.get(port, "protocol")) or "TCP"
        node_port = base.as_int(base.get(port, "nodePort"))
        pieces.append(
            f"{number}:{node_port}/{protocol}" if node_port > 0 else f"{number}/{protocol}"
        )
    return ",".join(pieces)


def _external_ip(obj: Obj, spec: Mapping[str, Any]) -> str:
    kind = spec.get("type")
    external = [base.text(ip) for ip in base.as_list(spec.get("externalIPs"))]
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if kind == "LoadBalancer":
        balancer = load_balancer_addresses(base.get(obj, "status", "loadBalancer", "ingress"))
        if external:
            return ",".join([*balancer, *external])
        return ",".join(balancer) if balancer else "<pending>"
    if kind == "ExternalName":
        return base.text(spec.get("externalName"))
    return "<unknown>"


def load_balancer_addresses(ingress: Any) -> list[str]:
    """The distinct IPs (or hostnames) of a load balancer status, sorted; never clipped, as
    the server prints wide."""
    found = set()
    for point in base.as_list(ingress):
        address = base.text(base.get(point, "ip")) or base.text(base.get(point, "hostname"))
        if address:
            found.add(address)
    return sorted(found)


SERVICE = Printer(
    (
        NAME,
        Column("Type", doc=(_SVC_SPEC, "type")),
        Column("Cluster-IP", doc=(_SVC_SPEC, "clusterIP")),
        Column("External-IP", doc=(_SVC_SPEC, "externalIPs")),
        Column("Port(s)", doc=(_SVC_SPEC, "ports")),
        AGE,
        Column("Selector", doc=(_SVC_SPEC, "selector"), priority=1),
    ),
    _service,
)


# -- Endpoints -------------------------------------------------------------------------------


def _endpoints(obj: Obj, now: float) -> list[Cell]:
    return [base.name(obj), format_endpoints(base.as_list(obj.get("subsets"))), base.age(obj, now)]


def format_endpoints(subsets: list[Any]) -> str:
    """``ip:port`` for the first three addresses of every port, then ``+ N more...``."""
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count = 0
    for subset in subsets:
        addresses = [
            base.text(base.get(a, "ip")) for a in base.as_list(base.get(subset, "addresses"))
        ]
        ports = base.as_list(base.get(subset, "ports"))
        if not ports:
            count += len(addresses)
            shown += addresses[: _SHOWN - len(shown)]
            continue
        for port in ports:
            count += len(addresses)
            number = base.as_int(base.get(port, "port"))
            shown += [_host_port(ip, number) for ip in addresses[: _SHOWN - len(shown)]]
    joined = ",".join(shown)
    return f"{joined} + {count - _SHOWN} more..." if count > _SHOWN else joined


def _host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


ENDPOINTS = Printer(
    (NAME, Column("Endpoints", doc=("io.k8s.api.core.v1.Endpoints", "subsets")), AGE),
    _endpoints,
)


# -- EndpointSlice ---------------------------------------------------------------------------


def _endpoint_slice(obj: Obj, now: float) -> list[Cell]:
    ports = [_slice_port(p) for p in base.as_list(obj.get("ports"))]
    addresses = [
        base.text(address)
        for endpoint in base.as_list(obj.get("endpoints"))
        for address in base.as_list(base.get(endpoint, "addresses"))
    ]
    return [
        base.name(obj),
        base.text(obj.get("addressType")),
        base.with_more(ports[:_SHOWN], len(ports) > _SHOWN, len(ports), _SHOWN),
        base.with_more(addresses[:_SHOWN], len(addresses) > _SHOWN, len(addresses), _SHOWN),
        base.age(obj, now),
    ]


def _slice_port(port: Any) -> str:
    number = base.get(port, "port")
    if isinstance(number, int):
        return str(number)
    port_name = base.get(port, "name")
    return port_name if isinstance(port_name, str) else "*"


ENDPOINT_SLICE = Printer(
    (
        NAME,
        Column("AddressType", doc=(_SLICE, "addressType")),
        Column("Ports", doc=(_SLICE, "ports")),
        Column("Endpoints", doc=(_SLICE, "endpoints")),
        AGE,
    ),
    _endpoint_slice,
)


# -- Ingress, IngressClass, NetworkPolicy ----------------------------------------------------


def _ingress(obj: Obj, now: float) -> list[Cell]:
    spec = base.as_map(obj.get("spec"))
    address = load_balancer_addresses(base.get(obj, "status", "loadBalancer", "ingress"))
    return [
        base.name(obj),
        base.text(spec.get("ingressClassName")) or "<none>",
        _hosts(base.as_list(spec.get("rules"))),
        ",".join(address),
        "80, 443" if base.as_list(spec.get("tls")) else "80",
        base.age(obj, now),
    ]


def _hosts(rules: list[Any]) -> str:
    """formatHosts: up to three non-empty hosts; ``*`` when no rule names one."""
    shown: list[str] = []
    more = False
    for rule in rules:
        more = more or len(shown) == _SHOWN
        host = base.text(base.get(rule, "host"))
        if not more and host:
            shown.append(host)
    if not shown:
        return "*"
    joined = ",".join(shown)
    return f"{joined} + {len(rules) - _SHOWN} more..." if more else joined


INGRESS = Printer(
    (
        NAME,
        Column(
            "Class",
            doc="The name of the IngressClass resource that should be used for additional configuration",
        ),
        Column(
            "Hosts", doc="Hosts that incoming requests are matched against before the ingress rule"
        ),
        Column("Address", doc="Address is a list containing ingress points for the load-balancer"),
        Column("Ports", doc="Ports of TLS configurations that open"),
        AGE,
    ),
    _ingress,
)


def _ingress_class(obj: Obj, now: float) -> list[Cell]:
    spec = base.as_map(obj.get("spec"))
    parameters = "<none>"
    params = spec.get("parameters")
    if isinstance(params, Mapping):
        parameters = base.text(params.get("kind"))
        if isinstance(params.get("apiGroup"), str):
            parameters += "." + params["apiGroup"]
        parameters += "/" + base.text(params.get("name"))
    return [base.name(obj), base.text(spec.get("controller")), parameters, base.age(obj, now)]


INGRESS_CLASS = Printer(
    (
        NAME,
        Column("Controller", doc="Controller that is responsible for handling this class"),
        Column("Parameters", doc="A reference to a resource with additional parameters"),
        AGE,
    ),
    _ingress_class,
)


def _network_policy(obj: Obj, now: float) -> list[Cell]:
    selector = base.get(obj, "spec", "podSelector")
    return [base.name(obj), base.format_selector(selector or {}), base.age(obj, now)]


NETWORK_POLICY = Printer(
    (
        NAME,
        Column("Pod-Selector", doc=("io.k8s.api.networking.v1.NetworkPolicySpec", "podSelector")),
        AGE,
    ),
    _network_policy,
)
