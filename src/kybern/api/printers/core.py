"""core/v1 kinds other than pods, services and controllers: Namespaces, Nodes, ConfigMaps,
Secrets, ServiceAccounts, ResourceQuotas, PodTemplates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kybern.api.printers import base
from kybern.api.printers.base import AGE, NAME, Cell, Column, Obj, Printer

_NODE_INFO = "io.k8s.api.core.v1.NodeSystemInfo"
_NODE_STATUS = "io.k8s.api.core.v1.NodeStatus"
_ROLE_PREFIX = "node-role.kubernetes.io/"
_ROLE_LABEL = "kubernetes.io/role"


def _namespace(obj: Obj, now: float) -> list[Cell]:
    return [base.name(obj), base.text(base.get(obj, "status", "phase")), base.age(obj, now)]


NAMESPACE = Printer(
    (NAME, Column("Status", doc="The status of the namespace"), AGE),
    _namespace,
)


# -- Node ------------------------------------------------------------------------------------


def _node(obj: Obj, now: float) -> list[Cell]:
    info = base.as_map(base.get(obj, "status", "nodeInfo"))
    roles = ",".join(node_roles(base.get(obj, "metadata", "labels")))
    return [
        base.name(obj),
        _node_status(obj),
        roles or "<none>",
        base.age(obj, now),
        base.text(info.get("kubeletVersion")),
        _address(obj, "InternalIP"),
        _address(obj, "ExternalIP"),
        base.text(info.get("osImage")) or "<unknown>",
        base.text(info.get("kernelVersion")) or "<unknown>",
        base.text(info.get("containerRuntimeVersion")) or "<unknown>",
    ]


def _node_status(obj: Obj) -> str:
    status = []
    for cond in base.as_list(base.get(obj, "status", "conditions")):
        if base.get(cond, "type") == "Ready":
            status = ["Ready" if base.get(cond, "status") == "True" else "NotReady"]
    if not status:
        status = ["Unknown"]
    if base.get(obj, "spec", "unschedulable") is True:
        status.append("SchedulingDisabled")
    return ",".join(status)


def node_roles(labels: Any) -> list[str]:
    """Roles from ``node-role.kubernetes.io/<role>`` keys and ``kubernetes.io/role`` values."""
    roles = set()
    for key, value in base.as_map(labels).items():
        if key.startswith(_ROLE_PREFIX) and key[len(_ROLE_PREFIX) :]:
            roles.add(key[len(_ROLE_PREFIX) :])
        elif key == _ROLE_LABEL and value:
            roles.add(str(value))
    return sorted(roles)


def _address(obj: Obj, kind: str) -> str:
    for address in base.as_list(base.get(obj, "status", "addresses")):
        if base.get(address, "type") == kind:
            return base.text(base.get(address, "address"))
    return "<none>"


NODE = Printer(
    (
        NAME,
        Column("Status", doc="The status of the node"),
        Column("Roles", doc="The roles of the node"),
        AGE,
        Column("Version", doc=(_NODE_INFO, "kubeletVersion")),
        Column("Internal-IP", doc=(_NODE_STATUS, "addresses"), priority=1),
        Column("External-IP", doc=(_NODE_STATUS, "addresses"), priority=1),
        Column("OS-Image", doc=(_NODE_INFO, "osImage"), priority=1),
        Column("Kernel-Version", doc=(_NODE_INFO, "kernelVersion"), priority=1),
        Column("Container-Runtime", doc=(_NODE_INFO, "containerRuntimeVersion"), priority=1),
    ),
    _node,
)


# -- configuration ---------------------------------------------------------------------------


def _config_map(obj: Obj, now: float) -> list[Cell]:
    count = len(base.as_map(obj.get("data"))) + len(base.as_map(obj.get("binaryData")))
    return [base.name(obj), count, base.age(obj, now)]


CONFIG_MAP = Printer(
    (NAME, Column("Data", doc=("io.k8s.api.core.v1.ConfigMap", "data")), AGE),
    _config_map,
)


def _secret(obj: Obj, now: float) -> list[Cell]:
    data = len(base.as_map(obj.get("data")))
    return [base.name(obj), base.text(obj.get("type")), data, base.age(obj, now)]


SECRET = Printer(
    (
        NAME,
        Column("Type", doc=("io.k8s.api.core.v1.Secret", "type")),
        Column("Data", doc=("io.k8s.api.core.v1.Secret", "data")),
        AGE,
    ),
    _secret,
)


def _service_account(obj: Obj, now: float) -> list[Cell]:
    return [base.name(obj), len(base.as_list(obj.get("secrets"))), base.age(obj, now)]


SERVICE_ACCOUNT = Printer(
    (NAME, Column("Secrets", doc=("io.k8s.api.core.v1.ServiceAccount", "secrets")), AGE),
    _service_account,
)


# -- ResourceQuota, PodTemplate --------------------------------------------------------------


def _resource_quota(obj: Obj, now: float) -> list[Cell]:
    hard = base.as_map(base.get(obj, "status", "hard"))
    used = base.as_map(base.get(obj, "status", "used"))
    requests: list[str] = []
    limits: list[str] = []
    for resource in sorted(hard):
        shown = f"{resource}: {base.quantity_string(used.get(resource))}/{base.quantity_string(hard[resource])}"
        pieces = resource.split(".")
        (limits if len(pieces) > 1 and pieces[0] == "limits" else requests).append(shown)
    return [base.name(obj), ", ".join(requests), ", ".join(limits), base.age(obj, now)]


RESOURCE_QUOTA = Printer(
    (
        NAME,
        Column(
            "Request",
            doc="Request represents a minimum amount of cpu/memory that a container may consume.",
        ),
        Column(
            "Limit",
            doc="Limits control the maximum amount of cpu/memory that a container may use "
            "independent of contention on the node.",
        ),
        AGE,
    ),
    _resource_quota,
)


def _pod_template(obj: Obj, now: float) -> list[Cell]:
    template = base.as_map(obj.get("template"))
    names, images = base.containers_cells(base.get(template, "spec", "containers"))
    pod_labels: Mapping[str, Any] = base.as_map(base.get(template, "metadata", "labels"))
    return [base.name(obj), names, images, base.format_labels(pod_labels)]


POD_TEMPLATE = Printer(
    (
        NAME,
        Column("Containers", doc=base.CONTAINERS_DOC),
        Column("Images", doc=base.IMAGES_DOC),
        Column("Pod Labels", doc="The labels for the pod template."),
    ),
    _pod_template,
)
