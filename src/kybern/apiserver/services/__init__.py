"""Service allocation in the API server: ClusterIPs, NodePorts, repair, the ``kubernetes`` Service.

- ``bitmap``: a persisted allocation bitmap changed by compare-and-swap (the design choice and
  why it is the bitmap, not IPAddress objects, is explained there);
- ``ranges``: the service CIDR and the NodePort range over bitmaps, Kubernetes' messages;
- ``fields``: what a Service's type needs, update-time fix-ups (run by the update strategy);
- ``alloc``: the registry's write hook for ``services`` (allocate, release, revert);
- ``repair``: the loop that makes the bitmaps agree with the Services that exist;
- ``kubernetes_service``: the ``default/kubernetes`` Service, Endpoints and EndpointSlice.

``ServiceAllocation`` wires them into one API server (``kybern.apiserver.server``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from kybern.apiserver import registry, watchcache
from kybern.apiserver.services import alloc, kubernetes_service, ranges, repair

log = logging.getLogger(__name__)
DEFAULT_SERVICE_CIDR = ranges.DEFAULT_SERVICE_CIDR
DEFAULT_NODE_PORT_RANGE = ranges.DEFAULT_NODE_PORT_RANGE


class ServiceAllocation:
    """The allocators installed as the registry's ``services`` hook, plus the repair loop and
    the ``kubernetes`` Service maintainer once the server knows its port."""

    def __init__(
        self,
        *,
        reg: registry.Registry,
        cache: watchcache.WatchCache,
        service_cidr: str = DEFAULT_SERVICE_CIDR,
        node_port_range: str = DEFAULT_NODE_PORT_RANGE,
    ) -> None:
        self.reg = reg
        self.ips = ranges.IPAllocator(reg.backend, service_cidr)
        self.ports = ranges.PortAllocator(reg.backend, node_port_range)
        self.allocator = alloc.ServiceAllocator(self.ips, self.ports)
        self.repair = repair.Repair(cache=cache, ips=self.ips, ports=self.ports)
        self.kubernetes: kubernetes_service.KubernetesService | None = None
        self._tasks: list[asyncio.Task[None]] = []
        reg.hooks["services"] = self.allocator

    async def start(self, *, address: str, port: int) -> None:
        """Repair once, make the ``kubernetes`` Service true, then keep both going."""
        await self.repair.run_once()
        self.kubernetes = kubernetes_service.KubernetesService(
            reg=self.reg, cluster_ip=self.ips.first(), address=address, port=port
        )
        try:
            await self.kubernetes.sync_once()
        except Exception:  # e.g. its address taken by another Service: keep serving
            log.exception("could not create the kubernetes service; retrying in the background")
        self._tasks = [
            asyncio.create_task(self.repair.run(), name="service-ip-repair"),
            asyncio.create_task(self.kubernetes.run(), name="kubernetes-service"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
