"""Defaults for the apps group: Deployment, ReplicaSet, StatefulSet, DaemonSet.

Source: Kubernetes' ``pkg/apis/apps/v1/defaults.go``; pod templates get the shared
pod-spec defaults. Status structs get the counters Go always serialises (``replicas``
and friends have no ``omitempty``), which the Python client requires.
"""

from __future__ import annotations

from kybern.api.defaulting import core, podspec
from kybern.api.defaulting._util import Obj, child, ensure, items, setdefault, setdefault_empty


def deployment(obj: Obj, create: bool) -> None:
    ensure(obj, "status")
    spec = child(obj, "spec")
    if spec is None:
        return
    setdefault(spec, "replicas", 1)
    strategy = ensure(spec, "strategy")
    if strategy is not None:
        setdefault_empty(strategy, "type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = ensure(strategy, "rollingUpdate")
            if rolling is not None:
                setdefault(rolling, "maxUnavailable", "25%")
                setdefault(rolling, "maxSurge", "25%")
    setdefault(spec, "revisionHistoryLimit", 10)
    setdefault(spec, "progressDeadlineSeconds", 600)
    podspec.pod_template(child(spec, "template"))


def replica_set(obj: Obj, create: bool) -> None:
    _status_counters(obj, ("replicas",))
    spec = child(obj, "spec")
    if spec is None:
        return
    setdefault(spec, "replicas", 1)
    podspec.pod_template(child(spec, "template"))


def stateful_set(obj: Obj, create: bool) -> None:
    _status_counters(obj, ("replicas", "availableReplicas"))
    spec = child(obj, "spec")
    if spec is None:
        return
    setdefault_empty(spec, "podManagementPolicy", "OrderedReady")
    _stateful_set_update_strategy(spec)
    retention = ensure(spec, "persistentVolumeClaimRetentionPolicy")
    if retention is not None:
        setdefault_empty(retention, "whenDeleted", "Retain")
        setdefault_empty(retention, "whenScaled", "Retain")
    setdefault(spec, "replicas", 1)
    setdefault(spec, "revisionHistoryLimit", 10)
    podspec.pod_template(child(spec, "template"))
    for claim in items(spec, "volumeClaimTemplates"):
        core.persistent_volume_claim(claim, create)


def _stateful_set_update_strategy(spec: Obj) -> None:
    strategy = ensure(spec, "updateStrategy")
    if strategy is None:
        return
    if strategy.get("type") in (None, ""):
        strategy["type"] = "RollingUpdate"
        setdefault(strategy, "rollingUpdate", {})
    rolling = child(strategy, "rollingUpdate")
    if strategy["type"] == "RollingUpdate" and rolling is not None:
        setdefault(rolling, "partition", 0)


def daemon_set(obj: Obj, create: bool) -> None:
    _status_counters(
        obj,
        ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady"),
    )
    spec = child(obj, "spec")
    if spec is None:
        return
    strategy = ensure(spec, "updateStrategy")
    if strategy is not None:
        setdefault_empty(strategy, "type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = ensure(strategy, "rollingUpdate")
            if rolling is not None:
                setdefault(rolling, "maxUnavailable", 1)
                setdefault(rolling, "maxSurge", 0)
    setdefault(spec, "revisionHistoryLimit", 10)
    podspec.pod_template(child(spec, "template"))


def _status_counters(obj: Obj, fields: tuple[str, ...]) -> None:
    status = ensure(obj, "status")
    if status is not None:
        for field in fields:
            setdefault(status, field, 0)


DEFAULTERS = {
    ("apps", "Deployment"): deployment,
    ("apps", "ReplicaSet"): replica_set,
    ("apps", "StatefulSet"): stateful_set,
    ("apps", "DaemonSet"): daemon_set,
}
