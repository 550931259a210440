"""Endpoints: one core/v1 Endpoints per Service with a selector (Kubernetes' EndpointController).

One reconcile of ``namespace/name`` (Kubernetes' ``syncService``):

1. Service gone: delete the Endpoints of that name (a NotFound is fine). Service without a
   selector: leave its Endpoints alone (they are the user's).
2. Pods the selector matches that belong in endpoints (``should_be_in_endpoints``: an IP,
   not terminating unless ``publishNotReadyAddresses``, not finished for its restartPolicy).
   Each becomes an address (ip, nodeName, targetRef, hostname when ``spec.hostname`` is set
   and ``spec.subdomain`` names the Service) under ``addresses`` when Ready (or when the
   Service publishes not-ready addresses) and under ``notReadyAddresses`` otherwise.
3. Ports are resolved per pod: a named targetPort is looked up in the pod's container ports
   (same protocol); a pod without it is left out of that port. Name, protocol and
   appProtocol come from the service port. A headless Service without ports lists its
   addresses with no ports.
4. Addresses are grouped into subsets by identical port sets (Kubernetes' RepackSubsets),
   sorted so the result is deterministic.
5. Create, or update when the subsets or labels differ. Labels are the Service's labels plus
   ``service.kubernetes.io/headless`` for headless Services (Endpoints carry no managed-by
   label; EndpointSlices do). ``endpoints.kubernetes.io/last-change-trigger-time`` is set to
   the time of the write (Kubernetes tracks the triggering pod/service change; this is the
   moment the controller observed it).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from kybern import client as kclient
from kybern.api import labels
from kybern.controllers import pods, runtime

log = logging.getLogger(__name__)
Obj = dict[str, Any]

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


def endpoint_port(service_port: Obj, number: int) -> Obj:
    port: Obj = {"port": number, "protocol": service_port.get("protocol") or "TCP"}
    if service_port.get("name"):
        port["name"] = service_port["name"]
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


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


def _port_key(port: Obj) -> tuple[str, int, str, str]:
    return (
        str(port.get("name") or ""),
        int(port["port"]),
        str(port.get("protocol") or ""),
        str(port.get("appProtocol") or ""),
    )


def _address_key(address: Obj) -> tuple[str, str]:
    return (str(address["ip"]), str(address["targetRef"]["uid"]))


def compute_subsets(service: Obj, members: Iterable[Obj]) -> list[Obj]:
    """The Endpoints subsets for ``service`` over the pods that belong in endpoints."""
    spec = service.get("spec") or {}
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    service_ports = spec.get("ports") or []
    headless = spec.get("clusterIP") == "None"
    # port set -> (ready addresses, not-ready addresses)
    groups: dict[tuple[tuple[str, int, str, str], ...], tuple[list[Obj], list[Obj]]] = {}
    ports_of: dict[tuple[tuple[str, int, str, str], ...], list[Obj]] = {}
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
            ports.append(endpoint_port(service_port, number))
        if not ports and (service_ports or not headless):
            continue
        key = tuple(sorted({_port_key(p): p for p in ports}))
        ports_of[key] = sorted({_port_key(p): p for p in ports}.values(), key=_port_key)
        ready, not_ready = groups.setdefault(key, ([], []))
        address = pod_address(pod, service)
        (ready if publish_not_ready or pods.is_ready(pod) else not_ready).append(address)
    subsets = []
    for key in sorted(groups):
        ready, not_ready = groups[key]
        subset: Obj = {}
        if ready:
            subset["addresses"] = sorted(ready, key=_address_key)
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=_address_key)
        if ports_of[key]:
            subset["ports"] = ports_of[key]
        subsets.append(subset)
    return subsets


def endpoints_labels(service: Obj) -> dict[str, str]:
    wanted = dict(service["metadata"].get("labels") or {})
    if (service.get("spec") or {}).get("clusterIP") == "None":
        wanted[HEADLESS_LABEL] = ""
    else:
        wanted.pop(HEADLESS_LABEL, None)
    return wanted


class EndpointsController:
    name = "endpoint"
    workers = 5

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
        self.endpoints = informers.informer_for("v1", "Endpoints").store

    def watches(self) -> Sequence[runtime.Watch]:
        return [
            runtime.Watch("v1", "Service", runtime.own_key),
            runtime.Watch("v1", "Pod", self.pod_keys),
            runtime.Watch("v1", "Endpoints", runtime.own_key),
        ]

    def pod_keys(self, pod: Obj) -> Iterable[str]:
        """Every Service in the pod's namespace whose selector matches it."""
        meta = pod.get("metadata") or {}
        pod_labels = meta.get("labels") or {}
        keys = []
        for service in self.services.list(meta.get("namespace", "")):
            selector = service_selector(service)
            if selector is not None and selector.matches(pod_labels):
                keys.append(kclient.key_of(service))
        return keys

    async def reconcile(self, key: str) -> runtime.Result:
        namespace, _, name = key.rpartition("/")
        service = self.services.get(key)
        if service is None:
            try:
                await self.client.delete("v1", "Endpoints", name, namespace=namespace)
            except kclient.NotFound:
                pass
            return runtime.Result()
        selector = service_selector(service)
        if selector is None:
            return runtime.Result()
        include_terminating = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
        members = [
            p
            for p in self.pods.list(namespace)
            if selector.matches(p["metadata"].get("labels") or {})
            and should_be_in_endpoints(p, include_terminating)
        ]
        subsets = compute_subsets(service, members)
        wanted_labels = endpoints_labels(service)
        current = self.endpoints.get(key)
        if current is not None and (
            (current.get("subsets") or []) == subsets
            and (current["metadata"].get("labels") or {}) == wanted_labels
        ):
            return runtime.Result()
        await self.write(namespace, name, current, subsets, wanted_labels)
        return runtime.Result()

    async def write(
        self,
        namespace: str,
        name: str,
        current: Obj | None,
        subsets: list[Obj],
        wanted_labels: dict[str, str],
    ) -> None:
        stamp = self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        if current is None:
            new: Obj = {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": wanted_labels,
                    "annotations": {LAST_CHANGE_TRIGGER_TIME: stamp},
                },
                "subsets": subsets,
            }
            try:
                await self.client.create(new)
                return
            except kclient.AlreadyExists:
                # our cache is behind our own (or someone's) create: update what is there
                current = await self.client.get("v1", "Endpoints", name, namespace=namespace)
        updated = copy.deepcopy(current)
        updated.setdefault("apiVersion", "v1")
        updated.setdefault("kind", "Endpoints")
        meta = updated["metadata"]
        meta["labels"] = wanted_labels
        meta["annotations"] = {**(meta.get("annotations") or {}), LAST_CHANGE_TRIGGER_TIME: stamp}
        updated["subsets"] = subsets
        await self.client.update(updated)
