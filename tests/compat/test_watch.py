"""Watch through the official client and raw HTTP streaming: the exact event sequence from a
list's resourceVersion, live delivery, resume after a disconnect, selectors on watches,
bookmarks, timeoutSeconds, and 410 Gone once history is compacted (a dedicated server with a
tiny history window and watch cache)."""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
from kubernetes.client.rest import ApiException

from kybern.testing import server_process
from tests.compat.helpers import MERGE, Obj
from tests.support import cluster

pytestmark = pytest.mark.compat
Event = tuple[str, str, str]  # (type, name, resourceVersion)


def _cm(name: str, labels: dict[str, str] | None = None) -> Obj:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": {"v": "0"}}


def _writes(core: kubernetes.client.CoreV1Api, ns: str, name: str) -> list[Event]:
    """Create, replace, patch and delete one ConfigMap; the events a watcher must see."""
    created = core.create_namespaced_config_map(ns, _cm(name))
    created.data = {"v": "1"}
    replaced = core.replace_namespaced_config_map(name, ns, created)
    patched = core.patch_namespaced_config_map(name, ns, {"data": {"v": "2"}}, _content_type=MERGE)
    core.delete_namespaced_config_map(name, ns)
    deleted_rv = core.list_namespaced_config_map(ns).metadata.resource_version
    return [
        ("ADDED", name, created.metadata.resource_version),
        ("MODIFIED", name, replaced.metadata.resource_version),
        ("MODIFIED", name, patched.metadata.resource_version),
        ("DELETED", name, deleted_rv),
    ]


def _take(events: Iterator[Obj], count: int) -> list[Obj]:
    taken = []
    for event in events:
        taken.append(event)
        if len(taken) == count:
            break
    return taken


def _raw_event(event: Obj) -> Event:
    meta = event["object"]["metadata"]
    return event["type"], meta.get("name", ""), meta["resourceVersion"]


def test_typed_watch_replays_the_exact_sequence(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    expected = _writes(core, ns, "w") + _writes(core, ns, "w")  # same name, a second life

    watch = kubernetes.watch.Watch()
    seen, data = [], []
    for event in watch.stream(
        core.list_namespaced_config_map, ns, resource_version=start, timeout_seconds=10
    ):
        assert isinstance(event["object"], kubernetes.client.V1ConfigMap)
        meta = event["object"].metadata
        seen.append((event["type"], meta.name, meta.resource_version))
        data.append(event["object"].data["v"])
        if len(seen) == len(expected):
            watch.stop()
    assert seen == expected
    assert data == ["0", "1", "2", "2"] * 2  # a DELETED event carries the last state
    assert watch.resource_version == expected[-1][2]


def test_raw_watch_delivers_live_events(
    core: kubernetes.client.CoreV1Api, raw: cluster.RawClient, ns: str
) -> None:
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    conn = raw.connect(timeout=10)
    try:
        path = f"/api/v1/namespaces/{ns}/configmaps"
        conn.request("GET", cluster.with_query(path, {"watch": "1", "resourceVersion": start}))
        reply = conn.getresponse()  # headers arrive once the watch is registered
        assert reply.status == 200
        assert reply.getheader("Content-Type", "").startswith("application/json")
        expected = _writes(core, ns, "live")
        lines = [json.loads(reply.readline()) for _ in expected]
    finally:
        conn.close()
    assert [_raw_event(e) for e in lines] == expected
    for event in lines:
        assert (event["object"]["apiVersion"], event["object"]["kind"]) == ("v1", "ConfigMap")
    assert [e["object"]["data"]["v"] for e in lines] == ["0", "1", "2", "2"]


def test_resume_after_disconnect_loses_and_repeats_nothing(
    core: kubernetes.client.CoreV1Api, raw: cluster.RawClient, ns: str
) -> None:
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    path = f"/api/v1/namespaces/{ns}/configmaps"
    expected = _writes(core, ns, "r1") + _writes(core, ns, "r2")

    first = _take(raw.stream(path, query={"resourceVersion": start, "timeoutSeconds": 10}), 3)
    # the connection is closed now; more happens while nobody watches
    expected += _writes(core, ns, "r3")
    resume_from = first[-1]["object"]["metadata"]["resourceVersion"]
    rest = _take(
        raw.stream(path, query={"resourceVersion": resume_from, "timeoutSeconds": 10}),
        len(expected) - 3,
    )
    assert [_raw_event(e) for e in first + rest] == expected


def test_typed_watch_resumes_from_its_last_resource_version(
    core: kubernetes.client.CoreV1Api, ns: str
) -> None:
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    expected = _writes(core, ns, "t1")
    watch = kubernetes.watch.Watch()
    seen = []
    for event in watch.stream(
        core.list_namespaced_config_map, ns, resource_version=start, timeout_seconds=10
    ):
        seen.append(event["object"].metadata.resource_version)
        if len(seen) == 2:
            watch.stop()
    expected += _writes(core, ns, "t2")
    for event in watch.stream(
        core.list_namespaced_config_map,
        ns,
        resource_version=watch.resource_version,
        timeout_seconds=10,
    ):
        seen.append(event["object"].metadata.resource_version)
        if len(seen) == len(expected):
            watch.stop()
    assert seen == [rv for _, _, rv in expected]


def test_watch_with_a_label_selector(
    core: kubernetes.client.CoreV1Api, raw: cluster.RawClient, ns: str
) -> None:
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, _cm("sel", {"watched": "yes"}))
    core.create_namespaced_config_map(ns, _cm("other", {"watched": "no"}))
    out = core.patch_namespaced_config_map(
        "sel", ns, {"metadata": {"labels": {"watched": "no"}}}, _content_type=MERGE
    )
    back = core.patch_namespaced_config_map(
        "sel", ns, {"metadata": {"labels": {"watched": "yes"}}}, _content_type=MERGE
    )
    core.patch_namespaced_config_map("other", ns, {"data": {"v": "9"}}, _content_type=MERGE)
    touched = core.patch_namespaced_config_map("sel", ns, {"data": {"v": "3"}}, _content_type=MERGE)
    events = _take(
        raw.stream(
            f"/api/v1/namespaces/{ns}/configmaps",
            query={"resourceVersion": start, "labelSelector": "watched=yes", "timeoutSeconds": 10},
        ),
        4,
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "sel"),
        ("DELETED", "sel"),  # it stopped matching
        ("ADDED", "sel"),  # it matches again
        ("MODIFIED", "sel"),
    ]
    assert events[1]["object"]["metadata"]["resourceVersion"] == out.metadata.resource_version
    assert events[2]["object"]["metadata"]["resourceVersion"] == back.metadata.resource_version
    assert events[3]["object"]["metadata"]["resourceVersion"] == touched.metadata.resource_version


def test_kubelet_style_watch_by_node_name(
    core: kubernetes.client.CoreV1Api, raw: cluster.RawClient, ns: str
) -> None:
    """What a kubelet watches: pods with spec.nodeName=<node>. A pod appears when it is bound
    (ADDED), is marked for graceful deletion (MODIFIED), and goes (DELETED)."""
    start = core.list_namespaced_pod(ns).metadata.resource_version
    pod = {"metadata": {"name": "kp"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    core.create_namespaced_pod(ns, pod)
    binding = {"metadata": {"name": "kp"}, "target": {"kind": "Node", "name": "node-k"}}
    core.create_namespaced_pod_binding("kp", ns, binding, _preload_content=False)
    core.delete_namespaced_pod("kp", ns)
    core.delete_namespaced_pod("kp", ns, grace_period_seconds=0)
    events = _take(
        raw.stream(
            f"/api/v1/namespaces/{ns}/pods",
            query={
                "resourceVersion": start,
                "fieldSelector": "spec.nodeName=node-k",
                "timeoutSeconds": 10,
            },
        ),
        3,
    )
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[0]["object"]["spec"]["nodeName"] == "node-k"
    assert "deletionTimestamp" not in events[0]["object"]["metadata"]
    assert events[1]["object"]["metadata"]["deletionGracePeriodSeconds"] == 30


def test_watch_without_resource_version_starts_with_the_current_objects(
    core: kubernetes.client.CoreV1Api, raw: cluster.RawClient, ns: str
) -> None:
    for name in ("x1", "x2"):
        core.create_namespaced_config_map(ns, _cm(name))
    events = _take(
        raw.stream(f"/api/v1/namespaces/{ns}/configmaps", query={"timeoutSeconds": 5}), 2
    )
    assert sorted((e["type"], e["object"]["metadata"]["name"]) for e in events) == [
        ("ADDED", "x1"),
        ("ADDED", "x2"),
    ]


def test_initial_events_end_with_a_bookmark(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    for name in ("b1", "b2"):
        core.create_namespaced_config_map(ns, _cm(name))
    current = int(core.list_namespaced_config_map(ns).metadata.resource_version)
    watch = kubernetes.watch.Watch()
    seen = []
    for event in watch.stream(
        core.list_namespaced_config_map,
        ns,
        allow_watch_bookmarks=True,
        send_initial_events=True,
        resource_version_match="NotOlderThan",
        timeout_seconds=10,
    ):
        seen.append(event)
        if event["type"] == "BOOKMARK":
            watch.stop()
    assert [e["type"] for e in seen] == ["ADDED", "ADDED", "BOOKMARK"]
    bookmark = seen[-1]["raw_object"]
    assert bookmark["kind"] == "ConfigMap"
    assert bookmark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(bookmark["metadata"]["resourceVersion"]) >= current
    assert watch.resource_version == bookmark["metadata"]["resourceVersion"]


def test_timeout_seconds_ends_the_stream(
    core: kubernetes.client.CoreV1Api, raw: cluster.RawClient, ns: str
) -> None:
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    began = time.monotonic()
    events = list(
        raw.stream(
            f"/api/v1/namespaces/{ns}/configmaps",
            query={"resourceVersion": rv, "timeoutSeconds": 1, "allowWatchBookmarks": "true"},
        )
    )
    elapsed = time.monotonic() - began
    assert [e for e in events if e["type"] != "BOOKMARK"] == []
    assert 0.9 <= elapsed < 5, elapsed

    began = time.monotonic()
    typed = list(
        kubernetes.watch.Watch().stream(
            core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=1
        )
    )
    assert typed == []
    assert time.monotonic() - began < 5


def test_watch_one_object_by_path(
    core: kubernetes.client.CoreV1Api, raw: cluster.RawClient, ns: str
) -> None:
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, _cm("noise"))
    expected = _writes(core, ns, "one")
    events = _take(
        raw.stream(
            f"/api/v1/watch/namespaces/{ns}/configmaps/one",
            query={"resourceVersion": rv, "timeoutSeconds": 10},
        ),
        4,
    )
    assert [_raw_event(e) for e in events] == expected


def test_two_watchers_see_every_concurrent_write_in_order(
    core: kubernetes.client.CoreV1Api, raw: cluster.RawClient, ns: str
) -> None:
    writers, updates = 8, 10
    path = f"/api/v1/namespaces/{ns}/configmaps"
    start = core.list_namespaced_config_map(ns).metadata.resource_version

    def write(worker: int) -> list[str]:
        name = f"c{worker}"
        rvs = [core.create_namespaced_config_map(ns, _cm(name)).metadata.resource_version]
        for i in range(updates):
            patch = {"data": {"v": str(i)}}
            rvs.append(
                core.patch_namespaced_config_map(
                    name, ns, patch, _content_type=MERGE
                ).metadata.resource_version
            )
        return rvs

    live = raw.connect(timeout=20)
    live.request("GET", cluster.with_query(path, {"watch": "1", "resourceVersion": start}))
    reply = live.getresponse()
    try:
        with concurrent.futures.ThreadPoolExecutor(writers) as pool:
            acked = [rv for rvs in pool.map(write, range(writers)) for rv in rvs]
        # A patch that changes nothing writes nothing (no revision, no event).
        total = len(set(acked))
        streamed = [json.loads(reply.readline()) for _ in range(total)]
    finally:
        live.close()
    replayed = _take(
        raw.stream(path, query={"resourceVersion": start, "timeoutSeconds": 10}), total
    )
    for events in (streamed, replayed):
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
        assert rvs == sorted(rvs)
        assert rvs == sorted({int(rv) for rv in acked})
        assert sum(e["type"] == "ADDED" for e in events) == writers


# -- 410 Gone: a server that keeps almost no history ----------------------------------------


@pytest.fixture(scope="module")
def forgetful(tmp_path_factory: pytest.TempPathFactory) -> Iterator[server_process.ServerProcess]:
    proc = cluster.start_server(
        tmp_path_factory.mktemp("kybern-forgetful"),
        "--storage-history-revisions=5",
        "--storage-compact-interval=0.1",
        "--watch-cache-size=5",
    )
    yield proc
    proc.stop()


def _client(kubeconfig: Path) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(
        kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    )


def test_watch_from_a_compacted_version_is_gone(
    forgetful: server_process.ServerProcess,
) -> None:
    core = _client(forgetful.kubeconfig)
    raw = cluster.RawClient(forgetful.kubeconfig)
    made = core.create_namespaced_config_map("default", _cm("churn"))
    old = made.metadata.resource_version
    first_page = core.list_namespace(limit=1)
    assert first_page.metadata._continue
    for i in range(30):
        core.patch_namespaced_config_map(
            "churn", "default", {"data": {"v": str(i)}}, _content_type=MERGE
        )
    path = "/api/v1/namespaces/default/configmaps"

    def first_event() -> Obj | None:
        events = _take(raw.stream(path, query={"resourceVersion": old, "timeoutSeconds": 1}), 1)
        return events[0] if events and events[0]["type"] == "ERROR" else None

    error = cluster.wait_until(first_event, timeout=15, what="compaction of the old revision")
    status = error["object"]
    assert (status["kind"], status["status"], status["code"]) == ("Status", "Failure", 410)
    assert status["reason"] == "Expired"
    assert status["message"].startswith(f"too old resource version: {old} (")

    with pytest.raises(ApiException) as info:
        list(
            kubernetes.watch.Watch().stream(
                core.list_namespaced_config_map, "default", resource_version=old, timeout_seconds=2
            )
        )
    assert info.value.status == 410

    expired = raw.get("/api/v1/namespaces", limit=1, **{"continue": first_page.metadata._continue})
    assert (expired.status, expired.json["reason"]) == (410, "Expired")

    # a recent version still resumes
    latest = core.read_namespaced_config_map("churn", "default").metadata.resource_version
    core.patch_namespaced_config_map("churn", "default", {"data": {"v": "x"}}, _content_type=MERGE)
    events = _take(raw.stream(path, query={"resourceVersion": latest, "timeoutSeconds": 5}), 1)
    assert [(e["type"], e["object"]["data"]["v"]) for e in events] == [("MODIFIED", "x")]
    assert "Traceback" not in forgetful.logs()
