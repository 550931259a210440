"""Deployment: roll a pod template out through ReplicaSets (Kubernetes' DeploymentController).

One reconcile of ``namespace/name``:

1. Claim ReplicaSets (adopt matching orphans, release non-matching ones) like the ReplicaSet
   controller claims pods.
2. Find the new ReplicaSet (template equal to the Deployment's, pod-template-hash aside) and
   the old ones. An existing one (a rollback to an old template: ``kubectl rollout undo``
   patches the template back) is reused and renumbered as the newest revision, its former
   numbers kept in ``revision-history``; otherwise one is created (``<name>-<hash>``,
   selector and labels carrying ``pod-template-hash``). The Deployment's own annotations
   (``kubernetes.io/change-cause``) are copied onto it: ``kubectl rollout history`` reads
   them there. The Deployment's revision annotation follows the new set's.
3. Paused, or resized while several sets are active: no rollout, only sizes change
   (proportionally across the active sets, as Kubernetes does).
4. RollingUpdate: grow the new set within ``replicas + maxSurge`` pods, shrink old sets while
   keeping ``replicas - maxUnavailable`` available. Recreate: old sets to 0, wait until their
   pods are gone, then the new set to ``replicas``.
5. Once complete (or while paused), delete old sets beyond ``revisionHistoryLimit``.
6. Status (observedGeneration, replicas, updatedReplicas, readyReplicas, availableReplicas,
   unavailableReplicas) and the Available and Progressing conditions through ``/status``,
   with Kubernetes' reasons: NewReplicaSetCreated, FoundNewReplicaSet, ReplicaSetUpdated,
   NewReplicaSetAvailable, ProgressDeadlineExceeded, DeploymentPaused, DeploymentResumed.
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
NO_DEADLINE = 2**31 - 1  # progressDeadlineSeconds meaning "never" (MaxInt32)


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
            new_rs = self.find_new(deployment, owned)
            return await self.sync_status(deployment, owned, new_rs, progress=False)
        deployment = await self.paused_condition(deployment)
        spec = deployment.get("spec") or {}
        if spec.get("paused") or util.scaling_event(deployment, owned):
            return await self.sync(deployment, owned)
        if (spec.get("strategy") or {}).get("type") == "Recreate":
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

    async def get_new(
        self, deployment: Obj, owned: list[Obj], *, create: bool
    ) -> tuple[Obj, Obj | None, list[Obj]]:
        """getAllReplicaSetsAndSyncRevision -> (deployment, new set or None, old sets)."""
        existing = self.find_new(deployment, owned)
        old = [rs for rs in owned if existing is None or rs["metadata"]["uid"] != _uid(existing)]
        revision = max((util.revision(rs) for rs in old), default=0) + 1
        if existing is not None:
            existing = await self.sync_new_annotations(deployment, existing, revision)
            deployment = await self.set_revision(deployment, util.revision(existing))
            if util.get_condition(deployment.get("status") or {}, "Progressing") is None:
                message = f'Found new replica set "{util.name_of(existing)}"'
                deployment = await self.set_progressing(
                    deployment, "True", "FoundNewReplicaSet", message
                )
            return deployment, existing, old
        if not create:
            return deployment, None, old
        deployment, created = await self.create_new(deployment, revision)
        if _has_deadline(deployment):
            message = f'Created new replica set "{util.name_of(created)}"'
            deployment = await self.set_progressing(
                deployment, "True", "NewReplicaSetCreated", message, force=True
            )
        return deployment, created, old

    # -- strategies --------------------------------------------------------------------

    async def sync(self, deployment: Obj, owned: list[Obj]) -> runtime.Result:
        """Paused or resized: sizes only, no new ReplicaSet, no rollout step."""
        deployment, new_rs, old = await self.get_new(deployment, owned, create=False)
        sets = await self.resize(deployment, new_rs, old)
        new_rs = next((rs for rs in sets if new_rs and _uid(rs) == _uid(new_rs)), None)
        old = [rs for rs in sets if new_rs is None or _uid(rs) != _uid(new_rs)]
        if (deployment.get("spec") or {}).get("paused"):
            await self.cleanup(deployment, old)
        return await self.sync_status(deployment, sets, new_rs, progress=False)

    async def resize(self, deployment: Obj, new_rs: Obj | None, old: list[Obj]) -> list[Obj]:
        """DeploymentController.scale; -> every set, as stored after the writes."""
        sizes: dict[str, int] = {}
        want = util.replicas(deployment)
        target = util.active_or_latest(new_rs, old)
        if target is not None:
            sizes[util.name_of(target)] = want
        elif util.saturated(deployment, new_rs):
            sizes = {util.name_of(rs): 0 for rs in util.active(old)}
        elif _strategy(deployment) != "Recreate":
            sizes = util.proportional_sizes(deployment, [*old, *([new_rs] if new_rs else [])])
        out = []
        for rs in [*old, *([new_rs] if new_rs else [])]:
            name = util.name_of(rs)
            out.append(await self.scale(deployment, rs, sizes[name]) if name in sizes else rs)
        return out

    async def rolling(self, deployment: Obj, owned: list[Obj]) -> runtime.Result:
        deployment, new_rs, old = await self.get_new(deployment, owned, create=True)
        assert new_rs is not None  # create=True always gives one
        want = util.replicas(deployment)
        if util.replicas(new_rs) != want:
            target = min(want, util.new_rs_replicas(deployment, [*old, new_rs], new_rs))
            if target != util.replicas(new_rs):
                new_rs = await self.scale(deployment, new_rs, target)
                return await self.sync_status(deployment, [*old, new_rs], new_rs)
        plan = util.scale_down_plan(deployment, [*old, new_rs], util.active(old), new_rs)
        if plan:
            old = [
                await self.scale(deployment, rs, plan[util.name_of(rs)])
                if util.name_of(rs) in plan
                else rs
                for rs in old
            ]
            return await self.sync_status(deployment, [*old, new_rs], new_rs)
        return await self.finish(deployment, old, new_rs)

    async def recreate(self, deployment: Obj, owned: list[Obj]) -> runtime.Result:
        deployment, new_rs, old = await self.get_new(deployment, owned, create=False)
        sets = [*old, *([new_rs] if new_rs else [])]
        active_old = util.active(old)
        for rs in active_old:
            await self.scale(deployment, rs, 0)
        if active_old or self.old_pods_remain(old):
            return await self.sync_status(deployment, sets, new_rs)
        if new_rs is None:
            deployment, new_rs, old = await self.get_new(deployment, owned, create=True)
            assert new_rs is not None
        if util.replicas(new_rs) != util.replicas(deployment):
            new_rs = await self.scale(deployment, new_rs, util.replicas(deployment))
        return await self.finish(deployment, old, new_rs)

    def old_pods_remain(self, old: list[Obj]) -> bool:
        """oldPodsRunning: any old pod not finished, terminating ones included."""
        if util.total_status(old, "replicas") > 0:
            return True
        uids = {_uid(rs) for rs in old}
        for uid in uids:
            for pod in self.pods.by_index(kclient.store.OWNER, uid):
                phase = (pod.get("status") or {}).get("phase")
                ref = pods.controller_ref(pod)
                if ref is not None and ref.get("uid") in uids and phase not in _FINISHED:
                    return True
        return False

    async def finish(self, deployment: Obj, old: list[Obj], new_rs: Obj) -> runtime.Result:
        result = await self.sync_status(deployment, [*old, new_rs], new_rs)
        status = self._status(deployment, [*old, new_rs], new_rs)
        if util.complete(deployment, status):
            await self.cleanup(deployment, old)
        return result

    # -- writes ------------------------------------------------------------------------

    async def create_new(self, deployment: Obj, revision: int) -> tuple[Obj, Obj]:
        """-> (the Deployment with its new revision annotation, the new ReplicaSet)."""
        spec = deployment.get("spec") or {}
        collisions = int((deployment.get("status") or {}).get("collisionCount") or 0)
        template = copy.deepcopy(spec.get("template") or {})
        pod_hash = util.template_hash(template, collisions)
        template.setdefault("metadata", {}).setdefault("labels", {})[util.HASH_LABEL] = pod_hash
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[util.HASH_LABEL] = pod_hash
        meta = deployment["metadata"]
        name = f"{meta['name']}-{pod_hash}"
        rs: Obj = {
            "apiVersion": RS_API,
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "labels": template["metadata"]["labels"],
                "annotations": util.new_rs_annotations(deployment, None, revision),
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

    async def sync_new_annotations(self, deployment: Obj, rs: Obj, revision: int) -> Obj:
        """Copy the Deployment's annotations and the new revision onto its new set."""
        annotations = util.new_rs_annotations(deployment, rs, revision)
        min_ready = int((deployment.get("spec") or {}).get("minReadySeconds") or 0)
        current = rs["metadata"].get("annotations") or {}
        if annotations == current and int(rs["spec"].get("minReadySeconds") or 0) == min_ready:
            return rs
        updated = _writable(rs)
        updated["metadata"]["annotations"] = annotations
        updated["spec"]["minReadySeconds"] = min_ready
        return await self.client.update(updated)

    async def set_revision(self, deployment: Obj, revision: int) -> Obj:
        if util.revision(deployment) == revision:
            return deployment
        body = {"metadata": {"annotations": {util.REVISION: str(revision)}}}
        meta = deployment["metadata"]
        return await self.client.patch(
            "apps/v1", "Deployment", meta["name"], body, namespace=meta["namespace"]
        )

    async def set_progressing(
        self, deployment: Obj, status: str, reason: str, message: str, *, force: bool = False
    ) -> Obj:
        """Write one Progressing condition now (``force``: even with the same reason)."""
        conditions = list((deployment.get("status") or {}).get("conditions") or [])
        cond = util.condition("Progressing", status, reason, message, self._now())
        updated_conditions = (
            util.replace_condition(conditions, cond)
            if force
            else util.set_condition(conditions, cond)
        )
        if updated_conditions == conditions:
            return deployment
        updated = copy.deepcopy(deployment)
        updated.setdefault("status", {})["conditions"] = updated_conditions
        return await self.client.update_status(updated)

    async def paused_condition(self, deployment: Obj) -> Obj:
        """checkPausedConditions: DeploymentPaused on pause, DeploymentResumed on resume
        (a timed-out rollout keeps saying so)."""
        if not _has_deadline(deployment):
            return deployment
        cond = util.get_condition(deployment.get("status") or {}, "Progressing")
        reason = (cond or {}).get("reason")
        if reason == "ProgressDeadlineExceeded":
            return deployment
        paused = bool((deployment.get("spec") or {}).get("paused"))
        if paused and reason != "DeploymentPaused":
            return await self.set_progressing(
                deployment, "Unknown", "DeploymentPaused", "Deployment is paused"
            )
        if not paused and reason == "DeploymentPaused":
            return await self.set_progressing(
                deployment, "Unknown", "DeploymentResumed", "Deployment is resumed"
            )
        return deployment

    async def scale(self, deployment: Obj, rs: Obj, size: int) -> Obj:
        """Resize ``rs`` and stamp it with the Deployment size it was sized for."""
        before = util.replicas(rs)
        want = util.replicas(deployment)
        surge, _ = util.surge_and_unavailable(deployment)
        stamps = {util.DESIRED_REPLICAS: str(want), util.MAX_REPLICAS: str(want + surge)}
        annotations = rs["metadata"].get("annotations") or {}
        if size == before and all(annotations.get(k) == v for k, v in stamps.items()):
            return rs
        updated = _writable(rs)
        updated["spec"]["replicas"] = size
        updated["metadata"]["annotations"] = {**annotations, **stamps}
        stored = await self.client.update(updated)
        if size != before:
            direction = "up" if size > before else "down"
            message = f"Scaled {direction} replica set {util.name_of(rs)} from {before} to {size}"
            await self.recorder.event(deployment, events.NORMAL, "ScalingReplicaSet", message)
        return stored

    async def cleanup(self, deployment: Obj, old: list[Obj]) -> None:
        """Delete the oldest idle sets beyond ``revisionHistoryLimit``."""
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
                    RS_API, "ReplicaSet", util.name_of(rs), namespace=rs["metadata"]["namespace"]
                )
            except kclient.NotFound:
                pass

    # -- status ------------------------------------------------------------------------

    def _now(self) -> str:
        return self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    def _status(self, deployment: Obj, all_sets: list[Obj], new_rs: Obj | None) -> Obj:
        """calculateStatus: counts from the sets, Available from the minimum availability."""
        available = util.total_status(all_sets, "availableReplicas")
        status = dict(deployment.get("status") or {})
        status.update(
            observedGeneration=deployment["metadata"].get("generation", 0),
            replicas=util.total_status(all_sets, "replicas"),
            updatedReplicas=util.status_of(new_rs, "replicas") if new_rs else 0,
            readyReplicas=util.total_status(all_sets, "readyReplicas"),
            availableReplicas=available,
            unavailableReplicas=max(0, util.total_spec(all_sets) - available),
        )
        conditions = list(status.get("conditions") or [])
        available_cond = _available(deployment, status, self._now())
        status["conditions"] = util.set_condition(conditions, available_cond)
        return status

    async def sync_status(
        self,
        deployment: Obj,
        all_sets: list[Obj],
        new_rs: Obj | None,
        *,
        progress: bool = True,
    ) -> runtime.Result:
        """Write the status; ``progress`` also judges the rollout (syncRolloutStatus)."""
        status = self._status(deployment, all_sets, new_rs)
        requeue = None
        if progress and _has_deadline(deployment):
            status["conditions"] = self._progressing(deployment, status, new_rs)
            requeue = self._deadline_check(deployment, status)
        if status != (deployment.get("status") or {}):
            updated = copy.deepcopy(deployment)
            updated["status"] = status
            try:
                await self.client.update_status(updated)
            except kclient.NotFound:
                return runtime.Result()
        return runtime.Result(requeue_after=requeue)

    def _progressing(self, deployment: Obj, status: Obj, new_rs: Obj | None) -> list[Obj]:
        """The conditions with Progressing judged as Kubernetes does."""
        conditions = list(status["conditions"])
        current = util.get_condition(status, "Progressing")
        done = (
            status["replicas"] == status["updatedReplicas"]
            and current is not None
            and current.get("reason") == "NewReplicaSetAvailable"
        )
        if done:
            return conditions
        name = _subject(deployment, new_rs)
        now = self._now()
        if util.complete(deployment, status):
            message = f"{name} has successfully progressed."
            cond = util.condition("Progressing", "True", "NewReplicaSetAvailable", message, now)
            return util.set_condition(conditions, cond)
        if _progressed(deployment.get("status") or {}, status):
            message = f"{name} is progressing."
            cond = util.condition("Progressing", "True", "ReplicaSetUpdated", message, now)
            return util.replace_condition(conditions, cond)
        if self._timed_out(deployment, current):
            message = f"{name} has timed out progressing."
            cond = util.condition("Progressing", "False", "ProgressDeadlineExceeded", message, now)
            return util.set_condition(conditions, cond)
        return conditions

    def _timed_out(self, deployment: Obj, current: Obj | None) -> bool:
        if current is None or current.get("reason") == "NewReplicaSetAvailable":
            return False
        if current.get("reason") == "ProgressDeadlineExceeded":
            return True
        since = util.parse_time(current.get("lastUpdateTime"))
        elapsed = (self.clock.now() - since).total_seconds() if since else 0.0
        return elapsed > _deadline(deployment)

    def _deadline_check(self, deployment: Obj, status: Obj) -> float | None:
        """requeueStuckDeployment: when to look again for a rollout that makes no progress."""
        current = util.get_condition(status, "Progressing")
        if current is None or util.complete(deployment, status):
            return None
        if current.get("reason") == "ProgressDeadlineExceeded":
            return None
        since = util.parse_time(current.get("lastUpdateTime"))
        elapsed = (self.clock.now() - since).total_seconds() if since else 0.0
        return max(1.0, _deadline(deployment) - elapsed + 1.0)


_FINISHED = ("Succeeded", "Failed")


def _subject(deployment: Obj, new_rs: Obj | None) -> str:
    """Who the Progressing messages talk about: the new set, else the Deployment."""
    if new_rs is not None:
        return f'ReplicaSet "{util.name_of(new_rs)}"'
    return f'Deployment "{deployment["metadata"]["name"]}"'


def _uid(obj: Obj) -> str:
    return str(obj["metadata"]["uid"])


def _writable(rs: Obj) -> Obj:
    updated = copy.deepcopy(rs)
    updated.setdefault("apiVersion", RS_API)
    updated.setdefault("kind", "ReplicaSet")
    return updated


def _strategy(deployment: Obj) -> str:
    strategy = (deployment.get("spec") or {}).get("strategy") or {}
    return str(strategy.get("type") or "RollingUpdate")


def _deadline(deployment: Obj) -> int:
    spec = deployment.get("spec") or {}
    value = spec.get("progressDeadlineSeconds")
    return util.DEFAULT_PROGRESS_DEADLINE if value is None else int(value)


def _has_deadline(deployment: Obj) -> bool:
    return _deadline(deployment) != NO_DEADLINE


def _available(deployment: Obj, status: Obj, now: str) -> Obj:
    _, max_unavailable = util.surge_and_unavailable(deployment)
    if status["availableReplicas"] >= util.replicas(deployment) - max_unavailable:
        message = "Deployment has minimum availability."
        return util.condition("Available", "True", "MinimumReplicasAvailable", message, now)
    message = "Deployment does not have minimum availability."
    return util.condition("Available", "False", "MinimumReplicasUnavailable", message, now)


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
