"""The OpenAPI documents on an in-process server: the v3 index and every group-version document
(each served kind's GVK on a schema and on its operations, references that resolve, the
``fieldValidation`` parameter kubectl looks for), Swagger 2.0, and ETag / hash caching."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson
import pytest

from kybern.api import kinds
from tests.integration.conftest import Client


async def fetch(
    client: Client, path: str, headers: dict[str, str] | None = None
) -> tuple[int, aiohttp.typedefs.LooseHeaders, bytes]:
    async with client.session.get(
        client.base + path, headers=headers or {}, allow_redirects=False
    ) as response:
        return response.status, response.headers, await response.read()


def refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                yield item
            else:  # (JSONSchemaProps has a property called "$ref")
                yield from refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from refs(item)


def schemas_of(value: Any) -> Iterator[dict[str, Any]]:
    """Every schema object below components (to check the shape of ``type``)."""
    if isinstance(value, dict):
        yield value
        for key in ("properties",):
            for item in value.get(key, {}).values():
                yield from schemas_of(item)
        for key in ("items", "additionalProperties"):
            if isinstance(value.get(key), dict):
                yield from schemas_of(value[key])
        for item in value.get("allOf", ()):
            yield from schemas_of(item)


async def index(client: Client) -> dict[str, Any]:
    status, _, body = await fetch(client, "/openapi/v3")
    assert status == 200
    return orjson.loads(body)  # type: ignore[no-any-return]


async def test_v3_index_lists_every_served_group_version(client: Client) -> None:
    paths = (await index(client))["paths"]
    for info in kinds.all_resources():
        key = f"apis/{info.group}/{info.version}" if info.group else f"api/{info.version}"
        url = paths[key]["serverRelativeURL"]
        assert url.startswith(f"/openapi/v3/{key}?hash=")


async def test_every_kind_has_its_gvk_schema_and_operations_and_refs_resolve(
    client: Client,
) -> None:
    for key, entry in (await index(client))["paths"].items():
        status, headers, body = await fetch(client, entry["serverRelativeURL"])
        assert status == 200, key
        assert headers["Content-Type"].startswith("application/json")
        doc = orjson.loads(body)
        assert doc["openapi"].startswith("3.0")
        schemas = doc["components"]["schemas"]
        for ref in refs(doc):
            assert ref.startswith("#/components/schemas/"), ref
            assert ref.removeprefix("#/components/schemas/") in schemas, (key, ref)
        for schema in (s for top in schemas.values() for s in schemas_of(top)):
            assert isinstance(schema.get("type", ""), str), (key, schema)
        group, _, version = key.removeprefix("apis/").removeprefix("api/").rpartition("/")
        for info in kinds.resources_for(group, version):
            gvk = {"group": info.group, "kind": info.kind, "version": info.version}
            assert gvk in schemas[info.schema]["x-kubernetes-group-version-kind"], info.kind
            ops = [
                (path, method, op)
                for path, item in doc["paths"].items()
                for method, op in item.items()
                if method != "parameters" and op["x-kubernetes-group-version-kind"] == gvk
            ]
            assert {op["x-kubernetes-action"] for _, _, op in ops} >= {"get", "list", "patch"}
            for path, method, op in ops:
                assert path.startswith(f"/{key}/"), (path, key)
                if method in ("patch", "put", "post"):
                    names = {p["name"] for p in op["parameters"]}
                    assert "fieldValidation" in names, (path, method)


async def test_operation_ids_follow_kubernetes(client: Client) -> None:
    _, _, body = await fetch(client, "/openapi/v3/api/v1")
    core = orjson.loads(body)["paths"]
    assert core["/api/v1/namespaces/{namespace}/pods/{name}"]["get"]["operationId"] == (
        "readCoreV1NamespacedPod"
    )
    assert core["/api/v1/pods"]["get"]["operationId"] == "listCoreV1PodForAllNamespaces"
    assert core["/api/v1/namespaces/{name}"]["put"]["operationId"] == "replaceCoreV1Namespace"
    assert core["/api/v1/namespaces/{namespace}/pods/{name}/status"]["patch"]["operationId"] == (
        "patchCoreV1NamespacedPodStatus"
    )
    _, _, body = await fetch(client, "/openapi/v3/apis/apps/v1")
    apps = orjson.loads(body)["paths"]
    item = apps["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    assert item["patch"]["operationId"] == "patchAppsV1NamespacedDeployment"
    assert item["patch"]["x-kubernetes-action"] == "patch"
    assert "application/strategic-merge-patch+json" in item["patch"]["requestBody"]["content"]
    scale = apps["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["get"]
    assert scale["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling",
        "kind": "Scale",
        "version": "v1",
    }
    _, _, body = await fetch(client, "/openapi/v3/apis/rbac.authorization.k8s.io/v1")
    rbac = orjson.loads(body)["paths"]
    assert rbac["/apis/rbac.authorization.k8s.io/v1/clusterroles"]["post"]["operationId"] == (
        "createRbacAuthorizationV1ClusterRole"
    )


async def test_descriptions_are_kept_for_explain(client: Client) -> None:
    _, _, body = await fetch(client, "/openapi/v3/apis/apps/v1")
    schemas = orjson.loads(body)["components"]["schemas"]
    strategy = schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["description"].startswith("The deployment strategy to use")
    assert strategy["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"}
    ]
    assert (
        "replace existing pods" in schemas["io.k8s.api.apps.v1.DeploymentStrategy"]["description"]
    )
    int_or_string = schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert int_or_string["format"] == "int-or-string"
    kind = schemas["io.k8s.api.apps.v1.Deployment"]["properties"]["kind"]
    assert kind["type"] == "string"
    assert "enum" not in kind


async def test_hash_etag_and_not_modified(client: Client) -> None:
    url = (await index(client))["paths"]["apis/apps/v1"]["serverRelativeURL"]
    status, headers, body = await fetch(client, url)
    assert status == 200
    assert headers["Cache-Control"] == "public, immutable"
    assert "Expires" in headers
    etag = headers["ETag"]
    assert etag == '"' + url.split("hash=")[1] + '"'
    status, headers, _ = await fetch(client, "/openapi/v3/apis/apps/v1")
    assert status == 200
    assert headers["ETag"] == etag
    assert headers["Cache-Control"] == "no-cache, private"
    status, headers, again = await fetch(
        client, "/openapi/v3/apis/apps/v1", headers={"If-None-Match": etag}
    )
    assert status == 304
    assert not again
    status, headers, _ = await fetch(client, "/openapi/v3/apis/apps/v1?hash=0BAD")
    assert status == 301
    assert headers["Location"] == url
    status, _, body = await fetch(client, "/openapi/v3/apis/nothing.example.com/v1")
    assert status == 404
    assert orjson.loads(body)["reason"] == "NotFound"


async def test_swagger_v2_document(client: Client) -> None:
    status, headers, body = await fetch(client, "/openapi/v2")
    assert status == 200
    assert headers["ETag"].startswith('"')
    doc = orjson.loads(body)
    assert doc["swagger"] == "2.0"
    definitions = doc["definitions"]
    for ref in refs(doc):
        assert ref.removeprefix("#/definitions/") in definitions, ref
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps",
        "kind": "Deployment",
        "version": "v1",
    }
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    assert "application/merge-patch+json" in patch["consumes"]
    for info in kinds.all_resources():
        gvk = {"group": info.group, "kind": info.kind, "version": info.version}
        assert gvk in definitions[info.schema]["x-kubernetes-group-version-kind"]


@pytest.mark.parametrize("path", ["/openapi/v3", "/openapi/v2"])
async def test_documents_are_built_once(client: Client, path: str) -> None:
    first = await fetch(client, path)
    second = await fetch(client, path)
    assert first[1]["ETag"] == second[1]["ETag"]
    assert first[2] == second[2]


async def test_swagger_v2_protobuf_for_clients_that_ask(client: Client) -> None:
    accept = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    status, headers, body = await fetch(client, "/openapi/v2", headers={"Accept": accept})
    assert status == 200
    assert headers["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert body.startswith(b"\x0a\x032.0\x12")  # Document.swagger = "2.0", then Document.info
    assert b"io.k8s.api.apps.v1.DeploymentStrategy" in body
    assert b"x-kubernetes-group-version-kind" in body
    _, json_headers, _ = await fetch(client, "/openapi/v2")
    assert json_headers["ETag"] != headers["ETag"]
    status, _, again = await fetch(
        client, "/openapi/v2", headers={"Accept": accept, "If-None-Match": headers["ETag"]}
    )
    assert status == 304
    assert not again
