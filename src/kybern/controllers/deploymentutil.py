"""Pure helpers of the Deployment controller (Kubernetes' ``deployment/util``): the
pod-template-hash, revisions and the annotations a new ReplicaSet carries, maxSurge/
maxUnavailable resolution, the rolling-update and proportional-scaling arithmetic, status
and conditions. No I/O: everything here is tested directly.

The pod-template-hash has Kubernetes' shape (FNV-32a, the decimal value spelled with
``SafeEncodeString``'s alphabet) but not its value: Kubernetes hashes a ``spew`` dump of the
Go struct, which a JSON dict cannot reproduce; ours hashes the canonical JSON instead.
It is stable across restarts, which is what matters for finding a template's ReplicaSet."""

from __future__ import annotations

import copy
import datetime
import math
from collections.abc import Iterable
from typing import Any

import orjson

Obj = dict[str, Any]

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
# Deployment annotations that describe the Deployment itself, never copied to its ReplicaSets
# (and kept on the Deployment when kubectl rolls back: annotationsToSkip).
SKIPPED_ANNOTATIONS = frozenset(
    {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO}
)
MAX_HISTORY_CHARS = 2000  # --deployment-controller's default revision-history length
DEFAULT_HISTORY_LIMIT = 10
DEFAULT_PROGRESS_DEADLINE = 600
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' rand.SafeEncodeString


def fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def template_hash(template: Obj, collision_count: int = 0) -> str:
    """A short, stable, label-safe hash of a pod template (plus the collision count)."""
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += str(collision_count).encode()
    return safe_encode(str(fnv32a(data)))


def safe_encode(text: str) -> str:
    """Kubernetes' rand.SafeEncodeString: each byte picks a letter (no vowels, no 0/1/3)."""
    return "".join(_SAFE_ALPHABET[byte % len(_SAFE_ALPHABET)] for byte in text.encode())


def without_hash(template: Obj) -> Obj:
    out = copy.deepcopy(template)
    labels = (out.get("metadata") or {}).get("labels") or {}
    labels.pop(HASH_LABEL, None)
    return out


def same_template(a: Obj, b: Obj) -> bool:
    """EqualIgnoreHash: equal pod templates, pod-template-hash label aside."""
    return _canonical(without_hash(a)) == _canonical(without_hash(b))


def _canonical(obj: Obj) -> bytes:
    meta = obj.get("metadata") or {}
    trimmed = {k: v for k, v in meta.items() if v not in (None, {}, [])}
    return orjson.dumps(dict(obj, metadata=trimmed), option=orjson.OPT_SORT_KEYS)


def revision(obj: Obj) -> int:
    text = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, "")
    return int(text) if str(text).isdigit() else 0


def replicas(obj: Obj) -> int:
    return int((obj.get("spec") or {}).get("replicas", 1))


def status_of(obj: Obj, field: str) -> int:
    return int((obj.get("status") or {}).get(field) or 0)


def total_spec(sets: Iterable[Obj]) -> int:
    return sum(replicas(rs) for rs in sets)


def total_status(sets: Iterable[Obj], field: str) -> int:
    return sum(status_of(rs, field) for rs in sets)


def resolve(value: Any, total: int, *, round_up: bool) -> int:
    """An IntOrString (``3`` or ``"25%"``) against ``total``."""
    if value is None:
        value = "25%"
    if isinstance(value, str) and value.endswith("%"):
        scaled = int(value[:-1]) * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return int(value)


def surge_and_unavailable(deployment: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable); both 0 would deadlock, so unavailable becomes 1."""
    spec = deployment.get("spec") or {}
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, 0  # MaxSurge and MaxUnavailable are RollingUpdate notions
    rolling = strategy.get("rollingUpdate") or {}
    want = replicas(deployment)
    surge = resolve(rolling.get("maxSurge"), want, round_up=True)
    unavailable = resolve(rolling.get("maxUnavailable"), want, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, want)


def new_rs_replicas(deployment: Obj, all_sets: list[Obj], new_rs: Obj) -> int:
    """How big the new ReplicaSet may grow now (NewRSNewReplicas for RollingUpdate)."""
    want = replicas(deployment)
    surge, _ = surge_and_unavailable(deployment)
    # Pods an old set still has beyond its size count too, until its controller has
    # started terminating them: the surge holds for pods, not only for sizes.
    current = sum(max(replicas(rs), status_of(rs, "replicas")) for rs in all_sets)
    if current >= want + surge:
        return replicas(new_rs)
    grow = min(want + surge - current, want - replicas(new_rs))
    return replicas(new_rs) + max(0, grow)


def creation_order(sets: Iterable[Obj]) -> list[Obj]:
    return sorted(
        sets,
        key=lambda rs: (rs["metadata"].get("creationTimestamp") or "", rs["metadata"]["name"]),
    )


def scale_down_plan(
    deployment: Obj, all_sets: list[Obj], old_sets: list[Obj], new_rs: Obj
) -> dict[str, int]:
    """Old ReplicaSet name -> its new size, keeping ``replicas - maxUnavailable`` available
    (reconcileOldReplicaSets: unhealthy replicas first, then oldest sets first)."""
    want = replicas(deployment)
    _, max_unavailable = surge_and_unavailable(deployment)
    min_available = want - max_unavailable
    new_unavailable = replicas(new_rs) - status_of(new_rs, "availableReplicas")
    all_pods = total_spec(all_sets)
    budget = all_pods - min_available - new_unavailable
    plan: dict[str, int] = {}
    if budget <= 0:
        return plan
    for rs in creation_order(old_sets):  # unhealthy first: they count for nothing
        size = replicas(rs)
        unhealthy = max(0, size - status_of(rs, "availableReplicas"))
        cut = min(budget, unhealthy)
        if cut > 0:
            plan[rs["metadata"]["name"]] = size - cut
            budget -= cut
    # A set just shrunk still reports its old availability until its controller syncs:
    # never count more available pods than a set may keep.
    available = sum(min(status_of(rs, "availableReplicas"), replicas(rs)) for rs in all_sets)
    spare = available - min_available
    for rs in creation_order(old_sets):
        if spare <= 0:
            break
        size = plan.get(rs["metadata"]["name"], replicas(rs))
        cut = min(size, spare)
        if cut > 0:
            plan[rs["metadata"]["name"]] = size - cut
            spare -= cut
    return plan


def new_rs_annotations(deployment: Obj, rs: Obj | None, new_revision: int) -> Obj:
    """The annotations the new ReplicaSet should carry (SetNewReplicaSetAnnotations): the
    Deployment's own (change-cause and the like), its revision raised to ``new_revision``,
    and on a rollback the revisions it had before in ``revision-history``."""
    current = dict(((rs or {}).get("metadata") or {}).get("annotations") or {})
    out = dict(current)
    source = (deployment["metadata"].get("annotations")) or {}
    out.update({k: v for k, v in source.items() if k not in SKIPPED_ANNOTATIONS})
    old = current.get(REVISION)
    old_number = int(old) if old and old.isdigit() else 0
    if old_number < new_revision:
        out[REVISION] = str(new_revision)
        if old:
            out[REVISION_HISTORY] = _append_history(current.get(REVISION_HISTORY, ""), old)
    if rs is None:
        want = replicas(deployment)
        out[DESIRED_REPLICAS] = str(want)
        out[MAX_REPLICAS] = str(want + surge_and_unavailable(deployment)[0])
    return out


def _append_history(history: str, revision_: str) -> str:
    """Append to the comma-separated history, dropping the oldest beyond MAX_HISTORY_CHARS."""
    entries = [e for e in history.split(",") if e]
    while entries and len(",".join([*entries, revision_])) > MAX_HISTORY_CHARS:
        entries.pop(0)
    return ",".join([*entries, revision_])


def active(sets: Iterable[Obj]) -> list[Obj]:
    return [rs for rs in sets if replicas(rs) > 0]


def desired_annotation(rs: Obj) -> int | None:
    text = (rs["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS, "")
    return int(text) if str(text).isdigit() else None


def scaling_event(deployment: Obj, sets: Iterable[Obj]) -> bool:
    """isScalingEvent: an active set was sized for another ``spec.replicas``."""
    want = replicas(deployment)
    for rs in active(sets):
        desired = desired_annotation(rs)
        if desired is not None and desired != want:
            return True
    return False


def active_or_latest(new_rs: Obj | None, old_sets: list[Obj]) -> Obj | None:
    """FindActiveOrLatest: the one active set, else the newest when none is active."""
    all_sets = [*old_sets, *([new_rs] if new_rs else [])]
    live = active(all_sets)
    if len(live) == 1:
        return live[0]
    if live or not all_sets:
        return None
    return new_rs or creation_order(old_sets)[-1]


def saturated(deployment: Obj, rs: Obj | None) -> bool:
    want = replicas(deployment)
    return (
        rs is not None
        and desired_annotation(rs) == want
        and replicas(rs) == want
        and status_of(rs, "availableReplicas") == want
    )


def proportional_sizes(deployment: Obj, sets: list[Obj]) -> dict[str, int]:
    """Active set name -> size after a resize mid-rollout (DeploymentController.scale):
    the change is shared out in proportion to each set's size, biggest first, leftovers to
    the biggest; ties go to newer sets when growing and to older ones when shrinking."""
    live = active(sets)
    want = replicas(deployment)
    allowed = want + surge_and_unavailable(deployment)[0] if want > 0 else 0
    to_add = allowed - total_spec(live)
    newest_first = list(reversed(creation_order(live)))
    order = newest_first if to_add > 0 else creation_order(live)
    order.sort(key=replicas, reverse=True)  # stable: keeps the tie order
    sizes = {name_of(rs): replicas(rs) for rs in order}
    added = 0
    for rs in order:
        if to_add == 0 or added == to_add:
            break
        share = _fraction(deployment, rs, allowed)
        step = min(share, to_add - added) if to_add > 0 else max(share, to_add - added)
        sizes[name_of(rs)] += step
        added += step
    if order and to_add:
        first = name_of(order[0])
        sizes[first] = max(0, sizes[first] + to_add - added)
    return sizes


def _fraction(deployment: Obj, rs: Obj, allowed: int) -> int:
    """getReplicaSetFraction: this set's share of the new maximum, minus its size."""
    if replicas(deployment) == 0:
        return -replicas(rs)
    text = (rs["metadata"].get("annotations") or {}).get(MAX_REPLICAS, "")
    before = int(text) if str(text).isdigit() else 0
    if before == 0:
        before = allowed
    return _round_half_away(replicas(rs) * allowed / before) - replicas(rs)


def _round_half_away(value: float) -> int:
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)


def name_of(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def complete(deployment: Obj, status: Obj) -> bool:
    want = replicas(deployment)
    return (
        status.get("updatedReplicas") == want
        and status.get("replicas") == want
        and status.get("availableReplicas") == want
        and int(status.get("observedGeneration") or 0)
        >= int(deployment["metadata"].get("generation") or 0)
    )


def condition(type_: str, status: str, reason: str, message: str, now: str) -> Obj:
    return {
        "type": type_,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def set_condition(conditions: list[Obj], new: Obj) -> list[Obj]:
    """SetDeploymentCondition: a condition with the same status and reason is left as it
    is; otherwise replaced, keeping lastTransitionTime when the status is unchanged."""
    out = []
    for cond in conditions:
        if cond.get("type") != new["type"]:
            out.append(cond)
            continue
        if cond.get("status") == new["status"]:
            if cond.get("reason") == new["reason"]:
                return list(conditions)
            new = dict(new, lastTransitionTime=cond.get("lastTransitionTime"))
    out.append(new)
    return out


def replace_condition(conditions: list[Obj], new: Obj) -> list[Obj]:
    """Progressing on progress: always a fresh lastUpdateTime, the transition time kept
    while the status stays True."""
    current = next((c for c in conditions if c.get("type") == new["type"]), None)
    if current is not None and current.get("status") == "True" == new["status"]:
        new = dict(new, lastTransitionTime=current.get("lastTransitionTime"))
    return [*(c for c in conditions if c.get("type") != new["type"]), new]


def get_condition(status: Obj, type_: str) -> Obj | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
