"""Deployment: roll a pod template out through ReplicaSets (Kubernetes' DeploymentController).

One reconcile of ``namespace/name``:

1. Claim ReplicaSets (adopt matching orphans, release non-matching ones) like the ReplicaSet
   controller claims pods.
2. Find the new ReplicaSet (template equal to the Deployment's, pod-template-hash aside) and
   the old ones; create the new one when the strategy may (``<name>-<hash>``, selector and
   labels carrying ``pod-template-hash``, revision = highest old revision + 1).
3. RollingUpdate: grow the new set within ``replicas + maxSurge`` pods, shrink old sets while
   keeping ``replicas - maxUnavailable`` available. Recreate: old sets to 0, wait until their
   pods are gone, then the new set to ``replicas``.
4. Once complete, delete old sets beyond ``revisionHistoryLimit``.
5. Status (observedGeneration, replicas, updatedReplicas, readyReplicas, availableReplicas,
   unavailableReplicas) and the Available and Progressing conditions, through ``/status``;
   a rollout that stalls past ``progressDeadlineSeconds`` gets ProgressDeadlineExceeded.

Not yet: pause/resume specifics, rollback annotation, proportional scaling of several
ReplicaSets during a rollout (a resize mid-rollout goes through the rolling arithmetic).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from kybern import client as kclient
from kybern.api import errors as api_errors
from kybern.api import labels
from kybern.controllers import claims, events, pods, runtime
from kybern.controllers import deploymentutil as util

log = logging.getLogger(__name__)
Obj = dict[str, Any]
RS_API = "apps/v1"


class DeploymentController:
    name = "deployment"
    workers = 5

    def __init__(
        self,
        *,
        client: kclient.Client,
        informers: kclient.SharedInformerFactory,
        clock: kclient.Clock | None = None,
    ) -> None:
        self.client = client
        self.clock = clock or informers.clock
        self.deployments = informers.informer_for("apps/v1", "Deployment").store
        self.sets = informers.informer_for("apps/v1", "ReplicaSet").store
        self.pods = informers.informer_for("v1", "Pod").store
        self.recorder = events.Recorder(client, "deployment-controller", clock=self.clock)

    def watches(self) -> Sequence[runtime.Watch]:
        return [
            runtime.Watch("apps/v1", "Deployment", runtime.own_key),
            runtime.Watch("apps/v1", "ReplicaSet", self.set_keys),
            runtime.Watch("v1", "Pod", lambda pod: [], self.deleted_pod_keys),
        ]

    def set_keys(self, rs: Obj) -> Iterable[str]:
        ref = pods.controller_ref(rs)
        namespace = rs["metadata"].get("namespace", "")
        if ref is not None:
            return [f"{namespace}/{ref['name']}"] if ref.get("kind") == "Deployment" else []
        rs_labels = rs["metadata"].get("labels") or {}
        return [
            kclient.key_of(d) for d in self.deployments.list(namespace) if _selects(d, rs_labels)
        ]

    def deleted_pod_keys(self, pod: Obj) -> Iterable[str]:
        """A pod gone may unblock a Recreate rollout waiting for old pods."""
        ref = pods.controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return []
        rs = self.sets.get_by_name(str(ref["name"]), pod["metadata"].get("namespace", ""))
        return list(self.set_keys(rs)) if rs is not None else []

    # -- reconcile ---------------------------------------------------------------------

    async def reconcile(self, key: str) -> runtime.Result:
        cached = self.deployments.get(key)
        if cached is None:
            return runtime.Result()
        deployment = {**cached, "apiVersion": "apps/v1", "kind": "Deployment"}
        selector = _selector_or_none(deployment)
        if selector is None or selector.empty():
            raise runtime.TerminalError(f"{key}: a Deployment needs a non-empty selector")
        candidates = self.sets.list(deployment["metadata"]["namespace"])
        owned = await claims.claim(
            self.client, deployment, selector, candidates, api_version=RS_API, kind="ReplicaSet"
        )
        if deployment["metadata"].get("deletionTimestamp"):
            return await self.sync_status(deployment, owned, self.find_new(deployment, owned))
        if (deployment.get("spec") or {}).get("paused"):
            return await self.paused(deployment, owned)
        if ((deployment.get("spec") or {}).get("strategy") or {}).get("type") == "Recreate":
            return await self.recreate(deployment, owned)
        return await self.rolling(deployment, owned)

    def find_new(self, deployment: Obj, owned: list[Obj]) -> Obj | None:
        template = (deployment.get("spec") or {}).get("template") or {}
        matching = [
            rs
            for rs in owned
            if util.same_template((rs.get("spec") or {}).get("template") or {}, template)
        ]
        return util.creation_order(matching)[0] if matching else None

    # -- strategies --------------------------------------------------------------------

    async def rolling(self, deployment: Obj, owned: list[Obj]) -> runtime.Result:
        new_rs = self.find_new(deployment, owned)
        if new_rs is None:
            deployment, new_rs = await self.create_new(deployment, owned)
        old = [rs for rs in owned if rs["metadata"]["uid"] != new_rs["metadata"]["uid"]]
        all_sets = [*old, new_rs]
        want = util.replicas(deployment)
        if util.replicas(new_rs) > want:
            await self.scale(deployment, new_rs, want)
        elif util.replicas(new_rs) < want:
            target = util.new_rs_replicas(deployment, all_sets, new_rs)
            if target != util.replicas(new_rs):
                new_rs = await self.scale(deployment, new_rs, target)
                return await self.sync_status(deployment, [*old, new_rs], new_rs)
        plan = util.scale_down_plan(deployment, all_sets, old, new_rs)
        for rs in old:
            if rs["metadata"]["name"] in plan:
                await self.scale(deployment, rs, plan[rs["metadata"]["name"]])
        return await self.finish(deployment, old, new_rs)

    async def paused(self, deployment: Obj, owned: list[Obj]) -> runtime.Result:
        """No rollout while paused; a resize still applies when one set is active."""
        new_rs = self.find_new(deployment, owned)
        active = [rs for rs in owned if util.replicas(rs) > 0]
        target = active[0] if len(active) == 1 else new_rs if not active else None
        if target is not None and util.replicas(target) != util.replicas(deployment):
            scaled = await self.scale(deployment, target, util.replicas(deployment))
            owned = [
                scaled if rs["metadata"]["uid"] == scaled["metadata"]["uid"] else rs for rs in owned
            ]
        return await self.sync_status(deployment, owned, new_rs)

    async def recreate(self, deployment: Obj, owned: list[Obj]) -> runtime.Result:
        new_rs = self.find_new(deployment, owned)
        old = [
            rs
            for rs in owned
            if new_rs is None or rs["metadata"]["uid"] != new_rs["metadata"]["uid"]
        ]
        active_old = [rs for rs in old if util.replicas(rs) > 0]
        for rs in active_old:
            await self.scale(deployment, rs, 0)
        if active_old or self.old_pods_remain(old):
            return await self.sync_status(deployment, owned, new_rs)
        if new_rs is None:
            deployment, new_rs = await self.create_new(deployment, owned)
        if util.replicas(new_rs) != util.replicas(deployment):
            new_rs = await self.scale(deployment, new_rs, util.replicas(deployment))
        return await self.finish(deployment, old, new_rs)

    def old_pods_remain(self, old: list[Obj]) -> bool:
        uids = {rs["metadata"]["uid"] for rs in old}
        for rs in old:
            for pod in self.pods.by_index(kclient.store.OWNER, rs["metadata"]["uid"]):
                phase = (pod.get("status") or {}).get("phase")
                ref = pods.controller_ref(pod)
                if (
                    ref is not None
                    and ref.get("uid") in uids
                    and phase not in ("Succeeded", "Failed")
                ):
                    return True
        return False

    async def finish(self, deployment: Obj, old: list[Obj], new_rs: Obj) -> runtime.Result:
        result = await self.sync_status(deployment, [*old, new_rs], new_rs)
        status = self._status(deployment, [*old, new_rs], new_rs)
        if util.complete(deployment, status):
            await self.cleanup(deployment, old)
        return result

    # -- ReplicaSet writes -------------------------------------------------------------

    async def create_new(self, deployment: Obj, owned: list[Obj]) -> tuple[Obj, Obj]:
        """-> (the Deployment with its new revision annotation, the new ReplicaSet)."""
        spec = deployment.get("spec") or {}
        collisions = int((deployment.get("status") or {}).get("collisionCount") or 0)
        template = copy.deepcopy(spec.get("template") or {})
        pod_hash = util.template_hash(template, collisions)
        template.setdefault("metadata", {}).setdefault("labels", {})[util.HASH_LABEL] = pod_hash
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[util.HASH_LABEL] = pod_hash
        meta = deployment["metadata"]
        revision = max((util.revision(rs) for rs in owned), default=0) + 1
        want = util.replicas(deployment)
        surge, _ = util.surge_and_unavailable(deployment)
        name = f"{meta['name']}-{pod_hash}"
        rs: Obj = {
            "apiVersion": RS_API,
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "labels": template["metadata"]["labels"],
                "annotations": {
                    util.REVISION: str(revision),
                    util.DESIRED_REPLICAS: str(want),
                    util.MAX_REPLICAS: str(want + surge),
                },
                "ownerReferences": [pods.owner_reference(deployment)],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                "selector": selector,
                "template": template,
            },
        }
        try:
            created = await self.client.create(rs)
        except kclient.AlreadyExists:
            existing = await self.client.get(
                RS_API, "ReplicaSet", name, namespace=meta["namespace"]
            )
            ref = pods.controller_ref(existing)
            if (
                ref is not None
                and ref.get("uid") == meta["uid"]
                and util.same_template(existing["spec"]["template"], template)
            ):
                return deployment, existing  # ours, not yet in the cache
            await self._bump_collisions(deployment, collisions + 1)
            raise
        return await self.set_revision(deployment, revision), created

    async def _bump_collisions(self, deployment: Obj, count: int) -> None:
        updated = copy.deepcopy(deployment)
        updated.setdefault("status", {})["collisionCount"] = count
        await self.client.update_status(updated)

    async def set_revision(self, deployment: Obj, revision: int) -> Obj:
        if util.revision(deployment) == revision:
            return deployment
        body = {"metadata": {"annotations": {util.REVISION: str(revision)}}}
        meta = deployment["metadata"]
        return await self.client.patch(
            "apps/v1", "Deployment", meta["name"], body, namespace=meta["namespace"]
        )

    async def scale(self, deployment: Obj, rs: Obj, size: int) -> Obj:
        before = util.replicas(rs)
        updated = copy.deepcopy(rs)
        updated.setdefault("apiVersion", RS_API)
        updated.setdefault("kind", "ReplicaSet")
        updated["spec"]["replicas"] = size
        want = util.replicas(deployment)
        surge, _ = util.surge_and_unavailable(deployment)
        annotations = updated["metadata"].setdefault("annotations", {})
        annotations[util.DESIRED_REPLICAS] = str(want)
        annotations[util.MAX_REPLICAS] = str(want + surge)
        stored = await self.client.update(updated)
        direction = "up" if size > before else "down"
        message = f"Scaled {direction} replica set {rs['metadata']['name']} from {before} to {size}"
        await self.recorder.event(deployment, events.NORMAL, "ScalingReplicaSet", message)
        return stored

    async def cleanup(self, deployment: Obj, old: list[Obj]) -> None:
        limit = (deployment.get("spec") or {}).get("revisionHistoryLimit")
        limit = util.DEFAULT_HISTORY_LIMIT if limit is None else int(limit)
        idle = [
            rs
            for rs in old
            if util.replicas(rs) == 0
            and util.status_of(rs, "replicas") == 0
            and not rs["metadata"].get("deletionTimestamp")
        ]
        idle.sort(key=util.revision)
        for rs in idle[: max(0, len(idle) - limit)]:
            try:
                await self.client.delete(
                    RS_API,
                    "ReplicaSet",
                    rs["metadata"]["name"],
                    namespace=rs["metadata"]["namespace"],
                )
            except kclient.NotFound:
                pass

    # -- status ------------------------------------------------------------------------

    def _status(self, deployment: Obj, all_sets: list[Obj], new_rs: Obj | None) -> Obj:
        want = util.replicas(deployment)
        available = util.total_status(all_sets, "availableReplicas")
        status = dict(deployment.get("status") or {})
        status.update(
            observedGeneration=deployment["metadata"].get("generation", 0),
            replicas=util.total_status(all_sets, "replicas"),
            updatedReplicas=util.status_of(new_rs, "replicas") if new_rs else 0,
            readyReplicas=util.total_status(all_sets, "readyReplicas"),
            availableReplicas=available,
            unavailableReplicas=max(0, want - available),
        )
        return status

    async def sync_status(
        self, deployment: Obj, all_sets: list[Obj], new_rs: Obj | None
    ) -> runtime.Result:
        status = self._status(deployment, all_sets, new_rs)
        stamp = self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        conditions = list(status.get("conditions") or [])
        avail = _available(deployment, status, stamp)
        conditions = util.set_condition(conditions, avail)
        progress, requeue = self._progressing(deployment, status, new_rs, stamp)
        status["conditions"] = util.set_condition(conditions, progress)
        if status != (deployment.get("status") or {}):
            updated = copy.deepcopy(deployment)
            updated["status"] = status
            try:
                await self.client.update_status(updated)
            except kclient.NotFound:
                return runtime.Result()
        return runtime.Result(requeue_after=requeue)

    def _progressing(
        self, deployment: Obj, status: Obj, new_rs: Obj | None, stamp: str
    ) -> tuple[Obj, float | None]:
        """The Progressing condition and when to look again for the deadline."""
        name = new_rs["metadata"]["name"] if new_rs else deployment["metadata"]["name"]
        spec = deployment.get("spec") or {}
        deadline = int(spec.get("progressDeadlineSeconds") or util.DEFAULT_PROGRESS_DEADLINE)
        current = util.get_condition(status, "Progressing")
        if spec.get("paused"):
            message = "Deployment is paused"
            return util.condition(
                "Progressing", "Unknown", "DeploymentPaused", message, stamp
            ), None
        if util.complete(deployment, status):
            message = f'ReplicaSet "{name}" has successfully progressed.'
            return util.condition(
                "Progressing", "True", "NewReplicaSetAvailable", message, stamp
            ), None
        resumed = current is not None and current.get("reason") == "DeploymentPaused"
        if current is None or resumed or _progressed(deployment.get("status") or {}, status):
            message = f'ReplicaSet "{name}" is progressing.'
            cond = util.condition("Progressing", "True", "ReplicaSetUpdated", message, stamp)
            return cond, float(deadline)
        since = util.parse_time(current.get("lastUpdateTime"))
        elapsed = (self.clock.now() - since).total_seconds() if since else 0.0
        if elapsed >= deadline:
            message = f'ReplicaSet "{name}" has timed out progressing.'
            cond = util.condition(
                "Progressing", "False", "ProgressDeadlineExceeded", message, stamp
            )
            return cond, None
        return current, max(1.0, deadline - elapsed)


def _available(deployment: Obj, status: Obj, stamp: str) -> Obj:
    _, max_unavailable = util.surge_and_unavailable(deployment)
    if status["availableReplicas"] >= util.replicas(deployment) - max_unavailable:
        message = "Deployment has minimum availability."
        return util.condition("Available", "True", "MinimumReplicasAvailable", message, stamp)
    message = "Deployment does not have minimum availability."
    return util.condition("Available", "False", "MinimumReplicasUnavailable", message, stamp)


def _progressed(old: Obj, new: Obj) -> bool:
    """DeploymentProgressing: more updated, ready or available pods, or fewer old ones."""
    old_old = int(old.get("replicas") or 0) - int(old.get("updatedReplicas") or 0)
    new_old = int(new.get("replicas") or 0) - int(new.get("updatedReplicas") or 0)
    return (
        int(new.get("updatedReplicas") or 0) > int(old.get("updatedReplicas") or 0)
        or new_old < old_old
        or int(new.get("readyReplicas") or 0) > int(old.get("readyReplicas") or 0)
        or int(new.get("availableReplicas") or 0) > int(old.get("availableReplicas") or 0)
    )


def _selects(deployment: Obj, obj_labels: Obj) -> bool:
    selector = _selector_or_none(deployment)
    return selector is not None and not selector.empty() and selector.matches(obj_labels)


def _selector_or_none(deployment: Obj) -> labels.Selector | None:
    try:
        return labels.from_label_selector((deployment.get("spec") or {}).get("selector"))
    except api_errors.BadRequest:
        return None
