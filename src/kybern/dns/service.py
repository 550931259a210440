"""The ``kube-system/kube-dns`` Service: how pods reach the in-process cluster DNS.

k3s runs CoreDNS as pods behind the ``kube-dns`` Service (ClusterIP 10.43.0.10); kybern serves
DNS inside ``kybern server`` instead, so this module keeps a Service without a selector
(ports ``dns`` 53/UDP and ``dns-tcp`` 53/TCP at the fixed ClusterIP) and its Endpoints and
EndpointSlice pointing at the address and port the DNS server listens on. The service proxy
then forwards the DNS ClusterIP to it like any other service. Checked on start and every
``INTERVAL`` seconds: a deleted object comes back, a changed address or port is put right.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kybern import client as kclient
from kybern.client import errors

log = logging.getLogger(__name__)
Obj = dict[str, Any]
NAME, NAMESPACE = "kube-dns", "kube-system"
DEFAULT_CLUSTER_IP = "10.43.0.10"
SERVICE_PORT = 53
INTERVAL = 10.0
SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "kybern-dns"
LABELS = {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}
PORTS = (("dns", "UDP"), ("dns-tcp", "TCP"))


def service(cluster_ip: str, target_port: int) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": dict(LABELS)},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cluster_ip,
            "clusterIPs": [cluster_ip],
            "ports": service_ports(target_port),
        },
    }


def service_ports(target_port: int) -> list[Obj]:
    return [
        {"name": name, "protocol": proto, "port": SERVICE_PORT, "targetPort": target_port}
        for name, proto in PORTS
    ]


def endpoints(address: str, port: int) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "labels": {**LABELS, SKIP_MIRROR: "true"},
        },
        "subsets": [
            {
                "addresses": [{"ip": address}],
                "ports": [{"name": n, "port": port, "protocol": p} for n, p in PORTS],
            }
        ],
    }


def endpoint_slice(address: str, port: int) -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "labels": {**LABELS, SERVICE_NAME_LABEL: NAME, MANAGED_BY_LABEL: MANAGED_BY},
        },
        "addressType": "IPv6" if ":" in address else "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": n, "port": port, "protocol": p} for n, p in PORTS],
    }


class DNSService:
    """Keeps the kube-dns Service, Endpoints and EndpointSlice true through the client."""

    def __init__(self, client: kclient.Client, *, cluster_ip: str, address: str, port: int) -> None:
        self.client = client
        self.cluster_ip = cluster_ip
        self.address = address
        self.port = port

    async def sync_once(self) -> None:
        await self._ensure_service()
        await self._ensure(endpoints(self.address, self.port), ("subsets",))
        await self._ensure(
            endpoint_slice(self.address, self.port), ("addressType", "endpoints", "ports")
        )

    async def run(self, *, interval: float = INTERVAL) -> None:
        """Sync now and every ``interval`` seconds until cancelled; errors are retried."""
        while True:
            try:
                await self.sync_once()
            except (errors.ClientError, OSError) as exc:
                log.warning("could not reconcile the kube-dns service (retrying): %s", exc)
            await asyncio.sleep(interval)

    async def _current(self, kind: str, api_version: str) -> Obj | None:
        try:
            return await self.client.get(api_version, kind, NAME, namespace=NAMESPACE)
        except errors.NotFound:
            return None

    async def _ensure_service(self) -> None:
        current = await self._current("Service", "v1")
        if current is None:
            await self._create(service(self.cluster_ip, self.port))
            return
        spec = current.get("spec") or {}
        wanted = service_ports(self.port)
        if spec.get("clusterIP") != self.cluster_ip:
            # The ClusterIP is immutable: a kube-dns at another address is replaced.
            log.warning(
                "kube-dns has clusterIP %s, not %s: recreating it",
                spec.get("clusterIP"),
                self.cluster_ip,
            )
            await self._delete("v1", "Service")
            await self._create(service(self.cluster_ip, self.port))
            return
        if _ports_match(spec.get("ports"), wanted) and spec.get("selector") is None:
            return
        current["spec"]["ports"] = wanted
        current["spec"].pop("selector", None)
        await self._update(current)

    async def _ensure(self, wanted: Obj, compared: tuple[str, ...]) -> None:
        current = await self._current(wanted["kind"], wanted["apiVersion"])
        if current is None:
            await self._create(wanted)
            return
        labels = (current.get("metadata") or {}).get("labels") or {}
        labels_kept = all(labels.get(k) == v for k, v in wanted["metadata"]["labels"].items())
        if all(current.get(k) == wanted[k] for k in compared) and labels_kept:
            return
        current.update({k: wanted[k] for k in compared})
        current["metadata"].setdefault("labels", {}).update(wanted["metadata"]["labels"])
        await self._update(current)

    async def _create(self, body: Obj) -> None:
        try:
            await self.client.create(body, namespace=NAMESPACE)
        except errors.AlreadyExists:
            pass  # the next pass compares it

    async def _update(self, body: Obj) -> None:
        try:
            await self.client.update(body)
        except (errors.Conflict, errors.NotFound):
            pass  # the next pass looks again

    async def _delete(self, api_version: str, kind: str) -> None:
        try:
            await self.client.delete(api_version, kind, NAME, namespace=NAMESPACE)
        except errors.NotFound:
            pass


def _ports_match(current: Any, wanted: list[Obj]) -> bool:
    if not isinstance(current, list) or len(current) != len(wanted):
        return False
    return all(
        isinstance(c, dict) and {k: c.get(k) for k in w} == w
        for c, w in zip(current, wanted, strict=True)
    )
