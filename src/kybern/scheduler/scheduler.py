"""The scheduling cycle: pop a pod, filter, score, pick a node, assume, bind.

``schedule_one`` is synchronous and does the decision (PreFilter, Filter over a rotating
window of nodes until percentageOfNodesToScore feasible ones are found, PostFilter =
preemption on failure, PreScore/Score/NormalizeScore, host selection with random
tie-breaking, Reserve, Permit, assume in the cache). ``complete`` is asynchronous and does
what goes to the API through the :class:`adapter.ClusterAPI`: the binding and the Scheduled
event, or the FailedScheduling event, the PodScheduled=False condition, the nominated
node and the deletion of preemption victims.

Feed it plain dicts: ``add_node``/``remove_node``, ``add_pod``/``remove_pod`` (pending pods
for this scheduler go to the queue, bound ones to the cache), ``set_priority_class``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kybern.scheduler import (
    adapter,
    diagnosis,
    equivalence,
    framework,
    plugins,
    podinfo,
    queue,
)
from kybern.scheduler import cache as cache_mod

Obj = dict[str, Any]
DEFAULT_SCHEDULER_NAME = "default-scheduler"
MAX_BINDINGS_IN_FLIGHT = 64  # run() starts the next scheduling cycle while these bind
NO_NODES = "no nodes available to schedule pods"
log = logging.getLogger(__name__)


def default_framework(percentage_of_nodes_to_score: int = 0) -> framework.Framework:
    return framework.Framework(
        plugins.build(),
        weights=plugins.DEFAULT_WEIGHTS,
        percentage_of_nodes_to_score=percentage_of_nodes_to_score,
    )


@dataclass(slots=True)
class Outcome:
    """One cycle's decision: ``node`` when it fits, else ``message`` and preemption."""

    entry: queue.QueuedPod
    state: framework.CycleState
    node: str = ""
    message: str = ""
    reason: str = "Unschedulable"
    nominated_node: str | None = None  # None: leave as is
    victims: list[podinfo.PodInfo] = field(default_factory=list)
    rejected_by: set[str] = field(default_factory=set)  # plugins that said no

    @property
    def pod(self) -> podinfo.PodInfo:
        return self.entry.pod


class Scheduler:
    def __init__(
        self,
        *,
        cluster: adapter.ClusterAPI | None = None,
        fw: framework.Framework | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        scheduler_name: str = DEFAULT_SCHEDULER_NAME,
        use_equivalence: bool = True,
        assumed_ttl: float = cache_mod.DEFAULT_ASSUMED_TTL,
    ) -> None:
        self.cluster = cluster
        self.framework = fw or default_framework()
        self.clock = clock
        self.rng = rng or random.Random()
        self.scheduler_name = scheduler_name
        self.cache = cache_mod.Cache(assumed_ttl=assumed_ttl)
        self.queue = queue.SchedulingQueue(clock=clock)
        self.equivalence = equivalence.EquivalenceCache() if use_equivalence else None
        self.priority_classes: dict[str, int] = {}
        self.default_priority = 0
        self._global_default = ""
        self.next_start = 0
        self._wakeup: asyncio.Event | None = None

    # --- feeding ----------------------------------------------------------------------

    def add_node(self, node: Obj) -> None:
        """A node was added or changed; heartbeats that change nothing the plugins read
        neither invalidate cached results nor move unschedulable pods."""
        existed = (node.get("metadata") or {}).get("name") in self.cache.nodes
        if self.cache.add_node(node):
            self.queue.move_on_event(queue.NODE_UPDATE if existed else queue.NODE_ADD)
        self._wake()

    def remove_node(self, name: str) -> None:
        self.cache.remove_node(name)

    def add_pod(self, pod: Obj) -> None:
        """A pod was added or changed: bound pods go to the cache, pending pods for this
        scheduler to the queue; finished pods free their node."""
        info = self.pod_info(pod)
        phase = (pod.get("status") or {}).get("phase")
        if info.node_name:
            self.queue.delete(info.uid)
            if phase in ("Succeeded", "Failed"):
                self.remove_pod(pod)
                return
            known = info.uid in self.cache.pod_nodes and not self.cache.is_assumed(info.uid)
            self.cache.add_pod(info)
            if self.queue.unschedulable:
                self.queue.move_on_event(queue.POD_UPDATE if known else queue.POD_ADD)
        elif self._pending_for_us(info, phase):
            self.queue.add(info)
        self._wake()

    def _pending_for_us(self, info: podinfo.PodInfo, phase: str | None) -> bool:
        deleting = (info.obj.get("metadata") or {}).get("deletionTimestamp")
        ours = info.scheduler_name == self.scheduler_name
        return ours and not deleting and phase not in ("Succeeded", "Failed")

    def remove_pod(self, pod: Obj) -> None:
        uid = podinfo.pod_info_uid(pod)
        self.queue.delete(uid)
        if uid in self.cache.pod_nodes:
            self.cache.remove_pod(uid)
            self.queue.move_on_event(queue.POD_DELETE)
        self._wake()

    def set_priority_class(self, obj: Obj, *, deleted: bool = False) -> None:
        name = (obj.get("metadata") or {}).get("name") or ""
        if deleted:
            self.priority_classes.pop(name, None)
            if name == self._global_default:
                self._global_default, self.default_priority = "", 0
            return
        value = int(obj.get("value") or 0)
        self.priority_classes[name] = value
        if obj.get("globalDefault"):
            self._global_default, self.default_priority = name, value

    def pod_info(self, pod: Obj) -> podinfo.PodInfo:
        info = podinfo.pod_info(pod)
        spec = pod.get("spec") or {}
        if spec.get("priority") is None:  # admission normally sets it; resolve here if not
            class_name = spec.get("priorityClassName")
            info.priority = self.priority_classes.get(class_name or "", self.default_priority)
        return info

    # --- one cycle --------------------------------------------------------------------

    def schedule_one(self) -> Outcome | None:
        """Decide for the next pod in the queue (None when none is ready)."""
        self.cache.cleanup_expired(self.clock())
        entry = self.queue.pop()
        if entry is None:
            return None
        cycle = self.queue.scheduling_cycle
        state = framework.CycleState()
        try:
            outcome = self._decide(entry, state)
        except Exception as exc:  # a plugin bug must not stop the scheduler
            log.exception("scheduling %s failed", entry.pod.key)
            self.queue.requeue_error(entry)
            return Outcome(entry, state, message=str(exc), reason="SchedulerError")
        if outcome.node:
            return outcome
        self.queue.requeue_unschedulable(entry, outcome.rejected_by or {"*"}, cycle=cycle)
        return outcome

    def _decide(self, entry: queue.QueuedPod, state: framework.CycleState) -> Outcome:
        pod = entry.pod
        snapshot = self.cache.snapshot()
        if not snapshot.nodes:
            return Outcome(entry, state, message=NO_NODES)
        node_name, diag = self._find_host(state, pod, snapshot)
        if node_name is None:
            return self._failed(entry, state, snapshot, diag)
        self.cache.assume(pod, node_name)
        status = self.framework.run_reserve(state, pod, node_name)
        if status.ok:
            status = self.framework.run_permit(state, pod, node_name)
        if not status.ok:  # Wait is not supported: treated like a rejection
            self.framework.run_unreserve(state, pod, node_name)
            self.cache.forget(pod.uid)
            return Outcome(entry, state, message=status.message, reason="SchedulerError")
        return Outcome(entry, state, node=node_name)

    def _failed(
        self,
        entry: queue.QueuedPod,
        state: framework.CycleState,
        snapshot: framework.Snapshot,
        diag: diagnosis.Diagnosis,
    ) -> Outcome:
        outcome = Outcome(entry, state)
        outcome.rejected_by = {s.plugin for s in diag.statuses.values() if s.plugin}
        for plugin in self.framework.post_filters:
            result = plugin.post_filter(state, entry.pod, snapshot, diag.statuses, self.framework)
            if result.status.ok:
                outcome.nominated_node = result.nominated_node
                outcome.victims = result.victims
                self.queue.nominate(entry.pod, result.nominated_node)
                break
            if result.status.message:
                diag.post_filter_msg = result.status.message
        outcome.message = diag.message()
        return outcome

    def _find_host(
        self, state: framework.CycleState, pod: podinfo.PodInfo, snapshot: framework.Snapshot
    ) -> tuple[str | None, diagnosis.Diagnosis]:
        fw = self.framework
        nodes = snapshot.nodes
        diag = diagnosis.Diagnosis(len(nodes))
        names, status, narrowing = fw.run_pre_filter(state, pod, snapshot)
        if not status.ok:
            if status.code is framework.Code.ERROR:
                raise RuntimeError(status.message)
            diag.pre_filter_msg = status.message
            diag.statuses = {n.name: status for n in nodes}
            return None, diag
        candidates = nodes if names is None else [n for n in nodes if n.name in names]
        if names is not None:
            plugins_text = "[" + " ".join(sorted(narrowing)) + "]"
            diag.absent = framework.Status.unschedulable(
                f"node(s) didn't satisfy plugin(s) {plugins_text}", resolvable=False
            )
        results = None
        if self.equivalence is not None and equivalence.eligible(pod, snapshot):
            results = self.equivalence.results(
                pod.equivalence_key(), epoch=self.cache.epoch, now=self.clock()
            )
        feasible = self._find_feasible(state, pod, candidates, diag.statuses, results)
        if not feasible:
            return None, diag
        if len(feasible) == 1:
            return feasible[0].name, diag
        scores = self._prioritize(state, pod, feasible, snapshot, results)
        return self._select(feasible, scores), diag

    def _find_feasible(
        self,
        state: framework.CycleState,
        pod: podinfo.PodInfo,
        candidates: list[framework.NodeInfo],
        statuses: dict[str, framework.Status],
        results: dict[str, equivalence.Result] | None,
    ) -> list[framework.NodeInfo]:
        count = len(candidates)
        if count == 0:
            return []
        to_find = framework.num_feasible_nodes_to_find(
            self.framework.percentage_of_nodes_to_score, count
        )
        nominated = self.queue.nominated
        feasible: list[framework.NodeInfo] = []
        start = self.next_start % count
        processed = 0
        success = framework.Code.SUCCESS
        for i in range(count):
            node = candidates[(start + i) % count]
            processed += 1
            if nominated and node.name in nominated:
                status = self._filter_with_nominated(state, pod, node)
            else:
                status = self._filter(state, pod, node, results)
            if status.code is success:
                feasible.append(node)
                if len(feasible) >= to_find:
                    break
            else:
                statuses[node.name] = status
        self.next_start = (start + processed) % count
        if results is not None and self.equivalence is not None:
            self.equivalence.lookups += processed
        return feasible

    def _filter(
        self,
        state: framework.CycleState,
        pod: podinfo.PodInfo,
        node: framework.NodeInfo,
        results: dict[str, equivalence.Result] | None,
    ) -> framework.Status:
        """Filter plugins, or the equivalence class's result while the node is unchanged."""
        if results is None:
            return self.framework.run_filter(state, pod, node)
        cached = results.get(node.name)
        if cached is not None and cached.generation == node.generation:
            return cached.status
        status = self.framework.run_filter(state, pod, node)
        results[node.name] = equivalence.Result(node.generation, status)
        if self.equivalence is not None:
            self.equivalence.misses += 1
        return status

    def _filter_with_nominated(
        self, state: framework.CycleState, pod: podinfo.PodInfo, node: framework.NodeInfo
    ) -> framework.Status:
        """Pods nominated to this node with at least this priority count as if running;
        the pod must fit both with and without them (kube-scheduler's two passes)."""
        others = [
            p
            for p in self.queue.nominated_on(node.name)
            if p.uid != pod.uid and p.priority >= pod.priority
        ]
        if others:
            trial = node.clone()
            for other in others:
                trial.add_pod(other)
            status = self.framework.run_filter(state, pod, trial)
            if not status.ok:
                return status
        return self.framework.run_filter(state, pod, node)

    def _prioritize(
        self,
        state: framework.CycleState,
        pod: podinfo.PodInfo,
        feasible: list[framework.NodeInfo],
        snapshot: framework.Snapshot,
        results: dict[str, equivalence.Result] | None,
    ) -> list[int]:
        fw = self.framework
        status = fw.run_pre_score(state, pod, feasible, snapshot)
        if not status.ok:
            raise RuntimeError(status.message)
        active = fw.active_scores(state)
        if not active:
            return [0] * len(feasible)
        raw = []
        for node in feasible:
            cached = results.get(node.name) if results is not None else None
            if cached is None or cached.generation != node.generation:
                raw.append(fw.raw_scores(state, pod, node, active))
                continue
            if cached.scores is None:
                cached.scores = fw.raw_scores(state, pod, node, active)
            raw.append(cached.scores)
        return fw.combine(state, pod, raw, active)

    def _select(self, feasible: list[framework.NodeInfo], scores: list[int]) -> str:
        """The highest score; ties broken uniformly at random."""
        best = max(scores)
        tied = [node for node, score in zip(feasible, scores, strict=True) if score == best]
        return tied[0].name if len(tied) == 1 else self.rng.choice(tied).name

    # --- talking to the API -----------------------------------------------------------

    async def complete(self, outcome: Outcome) -> bool:
        """Write a cycle's result through the ClusterAPI; True when the pod was bound."""
        if outcome.node:
            return await self._bind(outcome)
        await self._report_failure(outcome)
        return False

    async def _bind(self, outcome: Outcome) -> bool:
        pod, node = outcome.pod, outcome.node
        try:
            await self._run_bind(outcome)
        except Exception as exc:
            self.cache.forget(pod.uid)
            self.framework.run_unreserve(outcome.state, pod, node)
            self.queue.requeue_error(outcome.entry)
            outcome.message = f'running Bind plugin "DefaultBinder": {exc}'
            outcome.reason = "SchedulerError"
            self.queue.move_on_event(queue.POD_DELETE)  # its resources are free again
            await self._report_failure(outcome)
            return False
        self.cache.finish_binding(pod.uid, self.clock())
        self.queue.done(pod.uid)
        if self.cluster is not None:
            message = f"Successfully assigned {pod.key} to {node}"
            await self._call(
                self.cluster.record_event(
                    pod.obj, type="Normal", reason="Scheduled", message=message
                )
            )
        return True

    async def _run_bind(self, outcome: Outcome) -> None:
        """Bind plugins in order (the first that does not Skip decides), else the
        ClusterAPI's ``bind`` (kube-scheduler's DefaultBinder)."""
        for plugin in self.framework.binders:
            status = await plugin.bind(outcome.state, outcome.pod, outcome.node)
            if status.code is framework.Code.SKIP:
                continue
            if not status.ok:
                raise RuntimeError(status.message)
            return
        if self.cluster is not None:
            await self.cluster.bind(outcome.pod.obj, outcome.node)

    async def _report_failure(self, outcome: Outcome) -> None:
        cluster = self.cluster
        if cluster is None:
            return
        pod = outcome.pod
        for victim in outcome.victims:
            await self._call(cluster.delete_pod(victim.obj, preemptor=pod.obj))
            message = f"Preempted by pod {pod.uid} on node {outcome.nominated_node}"
            await self._call(
                cluster.record_event(victim.obj, type="Normal", reason="Preempted", message=message)
            )
        await self._call(
            cluster.record_event(
                pod.obj, type="Warning", reason="FailedScheduling", message=outcome.message
            )
        )
        status = adapter.unschedulable_status(outcome.message, reason=outcome.reason)
        if outcome.nominated_node is not None:
            status["nominatedNodeName"] = outcome.nominated_node or None
        await self._call(cluster.patch_pod_status(pod.obj, status))

    async def _call(self, awaitable: Any) -> None:
        try:
            await awaitable
        except Exception:
            log.exception("scheduler API call failed")

    async def run_once(self) -> bool:
        """One cycle end to end; False when no pod was ready."""
        outcome = self.schedule_one()
        if outcome is None:
            return False
        await self.complete(outcome)
        return True

    async def run(self, *, max_wait: float = 1.0) -> None:
        """Schedule forever (until cancelled). When no pod is ready, wait for a feed call
        (new pod, node, deletion) or the end of the earliest backoff, at most ``max_wait``
        (the 5-minute flush and assumed-pod expiry are checked then)."""
        self._wakeup = asyncio.Event()
        binding: set[asyncio.Task[bool]] = set()
        try:
            while True:
                if await self._cycle(binding):
                    await asyncio.sleep(0)  # let informer callbacks in between cycles
                    continue
                self._wakeup.clear()
                wait = max_wait
                ready = self.queue.next_ready()
                if ready is not None:
                    wait = min(wait, max(ready - self.clock(), 0.0))
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that lands as the wait completes, and shutdown would hang.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wakeup.wait()
        finally:
            for task in binding:
                task.cancel()
            await asyncio.gather(*binding, return_exceptions=True)

    async def _cycle(self, binding: set[asyncio.Task[bool]]) -> bool:
        """run_once, with the binding cycle of a placed pod left running in the background
        (as kube-scheduler does: the pod is assumed on its node meanwhile), so a slow
        bind does not hold up the next pod; False when no pod was ready."""
        outcome = self.schedule_one()
        if outcome is None:
            return False
        if not outcome.node:
            await self.complete(outcome)
            return True
        task = asyncio.create_task(self.complete(outcome), name=f"bind-{outcome.pod.key}")
        binding.add(task)
        task.add_done_callback(binding.discard)
        if len(binding) >= MAX_BINDINGS_IN_FLIGHT:
            await asyncio.wait(binding, return_when=asyncio.FIRST_COMPLETED)
        return True

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
