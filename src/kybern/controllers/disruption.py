"""PodDisruptionBudget status (Kubernetes' DisruptionController).

The Eviction API (``apiserver/handlers/eviction.py``) reads a budget's status to decide
whether a pod may go; this controller keeps that status true. One reconcile of
``namespace/name`` (Kubernetes' ``trySync``):

1. Pods: those of the budget's namespace its selector matches (policy/v1: ``{}`` matches
   every pod, a missing selector none).
2. ``expectedPods`` and ``desiredHealthy``: an integer ``minAvailable`` is desiredHealthy
   itself, over the matched pods' count. A percentage ``minAvailable`` and any
   ``maxUnavailable`` need the scale of the pods' controllers: the sum of the ``replicas`` of
   every controller owning a matched pod (a ReplicaSet owned by a Deployment counts as its
   Deployment; ReplicaSets, Deployments, StatefulSets and ReplicationControllers come from
   the informer caches, other kinds through their ``scale`` subresource). Percentages round
   up (``GetScaledValueFromIntOrPercent(..., roundUp=true)``); desiredHealthy is
   ``expected - maxUnavailable`` (at least 0). Pods without a controller are counted out and
   reported with an ``UnmanagedPods`` Warning Event.
3. ``disruptedPods``: the Eviction API's entries for pods not yet being deleted, dropped once
   older than 2 minutes (``DELETION_TIMEOUT``, on the controller's clock); the next expiry
   is a requeue.
4. ``currentHealthy``: Ready pods, not being deleted, not in ``disruptedPods``.
   ``disruptionsAllowed = currentHealthy - desiredHealthy`` (0 when negative or when no pod
   is expected), ``observedGeneration`` and the ``DisruptionAllowed`` condition
   (SufficientPods / InsufficientPods) written through ``/status`` when anything changed.

A failed computation (a pod whose controller cannot be found, a bad percentage) is the
fail-safe: ``disruptionsAllowed: 0`` and ``DisruptionAllowed=False`` with reason
``SyncFailed`` and the error as message; a write conflict is just retried.

Pods the Eviction API marked with ``DisruptionTarget=True`` but that were not deleted within
2 minutes get the condition reset to False (Kubernetes' stale pod disruption worker): keys
``pod:<namespace>/<name>`` share the controller's queue.
"""

from __future__ import annotations

import copy
import datetime
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kybern import client as kclient
from kybern.api import errors as api_errors
from kybern.api import labels
from kybern.client import store
from kybern.controllers import events, pods, runtime

log = logging.getLogger(__name__)
Obj = dict[str, Any]

DELETION_TIMEOUT = datetime.timedelta(minutes=2)  # Kubernetes' DeletionTimeout
STALE_DISRUPTION_TIMEOUT = datetime.timedelta(minutes=2)  # stalePodDisruptionTimeout
POD_KEY = "pod:"
CONDITION = "DisruptionAllowed"
UNMANAGED_MESSAGE = (
    "Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be "
    "unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may "
    'result in undefined behavior. To account for these pods please set ".spec.minAvailable" '
    "field of the PDB to an integer value."
)


class SyncError(Exception):
    """The budget's status cannot be computed (answered by the fail-safe)."""


# -- pure helpers ------------------------------------------------------------------------


def selector_of(pdb: Obj) -> labels.Selector:
    try:
        return labels.from_label_selector((pdb.get("spec") or {}).get("selector"))
    except api_errors.APIError as exc:
        raise SyncError(str(exc)) from None


def scaled_value(value: Any, total: int) -> int:
    """Kubernetes' GetScaledValueFromIntOrPercent with roundUp=true."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise SyncError(f"invalid value for IntOrString: invalid type: {type(value).__name__}")
    if not value.endswith("%"):
        raise SyncError(
            f"invalid value for IntOrString: invalid type: string is not a percentage: {value!r}"
        )
    try:
        percent = int(value[:-1])
    except ValueError:
        raise SyncError(f'invalid value for IntOrString: invalid value "{value}"') from None
    return math.ceil(percent * total / 100)


def is_being_deleted(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def live_disruptions(
    pdb: Obj, matched: Iterable[Obj], now: datetime.datetime
) -> tuple[dict[str, str], datetime.datetime | None]:
    """Kubernetes' buildDisruptedPodMap: the disruptedPods entries still pending and the
    moment the earliest of them expires (None: nothing to recheck)."""
    recorded = (pdb.get("status") or {}).get("disruptedPods") or {}
    kept: dict[str, str] = {}
    recheck: datetime.datetime | None = None
    for pod in matched:
        name = pod["metadata"]["name"]
        if is_being_deleted(pod) or name not in recorded:
            continue
        since = pods.parse_time(recorded[name])
        if since is None:
            continue
        expires = since + DELETION_TIMEOUT
        if expires < now:
            continue  # the eviction's delete never came: the pod counts again
        kept[name] = recorded[name]
        recheck = expires if recheck is None or expires < recheck else recheck
    return kept, recheck


def count_healthy(matched: Iterable[Obj], disrupted: dict[str, str], now: datetime.datetime) -> int:
    """Kubernetes' countHealthyPods."""
    healthy = 0
    for pod in matched:
        if is_being_deleted(pod):
            continue
        since = pods.parse_time(disrupted.get(pod["metadata"]["name"]))
        if since is not None and since + DELETION_TIMEOUT > now:
            continue
        if pods.is_ready(pod):
            healthy += 1
    return healthy


def set_condition(status: Obj, condition: Obj, now: str) -> None:
    """apimeta.SetStatusCondition: the transition time moves only when the status does."""
    conditions = [dict(c) for c in status.get("conditions") or []]
    for current in conditions:
        if current.get("type") == condition["type"]:
            if current.get("status") != condition["status"]:
                current["lastTransitionTime"] = now
            current.update(condition)
            break
    else:
        conditions.append({**condition, "lastTransitionTime": now})
    status["conditions"] = conditions


def allowed_condition(status: Obj) -> Obj:
    """The DisruptionAllowed condition the status' counters call for."""
    allowed = int(status.get("disruptionsAllowed") or 0) > 0
    return {
        "type": CONDITION,
        "status": "True" if allowed else "False",
        "reason": "SufficientPods" if allowed else "InsufficientPods",
        "message": "",
        "observedGeneration": int(status.get("observedGeneration") or 0),
    }


def conditions_up_to_date(pdb: Obj) -> bool:
    """Kubernetes' ConditionsAreUpToDate."""
    status = pdb.get("status") or {}
    found = next((c for c in status.get("conditions") or [] if c.get("type") == CONDITION), None)
    if found is None:
        return False
    if int(status.get("observedGeneration") or 0) != int(pdb["metadata"].get("generation") or 0):
        return False
    wanted = allowed_condition(status)
    return bool(found.get("status") == wanted["status"] and found.get("reason") == wanted["reason"])


@dataclass(frozen=True, slots=True)
class Counts:
    expected: int
    desired: int
    unmanaged: tuple[str, ...] = ()


# -- the controller ------------------------------------------------------------------------

ScaleFinder = Callable[[Obj, str], Awaitable[tuple[str, int] | None]]


class DisruptionController:
    name = "disruption"
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
        self.pdbs = informers.informer_for("policy/v1", "PodDisruptionBudget").store
        self.pods = informers.informer_for("v1", "Pod").store
        self.replicasets = informers.informer_for("apps/v1", "ReplicaSet").store
        self.deployments = informers.informer_for("apps/v1", "Deployment").store
        self.statefulsets = informers.informer_for("apps/v1", "StatefulSet").store
        self.rcs = informers.informer_for("v1", "ReplicationController").store
        self.recorder = events.Recorder(client, "controllermanager", clock=self.clock)

    def watches(self) -> Sequence[runtime.Watch]:
        return [
            runtime.Watch("policy/v1", "PodDisruptionBudget", runtime.own_key),
            runtime.Watch("v1", "Pod", self.pod_keys),
        ]

    def pod_keys(self, pod: Obj) -> Iterable[str]:
        """The budgets selecting the pod, and the pod itself when it carries a disruption
        target condition (for the stale-condition reset)."""
        meta = pod.get("metadata") or {}
        pod_labels = meta.get("labels") or {}
        keys = []
        for pdb in self.pdbs.list(meta.get("namespace", "")):
            try:
                if selector_of(pdb).matches(pod_labels):
                    keys.append(kclient.key_of(pdb))
            except SyncError:
                continue
        if _disruption_target(pod) is not None and not is_being_deleted(pod):
            keys.append(POD_KEY + kclient.key_of(pod))
        return keys

    async def reconcile(self, key: str) -> runtime.Result:
        if key.startswith(POD_KEY):
            return await self.reset_stale_condition(key[len(POD_KEY) :])
        pdb = self.pdbs.get(key)
        if pdb is None:
            return runtime.Result()
        try:
            return await self.sync(pdb)
        except SyncError as exc:
            log.warning("disruption: failed to sync PDB %s: %s", key, exc)
            await self.fail_safe(pdb, str(exc))
            return runtime.Result()

    # -- one budget ------------------------------------------------------------------------

    async def sync(self, pdb: Obj) -> runtime.Result:
        namespace = pdb["metadata"].get("namespace", "")
        selector = selector_of(pdb)
        matched = self.matched_pods(namespace, selector)
        if not matched:
            await self.recorder.event(pdb, events.NORMAL, "NoPods", "No matching pods found")
        counts = await self.counts(pdb, matched)
        if counts.unmanaged:
            text = UNMANAGED_MESSAGE.format(selector=_selector_text(pdb))
            await self.recorder.event(pdb, events.WARNING, "UnmanagedPods", text)
        now = self.clock.now()
        disrupted, recheck = live_disruptions(pdb, matched, now)
        healthy = count_healthy(matched, disrupted, now)
        await self.write_status(pdb, healthy, counts, disrupted)
        if recheck is None:
            return runtime.Result()
        return runtime.Result(requeue_after=max(0.0, (recheck - now).total_seconds()))

    def matched_pods(self, namespace: str, selector: labels.Selector) -> list[Obj]:
        """The namespace's pods the selector matches; from the label index when the selector
        pins one label value (the usual ``app=web``) rather than a namespace scan."""
        pinned = next(
            (r.key for r in selector.requirements if selector.requires_exact_match(r.key)), None
        )
        if pinned is None:
            pool = self.pods.list(namespace)
        else:
            value = selector.requires_exact_match(pinned)
            indexed = self.pods.by_index(store.LABEL, f"{pinned}={value}")
            pool = [p for p in indexed if p["metadata"].get("namespace") == namespace]
        return [p for p in pool if selector.matches(p["metadata"].get("labels"))]

    async def counts(self, pdb: Obj, matched: list[Obj]) -> Counts:
        """Kubernetes' getExpectedPodCount."""
        spec = pdb.get("spec") or {}
        max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
        if max_unavailable is not None:
            expected, unmanaged = await self.expected_scale(matched)
            desired = max(0, expected - scaled_value(max_unavailable, expected))
            return Counts(expected, desired, unmanaged)
        if isinstance(min_available, int) and not isinstance(min_available, bool):
            return Counts(len(matched), min_available)
        if min_available is not None:
            expected, unmanaged = await self.expected_scale(matched)
            return Counts(expected, scaled_value(min_available, expected), unmanaged)
        return Counts(0, 0)

    async def expected_scale(self, matched: list[Obj]) -> tuple[int, tuple[str, ...]]:
        """Kubernetes' getExpectedScale: the replicas of every controller owning a pod."""
        scales: dict[str, int] = {}
        seen: set[str] = set()
        unmanaged: list[str] = []
        for pod in matched:
            ref = pods.controller_ref(pod)
            if ref is None:
                unmanaged.append(pod["metadata"]["name"])
                continue
            if ref.get("uid") in seen:
                continue
            found = await self.find_scale(ref, pod["metadata"].get("namespace", ""))
            if found is None:
                raise SyncError(f'found no controllers for pod "{pod["metadata"]["name"]}"')
            seen.add(str(ref.get("uid")))
            scales[found[0]] = found[1]
        return sum(scales.values()), tuple(unmanaged)

    async def find_scale(self, ref: Obj, namespace: str) -> tuple[str, int] | None:
        """(controller uid, replicas) of the pod's controller, from the first finder that
        knows it (Kubernetes' finders, in its order)."""
        finders: list[ScaleFinder] = [
            self._replicaset,
            self._deployment,
            self._replication_controller,
            self._statefulset,
            self._scale_subresource,
        ]
        for finder in finders:
            found = await finder(ref, namespace)
            if found is not None:
                return found
        return None

    def _cached(self, cache: kclient.Store, ref: Obj, namespace: str, kind: str) -> Obj | None:
        if ref.get("kind") != kind or _group(ref) not in ("apps", "extensions"):
            return None
        obj = cache.get(f"{namespace}/{ref.get('name')}")
        if obj is None or obj["metadata"].get("uid") != ref.get("uid"):
            return None
        return obj

    async def _replicaset(self, ref: Obj, namespace: str) -> tuple[str, int] | None:
        rs = self._cached(self.replicasets, ref, namespace, "ReplicaSet")
        if rs is None:
            return None
        owner = pods.controller_ref(rs)
        if owner is not None and owner.get("kind") == "Deployment":
            return None  # counted as its Deployment
        return _uid_and_replicas(rs)

    async def _deployment(self, ref: Obj, namespace: str) -> tuple[str, int] | None:
        rs = self._cached(self.replicasets, ref, namespace, "ReplicaSet")
        owner = pods.controller_ref(rs) if rs is not None else None
        if owner is None:
            return None
        deployment = self._cached(self.deployments, owner, namespace, "Deployment")
        return _uid_and_replicas(deployment) if deployment is not None else None

    async def _statefulset(self, ref: Obj, namespace: str) -> tuple[str, int] | None:
        sts = self._cached(self.statefulsets, ref, namespace, "StatefulSet")
        return _uid_and_replicas(sts) if sts is not None else None

    async def _replication_controller(self, ref: Obj, namespace: str) -> tuple[str, int] | None:
        if ref.get("kind") != "ReplicationController" or _group(ref) != "":
            return None
        rc = self.rcs.get(f"{namespace}/{ref.get('name')}")
        if rc is None or rc["metadata"].get("uid") != ref.get("uid"):
            return None
        return _uid_and_replicas(rc)

    async def _scale_subresource(self, ref: Obj, namespace: str) -> tuple[str, int] | None:
        """Any other controller kind that serves ``scale`` (Kubernetes' getScaleController)."""
        api_version, kind = str(ref.get("apiVersion") or ""), str(ref.get("kind") or "")
        try:
            info = kclient.resource_info(api_version, kind)
        except kclient.ClientError:
            raise SyncError(f"{kind}.{_group(ref)} is not a known resource") from None
        if "scale" not in info.subresources:
            raise SyncError(f"{info.plural}.{info.group} does not implement the scale subresource")
        try:
            scale = await self.client.get_scale(
                api_version, kind, str(ref.get("name")), namespace=namespace
            )
        except kclient.NotFound:
            return None
        if scale["metadata"].get("uid") != ref.get("uid"):
            return None
        return str(ref.get("uid")), int((scale.get("spec") or {}).get("replicas") or 0)

    # -- writes ------------------------------------------------------------------------------

    async def write_status(
        self, pdb: Obj, healthy: int, counts: Counts, disrupted: dict[str, str]
    ) -> None:
        """Kubernetes' updatePdbStatus: only when something changed."""
        allowed = healthy - counts.desired
        if counts.expected <= 0 or allowed <= 0:
            allowed = 0
        status = pdb.get("status") or {}
        generation = int(pdb["metadata"].get("generation") or 0)
        wanted = {
            "currentHealthy": healthy,
            "desiredHealthy": counts.desired,
            "expectedPods": counts.expected,
            "disruptionsAllowed": allowed,
            "observedGeneration": generation,
        }
        same = all(status.get(k) == v for k, v in wanted.items())
        if same and (status.get("disruptedPods") or {}) == disrupted and conditions_up_to_date(pdb):
            return
        new = copy.deepcopy(pdb)
        new_status: Obj = {**wanted, "conditions": list(status.get("conditions") or [])}
        if disrupted:
            new_status["disruptedPods"] = disrupted
        set_condition(new_status, allowed_condition(new_status), self._stamp())
        new["status"] = new_status
        await self.client.update_status(_typed(new))

    async def fail_safe(self, pdb: Obj, message: str) -> None:
        """Kubernetes' failSafe: no disruption allowed while the status cannot be known."""
        new = copy.deepcopy(pdb)
        status = new.setdefault("status", {})
        status["disruptionsAllowed"] = 0
        condition = {
            "type": CONDITION,
            "status": "False",
            "reason": "SyncFailed",
            "message": message,
            "observedGeneration": int(status.get("observedGeneration") or 0),
        }
        set_condition(status, condition, self._stamp())
        if new != pdb:
            await self.client.update_status(_typed(new))

    def _stamp(self) -> str:
        return self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- stale DisruptionTarget conditions ---------------------------------------------------

    async def reset_stale_condition(self, key: str) -> runtime.Result:
        """A pod marked as a disruption target but still not deleted after 2 minutes gets
        the condition back to False (the eviction that marked it did not go through)."""
        pod = self.pods.get(key)
        if pod is None or is_being_deleted(pod):
            return runtime.Result()
        condition = _disruption_target(pod)
        if condition is None or condition.get("status") != "True":
            return runtime.Result()
        since = pods.parse_time(condition.get("lastTransitionTime"))
        now = self.clock.now()
        if since is not None and since + STALE_DISRUPTION_TIMEOUT > now:
            return runtime.Result(
                requeue_after=(since + STALE_DISRUPTION_TIMEOUT - now).total_seconds()
            )
        reset = {"type": "DisruptionTarget", "status": "False", "lastTransitionTime": self._stamp()}
        patch = {"status": {"conditions": [reset]}}
        namespace, _, name = key.rpartition("/")
        try:
            await self.client.patch(
                "v1",
                "Pod",
                name,
                patch,
                namespace=namespace,
                patch_type="strategic",
                subresource="status",
            )
        except kclient.NotFound:
            pass
        return runtime.Result()


def _disruption_target(pod: Obj) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "DisruptionTarget":
            return dict(cond)
    return None


def _group(ref: Obj) -> str:
    api_version = str(ref.get("apiVersion") or "")
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def _uid_and_replicas(obj: Obj) -> tuple[str, int]:
    replicas = (obj.get("spec") or {}).get("replicas")
    return str(obj["metadata"].get("uid")), 1 if replicas is None else int(replicas)


def _selector_text(pdb: Obj) -> str:
    selector = (pdb.get("spec") or {}).get("selector")
    return "nil" if selector is None else str(labels.from_label_selector(selector))


def _typed(pdb: Obj) -> Obj:
    pdb.setdefault("apiVersion", "policy/v1")
    pdb.setdefault("kind", "PodDisruptionBudget")
    return pdb
