"""The real kubectl's ``create`` generators, ``expose``, ``run`` and ``auth`` against a started
server. kubectl v1.32 sends these as protobuf bodies (kybern.api.protobuf); each test checks
the object that landed in the store, read back as JSON."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

from tests.support import cluster
from tests.support import kubectl as kubectl_


def get(kubectl: kubectl_.Kubectl, ns: str, *what: str) -> dict[str, Any]:
    args = ("-n", ns) if ns else ()
    return dict(json.loads(kubectl(*args, "get", *what, "-o", "json").out))


def test_create_namespace(kubectl: kubectl_.Kubectl) -> None:
    name = f"pb-{uuid.uuid4().hex[:8]}"
    assert kubectl("create", "namespace", name).out.strip() == f"namespace/{name} created"
    created = get(kubectl, "", "namespace", name)
    assert created["status"]["phase"] == "Active"
    assert created["spec"]["finalizers"] == ["kubernetes"]


def test_create_deployment_with_replicas(kubectl: kubectl_.Kubectl, ns: str) -> None:
    out = kubectl("-n", ns, "create", "deployment", "web", "--image=nginx", "--replicas=3").out
    assert out.strip() == "deployment.apps/web created"
    deploy = get(kubectl, ns, "deployment", "web")
    assert deploy["spec"]["replicas"] == 3
    assert deploy["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert (container["name"], container["image"]) == ("nginx", "nginx")
    assert container["terminationMessagePath"] == "/dev/termination-log"  # defaulted
    assert deploy["spec"]["strategy"]["type"] == "RollingUpdate"


def test_create_deployment_with_zero_replicas_keeps_zero(
    kubectl: kubectl_.Kubectl, ns: str
) -> None:
    kubectl("-n", ns, "create", "deployment", "idle", "--image=nginx", "--replicas=0")
    assert get(kubectl, ns, "deployment", "idle")["spec"]["replicas"] == 0


def test_create_configmap_from_literal_file_and_directory(
    kubectl: kubectl_.Kubectl, ns: str, tmp_path: Path
) -> None:
    (tmp_path / "app.conf").write_text("mode=fast\n")
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha\n")
    (folder / "blob.bin").write_bytes(b"\xff\xfe\x00")
    kubectl(
        "-n",
        ns,
        "create",
        "configmap",
        "settings",
        "--from-literal=k=v",
        "--from-literal=empty=",
        f"--from-file={tmp_path / 'app.conf'}",
        f"--from-file={folder}",
    )
    cm = get(kubectl, ns, "configmap", "settings")
    assert cm["data"] == {"k": "v", "empty": "", "app.conf": "mode=fast\n", "a.txt": "alpha\n"}
    assert base64.b64decode(cm["binaryData"]["blob.bin"]) == b"\xff\xfe\x00"


def test_create_secret_generic(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "secret", "generic", "creds", "--from-literal=user=admin")
    secret = get(kubectl, ns, "secret", "creds")
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["user"]) == b"admin"


def test_create_service_clusterip(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "service", "clusterip", "web", "--tcp=80:8080")
    svc = get(kubectl, ns, "service", "web")
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["selector"] == {"app": "web"}
    assert svc["spec"]["ports"] == [
        {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}
    ]


def test_create_job_and_cronjob(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "job", "once", "--image=busybox", "--", "echo", "hi")
    job = get(kubectl, ns, "job", "once")
    pod_spec = job["spec"]["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Never"
    assert pod_spec["containers"][0]["command"] == ["echo", "hi"]
    kubectl("-n", ns, "create", "cronjob", "tick", "--image=busybox", "--schedule=*/5 * * * *")
    cron = get(kubectl, ns, "cronjob", "tick")
    assert cron["spec"]["schedule"] == "*/5 * * * *"
    template = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert template["restartPolicy"] == "OnFailure"
    assert template["containers"][0]["image"] == "busybox"


def test_create_role_and_rolebinding(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl(
        "-n", ns, "create", "role", "reader", "--verb=get,list", "--resource=pods,deployments.apps"
    )
    role = get(kubectl, ns, "role", "reader")
    assert role["rules"] == [
        {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]},
        {"verbs": ["get", "list"], "apiGroups": ["apps"], "resources": ["deployments"]},
    ]
    kubectl("-n", ns, "create", "rolebinding", "read", "--role=reader", "--user=alice")
    binding = get(kubectl, ns, "rolebinding", "read")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "reader",
    }
    assert binding["subjects"] == [
        {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}
    ]


def test_create_quota(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "quota", "limits", "--hard=cpu=1,memory=1Gi,pods=10")
    quota = get(kubectl, ns, "resourcequota", "limits")
    assert quota["spec"]["hard"] == {"cpu": "1", "memory": "1Gi", "pods": "10"}


def test_create_priorityclass(kubectl: kubectl_.Kubectl, ns: str) -> None:
    name = f"{ns}-high"
    kubectl("create", "priorityclass", name, "--value=1000", "--description=important")
    pc = get(kubectl, "", "priorityclass", name)
    assert (pc["value"], pc["description"]) == (1000, "important")
    assert pc["preemptionPolicy"] == "PreemptLowerPriority"
    kubectl("create", "priorityclass", f"{ns}-zero", "--value=0")
    assert get(kubectl, "", "priorityclass", f"{ns}-zero")["value"] == 0


def test_auth_can_i(kubectl: kubectl_.Kubectl) -> None:
    assert kubectl("auth", "can-i", "create", "deployments").out.strip() == "yes"
    assert kubectl("auth", "can-i", "delete", "nodes", "--all-namespaces").out.strip() == "yes"
    listed = kubectl("auth", "can-i", "--list").out
    assert listed.splitlines()[0].split() == [
        "Resources",
        "Non-Resource",
        "URLs",
        "Resource",
        "Names",
        "Verbs",
    ]
    assert "*.*" in listed


def test_auth_whoami(kubectl: kubectl_.Kubectl) -> None:
    out = json.loads(kubectl("auth", "whoami", "-o", "json").out)
    assert out["kind"] == "SelfSubjectReview"
    user = out["status"]["userInfo"]
    assert user["username"]
    assert "system:authenticated" in user["groups"]


def test_expose_deployment(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "deployment", "api", "--image=nginx")
    out = kubectl("-n", ns, "expose", "deployment", "api", "--port=80", "--target-port=8080").out
    assert out.strip() == "service/api exposed"
    svc = get(kubectl, ns, "service", "api")
    assert svc["spec"]["selector"] == {"app": "api"}
    assert svc["spec"]["ports"][0]["port"] == 80
    assert svc["spec"]["ports"][0]["targetPort"] == 8080


def test_run_creates_a_pod(kubectl: kubectl_.Kubectl, ns: str) -> None:
    assert kubectl("-n", ns, "run", "web", "--image=nginx").out.strip() == "pod/web created"
    pod = get(kubectl, ns, "pod", "web")
    assert pod["metadata"]["labels"] == {"run": "web"}
    assert pod["spec"]["containers"][0]["image"] == "nginx"


def test_dry_run_server_stores_nothing(kubectl: kubectl_.Kubectl, ns: str) -> None:
    out = kubectl(
        "-n", ns, "create", "deployment", "ghost", "--image=nginx", "--dry-run=server", "-o", "json"
    ).out
    assert json.loads(out)["spec"]["replicas"] == 1
    missing = kubectl("-n", ns, "get", "deployment", "ghost", check=False)
    assert missing.code == 1
    assert "NotFound" in missing.err


def test_review_without_attributes_is_invalid(raw: cluster.RawClient) -> None:
    response = raw.request(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        body={"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview"},
    )
    assert response.status == 422
    assert response.json["reason"] == "Invalid"


def test_bad_protobuf_body_is_a_bad_request(raw: cluster.RawClient, ns: str) -> None:
    response = raw.request(
        "POST",
        f"/api/v1/namespaces/{ns}/configmaps",
        body=b"k8s\x00\x0a\x05ab",
        content_type="application/vnd.kubernetes.protobuf",
    )
    assert response.status == 400
    assert response.json["reason"] == "BadRequest"
    assert "protobuf" in response.json["message"]
