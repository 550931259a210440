"""Server-side defaulting: golden objects as Kubernetes v1.32 returns them, edge cases,
and properties (idempotence, robustness on partial or mistyped objects).

The expected dicts are what a v1.32 API server returns for the minimal object, minus what
admission plugins add (ServiceAccount token volume, priority, default tolerations) and the
metadata the apiserver itself sets (uid, resourceVersion, creationTimestamp).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kybern.api import defaulting
from kybern.api.defaulting import podspec

pytestmark = pytest.mark.timeout(60)


def defaulted(group: str, kind: str, obj: dict[str, Any], *, create: bool = True) -> dict[str, Any]:
    result = copy.deepcopy(obj)
    defaulting.default(group, kind, result, create=create)
    return result


def container(image: str = "nginx", name: str = "web", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": image, **extra}


def defaulted_container(image: str, name: str, pull: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": pull,
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }


TEMPLATE_SPEC_DEFAULTS = {
    "dnsPolicy": "ClusterFirst",
    "restartPolicy": "Always",
    "schedulerName": "default-scheduler",
    "securityContext": {},
    "terminationGracePeriodSeconds": 30,
}


class TestGoldenObjects:
    def test_pod(self) -> None:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"containers": [container()]},
        }
        assert defaulted("", "Pod", pod) == {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "containers": [defaulted_container("nginx", "web", "Always")],
                **TEMPLATE_SPEC_DEFAULTS,
                "enableServiceLinks": True,
            },
            "status": {"phase": "Pending", "qosClass": "BestEffort"},
        }

    def test_deployment(self) -> None:
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [container("nginx:1.25", "nginx")]},
                },
            },
        }
        assert defaulted("apps", "Deployment", deployment) == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "progressDeadlineSeconds": 600,
                "replicas": 1,
                "revisionHistoryLimit": 10,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                },
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [defaulted_container("nginx:1.25", "nginx", "IfNotPresent")],
                        **TEMPLATE_SPEC_DEFAULTS,
                    },
                },
            },
            "status": {},
        }

    def test_service(self) -> None:
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
        }
        assert defaulted("", "Service", service) == {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"app": "web"},
                "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                "sessionAffinity": "None",
                "type": "ClusterIP",
                "internalTrafficPolicy": "Cluster",
                "ipFamilyPolicy": "SingleStack",
                "ipFamilies": ["IPv4"],
            },
            "status": {"loadBalancer": {}},
        }

    def test_job(self) -> None:
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": "u-1"},
            "spec": {
                "template": {
                    "metadata": {"labels": {"app": "pi"}},
                    "spec": {
                        "containers": [container("perl:5.34", "pi")],
                        "restartPolicy": "Never",
                    },
                }
            },
        }
        generated = {
            "app": "pi",
            "batch.kubernetes.io/controller-uid": "u-1",
            "batch.kubernetes.io/job-name": "pi",
            "controller-uid": "u-1",
            "job-name": "pi",
        }
        assert defaulted("batch", "Job", job) == {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": "u-1", "labels": generated},
            "spec": {
                "backoffLimit": 6,
                "completionMode": "NonIndexed",
                "completions": 1,
                "manualSelector": False,
                "parallelism": 1,
                "podReplacementPolicy": "TerminatingOrFailed",
                "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}},
                "suspend": False,
                "template": {
                    "metadata": {"labels": generated},
                    "spec": {
                        "containers": [defaulted_container("perl:5.34", "pi", "IfNotPresent")],
                        **TEMPLATE_SPEC_DEFAULTS,
                        "restartPolicy": "Never",
                    },
                },
            },
            "status": {},
        }

    def test_cronjob(self) -> None:
        cronjob = {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "tick"},
            "spec": {
                "schedule": "*/1 * * * *",
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [container("busybox", "tick")],
                                "restartPolicy": "OnFailure",
                            }
                        }
                    }
                },
            },
        }
        assert defaulted("batch", "CronJob", cronjob)["spec"] == {
            "schedule": "*/1 * * * *",
            "concurrencyPolicy": "Allow",
            "failedJobsHistoryLimit": 1,
            "successfulJobsHistoryLimit": 3,
            "suspend": False,
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [defaulted_container("busybox", "tick", "Always")],
                            **TEMPLATE_SPEC_DEFAULTS,
                            "restartPolicy": "OnFailure",
                        }
                    }
                }
            },
        }

    def test_statefulset(self) -> None:
        sts = {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db"},
            "spec": {
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {
                    "metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [container("postgres:16", "pg")]},
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "1Gi"}},
                        },
                    }
                ],
            },
        }
        got = defaulted("apps", "StatefulSet", sts)
        assert got["spec"] == {
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "podManagementPolicy": "OrderedReady",
            "replicas": 1,
            "revisionHistoryLimit": 10,
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Retain",
                "whenScaled": "Retain",
            },
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {
                    "containers": [defaulted_container("postgres:16", "pg", "IfNotPresent")],
                    **TEMPLATE_SPEC_DEFAULTS,
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                        "volumeMode": "Filesystem",
                    },
                    "status": {"phase": "Pending"},
                }
            ],
        }
        assert got["status"] == {"replicas": 0, "availableReplicas": 0}

    def test_daemonset(self) -> None:
        ds = {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {
                    "metadata": {"labels": {"app": "agent"}},
                    "spec": {"containers": [container("agent:v1", "agent")]},
                },
            },
        }
        got = defaulted("apps", "DaemonSet", ds)
        assert got["spec"]["revisionHistoryLimit"] == 10
        assert got["spec"]["updateStrategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
        }
        assert got["spec"]["template"]["spec"] == {
            "containers": [defaulted_container("agent:v1", "agent", "IfNotPresent")],
            **TEMPLATE_SPEC_DEFAULTS,
        }
        assert got["status"] == {
            "currentNumberScheduled": 0,
            "numberMisscheduled": 0,
            "desiredNumberScheduled": 0,
            "numberReady": 0,
        }

    def test_namespace(self) -> None:
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
        assert defaulted("", "Namespace", ns) == {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "team-a"}},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }

    def test_secret(self) -> None:
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {}}
        assert defaulted("", "Secret", secret) == {**secret, "type": "Opaque"}
        typed = {**secret, "type": "kubernetes.io/tls"}
        assert defaulted("", "Secret", typed)["type"] == "kubernetes.io/tls"


class TestImagePullPolicy:
    @pytest.mark.parametrize(
        ("image", "policy"),
        [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("library/nginx:latest", "Always"),
            ("registry.example.com:5000/team/app", "Always"),
            ("nginx:1.25", "IfNotPresent"),
            ("registry.example.com:5000/team/app:v2", "IfNotPresent"),
            ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
            ("nginx:latest@sha256:" + "a" * 64, "Always"),
            ("", "IfNotPresent"),
            ("Upper/Case", "IfNotPresent"),
        ],
    )
    def test_policy(self, image: str, policy: str) -> None:
        assert podspec.pull_policy(image) == policy

    def test_explicit_policy_kept(self) -> None:
        pod = {"spec": {"containers": [container("nginx", imagePullPolicy="Never")]}}
        assert defaulted("", "Pod", pod)["spec"]["containers"][0]["imagePullPolicy"] == "Never"


class TestPodSpecDetails:
    def test_probes_and_handlers(self) -> None:
        probe = {"httpGet": {"port": 8080}}
        c = container(
            livenessProbe=probe,
            readinessProbe={"tcpSocket": {"port": 80}, "periodSeconds": 5},
            startupProbe={"grpc": {"port": 9000}},
            lifecycle={"preStop": {"httpGet": {"port": 80, "path": "/stop"}}},
        )
        got = defaulted("", "Pod", {"spec": {"containers": [c]}})["spec"]["containers"][0]
        assert got["livenessProbe"] == {
            "httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
            "timeoutSeconds": 1,
            "periodSeconds": 10,
            "successThreshold": 1,
            "failureThreshold": 3,
        }
        assert got["readinessProbe"]["periodSeconds"] == 5
        assert got["startupProbe"]["grpc"] == {"port": 9000, "service": ""}
        assert got["lifecycle"]["preStop"]["httpGet"] == {
            "port": 80,
            "path": "/stop",
            "scheme": "HTTP",
        }

    def test_ports_env_and_init_containers(self) -> None:
        c = container(
            ports=[{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
            env=[
                {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                {"name": "PLAIN", "value": "x"},
            ],
        )
        pod = {"spec": {"containers": [c], "initContainers": [container("busybox", "init")]}}
        spec = defaulted("", "Pod", pod)["spec"]
        ports = spec["containers"][0]["ports"]
        assert [p["protocol"] for p in ports] == ["TCP", "UDP"]
        env = spec["containers"][0]["env"]
        assert env[0]["valueFrom"]["fieldRef"] == {"fieldPath": "spec.nodeName", "apiVersion": "v1"}
        assert env[1]["valueFrom"]["resourceFieldRef"] == {"resource": "limits.cpu", "divisor": "0"}
        assert env[2] == {"name": "PLAIN", "value": "x"}
        assert spec["initContainers"][0]["terminationMessagePolicy"] == "File"

    def test_volumes(self) -> None:
        volumes = [
            {"name": "scratch"},
            {"name": "cm", "configMap": {"name": "c"}},
            {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
            {"name": "host", "hostPath": {"path": "/data"}},
            {
                "name": "dapi",
                "downwardAPI": {"items": [{"path": "l", "fieldRef": {"fieldPath": "x"}}]},
            },
            {
                "name": "proj",
                "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]},
            },
            {
                "name": "eph",
                "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}},
            },
        ]
        got = defaulted("", "Pod", {"spec": {"containers": [container()], "volumes": volumes}})
        by_name = {v["name"]: v for v in got["spec"]["volumes"]}
        assert by_name["scratch"] == {"name": "scratch", "emptyDir": {}}
        assert by_name["cm"]["configMap"] == {"name": "c", "defaultMode": 420}
        assert by_name["sec"]["secret"]["defaultMode"] == 256
        assert by_name["host"]["hostPath"] == {"path": "/data", "type": ""}
        assert by_name["dapi"]["downwardAPI"] == {
            "items": [{"path": "l", "fieldRef": {"fieldPath": "x", "apiVersion": "v1"}}],
            "defaultMode": 420,
        }
        assert by_name["proj"]["projected"] == {
            "sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}],
            "defaultMode": 420,
        }
        claim = by_name["eph"]["ephemeral"]["volumeClaimTemplate"]["spec"]
        assert claim["volumeMode"] == "Filesystem"

    def test_requests_default_from_limits_on_pods_only(self) -> None:
        resources = {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m"}}
        pod = {"spec": {"containers": [container(resources=copy.deepcopy(resources))]}}
        got = defaulted("", "Pod", pod)
        assert got["spec"]["containers"][0]["resources"]["requests"] == {
            "cpu": "100m",
            "memory": "128Mi",
        }
        assert got["status"]["qosClass"] == "Burstable"
        template = {
            "spec": {"template": {"spec": {"containers": [container(resources=resources)]}}}
        }
        got_rs = defaulted("apps", "ReplicaSet", template)
        assert got_rs["spec"]["template"]["spec"]["containers"][0]["resources"] == resources
        assert "enableServiceLinks" not in got_rs["spec"]["template"]["spec"]

    def test_empty_limits_add_no_requests(self) -> None:
        pod = {"spec": {"containers": [container(resources={"limits": {}})]}}
        assert defaulted("", "Pod", pod)["spec"]["containers"][0]["resources"] == {"limits": {}}

    def test_guaranteed_qos_when_limits_equal_requests(self) -> None:
        limits = {"cpu": "1", "memory": "1Gi"}
        pod = {"spec": {"containers": [container(resources={"limits": limits})]}}
        assert defaulted("", "Pod", pod)["status"]["qosClass"] == "Guaranteed"

    def test_host_network_pods_get_host_ports(self) -> None:
        pod = {
            "spec": {
                "hostNetwork": True,
                "containers": [container(ports=[{"containerPort": 8080}])],
            }
        }
        port = defaulted("", "Pod", pod)["spec"]["containers"][0]["ports"][0]
        assert port == {"containerPort": 8080, "hostPort": 8080, "protocol": "TCP"}

    def test_service_account_alias(self) -> None:
        spec = defaulted("", "Pod", {"spec": {"serviceAccountName": "robot"}})["spec"]
        assert spec["serviceAccount"] == "robot"
        spec = defaulted("", "Pod", {"spec": {"serviceAccount": "legacy"}})["spec"]
        assert spec["serviceAccountName"] == "legacy"

    def test_explicit_values_are_kept(self) -> None:
        spec = {
            "containers": [container()],
            "dnsPolicy": "Default",
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "schedulerName": "custom",
            "enableServiceLinks": False,
        }
        got = defaulted("", "Pod", {"spec": spec})["spec"]
        assert got["dnsPolicy"] == "Default"
        assert got["restartPolicy"] == "Never"
        assert got["terminationGracePeriodSeconds"] == 0
        assert got["schedulerName"] == "custom"
        assert got["enableServiceLinks"] is False

    def test_container_statuses_get_fields_clients_require(self) -> None:
        pod = {
            "spec": {"containers": [container()]},
            "status": {"containerStatuses": [{"name": "web"}]},
        }
        status = defaulted("", "Pod", pod, create=False)["status"]
        assert status["containerStatuses"][0] == {
            "name": "web",
            "ready": False,
            "restartCount": 0,
            "image": "",
            "imageID": "",
            "state": {},
            "lastState": {},
        }
        assert "phase" not in status


class TestWorkloads:
    def test_pod_template_defaults_apply_in_every_template(self) -> None:
        template = {"spec": {"containers": [container()]}}
        cases = {
            ("", "PodTemplate"): {"template": copy.deepcopy(template)},
            ("", "ReplicationController"): {"spec": {"template": copy.deepcopy(template)}},
            ("apps", "ReplicaSet"): {"spec": {"template": copy.deepcopy(template)}},
        }
        for (group, kind), obj in cases.items():
            got = defaulted(group, kind, obj)
            found = got.get("template") or got["spec"]["template"]
            assert found["spec"]["dnsPolicy"] == "ClusterFirst", kind

    def test_replication_controller_selector_and_labels_from_template(self) -> None:
        rc = {"spec": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": {}}}}
        got = defaulted("", "ReplicationController", rc)
        assert got["spec"]["selector"] == {"app": "x"}
        assert got["metadata"]["labels"] == {"app": "x"}
        assert got["spec"]["replicas"] == 1
        assert got["status"] == {"replicas": 0}

    def test_deployment_recreate_has_no_rolling_update(self) -> None:
        got = defaulted("apps", "Deployment", {"spec": {"strategy": {"type": "Recreate"}}})
        assert got["spec"]["strategy"] == {"type": "Recreate"}

    def test_job_completions_parallelism_and_backoff(self) -> None:
        got = defaulted("batch", "Job", {"spec": {"parallelism": 3}})["spec"]
        assert got["parallelism"] == 3
        assert "completions" not in got
        got = defaulted("batch", "Job", {"spec": {"backoffLimitPerIndex": 1}})["spec"]
        assert got["backoffLimit"] == 2**31 - 1
        policy = {
            "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
        }
        got = defaulted("batch", "Job", {"spec": {"podFailurePolicy": policy}})["spec"]
        assert got["podReplacementPolicy"] == "Failed"
        assert got["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"

    def test_job_manual_selector_is_not_generated(self) -> None:
        job = {
            "metadata": {"name": "j", "uid": "u"},
            "spec": {"manualSelector": True, "selector": {"matchLabels": {"a": "b"}}},
        }
        got = defaulted("batch", "Job", job)
        assert got["spec"]["selector"] == {"matchLabels": {"a": "b"}}

    def test_job_selector_not_generated_on_update(self) -> None:
        job = {"metadata": {"name": "j", "uid": "u"}, "spec": {"template": {"spec": {}}}}
        assert "selector" not in defaulted("batch", "Job", job, create=False)["spec"]


class TestCoreKinds:
    def test_service_variants(self) -> None:
        lb = defaulted("", "Service", {"spec": {"type": "LoadBalancer", "ports": [{"port": 443}]}})
        assert lb["spec"]["externalTrafficPolicy"] == "Cluster"
        assert lb["spec"]["allocateLoadBalancerNodePorts"] is True
        ext = defaulted("", "Service", {"spec": {"type": "ExternalName", "externalName": "x.com"}})
        assert "internalTrafficPolicy" not in ext["spec"]
        assert "ipFamilies" not in ext["spec"]
        headless = defaulted("", "Service", {"spec": {"clusterIP": "None"}})
        assert headless["spec"]["ipFamilyPolicy"] == "RequireDualStack"
        assert headless["spec"]["clusterIPs"] == ["None"]
        fixed = defaulted(
            "", "Service", {"spec": {"clusterIPs": ["10.96.0.10"], "selector": {"a": "b"}}}
        )
        assert fixed["spec"]["clusterIP"] == "10.96.0.10"
        assert fixed["spec"]["ipFamilies"] == ["IPv4"]
        named = defaulted("", "Service", {"spec": {"ports": [{"port": 80, "targetPort": "http"}]}})
        assert named["spec"]["ports"][0]["targetPort"] == "http"

    def test_service_session_affinity(self) -> None:
        got = defaulted("", "Service", {"spec": {"sessionAffinity": "ClientIP"}})
        assert got["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
        got = defaulted("", "Service", {"spec": {"sessionAffinityConfig": {"clientIP": {}}}})
        assert "sessionAffinityConfig" not in got["spec"]

    def test_service_update_keeps_ip_families_out(self) -> None:
        got = defaulted("", "Service", {"spec": {}}, create=False)
        assert "ipFamilies" not in got["spec"]

    def test_namespace_finalizer_not_re_added_on_update(self) -> None:
        ns = {
            "metadata": {"name": "x"},
            "spec": {"finalizers": []},
            "status": {"phase": "Terminating"},
        }
        got = defaulted("", "Namespace", ns, create=False)
        assert got["spec"]["finalizers"] == []
        assert got["status"]["phase"] == "Terminating"

    def test_namespace_label_tracks_name(self) -> None:
        ns = {"metadata": {"name": "b", "labels": {"kubernetes.io/metadata.name": "a", "x": "y"}}}
        labels = defaulted("", "Namespace", ns)["metadata"]["labels"]
        assert labels == {"kubernetes.io/metadata.name": "b", "x": "y"}

    def test_persistent_volumes_and_claims(self) -> None:
        pv = defaulted("", "PersistentVolume", {"spec": {"hostPath": {"path": "/d"}}})
        assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        assert pv["spec"]["volumeMode"] == "Filesystem"
        assert pv["spec"]["hostPath"]["type"] == ""
        assert pv["status"] == {"phase": "Pending"}
        pvc = defaulted("", "PersistentVolumeClaim", {"spec": {}})
        assert pvc["spec"]["volumeMode"] == "Filesystem"
        assert pvc["status"] == {"phase": "Pending"}

    def test_node(self) -> None:
        node = defaulted("", "Node", {"status": {"capacity": {"cpu": "4"}}})
        assert node["spec"] == {}
        assert node["status"]["allocatable"] == {"cpu": "4"}
        assert node["status"]["nodeInfo"]["kubeletVersion"] == ""
        assert node["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 0}}

    def test_limit_range(self) -> None:
        item = {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}
        got = defaulted("", "LimitRange", {"spec": {"limits": [item]}})["spec"]["limits"][0]
        assert got["default"] == {"cpu": "2"}
        assert got["defaultRequest"] == {"cpu": "2", "memory": "64Mi"}

    def test_endpoints_and_events(self) -> None:
        eps = defaulted("", "Endpoints", {"subsets": [{"ports": [{"port": 80}]}]})
        assert eps["subsets"][0]["ports"][0]["protocol"] == "TCP"
        event = defaulted("", "Event", {"involvedObject": {"kind": "Pod"}})
        assert event["eventTime"] is None
        assert event["reportingComponent"] == ""
        assert event["source"] == {}


class TestOtherGroups:
    def test_rbac_subjects_and_role_ref(self) -> None:
        binding = {
            "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [
                {"kind": "User", "name": "alice"},
                {"kind": "Group", "name": "devs"},
                {"kind": "ServiceAccount", "name": "robot", "namespace": "default"},
            ],
        }
        got = defaulted("rbac.authorization.k8s.io", "ClusterRoleBinding", binding)
        assert got["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
        # A ServiceAccount's default "" is omitted on the wire, as Kubernetes omits it.
        assert [s.get("apiGroup") for s in got["subjects"]] == [
            "rbac.authorization.k8s.io",
            "rbac.authorization.k8s.io",
            None,
        ]

    def test_hpa_v2(self) -> None:
        hpa = {"apiVersion": "autoscaling/v2", "spec": {"maxReplicas": 5, "behavior": {}}}
        got = defaulted("autoscaling", "HorizontalPodAutoscaler", hpa)
        assert got["spec"]["minReplicas"] == 1
        assert got["spec"]["metrics"] == [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            }
        ]
        assert got["spec"]["behavior"]["scaleUp"]["policies"][0] == {
            "type": "Pods",
            "value": 4,
            "periodSeconds": 15,
        }
        assert got["spec"]["behavior"]["scaleDown"]["selectPolicy"] == "Max"
        assert "stabilizationWindowSeconds" not in got["spec"]["behavior"]["scaleDown"]
        assert got["status"] == {"desiredReplicas": 0}

    def test_hpa_v1(self) -> None:
        hpa = {"apiVersion": "autoscaling/v1", "spec": {"maxReplicas": 5}}
        got = defaulted("autoscaling", "HorizontalPodAutoscaler", hpa)
        assert got["spec"] == {
            "maxReplicas": 5,
            "minReplicas": 1,
            "targetCPUUtilizationPercentage": 80,
        }
        assert got["status"] == {"currentReplicas": 0, "desiredReplicas": 0}

    def test_network_policy_types(self) -> None:
        spec = {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}
        got = defaulted("networking.k8s.io", "NetworkPolicy", {"spec": spec})["spec"]
        assert got["policyTypes"] == ["Ingress", "Egress"]
        assert got["egress"][0]["ports"][0]["protocol"] == "TCP"
        got = defaulted("networking.k8s.io", "NetworkPolicy", {"spec": {"podSelector": {}}})
        assert got["spec"]["policyTypes"] == ["Ingress"]

    def test_small_kinds(self) -> None:
        assert defaulted("scheduling.k8s.io", "PriorityClass", {"value": 1})[
            "preemptionPolicy"
        ] == ("PreemptLowerPriority")
        sc = defaulted("storage.k8s.io", "StorageClass", {"provisioner": "x"})
        assert (sc["reclaimPolicy"], sc["volumeBindingMode"]) == ("Delete", "Immediate")
        slice_ = defaulted("discovery.k8s.io", "EndpointSlice", {"ports": [{"port": 80}]})
        assert slice_["ports"] == [{"port": 80, "name": "", "protocol": "TCP"}]
        csi = defaulted("storage.k8s.io", "CSIDriver", {"spec": {}})["spec"]
        assert csi["attachRequired"] is True
        assert csi["volumeLifecycleModes"] == ["Persistent"]

    def test_crd(self) -> None:
        crd = {
            "spec": {
                "group": "example.com",
                "names": {"kind": "Widget", "plural": "widgets"},
                "scope": "Namespaced",
                "versions": [
                    {"name": "v1", "served": True, "storage": True},
                    {"name": "v1beta1", "served": True, "storage": False},
                ],
            }
        }
        got = defaulted("apiextensions.k8s.io", "CustomResourceDefinition", crd)
        assert got["spec"]["names"] == {
            "kind": "Widget",
            "plural": "widgets",
            "singular": "widget",
            "listKind": "WidgetList",
        }
        assert got["spec"]["conversion"] == {"strategy": "None"}
        assert got["status"]["storedVersions"] == ["v1"]
        assert got["status"]["acceptedNames"] == {"plural": "", "kind": ""}

    def test_webhooks(self) -> None:
        config = {
            "webhooks": [
                {
                    "name": "w.example.com",
                    "clientConfig": {"service": {"name": "s", "namespace": "n"}},
                    "rules": [{"operations": ["CREATE"], "apiGroups": [""]}],
                }
            ]
        }
        got = defaulted("admissionregistration.k8s.io", "MutatingWebhookConfiguration", config)
        hook = got["webhooks"][0]
        assert hook["failurePolicy"] == "Fail"
        assert hook["matchPolicy"] == "Equivalent"
        assert hook["timeoutSeconds"] == 10
        assert hook["reinvocationPolicy"] == "Never"
        assert hook["namespaceSelector"] == {}
        assert hook["objectSelector"] == {}
        assert hook["rules"][0]["scope"] == "*"
        assert hook["clientConfig"]["service"]["port"] == 443

    def test_unknown_kind_untouched(self) -> None:
        obj = {"data": {"a": "b"}}
        assert defaulted("", "ConfigMap", obj) == obj
        assert defaulted("example.com", "Widget", obj) == obj
        assert not defaulting.has_defaults("", "ConfigMap")
        assert defaulting.has_defaults("apps", "Deployment")


# --- properties: idempotent, never crashes on odd input ------------------------------------

_FIELD_NAMES = [
    "spec", "template", "metadata", "labels", "name", "uid", "containers", "initContainers",
    "image", "ports", "containerPort", "env", "valueFrom", "fieldRef", "volumes", "secret",
    "configMap", "hostPath", "projected", "sources", "livenessProbe", "httpGet", "status",
    "containerStatuses", "conditions", "strategy", "rollingUpdate", "updateStrategy",
    "jobTemplate", "volumeClaimTemplates", "selector", "resources", "limits", "requests",
    "cpu", "memory", "type", "subsets", "subjects", "roleRef", "behavior", "finalizers",
    "hostNetwork", "serviceAccountName", "sessionAffinity", "clusterIP", "capacity",
]  # fmt: skip
_scalars = st.none() | st.booleans() | st.integers(-2, 3) | st.sampled_from(["", "x", "1", "nginx"])
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(_FIELD_NAMES), inner, max_size=4)
    ),
    max_leaves=25,
)
_objects = st.dictionaries(st.sampled_from(_FIELD_NAMES), _values, max_size=5)
_KINDS = sorted(defaulting._DEFAULTERS)


@settings(max_examples=300)
@given(st.sampled_from(_KINDS), _objects, st.booleans())
def test_defaulting_is_idempotent_and_total(
    group_kind: tuple[str, str], obj: dict[str, Any], create: bool
) -> None:
    group, kind = group_kind
    once = defaulted(group, kind, obj, create=create)
    twice = defaulted(group, kind, once, create=create)
    assert twice == once


@settings(max_examples=100)
@given(
    st.lists(st.sampled_from(["nginx", "busybox:1.36", "r.io/a/b:latest", ""]), min_size=1),
    st.booleans(),
)
def test_workload_defaulting_is_idempotent(images: list[str], host_network: bool) -> None:
    spec = {
        "hostNetwork": host_network,
        "containers": [
            container(image, f"c{i}", ports=[{"containerPort": 80 + i}])
            for i, image in enumerate(images)
        ],
    }
    for group, kind, obj in [
        ("", "Pod", {"spec": copy.deepcopy(spec)}),
        ("apps", "Deployment", {"spec": {"template": {"spec": copy.deepcopy(spec)}}}),
        ("batch", "CronJob", {"spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}}),
    ]:
        once = defaulted(group, kind, obj)
        assert defaulted(group, kind, once) == once
