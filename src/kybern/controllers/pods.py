"""Pod helpers shared by workload controllers: readiness, the ActivePods deletion order,
controller references, and expectations.

Expectations (client-go's ``ControllerExpectations``) stop a controller from creating or
deleting twice while its own writes have not reached the informer cache yet. Here they are
level-based: a create is observed once the pod informer has seen the create's resourceVersion
(resourceVersions are the store's global revision, delivered in order) or the pod itself; a
delete once the pod is gone from the cache or marked for deletion. Unobserved expectations
expire after ``EXPECTATIONS_TIMEOUT`` (Kubernetes' 5 minutes) so a lost event cannot wedge a
controller.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kybern import client as kclient

Obj = dict[str, Any]
EXPECTATIONS_TIMEOUT = 300.0
_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def is_active(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def ready_condition(pod: Obj) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return dict(cond)
    return None


def is_ready(pod: Obj) -> bool:
    cond = ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def is_available(pod: Obj, min_ready_seconds: int, now: datetime.datetime) -> bool:
    """Ready for at least ``min_ready_seconds`` (Kubernetes' IsPodAvailable)."""
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = parse_time((ready_condition(pod) or {}).get("lastTransitionTime"))
    return since is not None and since + datetime.timedelta(seconds=min_ready_seconds) <= now


def _restarts(pod: Obj) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


def deletion_rank(pod: Obj) -> tuple[Any, ...]:
    """Sort key: pods to delete first sort first (Kubernetes' ActivePods ordering):
    unscheduled, then Pending < Unknown < Running, not ready, ready for less time, more
    restarts, newer."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    ready = is_ready(pod)
    ready_since = (ready_condition(pod) or {}).get("lastTransitionTime") or "" if ready else ""
    created = pod["metadata"].get("creationTimestamp") or ""
    return (
        bool(spec.get("nodeName")),
        _PHASE_RANK.get(status.get("phase") or "Pending", 0),
        ready,
        _negate(ready_since),
        -_restarts(pod),
        _negate(created),
    )


def _negate(timestamp: str) -> tuple[int, ...]:
    """Later timestamps sort first (RFC 3339 strings compare in time order)."""
    return tuple(-ord(c) for c in timestamp)


def controller_ref(obj: Obj) -> Obj | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def owner_reference(owner: Obj) -> Obj:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


@dataclass
class _Pending:
    creates: dict[str, int] = field(default_factory=dict)  # pod name -> create resourceVersion
    deletes: dict[str, str] = field(default_factory=dict)  # pod key -> uid
    since: float = 0.0


class Expectations:
    """Per controller key: creates and deletes issued but not yet seen in the cache."""

    def __init__(
        self, pods: kclient.Store, observed_rv: Callable[[], str], clock: kclient.Clock
    ) -> None:
        self.pods = pods
        self.observed_rv = observed_rv
        self.clock = clock
        self._pending: dict[str, _Pending] = {}

    def created(self, key: str, pod: Obj) -> None:
        pending = self._entry(key)
        rv = str(pod["metadata"].get("resourceVersion") or "0")
        pending.creates[str(pod["metadata"]["name"])] = int(rv) if rv.isdigit() else 0

    def deleted(self, key: str, pod: Obj) -> None:
        self._entry(key).deletes[kclient.key_of(pod)] = str(pod["metadata"].get("uid"))

    def _entry(self, key: str) -> _Pending:
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = _Pending(since=self.clock.monotonic())
        return pending

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)

    def satisfied(self, key: str) -> bool:
        pending = self._pending.get(key)
        if pending is None:
            return True
        if self.clock.monotonic() - pending.since >= EXPECTATIONS_TIMEOUT:
            self.forget(key)
            return True
        namespace = key.rpartition("/")[0]
        observed = self.observed_rv()
        seen_rv = int(observed) if observed.isdigit() else 0
        pending.creates = {
            name: rv
            for name, rv in pending.creates.items()
            if rv > seen_rv and self.pods.get_by_name(name, namespace) is None
        }
        pending.deletes = {
            pod_key: uid
            for pod_key, uid in pending.deletes.items()
            if _still_there(self.pods.get(pod_key), uid)
        }
        if pending.creates or pending.deletes:
            return False
        self.forget(key)
        return True


def _still_there(pod: Obj | None, uid: str) -> bool:
    if pod is None or pod["metadata"].get("uid") != uid:
        return False
    return not pod["metadata"].get("deletionTimestamp")
