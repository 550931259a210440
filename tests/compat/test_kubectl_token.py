"""ServiceAccount tokens through the real kubectl, against `kybern server` with its controller
manager (the serviceaccount and root-ca-cert-publisher controllers) but no scheduler or node:
`kubectl create token` prints a JWT that authenticates as the account (`kubectl auth whoami`),
every namespace gets `default` and `kube-root-ca.crt`, and new pods get the API credential
volume."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from tests.support import cluster
from tests.support import kubectl as kubectl_

pytestmark = pytest.mark.timeout(60)
MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kubectl_.Kubectl]:
    proc = cluster.start_server(
        tmp_path_factory.mktemp("kybern-tokens"),
        "--disable-scheduler",
        "--disable-agent",
        api_only=False,
    )
    try:
        yield kubectl_.Kubectl(proc.kubeconfig)
    finally:
        proc.stop()
    assert "Traceback" not in proc.logs(), proc.logs()


@pytest.fixture
def ns(kubectl: kubectl_.Kubectl) -> str:
    name = f"tok-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    cluster.wait_until(
        lambda: kubectl("get", "serviceaccount", "default", "-n", name, check=False).code == 0,
        timeout=10,
        what="the default ServiceAccount",
    )
    return name


def token_kubeconfig(admin: Path, token: str, path: Path) -> Path:
    """A kubeconfig with the cluster of ``admin`` and only a bearer token as credentials."""
    config = yaml.safe_load(admin.read_text())
    config["users"] = [{"name": "sa", "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = "sa"
    path.write_text(yaml.safe_dump(config))
    return path


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


def test_create_token_authenticates_as_the_account(
    kubectl: kubectl_.Kubectl, ns: str, tmp_path: Path
) -> None:
    token = kubectl("create", "token", "default", "-n", ns).out.strip()
    assert token.count(".") == 2
    got = claims(token)
    assert got["sub"] == f"system:serviceaccount:{ns}:default"
    assert got["aud"] == ["https://kubernetes.default.svc.cluster.local"]
    assert got["exp"] - got["iat"] == 3600

    as_account = kubectl_.Kubectl(token_kubeconfig(kubectl.kubeconfig, token, tmp_path / "sa"))
    review = json.loads(as_account("auth", "whoami", "-o", "json").out)
    user = review["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{ns}:default"
    assert user["groups"] == [
        "system:serviceaccounts",
        f"system:serviceaccounts:{ns}",
        "system:authenticated",
    ]
    # the account can use the API with it (no authorization policy yet)
    assert as_account("get", "serviceaccounts", "-n", ns, "-o", "name").out.split() == [
        "serviceaccount/default"
    ]


def test_duration_and_audience_flags(kubectl: kubectl_.Kubectl, ns: str) -> None:
    out = kubectl(
        "create", "token", "default", "-n", ns, "--duration", "20m", "--audience", "vault"
    ).out
    got = claims(out.strip())
    assert got["aud"] == ["vault"]
    assert got["exp"] - got["iat"] == 1200


def test_errors_read_as_kubernetes(kubectl: kubectl_.Kubectl, ns: str) -> None:
    missing = kubectl("create", "token", "ghost", "-n", ns, check=False)
    assert missing.code != 0
    assert 'serviceaccounts "ghost" not found' in missing.err
    short = kubectl("create", "token", "default", "-n", ns, "--duration", "5m", check=False)
    assert short.code != 0
    assert "may not specify a duration less than 10 minutes" in short.err


def test_a_deleted_accounts_token_stops_working(
    kubectl: kubectl_.Kubectl, ns: str, tmp_path: Path
) -> None:
    kubectl("create", "serviceaccount", "builder", "-n", ns)
    token = kubectl("create", "token", "builder", "-n", ns).out.strip()
    as_account = kubectl_.Kubectl(token_kubeconfig(kubectl.kubeconfig, token, tmp_path / "sa"))
    assert as_account("auth", "whoami", check=False).code == 0
    kubectl("delete", "serviceaccount", "builder", "-n", ns)
    refused = as_account("auth", "whoami", check=False)
    assert refused.code != 0
    assert "Unauthorized" in refused.err


def test_every_namespace_gets_the_root_ca(kubectl: kubectl_.Kubectl, ns: str) -> None:
    def published() -> Any:
        got = kubectl("get", "configmap", "kube-root-ca.crt", "-n", ns, "-o", "json", check=False)
        return json.loads(got.out) if got.code == 0 else None

    configmap = cluster.wait_until(published, timeout=10, what="kube-root-ca.crt")
    ca = yaml.safe_load(kubectl.kubeconfig.read_text())["clusters"][0]["cluster"]
    assert (
        configmap["data"]["ca.crt"] == base64.b64decode(ca["certificate-authority-data"]).decode()
    )


def test_pods_get_the_api_credential_volume(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl("run", "web", "--image", "busybox", "-n", ns)
    pod = json.loads(kubectl("get", "pod", "web", "-n", ns, "-o", "json").out)
    assert pod["spec"]["serviceAccountName"] == "default"
    [volume] = pod["spec"]["volumes"]
    assert volume["name"].startswith("kube-api-access-")
    [mount] = pod["spec"]["containers"][0]["volumeMounts"]
    assert mount == {"name": volume["name"], "readOnly": True, "mountPath": MOUNT}


def test_pods_of_a_missing_account_are_refused(kubectl: kubectl_.Kubectl, ns: str) -> None:
    refused = kubectl(
        "run", "web", "--image", "busybox", "-n", ns, "--overrides",
        '{"spec": {"serviceAccountName": "ghost"}}',
        check=False,
    )  # fmt: skip
    assert refused.code != 0
    assert (
        f'pods "web" is forbidden: error looking up service account {ns}/ghost: '
        'serviceaccount "ghost" not found'
    ) in refused.err


def test_python_client_token_request(kubectl: kubectl_.Kubectl, ns: str) -> None:
    api = kubernetes.config.new_client_from_config(config_file=str(kubectl.kubeconfig))
    try:
        body = kubernetes.client.AuthenticationV1TokenRequest(
            spec=kubernetes.client.V1TokenRequestSpec(audiences=["api"], expiration_seconds=900)
        )
        answer = kubernetes.client.CoreV1Api(api).create_namespaced_service_account_token(
            "default", ns, body
        )
    finally:
        api.close()
    assert answer.spec.audiences == ["api"]
    assert answer.spec.expiration_seconds == 900
    got = claims(answer.status.token)
    assert got["aud"] == ["api"]
    assert answer.status.expiration_timestamp.timestamp() == got["exp"]
