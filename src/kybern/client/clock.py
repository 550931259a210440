"""Time as the client library sees it, so tests can drive it: ``Clock`` and ``FakeClock``.

Work-queue backoff, informer resync and leader-election deadlines all read ``monotonic()``
and wait with ``sleep()``; leader election also stamps Leases with ``now()``. ``FakeClock``
only moves when a test calls ``advance()``, which wakes every sleeper whose deadline passed
(kopf's looptime and trio's MockClock serve the same purpose): timing tests run in
microseconds and never flake.
"""

from __future__ import annotations

import asyncio
import datetime
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for deadlines and backoff)."""
        ...

    def now(self) -> datetime.datetime:
        """Wall-clock time, timezone-aware UTC (for timestamps written to the API)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


REAL: Clock = RealClock()


class FakeClock:
    """A clock that moves only with ``advance``; ``sleep`` waits for it."""

    def __init__(
        self,
        start: float = 1000.0,
        wall: datetime.datetime = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    ) -> None:
        self._start = start
        self._now = start
        self._wall = wall
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self._now

    def now(self) -> datetime.datetime:
        return self._wall + datetime.timedelta(seconds=self._now - self._start)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), future))
        await future

    @property
    def sleepers(self) -> int:
        """How many sleeps are pending (a test can wait for a task to go to sleep)."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def next_deadline(self) -> float | None:
        live = [d for d, _, f in self._sleepers if not f.done()]
        return min(live) if live else None

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has passed."""
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    async def run_for(self, seconds: float, *, step: float | None = None) -> None:
        """Advance ``seconds`` in steps (each sleeper's deadline, or ``step``), letting the
        woken tasks run between steps: what real time would have done, instantly."""
        end = self._now + seconds
        while True:
            await _settle()
            deadline = self.next_deadline()
            target = end if deadline is None else min(end, deadline)
            if step is not None:
                target = min(target, self._now + step)
            if target <= self._now and self._now >= end:
                return
            self.advance(max(0.0, target - self._now))
            if self._now >= end:
                await _settle()
                return


async def _settle(rounds: int = 20) -> None:
    """Let ready tasks run (event-loop turns, not time)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
