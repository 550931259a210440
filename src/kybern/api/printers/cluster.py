"""Cluster policy kinds: RoleBindings and ClusterRoleBindings (rbac.authorization.k8s.io),
PodDisruptionBudgets (policy), PriorityClasses (scheduling.k8s.io), Leases
(coordination.k8s.io). Roles and ClusterRoles have no printer in Kubernetes: they get the
default NAME / CREATED AT table (see ``registry``)."""

from __future__ import annotations

from typing import Any

from kybern.api.printers import base
from kybern.api.printers.base import AGE, NAME, Cell, Column, Obj, Printer

_PC = "io.k8s.api.scheduling.v1.PriorityClass"


def _binding(obj: Obj, now: float) -> list[Cell]:
    role = base.as_map(obj.get("roleRef"))
    users, groups, service_accounts = subjects(obj.get("subjects"))
    return [
        base.name(obj),
        f"{base.text(role.get('kind'))}/{base.text(role.get('name'))}",
        base.age(obj, now),
        ", ".join(users),
        ", ".join(groups),
        ", ".join(service_accounts),
    ]


def subjects(value: Any) -> tuple[list[str], list[str], list[str]]:
    """rbac.SubjectsStrings: users, groups and ``namespace/name`` service accounts."""
    users, groups, service_accounts = [], [], []
    for subject in base.as_list(value):
        kind = base.get(subject, "kind")
        subject_name = base.text(base.get(subject, "name"))
        if kind == "ServiceAccount":
            service_accounts.append(f"{base.text(base.get(subject, 'namespace'))}/{subject_name}")
        elif kind == "User":
            users.append(subject_name)
        elif kind == "Group":
            groups.append(subject_name)
    return users, groups, service_accounts


def _binding_columns(what: str, definition: str) -> tuple[Column, ...]:
    return (
        NAME,
        Column("Role", doc=(definition, "roleRef")),
        AGE,
        Column("Users", doc=f"Users in the {what}", priority=1),
        Column("Groups", doc=f"Groups in the {what}", priority=1),
        Column("ServiceAccounts", doc=f"ServiceAccounts in the {what}", priority=1),
    )


ROLE_BINDING = Printer(
    _binding_columns("roleBinding", "io.k8s.api.rbac.v1.RoleBinding"),
    _binding,
)
CLUSTER_ROLE_BINDING = Printer(
    _binding_columns("clusterRoleBinding", "io.k8s.api.rbac.v1.ClusterRoleBinding"),
    _binding,
)


def _pod_disruption_budget(obj: Obj, now: float) -> list[Cell]:
    spec = base.as_map(obj.get("spec"))
    min_available = spec.get("minAvailable")
    max_unavailable = spec.get("maxUnavailable")
    return [
        base.name(obj),
        "N/A" if min_available is None else base.int_or_string(min_available),
        "N/A" if max_unavailable is None else base.int_or_string(max_unavailable),
        base.as_int(base.get(obj, "status", "disruptionsAllowed")),
        base.age(obj, now),
    ]


POD_DISRUPTION_BUDGET = Printer(
    (
        NAME,
        Column("Min Available", doc="The minimum number of pods that must be available."),
        Column("Max Unavailable", doc="The maximum number of pods that may be unavailable."),
        Column(
            "Allowed Disruptions",
            "integer",
            doc="Calculated number of pods that may be disrupted at this time.",
        ),
        AGE,
    ),
    _pod_disruption_budget,
)


def _priority_class(obj: Obj, now: float) -> list[Cell]:
    global_default = obj.get("globalDefault")
    return [
        base.name(obj),
        base.as_int(obj.get("value")),
        global_default if isinstance(global_default, bool) else False,
        base.age(obj, now),
        base.text(obj.get("preemptionPolicy")),
    ]


PRIORITY_CLASS = Printer(
    (
        NAME,
        Column("Value", "integer", doc=(_PC, "value")),
        Column("Global-Default", "boolean", doc=(_PC, "globalDefault")),
        AGE,
        Column("PreemptionPolicy", doc=(_PC, "preemptionPolicy")),
    ),
    _priority_class,
)


def _lease(obj: Obj, now: float) -> list[Cell]:
    holder = base.text(base.get(obj, "spec", "holderIdentity"))
    return [base.name(obj), holder, base.age(obj, now)]


LEASE = Printer(
    (NAME, Column("Holder", doc=("io.k8s.api.coordination.v1.LeaseSpec", "holderIdentity")), AGE),
    _lease,
)
