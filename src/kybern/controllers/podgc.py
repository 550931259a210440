"""Pod garbage collection: the pods no kubelet will ever clean up.

Kubernetes' pod GC controller (``podgc``): one pass over the pod and node caches every
``check_period`` (20 s), as a single reconcile key that requeues itself (any pod or node
event only makes sure the loop is running). Each pass, as v1.32's ``gc``:

1. Terminated pods (phase not Pending/Running/Unknown) beyond ``terminated_pod_threshold``
   (kube-controller-manager's terminated-pod-gc-threshold, 12500; <= 0 disables this step):
   the surplus is deleted, evicted pods first, then oldest ``creationTimestamp``, then name.
2. Terminating pods (``deletionTimestamp``) on a node that is not Ready and carries the
   ``node.kubernetes.io/out-of-service`` taint.
3. Orphans: pods bound to a node missing from the cache. The node name is quarantined for
   ``quarantine`` (40 s) in case the cache is behind, then a GET confirms it is really gone;
   its pods get the ``DisruptionTarget`` condition (``DeletionByPodGC``, "PodGC: node no
   longer exists").
4. Unscheduled terminating pods (``deletionTimestamp``, no ``nodeName``).

Every deletion first moves a pod that is not terminal to phase Failed through ``pods/status``
(no kubelet will), then deletes it with ``gracePeriodSeconds=0``.
"""

from __future__ import annotations

import copy
import datetime
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from kybern import client as kclient
from kybern.controllers import runtime

log = logging.getLogger(__name__)
Obj = dict[str, Any]

KEY = "podgc"
OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"
ORPHANED: Obj = {
    "type": "DisruptionTarget",
    "status": "True",
    "reason": "DeletionByPodGC",
    "message": "PodGC: node no longer exists",
}


def is_terminated(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Pending", "Running", "Unknown")


def is_evicted(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Failed" and status.get("reason") == "Evicted"


def gc_order(pod: Obj) -> tuple[bool, str, str]:
    """Evicted first, then oldest, then by name (byEvictionAndCreationTimestamp)."""
    meta = pod["metadata"]
    return (not is_evicted(pod), str(meta.get("creationTimestamp") or ""), str(meta["name"]))


def node_ready(node: Obj) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def out_of_service(node: Obj) -> bool:
    taints = (node.get("spec") or {}).get("taints") or []
    return any(t.get("key") == OUT_OF_SERVICE for t in taints)


class PodGCController:
    name = "podgc"
    workers = 1

    def __init__(
        self,
        *,
        client: kclient.Client,
        informers: kclient.SharedInformerFactory,
        clock: kclient.Clock | None = None,
        terminated_pod_threshold: int = 12500,
        check_period: float = 20.0,
        quarantine: float = 40.0,
    ) -> None:
        self.client = client
        self.clock = clock or informers.clock
        self.pods = informers.informer_for("v1", "Pod").store
        self.nodes = informers.informer_for("v1", "Node").store
        self.threshold = terminated_pod_threshold
        self.check_period = check_period
        self.quarantine = quarantine
        self.last_pass: float | None = None
        self.missing: dict[str, float] = {}  # node name -> when first missed (monotonic)

    def watches(self) -> Sequence[runtime.Watch]:
        return [
            runtime.Watch("v1", "Pod", _the_key),
            runtime.Watch("v1", "Node", _the_key),
        ]

    async def reconcile(self, key: str) -> runtime.Result:
        now = self.clock.monotonic()
        if self.last_pass is not None and now - self.last_pass < self.check_period:
            return runtime.Result(requeue_after=self.last_pass + self.check_period - now)
        self.last_pass = now
        await self.gc()
        return runtime.Result(requeue_after=self.check_period)

    async def gc(self) -> None:
        """One pass (Kubernetes' PodGCController.gc)."""
        pods = self.pods.list()
        if self.threshold > 0:
            await self.gc_terminated(pods)
        await self.gc_terminating(pods)
        await self.gc_orphaned(pods)
        await self.gc_unscheduled_terminating(pods)

    async def gc_terminated(self, pods: list[Obj]) -> None:
        terminated = [p for p in pods if is_terminated(p)]
        surplus = len(terminated) - self.threshold
        if surplus <= 0:
            return
        log.info("garbage collecting %d terminated pods", surplus)
        for pod in sorted(terminated, key=gc_order)[:surplus]:
            await self.delete(pod)

    async def gc_terminating(self, pods: list[Obj]) -> None:
        doomed = []
        for pod in pods:
            if not pod["metadata"].get("deletionTimestamp"):
                continue
            node = self.nodes.get((pod.get("spec") or {}).get("nodeName") or "")
            if node is not None and not node_ready(node) and out_of_service(node):
                doomed.append(pod)
        for pod in sorted(doomed, key=gc_order):
            await self.delete(pod)

    async def gc_orphaned(self, pods: list[Obj]) -> None:
        now = self.clock.monotonic()
        bound = {(p.get("spec") or {}).get("nodeName") or "" for p in pods} - {""}
        for name in bound:
            if self.nodes.get(name) is None:
                self.missing.setdefault(name, now)
        gone = await self._confirm_gone(now)
        for pod in pods:
            if (pod.get("spec") or {}).get("nodeName") in gone:
                log.info("deleting orphaned pod %s", kclient.key_of(pod))
                await self.delete(pod, condition=ORPHANED)

    async def _confirm_gone(self, now: float) -> set[str]:
        """Node names past their quarantine that a GET confirms are really gone."""
        gone: set[str] = set()
        for name, since in list(self.missing.items()):
            if self.nodes.get(name) is not None:
                del self.missing[name]
            elif now - since >= self.quarantine:
                del self.missing[name]
                if not await self._exists(name):
                    gone.add(name)
        return gone

    async def _exists(self, name: str) -> bool:
        try:
            await self.client.get("v1", "Node", name)
        except kclient.NotFound:
            return False
        return True

    async def gc_unscheduled_terminating(self, pods: list[Obj]) -> None:
        for pod in pods:
            meta = pod["metadata"]
            if meta.get("deletionTimestamp") and not (pod.get("spec") or {}).get("nodeName"):
                await self.delete(pod)

    async def delete(self, pod: Obj, *, condition: Obj | None = None) -> None:
        """Mark the pod Failed (unless terminal) and force-delete it; a pod already gone is
        fine."""
        meta = pod["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        try:
            if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                status = {"phase": "Failed", **self._conditions(pod, condition)}
                await self.client.patch(
                    "v1", "Pod", name, {"status": status}, namespace=namespace, subresource="status"
                )
            await self.client.delete("v1", "Pod", name, namespace=namespace, grace_period_seconds=0)
        except kclient.NotFound:
            return

    def _conditions(self, pod: Obj, condition: Obj | None) -> Obj:
        if condition is None:
            return {}
        conditions = copy.deepcopy((pod.get("status") or {}).get("conditions") or [])
        stamp = self.clock.now().astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        conditions = [c for c in conditions if c.get("type") != condition["type"]]
        return {"conditions": [*conditions, {**condition, "lastTransitionTime": stamp}]}


def _the_key(_obj: Obj) -> Iterable[str]:
    return [KEY]
