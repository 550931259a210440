"""Pure helpers of the Deployment controller (Kubernetes' ``deployment/util``): the
pod-template-hash, revisions, maxSurge/maxUnavailable resolution, the rolling-update
arithmetic, status and conditions. No I/O: everything here is tested directly."""

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
    return "".join(_SAFE_ALPHABET[int(c, 16) % len(_SAFE_ALPHABET)] for c in f"{fnv32a(data):x}")


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
        return 0, replicas(deployment)
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
    current = total_spec(all_sets)
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
    available = total_status(all_sets, "availableReplicas")
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
    """Replace the condition of that type, keeping lastTransitionTime if status is the same
    (and lastUpdateTime too when nothing changed at all)."""
    out = []
    for cond in conditions:
        if cond.get("type") != new["type"]:
            out.append(cond)
            continue
        if cond.get("status") == new["status"]:
            new = dict(new, lastTransitionTime=cond.get("lastTransitionTime"))
            if cond.get("reason") == new["reason"] and cond.get("message") == new["message"]:
                new = dict(new, lastUpdateTime=cond.get("lastUpdateTime"))
    out.append(new)
    return out


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
