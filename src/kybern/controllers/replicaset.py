"""ReplicaSet and ReplicationController: keep ``spec.replicas`` pods matching the template.

One reconcile of ``namespace/name`` (Kubernetes' ReplicaSetController.syncReplicaSet):

1. Claim pods (ControllerRefManager): active pods in the namespace that the selector matches
   and that have no controller are adopted (a controller ownerReference with
   blockOwnerDeletion); pods it controls that no longer match are released.
2. If the expectations of earlier writes are met (see ``pods.Expectations``), create or
   delete the difference: creates in slow-start batches of 1, 2, 4, ... (a failing batch
   stops the rest), deletes in Kubernetes' ActivePods order (``pods.deletion_rank``).
3. Write status through ``/status``: replicas, fullyLabeledReplicas, readyReplicas,
   availableReplicas (ready for minReadySeconds), observedGeneration.

Every change of one of its pods queues the set again, and each reconcile scans all its pods,
so a set of thousands of pods whose pods change hundreds of times a second would be rescanned
back to back. A set with at least BATCH_MIN_PODS pods is therefore reconciled at most once
per batch period (BATCH_FACTOR times what its last scan cost, at most BATCH_MAX seconds):
the events of that period are handled by one reconcile at its end (as Kubernetes' Job
controller batches pod updates with syncJobBatchPeriod). Small sets are never delayed.

ReplicationController is the same code with a map selector (``spec.selector``) instead of a
LabelSelector.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from kybern import client as kclient
from kybern.api import errors as api_errors
from kybern.api import labels
from kybern.client import store
from kybern.controllers import claims, events, podcontrol, pods, runtime

log = logging.getLogger(__name__)
Obj = dict[str, Any]

BURST_REPLICAS = 500  # most creates or deletes in one reconcile (Kubernetes' burstReplicas)
SLOW_START_INITIAL_BATCH = 1
BATCH_MIN_PODS = 1000  # sets with fewer pods are reconciled on every event
BATCH_FACTOR = 20.0  # batch period: this many times the cost of the last scan ...
BATCH_MAX = 5.0  # ... at most this many seconds


def label_selector(obj: Obj) -> labels.Selector:
    return labels.from_label_selector((obj.get("spec") or {}).get("selector"))


def map_selector(obj: Obj) -> labels.Selector:
    selector = (obj.get("spec") or {}).get("selector") or {}
    return labels.from_set(selector) if selector else labels.nothing()


class ReplicaSetController:
    name = "replicaset"
    workers = 5
    api_version = "apps/v1"
    kind = "ReplicaSet"
    selector_of: Callable[[Obj], labels.Selector] = staticmethod(label_selector)

    def __init__(
        self,
        *,
        client: kclient.Client,
        informers: kclient.SharedInformerFactory,
        clock: kclient.Clock | None = None,
    ) -> None:
        self.client = client
        self.clock = clock or informers.clock
        self.sets = informers.informer_for(self.api_version, self.kind).store
        pod_informer = informers.informer_for("v1", "Pod")
        self.pods = pod_informer.store
        self.expectations = pods.Expectations(
            self.pods, lambda: pod_informer.last_resource_version, self.clock
        )
        self.recorder = events.Recorder(client, f"{self.name}-controller", clock=self.clock)
        self.pod_control = podcontrol.PodControl(client, self.recorder, self.expectations)
        self.batch_until: dict[str, float] = {}  # key -> end of its batch period (monotonic)

    def watches(self) -> Sequence[runtime.Watch]:
        return [
            runtime.Watch(self.api_version, self.kind, runtime.own_key),
            runtime.Watch("v1", "Pod", self.pod_keys),
        ]

    def pod_keys(self, pod: Obj) -> Iterable[str]:
        """The controller of the pod if it is one of ours; else every set that would adopt it."""
        namespace = pod["metadata"].get("namespace", "")
        return claims.owner_keys(pod, self.kind, self.sets.list(namespace), self.selector_of)

    async def reconcile(self, key: str) -> runtime.Result:
        owner = self.sets.get(key)
        if owner is None:
            self.expectations.forget(key)
            self.batch_until.pop(key, None)
            return runtime.Result()
        wait = self.batch_until.get(key, 0.0) - self.clock.monotonic()
        if wait > 0:  # a big set in its batch period: one reconcile at its end
            return runtime.Result(requeue_after=wait)
        owner = {**owner, "apiVersion": self.api_version, "kind": self.kind}
        try:
            selector = self.selector_of(owner)
        except api_errors.BadRequest as exc:
            raise runtime.TerminalError(f"{key}: invalid selector: {exc}") from exc
        started = time.perf_counter()
        candidates = self.candidates(owner, selector)
        active = [p for p in candidates if pods.is_active(p)]
        scan = time.perf_counter() - started
        owned = await claims.claim(
            self.client, owner, selector, active, api_version="v1", kind="Pod"
        )
        acted = False
        if self.expectations.satisfied(key) and not owner["metadata"].get("deletionTimestamp"):
            acted = len(owned) != int((owner.get("spec") or {}).get("replicas", 1))
            await self.manage_replicas(key, owner, owned)
        # A reconcile that created or deleted pods starts no batch period: the expectations
        # gate the next one, which should run as soon as they are met.
        self._batch(key, 0 if acted else len(candidates), scan)
        return await self.update_status(owner, owned)

    def _batch(self, key: str, size: int, scan: float) -> None:
        """Start the batch period of a big set (its pods' events wait for its end)."""
        if size < BATCH_MIN_PODS:
            self.batch_until.pop(key, None)
            return
        # The scan measured is about a third of the per-pod work (claim and status too).
        period = min(BATCH_MAX, 3 * scan * BATCH_FACTOR)
        self.batch_until[key] = self.clock.monotonic() + period

    # -- adoption ----------------------------------------------------------------------

    def candidates(self, owner: Obj, selector: labels.Selector) -> list[Obj]:
        """Pods it owns plus pods it might adopt, from indexes rather than a namespace scan
        when the selector pins one label value (the usual ``app=web``)."""
        namespace = owner["metadata"].get("namespace", "")
        # Index keys, not objects: a set per index and one sort each, whatever the size.
        owned = self.pods.index_key_set(store.OWNER, owner["metadata"]["uid"])
        pinned = next(
            (r.key for r in selector.requirements if selector.requires_exact_match(r.key)), None
        )
        if pinned is None:
            pool = self.pods.index_key_set(store.NAMESPACE, namespace)
        else:
            value = selector.requires_exact_match(pinned)
            pool = self.pods.index_key_set(store.LABEL, f"{pinned}={value}")
            pool = {key for key in pool if store.split_key(key)[0] == namespace}
        get = self.pods.get
        found = [get(key) for key in sorted(owned)]
        found += [get(key) for key in sorted(pool - owned)]
        return [pod for pod in found if pod is not None]

    # -- scaling -----------------------------------------------------------------------

    async def manage_replicas(self, key: str, owner: Obj, owned: list[Obj]) -> None:
        want = int((owner.get("spec") or {}).get("replicas", 1))
        diff = len(owned) - want
        if diff < 0:
            await self.create_pods(key, owner, min(-diff, BURST_REPLICAS))
        elif diff > 0:
            victims = sorted(owned, key=pods.deletion_rank)[: min(diff, BURST_REPLICAS)]
            await self.delete_pods(key, owner, victims)

    async def create_pods(self, key: str, owner: Obj, count: int) -> None:
        """Slow start: batches of 1, 2, 4 ... so a failing create fails once, not count times."""
        batch = SLOW_START_INITIAL_BATCH
        remaining = count
        while remaining > 0:
            size = min(batch, remaining)
            results = [await self._create_one(key, owner) for _ in range(size)]
            if not all(results):
                return
            remaining -= size
            batch *= 2

    async def _create_one(self, key: str, owner: Obj) -> bool:
        return await self.pod_control.create(key, owner, pod_from_template(owner)) is not None

    async def delete_pods(self, key: str, owner: Obj, victims: list[Obj]) -> None:
        for pod in victims:
            await self.pod_control.delete(key, owner, pod)

    # -- status ------------------------------------------------------------------------

    async def update_status(self, owner: Obj, owned: list[Obj]) -> runtime.Result:
        spec = owner.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = self.clock.now()
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        labeled = ready = available = 0
        for pod in owned:  # one pass: this runs over every pod of the set on each change
            labeled += _has_labels(pod, template_labels)
            if _is_ready(pod):
                ready += 1
                available += min_ready <= 0 or pods.is_available(pod, min_ready, now)
        status = dict(owner.get("status") or {})
        status.update(
            replicas=len(owned),
            fullyLabeledReplicas=labeled,
            readyReplicas=ready,
            availableReplicas=available,
            observedGeneration=owner["metadata"].get("generation", 0),
        )
        if status != (owner.get("status") or {}):
            updated = copy.deepcopy(owner)
            updated["status"] = status
            try:
                await self.client.update_status(updated)
            except kclient.NotFound:
                return runtime.Result()
        want = int(spec.get("replicas", 1))
        if min_ready > 0 and status["readyReplicas"] == want != status["availableReplicas"]:
            return runtime.Result(requeue_after=float(min_ready))
        return runtime.Result()


class ReplicationControllerController(ReplicaSetController):
    name = "replicationcontroller"
    api_version = "v1"
    kind = "ReplicationController"
    selector_of = staticmethod(map_selector)


def _has_labels(pod: Obj, wanted: dict[str, str]) -> bool:
    have = pod["metadata"].get("labels") or {}
    return all(have.get(k) == v for k, v in wanted.items())


def _is_ready(pod: Obj) -> bool:
    """pods.is_ready without copying the condition."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def pod_from_template(owner: Obj) -> Obj:
    """A new pod for ``owner``: the template's metadata and spec, generateName, controllerRef."""
    template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
    meta = template.get("metadata") or {}
    owner_meta = owner["metadata"]
    pod_meta: Obj = {
        "generateName": f"{owner_meta['name']}-",
        "namespace": owner_meta["namespace"],
        "labels": meta.get("labels") or {},
        "ownerReferences": [pods.owner_reference(owner)],
    }
    if meta.get("annotations"):
        pod_meta["annotations"] = meta["annotations"]
    if meta.get("finalizers"):
        pod_meta["finalizers"] = meta["finalizers"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": template.get("spec")}
