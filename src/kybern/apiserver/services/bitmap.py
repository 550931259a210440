"""A persisted allocation bitmap: one bit per value of a range, stored under one key.

This is Kubernetes' classic Service allocator (``pkg/registry/core/service/allocator``): a
``RangeAllocation`` object (``range`` plus the bitmap in ``data``) stored under one key and
changed only by compare-and-swap on the key's revision, at Kubernetes' keys
(``/registry/ranges/serviceips``, ``/registry/ranges/servicenodeports``). One difference:
``data`` is zlib-compressed, because every write is also an event in the watch cache's window
(a /16 bitmap is 8 KiB raw, a few hundred bytes compressed while the range is sparse). The
keys must stay under ``/registry/``: the watch cache's consistent reads wait for the store's
latest revision to reach it through its ``/registry/`` watch. Every change re-applies itself to the latest stored
bitmap when the swap fails, so two writers (two API servers, or the repair loop and a create)
can never hand out one bit twice, and a restart starts from what was stored.

Why the bitmap and not Kubernetes' newer IPAddress objects (one object per allocated IP,
created atomically): the bitmap is one key per range, so an allocation is one small
read-modify-write instead of a new object per IP in the store and the watch cache, and the
same code serves both ClusterIPs and NodePorts (Kubernetes itself still uses the bitmap for
NodePorts). The cost, one write of the whole bitmap (8 KiB for a /16) per allocation, is
small next to the Service write that follows it.

Within one process the changes take turns on a lock (concurrent creates would otherwise mostly
lose the swap and retry); the swap guards against every other writer. Dynamic allocation
follows KEP-3070/3668: a random free value in the upper band first, the lower ``static_band``
values (kept for values users choose, such as the DNS Service's ``.10``) only when the upper
band is full.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import orjson

from kybern.storage import backend as storage_backend
from kybern.storage import errors as storage_errors

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_TRIES = 100


class AllocationError(Exception):
    """A value cannot be allocated; the message is Kubernetes' (``str(err)``)."""


class Allocated(AllocationError):
    pass


class NotInRange(AllocationError):
    pass


class Full(AllocationError):
    def __init__(self) -> None:
        super().__init__("range is full")


class Bits:
    """An in-memory bitmap of ``size`` bits (bit i = offset i allocated)."""

    def __init__(self, size: int, data: bytes = b"") -> None:
        self.size = size
        raw = bytearray(data[: (size + 7) // 8])
        raw.extend(bytes((size + 7) // 8 - len(raw)))
        self.raw = raw

    def copy(self) -> Bits:
        return Bits(self.size, bytes(self.raw))

    def has(self, offset: int) -> bool:
        return bool(self.raw[offset >> 3] >> (offset & 7) & 1)

    def set(self, offset: int) -> None:
        self.raw[offset >> 3] |= 1 << (offset & 7)

    def clear(self, offset: int) -> None:
        self.raw[offset >> 3] &= ~(1 << (offset & 7)) & 0xFF

    def offsets(self) -> list[int]:
        out: list[int] = []
        for index, byte in enumerate(self.raw):
            if byte:
                out.extend(index * 8 + bit for bit in range(8) if byte >> bit & 1)
        return [o for o in out if o < self.size]

    def count(self) -> int:
        return sum(byte.bit_count() for byte in self.raw)

    def free_in(self, lo: int, hi: int, rng: random.Random) -> int | None:
        """A free offset in [lo, hi): scan forward from a random start, wrapping once."""
        if hi <= lo:
            return None
        start = rng.randrange(lo, hi)
        for begin, end in ((start, hi), (lo, start)):
            found = self._scan(begin, end)
            if found is not None:
                return found
        return None

    def _scan(self, begin: int, end: int) -> int | None:
        offset = begin
        while offset < end:
            byte = self.raw[offset >> 3]
            if byte == 0xFF:  # a full byte: skip to the next one
                offset = (offset | 7) + 1
                continue
            if not byte >> (offset & 7) & 1:
                return offset
            offset += 1
        return None


@dataclass(slots=True)
class Snapshot:
    """The stored bitmap as read at ``revision`` (0: the key does not exist yet)."""

    bits: Bits
    revision: int


class PersistentBitmap:
    """A ``Bits`` stored under ``key`` and changed only by compare-and-swap."""

    def __init__(
        self,
        backend: storage_backend.Backend,
        *,
        key: str,
        range_name: str,
        size: int,
        static_band: int = 0,
        rng: random.Random | None = None,
    ) -> None:
        self.backend = backend
        self.key = key
        self.range_name = range_name
        self.size = size
        self.static_band = static_band
        self.rng = rng or random.Random()
        self._lock = asyncio.Lock()
        self._cached: Snapshot | None = None

    # -- reads and writes of the stored object --------------------------------------------

    async def snapshot(self) -> Snapshot:
        """The latest stored bitmap (a store read, not the in-process copy)."""
        try:
            kv = await self.backend.get(self.key)
        except storage_errors.NotFound:
            return Snapshot(Bits(self.size), 0)
        doc = orjson.loads(kv.value)
        if doc.get("range") != self.range_name:
            # The range was reconfigured: start empty; the repair loop re-marks what Services
            # still hold (and reports those outside the new range).
            log.warning(
                "%s: stored range %r is not %r; starting empty",
                self.key,
                doc.get("range"),
                self.range_name,
            )
            return Snapshot(Bits(self.size), kv.mod_revision)
        data = zlib.decompress(base64.b64decode(doc.get("data") or "")) if doc.get("data") else b""
        return Snapshot(Bits(self.size, data), kv.mod_revision)

    async def _write(self, snap: Snapshot, bits: Bits) -> int:
        """CAS ``bits`` over ``snap``; storage_errors.Conflict/KeyExists/NotFound on a race."""
        doc = {
            "apiVersion": "v1",
            "kind": "RangeAllocation",
            "metadata": {"name": self.key.rsplit("/", 1)[-1]},
            "range": self.range_name,
            "data": base64.b64encode(zlib.compress(bytes(bits.raw))).decode(),
        }
        value = orjson.dumps(doc)
        if snap.revision == 0:
            return await self.backend.create(self.key, value)
        return await self.backend.update(self.key, value, snap.revision)

    async def replace(self, snap: Snapshot, bits: Bits) -> bool:
        """Store ``bits`` if the stored bitmap is still ``snap`` (the repair loop's write)."""
        async with self._lock:
            try:
                revision = await self._write(snap, bits)
            except (storage_errors.Conflict, storage_errors.KeyExists, storage_errors.NotFound):
                self._cached = None
                return False
            self._cached = Snapshot(bits, revision)
            return True

    async def change(self, fn: Callable[[Bits], T], *, dry_run: bool = False) -> T:
        """Apply ``fn`` (which changes the bits or raises AllocationError) to the latest
        bitmap and store the result with compare-and-swap, retried against the newer bitmap
        when another writer got in first. ``dry_run``: check only, store nothing."""
        async with self._lock:
            for attempt in range(MAX_TRIES):
                cached = self._cached
                snap = cached if cached is not None else await self.snapshot()
                bits = snap.bits.copy()
                try:
                    result = fn(bits)
                except AllocationError:
                    if cached is None:
                        raise
                    self._cached = None  # maybe stale (another writer released): re-read
                    continue
                if dry_run or bits.raw == snap.bits.raw:
                    self._cached = snap
                    return result
                try:
                    revision = await self._write(snap, bits)
                except (storage_errors.Conflict, storage_errors.KeyExists, storage_errors.NotFound):
                    self._cached = None
                    # the winner's write may still be in the store's commit batch, invisible
                    # to the next read for a moment: back off a little before re-reading
                    await asyncio.sleep(min(0.0005 * 2**attempt, 0.02))
                    continue
                self._cached = Snapshot(bits, revision)
                return result
        raise AllocationError(f"{self.key}: too many concurrent changes; try again")

    # -- operations on offsets ------------------------------------------------------------

    async def allocate(self, offset: int, message: str, *, dry_run: bool = False) -> None:
        def take(bits: Bits) -> None:
            if bits.has(offset):
                raise Allocated(message)
            bits.set(offset)

        await self.change(take, dry_run=dry_run)

    async def allocate_next(self, *, dry_run: bool = False) -> int:
        def take(bits: Bits) -> int:
            band = self.static_band if self.static_band < self.size else 0
            offset = bits.free_in(band, self.size, self.rng)
            if offset is None:
                offset = bits.free_in(0, band, self.rng)
            if offset is None:
                raise Full()
            bits.set(offset)
            return offset

        return await self.change(take, dry_run=dry_run)

    async def release(self, offsets: list[int]) -> None:
        def free(bits: Bits) -> None:
            for offset in offsets:
                bits.clear(offset)

        if offsets:
            await self.change(free)


def static_band(size: int, *, minimum: int, maximum: int, step: int) -> int:
    """The lower band kept for user-chosen values (Kubernetes' calculateRangeOffset)."""
    if size < minimum:
        return 0
    return max(minimum, min(size // step, maximum))
