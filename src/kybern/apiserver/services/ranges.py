"""The Service ClusterIP range and the NodePort range over persisted bitmaps.

``IPAllocator`` hands out addresses of the service CIDR (default ``10.43.0.0/16``, k3s's):
the network address and, for IPv4, the broadcast address are never used, so offset 0 is the
first host address (``10.43.0.1``, the ``kubernetes`` Service's). ``PortAllocator`` hands out
NodePorts of ``30000-32767``. Both speak Kubernetes' error messages (``provided IP is already
allocated``, ``provided port is not in the valid range. The range of valid ports is
30000-32767``) and keep the lower band of their range for values users choose
(``10.43.0.10`` for cluster DNS by convention), as Kubernetes does since v1.24/v1.27.
"""

from __future__ import annotations

import ipaddress
import random

from kybern.apiserver.services import bitmap
from kybern.storage import backend as storage_backend

IP_KEY = "/registry/ranges/serviceips"
PORT_KEY = "/registry/ranges/servicenodeports"
DEFAULT_SERVICE_CIDR = "10.43.0.0/16"
DEFAULT_NODE_PORT_RANGE = "30000-32767"
MAX_IP_OFFSETS = 1 << 16  # a larger (IPv6) range is used from its start only, as Kubernetes


class IPAllocator:
    """ClusterIPs of one CIDR."""

    def __init__(
        self, backend: storage_backend.Backend, cidr: str, *, rng: random.Random | None = None
    ) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        self.cidr = str(self.network)
        reserved = 2 if self.network.version == 4 else 1
        self.size = max(0, min(self.network.num_addresses - reserved, MAX_IP_OFFSETS))
        self.family = "IPv4" if self.network.version == 4 else "IPv6"
        self.bitmap = bitmap.PersistentBitmap(
            backend,
            key=IP_KEY,
            range_name=self.cidr,
            size=self.size,
            static_band=bitmap.static_band(self.size, minimum=16, maximum=256, step=16),
            rng=rng,
        )

    def ip_at(self, offset: int) -> str:
        return str(self.network.network_address + 1 + offset)

    def offset_of(self, ip: str) -> int | None:
        """The offset of ``ip`` in the range, None when it is outside (or not an IP)."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if address.version != self.network.version or address not in self.network:
            return None
        offset = int(address) - int(self.network.network_address) - 1
        return offset if 0 <= offset < self.size else None

    def first(self) -> str:
        return self.ip_at(0)

    async def allocate(self, ip: str, *, dry_run: bool = False) -> None:
        offset = self.offset_of(ip)
        if offset is None:
            raise bitmap.NotInRange(
                f"the provided IP ({ip}) is not in the valid range. "
                f"The range of valid IPs is {self.cidr}"
            )
        await self.bitmap.allocate(offset, "provided IP is already allocated", dry_run=dry_run)

    async def allocate_next(self, *, dry_run: bool = False) -> str:
        return self.ip_at(await self.bitmap.allocate_next(dry_run=dry_run))

    async def release(self, ips: list[str]) -> None:
        offsets = [o for o in map(self.offset_of, ips) if o is not None]
        await self.bitmap.release(offsets)


class PortAllocator:
    """NodePorts of one range ``base-max`` (inclusive)."""

    def __init__(
        self,
        backend: storage_backend.Backend,
        port_range: str = DEFAULT_NODE_PORT_RANGE,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.base, self.max = parse_port_range(port_range)
        self.range = f"{self.base}-{self.max}"
        self.size = self.max - self.base + 1
        self.bitmap = bitmap.PersistentBitmap(
            backend,
            key=PORT_KEY,
            range_name=self.range,
            size=self.size,
            static_band=bitmap.static_band(self.size, minimum=16, maximum=128, step=32),
            rng=rng,
        )

    def offset_of(self, port: int) -> int | None:
        return port - self.base if self.base <= port <= self.max else None

    async def allocate(self, port: int, *, dry_run: bool = False) -> None:
        offset = self.offset_of(port)
        if offset is None:
            raise bitmap.NotInRange(
                f"provided port is not in the valid range. The range of valid ports is {self.range}"
            )
        await self.bitmap.allocate(offset, "provided port is already allocated", dry_run=dry_run)

    async def allocate_next(self, *, dry_run: bool = False) -> int:
        return self.base + await self.bitmap.allocate_next(dry_run=dry_run)

    async def release(self, ports: list[int]) -> None:
        offsets = [o for o in map(self.offset_of, ports) if o is not None]
        await self.bitmap.release(offsets)


def parse_port_range(text: str) -> tuple[int, int]:
    """``30000-32767`` (or ``30000+2767``, a base plus a size, as Kubernetes accepts)."""
    text = text.strip()
    try:
        if "+" in text:
            base, extra = (int(p) for p in text.split("+", 1))
            low, high = base, base + extra
        elif "-" in text:
            low, high = (int(p) for p in text.split("-", 1))
        else:
            low = high = int(text)
    except ValueError:
        raise ValueError(f"invalid port range {text!r}: want e.g. 30000-32767") from None
    if not 0 < low <= high <= 65535:
        raise ValueError(f"invalid port range {text!r}: want e.g. 30000-32767")
    return low, high
