"""One worker per pod: the pod's syncs and its termination run one at a time, never two at once.

The agent calls :meth:`PodWorkers.update` whenever something about a pod changed (a watch
event, a container exiting, a probe result) and :meth:`PodWorkers.requeue` is implied by what
the handler returns. Each pod has one asyncio task that waits for a wake-up or its timer, then
calls the handler with the pod's uid; updates that arrive while the handler runs coalesce into
one more run afterwards (kubelet's podWorkers keep only the latest update too). The handler
returns the seconds until it wants to run again, None to wait for the next update, or
:data:`DONE` when the pod is finished here (the worker goes away).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from kybern.client import clock as clock_

log = logging.getLogger(__name__)


class Done:
    """The type of :data:`DONE`."""

    def __repr__(self) -> str:
        return "DONE"


DONE: Final = Done()
Handler = Callable[[str], Awaitable["float | Done | None"]]
RETRY_AFTER_ERROR = 5.0


@dataclass
class _Worker:
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    deadline: float | None = None
    busy: bool = False
    runs: int = 0


class PodWorkers:
    def __init__(self, handler: Handler, *, clock: clock_.Clock = clock_.REAL) -> None:
        self.handler = handler
        self.clock = clock
        self._workers: dict[str, _Worker] = {}

    def update(self, uid: str) -> None:
        """Something changed for the pod: run its handler (again) soon."""
        worker = self._workers.get(uid)
        if worker is None:
            worker = self._workers[uid] = _Worker()
            worker.task = asyncio.create_task(self._run(uid, worker), name=f"pod-worker-{uid}")
        worker.wake.set()

    def uids(self) -> list[str]:
        return list(self._workers)

    def busy(self, uid: str) -> bool:
        worker = self._workers.get(uid)
        return worker is not None and worker.busy

    def runs(self, uid: str) -> int:
        worker = self._workers.get(uid)
        return worker.runs if worker else 0

    async def stop(self) -> None:
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()

    async def _run(self, uid: str, worker: _Worker) -> None:
        while True:
            await self._wait(worker)
            worker.wake.clear()
            worker.busy = True
            try:
                result = await self.handler(uid)
            except Exception:
                log.exception("pod %s: sync failed; retrying in %.0fs", uid, RETRY_AFTER_ERROR)
                result = RETRY_AFTER_ERROR
            finally:
                worker.busy = False
                worker.runs += 1
            if isinstance(result, Done):
                if worker.wake.is_set():
                    continue  # an update came in meanwhile: look again
                self._workers.pop(uid, None)
                return
            worker.deadline = None if result is None else self.clock.monotonic() + result

    async def _wait(self, worker: _Worker) -> None:
        """Until woken, or the worker's deadline passes."""
        if worker.wake.is_set():
            return
        tasks: set[asyncio.Future[Any]] = {asyncio.ensure_future(worker.wake.wait())}
        if worker.deadline is not None:
            delay = worker.deadline - self.clock.monotonic()
            tasks.add(asyncio.ensure_future(self.clock.sleep(delay)))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
