"""The seam between the scheduler core and the API: what it needs written, and how
informer events drive it.

The core never talks to the API itself. It calls a :class:`ClusterAPI` (bind through
``pods/binding``, record an Event, patch pod status, delete a preemption victim) and is
fed plain dicts through :func:`on_pod_event`, :func:`on_node_event` and friends, which take
informer-style ``(type, object)`` pairs (``ADDED``/``MODIFIED``/``DELETED``). The wiring
layer (kybern.client informers + a client implementing ClusterAPI) only glues the two.
:class:`InMemoryCluster` implements ClusterAPI for tests and benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from kybern.scheduler import scheduler

Obj = dict[str, Any]
ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


class ClusterAPI(Protocol):
    async def bind(self, pod: Obj, node_name: str) -> None:
        """POST pods/<name>/binding with :func:`binding`; raise to report failure."""
        ...

    async def record_event(self, pod: Obj, *, type: str, reason: str, message: str) -> None: ...

    async def patch_pod_status(self, pod: Obj, status: Obj) -> None:
        """Merge ``status`` into the pod's status (conditions by type, nominatedNodeName)."""
        ...

    async def delete_pod(self, pod: Obj, *, preemptor: Obj) -> None:
        """Evict a preemption victim (a DisruptionTarget condition, then delete)."""
        ...


def binding(pod: Obj, node_name: str) -> Obj:
    """The Binding object POSTed to ``pods/<name>/binding``."""
    meta = pod.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
        "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
    }


def unschedulable_status(message: str, *, reason: str = "Unschedulable") -> Obj:
    return {
        "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": reason, "message": message}
        ]
    }


def on_pod_event(sched: scheduler.Scheduler, event_type: str, pod: Obj) -> None:
    if event_type == DELETED:
        sched.remove_pod(pod)
    else:
        sched.add_pod(pod)


def on_node_event(sched: scheduler.Scheduler, event_type: str, node: Obj) -> None:
    if event_type == DELETED:
        sched.remove_node((node.get("metadata") or {}).get("name") or "")
    else:
        sched.add_node(node)


def on_priority_class_event(sched: scheduler.Scheduler, event_type: str, obj: Obj) -> None:
    sched.set_priority_class(obj, deleted=event_type == DELETED)


def on_pdb_event(sched: scheduler.Scheduler, event_type: str, pdb: Obj) -> None:
    meta = pdb.get("metadata") or {}
    key = f"{meta.get('namespace')}/{meta.get('name')}"
    sched.cache.set_pdb(key, None if event_type == DELETED else pdb)


def on_namespace_event(sched: scheduler.Scheduler, event_type: str, ns: Obj) -> None:
    meta = ns.get("metadata") or {}
    labels = None if event_type == DELETED else dict(meta.get("labels") or {})
    sched.cache.set_namespace(meta.get("name") or "", labels)


@dataclass
class InMemoryCluster:
    """A ClusterAPI that records what the scheduler asked for. With ``scheduler`` set,
    a binding is fed straight back as the bound pod (the watch event that confirms it)."""

    scheduler: scheduler.Scheduler | None = None
    fail_binds: set[str] = field(default_factory=set)  # pod names whose bind fails
    bindings: list[tuple[str, str]] = field(default_factory=list)
    events: list[tuple[str, str, str, str]] = field(default_factory=list)
    statuses: list[tuple[str, Obj]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    async def bind(self, pod: Obj, node_name: str) -> None:
        name = _key(pod)
        if (pod.get("metadata") or {}).get("name") in self.fail_binds:
            raise RuntimeError(f"binding {name} rejected")
        self.bindings.append((name, node_name))
        if self.scheduler is not None:
            bound = {**pod, "spec": {**(pod.get("spec") or {}), "nodeName": node_name}}
            self.scheduler.add_pod(bound)

    async def record_event(self, pod: Obj, *, type: str, reason: str, message: str) -> None:
        self.events.append((_key(pod), type, reason, message))

    async def patch_pod_status(self, pod: Obj, status: Obj) -> None:
        self.statuses.append((_key(pod), status))

    async def delete_pod(self, pod: Obj, *, preemptor: Obj) -> None:
        self.deleted.append(_key(pod))
        if self.scheduler is not None:
            self.scheduler.remove_pod(pod)


def _key(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name')}"
