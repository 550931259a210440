"""Per-kind rules of the smaller groups: autoscaling, networking, policy, rbac, storage,
scheduling, coordination, discovery, apiextensions, events, and core storage/quota kinds."""

from __future__ import annotations

import copy
from typing import Any

from kybern.api import kinds, validation

from .test_validation_valid import sample


def info(api_version: str, kind: str) -> kinds.ResourceInfo:
    found = kinds.for_kind(api_version, kind)
    assert found is not None
    return found


def create(kind_info: kinds.ResourceInfo, obj: dict[str, Any]) -> list[str]:
    return [c.message for c in validation.validate_create(kind_info, obj)]


def update(kind_info: kinds.ResourceInfo, new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    return [c.message for c in validation.validate_update(kind_info, new, old)]


HPA_V1 = info("autoscaling/v1", "HorizontalPodAutoscaler")
HPA_V2 = info("autoscaling/v2", "HorizontalPodAutoscaler")
INGRESS = info("networking.k8s.io/v1", "Ingress")
INGRESS_CLASS = info("networking.k8s.io/v1", "IngressClass")
NETWORK_POLICY = info("networking.k8s.io/v1", "NetworkPolicy")
PDB = info("policy/v1", "PodDisruptionBudget")
ROLE = info("rbac.authorization.k8s.io/v1", "Role")
CLUSTER_ROLE = info("rbac.authorization.k8s.io/v1", "ClusterRole")
ROLE_BINDING = info("rbac.authorization.k8s.io/v1", "RoleBinding")
CLUSTER_ROLE_BINDING = info("rbac.authorization.k8s.io/v1", "ClusterRoleBinding")
STORAGE_CLASS = info("storage.k8s.io/v1", "StorageClass")
PRIORITY_CLASS = info("scheduling.k8s.io/v1", "PriorityClass")
LEASE = info("coordination.k8s.io/v1", "Lease")
SLICE = info("discovery.k8s.io/v1", "EndpointSlice")
CRD = info("apiextensions.k8s.io/v1", "CustomResourceDefinition")
CORE_EVENT = info("v1", "Event")
NEW_EVENT = info("events.k8s.io/v1", "Event")
PV = info("v1", "PersistentVolume")
PVC = info("v1", "PersistentVolumeClaim")
LIMIT_RANGE = info("v1", "LimitRange")
QUOTA = info("v1", "ResourceQuota")


def test_hpa_replica_bounds() -> None:
    obj = sample(HPA_V2)
    obj["spec"].update(minReplicas=6, maxReplicas=5)
    assert create(HPA_V2, obj) == [
        "spec.maxReplicas: Invalid value: 5: must be greater than or equal to `minReplicas`"
    ]
    obj["spec"].update(minReplicas=0, maxReplicas=0)
    assert create(HPA_V2, obj) == [
        "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
        "spec.maxReplicas: Invalid value: 0: must be greater than 0",
    ]
    obj = sample(HPA_V1)
    obj["spec"]["targetCPUUtilizationPercentage"] = 0
    obj["spec"]["scaleTargetRef"]["name"] = ""
    assert create(HPA_V1, obj) == [
        "spec.scaleTargetRef.name: Required value",
        "spec.targetCPUUtilizationPercentage: Invalid value: 0: must be greater than 0",
    ]


def test_hpa_metrics() -> None:
    obj = sample(HPA_V2)
    obj["spec"]["metrics"] = [
        {"type": "Pods"},
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}},
        {"type": "Gauge"},
    ]
    assert create(HPA_V2, obj) == [
        "spec.metrics[0].pods: Forbidden: must populate information for the given metric source",
        "spec.metrics[1].resource.target.averageUtilization: Required value: "
        "must set averageUtilization when type is Utilization",
        'spec.metrics[2].type: Unsupported value: "Gauge": supported values: '
        '"ContainerResource", "External", "Object", "Pods", "Resource"',
    ]


def test_ingress() -> None:
    obj = sample(INGRESS)
    rule = obj["spec"]["rules"][0]
    rule["host"] = "10.0.0.1"
    path = rule["http"]["paths"][0]
    path["path"] = "relative"
    path["backend"] = {"service": {"name": "web", "port": {}}}
    assert create(INGRESS, obj) == [
        'spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address',
        'spec.rules[0].http.paths[0].path: Invalid value: "relative": must be an absolute path',
        "spec.rules[0].http.paths[0].backend.service.port: Invalid value: map[string]string{}: "
        "port name or number is required",
    ]
    obj["spec"] = {}
    assert create(INGRESS, obj) == [
        "spec.rules: Invalid value: []string{}: either `defaultBackend` or `rules` must be specified"
    ]


def test_ingress_class_controller() -> None:
    obj = sample(INGRESS_CLASS)
    obj["spec"]["controller"] = "nginx"
    assert create(INGRESS_CLASS, obj) == [
        'spec.controller: Invalid value: "nginx": must be a domain-prefixed path (such as "acme.io/foo")'
    ]
    old = sample(INGRESS_CLASS)
    new = copy.deepcopy(old)
    new["spec"]["controller"] = "other.io/x"
    assert update(INGRESS_CLASS, new, old) == [
        'spec.controller: Invalid value: "other.io/x": field is immutable'
    ]


def test_network_policy() -> None:
    obj = sample(NETWORK_POLICY)
    obj["spec"]["policyTypes"] = ["Inbound"]
    obj["spec"]["ingress"] = [
        {"from": [{}, {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}}]},
        {"ports": [{"port": "http", "endPort": 90}]},
    ]
    assert create(NETWORK_POLICY, obj) == [
        'spec.policyTypes[0]: Unsupported value: "Inbound": supported values: "Egress", "Ingress"',
        "spec.ingress[0].from[0]: Required value: must specify a peer",
        'spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: "11.0.0.0/16": '
        "must be a strict subset of `cidr`",
        "spec.ingress[1].ports[0].endPort: Forbidden: may not be specified when `port` is non-numeric",
    ]


def test_pdb() -> None:
    obj = sample(PDB)
    obj["spec"]["maxUnavailable"] = 1
    assert create(PDB, obj) == [
        'spec.minAvailable: Invalid value: "50%": minAvailable and maxUnavailable cannot be both set'
    ]
    obj["spec"] = {"minAvailable": "120%"}
    assert create(PDB, obj) == [
        'spec.minAvailable: Invalid value: "120%": must not be greater than 100%'
    ]


def test_rbac_rules() -> None:
    obj = sample(ROLE)
    obj["rules"] = [
        {"apiGroups": [""], "resources": ["pods"], "verbs": []},
        {"verbs": ["get"]},
        {"nonResourceURLs": ["/healthz"], "verbs": ["get"]},
    ]
    assert create(ROLE, obj) == [
        "rules[0].verbs: Required value: verbs must contain at least one value",
        "rules[1].apiGroups: Required value: resource rules must supply at least one api group",
        "rules[1].resources: Required value: resource rules must supply at least one resource",
        'rules[2].nonResourceURLs: Invalid value: []string{"/healthz"}: '
        "namespaced rules cannot apply to non-resource URLs",
    ]
    cluster = sample(CLUSTER_ROLE)
    cluster["aggregationRule"] = {"clusterRoleSelectors": []}
    assert create(CLUSTER_ROLE, cluster) == [
        "aggregationRule.clusterRoleSelectors: Required value: "
        "at least one clusterRoleSelector required if aggregationRule is non-nil"
    ]


def test_role_bindings() -> None:
    obj = sample(ROLE_BINDING)
    obj["roleRef"] = {"apiGroup": "rbac", "kind": "Pod", "name": ""}
    obj["subjects"] = [{"kind": "Robot", "name": "r2"}, {"kind": "ServiceAccount", "name": ""}]
    assert create(ROLE_BINDING, obj) == [
        'roleRef.apiGroup: Unsupported value: "rbac": supported values: "rbac.authorization.k8s.io"',
        'roleRef.kind: Unsupported value: "Pod": supported values: "Role", "ClusterRole"',
        "roleRef.name: Required value",
        'subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"',
        "subjects[1].name: Required value",
    ]
    cluster = sample(CLUSTER_ROLE_BINDING)
    del cluster["subjects"][0]["namespace"]
    cluster["roleRef"]["kind"] = "Role"
    assert create(CLUSTER_ROLE_BINDING, cluster) == [
        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
        "subjects[0].namespace: Required value",
    ]
    old = sample(ROLE_BINDING)
    new = copy.deepcopy(old)
    new["roleRef"]["name"] = "writer"
    assert update(ROLE_BINDING, new, old)[0].endswith("cannot change roleRef")


def test_storage_class() -> None:
    obj = sample(STORAGE_CLASS)
    obj["provisioner"] = ""
    obj["reclaimPolicy"] = "Keep"
    assert create(STORAGE_CLASS, obj) == [
        "provisioner: Required value",
        'reclaimPolicy: Unsupported value: "Keep": supported values: "Delete", "Retain"',
    ]
    old = sample(STORAGE_CLASS)
    new = copy.deepcopy(old)
    new["parameters"] = {"type": "ssd"}
    new["provisioner"] = "other.io/x"
    assert update(STORAGE_CLASS, new, old) == [
        "parameters: Forbidden: updates to parameters are forbidden.",
        "provisioner: Forbidden: updates to provisioner are forbidden.",
    ]


def test_priority_class() -> None:
    obj = sample(PRIORITY_CLASS)
    obj["value"] = 2_000_000_000
    assert create(PRIORITY_CLASS, obj) == [
        "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"
    ]
    obj["metadata"]["name"] = "system-mine"
    [message] = create(PRIORITY_CLASS, obj)
    assert message.startswith(
        "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved"
    )
    old = sample(PRIORITY_CLASS)
    new = copy.deepcopy(old)
    new["value"] = 5
    assert update(PRIORITY_CLASS, new, old) == [
        "value: Forbidden: may not be changed in an update."
    ]


def test_lease_and_endpoint_slice() -> None:
    lease = sample(LEASE)
    lease["spec"]["leaseDurationSeconds"] = 0
    assert create(LEASE, lease) == [
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
    ]
    endpoint_slice = sample(SLICE)
    endpoint_slice["endpoints"] = [{"addresses": ["fe80::1"]}, {"addresses": []}]
    assert create(SLICE, endpoint_slice) == [
        'endpoints[0].addresses[0]: Invalid value: "fe80::1": must be a valid IPv4 address',
        "endpoints[1].addresses: Required value: must contain at least 1 address",
    ]
    endpoint_slice = sample(SLICE)
    endpoint_slice["addressType"] = "IPX"
    assert create(SLICE, endpoint_slice)[0] == (
        'addressType: Unsupported value: "IPX": supported values: "FQDN", "IPv4", "IPv6"'
    )


def test_crd_shape() -> None:
    obj = sample(CRD)
    obj["metadata"]["name"] = "gadgets.example.com"
    obj["spec"]["group"] = "example"
    obj["spec"]["versions"].append({"name": "v2", "served": True, "storage": True})
    assert create(CRD, obj) == [
        'spec.group: Invalid value: "example": should be a domain with at least one dot',
        "spec.versions[1].schema.openAPIV3Schema: Required value: schemas are required",
        'spec.versions: Invalid value: []string{"v1", "v2"}: must have exactly one version marked as storage version',
        'metadata.name: Invalid value: "gadgets.example.com": must be spec.names.plural+"."+spec.group',
    ]


def test_events_core_legacy_rules() -> None:
    obj = sample(CORE_EVENT)
    obj["involvedObject"]["namespace"] = "other"
    assert create(CORE_EVENT, obj) == [
        'involvedObject.namespace: Invalid value: "other": does not match event.namespace'
    ]


def test_events_v1_strict_rules() -> None:
    obj = sample(NEW_EVENT)
    del obj["eventTime"]
    obj["type"] = "Info"
    obj["deprecatedCount"] = 2
    assert create(NEW_EVENT, obj) == [
        "eventTime: Required value",
        'type: Invalid value: "": has invalid value: Info',
        'count: Invalid value: "": needs to be unset',
    ]
    obj = sample(NEW_EVENT)
    del obj["reportingController"], obj["action"]
    assert create(NEW_EVENT, obj) == [
        "reportingController: Required value",
        "action: Required value",
    ]
    old = sample(NEW_EVENT)
    new = copy.deepcopy(old)
    new["note"] = "changed"
    assert update(NEW_EVENT, new, old) == ['message: Invalid value: "changed": field is immutable']


def test_persistent_volumes() -> None:
    obj = sample(PV)
    obj["spec"].update(capacity={"storage": "1Gi", "cpu": "1"}, accessModes=["ReadMostly"])
    obj["spec"]["nfs"] = {"server": "x", "path": "/"}
    causes = create(PV, obj)
    assert causes[0].startswith("spec.capacity: Unsupported value: ")
    assert causes[1:] == [
        'spec.accessModes[0]: Unsupported value: "ReadMostly": supported values: '
        '"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"',
        "spec.nfs: Forbidden: may not specify more than 1 volume type",
    ]
    claim = sample(PVC)
    claim["spec"] = {"accessModes": []}
    assert create(PVC, claim) == [
        "spec.accessModes: Required value: at least 1 access mode is required",
        "spec.resources[storage]: Required value",
    ]


def test_pvc_update_allows_only_requests_and_binding() -> None:
    old = sample(PVC)
    new = copy.deepcopy(old)
    new["spec"]["resources"]["requests"]["storage"] = "2Gi"
    new["spec"]["volumeName"] = "pv-1"
    assert update(PVC, new, old) == []
    new["spec"]["accessModes"] = ["ReadWriteMany"]
    assert update(PVC, new, old) == [
        "spec: Forbidden: spec is immutable after creation except resources.requests and "
        "volumeAttributesClassName for bound claims"
    ]


def test_limit_range_and_quota() -> None:
    obj = sample(LIMIT_RANGE)
    obj["spec"]["limits"] = [
        {"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}},
        {"type": "Pod", "default": {"cpu": "1"}},
    ]
    assert create(LIMIT_RANGE, obj) == [
        'spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1',
        "spec.limits[1].default: Forbidden: may not be specified when `type` is 'Pod'",
    ]
    quota = sample(QUOTA)
    quota["spec"] = {"hard": {"pods": "-1"}, "scopes": ["Everything"]}
    assert create(QUOTA, quota) == [
        'spec.hard[pods]: Invalid value: "-1": must be greater than or equal to 0',
        'spec.scopes[0]: Unsupported value: "Everything": supported values: "BestEffort", '
        '"CrossNamespacePodAffinity", "NotBestEffort", "NotTerminating", "PriorityClass", "Terminating"',
    ]
