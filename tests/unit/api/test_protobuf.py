"""Protobuf request bodies (kybern.api.protobuf): real bodies captured from kubectl v1.32's
``create`` generators and ``auth`` commands decode to the dicts the JSON path would give, and
hand-built bodies pin the wire-format rules (zero values, packed fields, IntOrString, Time,
unknown fields, bad input)."""

from __future__ import annotations

import pytest

from kybern.api import protobuf, schema

# Captured with a recording proxy between kubectl v1.32 and kybern: the exact request bodies of
#   kubectl create namespace capns
#   kubectl create deployment web --image=nginx --replicas=3 -n capns
#   kubectl create deployment zero2 --image=nginx --replicas=0 -n capns --dry-run=server
#   kubectl create configmap cm1 --from-literal=k=v --from-file=f1.txt --from-file=dir -n capns
#     (dir holds a.txt "a\n" and bin.dat b"\xff\xfe")
#   kubectl create secret generic s1 --from-literal=user=admin --from-literal=pw=s3cr3t -n capns
#   kubectl create service nodeport np1 --tcp=80:8080 --node-port=30080 -n capns
#   kubectl create job j1 --image=busybox -n capns -- echo hi
#   kubectl create cronjob cj1 --image=busybox --schedule='*/5 * * * *' -n capns -- date
#   kubectl create role r1 --verb=get,list --resource=pods,deployments.apps --resource-name=x
#   kubectl create rolebinding rb1 --role=r1 --user=alice --group=devs
#     --serviceaccount=capns:default -n capns
#   kubectl create quota q1 --hard=cpu=1,memory=1Gi,pods=10 --scopes=BestEffort -n capns
#   kubectl create priorityclass pcz --value=0 --dry-run=server
#   kubectl auth can-i create deployments / auth can-i --list -n capns / auth whoami

NAMESPACE = bytes.fromhex(
    "6b3873000a0f0a02763112094e616d657370616365121d0a150a056361706e7312001a0022002a0032003800"
    "420012001a020a001a002200"
)

DEPLOYMENT = bytes.fromhex(
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412b0010a240a0377656212001a05636170"
    "6e7322002a003200380042005a0a0a036170701203776562127a0803120c0a0a0a0361707012037765621a60"
    "0a1c0a0012001a0022002a003200380042005a0a0a036170701203776562124012220a056e67696e7812056e"
    "67696e782a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a"
    "01009a0100c2010022020a00280038001a0c0800100018002000280038001a002200"
)

DEPLOYMENT_ZERO_REPLICAS = bytes.fromhex(
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412b8010a280a057a65726f3212001a0563"
    "61706e7322002a003200380042005a0c0a0361707012057a65726f32127e0800120e0a0c0a0361707012057a"
    "65726f321a620a1e0a0012001a0022002a003200380042005a0c0a0361707012057a65726f32124012220a05"
    "6e67696e7812056e67696e782a0042006a007200800100880100900100a201001a00320042004a0052005800"
    "600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000280038001a002200"
)

CONFIGMAP = bytes.fromhex(
    "6b3873000a0f0a0276311209436f6e6669674d617012500a180a03636d3112001a056361706e7322002a0032"
    "0038004200120b0a05612e7478741202610a12100a0666312e747874120668656c6c6f0a12060a016b120176"
    "1a0d0a0762696e2e6461741202fffe1a002200"
)

SECRET = bytes.fromhex(
    "6b3873000a0c0a027631120653656372657412380a170a02733112001a056361706e7322002a003200380042"
    "00120c0a0270771206733363723374120d0a0475736572120561646d696e1a001a002200"
)

SERVICE_NODEPORT = bytes.fromhex(
    "6b3873000a0d0a027631120753657276696365126f0a240a036e703112001a056361706e7322002a00320038"
    "0042005a0a0a0361707012036e703112430a1d0a0738302d38303830120354435018502207080010903f1a00"
    "2880eb01120a0a0361707012036e70311a0022084e6f6465506f72743a00420052005a00600068001a020a00"
    "1a002200"
)

JOB = bytes.fromhex(
    "6b3873000a0f0a0862617463682f763112034a6f621289010a170a026a3112001a056361706e7322002a0032"
    "0038004200126432620a100a0012001a0022002a00320038004200124e122b0a026a31120762757379626f78"
    "1a046563686f1a0268692a0042006a007200800100880100900100a201001a054e65766572320042004a0052"
    "005800600068008201008a01009a0100c201001a082000280030003a001a002200"
)

CRONJOB = bytes.fromhex(
    "6b3873000a130a0862617463682f7631120743726f6e4a6f6212ac010a180a03636a3112001a056361706e73"
    "22002a00320038004200128d010a0b2a2f35202a202a202a202a1a002a7c0a130a03636a3112001a0022002a"
    "00320038004200126532630a100a0012001a0022002a00320038004200124f12280a03636a31120762757379"
    "626f781a04646174652a0042006a007200800100880100900100a201001a094f6e4661696c75726532004200"
    "4a0052005800600068008201008a01009a0100c201001a001a002200"
)

ROLE = bytes.fromhex(
    "6b3873000a240a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f76311204526f6c651254"
    "0a170a02723112001a056361706e7322002a0032003800420012160a036765740a046c69737412001a04706f"
    "647322017812210a036765740a046c6973741204617070731a0b6465706c6f796d656e74732201781a002200"
)

ROLEBINDING = bytes.fromhex(
    "6b3873000a2b0a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120b526f6c654269"
    "6e64696e6712bd010a180a0372623112001a056361706e7322002a00320038004200122a0a04557365721219"
    "726261632e617574686f72697a6174696f6e2e6b38732e696f1a05616c6963652200122a0a0547726f757012"
    "19726261632e617574686f72697a6174696f6e2e6b38732e696f1a0464657673220012220a0e536572766963"
    "654163636f756e7412001a0764656661756c7422056361706e731a250a19726261632e617574686f72697a61"
    "74696f6e2e6b38732e696f1204526f6c651a0272311a002200"
)

QUOTA = bytes.fromhex(
    "6b3873000a130a027631120d5265736f7572636551756f746112540a170a02713112001a056361706e732200"
    "2a0032003800420012370a0a0a0363707512030a01310a0f0a066d656d6f727912050a033147690a0c0a0470"
    "6f647312040a023130120a426573744566666f72741a001a002200"
)

PRIORITYCLASS_ZERO = bytes.fromhex(
    "6b3873000a250a147363686564756c696e672e6b38732e696f2f7631120d5072696f72697479436c61737312"
    "310a130a0370637a12001a0022002a003200380042001000180022002a14507265656d70744c6f7765725072"
    "696f726974791a002200"
)

SELF_SUBJECT_ACCESS_REVIEW = bytes.fromhex(
    "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a656374"
    "416363657373526576696577124a0a100a0012001a0022002a00320038004200122c0a2a0a0764656661756c"
    "7412066372656174651a046170707322002a0b6465706c6f796d656e747332003a001a08080012001a002000"
    "1a002200"
)

SELF_SUBJECT_RULES_REVIEW = bytes.fromhex(
    "6b3873000a310a17617574686f72697a6174696f6e2e6b38732e696f2f7631121653656c665375626a656374"
    "52756c657352657669657712210a100a0012001a0022002a0032003800420012070a056361706e731a041800"
    "22001a002200"
)

SELF_SUBJECT_REVIEW = bytes.fromhex(
    "6b3873000a2d0a1861757468656e7469636174696f6e2e6b38732e696f2f7631121153656c665375626a6563"
    "74526576696577121a0a100a0012001a0022002a0032003800420012060a040a0012001a002200"
)


def decoded(body: bytes) -> dict[str, object]:
    result = protobuf.decode(body)
    assert result.unknown == []
    return result.obj


# -- real kubectl bodies -----------------------------------------------------------------------


def test_namespace() -> None:
    assert decoded(NAMESPACE) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "capns"},
        "spec": {},
        "status": {},
    }


def test_deployment_with_pod_template() -> None:
    labels = {"app": "web"}
    assert decoded(DEPLOYMENT) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "capns", "labels": labels},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]},
            },
            "strategy": {},
        },
        "status": {},
    }


def test_explicit_zero_of_a_pointer_field_survives() -> None:
    spec = decoded(DEPLOYMENT_ZERO_REPLICAS)["spec"]
    assert isinstance(spec, dict)
    assert spec["replicas"] == 0


def test_configmap_data_and_binary_data() -> None:
    assert decoded(CONFIGMAP) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm1", "namespace": "capns"},
        "data": {"a.txt": "a\n", "f1.txt": "hello\n", "k": "v"},
        "binaryData": {"bin.dat": "//4="},
    }


def test_secret_data_is_base64() -> None:
    assert decoded(SECRET)["data"] == {"pw": "czNjcjN0", "user": "YWRtaW4="}


def test_service_ports_with_int_or_string_target() -> None:
    spec = decoded(SERVICE_NODEPORT)["spec"]
    assert spec == {
        "ports": [
            {
                "name": "80-8080",
                "protocol": "TCP",
                "port": 80,
                "targetPort": 8080,
                "nodePort": 30080,
            }
        ],
        "selector": {"app": "np1"},
        "type": "NodePort",
    }


def test_job_and_cronjob() -> None:
    job = decoded(JOB)
    assert job["spec"] == {
        "template": {
            "metadata": {},
            "spec": {
                "containers": [
                    {"name": "j1", "image": "busybox", "command": ["echo", "hi"], "resources": {}}
                ],
                "restartPolicy": "Never",
            },
        }
    }
    cron = decoded(CRONJOB)["spec"]
    assert isinstance(cron, dict)
    assert cron["schedule"] == "*/5 * * * *"
    assert cron["jobTemplate"]["metadata"] == {"name": "cj1"}
    assert cron["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"


def test_role_keeps_the_empty_core_group_in_lists() -> None:
    assert decoded(ROLE)["rules"] == [
        {
            "verbs": ["get", "list"],
            "apiGroups": [""],
            "resources": ["pods"],
            "resourceNames": ["x"],
        },
        {
            "verbs": ["get", "list"],
            "apiGroups": ["apps"],
            "resources": ["deployments"],
            "resourceNames": ["x"],
        },
    ]


def test_rolebinding_subjects_and_role_ref() -> None:
    binding = decoded(ROLEBINDING)
    assert binding["subjects"] == [
        {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
        {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs"},
        {"kind": "ServiceAccount", "name": "default", "namespace": "capns"},
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "r1",
    }


def test_quota_quantities_are_strings() -> None:
    assert decoded(QUOTA)["spec"] == {
        "hard": {"cpu": "1", "memory": "1Gi", "pods": "10"},
        "scopes": ["BestEffort"],
    }


def test_required_zero_value_is_kept() -> None:
    # PriorityClass.value has no omitempty: JSON keeps 0, and so must we.
    assert decoded(PRIORITYCLASS_ZERO) == {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": "pcz"},
        "value": 0,
        "preemptionPolicy": "PreemptLowerPriority",
    }


def test_access_reviews() -> None:
    assert decoded(SELF_SUBJECT_ACCESS_REVIEW) == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "metadata": {},
        "spec": {
            "resourceAttributes": {
                "namespace": "default",
                "verb": "create",
                "group": "apps",
                "resource": "deployments",
            }
        },
        "status": {"allowed": False},
    }
    assert decoded(SELF_SUBJECT_RULES_REVIEW)["spec"] == {"namespace": "capns"}
    assert decoded(SELF_SUBJECT_REVIEW)["kind"] == "SelfSubjectReview"


# -- hand-built bodies -------------------------------------------------------------------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, value: int | bytes | str) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    raw = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(raw)) + raw


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = field(1, api_version) + field(2, kind)
    return protobuf.MAGIC + field(1, type_meta) + field(2, raw)


def meta(name: str) -> bytes:
    return field(1, field(1, name))


def test_zero_values_of_plain_fields_are_dropped_like_json_omitempty() -> None:
    container = field(1, "c") + field(2, "img") + field(5, "") + field(16, 0)  # workingDir, stdin
    pod_spec = field(2, container) + field(6, "") + field(11, 0)  # dnsPolicy, hostNetwork
    body = envelope("v1", "Pod", meta("p") + field(2, pod_spec))
    assert decoded(body)["spec"] == {"containers": [{"name": "c", "image": "img"}]}


def test_pointer_false_and_zero_are_kept() -> None:
    pod_spec = field(21, 0) + field(4, 0)  # automountServiceAccountToken, grace period
    body = envelope("v1", "Pod", meta("p") + field(2, pod_spec))
    assert decoded(body)["spec"] == {
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 0,
    }


def test_negative_integers_and_repeated_scalars_packed_or_not() -> None:
    context = field(2, -1) + field(4, 5) + field(4, 6)  # runAsUser=-1, supplementalGroups
    packed = field(4, varint(7) + varint(8))
    body = envelope("v1", "Pod", meta("p") + field(2, field(14, context + packed)))
    assert decoded(body)["spec"] == {
        "securityContext": {"runAsUser": -1, "supplementalGroups": [5, 6, 7, 8]}
    }


def test_int_or_string_probe_handler_inlined() -> None:
    port = field(1, 1) + field(3, "http")  # IntOrString type=String
    probe = field(1, field(2, field(1, "/healthz") + field(2, port))) + field(2, 3)
    container = field(1, "c") + field(10, probe)
    body = envelope("v1", "Pod", meta("p") + field(2, field(2, container)))
    spec = decoded(body)["spec"]
    assert spec == {
        "containers": [
            {
                "name": "c",
                "livenessProbe": {
                    "httpGet": {"path": "/healthz", "port": "http"},
                    "initialDelaySeconds": 3,
                },
            }
        ]
    }


def test_inlined_volume_source_and_local_object_reference() -> None:
    config_map = field(1, field(1, "settings")) + field(3, 0o644)
    volume = field(1, "cfg") + field(2, field(19, config_map))
    body = envelope("v1", "Pod", meta("p") + field(2, field(1, volume)))
    assert decoded(body)["spec"] == {
        "volumes": [{"name": "cfg", "configMap": {"name": "settings", "defaultMode": 420}}]
    }


def test_time_fields() -> None:
    stamp = field(1, 1_700_000_000) + field(2, 0)
    body = envelope("v1", "Namespace", field(1, field(1, "n") + field(9, stamp)))
    assert decoded(body)["metadata"] == {"name": "n", "deletionTimestamp": "2023-11-14T22:13:20Z"}
    zero = envelope("v1", "Namespace", field(1, field(1, "n") + field(8, b"")))
    assert decoded(zero)["metadata"] == {"name": "n"}


def test_delete_options_grace_period_zero() -> None:
    body = envelope("meta.k8s.io/v1", "DeleteOptions", field(1, 0) + field(4, "Foreground"))
    assert decoded(body) == {
        "apiVersion": "meta.k8s.io/v1",
        "kind": "DeleteOptions",
        "gracePeriodSeconds": 0,
        "propagationPolicy": "Foreground",
    }


def test_unknown_field_numbers_are_skipped_and_reported() -> None:
    body = envelope("v1", "ConfigMap", meta("c") + field(99, "x") + field(2, field(1, "k")))
    result = protobuf.decode(body)
    assert result.obj["data"] == {"k": ""}
    assert result.unknown == ["[99]"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{}", "magic"),
        (protobuf.MAGIC + b"\x0a\x05ab", "truncated"),
        (protobuf.MAGIC + b"\x0a", "truncated varint"),
        (envelope("v1", "", b""), "no kind"),
        (envelope("v1", "Bogus", b""), "no protobuf decoding"),
        (envelope("v1", "ConfigMap", field(4, b"\xff\xfe")), "length-delimited"),
        (envelope("v1", "ConfigMap", field(1, field(1, b"\xff"))), "UTF-8"),
        (protobuf.MAGIC + b"\x0b", "wire type"),
    ],
)
def test_bad_bodies_raise_decode_error(body: bytes, message: str) -> None:
    with pytest.raises(protobuf.DecodeError) as caught:
        protobuf.decode(body)
    assert message in str(caught.value)


# -- coverage of the field table ---------------------------------------------------------------

ROOTS = [
    "io.k8s.api.core.v1.Namespace",
    "io.k8s.api.apps.v1.Deployment",
    "io.k8s.api.core.v1.ConfigMap",
    "io.k8s.api.core.v1.Secret",
    "io.k8s.api.core.v1.Service",
    "io.k8s.api.core.v1.Pod",
    "io.k8s.api.batch.v1.Job",
    "io.k8s.api.batch.v1.CronJob",
    "io.k8s.api.rbac.v1.Role",
    "io.k8s.api.rbac.v1.RoleBinding",
    "io.k8s.api.rbac.v1.ClusterRole",
    "io.k8s.api.rbac.v1.ClusterRoleBinding",
    "io.k8s.api.core.v1.ResourceQuota",
    "io.k8s.api.scheduling.v1.PriorityClass",
    "io.k8s.api.authorization.v1.SelfSubjectAccessReview",
    "io.k8s.api.authorization.v1.SelfSubjectRulesReview",
    "io.k8s.api.authorization.v1.SubjectAccessReview",
    "io.k8s.api.authorization.v1.LocalSubjectAccessReview",
    "io.k8s.api.authentication.v1.SelfSubjectReview",
    "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "io.k8s.api.core.v1.ServiceAccount",
    "io.k8s.api.networking.v1.Ingress",
    "io.k8s.api.policy.v1.PodDisruptionBudget",
]
_OPAQUE = {
    schema.QUANTITY,
    schema.INT_OR_STRING,
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
}


def _field_names(message: str) -> set[str]:
    names = set()
    for spec in protobuf.table(message).values():
        names |= _field_names(spec.inline) if spec.inline else {spec.name}
    return names


def _references(fragment: schema.Schema) -> list[str]:
    found = []
    for part in (fragment, fragment.get("items"), fragment.get("additionalProperties")):
        if isinstance(part, dict):
            name = schema.ref_name(part)
            found += [name] if name else []
            items = part.get("items")
            if isinstance(items, dict) and schema.ref_name(items):
                found.append(str(schema.ref_name(items)))
    return found


def test_every_field_reachable_from_the_covered_kinds_has_a_number() -> None:
    missing, seen, todo = [], set(), list(ROOTS)
    while todo:
        name = todo.pop()
        if name in seen or name in _OPAQUE:
            continue
        seen.add(name)
        if name not in protobuf.messages():
            missing.append(name)
            continue
        numbered = _field_names(name)
        for prop, fragment in schema.properties(schema.definition(name)).items():
            if prop not in ("apiVersion", "kind") and prop not in numbered:
                missing.append(f"{name}.{prop}")
            todo += _references(fragment)
    assert missing == []


def test_field_numbers_are_unique_per_message() -> None:
    for message in protobuf.messages():
        names = [spec.name or spec.inline for spec in protobuf.table(message).values()]
        assert len(names) == len(set(names)), message
