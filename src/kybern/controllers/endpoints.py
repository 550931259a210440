"""Endpoints: one core/v1 Endpoints per Service with a selector (Kubernetes' EndpointController).

One reconcile of ``namespace/name`` (Kubernetes' ``syncService``):

1. Service gone: delete the Endpoints of that name (a NotFound is fine). Service without a
   selector: leave its Endpoints alone (they are the user's).
2. Pods the selector matches that belong in endpoints (``servicepods``, shared with the
   EndpointSlice controller; ShouldPodBeInEndpoints: an IP, not terminating unless
   ``publishNotReadyAddresses``, not finished for its restartPolicy).
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
from kybern.controllers import pods, runtime, servicepods

log = logging.getLogger(__name__)
Obj = dict[str, Any]

LAST_CHANGE_TRIGGER_TIME = servicepods.LAST_CHANGE_TRIGGER_TIME
HEADLESS_LABEL = servicepods.HEADLESS_LABEL


def endpoint_port(service_port: Obj, number: int) -> Obj:
    port: Obj = {"port": number, "protocol": service_port.get("protocol") or "TCP"}
    if service_port.get("name"):
        port["name"] = service_port["name"]
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def _address_key(address: Obj) -> tuple[str, str]:
    return (str(address["ip"]), str(address["targetRef"]["uid"]))


def compute_subsets(service: Obj, members: Iterable[Obj]) -> list[Obj]:
    """The Endpoints subsets for ``service`` over the pods that belong in endpoints: one
    subset per distinct port set, its pods under ``addresses`` when Ready (or when the
    Service publishes not-ready addresses) and under ``notReadyAddresses`` otherwise."""
    publish_not_ready = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    subsets = []
    for ports, group in servicepods.port_groups(service, members, endpoint_port):
        ready: list[Obj] = []
        not_ready: list[Obj] = []
        for pod in group:
            address = servicepods.pod_address(pod, service)
            (ready if publish_not_ready or pods.is_ready(pod) else not_ready).append(address)
        subset: Obj = {}
        if ready:
            subset["addresses"] = sorted(ready, key=_address_key)
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=_address_key)
        if ports:
            subset["ports"] = ports
        subsets.append(subset)
    return subsets


def endpoints_labels(service: Obj) -> dict[str, str]:
    """Endpoints carry the Service's labels plus the headless label (no managed-by)."""
    return servicepods.service_labels(service)


class EndpointsController(servicepods.ServicePodsController):
    name = "endpoint"
    workers = 5

    def add_caches(self, informers: kclient.SharedInformerFactory) -> None:
        self.endpoints = informers.informer_for("v1", "Endpoints").store

    def watches(self) -> Sequence[runtime.Watch]:
        return [
            runtime.Watch("v1", "Service", runtime.own_key),
            runtime.Watch("v1", "Pod", self.pod_keys),
            runtime.Watch("v1", "Endpoints", runtime.own_key),
        ]

    async def reconcile(self, key: str) -> runtime.Result:
        namespace, _, name = key.rpartition("/")
        service = self.services.get(key)
        if service is None:
            try:
                await self.client.delete("v1", "Endpoints", name, namespace=namespace)
            except kclient.NotFound:
                pass
            return runtime.Result()
        include_terminating = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
        members = self.members(service, include_terminating=include_terminating)
        if members is None:  # no selector: the Endpoints are the user's
            return runtime.Result()
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
