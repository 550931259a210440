"""Sync slots: at most N syncs at once, granted in arrival order, a lease that runs out."""

from __future__ import annotations

import asyncio

from kybern.kubelet import syncslots


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_slots_are_granted_in_arrival_order() -> None:
    slots = syncslots.SyncSlots(2, lease=60)
    gates = {i: asyncio.Event() for i in range(5)}
    entered: list[int] = []

    async def sync(i: int) -> None:
        async with slots.hold():
            entered.append(i)
            await gates[i].wait()

    tasks = [asyncio.create_task(sync(i)) for i in range(5)]
    await settle()
    assert entered == [0, 1]  # two at once, the others queue
    assert slots.queued == 3
    gates[1].set()
    await settle()
    assert entered == [0, 1, 2]
    for gate in gates.values():
        gate.set()
    await asyncio.gather(*tasks)
    assert entered == [0, 1, 2, 3, 4]
    assert slots.expired == 0


async def test_a_slow_sync_gives_its_slot_back_after_the_lease() -> None:
    slots = syncslots.SyncSlots(1, lease=0.01)
    slow_done = asyncio.Event()
    order: list[str] = []

    async def slow() -> None:
        async with slots.hold():
            order.append("slow in")
            await slow_done.wait()
        order.append("slow out")

    async def quick() -> None:
        async with slots.hold():
            order.append("quick")

    first = asyncio.create_task(slow())
    await settle()
    async with asyncio.timeout(5):
        await quick()  # does not wait for the slow one, only for its lease
    assert order == ["slow in", "quick"]
    assert slots.expired == 1
    slow_done.set()
    await first
    async with asyncio.timeout(5):
        await quick()  # the expired lease was not given back twice: one slot, still usable
    assert order[-1] == "quick"


async def test_an_error_in_the_sync_frees_the_slot() -> None:
    slots = syncslots.SyncSlots(1, lease=60)

    async def failing() -> None:
        async with slots.hold():
            raise ValueError("boom")

    for _ in range(3):
        try:
            await failing()
        except ValueError:
            pass
    async with asyncio.timeout(5), slots.hold():
        pass
