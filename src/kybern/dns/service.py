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
from kybern.api import fixedendpoints
from kybern.client import errors

log = logging.getLogger(__name__)
Obj = dict[str, Any]
NAME, NAMESPACE = "kube-dns", "kube-system"
DEFAULT_CLUSTER_IP = "10.43.0.10"
SERVICE_PORT = 53
INTERVAL = 10.0
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
    return fixedendpoints.endpoints(NAME, NAMESPACE, address, _ports(port), LABELS)


def endpoint_slice(address: str, port: int) -> Obj:
    slice_ = fixedendpoints.endpoint_slice(NAME, NAMESPACE, address, _ports(port), LABELS)
    slice_["metadata"]["labels"][MANAGED_BY_LABEL] = MANAGED_BY
    return slice_


def _ports(port: int) -> list[fixedendpoints.Port]:
    return [(name, port, proto) for name, proto in PORTS]


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
        if fixedendpoints.ports_match(spec.get("ports"), wanted) and spec.get("selector") is None:
            return
        current["spec"]["ports"] = wanted
        current["spec"].pop("selector", None)
        await self._update(current)

    async def _ensure(self, wanted: Obj, compared: tuple[str, ...]) -> None:
        current = await self._current(wanted["kind"], wanted["apiVersion"])
        if current is None:
            await self._create(wanted)
        elif (updated := fixedendpoints.corrected(current, wanted, compared)) is not None:
            await self._update(updated)

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
