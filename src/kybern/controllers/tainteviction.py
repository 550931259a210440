"""Taint-based eviction: pods leave nodes whose NoExecute taints they do not tolerate.

Kubernetes' taint eviction controller (``taint-eviction-controller``, the NoExecute taint
manager), one reconcile per pod bound to a node:

- no NoExecute taint on the node (or no node): nothing to do; a pending eviction is cancelled
  (Event ``TaintManagerEviction`` "Cancelling deletion of Pod ns/name");
- a NoExecute taint the pod does not tolerate: the pod is deleted at once;
- every taint tolerated, none of the used tolerations with ``tolerationSeconds``: it stays;
- otherwise it is deleted ``min(tolerationSeconds)`` (<= 0 counts as 0) after the eviction
  was first scheduled. That start is the earliest ``timeAdded`` of the node's NoExecute taints,
  or the pod's scheduling time when later (so a controller restart does not restart the countdown, and a pod bound
  to a long-tainted node still gets its full toleration), and it is kept while the pod stays
  tainted, as Kubernetes keeps its work item's creation time.

A deletion records ``TaintManagerEviction`` "Marking for deletion Pod ns/name", adds the
``DisruptionTarget`` condition (reason ``DeletionByTaintManager``) through ``pods/status``
and deletes the pod gracefully. Pods already being deleted are left alone.

Node events are filtered to changes of the NoExecute taints (Kubernetes' NodeUpdated does the
same): node heartbeats would otherwise requeue every pod on the node every 10 s.
"""

from __future__ import annotations

import copy
import datetime
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from kybern import client as kclient
from kybern.api import placement
from kybern.client import store
from kybern.controllers import events, pods, runtime

log = logging.getLogger(__name__)
Obj = dict[str, Any]

REASON = "TaintManagerEviction"
DISRUPTION_TARGET: Obj = {
    "type": "DisruptionTarget",
    "status": "True",
    "reason": "DeletionByTaintManager",
    "message": "Taint manager: deleting due to NoExecute taint",
}


def no_execute_taints(node: Obj | None) -> list[Obj]:
    taints = ((node or {}).get("spec") or {}).get("taints") or []
    return [t for t in taints if isinstance(t, dict) and t.get("effect") == "NoExecute"]


def matching_tolerations(taints: Iterable[Obj], tolerations: list[Obj]) -> list[Obj] | None:
    """Kubernetes' GetMatchingTolerations: the tolerations used, or None when a taint is not
    tolerated."""
    used: list[Obj] = []
    for taint in taints:
        match = next((t for t in tolerations if placement.tolerates(t, taint)), None)
        if match is None:
            return None
        used.append(match)
    return used


def min_toleration_seconds(tolerations: list[Obj]) -> float | None:
    """The shortest ``tolerationSeconds`` (<= 0 is 0); None: tolerated forever."""
    seconds = [
        t["tolerationSeconds"] for t in tolerations if t.get("tolerationSeconds") is not None
    ]
    if not tolerations:
        return 0.0
    if not seconds:
        return None
    return float(max(0, min(int(s) for s in seconds)))


def scheduled_at(pod: Obj) -> datetime.datetime | None:
    """When the pod was bound: its PodScheduled condition, else its creation."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "True":
            when = pods.parse_time(cond.get("lastTransitionTime"))
            if when is not None:
                return when
    return pods.parse_time(pod["metadata"].get("creationTimestamp"))


class TaintEvictionController:
    name = "taint-eviction-controller"
    workers = 4

    def __init__(
        self,
        *,
        client: kclient.Client,
        informers: kclient.SharedInformerFactory,
        clock: kclient.Clock | None = None,
    ) -> None:
        self.client = client
        self.clock = clock or informers.clock
        self.pods = informers.informer_for("v1", "Pod").store
        self.nodes = informers.informer_for("v1", "Node").store
        self.recorder = events.Recorder(client, "taint-eviction-controller", clock=self.clock)
        self.started: dict[str, datetime.datetime] = {}  # pod key -> countdown start
        self._seen_taints: dict[str, list[Obj]] = {}  # node -> NoExecute taints last seen

    def watches(self) -> Sequence[runtime.Watch]:
        return [
            runtime.Watch("v1", "Pod", runtime.own_key),
            runtime.Watch("v1", "Node", self._node_changed, self._node_deleted),
        ]

    def _node_changed(self, node: Obj) -> list[str]:
        """The node's pods, when its NoExecute taints differ from the last ones seen."""
        name = str((node.get("metadata") or {}).get("name"))
        taints = no_execute_taints(node)
        if self._seen_taints.get(name, []) == taints:
            return []
        self._seen_taints[name] = taints
        return list(self.pods.index_keys(store.NODE, name))

    def _node_deleted(self, node: Obj) -> list[str]:
        name = str((node.get("metadata") or {}).get("name"))
        self._seen_taints.pop(name, None)
        return list(self.pods.index_keys(store.NODE, name))

    async def reconcile(self, key: str) -> runtime.Result:
        pod = self.pods.get(key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            self.started.pop(key, None)
            return runtime.Result()
        node_name = (pod.get("spec") or {}).get("nodeName")
        taints = no_execute_taints(self.nodes.get(node_name) if node_name else None)
        if not taints:
            await self._cancel(key, pod)
            return runtime.Result()
        used = matching_tolerations(taints, list((pod.get("spec") or {}).get("tolerations") or []))
        if used is None:
            await self._evict(key, pod)
            return runtime.Result()
        seconds = min_toleration_seconds(used)
        if seconds is None:
            await self._cancel(key, pod)
            return runtime.Result()
        now = self.clock.now()
        start = self.started.setdefault(key, self._start(pod, taints, now))
        remaining = (start - now).total_seconds() + seconds
        if remaining <= 0:
            await self._evict(key, pod)
            return runtime.Result()
        return runtime.Result(requeue_after=remaining)

    def _start(self, pod: Obj, taints: list[Obj], now: datetime.datetime) -> datetime.datetime:
        added = [m for m in (pods.parse_time(t.get("timeAdded")) for t in taints) if m]
        moments = [m for m in (min(added, default=None), scheduled_at(pod)) if m is not None]
        return min(now, max(moments)) if moments else now

    async def _cancel(self, key: str, pod: Obj) -> None:
        if self.started.pop(key, None) is None:
            return
        message = f"Cancelling deletion of Pod {key}"
        await self.recorder.event(_with_kind(pod), events.NORMAL, REASON, message)

    async def _evict(self, key: str, pod: Obj) -> None:
        self.started.pop(key, None)
        meta = pod["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        log.info("taint eviction: deleting pod %s", key)
        await self.recorder.event(
            _with_kind(pod), events.NORMAL, REASON, f"Marking for deletion Pod {key}"
        )
        try:
            await self._add_condition(pod)
            await self.client.delete(
                "v1", "Pod", name, namespace=namespace, preconditions={"uid": meta.get("uid", "")}
            )
        except kclient.NotFound:
            return

    async def _add_condition(self, pod: Obj) -> None:
        conditions = copy.deepcopy((pod.get("status") or {}).get("conditions") or [])
        current = next((c for c in conditions if c.get("type") == "DisruptionTarget"), None)
        if current is not None and all(current.get(k) == v for k, v in DISRUPTION_TARGET.items()):
            return
        cond = {**DISRUPTION_TARGET, "lastTransitionTime": _fmt(self.clock.now())}
        conditions = [c for c in conditions if c.get("type") != "DisruptionTarget"] + [cond]
        meta = pod["metadata"]
        await self.client.patch(
            "v1",
            "Pod",
            meta["name"],
            {"status": {"conditions": conditions}},
            namespace=meta.get("namespace", ""),
            subresource="status",
        )


def _fmt(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _with_kind(pod: Obj) -> Obj:
    return {**pod, "apiVersion": "v1", "kind": "Pod"}
