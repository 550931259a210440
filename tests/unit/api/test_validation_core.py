"""Per-kind rules for core/v1: Pod, Service, ConfigMap, Secret, Namespace, Node, RC."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from kybern.api import defaulting, errors, kinds, validation

from .test_validation_valid import sample


def info(api_version: str, kind: str) -> kinds.ResourceInfo:
    found = kinds.for_kind(api_version, kind)
    assert found is not None
    return found


POD = info("v1", "Pod")
SERVICE = info("v1", "Service")
CONFIG_MAP = info("v1", "ConfigMap")
SECRET = info("v1", "Secret")
NAMESPACE = info("v1", "Namespace")
NODE = info("v1", "Node")
RC = info("v1", "ReplicationController")


def create(kind_info: kinds.ResourceInfo, obj: dict[str, Any]) -> list[str]:
    return [c.message for c in validation.validate_create(kind_info, obj)]


def update(kind_info: kinds.ResourceInfo, new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    return [c.message for c in validation.validate_update(kind_info, new, old)]


def pod(**spec: Any) -> dict[str, Any]:
    obj = sample(POD)
    obj["spec"].update(spec)
    return obj


def container(**fields: Any) -> dict[str, Any]:
    return {"name": "c", "image": "busybox", **fields}


# -- Pod -----------------------------------------------------------------------------------


def test_pod_requires_containers() -> None:
    assert create(POD, pod(containers=[], volumes=[])) == ["spec.containers: Required value"]


def test_container_name_image_and_duplicates() -> None:
    causes = create(
        POD, pod(containers=[container(name="Bad_Name"), {"name": "c"}, container()], volumes=[])
    )
    assert causes[0].startswith(
        'spec.containers[0].name: Invalid value: "Bad_Name": a lowercase RFC 1123 label'
    )
    assert causes[1:] == [
        "spec.containers[1].image: Required value",
        'spec.containers[2].name: Duplicate value: "c"',
    ]


def test_init_and_regular_container_names_share_one_namespace() -> None:
    causes = create(POD, pod(initContainers=[container()], containers=[container()], volumes=[]))
    assert causes == ['spec.containers[0].name: Duplicate value: "c"']


def test_image_whitespace() -> None:
    causes = create(POD, pod(containers=[container(image=" busybox")], volumes=[]))
    assert causes == [
        'spec.containers[0].image: Invalid value: " busybox": must not have leading or trailing whitespace'
    ]


def test_ports() -> None:
    ports = [
        {"containerPort": 0},
        {"containerPort": 70000, "protocol": "HTTP", "name": "web"},
        {"containerPort": 80, "name": "web", "hostPort": 99999},
    ]
    causes = create(POD, pod(containers=[container(ports=ports)], volumes=[]))
    assert causes == [
        "spec.containers[0].ports[0].containerPort: Required value",
        "spec.containers[0].ports[1].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        'spec.containers[0].ports[1].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
        "spec.containers[0].ports[2].hostPort: Invalid value: 99999: must be between 1 and 65535, inclusive",
        'spec.containers[0].ports[2].name: Duplicate value: "web"',
    ]


def test_restart_and_dns_policy_values() -> None:
    causes = create(POD, pod(restartPolicy="Sometimes", dnsPolicy="Google"))
    assert causes == [
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
        'spec.dnsPolicy: Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", '
        '"ClusterFirst", "Default", "None"',
    ]
    assert create(POD, pod(dnsPolicy="None")) == [
        "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"
    ]


def test_resources() -> None:
    resources = {
        "requests": {"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": "1", "bogus": "1"},
        "limits": {"cpu": "1", "memory": "-1"},
    }
    causes = create(POD, pod(containers=[container(resources=resources)], volumes=[]))
    assert causes == [
        'spec.containers[0].resources.requests[bogus]: Invalid value: "bogus": must be a standard resource for containers',
        'spec.containers[0].resources.limits[memory]: Invalid value: "-1": must be greater than or equal to 0',
        'spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1',
        'spec.containers[0].resources.requests: Invalid value: "1Gi": must be less than or equal to memory limit of -1',
        "spec.containers[0].resources.limits[nvidia.com/gpu]: Required value: Limit must be set for non overcommitable resources",
    ]


def test_extended_resources_must_equal_limits() -> None:
    resources = {"requests": {"example.com/dev": "1"}, "limits": {"example.com/dev": "2"}}
    causes = create(POD, pod(containers=[container(resources=resources)], volumes=[]))
    assert causes == [
        'spec.containers[0].resources.requests: Invalid value: "1": must be equal to example.com/dev limit of 2'
    ]


def test_volumes_and_mounts() -> None:
    volumes = [{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}, {"name": "b"}]
    volumes.append({"name": "c", "emptyDir": {}, "hostPath": {"path": "/x"}})
    mounts = [
        {"name": "missing", "mountPath": "/m"},
        {"name": "a", "mountPath": "/m"},
        {"name": "a", "mountPath": "/n", "subPath": "../x"},
    ]
    causes = create(POD, pod(volumes=volumes, containers=[container(volumeMounts=mounts)]))
    assert causes == [
        'spec.volumes[1].name: Duplicate value: "a"',
        "spec.volumes[2]: Required value: must specify a volume type",
        "spec.volumes[3].hostPath: Forbidden: may not specify more than 1 volume type",
        'spec.containers[0].volumeMounts[0].name: Not found: "missing"',
        'spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/m": must be unique',
        "spec.containers[0].volumeMounts[2].subPath: Invalid value: \"../x\": must not contain '..'",
    ]


def test_env_and_probes() -> None:
    env = [
        {"name": ""},
        {"name": "A=B"},
        {"name": "X", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "Y", "valueFrom": {}},
    ]
    probe = {"exec": {"command": ["true"]}, "httpGet": {"port": 80}, "successThreshold": 2}
    causes = create(POD, pod(containers=[container(env=env, livenessProbe=probe)], volumes=[]))
    assert causes[0] == "spec.containers[0].env[0].name: Required value"
    assert causes[1].startswith('spec.containers[0].env[1].name: Invalid value: "A=B"')
    assert causes[2].endswith("may not be specified when `value` is not empty")
    assert causes[3].endswith(
        "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"
    )
    assert causes[4:] == [
        "spec.containers[0].livenessProbe.httpGet: Forbidden: may not specify more than 1 handler type",
        "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
    ]


def test_tolerations_and_deadline() -> None:
    tolerations = [
        {"operator": "Equal", "value": "x"},
        {"key": "k", "operator": "Exists", "value": "v", "effect": "Never"},
    ]
    causes = create(POD, pod(tolerations=tolerations, activeDeadlineSeconds=0))
    assert causes == [
        "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
        'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, which means "match all values and all keys"',
        "spec.tolerations[1].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'",
        'spec.tolerations[1].effect: Unsupported value: "Never": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
    ]


def defaulted_pod() -> dict[str, Any]:
    obj = sample(POD)
    defaulting.default("", "Pod", obj)
    return obj


def test_pod_update_allows_image_deadline_and_new_tolerations() -> None:
    old = defaulted_pod()
    old["spec"]["tolerations"] = [{"key": "a", "operator": "Exists"}]
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.26"
    new["spec"]["activeDeadlineSeconds"] = 30
    new["spec"]["tolerations"].append({"key": "b", "operator": "Exists"})
    assert update(POD, new, old) == []


def test_pod_update_forbids_other_spec_changes() -> None:
    old = defaulted_pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["ports"][0]["containerPort"] = 81
    new["spec"]["restartPolicy"] = "Never"
    [message] = update(POD, new, old)
    assert message.startswith(
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    )
    assert message.endswith("spec.containers, spec.restartPolicy")


def test_pod_update_deadline_rules() -> None:
    old = defaulted_pod()
    old["spec"]["activeDeadlineSeconds"] = 30
    longer = copy.deepcopy(old)
    longer["spec"]["activeDeadlineSeconds"] = 60
    assert update(POD, longer, old) == [
        "spec.activeDeadlineSeconds: Invalid value: 60: must be less than or equal to previous value"
    ]
    removed = copy.deepcopy(old)
    del removed["spec"]["activeDeadlineSeconds"]
    assert update(POD, removed, old) == [
        "spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value"
    ]


def test_pod_update_cannot_remove_tolerations() -> None:
    old = defaulted_pod()
    old["spec"]["tolerations"] = [{"key": "a", "operator": "Exists"}]
    new = copy.deepcopy(old)
    new["spec"]["tolerations"] = []
    [message] = update(POD, new, old)
    assert message.endswith("spec.tolerations")


# -- Service -------------------------------------------------------------------------------


def service(**spec: Any) -> dict[str, Any]:
    obj = sample(SERVICE)
    obj["spec"].update(spec)
    return obj


def test_service_name_is_dns1035() -> None:
    obj = service()
    obj["metadata"]["name"] = "1web"
    [message] = create(SERVICE, obj)
    assert message.startswith('metadata.name: Invalid value: "1web": a DNS-1035 label')


def test_service_ports_required_unless_headless_or_external_name() -> None:
    assert create(SERVICE, service(ports=[])) == ["spec.ports: Required value"]
    assert create(SERVICE, service(ports=[], clusterIP="None")) == []
    assert (
        create(SERVICE, service(ports=[], type="ExternalName", externalName="db.example.com."))
        == []
    )
    assert create(SERVICE, service(ports=[], type="ExternalName")) == [
        "spec.externalName: Required value"
    ]


def test_service_ports() -> None:
    ports = [
        {"port": 80, "targetPort": 70000},
        {"name": "b", "port": 0, "targetPort": "bad--name", "nodePort": 30080},
        {"name": "b", "port": 80, "protocol": "TCP"},
    ]
    causes = create(SERVICE, service(ports=ports, type="ClusterIP"))
    assert causes == [
        "spec.ports[0].name: Required value",
        "spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
        'spec.ports[1].targetPort: Invalid value: "bad--name": must not contain consecutive hyphens',
        "spec.ports[1].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
        'spec.ports[2].name: Duplicate value: "b"',
        'spec.ports[2]: Duplicate value: {"port":80,"protocol":"TCP"}',
    ]


def test_service_type_and_cluster_ip() -> None:
    assert create(SERVICE, service(type="Magic")) == [
        'spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"'
    ]
    assert create(SERVICE, service(clusterIP="10.0.0.300")) == [
        'spec.clusterIPs[0]: Invalid value: "10.0.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'
    ]
    assert create(SERVICE, service(type="NodePort", clusterIP="None")) == [
        "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"
    ]
    assert create(SERVICE, service(clusterIP="10.0.0.1", clusterIPs=["10.0.0.2"])) == [
        'spec.clusterIPs: Invalid value: []string{"10.0.0.2"}: first value must match `clusterIP`'
    ]
    assert create(SERVICE, service(externalTrafficPolicy="Local")) == [
        "spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set when `type` is 'NodePort' or 'LoadBalancer'"
    ]


def test_service_cluster_ip_immutable() -> None:
    old = service(clusterIP="10.0.0.1", clusterIPs=["10.0.0.1"])
    new = service(clusterIP="10.0.0.2", clusterIPs=["10.0.0.2"])
    assert update(SERVICE, new, old) == [
        'spec.clusterIPs[0]: Invalid value: []string{"10.0.0.2"}: may not change once set'
    ]
    assert update(SERVICE, service(), old) == []  # left empty: the server keeps the old IP


# -- ConfigMap, Secret ---------------------------------------------------------------------


def test_config_map_keys() -> None:
    obj = sample(CONFIG_MAP)
    obj["data"] = {"..x": "1", "both": "1"}
    obj["binaryData"] = {"both": "AA=="}
    assert create(CONFIG_MAP, obj) == [
        "data[..x]: Invalid value: \"..x\": must not start with '..'",
        'data[both]: Invalid value: "both": duplicate of key present in binaryData',
    ]


def test_config_map_size_limit() -> None:
    obj = sample(CONFIG_MAP)
    obj["data"] = {"big": "x" * (1024 * 1024 + 1)}
    assert create(CONFIG_MAP, obj) == ["data: Too long: may not be more than 1048576 bytes"]


def test_immutable_config_map() -> None:
    old = sample(CONFIG_MAP)
    old["immutable"] = True
    new = copy.deepcopy(old)
    new["data"] = {"a.txt": "changed"}
    new["immutable"] = False
    assert update(CONFIG_MAP, new, old) == [
        "data: Forbidden: field is immutable when `immutable` is set",
        "immutable: Forbidden: field is immutable when `immutable` is set",
    ]


def secret(secret_type: str, **data: str) -> dict[str, Any]:
    obj = sample(SECRET)
    obj["type"] = secret_type
    obj["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    obj.pop("stringData")
    return obj


@pytest.mark.parametrize(
    ("secret_type", "data", "expected"),
    [
        ("Opaque", {}, []),
        ("kubernetes.io/tls", {"tls.crt": "c"}, ["data[tls.key]: Required value"]),
        ("kubernetes.io/tls", {"tls.crt": "c", "tls.key": "k"}, []),
        (
            "kubernetes.io/basic-auth",
            {},
            ["data[username]: Required value", "data[password]: Required value"],
        ),
        ("kubernetes.io/basic-auth", {"password": "p"}, []),
        ("kubernetes.io/ssh-auth", {}, ["data[ssh-privatekey]: Required value"]),
        ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": '{"auths":{}}'}, []),
        (
            "kubernetes.io/service-account-token",
            {},
            ["metadata.annotations[kubernetes.io/service-account.name]: Required value"],
        ),
    ],
)
def test_secret_types(secret_type: str, data: dict[str, str], expected: list[str]) -> None:
    assert create(SECRET, secret(secret_type, **data)) == expected


def test_secret_bad_docker_config_and_keys() -> None:
    [message] = create(
        SECRET, secret("kubernetes.io/dockerconfigjson", **{".dockerconfigjson": "nope"})
    )
    assert message.startswith(
        'data[.dockerconfigjson]: Invalid value: "<secret contents redacted>"'
    )
    bad_key = secret("Opaque", **{"a b": "x"})
    assert create(SECRET, bad_key)[0].startswith(
        'data[a b]: Invalid value: "a b": a valid config key'
    )


def test_secret_type_immutable() -> None:
    old = secret("Opaque")
    new = secret("kubernetes.io/tls", **{"tls.crt": "c", "tls.key": "k"})
    assert update(SECRET, new, old) == [
        'type: Invalid value: "kubernetes.io/tls": field is immutable'
    ]


def test_secret_bad_base64_is_bad_request() -> None:
    obj = secret("Opaque")
    obj["data"] = {"a": "!!!"}
    with pytest.raises(errors.BadRequest, match="illegal base64 data at input byte 0"):
        validation.validate_create(SECRET, obj)


# -- Namespace, Node, ReplicationController ------------------------------------------------


def test_namespace_finalizers_and_status() -> None:
    obj = sample(NAMESPACE)
    obj["spec"] = {"finalizers": ["kubernetes", "custom"]}
    assert create(NAMESPACE, obj) == [
        'spec.finalizers: Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified'
    ]
    new = sample(NAMESPACE)
    new["status"] = {"phase": "Gone"}
    assert [
        c.message for c in validation.validate_status_update(NAMESPACE, new, sample(NAMESPACE))
    ] == ['status.phase: Unsupported value: "Gone": supported values: "Active", "Terminating"']


def test_node_taints_and_cidr() -> None:
    obj = sample(NODE)
    obj["spec"] = {
        "podCIDR": "10.0.0.0/33",
        "taints": [
            {"key": "a", "effect": "NoSchedule"},
            {"key": "a", "effect": "NoSchedule"},
            {"key": "b"},
        ],
    }
    assert create(NODE, obj) == [
        "spec.taints[2].effect: Required value",
        'spec.taints[1]: Duplicate value: map[string]string{"key":"a", "effect":"NoSchedule"}: '
        "taints must be unique by key and effect pair",
        'spec.podCIDR: Invalid value: "10.0.0.0/33": must be a valid CIDR value, '
        "(e.g. 10.9.8.0/24 or 2001:db8::/64)",
    ]
    old = sample(NODE)
    new = copy.deepcopy(old)
    new["spec"]["podCIDR"] = "10.0.1.0/24"
    assert update(NODE, new, old) == ["spec.podCIDR: Forbidden: podCIDR may not change once set"]


def test_replication_controller_selector_must_match_template() -> None:
    obj = sample(RC)
    obj["spec"]["selector"] = {"app": "other"}
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert create(RC, obj) == [
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`',
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
    ]
