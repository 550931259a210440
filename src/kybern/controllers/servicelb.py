"""The built-in service load balancer: LoadBalancer Services answer on the nodes' addresses.

What k3s's servicelb (klipper-lb) gives a cluster without a cloud: every Service of type
LoadBalancer gets ``status.loadBalancer.ingress`` = one ``{ip, ipMode: VIP}`` per ready node's
InternalIP, sorted, so ``kubectl get svc`` shows them as EXTERNAL-IP and clients reach the
Service's ports on any node (the node agents' proxies serve NodePort and LoadBalancer traffic
on every node address). Without a ready node the ingress stays empty (``<pending>``).

Keyed by Service; a Node changing (added, address or readiness changed, removed) requeues
every LoadBalancer Service. A Service that is no longer of type LoadBalancer has its ingress
cleared (the update strategy clears it on the type change already; this covers Services
written before), and one with a ``loadBalancerClass`` belongs to another implementation and
is left alone, as Kubernetes' cloud controllers do.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from kybern import client as kclient
from kybern.controllers import runtime

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def is_ready(node: Obj) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def internal_ips(node: Obj) -> list[str]:
    addresses = (node.get("status") or {}).get("addresses") or []
    return [a["address"] for a in addresses if a.get("type") == "InternalIP" and a.get("address")]


def ingress_for(nodes: Iterable[Obj]) -> list[Obj]:
    """One VIP ingress per distinct InternalIP of a ready node, in address order."""
    ips = {ip for node in nodes if is_ready(node) for ip in internal_ips(node)}
    return [{"ip": ip, "ipMode": "VIP"} for ip in sorted(ips, key=_sort_key)]


def _sort_key(ip: str) -> tuple[int, int, str]:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return (9, 0, ip)
    return (address.version, int(address), ip)


def managed(svc: Obj) -> bool:
    """A LoadBalancer Service this controller serves (no other implementation's class)."""
    spec = svc.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


class ServiceLBController:
    name = "service-lb-controller"
    workers = 2

    def __init__(
        self,
        *,
        client: kclient.Client,
        informers: kclient.SharedInformerFactory,
        clock: kclient.Clock | None = None,
    ) -> None:
        self.client = client
        self.services = informers.informer_for("v1", "Service").store
        self.nodes = informers.informer_for("v1", "Node").store

    def watches(self) -> Sequence[runtime.Watch]:
        return [
            runtime.Watch("v1", "Service", runtime.own_key),
            runtime.Watch("v1", "Node", self._load_balancer_keys),
        ]

    def _load_balancer_keys(self, node: Obj) -> Iterable[str]:
        return [kclient.key_of(svc) for svc in self.services.list() if managed(svc)]

    async def reconcile(self, key: str) -> runtime.Result:
        svc = self.services.get(key)
        if svc is None or (svc.get("spec") or {}).get("loadBalancerClass"):
            return runtime.Result()
        wanted = ingress_for(self.nodes.list()) if managed(svc) else []
        current = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if current != wanted:
            await self._write(svc, wanted)
        return runtime.Result()

    async def _write(self, svc: Obj, ingress: list[Obj]) -> None:
        updated = copy.deepcopy(svc)
        updated.setdefault("apiVersion", "v1")
        updated.setdefault("kind", "Service")
        updated.setdefault("status", {})["loadBalancer"] = {"ingress": ingress} if ingress else {}
        try:
            await self.client.update_status(updated)  # a Conflict requeues: a newer copy
        except kclient.errors.NotFound:
            pass  # deleted meanwhile
