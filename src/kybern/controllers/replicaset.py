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

Every change of one of its pods queues the set again. A reconcile reads only what changed
since the last one (``ownedpods``: the pods marked by their events are claimed and counted;
the whole set is rescanned only when the owner's selector, template labels or deletion
changes, and every few minutes), so its cost does not grow with the size of the set and no
set is made to wait.

ReplicationController is the same code with a map selector (``spec.selector``) instead of a
LabelSelector.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any

from kybern import client as kclient
from kybern.api import labels
from kybern.controllers import ownedpods, pods, runtime, workload

log = logging.getLogger(__name__)
Obj = dict[str, Any]

BURST_REPLICAS = 500  # most creates or deletes in one reconcile (Kubernetes' burstReplicas)
SLOW_START_INITIAL_BATCH = 1


def label_selector(obj: Obj) -> labels.Selector:
    return labels.from_label_selector((obj.get("spec") or {}).get("selector"))


def map_selector(obj: Obj) -> labels.Selector:
    selector = (obj.get("spec") or {}).get("selector") or {}
    return labels.from_set(selector) if selector else labels.nothing()


class ReplicaSetController(workload.PodOwnerController):
    name = "replicaset"
    workers = 5
    api_version = "apps/v1"
    kind = "ReplicaSet"
    selector_of = staticmethod(label_selector)

    def add_caches(self, informers: kclient.SharedInformerFactory) -> None:
        self.owned = ownedpods.OwnedPods(self.pods, self.clock)

    def watches(self) -> Sequence[runtime.Watch]:
        return [
            runtime.Watch(self.api_version, self.kind, runtime.own_key),
            runtime.Watch("v1", "Pod", self.pod_keys),
        ]

    def pod_keys(self, pod: Obj) -> list[str]:
        """The owners the pod event concerns; the pod is marked dirty in their tallies."""
        keys = super().pod_keys(pod)
        pod_key = kclient.key_of(pod)
        for key in keys:
            self.owned.touched(key, pod_key)
        return keys

    async def reconcile(self, key: str) -> runtime.Result:
        loaded = self.load(key)
        if loaded is None:
            self.owned.forget(key)
            return runtime.Result()
        owner, selector = loaded
        tally = await self.owned.claim(self.client, key, owner, selector)
        if self.expectations.satisfied(key) and not owner["metadata"].get("deletionTimestamp"):
            await self.manage_replicas(key, owner, tally)
        return await self.update_status(owner, tally)

    # -- scaling -----------------------------------------------------------------------

    async def manage_replicas(self, key: str, owner: Obj, tally: ownedpods.Tally) -> None:
        want = int((owner.get("spec") or {}).get("replicas", 1))
        diff = tally.replicas - want
        if diff < 0:
            await self.create_pods(key, owner, min(-diff, BURST_REPLICAS))
        elif diff > 0:
            owned = self.owned.owned(tally)
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

    async def update_status(self, owner: Obj, tally: ownedpods.Tally) -> runtime.Result:
        spec = owner.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        status = dict(owner.get("status") or {})
        status.update(
            replicas=tally.replicas,
            fullyLabeledReplicas=tally.labeled,
            readyReplicas=tally.ready,
            availableReplicas=self.owned.available(tally, min_ready, self.clock.now()),
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
