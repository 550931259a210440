"""The pod lifecycle event generator: notice what changed in the runtime, wake that pod.

As kubelet's generic PLEG: every ``period`` seconds (1 s) the runtime's sandboxes and
containers are listed and compared with the previous list; the pod (by the ``io.kubernetes``
labels) of every sandbox or container that appeared, changed state or vanished is handed to
``wake``. A container exiting is seen within one period, with no per-container watcher.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from kybern.client import clock as clock_
from kybern.kubelet import containerconfig as cc
from kybern.runtime import cri

log = logging.getLogger(__name__)
State = cri.ContainerState | cri.SandboxState


class Pleg:
    def __init__(
        self,
        runtime: cri.Runtime,
        wake: Callable[[str], None],
        *,
        clock: clock_.Clock = clock_.REAL,
        period: float = 1.0,
    ) -> None:
        self.runtime = runtime
        self.wake = wake
        self.clock = clock
        self.period = period
        self._state: dict[str, State] = {}
        self._owner: dict[str, str] = {}  # sandbox or container id -> pod uid
        self.relists = 0

    async def run(self) -> None:
        while True:
            try:
                await self.relist()
            except cri.RuntimeError_ as exc:
                log.warning("runtime relist failed: %s", exc)
            await self.clock.sleep(self.period)

    async def relist(self) -> None:
        state: dict[str, State] = {}
        owner: dict[str, str] = {}
        for sandbox in await self.runtime.list_pod_sandboxes():
            state[sandbox.id] = sandbox.state
            owner[sandbox.id] = sandbox.metadata.uid
        for container in await self.runtime.list_containers():
            state[container.id] = container.state
            owner[container.id] = cc.pod_uid_of(container.labels)
        changed = {owner[i] for i, s in state.items() if self._state.get(i) != s}
        changed |= {self._owner[i] for i in self._state.keys() - state.keys()}
        self._state, self._owner = state, owner
        self.relists += 1
        for uid in changed:
            if uid:
                self.wake(uid)
