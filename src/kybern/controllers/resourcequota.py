"""ResourceQuota status: ``status.hard`` from ``spec.hard`` and ``status.used`` recounted.

Kubernetes' resourcequota-controller. One reconcile of ``namespace/name`` sums, for every
resource the quota's hard names cover, the usage of the objects in the namespace
(``kybern.api.quotausage`` evaluators, the quota's scopes applied) and writes
``status.hard``/``status.used`` through ``/status`` when they changed. Usage of names no
evaluator counts is kept as it was.

It looks again when a quota's spec is not yet reflected in its status, when a pod in the
quota's namespace finishes or is being deleted, when an object it counts is deleted, and every
``RESYNC`` seconds on the controllers' clock (which also releases usage admission charged for
writes the store then refused). Like Kubernetes it does not look on every object add or on
admission's status writes: a recount from caches that lag behind admission would undo charges. Pods, services, PVCs, configmaps, secrets, replication controllers and
the common workload kinds come from the shared informers; other ``count/<resource>.<group>``
names are counted with a list call.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from kybern import client as kclient
from kybern.api import kinds, quotausage, resourcelist
from kybern.controllers import runtime

log = logging.getLogger(__name__)
Obj = dict[str, Any]
RESYNC = 300.0  # kube-controller-manager's --resource-quota-sync-period (5m)

# Kinds counted from informer caches (the rest of count/* is listed on demand).
WATCHED: tuple[tuple[str, str], ...] = (
    ("v1", "Pod"),
    ("v1", "Service"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "ReplicationController"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "ReplicaSet"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
)


def unsynced_key(quota: Obj) -> Iterable[str]:
    """A quota whose status does not yet reflect its spec. Status-only changes (admission
    charging usage) are not looked at: a recount from caches that have not yet seen the
    object just admitted would undo the charge (Kubernetes ignores them for that reason)."""
    hard = (quota.get("spec") or {}).get("hard") or {}
    status = quota.get("status") or {}
    used = status.get("used") or {}
    if resourcelist.equal(hard, status.get("hard") or {}) and all(n in used for n in hard):
        return ()
    return runtime.own_key(quota)


class ResourceQuotaController:
    name = "resourcequota"
    workers = 2

    def __init__(
        self,
        *,
        client: kclient.Client,
        informers: kclient.SharedInformerFactory,
        clock: kclient.Clock | None = None,
    ) -> None:
        self.client = client
        self.clock = clock or informers.clock
        self.quotas = informers.informer_for("v1", "ResourceQuota").store
        self.stores: dict[tuple[str, str], kclient.Store] = {}
        for api_version, kind in WATCHED:
            info = kinds.for_kind(api_version, kind)
            assert info is not None
            store = informers.informer_for(api_version, kind).store
            self.stores[(info.group, info.plural)] = store

    def watches(self) -> Sequence[runtime.Watch]:
        return [
            runtime.Watch("v1", "ResourceQuota", unsynced_key, runtime.own_key),
            runtime.Watch("v1", "Pod", self.finished_pod_keys, self.quota_keys),
            *(
                runtime.Watch(v, k, lambda obj: (), self.quota_keys)
                for v, k in WATCHED
                if k != "Pod"
            ),
        ]

    def quota_keys(self, obj: Obj) -> Iterable[str]:
        """Every quota in the object's namespace (usually none: then nothing to do)."""
        namespace = (obj.get("metadata") or {}).get("namespace") or ""
        return [kclient.key_of(q) for q in self.quotas.list(namespace)] if namespace else []

    def finished_pod_keys(self, pod: Obj) -> Iterable[str]:
        """A pod that stopped counting (finished, or being deleted) releases its usage."""
        if quotausage.pod_counts(pod, None) and not pod["metadata"].get("deletionTimestamp"):
            return ()
        return self.quota_keys(pod)

    async def reconcile(self, key: str) -> runtime.Result:
        quota = self.quotas.get(key)
        if quota is None or quota["metadata"].get("deletionTimestamp"):
            return runtime.Result()
        hard = dict((quota.get("spec") or {}).get("hard") or {})
        used = resourcelist.mask(
            {**quotausage.used_of(quota), **await self.usage(quota, hard)}, hard
        )
        status = quota.get("status") or {}
        if not (
            resourcelist.equal(hard, status.get("hard") or {})
            and resourcelist.equal(used, status.get("used") or {})
        ):
            body = {**quota, "apiVersion": "v1", "kind": "ResourceQuota"}
            body["status"] = {"hard": hard, "used": used}
            try:
                await self.client.update_status(body)
            except kclient.NotFound:
                return runtime.Result()
        return runtime.Result(requeue_after=RESYNC)

    async def usage(self, quota: Obj, hard: dict[str, str]) -> resourcelist.ResourceList:
        """The recounted usage of every resource the hard names cover."""
        namespace = quota["metadata"].get("namespace") or ""
        now = self.clock.now()
        total: resourcelist.ResourceList = {}
        for group, resource in self._resources(hard):
            evaluator = quotausage.evaluator_for(resource, group)
            if evaluator is None or not evaluator.matching(hard):
                continue
            objects = await self._objects(group, resource, namespace)
            if objects is None:
                continue  # not a kind we serve: leave its usage as it was
            stats = quotausage.usage_stats(evaluator, quota, objects, now)
            total = resourcelist.add(total, stats)
        return total

    def _resources(self, hard: Iterable[str]) -> list[tuple[str, str]]:
        """(group, resource) of every evaluator a hard name may concern."""
        found = [(e.group, e.resource) for e in quotausage.EVALUATORS.values()]
        for name in hard:
            parsed = quotausage.parse_count_name(name)
            if parsed is not None and (parsed[1], parsed[0]) not in found:
                found.append((parsed[1], parsed[0]))
        return found

    async def _objects(self, group: str, resource: str, namespace: str) -> list[Obj] | None:
        store = self.stores.get((group, resource))
        if store is not None:
            return store.list(namespace)
        info = next(
            (
                i
                for i in kinds.served_resources()
                if i.group == group and i.plural == resource and i.namespaced
            ),
            None,
        )
        if info is None:
            return None
        listed = await self.client.list(info.api_version, info.kind, namespace=namespace)
        items: list[Obj] = listed.get("items") or []
        return items
