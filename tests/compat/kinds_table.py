"""One minimal valid manifest per served kind, and how the official client names its methods.

The typed client's methods follow one pattern: ``<verb>_namespaced_<kind>`` for namespaced
kinds (plus ``list_<kind>_for_all_namespaces``) and ``<verb>_<kind>`` for cluster-scoped ones,
on the API class of the group-version. ``Case.call`` builds the call from that pattern so one
table drives create/get/list/replace/patch/delete for every kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import kubernetes

Manifest = dict[str, Any]


def _labels(app: str) -> dict[str, Any]:
    return {"matchLabels": {"app": app}}


def _template(app: str, restart: str = "Always") -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"restartPolicy": restart, "containers": [{"name": "c", "image": "busybox"}]},
    }


def _rules() -> list[dict[str, Any]]:
    return [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]


def _subjects() -> list[dict[str, Any]]:
    return [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]


@dataclass(frozen=True)
class Case:
    api: str  # the client's API class, e.g. "AppsV1Api"
    kind: str
    namespaced: bool
    spec: Callable[[str, str], Manifest]  # (name, namespace) -> body without metadata.name
    model: str  # the client's model class for one object

    @property
    def snake(self) -> str:
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.kind).lower()

    @property
    def api_version(self) -> str:
        return API_VERSIONS[self.api]

    def manifest(self, name: str, namespace: str) -> Manifest:
        body = self.spec(name, namespace)
        body = {"apiVersion": self.api_version, "kind": self.kind, **body}
        body.setdefault("metadata", {})["name"] = name
        return body

    def call(
        self,
        client: kubernetes.client.ApiClient,
        verb: str,
        namespace: str,
        *,
        name: str | None = None,
        body: Any = None,
        verb_suffix: str = "",
        **kw: Any,
    ) -> Any:
        """``verb`` ("create", "read", "list", "list_all", "replace", "patch", "delete", ...)
        with the client's argument order: name, namespace, body. ``verb_suffix="_status"``
        calls the status subresource's method (``read_namespaced_pod_status``)."""
        args: list[Any] = [name] if name is not None else []
        if self.namespaced and verb != "list_all":
            args.append(namespace)
        if body is not None:
            args.append(body)
        return self.method(client, verb, verb_suffix)(*args, **kw)

    def method(self, client: kubernetes.client.ApiClient, verb: str, suffix: str = "") -> Any:
        """The bound client method for ``verb`` (see ``call``)."""
        api = getattr(kubernetes.client, self.api)(client)
        if verb == "list_all":
            if self.namespaced:
                return getattr(api, f"list_{self.snake}_for_all_namespaces")
            verb = "list"
        scope = "namespaced_" if self.namespaced else ""
        return getattr(api, f"{verb}_{scope}{self.snake}{suffix}")


API_VERSIONS = {
    "CoreV1Api": "v1",
    "AppsV1Api": "apps/v1",
    "BatchV1Api": "batch/v1",
    "AutoscalingV1Api": "autoscaling/v1",
    "AutoscalingV2Api": "autoscaling/v2",
    "CoordinationV1Api": "coordination.k8s.io/v1",
    "DiscoveryV1Api": "discovery.k8s.io/v1",
    "EventsV1Api": "events.k8s.io/v1",
    "NetworkingV1Api": "networking.k8s.io/v1",
    "PolicyV1Api": "policy/v1",
    "RbacAuthorizationV1Api": "rbac.authorization.k8s.io/v1",
    "StorageV1Api": "storage.k8s.io/v1",
    "SchedulingV1Api": "scheduling.k8s.io/v1",
    "ApiextensionsV1Api": "apiextensions.k8s.io/v1",
}

CASES: dict[str, Case] = {
    "namespace": Case("CoreV1Api", "Namespace", False, lambda n, ns: {}, "V1Namespace"),
    "pod": Case(
        "CoreV1Api",
        "Pod",
        True,
        lambda n, ns: {"spec": {"containers": [{"name": "c", "image": "busybox"}]}},
        "V1Pod",
    ),
    "service": Case(
        "CoreV1Api",
        "Service",
        True,
        lambda n, ns: {"spec": {"selector": {"app": n}, "ports": [{"port": 80}]}},
        "V1Service",
    ),
    "endpoints": Case(
        "CoreV1Api",
        "Endpoints",
        True,
        lambda n, ns: {"subsets": [{"addresses": [{"ip": "10.1.2.3"}], "ports": [{"port": 80}]}]},
        "V1Endpoints",
    ),
    "configmap": Case(
        "CoreV1Api", "ConfigMap", True, lambda n, ns: {"data": {"k": "v"}}, "V1ConfigMap"
    ),
    "secret": Case(
        "CoreV1Api", "Secret", True, lambda n, ns: {"data": {"k": "dmFsdWU="}}, "V1Secret"
    ),
    "node": Case("CoreV1Api", "Node", False, lambda n, ns: {}, "V1Node"),
    "event": Case(
        "CoreV1Api",
        "Event",
        True,
        lambda n, ns: {
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": ns},
            "reason": "Tested",
            "message": "a test event",
            "type": "Normal",
        },
        "CoreV1Event",
    ),
    "serviceaccount": Case(
        "CoreV1Api", "ServiceAccount", True, lambda n, ns: {}, "V1ServiceAccount"
    ),
    "replicationcontroller": Case(
        "CoreV1Api",
        "ReplicationController",
        True,
        lambda n, ns: {"spec": {"replicas": 1, "selector": {"app": n}, "template": _template(n)}},
        "V1ReplicationController",
    ),
    "persistentvolume": Case(
        "CoreV1Api",
        "PersistentVolume",
        False,
        lambda n, ns: {
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": f"/tmp/{n}"},
            }
        },
        "V1PersistentVolume",
    ),
    "persistentvolumeclaim": Case(
        "CoreV1Api",
        "PersistentVolumeClaim",
        True,
        lambda n, ns: {
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            }
        },
        "V1PersistentVolumeClaim",
    ),
    "limitrange": Case(
        "CoreV1Api",
        "LimitRange",
        True,
        lambda n, ns: {"spec": {"limits": [{"type": "Container", "default": {"cpu": "100m"}}]}},
        "V1LimitRange",
    ),
    "resourcequota": Case(
        "CoreV1Api",
        "ResourceQuota",
        True,
        lambda n, ns: {"spec": {"hard": {"pods": "10"}}},
        "V1ResourceQuota",
    ),
    "podtemplate": Case(
        "CoreV1Api", "PodTemplate", True, lambda n, ns: {"template": _template(n)}, "V1PodTemplate"
    ),
    "deployment": Case(
        "AppsV1Api",
        "Deployment",
        True,
        lambda n, ns: {"spec": {"replicas": 1, "selector": _labels(n), "template": _template(n)}},
        "V1Deployment",
    ),
    "replicaset": Case(
        "AppsV1Api",
        "ReplicaSet",
        True,
        lambda n, ns: {"spec": {"replicas": 1, "selector": _labels(n), "template": _template(n)}},
        "V1ReplicaSet",
    ),
    "statefulset": Case(
        "AppsV1Api",
        "StatefulSet",
        True,
        lambda n, ns: {
            "spec": {"serviceName": n, "selector": _labels(n), "template": _template(n)}
        },
        "V1StatefulSet",
    ),
    "daemonset": Case(
        "AppsV1Api",
        "DaemonSet",
        True,
        lambda n, ns: {"spec": {"selector": _labels(n), "template": _template(n)}},
        "V1DaemonSet",
    ),
    "controllerrevision": Case(
        "AppsV1Api",
        "ControllerRevision",
        True,
        lambda n, ns: {"revision": 1, "data": {"spec": {"x": 1}}},
        "V1ControllerRevision",
    ),
    "job": Case(
        "BatchV1Api",
        "Job",
        True,
        lambda n, ns: {"spec": {"template": _template(n, "Never")}},
        "V1Job",
    ),
    "cronjob": Case(
        "BatchV1Api",
        "CronJob",
        True,
        lambda n, ns: {
            "spec": {
                "schedule": "*/5 * * * *",
                "jobTemplate": {"spec": {"template": _template(n, "OnFailure")}},
            }
        },
        "V1CronJob",
    ),
    "hpa-v1": Case(
        "AutoscalingV1Api",
        "HorizontalPodAutoscaler",
        True,
        lambda n, ns: {
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": n},
                "maxReplicas": 3,
                "targetCPUUtilizationPercentage": 50,
            }
        },
        "V1HorizontalPodAutoscaler",
    ),
    "hpa-v2": Case(
        "AutoscalingV2Api",
        "HorizontalPodAutoscaler",
        True,
        lambda n, ns: {
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": n},
                "minReplicas": 1,
                "maxReplicas": 3,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 60},
                        },
                    }
                ],
            }
        },
        "V2HorizontalPodAutoscaler",
    ),
    "lease": Case(
        "CoordinationV1Api",
        "Lease",
        True,
        lambda n, ns: {"spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}},
        "V1Lease",
    ),
    "endpointslice": Case(
        "DiscoveryV1Api",
        "EndpointSlice",
        True,
        lambda n, ns: {
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.1.2.3"]}],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        },
        "V1EndpointSlice",
    ),
    "event-v1": Case(
        "EventsV1Api",
        "Event",
        True,
        lambda n, ns: {
            "eventTime": "2025-01-01T00:00:00.000000Z",
            "reportingController": "example.com/tester",
            "reportingInstance": "tester-1",
            "action": "Testing",
            "reason": "Tested",
            "type": "Normal",
            "regarding": {"kind": "Pod", "name": "p", "namespace": ns},
            "note": "a test event",
        },
        "EventsV1Event",
    ),
    "ingress": Case(
        "NetworkingV1Api",
        "Ingress",
        True,
        lambda n, ns: {
            "spec": {"defaultBackend": {"service": {"name": n, "port": {"number": 80}}}}
        },
        "V1Ingress",
    ),
    "ingressclass": Case(
        "NetworkingV1Api",
        "IngressClass",
        False,
        lambda n, ns: {"spec": {"controller": "example.com/ingress"}},
        "V1IngressClass",
    ),
    "networkpolicy": Case(
        "NetworkingV1Api",
        "NetworkPolicy",
        True,
        lambda n, ns: {"spec": {"podSelector": {}, "policyTypes": ["Ingress"]}},
        "V1NetworkPolicy",
    ),
    "poddisruptionbudget": Case(
        "PolicyV1Api",
        "PodDisruptionBudget",
        True,
        lambda n, ns: {"spec": {"minAvailable": 1, "selector": _labels(n)}},
        "V1PodDisruptionBudget",
    ),
    "role": Case(
        "RbacAuthorizationV1Api", "Role", True, lambda n, ns: {"rules": _rules()}, "V1Role"
    ),
    "clusterrole": Case(
        "RbacAuthorizationV1Api",
        "ClusterRole",
        False,
        lambda n, ns: {"rules": _rules()},
        "V1ClusterRole",
    ),
    "rolebinding": Case(
        "RbacAuthorizationV1Api",
        "RoleBinding",
        True,
        lambda n, ns: {
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": n},
            "subjects": _subjects(),
        },
        "V1RoleBinding",
    ),
    "clusterrolebinding": Case(
        "RbacAuthorizationV1Api",
        "ClusterRoleBinding",
        False,
        lambda n, ns: {
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": n},
            "subjects": _subjects(),
        },
        "V1ClusterRoleBinding",
    ),
    "storageclass": Case(
        "StorageV1Api",
        "StorageClass",
        False,
        lambda n, ns: {"provisioner": "example.com/disk", "reclaimPolicy": "Delete"},
        "V1StorageClass",
    ),
    "priorityclass": Case(
        "SchedulingV1Api",
        "PriorityClass",
        False,
        lambda n, ns: {"value": 1000, "description": "for tests"},
        "V1PriorityClass",
    ),
    "customresourcedefinition": Case(
        "ApiextensionsV1Api",
        "CustomResourceDefinition",
        False,
        lambda n, ns: {
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {
                    "plural": n.split(".")[0],
                    "singular": n.split(".")[0][:-1],
                    "kind": "Widget",
                    "listKind": "WidgetList",
                },
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": {"type": "object"}},
                    }
                ],
            },
        },
        "V1CustomResourceDefinition",
    ),
}


def object_name(case_id: str, namespace: str) -> str:
    """A name unique per test: cluster-scoped objects carry the test's namespace."""
    base = case_id.replace("-", "")[:20]
    if CASES[case_id].kind == "CustomResourceDefinition":
        return f"w{namespace.replace('-', '')}s.example.com"  # <plural>.<group>
    return base if CASES[case_id].namespaced else f"{base}-{namespace}"
