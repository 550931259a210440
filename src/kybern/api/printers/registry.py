"""Which printer prints which kind, keyed by (API group, kind) like Kubernetes' per-type
print handlers. Kinds without a printer (Roles, ClusterRoles, LimitRanges,
CustomResourceDefinitions) get the API server's default table: NAME and CREATED AT (an RFC
3339 date), exactly as ``rest.NewDefaultTableConvertor`` prints them."""

from __future__ import annotations

import datetime

from kybern.api.printers import (
    apps,
    autoscaling,
    base,
    batch,
    cluster,
    core,
    events,
    network,
    pods,
    storage,
)
from kybern.api.printers.base import Cell, Column, Obj, Printer

_RBAC = "rbac.authorization.k8s.io"

PRINTERS: dict[tuple[str, str], Printer] = {
    ("", "Pod"): Printer(pods.COLUMNS, pods.row, pods.conditions),
    ("", "PodTemplate"): core.POD_TEMPLATE,
    ("", "ReplicationController"): apps.REPLICATION_CONTROLLER,
    ("", "Service"): network.SERVICE,
    ("", "Endpoints"): network.ENDPOINTS,
    ("", "Node"): core.NODE,
    ("", "Event"): events.EVENT,
    ("", "Namespace"): core.NAMESPACE,
    ("", "Secret"): core.SECRET,
    ("", "ServiceAccount"): core.SERVICE_ACCOUNT,
    ("", "PersistentVolume"): storage.PERSISTENT_VOLUME,
    ("", "PersistentVolumeClaim"): storage.PERSISTENT_VOLUME_CLAIM,
    ("", "ConfigMap"): core.CONFIG_MAP,
    ("", "ResourceQuota"): core.RESOURCE_QUOTA,
    ("apps", "Deployment"): apps.DEPLOYMENT,
    ("apps", "ReplicaSet"): apps.REPLICA_SET,
    ("apps", "StatefulSet"): apps.STATEFUL_SET,
    ("apps", "DaemonSet"): apps.DAEMON_SET,
    ("apps", "ControllerRevision"): apps.CONTROLLER_REVISION,
    ("events.k8s.io", "Event"): events.EVENT,
    ("autoscaling", "HorizontalPodAutoscaler"): autoscaling.HORIZONTAL_POD_AUTOSCALER,
    ("batch", "Job"): batch.JOB,
    ("batch", "CronJob"): batch.CRON_JOB,
    ("networking.k8s.io", "Ingress"): network.INGRESS,
    ("networking.k8s.io", "IngressClass"): network.INGRESS_CLASS,
    ("networking.k8s.io", "NetworkPolicy"): network.NETWORK_POLICY,
    ("discovery.k8s.io", "EndpointSlice"): network.ENDPOINT_SLICE,
    ("policy", "PodDisruptionBudget"): cluster.POD_DISRUPTION_BUDGET,
    (_RBAC, "RoleBinding"): cluster.ROLE_BINDING,
    (_RBAC, "ClusterRoleBinding"): cluster.CLUSTER_ROLE_BINDING,
    ("storage.k8s.io", "StorageClass"): storage.STORAGE_CLASS,
    ("scheduling.k8s.io", "PriorityClass"): cluster.PRIORITY_CLASS,
    ("coordination.k8s.io", "Lease"): cluster.LEASE,
}


def _created_at(obj: Obj, now: float) -> list[Cell]:
    moment = base.timestamp(base.get(obj, "metadata", "creationTimestamp"))
    shown = "0001-01-01T00:00:00Z"  # Go's zero time, as the default convertor prints it
    if moment is not None:
        utc = datetime.datetime.fromtimestamp(moment, tz=datetime.UTC)
        shown = utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    return [base.name(obj), shown]


DEFAULT = Printer(
    (
        base.NAME,
        Column("Created At", "date", doc=(base.META, "creationTimestamp")),
    ),
    _created_at,
)


def printer_for(group: str, kind: str) -> Printer:
    """The printer of a kind; the default NAME / CREATED AT one when it has none."""
    return PRINTERS.get((group, kind), DEFAULT)
