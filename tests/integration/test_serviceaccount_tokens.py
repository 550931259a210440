"""ServiceAccount tokens end to end: TokenRequest, the ServiceAccount admission plugin, and
bearer-token authentication with the issued JWTs."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest

from kybern.apiserver import server

from .conftest import Client

pytestmark = pytest.mark.timeout(20)

ISSUER = "https://kubernetes.default.svc.cluster.local"
SA_PATH = "/api/v1/namespaces/default/serviceaccounts"
PODS = "/api/v1/namespaces/default/pods"
MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def token_request(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}


def pod(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("containers", [{"name": "main", "image": "busybox"}])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def create_account(
    client: Client, name: str, namespace: str = "default", **extra: Any
) -> Any:
    body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}, **extra}
    status, sa = await client.post(f"/api/v1/namespaces/{namespace}/serviceaccounts", body)
    assert status == 201, sa
    return sa


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})  # type: ignore[no-any-return]


def stamp(value: str) -> int:
    return int(datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


class TestTokenRequest:
    async def test_issues_a_token_for_the_account(self, client: Client) -> None:
        sa = await create_account(client, "builder")
        status, answer = await client.post(f"{SA_PATH}/builder/token", token_request())
        assert status == 201, answer
        assert answer["kind"] == "TokenRequest"
        assert answer["metadata"]["name"] == "builder"
        assert answer["metadata"]["namespace"] == "default"
        assert answer["spec"] == {
            "audiences": [ISSUER],
            "expirationSeconds": 3600,
            "boundObjectRef": None,
        }
        got = claims(answer["status"]["token"])
        assert got["sub"] == "system:serviceaccount:default:builder"
        assert got["aud"] == [ISSUER]
        assert got["kubernetes.io"]["serviceaccount"] == {
            "name": "builder",
            "uid": sa["metadata"]["uid"],
        }
        expires = stamp(answer["status"]["expirationTimestamp"])
        assert expires == stamp(answer["metadata"]["creationTimestamp"]) + 3600
        assert got["exp"] == expires

    async def test_audiences_and_expiration_are_honoured(self, client: Client) -> None:
        await create_account(client, "builder")
        body = token_request(audiences=["vault"], expirationSeconds=600)
        status, answer = await client.post(f"{SA_PATH}/builder/token", body)
        assert status == 201, answer
        got = claims(answer["status"]["token"])
        assert got["aud"] == ["vault"]
        assert got["exp"] - got["iat"] == 600

    async def test_missing_account_is_404(self, client: Client) -> None:
        status, answer = await client.post(f"{SA_PATH}/ghost/token", token_request())
        assert (status, answer["reason"]) == (404, "NotFound")
        assert answer["message"] == 'serviceaccounts "ghost" not found'

    async def test_short_expiration_is_invalid(self, client: Client) -> None:
        await create_account(client, "builder")
        status, answer = await client.post(
            f"{SA_PATH}/builder/token", token_request(expirationSeconds=60)
        )
        assert (status, answer["reason"]) == (422, "Invalid")
        assert answer["details"]["causes"][0]["field"] == "spec.expirationSeconds"
        assert "may not specify a duration less than 10 minutes" in answer["message"]

    async def test_name_must_match_the_url(self, client: Client) -> None:
        await create_account(client, "builder")
        body = {**token_request(), "metadata": {"name": "other"}}
        status, answer = await client.post(f"{SA_PATH}/builder/token", body)
        assert (status, answer["reason"]) == (422, "Invalid")
        assert answer["details"]["causes"][0]["field"] == "metadata.name"

    @pytest.mark.parametrize(
        "body",
        [
            [],
            {"apiVersion": "v1", "kind": "Pod"},
            token_request(expirationSeconds="long"),
            token_request(audiences="api"),
            token_request(boundObjectRef={"kind": "ConfigMap", "apiVersion": "v1", "name": "x"}),
        ],
        ids=["not-an-object", "wrong-kind", "string-expiration", "string-audiences", "configmap"],
    )
    async def test_bad_input_is_400(self, client: Client, body: Any) -> None:
        await create_account(client, "builder")
        status, answer = await client.post(f"{SA_PATH}/builder/token", body)
        assert (status, answer["reason"]) == (400, "BadRequest"), answer

    async def test_get_is_not_allowed(self, client: Client) -> None:
        await create_account(client, "builder")
        status, _ = await client.get(f"{SA_PATH}/builder/token")
        assert status == 405


class TestPodBoundTokens:
    async def test_bound_to_a_pod(self, client: Client) -> None:
        await create_account(client, "builder")
        status, created = await client.post(PODS, pod("web", serviceAccountName="builder"))
        assert status == 201, created
        ref = {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": created["metadata"]["uid"]}
        status, answer = await client.post(
            f"{SA_PATH}/builder/token", token_request(boundObjectRef=ref)
        )
        assert status == 201, answer
        got = claims(answer["status"]["token"])
        assert got["kubernetes.io"]["pod"] == {"name": "web", "uid": created["metadata"]["uid"]}
        assert "warnafter" not in got["kubernetes.io"]

    async def test_projected_lifetime_is_extended(self, client: Client) -> None:
        await create_account(client, "builder")
        await client.post(PODS, pod("web", serviceAccountName="builder"))
        ref = {"kind": "Pod", "apiVersion": "v1", "name": "web"}
        body = token_request(boundObjectRef=ref, expirationSeconds=3607)
        status, answer = await client.post(f"{SA_PATH}/builder/token", body)
        assert status == 201, answer
        got = claims(answer["status"]["token"])
        assert got["exp"] - got["iat"] == 365 * 24 * 3600
        assert got["kubernetes.io"]["warnafter"] == got["iat"] + 3607
        created = stamp(answer["metadata"]["creationTimestamp"])
        assert stamp(answer["status"]["expirationTimestamp"]) == created + 3607

    async def test_pod_of_another_account_is_400(self, client: Client) -> None:
        await create_account(client, "builder")
        await client.post(PODS, pod("web"))
        body = token_request(boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "web"})
        status, answer = await client.post(f"{SA_PATH}/builder/token", body)
        assert (status, answer["reason"]) == (400, "BadRequest")
        assert "different serviceaccount name" in answer["message"]

    async def test_missing_pod_is_404_and_wrong_uid_409(self, client: Client) -> None:
        await create_account(client, "builder")
        missing = token_request(boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "x"})
        status, answer = await client.post(f"{SA_PATH}/builder/token", missing)
        assert (status, answer["message"]) == (404, 'pods "x" not found')
        await client.post(PODS, pod("web", serviceAccountName="builder"))
        ref = {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": "not-the-uid"}
        status, answer = await client.post(
            f"{SA_PATH}/builder/token", token_request(boundObjectRef=ref)
        )
        assert (status, answer["reason"]) == (409, "Conflict")


class TestAdmission:
    async def test_without_accounts_pods_run_as_default_without_a_token(
        self, client: Client
    ) -> None:
        # an API server whose serviceaccount controller is not running (kube-system/default
        # does not exist): pods are admitted as Kubernetes would once the account appears
        status, created = await client.post(PODS, pod("web"))
        assert status == 201, created
        assert created["spec"]["serviceAccountName"] == "default"
        assert created["spec"]["serviceAccount"] == "default"
        assert "volumes" not in created["spec"]

    async def test_the_token_volume_is_added_and_mounted(self, client: Client) -> None:
        await create_account(client, "default")
        spec = {
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [
                {"name": "main", "image": "busybox"},
                {
                    "name": "own",
                    "image": "busybox",
                    "volumeMounts": [{"name": "mine", "mountPath": MOUNT}],
                },
            ],
            "volumes": [{"name": "mine", "emptyDir": {}}],
        }
        status, created = await client.post(PODS, pod("web", **spec))
        assert status == 201, created
        volume = created["spec"]["volumes"][-1]
        assert volume["name"].startswith("kube-api-access-")
        assert len(volume["name"]) == len("kube-api-access-") + 5
        assert volume["projected"] == {
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "namespace",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                            }
                        ]
                    }
                },
            ],
            "defaultMode": 420,
        }
        mount = {"name": volume["name"], "readOnly": True, "mountPath": MOUNT}
        init, main, own = (*created["spec"]["initContainers"], *created["spec"]["containers"])
        assert init["volumeMounts"] == [mount]
        assert main["volumeMounts"] == [mount]
        assert own["volumeMounts"] == [{"name": "mine", "mountPath": MOUNT}]

    @pytest.mark.parametrize(
        ("on_pod", "on_account", "mounted"),
        [(None, False, False), (True, False, True), (False, None, False), (None, None, True)],
    )
    async def test_automount_setting(
        self, client: Client, on_pod: bool | None, on_account: bool | None, mounted: bool
    ) -> None:
        extra = {} if on_account is None else {"automountServiceAccountToken": on_account}
        await create_account(client, "default", **extra)
        spec = {} if on_pod is None else {"automountServiceAccountToken": on_pod}
        status, created = await client.post(PODS, pod("web", **spec))
        assert status == 201, created
        assert bool(created["spec"].get("volumes")) is mounted

    async def test_image_pull_secrets_come_from_the_account(self, client: Client) -> None:
        await create_account(client, "puller", imagePullSecrets=[{"name": "registry"}])
        status, created = await client.post(PODS, pod("web", serviceAccountName="puller"))
        assert status == 201, created
        assert created["spec"]["imagePullSecrets"] == [{"name": "registry"}]

    async def test_missing_account_is_refused_once_accounts_are_managed(
        self, client: Client
    ) -> None:
        await create_account(client, "default", namespace="kube-system")
        status, answer = await client.post(PODS, pod("web", serviceAccountName="ghost"))
        assert (status, answer["reason"]) == (403, "Forbidden")
        assert answer["message"] == (
            'pods "web" is forbidden: error looking up service account default/ghost: '
            'serviceaccount "ghost" not found'
        )

    async def test_mirror_pods_are_left_alone(self, client: Client) -> None:
        await create_account(client, "default")
        body = pod("static-web")
        body["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "hash"}
        status, created = await client.post(PODS, body)
        assert status == 201, created
        assert "volumes" not in created["spec"]
        assert not created["spec"].get("serviceAccountName")


# -- authentication over HTTPS -----------------------------------------------------------------


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[server.APIServer]:
    instance = server.APIServer(server.Config(data_dir=tmp_path, port=0, tls=True))
    await instance.start()
    yield instance
    await instance.stop()


async def whoami(session: aiohttp.ClientSession, url: str, token: str) -> tuple[int, Any]:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    async with session.post(
        f"{url}/apis/authentication.k8s.io/v1/selfsubjectreviews",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        ssl=False,
    ) as response:
        return response.status, await response.json()


async def test_a_token_authenticates_as_its_account(tls_server: server.APIServer) -> None:
    assert tls_server.pki is not None
    admin = tls_server.pki.admin_token()
    async with aiohttp.ClientSession() as session:
        client = Client(session, tls_server.url)

        async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
            async with session.request(
                method,
                client.base + path,
                json=body,
                headers={"Authorization": f"Bearer {admin}"},
                ssl=False,
            ) as r:
                return r.status, await r.json()

        status, sa = await call(
            "POST",
            SA_PATH,
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder"}},
        )
        assert status == 201, sa
        status, answer = await call("POST", f"{SA_PATH}/builder/token", token_request())
        assert status == 201, answer
        token = answer["status"]["token"]

        status, review = await whoami(session, tls_server.url, token)
        assert status == 201, review
        user = review["status"]["userInfo"]
        assert user["username"] == "system:serviceaccount:default:builder"
        assert user["uid"] == sa["metadata"]["uid"]
        assert user["groups"] == [
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated",
        ]
        assert user["extra"]["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")

        # another audience's token is not the API server's; a deleted account's stops working
        status, other = await call(
            "POST", f"{SA_PATH}/builder/token", token_request(audiences=["vault"])
        )
        assert (await whoami(session, tls_server.url, other["status"]["token"]))[0] == 401
        status, _ = await call("DELETE", f"{SA_PATH}/builder")
        assert status == 200
        status, answer = await whoami(session, tls_server.url, token)
        assert (status, answer["reason"]) == (401, "Unauthorized")
