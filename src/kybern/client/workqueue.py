"""The controllers' work queue: deduplicated keys, rate-limited retries, delayed adds.

Semantics of client-go's ``workqueue`` (the rate-limiting, delaying kind every controller uses):

- A key is queued at most once however often it is added (dirty set).
- A key being processed is never handed to a second worker; if it is added meanwhile, it is
  queued again when the first worker calls ``done`` (so no change is ever lost).
- ``add_rate_limited`` requeues after the larger of a per-key exponential backoff (5 ms,
  doubling, capped at 1000 s; ``forget`` resets it) and an overall token bucket (10 qps,
  burst 100): client-go's ``DefaultControllerRateLimiter``.
- ``add_after`` queues a key once a delay has passed (the earliest request wins).
- ``shutdown`` wakes every waiting ``get`` with ``ShutDown``; ``shutdown(drain=True)`` first
  waits until the keys being processed are done.

Time comes from a ``clock.Clock`` so tests drive backoff with a ``FakeClock``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator, Hashable
from typing import Generic, Protocol, TypeVar

from kybern.client import clock as clock_

T = TypeVar("T", bound=Hashable)

BASE_DELAY = 0.005
MAX_DELAY = 1000.0
QPS = 10.0
BURST = 100


class ShutDown(Exception):
    """The queue was shut down: the worker should return."""


class RateLimiter(Protocol):
    def when(self, item: Hashable) -> float:
        """How long to wait before the item's next try (and count the try)."""
        ...

    def forget(self, item: Hashable) -> None: ...

    def num_requeues(self, item: Hashable) -> int: ...


class ItemExponentialFailureRateLimiter:
    """base * 2**failures per item, capped at ``max_delay``."""

    def __init__(self, base: float = BASE_DELAY, max_delay: float = MAX_DELAY) -> None:
        self.base = base
        self.max_delay = max_delay
        self.failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        failures = self.failures.get(item, 0)
        self.failures[item] = failures + 1
        if failures > 64:  # 2**64 * 5 ms is far past any cap
            return self.max_delay
        return float(min(self.base * 2**failures, self.max_delay))

    def forget(self, item: Hashable) -> None:
        self.failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self.failures.get(item, 0)


class BucketRateLimiter:
    """An overall token bucket (golang.org/x/time/rate): ``qps`` tokens a second, ``burst``
    at most; a try without a token waits for the one it reserved."""

    def __init__(self, qps: float = QPS, burst: int = BURST, *, clock: clock_.Clock) -> None:
        self.qps = qps
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.last = clock.monotonic()

    def when(self, item: Hashable) -> float:
        now = self.clock.monotonic()
        self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.qps)
        self.last = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.qps

    def forget(self, item: Hashable) -> None:
        return None

    def num_requeues(self, item: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest wait any of the limiters asks for (every limiter counts the try)."""

    def __init__(self, *limiters: RateLimiter) -> None:
        self.limiters = limiters

    def when(self, item: Hashable) -> float:
        return max(limiter.when(item) for limiter in self.limiters)

    def forget(self, item: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)


def default_controller_rate_limiter(clock: clock_.Clock = clock_.REAL) -> MaxOfRateLimiter:
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(), BucketRateLimiter(clock=clock))


class Metrics(Protocol):
    """Hooks for a metrics provider (client-go's workqueue metrics: depth, adds, latency,
    work duration, retries)."""

    def on_add(self, name: str, depth: int) -> None: ...

    def on_get(self, name: str, depth: int, queued_seconds: float) -> None: ...

    def on_done(self, name: str, work_seconds: float) -> None: ...

    def on_retry(self, name: str) -> None: ...


class NoMetrics:
    def on_add(self, name: str, depth: int) -> None:
        return None

    def on_get(self, name: str, depth: int, queued_seconds: float) -> None:
        return None

    def on_done(self, name: str, work_seconds: float) -> None:
        return None

    def on_retry(self, name: str) -> None:
        return None


class RateLimitingQueue(Generic[T]):
    """A deduplicating FIFO with processing bookkeeping, delays and rate-limited retries."""

    def __init__(
        self,
        name: str = "",
        *,
        rate_limiter: RateLimiter | None = None,
        clock: clock_.Clock = clock_.REAL,
        metrics: Metrics | None = None,
    ) -> None:
        self.name = name
        self.clock = clock
        self.rate_limiter = rate_limiter or default_controller_rate_limiter(clock)
        self.metrics = metrics or NoMetrics()
        self._queue: collections.deque[T] = collections.deque()
        self._dirty: set[T] = set()
        self._processing: dict[T, float] = {}  # item -> when a worker got it
        self._added_at: dict[T, float] = {}
        self._getters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._idle = asyncio.Event()  # set while nothing is being processed
        self._idle.set()
        self._shutting_down = False
        self._waiting: dict[T, float] = {}  # item -> due time of its delayed add
        self._heap: list[tuple[float, int, T]] = []
        self._seq = itertools.count()
        self._delays_changed = asyncio.Event()
        self._delay_task: asyncio.Task[None] | None = None

    # -- the plain queue ---------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def add(self, item: T) -> None:
        if self._shutting_down or item in self._dirty:
            return
        self._dirty.add(item)
        self._added_at.setdefault(item, self.clock.monotonic())
        if item in self._processing:
            return  # queued again by done()
        self._queue.append(item)
        self.metrics.on_add(self.name, len(self._queue))
        self._wake_one()

    async def get(self) -> T:
        """The next key; raises ``ShutDown`` once the queue is shut down and empty."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown
            getter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except asyncio.CancelledError:
                if getter.done() and not getter.cancelled():
                    self._wake_one()  # pass the wake-up on: this getter won't take the key
                raise
        item = self._queue.popleft()
        now = self.clock.monotonic()
        self._processing[item] = now
        self._idle.clear()
        self._dirty.discard(item)
        queued = now - self._added_at.pop(item, now)
        self.metrics.on_get(self.name, len(self._queue), queued)
        return item

    def done(self, item: T) -> None:
        """The worker finished with ``item``: queue it again if it was added meanwhile."""
        started = self._processing.pop(item, None)
        if started is not None:
            self.metrics.on_done(self.name, self.clock.monotonic() - started)
        if not self._processing:
            self._idle.set()
        if item in self._dirty:
            self._queue.append(item)
            self._wake_one()

    async def __aiter__(self) -> AsyncIterator[T]:
        while True:
            try:
                yield await self.get()
            except ShutDown:
                return

    def _wake_one(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    def _wake_all(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)

    # -- delays and rate limiting ------------------------------------------------------

    def add_after(self, item: T, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(item)
            return
        due = self.clock.monotonic() + delay
        if item in self._waiting and self._waiting[item] <= due:
            return  # an earlier add is already pending
        self._waiting[item] = due
        heapq.heappush(self._heap, (due, next(self._seq), item))
        self._delays_changed.set()
        if self._delay_task is None:
            self._delay_task = asyncio.get_running_loop().create_task(
                self._run_delays(), name=f"workqueue-delays-{self.name}"
            )

    def add_rate_limited(self, item: T) -> None:
        self.metrics.on_retry(self.name)
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """Stop tracking the item's failures (call after a successful reconcile)."""
        self.rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self.rate_limiter.num_requeues(item)

    async def _run_delays(self) -> None:
        while not self._shutting_down:
            self._delays_changed.clear()
            self._release_due()
            if not self._heap:
                await self._delays_changed.wait()
                continue
            wait = self._heap[0][0] - self.clock.monotonic()
            sleeper = asyncio.ensure_future(self.clock.sleep(wait))
            changed = asyncio.ensure_future(self._delays_changed.wait())
            try:
                await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                changed.cancel()

    def _release_due(self) -> None:
        now = self.clock.monotonic()
        while self._heap and self._heap[0][0] <= now:
            due, _, item = heapq.heappop(self._heap)
            if self._waiting.get(item) == due:
                del self._waiting[item]
                self.add(item)

    # -- shutdown ----------------------------------------------------------------------

    async def shutdown(self, *, drain: bool = False) -> None:
        """Stop accepting keys and wake every waiting ``get`` (keys already queued are still
        handed out). ``drain``: also wait until the keys being processed are done."""
        self._shutting_down = True
        self._wake_all()
        if self._delay_task is not None:
            self._delay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._delay_task
            self._delay_task = None
        if drain:
            await self._idle.wait()
