"""How many pod syncs run at once: first come, first served, and never held for long.

The agent is one event loop. When 100 pods arrive together and all 100 syncs run at once, the
loop takes turns among them (and the containers' monitors, started together, share the CPUs
the same way): every pod advances at the pace of the whole batch and each one's status is
written only when nearly all are done. A few slots, granted in arrival order, let the first
pods finish and report while the later ones wait their turn: the same total work, but each
pod's latency is its place in the queue, not the whole batch's.

A slot is a lease, not a lock: a sync that holds it longer than ``lease`` seconds (an image
pull, a postStart hook, a slow runtime) gives it back early and carries on, so one slow pod
delays another by at most ``lease``, never by its whole start (kubelet's pod workers never
wait for each other; the slots only order work that is CPU-bound anyway). The lease runs on
the loop's own clock: it bounds real waiting, whatever clock the agent is given.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

# Enough that both cores stay busy while starts wait on their monitors' interpreters (a start
# alone takes ~30 ms, of which the agent's loop is a third), few enough that under a burst
# the pods finish in the order they came.
SLOTS = 16
LEASE = 1.0  # seconds: dozens of solitary syncs, below any step that waits on the outside


class SyncSlots:
    def __init__(self, slots: int = SLOTS, *, lease: float = LEASE) -> None:
        self.lease = lease
        self._free = asyncio.Semaphore(slots)  # FIFO: waiters are woken in arrival order
        self.queued = 0  # syncs that had to wait for a slot (for tests and metrics)
        self.expired = 0  # leases that ran out before their sync ended

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """A slot for the duration of the block, or for ``lease`` seconds if that is shorter."""
        if self._free.locked():
            self.queued += 1
        await self._free.acquire()
        released = False

        def release(*, expired: bool = False) -> None:
            nonlocal released
            if not released:
                released = True
                self.expired += expired
                self._free.release()

        timer = asyncio.get_running_loop().call_later(self.lease, lambda: release(expired=True))
        try:
            yield
        finally:
            timer.cancel()
            release()
