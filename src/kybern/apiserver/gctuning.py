"""Garbage-collector tuning for a server whose heap is mostly the watch cache.

CPython's full collection walks every tracked container, and a watch cache of 100,000 objects
holds millions of dicts and lists: a full collection then stalls the event loop for 300-400 ms
(measured by bench/bench_api.py), which is most of the API's tail latency. Cached objects never
form reference cycles and are freed by reference counting when replaced, so they need not be
scanned at all: ``gc.freeze()`` moves everything alive into a generation the collector
ignores. The freezer does that after start and again each time the cache has grown by half
since the last freeze, so the cost stays proportional to new objects and freezes stay rare
(logarithmic in the cache size). The price: a reference cycle that is alive at a freeze and
dies later is never collected; freezes are rare and requests hold few cycles, so that stays
small. A larger first-generation threshold makes young collections rarer under write bursts.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

GEN0_THRESHOLD = 10_000
CHECK_INTERVAL = 5.0


class HeapFreezer:
    """Freezes the heap when ``size()`` (the cache's object count) has grown enough."""

    def __init__(
        self, size: Callable[[], int], *, growth: float = 1.5, minimum: int = 2_000
    ) -> None:
        self.size = size
        self.growth = growth
        self.minimum = minimum
        self.frozen_at = 0
        self.freezes = 0

    def freeze(self) -> None:
        start = time.perf_counter()
        gc.collect()
        gc.freeze()
        self.frozen_at = self.size()
        self.freezes += 1
        log.debug(
            "gc: froze %d objects at cache size %d in %.1f ms",
            gc.get_freeze_count(),
            self.frozen_at,
            (time.perf_counter() - start) * 1000,
        )

    def check(self) -> bool:
        if self.size() >= max(self.minimum, self.frozen_at * self.growth):
            self.freeze()
            return True
        return False


def tune() -> None:
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)


async def run(freezer: HeapFreezer) -> None:
    """Freeze once now (the startup heap: schemas, modules, the primed cache), then whenever
    the cache has grown enough."""
    tune()
    freezer.freeze()
    while True:
        await asyncio.sleep(CHECK_INTERVAL)
        freezer.check()
