"""The pods behind a Service, shared by the Endpoints and EndpointSlice controllers.

- ``ServicePodsController``, the base of both controllers: the Service and Pod caches; which
  Services a pod event concerns (every Service of its namespace whose selector matches it)
  and a Service's member pods (selected, and belonging in endpoints: Kubernetes'
  ShouldPodBeInEndpoints).
- ``port_groups``: each member's ports resolved against the Service's ports (a named
  targetPort is looked up in the pod's container ports with the same protocol; a pod without
  it is left out of that port; a pod with no port left is left out, except for a headless
  Service without ports) and the members grouped by identical port sets, groups in a
  deterministic order. Each controller renders ports and addresses its own way.
- ``pod_address``: the address fields both APIs carry (ip, nodeName, targetRef, hostname when
  ``spec.hostname`` is set and ``spec.subdomain`` names the Service).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from kybern import client as kclient
from kybern.api import labels

log = logging.getLogger(__name__)
Obj = dict[str, Any]
PortKey = tuple[str, int, str, str]
PortsKey = tuple[PortKey, ...]
# (ports, member pods) per set of ports
PortGroups = list[tuple[list[Obj], list[Obj]]]

LAST_CHANGE_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
HEADLESS_LABEL = "service.kubernetes.io/headless"


def service_selector(service: Obj) -> labels.Selector | None:
    """The Service's map selector, or None when it has none (endpoints managed by the user)."""
    selector = (service.get("spec") or {}).get("selector") or {}
    return labels.from_set(selector) if selector else None


def should_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """Kubernetes' ShouldPodBeInEndpoints."""
    status = pod.get("status") or {}
    if not status.get("podIP") and not status.get("podIPs"):
        return False
    if not include_terminating and pod["metadata"].get("deletionTimestamp"):
        return False
    phase = status.get("phase")
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    if policy == "Never":
        return phase not in ("Failed", "Succeeded")
    if policy == "OnFailure":
        return phase != "Succeeded"
    return True


def pod_ip(pod: Obj) -> str:
    status = pod.get("status") or {}
    ip = status.get("podIP")
    if ip:
        return str(ip)
    ips = status.get("podIPs") or [{}]
    return str(ips[0].get("ip") or "")


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """The pod's port for a service port (Kubernetes' findPort): a number as is, a name
    looked up in the containers' ports with the same protocol; None when the pod lacks it."""
    target = service_port.get("targetPort")
    if target is None or target == "":
        target = service_port.get("port")
    if isinstance(target, int):
        return target
    protocol = service_port.get("protocol") or "TCP"
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


def port_key(port: Obj) -> PortKey:
    return (
        str(port.get("name") or ""),
        int(port["port"]),
        str(port.get("protocol") or ""),
        str(port.get("appProtocol") or ""),
    )


def ports_key(ports: Iterable[Obj]) -> PortsKey:
    return tuple(sorted({port_key(p) for p in ports}))


def port_groups(
    service: Obj, members: Iterable[Obj], make_port: Callable[[Obj, int], Obj]
) -> PortGroups:
    """(ports, pods) per distinct port set of the members, in port-set order; ``make_port``
    renders a service port with the pod's number (each API spells ports its own way)."""
    spec = service.get("spec") or {}
    service_ports = spec.get("ports") or []
    headless = spec.get("clusterIP") == "None"
    groups: dict[PortsKey, tuple[list[Obj], list[Obj]]] = {}
    for pod in members:
        ports: list[Obj] = []
        for service_port in service_ports:
            number = find_port(pod, service_port)
            if number is None:
                log.debug(
                    "pod %s has no port %s for service %s",
                    kclient.key_of(pod),
                    service_port.get("targetPort"),
                    kclient.key_of(service),
                )
                continue
            ports.append(make_port(service_port, number))
        if not ports and (service_ports or not headless):
            continue
        unique = sorted({port_key(p): p for p in ports}.values(), key=port_key)
        groups.setdefault(ports_key(ports), (unique, []))[1].append(pod)
    return [groups[key] for key in sorted(groups)]


def pod_address(pod: Obj, service: Obj) -> Obj:
    meta = pod["metadata"]
    spec = pod.get("spec") or {}
    address: Obj = {
        "ip": pod_ip(pod),
        "targetRef": {
            "kind": "Pod",
            "namespace": meta.get("namespace", ""),
            "name": meta["name"],
            "uid": meta.get("uid", ""),
        },
    }
    if spec.get("nodeName"):
        address["nodeName"] = spec["nodeName"]
    smeta = service["metadata"]
    if (
        spec.get("hostname")
        and spec.get("subdomain") == smeta["name"]
        and meta.get("namespace") == smeta.get("namespace")
    ):
        address["hostname"] = spec["hostname"]
    return address


def service_labels(service: Obj) -> dict[str, str]:
    """The Service's labels plus ``service.kubernetes.io/headless`` for a headless Service."""
    wanted = dict(service["metadata"].get("labels") or {})
    if (service.get("spec") or {}).get("clusterIP") == "None":
        wanted[HEADLESS_LABEL] = ""
    else:
        wanted.pop(HEADLESS_LABEL, None)
    return wanted


class ServicePodsController:
    """The base of a controller keyed by Service that follows the Service's pods."""

    def __init__(
        self,
        *,
        client: kclient.Client,
        informers: kclient.SharedInformerFactory,
        clock: kclient.Clock | None = None,
    ) -> None:
        self.client = client
        self.clock = clock or informers.clock
        self.services = informers.informer_for("v1", "Service").store
        self.pods = informers.informer_for("v1", "Pod").store
        self.add_caches(informers)

    def add_caches(self, informers: kclient.SharedInformerFactory) -> None:
        """Where a subclass takes the other caches it reads (informers are created up front,
        before the factory starts)."""

    def pod_keys(self, pod: Obj) -> list[str]:
        """Every Service in the pod's namespace whose selector matches it."""
        meta = pod.get("metadata") or {}
        pod_labels = meta.get("labels") or {}
        keys = []
        for service in self.services.list(meta.get("namespace", "")):
            selector = service_selector(service)
            if selector is not None and selector.matches(pod_labels):
                keys.append(kclient.key_of(service))
        return keys

    def members(
        self, service: Obj, *, include_terminating: bool, ipv4_only: bool = False
    ) -> list[Obj] | None:
        """The selected pods that belong in endpoints (optionally only those with an IPv4
        address); None for a Service without a selector."""
        selector = service_selector(service)
        if selector is None:
            return None
        return [
            p
            for p in self.pods.list(service["metadata"].get("namespace", ""))
            if selector.matches(p["metadata"].get("labels") or {})
            and should_be_in_endpoints(p, include_terminating)
            and not (ipv4_only and ":" in pod_ip(p))
        ]
