"""Bad input against a real ``kybern server`` over HTTPS: every case must answer a ``Status``
with the right code and reason (and the causes' field paths where Kubernetes gives them), never
a 500, and must leave the store exactly as it was (same global resourceVersion, same objects).
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from kybern.testing import server_process
from tests.support import cluster

pytestmark = pytest.mark.compat
NS = "bad"
CM = f"/api/v1/namespaces/{NS}/configmaps"
PODS = f"/api/v1/namespaces/{NS}/pods"
DEPLOYS = f"/apis/apps/v1/namespaces/{NS}/deployments"


def _pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


def _deployment(name: str = "d", replicas: Any = 1, app: str = "d") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


def _cm(name: str = "x", **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **extra}


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    code: int
    reason: str
    body: Any = None
    content_type: str = "application/json"
    query: dict[str, str] = field(default_factory=dict)
    causes: tuple[str, ...] = ()  # expected details.causes[].field, in order


CASES: dict[str, Case] = {
    # -- malformed bodies -------------------------------------------------------------
    "malformed-json": Case("POST", CM, 400, "BadRequest", b'{"metadata": {"name": "x"'),
    "json-array-body": Case("POST", CM, 400, "BadRequest", b"[1, 2]"),
    "json-null-body": Case("POST", CM, 400, "BadRequest", b"null"),
    "empty-body": Case("POST", CM, 400, "BadRequest", b""),
    "invalid-utf8": Case("POST", CM, 400, "BadRequest", b'{"metadata": {"name": "\xff\xfe"}}'),
    "deeply-nested": Case("POST", CM, 400, "BadRequest", b"[" * 5000 + b"]" * 5000),
    "malformed-yaml": Case(
        "POST", CM, 400, "BadRequest", b"metadata: {name: [", content_type="application/yaml"
    ),
    # -- wrong JSON types -------------------------------------------------------------
    "replicas-string": Case("POST", DEPLOYS, 400, "BadRequest", _deployment(replicas="3")),
    "replicas-overflow": Case("POST", DEPLOYS, 400, "BadRequest", _deployment(replicas=2**40)),
    "replicas-float": Case("POST", DEPLOYS, 400, "BadRequest", _deployment(replicas=1.5)),
    "configmap-data-int": Case("POST", CM, 400, "BadRequest", _cm(data={"a": 1})),
    "labels-list": Case(
        "POST",
        CM,
        400,
        "BadRequest",
        {"kind": "ConfigMap", "metadata": {"name": "x", "labels": ["a"]}},
    ),
    "metadata-string": Case("POST", CM, 400, "BadRequest", {"kind": "ConfigMap", "metadata": "x"}),
    "container-port-string": Case(
        "POST",
        PODS,
        400,
        "BadRequest",
        _pod(containers=[{"name": "c", "image": "i", "ports": [{"containerPort": "80"}]}]),
    ),
    "containers-object": Case(
        "POST", PODS, 400, "BadRequest", _pod(containers={"name": "c", "image": "i"})
    ),
    # -- unknown kinds and paths ------------------------------------------------------
    "unknown-resource": Case("GET", f"/api/v1/namespaces/{NS}/widgets", 404, "NotFound"),
    "unknown-resource-create": Case(
        "POST", f"/api/v1/namespaces/{NS}/widgets", 404, "NotFound", {"metadata": {"name": "w"}}
    ),
    "unknown-group": Case("GET", "/apis/example.com/v1/widgets", 404, "NotFound"),
    "unknown-version": Case("GET", "/api/v2/namespaces", 404, "NotFound"),
    "unknown-top-path": Case("GET", "/nothing/here", 404, "NotFound"),
    "unknown-subresource": Case("GET", f"{CM}/existing/status", 404, "NotFound"),
    "too-many-segments": Case("GET", f"{CM}/existing/status/extra", 404, "NotFound"),
    "cluster-kind-in-namespace": Case("GET", f"/api/v1/namespaces/{NS}/nodes", 404, "NotFound"),
    "missing-object": Case("GET", f"{CM}/nope", 404, "NotFound"),
    "delete-missing-object": Case("DELETE", f"{CM}/nope", 404, "NotFound"),
    "binding-missing-pod": Case(
        "POST",
        f"{PODS}/nope/binding",
        404,
        "NotFound",
        {"kind": "Binding", "metadata": {"name": "nope"}, "target": {"kind": "Node", "name": "n"}},
    ),
    "scale-of-configmap": Case("GET", f"{CM}/existing/scale", 404, "NotFound"),
    "put-on-collection": Case("PUT", CM, 405, "MethodNotAllowed", _cm()),
    "deletecollection-namespaces": Case("DELETE", "/api/v1/namespaces", 405, "MethodNotAllowed"),
    # -- kind / apiVersion / identity mismatches --------------------------------------
    "kind-mismatch": Case(
        "POST",
        CM,
        400,
        "BadRequest",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}},
    ),
    "apiversion-mismatch": Case(
        "POST",
        CM,
        400,
        "BadRequest",
        {"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
    ),
    "deployment-as-v1beta1": Case(
        "POST", DEPLOYS, 400, "BadRequest", {**_deployment(), "apiVersion": "apps/v1beta1"}
    ),
    "namespace-mismatch": Case(
        "POST",
        CM,
        400,
        "BadRequest",
        {"kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}},
    ),
    "put-name-mismatch": Case("PUT", f"{CM}/existing", 400, "BadRequest", _cm("other")),
    # -- invalid names ----------------------------------------------------------------
    "name-uppercase": Case("POST", CM, 422, "Invalid", _cm("Bad"), causes=("metadata.name",)),
    "name-underscore": Case("POST", CM, 422, "Invalid", _cm("a_b"), causes=("metadata.name",)),
    "name-254-chars": Case("POST", CM, 422, "Invalid", _cm("a" * 254), causes=("metadata.name",)),
    "name-missing": Case(
        "POST", CM, 422, "Invalid", {"kind": "ConfigMap", "metadata": {}}, causes=("metadata.name",)
    ),
    "namespace-64-chars": Case(
        "POST",
        "/api/v1/namespaces",
        422,
        "Invalid",
        {"kind": "Namespace", "metadata": {"name": "n" * 64}},
        # the defaulted kubernetes.io/metadata.name label is too long as well, as in Kubernetes
        causes=("metadata.name", "metadata.labels"),
    ),
    "namespace-with-dot": Case(
        "POST",
        "/api/v1/namespaces",
        422,
        "Invalid",
        {"kind": "Namespace", "metadata": {"name": "a.b"}},
        causes=("metadata.name",),
    ),
    "service-64-chars": Case(
        "POST",
        f"/api/v1/namespaces/{NS}/services",
        422,
        "Invalid",
        {"kind": "Service", "metadata": {"name": "s" * 64}, "spec": {"ports": [{"port": 80}]}},
        causes=("metadata.name",),
    ),
    "service-leading-digit": Case(
        "POST",
        f"/api/v1/namespaces/{NS}/services",
        422,
        "Invalid",
        {"kind": "Service", "metadata": {"name": "1svc"}, "spec": {"ports": [{"port": 80}]}},
        causes=("metadata.name",),
    ),
    "label-value-too-long": Case(
        "POST",
        CM,
        422,
        "Invalid",
        {"kind": "ConfigMap", "metadata": {"name": "x", "labels": {"a": "v" * 64}}},
        causes=("metadata.labels",),
    ),
    # -- missing required fields and invalid values -----------------------------------
    "pod-without-containers": Case(
        "POST", PODS, 422, "Invalid", _pod(), causes=("spec.containers",)
    ),
    "container-without-image": Case(
        "POST",
        PODS,
        422,
        "Invalid",
        _pod(containers=[{"name": "c"}]),
        causes=("spec.containers[0].image",),
    ),
    "container-without-name": Case(
        "POST",
        PODS,
        422,
        "Invalid",
        _pod(containers=[{"image": "busybox"}]),
        causes=("spec.containers[0].name",),
    ),
    "negative-replicas": Case(
        "POST", DEPLOYS, 422, "Invalid", _deployment(replicas=-1), causes=("spec.replicas",)
    ),
    "selector-mismatch": Case(
        "POST",
        DEPLOYS,
        422,
        "Invalid",
        {
            **_deployment(),
            "spec": {**_deployment()["spec"], "selector": {"matchLabels": {"app": "other"}}},
        },
        causes=("spec.template.metadata.labels",),
    ),
    "immutable-selector": Case(
        "PUT",
        f"{DEPLOYS}/existing",
        422,
        "Invalid",
        _deployment("existing", app="changed"),
        causes=("spec.selector",),
    ),
    # -- sizes and media types --------------------------------------------------------
    "oversized-body": Case(
        "POST", CM, 413, "RequestEntityTooLarge", _cm(data={"big": "x" * (3 * 1024 * 1024 + 1)})
    ),
    "text-plain": Case("POST", CM, 415, "UnsupportedMediaType", _cm(), content_type="text/plain"),
    "put-xml": Case(
        "PUT",
        f"{CM}/existing",
        415,
        "UnsupportedMediaType",
        b"<x/>",
        content_type="application/xml",
    ),
    "patch-xml": Case(
        "PATCH",
        f"{CM}/existing",
        415,
        "UnsupportedMediaType",
        b"<x/>",
        content_type="application/xml",
    ),
    "patch-strategic-bad-directive": Case(
        "PATCH",
        f"{CM}/existing",
        400,
        "BadRequest",
        {"data": {"$patch": "bogus"}},
        content_type="application/strategic-merge-patch+json",
    ),
    "patch-apply-without-name": Case(
        "PATCH",
        f"{CM}/existing",
        400,
        "BadRequest",
        b"data: {a: b}",
        content_type="application/apply-patch+yaml",
        query={"fieldManager": "t"},
    ),
    # -- bad patches ------------------------------------------------------------------
    "json-patch-not-a-list": Case(
        "PATCH",
        f"{CM}/existing",
        400,
        "BadRequest",
        {"op": "add"},
        content_type="application/json-patch+json",
    ),
    "json-patch-unknown-op": Case(  # Kubernetes fails it when applying: 422, not 400
        "PATCH",
        f"{CM}/existing",
        422,
        "Invalid",
        [{"op": "frobnicate", "path": "/data"}],
        content_type="application/json-patch+json",
    ),
    "json-patch-missing-path": Case(
        "PATCH",
        f"{CM}/existing",
        422,
        "Invalid",
        [{"op": "remove", "path": "/data/nothing"}],
        content_type="application/json-patch+json",
    ),
    "json-patch-failed-test": Case(
        "PATCH",
        f"{CM}/existing",
        422,
        "Invalid",
        [{"op": "test", "path": "/data/k", "value": "other"}],
        content_type="application/json-patch+json",
    ),
    "merge-patch-not-an-object": Case(
        "PATCH",
        f"{CM}/existing",
        400,
        "BadRequest",
        [1],
        content_type="application/merge-patch+json",
    ),
    "merge-patch-wrong-type": Case(
        "PATCH",
        f"{DEPLOYS}/existing",
        400,
        "BadRequest",
        {"spec": {"replicas": "many"}},
        content_type="application/merge-patch+json",
    ),
    "patch-changes-name": Case(
        "PATCH",
        f"{CM}/existing",
        400,
        "BadRequest",
        {"metadata": {"name": "renamed"}},
        content_type="application/merge-patch+json",
    ),
    # -- bad query parameters ---------------------------------------------------------
    "label-selector-unclosed": Case(
        "GET", CM, 400, "BadRequest", query={"labelSelector": "a in (b"}
    ),
    "label-selector-bad-key": Case("GET", CM, 400, "BadRequest", query={"labelSelector": "-a=b"}),
    "label-selector-bad-op": Case("GET", CM, 400, "BadRequest", query={"labelSelector": "a<b"}),
    "field-selector-unsupported": Case(
        "GET", CM, 400, "BadRequest", query={"fieldSelector": "spec.foo=bar"}
    ),
    "field-selector-pod-unsupported": Case(
        "GET", PODS, 400, "BadRequest", query={"fieldSelector": "spec.image=busybox"}
    ),
    "watch-label-selector-invalid": Case(
        "GET", CM, 400, "BadRequest", query={"watch": "true", "labelSelector": "a in (b"}
    ),
    "watch-field-selector-unsupported": Case(
        "GET", CM, 400, "BadRequest", query={"watch": "true", "fieldSelector": "data.a=b"}
    ),
    "field-selector-malformed": Case("GET", CM, 400, "BadRequest", query={"fieldSelector": "a"}),
    "resource-version-garbage": Case(
        "GET", CM, 400, "BadRequest", query={"resourceVersion": "abc"}
    ),
    "limit-garbage": Case("GET", CM, 400, "BadRequest", query={"limit": "ten"}),
    "continue-garbage": Case("GET", CM, 400, "BadRequest", query={"continue": "garbage"}),
    "timeout-garbage": Case(
        "GET", CM, 400, "BadRequest", query={"watch": "true", "timeoutSeconds": "soon"}
    ),
    "dry-run-unknown": Case("POST", CM, 400, "BadRequest", _cm(), query={"dryRun": "Some"}),
    "propagation-unknown": Case(
        "DELETE", f"{CM}/existing", 400, "BadRequest", query={"propagationPolicy": "Sideways"}
    ),
    "delete-options-not-object": Case("DELETE", f"{CM}/existing", 400, "BadRequest", b"[1]"),
    # -- conflicts --------------------------------------------------------------------
    "already-exists": Case("POST", CM, 409, "AlreadyExists", _cm("existing")),
    "delete-default-namespace": Case("DELETE", "/api/v1/namespaces/default", 403, "Forbidden"),
    "create-in-missing-namespace": Case(
        "POST", "/api/v1/namespaces/ghost/configmaps", 404, "NotFound", _cm()
    ),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[server_process.ServerProcess]:
    proc = cluster.start_server(tmp_path_factory.mktemp("kybern-bad-input"))
    raw = cluster.RawClient(proc.kubeconfig)
    for path, body in (
        ("/api/v1/namespaces", {"metadata": {"name": NS}}),
        (CM, _cm("existing", data={"k": "v"})),
        (DEPLOYS, _deployment("existing", app="existing")),
    ):
        assert raw.request("POST", path, body).status == 201
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def raw(server: server_process.ServerProcess) -> cluster.RawClient:
    return cluster.RawClient(server.kubeconfig)


def _snapshot(raw: cluster.RawClient) -> dict[str, Any]:
    """Every object a bad request could have touched, with its resourceVersion."""
    state: dict[str, Any] = {}
    for path in ("/api/v1/namespaces", CM, PODS, DEPLOYS, f"/api/v1/namespaces/{NS}/services"):
        listed = raw.get(path).json
        state[path] = sorted(
            (i["metadata"]["name"], i["metadata"]["resourceVersion"]) for i in listed["items"]
        )
        state["rv"] = listed["metadata"]["resourceVersion"]
    return state


def _encode(body: Any) -> bytes | None:
    if body is None or isinstance(body, bytes):
        return body
    return json.dumps(body).encode()


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_bad_input_is_refused_with_a_status(raw: cluster.RawClient, case_id: str) -> None:
    case = CASES[case_id]
    before = _snapshot(raw)
    reply = raw.request(
        case.method,
        case.path,
        _encode(case.body),
        content_type=case.content_type,
        query=case.query or None,
    )
    assert reply.status == case.code, reply.body[:500]
    status = reply.json
    assert (status["kind"], status["apiVersion"]) == ("Status", "v1"), status
    assert (status["status"], status["code"], status["reason"]) == (
        "Failure",
        case.code,
        case.reason,
    ), status
    assert status["message"]
    if case.causes:
        assert [c["field"] for c in status["details"]["causes"]] == list(case.causes), status
        assert status["details"]["name"] == ((case.body or {}).get("metadata") or {}).get(
            "name", status["details"]["name"]
        )
    assert _snapshot(raw) == before


def test_oversized_chunked_body_without_length(raw: cluster.RawClient) -> None:
    """A body streamed in chunks (no Content-Length) is cut off at 3 MiB too."""
    before = _snapshot(raw)

    def chunks() -> Iterator[bytes]:
        yield b'{"metadata": {"name": "big"}, "data": {"a": "'
        for _ in range(40):
            yield b"x" * 100_000
        yield b'"}}'

    conn = raw.connect()
    try:
        conn.request(
            "POST",
            CM,
            body=chunks(),
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        reply = conn.getresponse()
        status = json.loads(reply.read())
    finally:
        conn.close()
    assert (reply.status, status["reason"]) == (413, "RequestEntityTooLarge")
    assert _snapshot(raw) == before


def test_unauthenticated_requests_are_refused(server: server_process.ServerProcess) -> None:
    raw = cluster.RawClient(server.kubeconfig)
    anonymous = ssl.create_default_context(cadata=raw.context.get_ca_certs(binary_form=True)[0])
    for path, expected in (("/api/v1/namespaces", 401), ("/version", 200), ("/healthz", 200)):
        conn = http.client.HTTPSConnection(raw.host, raw.port, context=anonymous, timeout=10)
        conn.request("GET", path)
        reply = conn.getresponse()
        body = reply.read()
        conn.close()
        assert reply.status == expected, body
        if expected == 401:
            assert json.loads(body)["reason"] == "Unauthorized"


def test_bad_bearer_token_is_unauthorized(server: server_process.ServerProcess) -> None:
    raw = cluster.RawClient(server.kubeconfig)
    anonymous = ssl.create_default_context(cadata=raw.context.get_ca_certs(binary_form=True)[0])
    conn = http.client.HTTPSConnection(raw.host, raw.port, context=anonymous, timeout=10)
    conn.request("GET", "/api/v1/namespaces", headers={"Authorization": "Bearer not-a-token"})
    reply = conn.getresponse()
    status = json.loads(reply.read())
    conn.close()
    assert (reply.status, status["reason"]) == (401, "Unauthorized")


def test_no_request_produced_an_internal_error(server: server_process.ServerProcess) -> None:
    logs = server.logs()
    assert "Traceback" not in logs, logs
    assert "internal error" not in logs, logs
