"""DaemonSet (apps/v1): one pod on every eligible node.

One reconcile of ``namespace/name`` (Kubernetes' DaemonSetsController.syncDaemonSet):

1. Claim pods the selector matches (ControllerRefManager) and group them by the node they
   are for (``spec.nodeName``, or the node pinned by their node affinity).
2. The template's ControllerRevision ``<set>-<hash>`` (``history``, shared with the
   StatefulSet controller); pods carry ``controller-revision-hash: <hash>``. Old revisions
   beyond ``revisionHistoryLimit`` (default 10) are deleted, oldest first, unless a pod
   still runs them.
3. For every node decide whether a daemon pod should run there (nodeSelector, required node
   affinity, NoSchedule/NoExecute taints against the template's tolerations plus the ones
   Kubernetes adds to every daemon pod) and whether an existing one may stay (only NoExecute
   taints evict). Create the missing pods, delete failed pods, duplicates and pods on nodes
   they should leave. A new pod is pinned to its node with a required node affinity term
   ``matchFields metadata.name In [node]`` and left to the scheduler to bind, as Kubernetes
   does.
4. ``RollingUpdate`` deletes out-of-date pods (the unavailable ones first) while at most
   ``maxUnavailable`` (of desiredNumberScheduled, rounded up) nodes lack an available pod;
   the next reconcile recreates them from the new revision. ``OnDelete`` only recreates
   what users delete. ``maxSurge`` is not implemented (treated as 0).
5. Status through ``/status``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from kybern import client as kclient
from kybern.api import placement
from kybern.controllers import (
    claims,
    deploymentutil,
    history,
    pods,
    runtime,
    statefulset,
    workload,
)

log = logging.getLogger(__name__)
Obj = dict[str, Any]

API_VERSION = "apps/v1"
KIND = "DaemonSet"
REVISION_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"

# Kubernetes' AddOrUpdateDaemonPodTolerations
DEFAULT_TOLERATIONS: tuple[Obj, ...] = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
NETWORK_UNAVAILABLE: Obj = {
    "key": "node.kubernetes.io/network-unavailable",
    "operator": "Exists",
    "effect": "NoSchedule",
}


# -- pure helpers --------------------------------------------------------------------------


def tolerations_for(pod_spec: Obj) -> list[Obj]:
    """The pod spec's tolerations plus the daemon defaults it lacks (by key and effect)."""
    tolerations = [dict(t) for t in pod_spec.get("tolerations") or []]
    defaults = list(DEFAULT_TOLERATIONS)
    if pod_spec.get("hostNetwork"):
        defaults.append(NETWORK_UNAVAILABLE)
    have = {(t.get("key"), t.get("effect")) for t in tolerations}
    tolerations.extend(dict(d) for d in defaults if (d["key"], d["effect"]) not in have)
    return tolerations


def node_placement(template: Obj, node: Obj) -> tuple[bool, bool]:
    """(should run, should continue running) a daemon pod of ``template`` on ``node``
    (Kubernetes' NodeShouldRunDaemonPod)."""
    spec = template.get("spec") or {}
    meta = node.get("metadata") or {}
    node_labels = meta.get("labels") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if node_labels.get(key) != value:
            return False, False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if required is not None:
        terms = [placement.node_selector_term(t) for t in required.get("nodeSelectorTerms") or []]
        if not any(t.matches(node_labels, meta.get("name", "")) for t in terms):
            return False, False
    tolerations = tolerations_for(spec)
    taints = (node.get("spec") or {}).get("taints") or []
    untolerated = [
        t
        for t in taints
        if t.get("effect") in ("NoSchedule", "NoExecute")
        and not any(placement.tolerates(tol, t) for tol in tolerations)
    ]
    if any(t.get("effect") == "NoExecute" for t in untolerated):
        return False, False
    if untolerated:
        return False, True
    return True, True


def node_of(pod: Obj) -> str:
    """The node a daemon pod is for: its nodeName, else its pinned matchFields node."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            values = field.get("values") or []
            if field.get("key") == "metadata.name" and field.get("operator") == "In" and values:
                return str(values[0])
    return ""


def pin_to_node(pod_spec: Obj, node_name: str) -> None:
    """Kubernetes' ReplaceDaemonSetPodNodeNameNodeAffinity: the required node affinity
    becomes the single term ``matchFields metadata.name In [node]``."""
    affinity = pod_spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
        ]
    }


def new_pod(ds: Obj, template: Obj, hash_: str, node_name: str) -> Obj:
    meta = ds["metadata"]
    tmeta = template.get("metadata") or {}
    pod_labels = dict(tmeta.get("labels") or {})
    pod_labels[REVISION_LABEL] = hash_
    pod_labels[GENERATION_LABEL] = str(meta.get("generation", 0))
    pod_meta: Obj = {
        "generateName": f"{meta['name']}-",
        "namespace": meta["namespace"],
        "labels": pod_labels,
        "ownerReferences": [pods.owner_reference(ds)],
    }
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        pod_meta["finalizers"] = list(tmeta["finalizers"])
    pod_spec = copy.deepcopy(template.get("spec") or {})
    pod_spec["tolerations"] = tolerations_for(pod_spec)
    pin_to_node(pod_spec, node_name)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec}


def max_unavailable(ds: Obj, desired: int) -> int:
    rolling = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    value = rolling.get("maxUnavailable", 1)
    resolved = deploymentutil.resolve(value, desired, round_up=True)
    return max(resolved, 1) if desired else 0


# -- the controller ------------------------------------------------------------------------


class DaemonSetController(workload.PodOwnerController):
    name = "daemonset"
    workers = 2
    api_version = API_VERSION
    kind = KIND

    def add_caches(self, informers: kclient.SharedInformerFactory) -> None:
        self.nodes = informers.informer_for("v1", "Node").store
        self.revisions = informers.informer_for(API_VERSION, history.KIND).store

    def watches(self) -> Sequence[runtime.Watch]:
        return [
            runtime.Watch(API_VERSION, KIND, runtime.own_key),
            runtime.Watch("v1", "Pod", self.pod_keys),
            runtime.Watch("v1", "Node", self.all_keys),
            runtime.Watch(API_VERSION, "ControllerRevision", runtime.controller_owner_keys(KIND)),
        ]

    def all_keys(self, _node: Obj) -> Iterable[str]:
        """A node change may concern every DaemonSet."""
        return [kclient.key_of(ds) for ds in self.sets.list()]

    async def reconcile(self, key: str) -> runtime.Result:
        loaded = self.load(key)
        if loaded is None:
            return runtime.Result()
        ds, selector = loaded
        candidates = workload.candidates(self.pods, ds, selector)
        owned = await claims.claim(
            self.client, ds, selector, candidates, api_version="v1", kind="Pod"
        )
        revisions = history.owned(self.revisions, ds)
        revision, _ = await history.ensure_revision(self.client, ds, revisions)
        hash_ = history.hash_of(ds, revision)
        by_node: dict[str, list[Obj]] = {}
        for pod in owned:
            by_node.setdefault(node_of(pod), []).append(pod)
        if self.expectations.satisfied(key) and not ds["metadata"].get("deletionTimestamp"):
            await self.manage(key, ds, by_node, hash_)
        result = await self.update_status(ds, by_node, hash_)
        # Kubernetes' cleanupHistory: old revisions beyond revisionHistoryLimit go, oldest
        # first, except those a pod still runs (its controller-revision-hash).
        running = {(p["metadata"].get("labels") or {}).get(REVISION_LABEL) for p in owned}
        live = {r["metadata"]["name"] for r in revisions if history.hash_of(ds, r) in running}
        await history.truncate(self.client, ds, revisions, live | {revision["metadata"]["name"]})
        return result

    # -- pods ----------------------------------------------------------------------------

    async def manage(self, key: str, ds: Obj, by_node: dict[str, list[Obj]], hash_: str) -> None:
        template = (ds.get("spec") or {}).get("template") or {}
        create: list[str] = []
        delete: list[Obj] = []
        nodes = {n["metadata"]["name"]: n for n in self.nodes.list()}
        for node_name, node in nodes.items():
            should_run, should_continue = node_placement(template, node)
            here = [p for p in by_node.get(node_name, []) if not statefulset.terminating(p)]
            failed = [p for p in here if statefulset.is_failed(p)]
            running = [p for p in here if not statefulset.is_failed(p)]
            delete.extend(failed)
            if should_run and not running and not failed:
                create.append(node_name)
            elif should_continue and len(running) > 1:
                keep = min(running, key=lambda p: p["metadata"].get("creationTimestamp") or "")
                delete.extend(p for p in running if p is not keep)
            elif not should_continue:
                delete.extend(running)
        for node_name, stray in by_node.items():
            # the node is gone; a pod for no node at all is left alone (Kubernetes skips it)
            if node_name and node_name not in nodes:
                delete.extend(p for p in stray if not statefulset.terminating(p))
        if not create and not delete:
            delete.extend(self.rolling_update_victims(ds, by_node, nodes, hash_))
        for node_name in create:
            await self.create_pod(key, ds, template, hash_, node_name)
        for pod in delete:
            await self.delete_pod(key, ds, pod)

    def rolling_update_victims(
        self, ds: Obj, by_node: dict[str, list[Obj]], nodes: dict[str, Obj], hash_: str
    ) -> list[Obj]:
        spec = ds.get("spec") or {}
        if (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") != "RollingUpdate":
            return []
        template = spec.get("template") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = self.clock.now()
        desired = [n for n, node in nodes.items() if node_placement(template, node)[0]]
        budget = max_unavailable(ds, len(desired))
        unavailable = 0
        old_available: list[Obj] = []
        old_unavailable: list[Obj] = []
        for node_name in desired:
            here = [p for p in by_node.get(node_name, []) if not statefulset.terminating(p)]
            if not here:
                unavailable += 1
                continue
            pod = here[0]
            available = pods.is_available(pod, min_ready, now)
            if not available:
                unavailable += 1
            if (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) != hash_:
                (old_available if available else old_unavailable).append(pod)
        victims = list(old_unavailable)
        room = max(0, budget - unavailable)
        victims.extend(old_available[:room])
        return victims

    async def create_pod(
        self, key: str, ds: Obj, template: Obj, hash_: str, node_name: str
    ) -> None:
        await self.pod_control.create(key, ds, new_pod(ds, template, hash_, node_name))

    async def delete_pod(self, key: str, ds: Obj, pod: Obj) -> None:
        await self.pod_control.delete(key, ds, pod)

    # -- status --------------------------------------------------------------------------

    async def update_status(
        self, ds: Obj, by_node: dict[str, list[Obj]], hash_: str
    ) -> runtime.Result:
        spec = ds.get("spec") or {}
        template = spec.get("template") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = self.clock.now()
        desired = current = misscheduled = ready = updated = available = 0
        for node in self.nodes.list():
            should_run, _ = node_placement(template, node)
            here = [
                p
                for p in by_node.get(node["metadata"]["name"], [])
                if not statefulset.terminating(p)
            ]
            if should_run:
                desired += 1
                if here:
                    current += 1
                    pod = here[0]
                    ready += pods.is_ready(pod)
                    available += pods.is_available(pod, min_ready, now)
                    updated += (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) == hash_
            elif here:
                misscheduled += 1
        status = dict(ds.get("status") or {})
        status.update(
            desiredNumberScheduled=desired,
            currentNumberScheduled=current,
            numberMisscheduled=misscheduled,
            numberReady=ready,
            updatedNumberScheduled=updated,
            numberAvailable=available,
            numberUnavailable=desired - available,
            observedGeneration=ds["metadata"].get("generation", 0),
        )
        if status != (ds.get("status") or {}):
            updated_ds = copy.deepcopy(ds)
            updated_ds["status"] = status
            try:
                await self.client.update_status(updated_ds)
            except kclient.NotFound:
                return runtime.Result()
        if min_ready > 0 and ready != available:
            return runtime.Result(requeue_after=float(min_ready))
        return runtime.Result()
