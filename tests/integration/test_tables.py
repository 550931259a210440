"""Server-side printing over HTTP: content negotiation, Table and PartialObjectMetadata bodies,
includeObject, Table watch events (column definitions in the first event only)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from tests.integration.conftest import Client

TABLE_V1 = "application/json;as=Table;v=v1;g=meta.k8s.io"
TABLE_V1BETA1 = "application/json;as=Table;v=v1beta1;g=meta.k8s.io"
KUBECTL_ACCEPT = f"{TABLE_V1},{TABLE_V1BETA1},application/json"
PODS = "/api/v1/namespaces/default/pods"


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    }


async def get(client: Client, path: str, accept: str, **params: str) -> tuple[int, str, Any]:
    headers = {"Accept": accept}
    async with client.session.get(client.base + path, headers=headers, params=params) as r:
        raw = await r.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = raw.decode()
        return r.status, r.headers.get("Content-Type", ""), body


async def test_list_as_table_has_pod_columns_and_partial_metadata(client: Client) -> None:
    assert (await client.post(PODS, pod("web", app="web")))[0] == 201
    status, content_type, body = await get(client, PODS, KUBECTL_ACCEPT)
    assert status == 200
    assert content_type == TABLE_V1
    assert body["kind"] == "Table"
    assert body["apiVersion"] == "meta.k8s.io/v1"
    assert body["metadata"]["resourceVersion"].isdigit()
    names = [c["name"] for c in body["columnDefinitions"]]
    assert names == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
        "IP",
        "Node",
        "Nominated Node",
        "Readiness Gates",
    ]
    assert [c["priority"] for c in body["columnDefinitions"]] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert body["columnDefinitions"][0]["format"] == "name"
    assert body["columnDefinitions"][0]["description"].startswith("Name must be unique")
    (row,) = body["rows"]
    assert row["cells"][:4] == ["web", "0/1", "Pending", "0"]
    assert row["cells"][5:] == ["<none>", "<none>", "<none>", "<none>"]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["apiVersion"] == "meta.k8s.io/v1"
    assert row["object"]["metadata"]["labels"] == {"app": "web"}
    assert "spec" not in row["object"]


async def test_get_one_object_as_table(client: Client) -> None:
    _, created = await client.post(PODS, pod("one"))
    status, content_type, body = await get(client, f"{PODS}/one", KUBECTL_ACCEPT)
    assert status == 200
    assert content_type == TABLE_V1
    assert body["metadata"] == {"resourceVersion": created["metadata"]["resourceVersion"]}
    assert [r["cells"][0] for r in body["rows"]] == ["one"]


async def test_v1beta1_only_answers_v1beta1(client: Client) -> None:
    await client.post(PODS, pod("beta"))
    status, content_type, body = await get(client, PODS, TABLE_V1BETA1)
    assert status == 200
    assert content_type == TABLE_V1BETA1
    assert body["apiVersion"] == "meta.k8s.io/v1beta1"
    assert body["rows"][0]["object"]["apiVersion"] == "meta.k8s.io/v1beta1"


async def test_include_object_object_and_none(client: Client) -> None:
    await client.post(PODS, pod("full"))
    _, _, full = await get(client, PODS, KUBECTL_ACCEPT, includeObject="Object")
    assert full["rows"][0]["object"]["kind"] == "Pod"
    assert full["rows"][0]["object"]["spec"]["containers"][0]["image"] == "busybox"
    _, _, bare = await get(client, PODS, KUBECTL_ACCEPT, includeObject="None")
    assert bare["rows"][0]["object"] is None
    status, _, bad = await get(client, PODS, KUBECTL_ACCEPT, includeObject="Everything")
    assert status == 400
    assert bad["reason"] == "BadRequest"
    assert bad["message"] == 'unrecognized includeObject value: "Everything"'


async def test_plain_json_without_table_accept(client: Client) -> None:
    await client.post(PODS, pod("plain"))
    for accept in (
        "application/json",
        "*/*",
        "",
        "application/vnd.kubernetes.protobuf,*/*",
        "application/vnd.kubernetes.protobuf",
        "application/json;stream=watch",
    ):
        status, content_type, body = await get(client, PODS, accept)
        assert status == 200, accept
        assert content_type.startswith("application/json"), accept
        assert body["kind"] == "PodList", accept


async def test_unknown_table_version_falls_back_to_next_range(client: Client) -> None:
    accept = "application/json;as=Table;v=v2;g=meta.k8s.io,application/json"
    status, _, body = await get(client, PODS, accept)
    assert status == 200
    assert body["kind"] == "PodList"


async def test_nothing_acceptable_is_406(client: Client) -> None:
    for path in (PODS, f"{PODS}/missing"):
        status, _, body = await get(client, path, "text/html")
        assert status == 406, path
        assert body["kind"] == "Status"
        assert body["reason"] == "NotAcceptable"
        assert body["code"] == 406


async def test_q_values_order_the_ranges(client: Client) -> None:
    accept = f"application/json;q=0.5,{TABLE_V1};q=0.9"
    _, content_type, body = await get(client, PODS, accept)
    assert content_type == TABLE_V1
    assert body["kind"] == "Table"


async def test_partial_object_metadata_forms(client: Client) -> None:
    await client.post(PODS, pod("meta", tier="db"))
    accept = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
    _, content_type, listed = await get(client, PODS, accept)
    assert content_type == accept
    assert listed["kind"] == "PartialObjectMetadataList"
    assert listed["items"][0]["metadata"]["labels"] == {"tier": "db"}
    accept = "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"
    _, _, one = await get(client, f"{PODS}/meta", accept)
    assert one == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": one["metadata"],
    }
    assert one["metadata"]["name"] == "meta"


async def test_yaml_output(client: Client) -> None:
    await client.post(PODS, pod("yml"))
    status, content_type, body = await get(client, f"{PODS}/yml", "application/yaml")
    assert status == 200
    assert content_type.startswith("application/yaml")
    assert "kind: Pod\n" in body


async def test_default_table_for_kinds_without_printer(client: Client) -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "reader"},
        "rules": [],
    }
    path = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles"
    assert (await client.post(path, role))[0] == 201
    _, _, body = await get(client, path, KUBECTL_ACCEPT)
    assert [(c["name"], c["type"]) for c in body["columnDefinitions"]] == [
        ("Name", "string"),
        ("Created At", "date"),
    ]
    name, created = body["rows"][0]["cells"]
    assert name == "reader"
    assert created.endswith("Z")
    assert len(created) == len("2024-01-01T00:00:00Z")


async def test_empty_list_table_has_columns_and_no_rows(client: Client) -> None:
    _, _, body = await get(client, "/api/v1/namespaces/default/configmaps", KUBECTL_ACCEPT)
    assert [c["name"] for c in body["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert body["rows"] == []


async def read_event(response: Any) -> dict[str, Any]:
    line = await asyncio.wait_for(response.content.readline(), 10)
    assert line, "the watch ended"
    return orjson.loads(line)  # type: ignore[no-any-return]


async def test_watch_table_events_carry_headers_once(client: Client) -> None:
    await client.post(PODS, pod("first"))
    headers = {"Accept": KUBECTL_ACCEPT}
    params = {"watch": "true", "timeoutSeconds": "30"}
    plain = await client.session.get(client.base + PODS, params=params)
    async with client.session.get(client.base + PODS, headers=headers, params=params) as resp:
        assert resp.status == 200
        first = await read_event(resp)
        assert first["type"] == "ADDED"
        assert first["object"]["kind"] == "Table"
        assert len(first["object"]["columnDefinitions"]) == 9
        assert first["object"]["rows"][0]["cells"][0] == "first"
        assert first["object"]["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
        await client.post(PODS, pod("second"))
        second = await read_event(resp)
        assert second["type"] == "ADDED"
        assert second["object"]["columnDefinitions"] is None
        assert second["object"]["rows"][0]["cells"][0] == "second"
        await client.delete(f"{PODS}/second")
        deleted = await read_event(resp)
        assert deleted["type"] in ("MODIFIED", "DELETED")
        assert deleted["object"]["rows"][0]["cells"][0] == "second"
    # A JSON watcher of the same events still gets plain objects (separate cache entries).
    async with plain:
        events = [await read_event(plain) for _ in range(3)]
        assert [e["object"]["kind"] for e in events] == ["Pod", "Pod", "Pod"]


async def test_watch_refuses_yaml_only(client: Client) -> None:
    status, _, body = await get(client, PODS, "application/yaml", watch="true")
    assert status == 406
    assert body["reason"] == "NotAcceptable"
