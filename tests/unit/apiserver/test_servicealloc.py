"""Service allocation: persisted bitmaps, the IP and port ranges, repair of leaks."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kybern.apiserver.services import bitmap, ranges
from kybern.storage import open_backend
from kybern.storage.sqlite import SQLiteBackend

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[SQLiteBackend]:
    store = open_backend(tmp_path / "state.db")
    await store.start()
    yield store
    await store.close()


# -- bits --------------------------------------------------------------------------------


def test_bits_set_clear_and_offsets() -> None:
    bits = bitmap.Bits(20)
    for offset in (0, 7, 8, 19):
        bits.set(offset)
    assert bits.offsets() == [0, 7, 8, 19]
    assert bits.count() == 4
    bits.clear(7)
    assert not bits.has(7)
    assert bits.has(8)


def test_free_in_skips_full_bytes_and_wraps() -> None:
    bits = bitmap.Bits(32)
    for offset in range(32):
        if offset != 3:
            bits.set(offset)
    rng = random.Random(1)
    assert all(bits.free_in(0, 32, rng) == 3 for _ in range(20))
    assert bits.free_in(4, 32, rng) is None


def test_static_band_as_kubernetes() -> None:
    assert bitmap.static_band(65534, minimum=16, maximum=256, step=16) == 256  # a /16
    assert bitmap.static_band(254, minimum=16, maximum=256, step=16) == 16  # a /24
    assert bitmap.static_band(14, minimum=16, maximum=256, step=16) == 0  # a /28
    assert bitmap.static_band(2768, minimum=16, maximum=128, step=32) == 86  # NodePorts


# -- IPs ---------------------------------------------------------------------------------


def test_ip_range_skips_network_and_broadcast(backend: SQLiteBackend) -> None:
    ips = ranges.IPAllocator(backend, "10.43.0.0/16")
    assert ips.first() == "10.43.0.1"
    assert ips.size == 65534
    assert ips.offset_of("10.43.0.0") is None
    assert ips.offset_of("10.43.255.255") is None
    assert ips.offset_of("10.43.255.254") == 65533
    assert ips.offset_of("10.44.0.1") is None
    assert ips.offset_of("not-an-ip") is None


async def test_a_chosen_ip_is_allocated_once(backend: SQLiteBackend) -> None:
    ips = ranges.IPAllocator(backend, "10.43.0.0/16")
    await ips.allocate("10.43.0.5")
    with pytest.raises(bitmap.Allocated, match=r"^provided IP is already allocated$"):
        await ips.allocate("10.43.0.5")
    with pytest.raises(bitmap.NotInRange) as caught:
        await ips.allocate("10.44.0.1")
    assert str(caught.value) == (
        "the provided IP (10.44.0.1) is not in the valid range. "
        "The range of valid IPs is 10.43.0.0/16"
    )


async def test_dynamic_ips_avoid_the_static_band(backend: SQLiteBackend) -> None:
    ips = ranges.IPAllocator(backend, "10.43.0.0/16", rng=random.Random(7))
    got = [await ips.allocate_next() for _ in range(50)]
    assert all(ips.offset_of(ip) is not None and ips.offset_of(ip) >= 256 for ip in got)  # type: ignore[operator]
    assert "10.43.0.10" not in got


async def test_a_small_range_fills_up_then_uses_the_static_band(backend: SQLiteBackend) -> None:
    ips = ranges.IPAllocator(backend, "10.0.0.0/27")  # 30 addresses, 16 of them static
    got = {await ips.allocate_next() for _ in range(30)}
    assert len(got) == 30
    with pytest.raises(bitmap.Full, match="range is full"):
        await ips.allocate_next()
    await ips.release(["10.0.0.3"])
    assert await ips.allocate_next() == "10.0.0.3"


async def test_concurrent_allocations_are_distinct(backend: SQLiteBackend) -> None:
    # Two allocators over one store stand for two API servers: only the CAS keeps them apart.
    first = ranges.IPAllocator(backend, "10.43.0.0/16", rng=random.Random(1))
    second = ranges.IPAllocator(backend, "10.43.0.0/16", rng=random.Random(1))
    got = await asyncio.gather(
        *(alloc.allocate_next() for _ in range(100) for alloc in (first, second))
    )
    assert len(set(got)) == 200
    stored = await ranges.IPAllocator(backend, "10.43.0.0/16").bitmap.snapshot()
    assert stored.bits.count() == 200


async def test_allocations_survive_a_restart(backend: SQLiteBackend) -> None:
    await ranges.IPAllocator(backend, "10.43.0.0/16").allocate("10.43.0.7")
    again = ranges.IPAllocator(backend, "10.43.0.0/16")
    with pytest.raises(bitmap.Allocated):
        await again.allocate("10.43.0.7")


async def test_dry_run_checks_without_storing(backend: SQLiteBackend) -> None:
    ips = ranges.IPAllocator(backend, "10.43.0.0/16")
    await ips.allocate("10.43.0.9", dry_run=True)
    await ips.allocate("10.43.0.9")  # still free
    with pytest.raises(bitmap.Allocated):
        await ips.allocate("10.43.0.9", dry_run=True)


async def test_a_changed_range_starts_empty(backend: SQLiteBackend) -> None:
    await ranges.IPAllocator(backend, "10.43.0.0/16").allocate("10.43.0.7")
    other = ranges.IPAllocator(backend, "10.96.0.0/12")
    await other.allocate("10.96.0.1")
    assert (await other.bitmap.snapshot()).bits.count() == 1


# -- NodePorts ---------------------------------------------------------------------------


async def test_node_ports_messages_and_range(backend: SQLiteBackend) -> None:
    ports = ranges.PortAllocator(backend)
    await ports.allocate(30080)
    with pytest.raises(bitmap.Allocated, match=r"^provided port is already allocated$"):
        await ports.allocate(30080)
    with pytest.raises(bitmap.NotInRange) as caught:
        await ports.allocate(80)
    assert str(caught.value) == (
        "provided port is not in the valid range. The range of valid ports is 30000-32767"
    )
    dynamic = [await ports.allocate_next() for _ in range(20)]
    assert all(30086 <= p <= 32767 for p in dynamic)
    assert len(set(dynamic)) == 20


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30000-32767", (30000, 32767)), ("30000+10", (30000, 30010)), ("8080", (8080, 8080))],
)
def test_port_range_syntax(text: str, expected: tuple[int, int]) -> None:
    assert ranges.parse_port_range(text) == expected


@pytest.mark.parametrize("text", ["abc", "0-10", "40000-30000", "1-70000"])
def test_bad_port_ranges(text: str) -> None:
    with pytest.raises(ValueError, match="invalid port range"):
        ranges.parse_port_range(text)


async def test_the_stored_bitmap_is_a_compressed_range_allocation(backend: SQLiteBackend) -> None:
    await ranges.IPAllocator(backend, "10.43.0.0/16").allocate("10.43.0.7")
    kv = await backend.get(ranges.IP_KEY)
    assert len(kv.value) < 300  # 8 KiB of bits, almost all zero
    assert b'"kind":"RangeAllocation"' in kv.value
    assert b'"range":"10.43.0.0/16"' in kv.value
