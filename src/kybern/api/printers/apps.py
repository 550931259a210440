"""apps/v1 and the core ReplicationController: Deployments, ReplicaSets, StatefulSets,
DaemonSets, ControllerRevisions and ReplicationControllers."""

from __future__ import annotations

from typing import Any

from kybern.api import errors
from kybern.api.printers import base
from kybern.api.printers.base import AGE, CONTAINERS, IMAGES, NAME, Cell, Column, Obj, Printer

_DEPLOY_SPEC = "io.k8s.api.apps.v1.DeploymentSpec"
_DEPLOY_STATUS = "io.k8s.api.apps.v1.DeploymentStatus"
_RS_SPEC = "io.k8s.api.apps.v1.ReplicaSetSpec"
_RS_STATUS = "io.k8s.api.apps.v1.ReplicaSetStatus"
_DS_STATUS = "io.k8s.api.apps.v1.DaemonSetStatus"
_RC_SPEC = "io.k8s.api.core.v1.ReplicationControllerSpec"
_RC_STATUS = "io.k8s.api.core.v1.ReplicationControllerStatus"
_READY_DOC = "Number of the pod with ready state"


def _template_cells(obj: Obj) -> tuple[str, str]:
    return base.containers_cells(base.get(obj, "spec", "template", "spec", "containers"))


def _replicas(obj: Obj) -> int:
    """spec.replicas, which defaulting sets to 1 when omitted."""
    return base.as_int(base.get(obj, "spec", "replicas"), 1)


def _status(obj: Obj, field: str) -> int:
    return base.as_int(base.get(obj, "status", field))


# -- Deployment ------------------------------------------------------------------------------


def _deployment(obj: Obj, now: float) -> list[Cell]:
    try:
        selector = base.selector_string(base.get(obj, "spec", "selector"))
    except errors.BadRequest:
        selector = "<invalid>"
    names, images = _template_cells(obj)
    ready = f"{_status(obj, 'readyReplicas')}/{_replicas(obj)}"
    return [
        base.name(obj),
        ready,
        _status(obj, "updatedReplicas"),
        _status(obj, "availableReplicas"),
        base.age(obj, now),
        names,
        images,
        selector,
    ]


DEPLOYMENT = Printer(
    (
        NAME,
        Column("Ready", doc=_READY_DOC),
        Column("Up-to-date", doc=(_DEPLOY_STATUS, "updatedReplicas")),
        Column("Available", doc=(_DEPLOY_STATUS, "availableReplicas")),
        AGE,
        CONTAINERS,
        IMAGES,
        Column("Selector", doc=(_DEPLOY_SPEC, "selector"), priority=1),
    ),
    _deployment,
)


# -- ReplicaSet and ReplicationController ---------------------------------------------------


def _replica_set(obj: Obj, now: float) -> list[Cell]:
    names, images = _template_cells(obj)
    return [
        *_desired_current_ready(obj, now),
        names,
        images,
        base.format_selector(base.get(obj, "spec", "selector")),
    ]


def _replication_controller(obj: Obj, now: float) -> list[Cell]:
    names, images = _template_cells(obj)
    return [
        *_desired_current_ready(obj, now),
        names,
        images,
        base.format_labels(base.get(obj, "spec", "selector")),
    ]


def _desired_current_ready(obj: Obj, now: float) -> list[Cell]:
    return [
        base.name(obj),
        _replicas(obj),
        _status(obj, "replicas"),
        _status(obj, "readyReplicas"),
        base.age(obj, now),
    ]


def _replica_columns(spec: str, status: str) -> tuple[Column, ...]:
    return (
        NAME,
        Column("Desired", "integer", doc=(spec, "replicas")),
        Column("Current", "integer", doc=(status, "replicas")),
        Column("Ready", "integer", doc=(status, "readyReplicas")),
        AGE,
        CONTAINERS,
        IMAGES,
        Column("Selector", doc=(spec, "selector"), priority=1),
    )


REPLICA_SET = Printer(_replica_columns(_RS_SPEC, _RS_STATUS), _replica_set)
REPLICATION_CONTROLLER = Printer(_replica_columns(_RC_SPEC, _RC_STATUS), _replication_controller)


# -- StatefulSet -----------------------------------------------------------------------------


def _stateful_set(obj: Obj, now: float) -> list[Cell]:
    names, images = _template_cells(obj)
    ready = f"{_status(obj, 'readyReplicas')}/{_replicas(obj)}"
    return [base.name(obj), ready, base.age(obj, now), names, images]


STATEFUL_SET = Printer(
    (NAME, Column("Ready", doc=_READY_DOC), AGE, CONTAINERS, IMAGES),
    _stateful_set,
)


# -- DaemonSet -------------------------------------------------------------------------------


def _daemon_set(obj: Obj, now: float) -> list[Cell]:
    names, images = _template_cells(obj)
    node_selector = base.get(obj, "spec", "template", "spec", "nodeSelector")
    return [
        base.name(obj),
        _status(obj, "desiredNumberScheduled"),
        _status(obj, "currentNumberScheduled"),
        _status(obj, "numberReady"),
        _status(obj, "updatedNumberScheduled"),
        _status(obj, "numberAvailable"),
        base.format_labels(node_selector),
        base.age(obj, now),
        names,
        images,
        base.format_selector(base.get(obj, "spec", "selector")),
    ]


DAEMON_SET = Printer(
    (
        NAME,
        Column("Desired", "integer", doc=(_DS_STATUS, "desiredNumberScheduled")),
        Column("Current", "integer", doc=(_DS_STATUS, "currentNumberScheduled")),
        Column("Ready", "integer", doc=(_DS_STATUS, "numberReady")),
        Column("Up-to-date", "integer", doc=(_DS_STATUS, "updatedNumberScheduled")),
        Column("Available", "integer", doc=(_DS_STATUS, "numberAvailable")),
        Column("Node Selector", doc=("io.k8s.api.core.v1.PodSpec", "nodeSelector")),
        AGE,
        CONTAINERS,
        IMAGES,
        Column("Selector", doc=("io.k8s.api.apps.v1.DaemonSetSpec", "selector"), priority=1),
    ),
    _daemon_set,
)


# -- ControllerRevision ----------------------------------------------------------------------


def _controller_revision(obj: Obj, now: float) -> list[Cell]:
    return [
        base.name(obj),
        _controller_name(obj),
        base.as_int(obj.get("revision")),
        base.age(obj, now),
    ]


def _controller_name(obj: Obj) -> str:
    """``daemonset.apps/name`` for the controlling owner, ``<none>`` without one."""
    for ref in base.as_list(base.get(obj, "metadata", "ownerReferences")):
        if base.get(ref, "controller") is True:
            return _kind_name(ref)
    return "<none>"


def _kind_name(ref: Any) -> str:
    api_version = base.text(base.get(ref, "apiVersion"))
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    kind = base.text(base.get(ref, "kind"))
    ref_name = base.text(base.get(ref, "name"))
    if not group and not kind:
        return ref_name
    group_kind = f"{kind}.{group}" if group else kind
    return f"{group_kind.lower()}/{ref_name}"


CONTROLLER_REVISION = Printer(
    (
        NAME,
        Column("Controller", doc="Controller of the object"),
        Column("Revision", doc=("io.k8s.api.apps.v1.ControllerRevision", "revision")),
        AGE,
    ),
    _controller_revision,
)
