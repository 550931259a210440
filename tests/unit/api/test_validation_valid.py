"""Valid objects of every served kind pass validation (no false positives), before and after
Kubernetes-style defaulting, on create and on a no-op update."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kybern.api import defaulting, kinds, validation

POD_SPEC: dict[str, Any] = {
    "containers": [
        {
            "name": "web",
            "image": "nginx:1.25",
            "ports": [{"containerPort": 80, "name": "http"}],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1"}},
            "env": [{"name": "MODE", "value": "prod"}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
        }
    ],
    "volumes": [{"name": "data", "emptyDir": {}}],
}
TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": POD_SPEC}
SELECTOR = {"matchLabels": {"app": "web"}}
JOB_TEMPLATE = {
    "spec": {"containers": [{"name": "job", "image": "busybox"}], "restartPolicy": "Never"}
}
RULE = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}

SAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("v1", "ConfigMap"): {"data": {"a.txt": "hello", "B_KEY": "x"}},
    ("v1", "Endpoints"): {
        "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]
    },
    ("v1", "Event"): {
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Started",
        "message": "started",
        "type": "Normal",
    },
    ("v1", "LimitRange"): {
        "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}, "max": {"cpu": "2"}}]}
    },
    ("v1", "Namespace"): {},
    ("v1", "Node"): {"spec": {"podCIDR": "10.244.0.0/24"}},
    ("v1", "PersistentVolumeClaim"): {
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    },
    ("v1", "PersistentVolume"): {
        "spec": {
            "capacity": {"storage": "5Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/tmp/pv"},
        }
    },
    ("v1", "Pod"): {"spec": POD_SPEC},
    ("v1", "PodTemplate"): {"template": TEMPLATE},
    ("v1", "ReplicationController"): {
        "spec": {"replicas": 2, "selector": {"app": "web"}, "template": TEMPLATE}
    },
    ("v1", "ResourceQuota"): {"spec": {"hard": {"pods": "10", "requests.cpu": "4"}}},
    ("v1", "Secret"): {"data": {"password": "c2VjcmV0"}, "stringData": {"user": "admin"}},
    ("v1", "ServiceAccount"): {},
    ("v1", "Service"): {
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}
    },
    ("apps/v1", "ControllerRevision"): {"revision": 1, "data": {"spec": {}}},
    ("apps/v1", "DaemonSet"): {"spec": {"selector": SELECTOR, "template": TEMPLATE}},
    ("apps/v1", "Deployment"): {
        "spec": {"replicas": 3, "selector": SELECTOR, "template": TEMPLATE}
    },
    ("apps/v1", "ReplicaSet"): {
        "spec": {"replicas": 1, "selector": SELECTOR, "template": TEMPLATE}
    },
    ("apps/v1", "StatefulSet"): {
        "spec": {"serviceName": "web", "selector": SELECTOR, "template": TEMPLATE}
    },
    ("events.k8s.io/v1", "Event"): {
        "eventTime": "2024-05-01T10:00:00.000000Z",
        "reportingController": "kybern.io/scheduler",
        "reportingInstance": "scheduler-1",
        "action": "Binding",
        "reason": "Scheduled",
        "note": "assigned",
        "type": "Normal",
        "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
    },
    ("autoscaling/v2", "HorizontalPodAutoscaler"): {
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1,
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        }
    },
    ("autoscaling/v1", "HorizontalPodAutoscaler"): {
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 3,
            "targetCPUUtilizationPercentage": 50,
        }
    },
    ("batch/v1", "CronJob"): {
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": JOB_TEMPLATE}}}
    },
    ("batch/v1", "Job"): {"spec": {"template": JOB_TEMPLATE}},
    ("networking.k8s.io/v1", "IngressClass"): {"spec": {"controller": "kybern.io/ingress"}},
    ("networking.k8s.io/v1", "Ingress"): {
        "spec": {
            "rules": [
                {
                    "host": "*.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ]
        }
    },
    ("networking.k8s.io/v1", "NetworkPolicy"): {
        "spec": {
            "podSelector": SELECTOR,
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                    "ports": [{"port": 80, "endPort": 90}],
                }
            ],
        }
    },
    ("policy/v1", "PodDisruptionBudget"): {"spec": {"minAvailable": "50%", "selector": SELECTOR}},
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): {
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "x"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}],
    },
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): {
        "rules": [RULE, {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]
    },
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): {
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}],
    },
    ("rbac.authorization.k8s.io/v1", "Role"): {"rules": [RULE]},
    ("storage.k8s.io/v1", "StorageClass"): {"provisioner": "kybern.io/hostpath"},
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): {
        "spec": {
            "group": "example.com",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
            ],
        }
    },
    ("scheduling.k8s.io/v1", "PriorityClass"): {"value": 1000},
    ("coordination.k8s.io/v1", "Lease"): {
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}
    },
    ("discovery.k8s.io/v1", "EndpointSlice"): {
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}}],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
    },
}


def sample(info: kinds.ResourceInfo, name: str = "sample") -> dict[str, Any]:
    """A valid object of ``info``'s kind with server-set metadata."""
    if info.kind == "CustomResourceDefinition":
        name = "widgets.example.com"
    metadata: dict[str, Any] = {
        "name": name,
        "uid": "6f1d9b0e-0000-4000-8000-000000000001",
        "creationTimestamp": "2024-05-01T10:00:00Z",
        "resourceVersion": "7",
        "labels": {"app": "web"},
    }
    if info.namespaced:
        metadata["namespace"] = "default"
    body = copy.deepcopy(SAMPLES[(info.api_version, info.kind)])
    return {"apiVersion": info.api_version, "kind": info.kind, "metadata": metadata, **body}


def _ids(info: kinds.ResourceInfo) -> str:
    return f"{info.api_version}/{info.kind}"


def test_every_kind_has_a_sample() -> None:
    served = {(i.api_version, i.kind) for i in kinds.all_resources()}
    assert served == set(SAMPLES)


@pytest.mark.parametrize("info", kinds.all_resources(), ids=_ids)
def test_valid_sample_passes_without_defaults(info: kinds.ResourceInfo) -> None:
    assert validation.validate_create(info, sample(info)) == []


@pytest.mark.parametrize("info", kinds.all_resources(), ids=_ids)
def test_valid_sample_passes_after_defaulting(info: kinds.ResourceInfo) -> None:
    obj = sample(info)
    defaulting.default(info.group, info.kind, obj)
    assert validation.validate_create(info, obj) == []


@pytest.mark.parametrize("info", kinds.all_resources(), ids=_ids)
def test_unchanged_update_passes(info: kinds.ResourceInfo) -> None:
    old = sample(info)
    defaulting.default(info.group, info.kind, old)
    new = copy.deepcopy(old)
    assert validation.validate_update(info, new, old) == []
    assert validation.validate_status_update(info, new, old) == []
