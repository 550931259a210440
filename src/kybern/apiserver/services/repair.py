"""The allocation repair loop: make the stored bitmaps agree with the Services that exist.

Kubernetes' ClusterIP and NodePort repair controllers, run by the API server at start and
then every few minutes. One pass reads the stored bitmap, then lists every Service (so a
Service created after the read is still counted, and one allocated before it but not yet
stored looks like a leak), and rebuilds the bitmap from what Services hold:

- a value a Service holds but the bitmap lacks (a bitmap lost or restored from an old
  backup) is marked again;
- a value no Service holds (a create that crashed between allocation and store write) is a
  leak, released only after it has stayed a leak for ``LEAK_PASSES`` passes, so a create in
  flight is never robbed of its value;
- two Services holding one value, or one outside the range, are logged (they need a person).

The new bitmap is written with compare-and-swap against the one read: an allocation that
happened meanwhile makes the write fail, and the next pass starts over.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Iterable
from typing import Any

from kybern.apiserver import watchcache
from kybern.apiserver.services import bitmap, fields, ranges

log = logging.getLogger(__name__)
Obj = dict[str, Any]
LEAK_PASSES = 3  # Kubernetes' numRepairsBeforeLeakCleanup
INTERVAL = 180.0  # seconds between passes (Kubernetes: 3 minutes)
OffsetsOf = Callable[[Obj], list[int]]


class Repair:
    def __init__(
        self,
        *,
        cache: watchcache.WatchCache,
        ips: ranges.IPAllocator,
        ports: ranges.PortAllocator,
    ) -> None:
        self.cache = cache
        self.ips = ips
        self.ports = ports
        self._leaks: dict[str, dict[int, int]] = {"ips": {}, "ports": {}}

    async def run_once(self) -> None:
        await self._repair("ips", self.ips.bitmap, self._ip_offsets)
        await self._repair("ports", self.ports.bitmap, self._port_offsets)

    async def run(self, *, interval: float = INTERVAL) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.run_once()
            except Exception:
                log.exception("service allocation repair failed; retrying in %.0f s", interval)

    async def _services(self) -> list[Obj]:
        await self.cache.sync()
        return list(self.cache.resource("services").objects.values())

    def _ip_offsets(self, svc: Obj) -> list[int]:
        out = []
        for ip in fields.cluster_ips(svc) if fields.needs_cluster_ip(svc) else []:
            offset = self.ips.offset_of(ip)
            if offset is None:
                log.error(
                    "the cluster IP %s for service %s is not within the service CIDR %s",
                    ip,
                    _name(svc),
                    self.ips.cidr,
                )
            else:
                out.append(offset)
        return out

    def _port_offsets(self, svc: Obj) -> list[int]:
        ports = fields.node_ports(svc) if fields.needs_node_ports(svc) else []
        if fields.needs_health_check_port(svc) and fields.health_check_port(svc):
            ports.append(fields.health_check_port(svc))
        out = []
        for port in ports:
            offset = self.ports.offset_of(port)
            if offset is None:
                log.error(
                    "the node port %d for service %s is not within the port range %s",
                    port,
                    _name(svc),
                    self.ports.range,
                )
            else:
                out.append(offset)
        return out

    async def _repair(
        self, what: str, store: bitmap.PersistentBitmap, offsets_of: OffsetsOf
    ) -> None:
        snap = await store.snapshot()
        services = await self._services()
        held = _holders(services, offsets_of)
        for offset, holders in held.items():
            if len(holders) > 1:
                log.error(
                    "%s offset %d is allocated to several services: %s",
                    what,
                    offset,
                    ", ".join(holders),
                )
        rebuilt = bitmap.Bits(store.size)
        for offset in held:
            rebuilt.set(offset)
            if not snap.bits.has(offset):
                log.warning(
                    "%s offset %d of service %s was not allocated; repairing",
                    what,
                    offset,
                    held[offset][0],
                )
        leaks = self._leaks[what]
        for offset in snap.bits.offsets():
            if offset in held:
                continue
            leaks[offset] = leaks.get(offset, 0) + 1
            if leaks[offset] < LEAK_PASSES:
                rebuilt.set(offset)  # maybe a create in flight: give it time
            else:
                log.info("%s offset %d is not held by any service; releasing", what, offset)
        for offset in list(leaks):
            if rebuilt.has(offset) is False or offset in held:
                del leaks[offset]
        if rebuilt.raw != snap.bits.raw and not await store.replace(snap, rebuilt):
            log.info("%s changed during repair; the next pass tries again", what)


def _holders(services: Iterable[Obj], offsets_of: OffsetsOf) -> dict[int, list[str]]:
    held: dict[int, list[str]] = collections.defaultdict(list)
    for svc in services:
        for offset in offsets_of(svc):
            held[offset].append(_name(svc))
    return held


def _name(svc: Obj) -> str:
    meta = svc.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"
