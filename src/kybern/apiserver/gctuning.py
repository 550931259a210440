"""Garbage-collector tuning for a server whose heap is mostly the watch cache.

CPython's full collection walks every tracked container, and a watch cache of 100,000 objects
holds millions of dicts and lists: a full collection then stalls the event loop for 300-400 ms
(measured by bench/bench_api.py), which is most of the API's tail latency. Cached objects never
form reference cycles and are freed by reference counting when replaced, so they need not be
scanned at all: ``gc.freeze()`` moves everything alive into a generation the collector
ignores, and a full collection then walks only what is newer than the freeze.

When to freeze again: once the objects stored in the cache since the last freeze reach half
the cache at that freeze, or ``most`` objects, whichever is fewer. Stored means new objects
(growth) and objects that replaced a cached one (updates; a delete then a create counts once).
Growth alone is not enough: a cluster whose pods are all updated after the freeze never grows,
yet its whole cache is unfrozen again; bench/bench_list.py ``--churn 100000`` (150,000 pods)
then measured a 1.6 s full collection. Under such churn the new objects also pile up in the
young generations (each replaced object freed cancels an allocation in the collector's count),
so young collections too walk everything stored since the freeze. The cap bounds both: with
5,000 objects the churn run's longest pause fell to 85 ms (roughly 10-15 us a pod). Freezes
stay cheap and rare: at most one per ``CHECK_INTERVAL``, and only after that many writes.

What a freeze collects first: only the young generations. ``gc.freeze()`` itself only moves
lists, but a full collection before it walks every unfrozen object, which is the stall the
freeze is meant to end: 1.1 s at the first freeze of 150,000 pods, just as the server starts
answering. The price: the frozen generation is never collected, so a reference cycle alive at
a freeze, and cyclic garbage that had reached the old generation by then, are kept for good.
Most cycles die young and are collected before they get there, and the old generation is
still collected between freezes (CPython's own thresholds), so a freeze keeps only cycles that
died after reaching the old generation since the last full collection, plus those still
alive; requests make few cycles, so that stays small, though it adds up over freezes, and a
server under constant writes freezes every few seconds.
A larger first-generation threshold makes young collections rarer under write bursts.
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
MOST_CHANGED = 5_000  # objects stored since the last freeze that trigger one regardless


def _never_replaced() -> int:
    return 0


class HeapFreezer:
    """Freezes the heap when the cache has changed enough since the last freeze.

    ``size()`` is the cache's object count; ``replaced()`` a running count of cached objects
    replaced (updated or deleted). Each replacement counts as one object of growth: an update
    leaves the size alone but puts one unfrozen object in the cache, and a delete lowers the
    size by one, so a delete and a create count once."""

    def __init__(
        self,
        size: Callable[[], int],
        replaced: Callable[[], int] = _never_replaced,
        *,
        growth: float = 1.5,
        minimum: int = 2_000,
        most: int = MOST_CHANGED,
    ) -> None:
        self.size = size
        self.replaced = replaced
        self.growth = growth
        self.minimum = minimum
        self.most = most
        self.frozen_at = 0
        self.replaced_at = 0
        self.freezes = 0

    def changed(self) -> int:
        """Objects stored since the last freeze: growth plus replacements."""
        return self.size() - self.frozen_at + self.replaced() - self.replaced_at

    def due(self) -> bool:
        enough = min(self.most, (self.growth - 1) * self.frozen_at)
        return self.size() >= self.minimum and self.changed() >= max(1, enough)

    def freeze(self) -> None:
        start = time.perf_counter()
        gc.collect(1)  # the young generations only: see the module docstring
        gc.freeze()
        self.frozen_at = self.size()
        self.replaced_at = self.replaced()
        self.freezes += 1
        log.debug(
            "gc: froze %d objects at cache size %d in %.1f ms",
            gc.get_freeze_count(),
            self.frozen_at,
            (time.perf_counter() - start) * 1000,
        )

    def check(self) -> bool:
        if self.due():
            self.freeze()
            return True
        return False


def tune() -> None:
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)


async def run(freezer: HeapFreezer) -> None:
    """Freeze once now (the startup heap: schemas, modules, the primed cache), then whenever
    the cache has changed enough."""
    tune()
    freezer.freeze()
    while True:
        await asyncio.sleep(CHECK_INTERVAL)
        freezer.check()
