"""Defaults for the smaller API groups, one short section each.

rbac, networking, discovery, scheduling, storage, apiextensions, admissionregistration, policy
and events.k8s.io. Sources: each group's ``pkg/apis/<group>/v1/defaults.go`` (and the
CRD strategy for ``status.storedVersions``). Groups with no defaults in Kubernetes
(coordination Leases, certificates, node) are absent on
purpose: ``default()`` leaves their objects unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kybern.api.defaulting._util import Obj, child, ensure, items, path, setdefault

RBAC_GROUP = "rbac.authorization.k8s.io"

# --- rbac.authorization.k8s.io ----------------------------------------------------------


def role_binding(obj: Obj, create: bool) -> None:
    role_ref = child(obj, "roleRef")
    if role_ref is not None and not role_ref.get("apiGroup"):
        role_ref["apiGroup"] = RBAC_GROUP
    for subject in items(obj, "subjects"):
        if subject.get("apiGroup"):
            continue
        if subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = RBAC_GROUP
        elif "apiGroup" in subject:
            # A ServiceAccount's apiGroup defaults to "", which Kubernetes omits (omitempty):
            # sending it back would make every `kubectl apply` see a change.
            del subject["apiGroup"]


# --- networking.k8s.io and discovery.k8s.io ---------------------------------------------


def network_policy(obj: Obj, create: bool) -> None:
    spec = child(obj, "spec")
    if spec is None:
        return
    for rule_key in ("ingress", "egress"):
        for rule in items(spec, rule_key):
            for port in items(rule, "ports"):
                setdefault(port, "protocol", "TCP")
    if not spec.get("policyTypes"):
        types = ["Ingress"]
        if spec.get("egress"):
            types.append("Egress")
        spec["policyTypes"] = types


def ingress_class(obj: Obj, create: bool) -> None:
    parameters = path(obj, "spec", "parameters")
    if parameters is not None:
        setdefault(parameters, "scope", "Cluster")


def endpoint_slice(obj: Obj, create: bool) -> None:
    for port in items(obj, "ports"):
        setdefault(port, "name", "")
        setdefault(port, "protocol", "TCP")


# --- scheduling.k8s.io and storage.k8s.io -----------------------------------------------


def priority_class(obj: Obj, create: bool) -> None:
    setdefault(obj, "preemptionPolicy", "PreemptLowerPriority")


def storage_class(obj: Obj, create: bool) -> None:
    setdefault(obj, "reclaimPolicy", "Delete")
    setdefault(obj, "volumeBindingMode", "Immediate")


_CSI_DRIVER_DEFAULTS: Obj = {
    "attachRequired": True,
    "podInfoOnMount": False,
    "storageCapacity": False,
    "fsGroupPolicy": "ReadWriteOnceWithFSType",
    "requiresRepublish": False,
    "seLinuxMount": False,
}


def csi_driver(obj: Obj, create: bool) -> None:
    spec = child(obj, "spec")
    if spec is None:
        return
    for field, value in _CSI_DRIVER_DEFAULTS.items():
        setdefault(spec, field, value)
    if not spec.get("volumeLifecycleModes"):
        spec["volumeLifecycleModes"] = ["Persistent"]


# --- apiextensions.k8s.io ---------------------------------------------------------------


def custom_resource_definition(obj: Obj, create: bool) -> None:
    spec = child(obj, "spec")
    if spec is not None:
        _crd_names(child(spec, "names"))
        conversion = ensure(spec, "conversion")
        if conversion is not None:
            setdefault(conversion, "strategy", "None")
            _service_port(path(conversion, "webhook", "clientConfig"))
    status = ensure(obj, "status")
    if status is not None:
        accepted = ensure(status, "acceptedNames")
        if accepted is not None:
            setdefault(accepted, "plural", "")
            setdefault(accepted, "kind", "")
        if create or status.get("storedVersions") is None:
            _stored_versions(spec, status)


def _crd_names(names: Obj | None) -> None:
    if names is None:
        return
    kind = names.get("kind")
    if isinstance(kind, str) and kind:
        if not names.get("singular"):
            names["singular"] = kind.lower()
        if not names.get("listKind"):
            names["listKind"] = kind + "List"


def _stored_versions(spec: Obj | None, status: Obj) -> None:
    storage = [v.get("name") for v in items(spec, "versions") if v.get("storage") is True]
    names = [name for name in storage if isinstance(name, str)]
    if status.get("storedVersions") is None:
        status["storedVersions"] = names[:1]
    elif isinstance(status["storedVersions"], list):
        for name in names[:1]:
            if name not in status["storedVersions"]:
                status["storedVersions"].append(name)


def _service_port(client_config: Obj | None) -> None:
    service = child(client_config, "service") if client_config is not None else None
    if service is not None:
        setdefault(service, "port", 443)


# --- admissionregistration.k8s.io -------------------------------------------------------


def _webhook(webhook: Obj, *, mutating: bool) -> None:
    setdefault(webhook, "failurePolicy", "Fail")
    setdefault(webhook, "matchPolicy", "Equivalent")
    setdefault(webhook, "namespaceSelector", {})
    setdefault(webhook, "objectSelector", {})
    setdefault(webhook, "timeoutSeconds", 10)
    if mutating:
        setdefault(webhook, "reinvocationPolicy", "Never")
    for rule in items(webhook, "rules"):
        setdefault(rule, "scope", "*")
    _service_port(child(webhook, "clientConfig"))


def validating_webhook_configuration(obj: Obj, create: bool) -> None:
    for webhook in items(obj, "webhooks"):
        _webhook(webhook, mutating=False)


def mutating_webhook_configuration(obj: Obj, create: bool) -> None:
    for webhook in items(obj, "webhooks"):
        _webhook(webhook, mutating=True)


def _match_resources(match: Obj | None) -> None:
    if match is None:
        return
    setdefault(match, "matchPolicy", "Equivalent")
    setdefault(match, "namespaceSelector", {})
    setdefault(match, "objectSelector", {})
    for key in ("resourceRules", "excludeResourceRules"):
        for rule in items(match, key):
            setdefault(rule, "scope", "*")


def validating_admission_policy(obj: Obj, create: bool) -> None:
    spec = child(obj, "spec")
    if spec is not None:
        setdefault(spec, "failurePolicy", "Fail")
        _match_resources(child(spec, "matchConstraints"))


def validating_admission_policy_binding(obj: Obj, create: bool) -> None:
    _match_resources(path(obj, "spec", "matchResources"))


# --- events.k8s.io ----------------------------------------------------------------------


def pod_disruption_budget(obj: Obj, create: bool) -> None:
    """No scheme defaults, but Go always serialises the four status counters (not omitempty):
    a new PDB reads them as 0, and the official clients require them."""
    status = ensure(obj, "status")
    if status is not None:
        for name in ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"):
            setdefault(status, name, 0)


def event(obj: Obj, create: bool) -> None:
    """Fields Go always serialises on events.k8s.io/v1 Events."""
    ensure(obj, "regarding")
    ensure(obj, "deprecatedSource")
    obj.setdefault("deprecatedFirstTimestamp", None)
    obj.setdefault("deprecatedLastTimestamp", None)


DEFAULTERS: dict[tuple[str, str], Callable[[dict[str, Any], bool], None]] = {
    (RBAC_GROUP, "RoleBinding"): role_binding,
    (RBAC_GROUP, "ClusterRoleBinding"): role_binding,
    ("networking.k8s.io", "NetworkPolicy"): network_policy,
    ("networking.k8s.io", "IngressClass"): ingress_class,
    ("discovery.k8s.io", "EndpointSlice"): endpoint_slice,
    ("scheduling.k8s.io", "PriorityClass"): priority_class,
    ("storage.k8s.io", "StorageClass"): storage_class,
    ("storage.k8s.io", "CSIDriver"): csi_driver,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): custom_resource_definition,
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): (
        validating_webhook_configuration
    ),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): (
        mutating_webhook_configuration
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): validating_admission_policy,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): (
        validating_admission_policy_binding
    ),
    ("events.k8s.io", "Event"): event,
    ("policy", "PodDisruptionBudget"): pod_disruption_budget,
}
