"""RBAC bindings, PodDisruptionBudget, PriorityClass, Lease and HPA printers."""

from __future__ import annotations

from tests.unit.api.test_printers_helpers import cells, headers, obj

RBAC = "rbac.authorization.k8s.io"


def test_role_binding_and_cluster_role_binding() -> None:
    assert headers(RBAC, "RoleBinding") == ["NAME", "ROLE", "AGE"]
    assert headers(RBAC, "RoleBinding", wide=True)[3:] == ["USERS", "GROUPS", "SERVICEACCOUNTS"]
    subjects = [
        {"kind": "User", "name": "alice"},
        {"kind": "User", "name": "bob"},
        {"kind": "Group", "name": "devs"},
        {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"},
    ]
    binding = obj(
        f"{RBAC}/v1",
        "RoleBinding",
        "read",
        60,
        roleRef={"kind": "Role", "name": "reader"},
        subjects=subjects,
    )
    assert cells(RBAC, "RoleBinding", binding) == [
        "read",
        "Role/reader",
        "60s",
        "alice, bob",
        "devs",
        "tools/ci",
    ]
    cluster = obj(
        f"{RBAC}/v1",
        "ClusterRoleBinding",
        "admin",
        60,
        roleRef={"kind": "ClusterRole", "name": "cluster-admin"},
    )
    assert cells(RBAC, "ClusterRoleBinding", cluster) == [
        "admin",
        "ClusterRole/cluster-admin",
        "60s",
        "",
        "",
        "",
    ]


def test_pod_disruption_budget() -> None:
    assert headers("policy", "PodDisruptionBudget") == [
        "NAME",
        "MIN AVAILABLE",
        "MAX UNAVAILABLE",
        "ALLOWED DISRUPTIONS",
        "AGE",
    ]
    item = obj(
        "policy/v1",
        "PodDisruptionBudget",
        "pdb",
        60,
        spec={"minAvailable": "50%"},
        status={"disruptionsAllowed": 1},
    )
    assert cells("policy", "PodDisruptionBudget", item) == ["pdb", "50%", "N/A", 1, "60s"]
    other = obj("policy/v1", "PodDisruptionBudget", "p2", 60, spec={"maxUnavailable": 1})
    assert cells("policy", "PodDisruptionBudget", other)[1:4] == ["N/A", "1", 0]


def test_priority_class_prints_preemption_policy_always() -> None:
    assert headers("scheduling.k8s.io", "PriorityClass") == [
        "NAME",
        "VALUE",
        "GLOBAL-DEFAULT",
        "AGE",
        "PREEMPTIONPOLICY",
    ]
    item = obj(
        "scheduling.k8s.io/v1",
        "PriorityClass",
        "high",
        60,
        value=1000000,
        preemptionPolicy="PreemptLowerPriority",
    )
    assert cells("scheduling.k8s.io", "PriorityClass", item) == [
        "high",
        1000000,
        False,
        "60s",
        "PreemptLowerPriority",
    ]


def test_lease() -> None:
    assert headers("coordination.k8s.io", "Lease") == ["NAME", "HOLDER", "AGE"]
    item = obj("coordination.k8s.io/v1", "Lease", "node-1", 60, spec={"holderIdentity": "node-1"})
    assert cells("coordination.k8s.io", "Lease", item) == ["node-1", "node-1", "60s"]


def test_hpa_v2() -> None:
    assert headers("autoscaling", "HorizontalPodAutoscaler") == [
        "NAME",
        "REFERENCE",
        "TARGETS",
        "MINPODS",
        "MAXPODS",
        "REPLICAS",
        "AGE",
    ]
    spec = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 2,
        "maxReplicas": 10,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            },
            {
                "type": "Resource",
                "resource": {
                    "name": "memory",
                    "target": {"type": "AverageValue", "averageValue": "500Mi"},
                },
            },
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "qps"},
                    "target": {"type": "AverageValue", "averageValue": "1k"},
                },
            },
        ],
    }
    status = {
        "currentReplicas": 3,
        "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 40}}}
        ],
    }
    item = obj("autoscaling/v2", "HorizontalPodAutoscaler", "web", 60, spec=spec, status=status)
    assert cells("autoscaling", "HorizontalPodAutoscaler", item) == [
        "web",
        "Deployment/web",
        "cpu: 40%/80%, memory: <unknown>/500Mi + 1 more...",
        "2",
        10,
        3,
        "60s",
    ]


def test_hpa_v1_is_printed_like_v2() -> None:
    spec = {
        "scaleTargetRef": {"kind": "Deployment", "name": "web"},
        "maxReplicas": 5,
        "targetCPUUtilizationPercentage": 50,
    }
    item = obj(
        "autoscaling/v1",
        "HorizontalPodAutoscaler",
        "web",
        60,
        spec=spec,
        status={"currentReplicas": 1},
    )
    assert cells("autoscaling", "HorizontalPodAutoscaler", item) == [
        "web",
        "Deployment/web",
        "cpu: <unknown>/50%",
        "<unset>",
        5,
        1,
        "60s",
    ]
    none = obj(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "n",
        60,
        spec={"scaleTargetRef": {"kind": "Deployment", "name": "n"}, "maxReplicas": 1},
    )
    assert cells("autoscaling", "HorizontalPodAutoscaler", none)[2] == "<none>"
