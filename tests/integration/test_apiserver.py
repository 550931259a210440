"""The API server's own semantics, on an in-process server: paging, watch filtering and
resumption, the cache window and the store fallback, 410 after compaction, finalizers,
namespace termination, generation, subresources, discovery and metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kybern.apiserver import discovery
from tests.integration.conftest import Client, next_event, start_server

CM = "/api/v1/namespaces/default/configmaps"


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels or {}},
        "data": data,
    }


def deployment(name: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


async def create_configmaps(client: Client, count: int, prefix: str = "cm") -> None:
    for i in range(count):
        code, _ = await client.post(CM, configmap(f"{prefix}-{i:03d}", {"n": str(i % 2)}))
        assert code == 201


async def test_paged_list_is_a_consistent_snapshot(client: Client) -> None:
    await create_configmaps(client, 7)
    code, first = await client.get(CM, limit=3)
    assert code == 200
    assert [i["metadata"]["name"] for i in first["items"]] == ["cm-000", "cm-001", "cm-002"]
    assert first["metadata"]["remainingItemCount"] == 4
    # Changes after the first page must not show in later pages (they come from the store).
    await client.delete(f"{CM}/cm-005")
    await client.post(CM, configmap("cm-003a"))
    names = [i["metadata"]["name"] for i in first["items"]]
    token = first["metadata"]["continue"]
    while token:
        code, page = await client.get(CM, limit=3, **{"continue": token})
        assert code == 200
        assert page["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
    assert names == [f"cm-{i:03d}" for i in range(7)]


async def test_label_selected_paging_and_exact_reads(client: Client) -> None:
    await create_configmaps(client, 6)
    code, listed = await client.get(CM, labelSelector="n=1", limit=2)
    assert code == 200
    assert [i["metadata"]["name"] for i in listed["items"]] == ["cm-001", "cm-003"]
    assert "remainingItemCount" not in listed["metadata"]
    rv = listed["metadata"]["resourceVersion"]
    await client.delete(f"{CM}/cm-001")
    code, exact = await client.get(CM, resourceVersion=rv, resourceVersionMatch="Exact")
    assert code == 200
    assert "cm-001" in [i["metadata"]["name"] for i in exact["items"]]
    code, now = await client.get(CM)
    assert "cm-001" not in [i["metadata"]["name"] for i in now["items"]]


async def test_watch_reports_selector_transitions(client: Client) -> None:
    _, listed = await client.get(CM)
    watch = await client.watch(
        CM, labelSelector="tier=web", resourceVersion=listed["metadata"]["resourceVersion"]
    )
    async with watch:
        await client.post(CM, configmap("a", {"tier": "web"}))
        await client.post(CM, configmap("b", {"tier": "db"}))
        await client.patch(f"{CM}/a", {"metadata": {"labels": {"tier": "db"}}})
        await client.patch(f"{CM}/b", {"metadata": {"labels": {"tier": "web"}}})
        await client.patch(f"{CM}/b", {"data": {"x": "1"}})
        await client.delete(f"{CM}/b")
        seen = [await next_event(watch) for _ in range(5)]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in seen] == [
        ("ADDED", "a"),
        ("DELETED", "a"),
        ("ADDED", "b"),
        ("MODIFIED", "b"),
        ("DELETED", "b"),
    ]
    revisions = [int(e["object"]["metadata"]["resourceVersion"]) for e in seen]
    assert revisions == sorted(revisions)


async def test_watch_without_version_sends_current_objects_first(client: Client) -> None:
    await create_configmaps(client, 2)
    watch = await client.watch(CM)
    async with watch:
        first = [await next_event(watch) for _ in range(2)]
        await client.post(CM, configmap("later"))
        live = await next_event(watch)
    assert [e["type"] for e in first] == ["ADDED", "ADDED"]
    assert (live["type"], live["object"]["metadata"]["name"]) == ("ADDED", "later")


async def test_watch_beyond_cache_window_replays_from_store_then_410_after_compaction(
    tmp_path: Path,
) -> None:
    import aiohttp

    server = await start_server(tmp_path, watch_cache_capacity=3)
    try:
        async with aiohttp.ClientSession() as session:
            client = Client(session, f"http://127.0.0.1:{server.port}")
            _, listed = await client.get(CM)
            start = listed["metadata"]["resourceVersion"]
            await create_configmaps(client, 6)
            watch = await client.watch(CM, resourceVersion=start)
            async with watch:
                names = [(await next_event(watch))["object"]["metadata"]["name"] for _ in range(6)]
            assert names == [f"cm-{i:03d}" for i in range(6)]
            for i in range(6):
                await client.patch(f"{CM}/cm-{i:03d}", {"data": {"v": "2"}})
            assert server.backend is not None
            await server.backend.compact(server.backend.current_rev() - 1)
            watch = await client.watch(CM, resourceVersion=start)
            async with watch:
                event = await next_event(watch)
            assert event["type"] == "ERROR"
            assert event["object"]["code"] == 410
            assert event["object"]["reason"] == "Expired"
    finally:
        await server.stop()


async def test_watch_bookmarks_and_timeout(client: Client) -> None:
    watch = await client.watch(
        CM,
        allowWatchBookmarks="true",
        sendInitialEvents="true",
        resourceVersionMatch="NotOlderThan",
        timeoutSeconds=1,
    )
    async with watch:
        event = await next_event(watch)
        assert event["type"] == "BOOKMARK"
        assert event["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
        rest = await asyncio.wait_for(watch.content.read(), 5)
    assert rest == b""  # the server closed the stream after timeoutSeconds


async def test_finalizers_hold_deletion_until_removed(client: Client) -> None:
    body = configmap("held")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    await client.post(CM, body)
    code, marked = await client.delete(f"{CM}/held")
    assert code == 200
    assert marked["metadata"]["deletionTimestamp"]
    code, still = await client.get(f"{CM}/held")
    assert code == 200
    assert still["metadata"]["finalizers"] == ["example.com/hold"]
    code, _ = await client.patch(f"{CM}/held", {"metadata": {"finalizers": None}})
    assert code == 200
    code, gone = await client.get(f"{CM}/held")
    assert (code, gone["reason"]) == (404, "NotFound")


async def test_propagation_policies_add_finalizers(client: Client) -> None:
    for name, policy, finalizer in (
        ("o", "Orphan", "orphan"),
        ("f", "Foreground", "foregroundDeletion"),
    ):
        await client.post(CM, configmap(name))
        code, marked = await client.delete(
            f"{CM}/{name}",
            {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": policy},
        )
        assert code == 200
        assert marked["metadata"]["finalizers"] == [finalizer]


async def test_terminating_namespace_refuses_content_and_finalize_removes_it(
    client: Client,
) -> None:
    await client.post(
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}},
    )
    code, ns = await client.delete("/api/v1/namespaces/doomed")
    assert code == 200
    assert ns["status"]["phase"] == "Terminating"
    code, refused = await client.post("/api/v1/namespaces/doomed/configmaps", configmap("x"))
    assert (code, refused["reason"]) == (403, "Forbidden")
    assert refused["details"]["causes"][0]["reason"] == "NamespaceTerminating"
    ns["spec"]["finalizers"] = []
    code, _ = await client.put("/api/v1/namespaces/doomed/finalize", ns)
    assert code == 200
    code, _ = await client.get("/api/v1/namespaces/doomed")
    assert code == 404
    code, refused = await client.delete("/api/v1/namespaces/default")
    assert (code, refused["reason"]) == (403, "Forbidden")


async def test_generation_counts_spec_changes_and_status_is_separate(client: Client) -> None:
    path = "/apis/apps/v1/namespaces/default/deployments"
    code, created = await client.post(path, deployment("web"))
    assert code == 201
    assert created["metadata"]["generation"] == 1
    assert created["status"] == {}
    code, labelled = await client.patch(f"{path}/web", {"metadata": {"labels": {"a": "b"}}})
    assert labelled["metadata"]["generation"] == 1
    code, scaled = await client.patch(
        f"{path}/web", {"spec": {"replicas": 4}, "status": {"replicas": 9}}
    )
    assert scaled["metadata"]["generation"] == 2
    assert scaled["status"] == {}  # status only changes through /status
    code, status = await client.patch(
        f"{path}/web/status", {"status": {"replicas": 4}, "spec": {"replicas": 1}}
    )
    assert code == 200
    assert status["status"]["replicas"] == 4
    assert status["spec"]["replicas"] == 4
    assert status["metadata"]["generation"] == 2


async def test_scale_subresource(client: Client) -> None:
    path = "/apis/apps/v1/namespaces/default/deployments"
    await client.post(path, deployment("api"))
    code, scale = await client.get(f"{path}/api/scale")
    assert code == 200
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 1
    assert scale["status"]["selector"] == "app=api"
    scale["spec"]["replicas"] = 5
    code, updated = await client.put(f"{path}/api/scale", scale)
    assert code == 200
    assert updated["spec"]["replicas"] == 5
    code, stale = await client.put(f"{path}/api/scale", scale)
    assert (code, stale["reason"]) == (409, "Conflict")
    code, _ = await client.patch(f"{path}/api/scale", {"spec": {"replicas": 2}})
    _, got = await client.get(f"{path}/api")
    assert got["spec"]["replicas"] == 2


async def test_binding_assigns_a_node_once(client: Client) -> None:
    pods = "/api/v1/namespaces/default/pods"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    await client.post(pods, pod)
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "p"},
        "target": {"kind": "Node", "name": "n1"},
    }
    code, _ = await client.post(f"{pods}/p/binding", binding)
    assert code == 201
    _, bound = await client.get(f"{pods}/p")
    assert bound["spec"]["nodeName"] == "n1"
    assert {"type": "PodScheduled", "status": "True"}.items() <= bound["status"]["conditions"][
        0
    ].items()
    code, again = await client.post(f"{pods}/p/binding", binding)
    assert (code, again["reason"]) == (409, "Conflict")


async def test_dry_run_stores_nothing(client: Client) -> None:
    code, created = await client.post(CM, configmap("dry"), dryRun="All")
    assert code == 201
    assert created["metadata"]["uid"]
    code, _ = await client.get(f"{CM}/dry")
    assert code == 404


async def test_dry_run_create_of_a_taken_name_conflicts(client: Client) -> None:
    assert (await client.post(CM, configmap("taken")))[0] == 201
    code, status = await client.post(CM, configmap("taken"), dryRun="All")
    assert (code, status["reason"]) == (409, "AlreadyExists"), status
    assert status["message"] == 'configmaps "taken" already exists'


async def test_discovery_and_metrics(client: Client) -> None:
    async with client.session.get(
        client.base + "/apis", headers={"Accept": discovery.AGGREGATED_TYPE + ",application/json"}
    ) as r:
        assert r.headers["Content-Type"] == discovery.AGGREGATED_TYPE
        body = await r.json(content_type=None)
    groups = {item["metadata"]["name"] for item in body["items"]}
    assert {"apps", "batch", "autoscaling", "rbac.authorization.k8s.io"} <= groups
    code, resources = await client.get("/apis/apps/v1")
    names = {r["name"] for r in resources["resources"]}
    assert {"deployments", "deployments/scale", "deployments/status"} <= names
    code, text = await client.get("/metrics")
    assert code == 200
    assert (
        'apiserver_request_total{code="200",resource="",verb="GET"}' in text
        or "apiserver_request_total" in text
    )
    code, version = await client.get("/version")
    assert (version["major"], version["minor"]) == ("1", "32")


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/api/v2/pods", 404),
        ("/apis/nope/v1/things", 404),
        ("/api/v1/widgets", 404),
        ("/nothing", 404),
    ],
)
async def test_unknown_paths_are_status_404(client: Client, path: str, code: int) -> None:
    status, body = await client.get(path)
    assert status == code
    assert body["kind"] == "Status"
    assert body["reason"] == "NotFound"


async def test_long_lists_stream_as_valid_json(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kybern.apiserver import codec

    monkeypatch.setattr(codec, "STREAM_ITEMS", 2)
    await create_configmaps(client, 5)
    code, listed = await client.get(CM)
    assert code == 200
    assert listed["kind"] == "ConfigMapList"
    assert [i["metadata"]["name"] for i in listed["items"]] == [f"cm-{i:03d}" for i in range(5)]


async def test_periodic_bookmarks_carry_the_current_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aiohttp

    from kybern.apiserver import watchcache

    monkeypatch.setattr(watchcache, "BOOKMARK_INTERVAL", 0.05)
    server = await start_server(tmp_path)
    try:
        async with aiohttp.ClientSession() as session:
            await _check_bookmarks(Client(session, f"http://127.0.0.1:{server.port}"))
    finally:
        await server.stop()


async def _check_bookmarks(client: Client) -> None:
    _, listed = await client.get(CM)
    plain = await client.watch(CM, resourceVersion=listed["metadata"]["resourceVersion"])
    marked = await client.watch(
        CM, resourceVersion=listed["metadata"]["resourceVersion"], allowWatchBookmarks="true"
    )
    async with plain, marked:
        _, made = await client.post(CM, configmap("m"))
        assert (await next_event(marked))["type"] == "ADDED"
        event = await asyncio.wait_for(next_event(marked), 5)
        while event["object"]["metadata"]["resourceVersion"] != made["metadata"]["resourceVersion"]:
            event = await asyncio.wait_for(next_event(marked), 5)
        assert event["type"] == "BOOKMARK"
        assert event["object"]["kind"] == "ConfigMap"
        # A watcher that did not ask for bookmarks gets none: only the ADDED event.
        assert (await next_event(plain))["type"] == "ADDED"
        await client.post(CM, configmap("n"))
        assert (await asyncio.wait_for(next_event(plain), 5))["object"]["metadata"]["name"] == "n"


async def test_an_update_that_changes_nothing_writes_nothing(client: Client) -> None:
    _, made = await client.post(CM, configmap("same", a="1"))
    code, again = await client.put(f"{CM}/same", made)
    assert code == 200
    assert again["metadata"]["resourceVersion"] == made["metadata"]["resourceVersion"]
    code, patched = await client.patch(f"{CM}/same", {"data": {"a": "1"}})
    assert patched["metadata"]["resourceVersion"] == made["metadata"]["resourceVersion"]
    code, changed = await client.patch(f"{CM}/same", {"data": {"a": "2"}})
    assert int(changed["metadata"]["resourceVersion"]) > int(made["metadata"]["resourceVersion"])
