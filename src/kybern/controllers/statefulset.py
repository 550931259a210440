"""StatefulSet (apps/v1): pods with stable ordinal identities, claims and ordered updates.

One reconcile of ``namespace/name`` (Kubernetes' StatefulSetControl.UpdateStatefulSet):

1. Claim pods (ControllerRefManager) that the selector matches and whose name is
   ``<set>-<ordinal>``; others are not members.
2. Revisions (``history``): the template is stored in a ControllerRevision ``<set>-<hash>``
   (data ``{"spec": {"template": ..., "$patch": "replace"}}``); the one matching the current
   template is the update revision, ``status.currentRevision`` the one pods converge from.
   Old revisions beyond ``revisionHistoryLimit`` that no pod uses are deleted.
3. If the expectations of earlier writes are met: create missing ordinals ``0..replicas-1``
   (their PVCs ``<template>-<set>-<i>`` first), replace failed pods, delete condemned
   ordinals from the highest. ``OrderedReady`` makes one change at a time and only when the
   lower ordinals are Running and Ready; ``Parallel`` does everything at once.
   ``RollingUpdate`` deletes the highest out-of-date ordinal at or above ``partition``, one
   at a time once everything is healthy; ``OnDelete`` only recreates what users deleted.
4. PVC ownership follows ``persistentVolumeClaimRetentionPolicy``: ``whenDeleted: Delete``
   makes the set an owner of every claim, ``whenScaled: Delete`` makes a condemned pod the
   owner of its claims (the garbage collector then removes them).
5. Status through ``/status``.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Sequence
from typing import Any

from kybern import client as kclient
from kybern.controllers import claims, events, history, pods, runtime, workload

log = logging.getLogger(__name__)
Obj = dict[str, Any]

API_VERSION = "apps/v1"
KIND = "StatefulSet"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"


# -- pure helpers --------------------------------------------------------------------------


def ordinal_of(set_name: str, pod_name: str) -> int | None:
    """The ordinal of ``<set>-<i>``, or None when the name is not a member's."""
    match = re.fullmatch(re.escape(set_name) + r"-(0|[1-9][0-9]*)", pod_name)
    return int(match.group(1)) if match else None


def claim_name(template: Obj, set_name: str, ordinal: int) -> str:
    return f"{(template.get('metadata') or {}).get('name', '')}-{set_name}-{ordinal}"


def is_running_and_ready(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and pods.is_ready(pod)


def is_failed(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded")


def terminating(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def pod_revision(pod: Obj) -> str:
    return str((pod["metadata"].get("labels") or {}).get(REVISION_LABEL, ""))


def new_pod(sts: Obj, template: Obj, revision: str, ordinal: int) -> Obj:
    """Pod ``<set>-<ordinal>`` from ``template`` (Kubernetes' newVersionedStatefulSetPod)."""
    meta = sts["metadata"]
    spec = sts.get("spec") or {}
    name = f"{meta['name']}-{ordinal}"
    tmeta = template.get("metadata") or {}
    pod_labels = dict(tmeta.get("labels") or {})
    pod_labels.update(
        {POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal), REVISION_LABEL: revision}
    )
    pod_meta: Obj = {
        "name": name,
        "namespace": meta["namespace"],
        "labels": pod_labels,
        "ownerReferences": [pods.owner_reference(sts)],
    }
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        pod_meta["finalizers"] = list(tmeta["finalizers"])
    pod_spec = copy.deepcopy(template.get("spec") or {})
    pod_spec["hostname"] = name
    if spec.get("serviceName"):
        pod_spec["subdomain"] = spec["serviceName"]
    templates = spec.get("volumeClaimTemplates") or []
    if templates:
        claimed = {(t.get("metadata") or {}).get("name") for t in templates}
        volumes = [v for v in pod_spec.get("volumes") or [] if v.get("name") not in claimed]
        volumes.extend(
            {
                "name": claim_template["metadata"]["name"],
                "persistentVolumeClaim": {
                    "claimName": claim_name(claim_template, meta["name"], ordinal)
                },
            }
            for claim_template in templates
        )
        pod_spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec}


def retention(sts: Obj) -> tuple[str, str]:
    policy = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return str(policy.get("whenDeleted") or "Retain"), str(policy.get("whenScaled") or "Retain")


def set_owner_reference(sts: Obj) -> Obj:
    ref = pods.owner_reference(sts)
    ref["controller"] = False
    return ref


def new_claim(sts: Obj, claim_template: Obj, ordinal: int) -> Obj:
    """PVC ``<template>-<set>-<ordinal>`` (Kubernetes' getPersistentVolumeClaims)."""
    meta = sts["metadata"]
    tmeta = claim_template.get("metadata") or {}
    claim_labels = dict(tmeta.get("labels") or {})
    claim_labels.update(history.selector_labels(sts))
    claim_meta: Obj = {
        "name": claim_name(claim_template, meta["name"], ordinal),
        "namespace": meta["namespace"],
        "labels": claim_labels,
    }
    if tmeta.get("annotations"):
        claim_meta["annotations"] = dict(tmeta["annotations"])
    if retention(sts)[0] == "Delete":
        claim_meta["ownerReferences"] = [set_owner_reference(sts)]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": claim_meta,
        "spec": copy.deepcopy(claim_template.get("spec") or {}),
    }


def uses_current_template(sts: Obj, ordinal: int) -> bool:
    """Whether a new pod at ``ordinal`` gets the current (not the update) revision."""
    spec = sts.get("spec") or {}
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type") == "OnDelete":
        return ordinal < int((sts.get("status") or {}).get("currentReplicas") or 0)
    partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
    return ordinal < partition


# -- the controller ------------------------------------------------------------------------


class StatefulSetController(workload.PodOwnerController):
    """Its pod writes are its own (named pods, its own event wording), not PodControl's."""

    name = "statefulset"
    workers = 5
    api_version = API_VERSION
    kind = KIND

    def add_caches(self, informers: kclient.SharedInformerFactory) -> None:
        self.revisions = informers.informer_for(API_VERSION, history.KIND).store
        self.claims = informers.informer_for("v1", "PersistentVolumeClaim").store

    def watches(self) -> Sequence[runtime.Watch]:
        return [
            runtime.Watch(API_VERSION, KIND, runtime.own_key),
            runtime.Watch("v1", "Pod", self.pod_keys),
            runtime.Watch(API_VERSION, "ControllerRevision", runtime.controller_owner_keys(KIND)),
        ]

    async def reconcile(self, key: str) -> runtime.Result:
        loaded = self.load(key)
        if loaded is None:
            return runtime.Result()
        sts, selector = loaded
        set_name = sts["metadata"]["name"]
        candidates = [
            p
            for p in workload.candidates(self.pods, sts, selector)
            if ordinal_of(set_name, p["metadata"]["name"]) is not None
        ]
        owned = await claims.claim(
            self.client, sts, selector, candidates, api_version="v1", kind="Pod"
        )
        revisions = history.owned(self.revisions, sts)
        update, collision = await history.ensure_revision(self.client, sts, revisions)
        revisions = [r for r in revisions if r["metadata"]["name"] != update["metadata"]["name"]]
        revisions.append(update)
        current_name = str((sts.get("status") or {}).get("currentRevision") or "")
        current = next((r for r in revisions if r["metadata"]["name"] == current_name), update)
        if self.expectations.satisfied(key) and not sts["metadata"].get("deletionTimestamp"):
            await self.manage(key, sts, owned, current, update)
        result = await self.update_status(sts, owned, current, update, collision)
        await self.truncate_history(sts, owned, revisions, current, update)
        return result

    async def truncate_history(
        self, sts: Obj, owned: list[Obj], revisions: list[Obj], current: Obj, update: Obj
    ) -> None:
        live = {pod_revision(p) for p in owned} | {
            current["metadata"]["name"],
            update["metadata"]["name"],
        }
        await history.truncate(self.client, sts, revisions, live)

    # -- pods ----------------------------------------------------------------------------

    async def manage(self, key: str, sts: Obj, owned: list[Obj], current: Obj, update: Obj) -> None:
        spec = sts.get("spec") or {}
        set_name = sts["metadata"]["name"]
        want = int(spec.get("replicas", 1))
        monotonic = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        by_ordinal: dict[int, Obj] = {}
        for pod in owned:
            ordinal = ordinal_of(set_name, pod["metadata"]["name"])
            if ordinal is not None:
                by_ordinal[ordinal] = pod
        condemned = sorted((o for o in by_ordinal if o >= want), reverse=True)
        # first unhealthy pod, in ordinal order (Kubernetes' firstUnhealthyPod)
        unhealthy = [
            o
            for o in sorted(by_ordinal)
            if not is_running_and_ready(by_ordinal[o]) or terminating(by_ordinal[o])
        ]
        first_unhealthy = unhealthy[0] if unhealthy else None

        for ordinal in range(want):
            member = by_ordinal.get(ordinal)
            if member is not None and is_failed(member) and not terminating(member):
                await self.delete_pod(key, sts, member)  # recreated on a later reconcile
                if monotonic:
                    return
                continue
            if member is None:
                revision = current if uses_current_template(sts, ordinal) else update
                await self.create_pod(key, sts, revision, ordinal)
                if monotonic:
                    return
                continue
            await self.ensure_claims(sts, ordinal)
            if monotonic and (terminating(member) or not is_running_and_ready(member)):
                return  # wait for it before touching the next ordinal

        for ordinal in condemned:
            victim = by_ordinal[ordinal]
            if terminating(victim):
                if monotonic:
                    return
                continue
            if monotonic and first_unhealthy is not None and first_unhealthy != ordinal:
                return  # scale down only a healthy set (Kubernetes' unhealthy check)
            await self.delete_condemned(key, sts, victim, ordinal)
            if monotonic:
                return

        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        update_name = update["metadata"]["name"]
        for ordinal in range(want - 1, partition - 1, -1):
            target = by_ordinal.get(ordinal)
            if target is None:
                return
            if pod_revision(target) != update_name and not terminating(target):
                await self.delete_pod(key, sts, target)
                return
            if not is_running_and_ready(target) or terminating(target):
                return  # one at a time: wait for the replacement

    async def ensure_claims(self, sts: Obj, ordinal: int) -> None:
        namespace = sts["metadata"]["namespace"]
        for template in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
            body = new_claim(sts, template, ordinal)
            name = body["metadata"]["name"]
            if self.claims.get_by_name(name, namespace) is not None:
                continue
            try:
                await self.client.create(body)
            except kclient.AlreadyExists:
                continue
            except kclient.ApiError as exc:
                await self.recorder.event(
                    sts,
                    events.WARNING,
                    "FailedCreate",
                    f"create Claim {name} for Pod {sts['metadata']['name']}-{ordinal} "
                    f"in StatefulSet {sts['metadata']['name']} failed error: {exc}",
                )
                raise
            await self.recorder.event(
                sts,
                events.NORMAL,
                "SuccessfulCreate",
                f"create Claim {name} Pod {sts['metadata']['name']}-{ordinal} "
                f"in StatefulSet {sts['metadata']['name']} success",
            )

    async def create_pod(self, key: str, sts: Obj, revision: Obj, ordinal: int) -> None:
        await self.ensure_claims(sts, ordinal)
        body = new_pod(sts, history.template_of(revision), revision["metadata"]["name"], ordinal)
        name = body["metadata"]["name"]
        set_name = sts["metadata"]["name"]
        try:
            created = await self.client.create(body)
        except kclient.AlreadyExists:
            return  # an earlier incarnation still terminating, or a cache lag: look again
        except kclient.ApiError as exc:
            await self.recorder.event(
                sts,
                events.WARNING,
                "FailedCreate",
                f"create Pod {name} in StatefulSet {set_name} failed error: {exc}",
            )
            raise
        self.expectations.created(key, created)
        await self.recorder.event(
            sts,
            events.NORMAL,
            "SuccessfulCreate",
            f"create Pod {name} in StatefulSet {set_name} successful",
        )

    async def delete_pod(self, key: str, sts: Obj, pod: Obj) -> None:
        meta = pod["metadata"]
        self.expectations.deleted(key, pod)
        try:
            await self.client.delete("v1", "Pod", meta["name"], namespace=meta["namespace"])
        except kclient.NotFound:
            return
        await self.recorder.event(
            sts,
            events.NORMAL,
            "SuccessfulDelete",
            f"delete Pod {meta['name']} in StatefulSet {sts['metadata']['name']} successful",
        )

    async def delete_condemned(self, key: str, sts: Obj, pod: Obj, ordinal: int) -> None:
        """Scale-down: with ``whenScaled: Delete`` the pod first becomes its claims' owner."""
        if retention(sts)[1] == "Delete":
            namespace = sts["metadata"]["namespace"]
            ref = {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"],
                "controller": False,
                "blockOwnerDeletion": True,
            }
            for template in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
                name = claim_name(template, sts["metadata"]["name"], ordinal)
                claim = self.claims.get_by_name(name, namespace)
                if claim is None:
                    continue
                refs = claim["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == ref["uid"] for r in refs):
                    continue
                await claims.patch_refs(self.client, claim, [ref], "v1", "PersistentVolumeClaim")
        await self.delete_pod(key, sts, pod)

    # -- status --------------------------------------------------------------------------

    async def update_status(
        self, sts: Obj, owned: list[Obj], current: Obj, update: Obj, collision: int
    ) -> runtime.Result:
        spec = sts.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = self.clock.now()
        current_name = current["metadata"]["name"]
        update_name = update["metadata"]["name"]
        live = [p for p in owned if not terminating(p)]
        status = dict(sts.get("status") or {})
        status.update(
            observedGeneration=sts["metadata"].get("generation", 0),
            replicas=len(live),
            readyReplicas=sum(1 for p in live if is_running_and_ready(p)),
            availableReplicas=sum(
                1 for p in live if is_running_and_ready(p) and pods.is_available(p, min_ready, now)
            ),
            currentReplicas=sum(1 for p in live if pod_revision(p) == current_name),
            updatedReplicas=sum(1 for p in live if pod_revision(p) == update_name),
            currentRevision=current_name,
            updateRevision=update_name,
            collisionCount=collision,
        )
        strategy = spec.get("updateStrategy") or {}
        want = int(spec.get("replicas", 1))
        if (
            strategy.get("type", "RollingUpdate") == "RollingUpdate"
            and status["updatedReplicas"] == status["replicas"] == want
            and status["readyReplicas"] == status["replicas"]
        ) or (strategy.get("type") == "OnDelete" and status["updatedReplicas"] == want):
            status["currentRevision"] = update_name  # the rollout completed
            status["currentReplicas"] = status["updatedReplicas"]
        if status != (sts.get("status") or {}):
            updated = copy.deepcopy(sts)
            updated["status"] = status
            try:
                await self.client.update_status(updated)
            except kclient.NotFound:
                return runtime.Result()
        if min_ready > 0 and status["readyReplicas"] != status["availableReplicas"]:
            return runtime.Result(requeue_after=float(min_ready))
        return runtime.Result()
