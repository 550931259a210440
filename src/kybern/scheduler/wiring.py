"""The scheduler as a `kybern server` component: kybern.client glued to the scheduler core.

:class:`ClientCluster` implements :class:`adapter.ClusterAPI` over a ``kybern.client.Client``
(a binding POSTed to ``pods/<name>/binding``, core/v1 Events from ``default-scheduler``,
PodScheduled=False through ``pods/<name>/status``, preemption victims marked
DisruptionTarget then deleted). :func:`run` registers informer handlers for pods, nodes,
namespaces, PodDisruptionBudgets and PriorityClasses on the process' shared informers,
waits for their caches (kube-scheduler schedules nothing before it has seen every node),
then loops :meth:`scheduler.Scheduler.run` until cancelled.

Events are written by a background recorder so a slow Event write never holds a
scheduling cycle; like client-go's broadcaster it drops events when too many are queued,
and repeats of one (pod, reason, message) update ``count`` instead of adding objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import secrets
from collections.abc import Callable
from typing import Any

from kybern import client as kclient
from kybern.client import errors, resources
from kybern.scheduler import adapter, scheduler

Obj = dict[str, Any]
COMPONENT = "default-scheduler"
EVENT_QUEUE_LIMIT = 10_000
log = logging.getLogger(__name__)

# (apiVersion, kind, adapter feed) for every resource the scheduler watches, in start order.
WATCHED: list[tuple[str, str, Callable[[scheduler.Scheduler, str, Obj], None]]] = [
    ("v1", "Node", adapter.on_node_event),
    ("v1", "Namespace", adapter.on_namespace_event),
    ("scheduling.k8s.io/v1", "PriorityClass", adapter.on_priority_class_event),
    ("policy/v1", "PodDisruptionBudget", adapter.on_pdb_event),
    ("v1", "Pod", adapter.on_pod_event),
]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


class EventRecorder:
    """Writes core/v1 Events in the background; repeats bump ``count``."""

    def __init__(self, client: kclient.Client, *, component: str = COMPONENT) -> None:
        self.client = client
        self.component = component
        self.instance = f"{component}-{secrets.token_hex(4)}"
        self.queue: asyncio.Queue[tuple[Obj, str, str, str]] = asyncio.Queue(EVENT_QUEUE_LIMIT)
        self.dropped = 0
        self._seen: dict[tuple[str, str, str], tuple[str, int]] = {}  # -> (event name, count)

    def record(self, obj: Obj, *, type: str, reason: str, message: str) -> None:
        try:
            self.queue.put_nowait((obj, type, reason, message))
        except asyncio.QueueFull:
            self.dropped += 1

    async def run(self) -> None:
        while True:
            obj, type_, reason, message = await self.queue.get()
            try:
                await self._write(obj, type_, reason, message)
            except (errors.ClientError, OSError) as exc:
                log.warning(
                    "cannot record event %s for %s: %s", reason, _meta(obj).get("name"), exc
                )

    async def flush(self) -> None:
        """Write what is queued now (tests and shutdown)."""
        while not self.queue.empty():
            obj, type_, reason, message = self.queue.get_nowait()
            await self._write(obj, type_, reason, message)

    async def _write(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        meta = _meta(obj)
        namespace = meta.get("namespace") or "default"
        key = (str(meta.get("uid") or meta.get("name")), reason, message)
        seen = self._seen.get(key)
        now = _now()
        if seen is not None:
            name, count = seen
            with contextlib.suppress(errors.NotFound):
                patch = {"count": count + 1, "lastTimestamp": now}
                await self.client.patch("v1", "Event", name, patch, namespace=namespace)
                self._seen[key] = (name, count + 1)
                return
        event = self._event(obj, type_, reason, message, now)
        await self.client.create(event, namespace=namespace)
        self._seen[key] = (event["metadata"]["name"], 1)
        if len(self._seen) > EVENT_QUEUE_LIMIT:  # bounded memory: forget the oldest
            del self._seen[next(iter(self._seen))]

    def _event(self, obj: Obj, type_: str, reason: str, message: str, now: str) -> Obj:
        meta = _meta(obj)
        name = meta.get("name") or ""
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{name}.{secrets.token_hex(8)}",
                "namespace": meta.get("namespace") or "default",
            },
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": name,
                "namespace": meta.get("namespace") or "default",
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message,
            "action": "Binding" if reason == "Scheduled" else "Scheduling",
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "eventTime": _micro_now(),
            "count": 1,
        }


class ClientCluster:
    """``adapter.ClusterAPI`` over a kybern.client ``Client``."""

    def __init__(self, client: kclient.Client, recorder: EventRecorder | None = None) -> None:
        self.client = client
        self.recorder = recorder or EventRecorder(client)

    async def bind(self, pod: Obj, node_name: str) -> None:
        meta = _meta(pod)
        info = resources.resource_info("v1", "Pod")
        path = resources.path_for(
            info,
            namespace=meta.get("namespace") or "default",
            name=meta.get("name") or "",
            subresource="binding",
        )
        response = await self.client.transport.request(
            "POST", path, body=adapter.binding(pod, node_name)
        )
        if not response.ok:
            raise errors.from_status(response.status, response.json())

    async def record_event(self, pod: Obj, *, type: str, reason: str, message: str) -> None:
        self.recorder.record(pod, type=type, reason=reason, message=message)

    async def patch_pod_status(self, pod: Obj, status: Obj) -> None:
        """Strategic merge: conditions merge by type, so the kubelet's are kept."""
        for condition in status.get("conditions") or []:
            condition.setdefault("lastProbeTime", None)
            condition.setdefault("lastTransitionTime", _now())
        meta = _meta(pod)
        with contextlib.suppress(errors.NotFound):
            await self.client.patch(
                "v1",
                "Pod",
                meta.get("name") or "",
                {"status": status},
                namespace=meta.get("namespace") or "default",
                subresource="status",
                patch_type="strategic",
            )

    async def delete_pod(self, pod: Obj, *, preemptor: Obj) -> None:
        """Mark the victim DisruptionTarget (PreemptionByScheduler), then delete it."""
        meta = _meta(pod)
        name, namespace = meta.get("name") or "", meta.get("namespace") or "default"
        condition = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "PreemptionByScheduler",
            "message": f"{COMPONENT}: preempting to accommodate a higher priority pod",
            "lastProbeTime": None,
            "lastTransitionTime": _now(),
        }
        with contextlib.suppress(errors.NotFound):
            await self.client.patch(
                "v1",
                "Pod",
                name,
                {"status": {"conditions": [condition]}},
                namespace=namespace,
                subresource="status",
                patch_type="strategic",
            )
            await self.client.delete(
                "v1", "Pod", name, namespace=namespace, preconditions={"uid": meta.get("uid") or ""}
            )


def _handler(
    sched: scheduler.Scheduler, feed: Callable[[scheduler.Scheduler, str, Obj], None]
) -> kclient.FuncHandler:
    return kclient.FuncHandler(
        add=lambda obj: feed(sched, adapter.ADDED, obj),
        update=lambda _old, new: feed(sched, adapter.MODIFIED, new),
        delete=lambda obj: feed(sched, adapter.DELETED, kclient.object_of(obj)),
    )


def connect(sched: scheduler.Scheduler, informers: kclient.SharedInformerFactory) -> None:
    """Register the scheduler's handlers on the shared informers and start them."""
    for api_version, kind, feed in WATCHED:
        informers.informer_for(api_version, kind).add_handler(_handler(sched, feed))
    informers.start()


async def run(
    client: kclient.Client,
    informers: kclient.SharedInformerFactory,
    *,
    scheduler_name: str = scheduler.DEFAULT_SCHEDULER_NAME,
) -> None:
    """Run kube-scheduler's loop until cancelled."""
    cluster = ClientCluster(client)
    sched = scheduler.Scheduler(cluster=cluster, scheduler_name=scheduler_name)
    recorder = asyncio.create_task(cluster.recorder.run(), name="scheduler-events")
    try:
        connect(sched, informers)
        await asyncio.gather(*(informers.informer_for(v, k).wait_for_sync() for v, k, _ in WATCHED))
        log.info("scheduler: caches synced (%d nodes); scheduling", len(sched.cache.nodes))
        await sched.run()
    finally:
        recorder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await recorder
