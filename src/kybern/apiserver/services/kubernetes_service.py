"""The ``kubernetes`` Service in ``default``: how pods find the API server.

Kubernetes' API server keeps this Service (ClusterIP = the first address of the service CIDR,
port ``https`` 443 -> the API server's port, no selector) and its Endpoints and EndpointSlice
(both named ``kubernetes``, pointing at the API server's advertised address) true itself, on
start and every ``INTERVAL`` seconds after: a deleted one comes back, a changed port or
address is put right. Writes go through the registry, so the Service's ClusterIP is allocated
(and checked) like any other.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from kybern.api import fixedendpoints, kinds
from kybern.apiserver import errors, registry

log = logging.getLogger(__name__)
Obj = dict[str, Any]
NAME, NAMESPACE = "kubernetes", "default"
PORT_NAME = "https"
SERVICE_PORT = 443
INTERVAL = 10.0  # Kubernetes' default endpoint reconciler interval


def advertise_address(bind_address: str) -> str:
    """The address in the Endpoints: the bound one, or for a wildcard bind the host's
    primary address (the source of its default route; connecting a UDP socket sends nothing)."""
    if bind_address not in ("", "0.0.0.0", "::"):
        return bind_address
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))
            return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"


def service(cluster_ip: str, target_port: int) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cluster_ip,
            "clusterIPs": [cluster_ip],
            "sessionAffinity": "None",
            "ports": [_service_port(target_port)],
        },
    }


def _service_port(target_port: int) -> Obj:
    return {"name": PORT_NAME, "protocol": "TCP", "port": SERVICE_PORT, "targetPort": target_port}


def endpoints(address: str, port: int) -> Obj:
    return fixedendpoints.endpoints(NAME, NAMESPACE, address, [(PORT_NAME, port, "TCP")], {})


def endpoint_slice(address: str, port: int) -> Obj:
    return fixedendpoints.endpoint_slice(NAME, NAMESPACE, address, [(PORT_NAME, port, "TCP")], {})


class KubernetesService:
    """Keeps the ``kubernetes`` Service, Endpoints and EndpointSlice true."""

    def __init__(self, *, reg: registry.Registry, cluster_ip: str, address: str, port: int) -> None:
        self.reg = reg
        self.cluster_ip = cluster_ip
        self.address = address
        self.port = port

    async def sync_once(self) -> None:
        await self._ensure_service()
        await self._ensure("", "v1", "endpoints", endpoints(self.address, self.port), ("subsets",))
        slice_ = endpoint_slice(self.address, self.port)
        await self._ensure(
            "discovery.k8s.io",
            "v1",
            "endpointslices",
            slice_,
            ("addressType", "endpoints", "ports"),
        )

    async def run(self, *, interval: float = INTERVAL) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sync_once()
            except Exception:
                log.exception("could not reconcile the kubernetes service; retrying")

    async def _ensure_service(self) -> None:
        info = _info("", "v1", "services")
        current = await self.reg.current(info, NAMESPACE, NAME)
        if current is None:
            await self._create(info, service(self.cluster_ip, self.port))
            return
        spec = current.get("spec") or {}
        wanted = [_service_port(self.port)]
        if spec.get("type") == "ClusterIP" and fixedendpoints.ports_match(
            spec.get("ports"), wanted
        ):
            return
        updated = registry.json_copy(current)
        updated["spec"]["type"] = "ClusterIP"
        updated["spec"]["ports"] = wanted
        await self._update(info, updated)

    async def _ensure(
        self, group: str, version: str, plural: str, wanted: Obj, compared: tuple[str, ...]
    ) -> None:
        info = _info(group, version, plural)
        current = await self.reg.current(info, NAMESPACE, NAME)
        if current is None:
            await self._create(info, wanted)
        elif (updated := fixedendpoints.corrected(current, wanted, compared)) is not None:
            await self._update(info, updated)

    async def _create(self, info: kinds.ResourceInfo, body: Obj) -> None:
        try:
            await self.reg.create(info, NAMESPACE, body, dry_run=False)
        except errors.StatusError as exc:
            if exc.reason != "AlreadyExists":
                raise

    async def _update(self, info: kinds.ResourceInfo, body: Obj) -> None:
        try:
            await self.reg.update(info, NAMESPACE, NAME, body, dry_run=False)
        except errors.StatusError as exc:
            if exc.reason not in ("Conflict", "NotFound"):  # the next pass looks again
                raise


def _info(group: str, version: str, plural: str) -> kinds.ResourceInfo:
    info = kinds.lookup(group, version, plural)
    assert info is not None, f"{group}/{version} {plural} is not served"
    return info
