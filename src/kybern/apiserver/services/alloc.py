"""Service allocation: the registry's write hook for ``services`` (Kubernetes' Service REST).

On create and update, after validation and before admission and the store write, the hook
allocates what the Service's type needs: ClusterIPs (a chosen one is checked: in range and
free; otherwise the next free one), NodePorts for NodePort and LoadBalancer Services (unless
``allocateLoadBalancerNodePorts: false``; one port number with two protocols shares one
NodePort), and a ``healthCheckNodePort`` for LoadBalancer Services with
``externalTrafficPolicy: Local``. Values a type change or a removed port no longer needs are
released, but only once the write is stored (``Transaction.commit``); a write that fails after
the hook gives back what it took (``Transaction.revert``). A deleted Service's values are
released after the object is really gone (``after_delete``): a Service waiting on finalizers
keeps them. A crash between allocation and store write leaks the values until the repair loop
(``kybern.apiserver.services.repair``) finds no Service holding them.

Refusals carry Kubernetes' messages: ``spec.clusterIPs: Invalid value: []string{"10.43.0.5"}:
failed to allocate IP 10.43.0.5: provided IP is already allocated`` and
``spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated`` (422);
a full range is a 500 ``failed to allocate a serviceIP: range is full``, and so is a taken
``healthCheckNodePort`` (``failed to allocate requested HealthCheck NodePort 30000: provided
port is already allocated``), as in Kubernetes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kybern.api import errors as api_errors
from kybern.api.validation import common
from kybern.apiserver import errors
from kybern.apiserver.services import bitmap, fields, ranges

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Finish = Callable[[bool], Awaitable[None]]


@dataclass(slots=True)
class Transaction:
    """What one write took (given back on failure) and must give back (once stored)."""

    ips: ranges.IPAllocator
    ports: ranges.PortAllocator
    dry_run: bool
    taken_ips: list[str] = field(default_factory=list)
    taken_ports: list[int] = field(default_factory=list)
    freed_ips: list[str] = field(default_factory=list)
    freed_ports: list[int] = field(default_factory=list)

    async def finish(self, success: bool) -> None:
        """Release what the write freed (stored) or took (failed). Never raises: the write's
        own outcome stands, and the repair loop frees whatever a failure here leaks."""
        if self.dry_run:
            return
        ips, ports = (
            (self.freed_ips, self.freed_ports) if success else (self.taken_ips, self.taken_ports)
        )
        await release(self.ips, self.ports, ips, ports)

    async def take_ip(self, svc: Obj, ip: str | None) -> str:
        if ip is None:
            try:
                ip = await self.ips.allocate_next(dry_run=self.dry_run)
            except bitmap.AllocationError as exc:
                raise errors.internal(f"failed to allocate a serviceIP: {exc}") from None
        else:
            try:
                await self.ips.allocate(ip, dry_run=self.dry_run)
            except bitmap.AllocationError as exc:
                value = fields.spec_of(svc).get("clusterIPs") or [ip]
                detail = f"failed to allocate IP {ip}: {exc}"
                raise _invalid(svc, common.invalid("spec.clusterIPs", value, detail)) from None
        self.taken_ips.append(ip)
        return ip

    async def take_port(self, svc: Obj, port: int | None, path: str) -> int:
        if port is None:
            try:
                port = await self.ports.allocate_next(dry_run=self.dry_run)
            except bitmap.AllocationError as exc:
                raise errors.internal(f"failed to allocate a nodePort: {exc}") from None
        else:
            try:
                await self.ports.allocate(port, dry_run=self.dry_run)
            except bitmap.AllocationError as exc:
                raise _invalid(svc, common.invalid(path, port, str(exc))) from None
        self.taken_ports.append(port)
        return port

    async def take_health_check_port(self, port: int | None) -> int:
        """As Kubernetes, any failure here is an InternalError (500)."""
        try:
            if port is None:
                port = await self.ports.allocate_next(dry_run=self.dry_run)
            else:
                await self.ports.allocate(port, dry_run=self.dry_run)
        except bitmap.AllocationError as exc:
            what = f"requested HealthCheck NodePort {port}" if port else "a HealthCheck NodePort 0"
            raise errors.internal(f"failed to allocate {what}: {exc}") from None
        self.taken_ports.append(port)
        return port


class ServiceAllocator:
    """The ``services`` write hook (kybern.apiserver.registry.WriteHook)."""

    def __init__(self, ips: ranges.IPAllocator, ports: ranges.PortAllocator) -> None:
        self.ips = ips
        self.ports = ports

    def _transaction(self, dry_run: bool) -> Transaction:
        return Transaction(self.ips, self.ports, dry_run)

    async def begin_create(self, svc: Obj, *, dry_run: bool) -> Finish:
        txn = self._transaction(dry_run)
        try:
            self._check_families(svc)
            if fields.needs_cluster_ip(svc) and not fields.is_headless(svc):
                await self._allocate_cluster_ip(txn, svc)
            if fields.needs_node_ports(svc):
                await self._allocate_node_ports(txn, svc, old_ports=set())
            if fields.needs_health_check_port(svc):
                await self._allocate_health_check(txn, svc)
        except BaseException:
            await txn.finish(False)
            raise
        return txn.finish

    async def begin_update(self, new: Obj, old: Obj, *, dry_run: bool) -> Finish:
        txn = self._transaction(dry_run)
        try:
            self._check_families(new)
            await self._update_cluster_ips(txn, new, old)
            await self._update_node_ports(txn, new, old)
            await self._update_health_check(txn, new, old)
        except BaseException:
            await txn.finish(False)
            raise
        return txn.finish

    async def after_delete(self, svc: Obj) -> None:
        ports = fields.node_ports(svc)
        if fields.health_check_port(svc):
            ports.append(fields.health_check_port(svc))
        await release(self.ips, self.ports, fields.cluster_ips(svc), ports)

    # -- ClusterIPs -----------------------------------------------------------------------

    def _check_families(self, svc: Obj) -> None:
        """Kubernetes' initIPFamilyFields checks on a single-stack cluster: an IP or family
        of the other stack, or a demand for dual-stack, is refused; headless selectorless
        Services are exempt (they may list both families)."""
        if not fields.needs_cluster_ip(svc):
            return
        spec = fields.spec_of(svc)
        ips = spec.get("clusterIPs") or []
        for i, ip in enumerate(ips):
            if ip == "None" or not isinstance(ip, str):
                break
            family = "IPv6" if ":" in ip else "IPv4"
            if family != self.ips.family:
                detail = f"{family} is not configured on this cluster"
                raise _invalid(svc, common.invalid(f"spec.clusterIPs[{i}]", ips, detail))
        if fields.is_headless(svc) and not spec.get("selector"):
            return
        if spec.get("ipFamilyPolicy") == "RequireDualStack":
            detail = "this cluster is not configured for dual-stack services"
            raise _invalid(svc, common.invalid("spec.ipFamilyPolicy", "RequireDualStack", detail))
        for i, family in enumerate(spec.get("ipFamilies") or []):
            if family != self.ips.family:
                detail = "not configured on this cluster"
                raise _invalid(svc, common.invalid(f"spec.ipFamilies[{i}]", family, detail))

    async def _allocate_cluster_ip(self, txn: Transaction, svc: Obj) -> None:
        spec = fields.spec_of(svc)
        chosen = spec.get("clusterIP") or (spec.get("clusterIPs") or [None])[0] or None
        ip = await txn.take_ip(svc, chosen)
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]

    async def _update_cluster_ips(self, txn: Transaction, new: Obj, old: Obj) -> None:
        if not fields.needs_cluster_ip(old) and fields.needs_cluster_ip(new):
            if not fields.is_headless(new):
                await self._allocate_cluster_ip(txn, new)
        elif fields.needs_cluster_ip(old) and not fields.needs_cluster_ip(new):
            txn.freed_ips.extend(fields.cluster_ips(old))

    # -- NodePorts ------------------------------------------------------------------------

    async def _allocate_node_ports(self, txn: Transaction, svc: Obj, old_ports: set[int]) -> None:
        """Kubernetes' initNodePorts/updateNodePorts: chosen ports are checked (unless the
        Service already held them), missing ones allocated when the type allocates them;
        ports with the same number (TCP and UDP) share one NodePort."""
        allocate = fields.should_allocate_node_ports(svc)
        ports = fields.ports_of(svc)
        by_number: dict[Any, int] = {}
        held = set(old_ports)
        for i, port in enumerate(ports):
            if not port.get("nodePort") and not allocate:
                continue  # allocateLoadBalancerNodePorts: false, and none asked for
            shared = by_number.get(port.get("port"))
            if shared is not None and port.get("nodePort") in (None, 0, shared):
                port["nodePort"] = shared
                continue
            wanted = port.get("nodePort") or (
                _requested(ports, port.get("port")) if shared is None else 0
            )
            if not wanted or wanted not in held:
                path = f"spec.ports[{i}].nodePort"
                wanted = await txn.take_port(svc, wanted or None, path)
                held.add(wanted)
            port["nodePort"] = wanted
            by_number.setdefault(port.get("port"), wanted)

    async def _update_node_ports(self, txn: Transaction, new: Obj, old: Obj) -> None:
        old_ports = set(fields.node_ports(old)) if fields.needs_node_ports(old) else set()
        if fields.needs_node_ports(new):
            await self._allocate_node_ports(txn, new, old_ports)
        kept = set(fields.node_ports(new)) if fields.needs_node_ports(new) else set()
        txn.freed_ports.extend(sorted(old_ports - kept))

    async def _allocate_health_check(self, txn: Transaction, svc: Obj) -> None:
        spec = fields.spec_of(svc)
        chosen = fields.health_check_port(svc) or None
        spec["healthCheckNodePort"] = await txn.take_health_check_port(chosen)

    async def _update_health_check(self, txn: Transaction, new: Obj, old: Obj) -> None:
        needed_before, needed_now = (
            fields.needs_health_check_port(old),
            fields.needs_health_check_port(new),
        )
        old_port, new_port = fields.health_check_port(old), fields.health_check_port(new)
        if needed_before and needed_now:
            if old_port and new_port != old_port:
                detail = (
                    "cannot change healthCheckNodePort on loadBalancer service with "
                    "externalTraffic=Local during update"
                )
                raise _invalid(new, common.invalid("spec.healthCheckNodePort", new_port, detail))
            if not old_port:
                await self._allocate_health_check(txn, new)
        elif needed_now:
            await self._allocate_health_check(txn, new)
        elif needed_before and old_port:
            txn.freed_ports.append(old_port)


async def release(
    ip_alloc: ranges.IPAllocator, port_alloc: ranges.PortAllocator, ips: list[str], ports: list[int]
) -> None:
    try:
        await ip_alloc.release(ips)
        await port_alloc.release(ports)
    except Exception:
        log.exception("could not release %s %s; the repair loop will", ips, ports)


def _requested(ports: list[Obj], number: Any) -> int:
    """A NodePort the user asked for on another entry with the same port number."""
    for port in ports:
        if port.get("port") == number and port.get("nodePort"):
            return int(port["nodePort"])
    return 0


def _invalid(svc: Obj, cause: api_errors.Cause) -> errors.StatusError:
    name = (svc.get("metadata") or {}).get("name") or ""
    return errors.invalid("Service", name, [cause])
