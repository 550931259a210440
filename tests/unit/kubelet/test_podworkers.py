"""Pod workers: one sync at a time per pod, updates coalesce, timers requeue, DONE ends."""

from __future__ import annotations

import asyncio

from kybern.client import clock as clock_
from kybern.kubelet import podworkers


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_serialised_and_coalesced() -> None:
    running = 0
    peak = 0
    calls: list[str] = []
    gate = asyncio.Event()

    async def handler(uid: str) -> float | podworkers.Done | None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        calls.append(uid)
        await gate.wait()
        running -= 1
        return None

    workers = podworkers.PodWorkers(handler)
    workers.update("a")
    await settle()
    for _ in range(5):
        workers.update("a")  # arrive while the first sync runs
    gate.set()
    await settle()
    assert calls == ["a", "a"]  # one more run for all five updates
    assert peak == 1
    await workers.stop()


async def test_requeue_after_and_done() -> None:
    clock = clock_.FakeClock()
    results: list[float | podworkers.Done | None] = [5.0, podworkers.DONE]
    calls = 0

    async def handler(uid: str) -> float | podworkers.Done | None:
        nonlocal calls
        calls += 1
        return results.pop(0)

    workers = podworkers.PodWorkers(handler, clock=clock)
    workers.update("a")
    await settle()
    assert calls == 1
    clock.advance(4)
    await settle()
    assert calls == 1
    clock.advance(1)
    await settle()
    assert calls == 2
    assert workers.uids() == []


async def test_handler_error_retries() -> None:
    clock = clock_.FakeClock()
    calls = 0

    async def handler(uid: str) -> float | podworkers.Done | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return None

    workers = podworkers.PodWorkers(handler, clock=clock)
    workers.update("a")
    await settle()
    clock.advance(podworkers.RETRY_AFTER_ERROR)
    await settle()
    assert calls == 2
    await workers.stop()
