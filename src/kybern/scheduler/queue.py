"""The scheduling queue: activeQ, backoffQ and the unschedulable pods.

- activeQ pops the highest priority first, then the oldest (PrioritySort).
- A pod that failed goes to backoffQ for ``initial * 2**(attempts-1)`` seconds (1 s doubling
  to 10 s) when something may have changed during its cycle, otherwise to the unschedulable
  set. Unschedulable pods move out on a cluster event that may help the plugins that
  rejected them (``move_on_event``), and after ``max_unschedulable`` (5 minutes) regardless.
- Time comes from an injected clock; ``flush`` moves whatever is due (call it periodically).
- Nominated pods (preemptors waiting for victims to leave) are indexed by node.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kybern.scheduler import podinfo

Clock = Callable[[], float]
INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_UNSCHEDULABLE = 300.0

# Cluster events and the plugins whose rejections they may undo ("*" = all).
NODE_ADD = "NodeAdd"
NODE_UPDATE = "NodeUpdate"
POD_DELETE = "AssignedPodDelete"
POD_ADD = "AssignedPodAdd"
POD_UPDATE = "AssignedPodUpdate"
EVENT_PLUGINS: dict[str, frozenset[str]] = {
    NODE_ADD: frozenset({"*"}),
    NODE_UPDATE: frozenset({"*"}),
    POD_DELETE: frozenset(
        {"NodeResourcesFit", "NodePorts", "InterPodAffinity", "PodTopologySpread"}
    ),
    POD_ADD: frozenset({"InterPodAffinity", "PodTopologySpread"}),
    POD_UPDATE: frozenset({"InterPodAffinity", "PodTopologySpread", "NodeResourcesFit"}),
}


@dataclass(eq=False, slots=True)
class QueuedPod:
    pod: podinfo.PodInfo
    timestamp: float  # when it (re)entered the queue, for ordering
    attempts: int = 0
    backoff_until: float = 0.0
    unschedulable_since: float = 0.0
    rejected_by: frozenset[str] = field(default_factory=frozenset)


_BOOKKEEPING = ("resourceVersion", "generation", "managedFields")


def _spec_changed(old: podinfo.PodInfo, new: podinfo.PodInfo) -> bool:
    """kube-scheduler's isPodUpdated: anything but status and bookkeeping metadata."""
    if old.obj is new.obj:
        return False
    if old.obj.get("spec") != new.obj.get("spec"):
        return True
    old_meta = {k: v for k, v in (old.obj.get("metadata") or {}).items() if k not in _BOOKKEEPING}
    new_meta = {k: v for k, v in (new.obj.get("metadata") or {}).items() if k not in _BOOKKEEPING}
    return old_meta != new_meta


class SchedulingQueue:
    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        initial_backoff: float = INITIAL_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
        max_unschedulable: float = MAX_UNSCHEDULABLE,
    ) -> None:
        self.clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable = max_unschedulable
        self._seq = itertools.count()
        self._active: list[tuple[int, float, int, QueuedPod]] = []
        self._backoff: list[tuple[float, int, QueuedPod]] = []
        self.unschedulable: dict[str, QueuedPod] = {}
        self._where: dict[str, QueuedPod] = {}  # uid -> entry, for pods in active or backoff
        self._in_flight: dict[str, QueuedPod] = {}
        self.scheduling_cycle = 0
        self._move_request_cycle = -1
        self.nominated: dict[str, dict[str, podinfo.PodInfo]] = {}  # node -> uid -> pod

    def __len__(self) -> int:
        return len(self._where) + len(self.unschedulable)

    # --- adding -----------------------------------------------------------------------

    def add(self, pod: podinfo.PodInfo) -> None:
        """A new or updated pending pod. An update that only touches status or bookkeeping
        metadata (the scheduler's own PodScheduled=False patch coming back) changes
        nothing; a real change moves an unschedulable pod to be tried again."""
        uid = pod.uid
        queued = self._where.get(uid) or self._in_flight.get(uid)
        if queued is not None:
            if uid in self._in_flight and _spec_changed(queued.pod, pod):
                self._move_request_cycle = self.scheduling_cycle
            queued.pod = pod
            return
        old = self.unschedulable.get(uid)
        if old is not None and not _spec_changed(old.pod, pod):
            old.pod = pod
            return
        entry = QueuedPod(pod, self.clock())
        if old is not None:
            del self.unschedulable[uid]
            entry.attempts = old.attempts
        self._push_active(entry)
        self._nominate(pod)

    def _push_active(self, entry: QueuedPod) -> None:
        self._where[entry.pod.uid] = entry
        heapq.heappush(self._active, (-entry.pod.priority, entry.timestamp, next(self._seq), entry))

    def _push_backoff(self, entry: QueuedPod) -> None:
        self._where[entry.pod.uid] = entry
        heapq.heappush(self._backoff, (entry.backoff_until, next(self._seq), entry))

    def delete(self, uid: str) -> None:
        entry = self._where.pop(uid, None) or self.unschedulable.pop(uid, None)
        self._in_flight.pop(uid, None)
        if entry is not None:
            self._unnominate(entry.pod)

    # --- popping ----------------------------------------------------------------------

    def pop(self) -> QueuedPod | None:
        """The next pod to schedule, or None when activeQ is empty (after ``flush``)."""
        self.flush()
        while self._active:
            entry = heapq.heappop(self._active)[3]
            if self._where.get(entry.pod.uid) is entry:
                del self._where[entry.pod.uid]
                self.scheduling_cycle += 1
                entry.attempts += 1
                self._in_flight[entry.pod.uid] = entry
                return entry
        return None

    def done(self, uid: str) -> None:
        """The pod was scheduled (or deleted): forget it."""
        entry = self._in_flight.pop(uid, None)
        if entry is not None:
            self._unnominate(entry.pod)

    def requeue_unschedulable(
        self, entry: QueuedPod, rejected_by: Iterable[str], *, cycle: int
    ) -> None:
        """After a failed attempt: backoffQ if a move request arrived while the pod was in
        flight (it may fit now), otherwise the unschedulable set."""
        if self._in_flight.pop(entry.pod.uid, None) is None:
            return  # deleted while it was being scheduled
        now = self.clock()
        entry.timestamp = now
        entry.backoff_until = now + self.backoff_duration(entry.attempts)
        entry.rejected_by = frozenset(rejected_by)
        if self._move_request_cycle >= cycle or not entry.rejected_by:
            self._push_backoff(entry)
        else:
            entry.unschedulable_since = now
            self.unschedulable[entry.pod.uid] = entry
        self._nominate(entry.pod)

    def requeue_error(self, entry: QueuedPod) -> None:
        """After an error (binding failed...): always backoff."""
        self.requeue_unschedulable(entry, (), cycle=self.scheduling_cycle)

    def backoff_duration(self, attempts: int) -> float:
        duration: float = self.initial_backoff * 2.0 ** max(attempts - 1, 0)
        return min(duration, self.max_backoff)

    # --- moving -----------------------------------------------------------------------

    def flush(self) -> None:
        now = self.clock()
        while self._backoff and self._backoff[0][0] <= now:
            entry = heapq.heappop(self._backoff)[2]
            if self._where.get(entry.pod.uid) is entry:
                self._push_active(entry)
        stale = [
            e
            for e in self.unschedulable.values()
            if now - e.unschedulable_since >= self.max_unschedulable
        ]
        for entry in stale:
            self._move(entry, now)

    def move_on_event(self, event: str) -> int:
        """A cluster event: move the unschedulable pods it may help; returns how many."""
        self._move_request_cycle = self.scheduling_cycle
        plugins = EVENT_PLUGINS.get(event, frozenset({"*"}))
        now = self.clock()
        moving = [
            e
            for e in self.unschedulable.values()
            if "*" in plugins or not e.rejected_by or e.rejected_by & plugins
        ]
        for entry in moving:
            self._move(entry, now)
        return len(moving)

    def _move(self, entry: QueuedPod, now: float) -> None:
        del self.unschedulable[entry.pod.uid]
        if entry.backoff_until > now:
            self._push_backoff(entry)
        else:
            self._push_active(entry)

    def next_ready(self) -> float | None:
        """When the earliest backoff ends (None if none), for a waiting loop."""
        return self._backoff[0][0] if self._backoff else None

    # --- nominated pods ---------------------------------------------------------------

    def _nominate(self, pod: podinfo.PodInfo) -> None:
        self._unnominate(pod)
        if pod.nominated_node:
            self.nominated.setdefault(pod.nominated_node, {})[pod.uid] = pod

    def _unnominate(self, pod: podinfo.PodInfo) -> None:
        for node, pods in list(self.nominated.items()):
            if pods.pop(pod.uid, None) is not None and not pods:
                del self.nominated[node]

    def nominate(self, pod: podinfo.PodInfo, node_name: str) -> None:
        pod.nominated_node = node_name
        self._nominate(pod)

    def nominated_on(self, node_name: str) -> Iterable[podinfo.PodInfo]:
        return self.nominated.get(node_name, {}).values()
