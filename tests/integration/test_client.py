"""kybern.client against a real in-process API server, through BOTH transports.

Every test body runs twice: over HTTP (``RESTTransport``) and in process
(``InProcessTransport`` over ``APIServer.local_api()``). Same answers, same errors, same
watch sequences: that is the in-process transport's contract (DESIGN.md §1).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from kybern.apiserver import pki, server
from kybern.client import (
    Client,
    FakeClock,
    InProcessTransport,
    RESTTransport,
    User,
    errors,
    informer,
    leaderelection,
    rest,
    store,
)
from tests.integration.conftest import start_server

pytestmark = pytest.mark.timeout(60)
TRANSPORTS = ["http", "inprocess"]


def make_client(apiserver: server.APIServer, transport: str) -> Client:
    if transport == "http":
        return Client(RESTTransport.for_url(apiserver.url))
    return Client(InProcessTransport(apiserver.local_api()))


@pytest.fixture(params=TRANSPORTS)
async def kube(
    request: pytest.FixtureRequest, apiserver: server.APIServer
) -> AsyncIterator[Client]:
    client = make_client(apiserver, request.param)
    yield client
    await client.close()


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": labels or {}},
        "data": data,
    }


def deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }


async def wait_until(predicate: Callable[[], bool], within: float = 10) -> None:
    """Poll a condition (not a fixed sleep) until it holds or the deadline passes: the state
    belongs to other tasks that signal nothing."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


# -- CRUD ---------------------------------------------------------------------------


async def test_create_get_update_patch_delete(kube: Client) -> None:
    body = configmap("crud", a="1")
    sent = copy.deepcopy(body)
    created = await kube.create(body)
    assert body == sent  # the caller's object is not defaulted in place
    assert created["metadata"]["uid"]
    rv = created["metadata"]["resourceVersion"]
    got = await kube.get("v1", "ConfigMap", "crud", namespace="default")
    assert got["data"] == {"a": "1"}
    got["data"]["a"] = "mutated locally"  # our own copy: the server's cache is untouched
    assert (await kube.get("v1", "configmaps", "crud", namespace="default"))["data"] == {"a": "1"}

    got["data"] = {"a": "2"}
    updated = await kube.update(got)
    assert int(updated["metadata"]["resourceVersion"]) > int(rv)
    stale = dict(got, data={"a": "3"})  # still carries the old resourceVersion
    with pytest.raises(errors.Conflict) as conflict:
        await kube.update(stale)
    assert conflict.value.code == 409

    merged = await kube.patch("v1", "ConfigMap", "crud", {"data": {"b": "x"}}, namespace="default")
    assert merged["data"] == {"a": "2", "b": "x"}
    ops = [{"op": "remove", "path": "/data/a"}]
    patched = await kube.patch(
        "v1", "ConfigMap", "crud", ops, namespace="default", patch_type="json"
    )
    assert patched["data"] == {"b": "x"}

    answer = await kube.delete("v1", "ConfigMap", "crud", namespace="default")
    assert answer["status"] == "Success"
    with pytest.raises(errors.NotFound):
        await kube.get("v1", "ConfigMap", "crud", namespace="default")


async def test_errors_carry_the_status(kube: Client) -> None:
    await kube.create(configmap("dup"))
    with pytest.raises(errors.AlreadyExists) as exists:
        await kube.create(configmap("dup"))
    assert exists.value.reason == "AlreadyExists"
    with pytest.raises(errors.Invalid) as invalid:
        await kube.create(configmap("Not_A_Name"))
    assert invalid.value.causes[0]["field"] == "metadata.name"
    with pytest.raises(errors.NotFound):
        await kube.create(dict(configmap("x"), metadata={"name": "x", "namespace": "nope"}))
    with pytest.raises(errors.BadRequest):
        await kube.list("v1", "ConfigMap", label_selector="a in (")
    with pytest.raises(errors.Conflict):
        await kube.delete(
            "v1", "ConfigMap", "dup", namespace="default", preconditions={"uid": "wrong"}
        )
    with pytest.raises(errors.UnsupportedMediaType):
        await kube.patch("v1", "ConfigMap", "dup", {}, namespace="default", patch_type="text/plain")


async def test_status_scale_binding_and_deletion_options(kube: Client) -> None:
    created = await kube.create(deployment("web"))
    assert created["metadata"]["generation"] == 1
    status = dict(created, status={"replicas": 7, "observedGeneration": 1})
    status["spec"] = dict(created["spec"], replicas=5)  # ignored by /status
    after = await kube.update_status(status)
    assert after["status"]["replicas"] == 7
    assert after["spec"]["replicas"] == 1
    assert after["metadata"]["generation"] == 1

    scale = await kube.scale("apps/v1", "Deployment", "web", 3, namespace="default")
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 3
    got = await kube.get_scale("apps/v1", "deployments", "web", namespace="default")
    assert got["spec"]["replicas"] == 3

    await kube.create(pod("p"))
    await kube.bind("p", "node-1", namespace="default")
    bound = await kube.get("v1", "Pod", "p", namespace="default")
    assert bound["spec"]["nodeName"] == "node-1"
    with pytest.raises(errors.Conflict):
        await kube.bind(bound, "node-2")

    held = await kube.delete(
        "apps/v1", "Deployment", "web", namespace="default", propagation_policy="Orphan"
    )
    assert held["metadata"]["finalizers"] == ["orphan"]
    assert held["metadata"]["deletionTimestamp"]

    dry = await kube.create(configmap("dry"), dry_run=True)
    assert dry["metadata"]["name"] == "dry"
    with pytest.raises(errors.NotFound):
        await kube.get("v1", "ConfigMap", "dry", namespace="default")


async def test_server_side_apply_and_managed_fields(kube: Client) -> None:
    created = await kube.create(configmap("managed", a="1"))
    assert [m["manager"] for m in created["metadata"]["managedFields"]] == ["kybern"]
    applied = await kube.patch(
        "v1",
        "ConfigMap",
        "applied",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "applied"},
            "data": {"k": "v"},
        },
        namespace="default",
        patch_type="apply",
        field_manager="tool",
    )
    assert applied["data"] == {"k": "v"}
    assert "tool" in [m["manager"] for m in applied["metadata"]["managedFields"]]
    review = await kube.create(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {}}
    )
    assert review["status"]["userInfo"]["username"]


# -- selectors and paging -------------------------------------------------------------


async def test_selectors_limit_and_continue(kube: Client) -> None:
    for i in range(7):
        await kube.create(configmap(f"s-{i}", {"parity": str(i % 2), "set": "s"}))
    odd = await kube.list("v1", "ConfigMap", namespace="default", label_selector="parity=1")
    assert [o["metadata"]["name"] for o in odd["items"]] == ["s-1", "s-3", "s-5"]
    named = await kube.list("v1", "ConfigMap", field_selector="metadata.name=s-4")
    assert [o["metadata"]["name"] for o in named["items"]] == ["s-4"]
    page = await kube.list("v1", "ConfigMap", namespace="default", label_selector="set", limit=3)
    assert len(page["items"]) == 3
    assert "remainingItemCount" not in page["metadata"]  # as Kubernetes: not with a selector
    rest = await kube.list(
        "v1",
        "ConfigMap",
        namespace="default",
        label_selector="set",
        limit=3,
        continue_=page["metadata"]["continue"],
    )
    assert [o["metadata"]["name"] for o in rest["items"]] == ["s-3", "s-4", "s-5"]
    every = await kube.list_all(
        "v1", "ConfigMap", namespace="default", page_size=2, label_selector="set"
    )
    assert len(every) == 7
    gone = await kube.delete_collection(
        "v1", "ConfigMap", namespace="default", label_selector="parity=0"
    )
    assert len(gone["items"]) == 4
    left = await kube.list("v1", "ConfigMap", namespace="default", label_selector="set")
    assert len(left["items"]) == 3


# -- watch ----------------------------------------------------------------------------


async def next_events(events: AsyncIterator[Any], count: int) -> list[Any]:
    async with asyncio.timeout(10):
        return [await anext(events) for _ in range(count)]


async def test_watch_sequence_from_a_resource_version(kube: Client) -> None:
    start = (await kube.list("v1", "ConfigMap", namespace="default"))["metadata"]["resourceVersion"]
    created = await kube.create(configmap("w", a="1"))
    await kube.patch("v1", "ConfigMap", "w", {"data": {"a": "2"}}, namespace="default")
    await kube.create(configmap("other"))
    await kube.delete("v1", "ConfigMap", "w", namespace="default")
    events = kube.watch("v1", "ConfigMap", namespace="default", resource_version=start)
    seen = await next_events(events, 4)
    await events.aclose()
    assert [(e.type, e.object["metadata"]["name"]) for e in seen] == [
        ("ADDED", "w"),
        ("MODIFIED", "w"),
        ("ADDED", "other"),
        ("DELETED", "w"),
    ]
    assert seen[0].object["metadata"]["uid"] == created["metadata"]["uid"]
    revisions = [int(e.object["metadata"]["resourceVersion"]) for e in seen]
    assert revisions == sorted(revisions)

    # One object by name, from now: only its own changes arrive.
    one = kube.watch(
        "v1", "ConfigMap", namespace="default", name="other", resource_version=str(revisions[-1])
    )
    await kube.patch("v1", "ConfigMap", "other", {"data": {"x": "y"}}, namespace="default")
    [event] = await next_events(one, 1)
    await one.aclose()
    assert (event.type, event.object["data"]) == ("MODIFIED", {"x": "y"})


async def test_watch_initial_events_bookmark_and_timeout(kube: Client) -> None:
    await kube.create(configmap("init"))
    events = kube.watch(
        "v1",
        "ConfigMap",
        namespace="default",
        allow_bookmarks=True,
        send_initial_events=True,
        timeout_seconds=1,
    )
    seen = [e async for e in events]  # ends by itself after timeoutSeconds
    assert [e.type for e in seen] == ["ADDED", "BOOKMARK"]
    assert seen[1].object["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_watch_refusals_raise(kube: Client) -> None:
    with pytest.raises(errors.BadRequest):
        async for _ in kube.watch("v1", "ConfigMap", label_selector="a in ("):
            pass


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_watch_from_a_compacted_version_raises_gone(tmp_path: Path, transport: str) -> None:
    apiserver = await start_server(tmp_path, watch_cache_capacity=3)
    kube = make_client(apiserver, transport)
    try:
        start = (await kube.list("v1", "ConfigMap"))["metadata"]["resourceVersion"]
        for i in range(6):
            await kube.create(configmap(f"c-{i}"))
        assert apiserver.backend is not None
        await apiserver.backend.compact(apiserver.backend.current_rev() - 1)
        with pytest.raises(errors.Gone):
            async for _ in kube.watch("v1", "ConfigMap", resource_version=start):
                pass
    finally:
        await kube.close()
        await apiserver.stop()


# -- informers ------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def on_add(self, obj: dict[str, Any]) -> None:
        self.events.append(("add", obj["metadata"]["name"]))

    def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.events.append(("update", new["metadata"]["name"]))

    def on_delete(self, obj: dict[str, Any] | informer.DeletedFinalStateUnknown) -> None:
        kind = "tombstone" if isinstance(obj, informer.DeletedFinalStateUnknown) else "delete"
        self.events.append((kind, informer.object_of(obj)["metadata"]["name"]))


async def test_informer_lists_watches_and_resumes(
    kube: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(informer, "MIN_WATCH_TIMEOUT", 1)  # watches end every second
    await kube.create(configmap("before", {"app": "x"}))
    factory = informer.SharedInformerFactory(kube)
    inf = factory.informer_for("v1", "ConfigMap", namespace="default")
    rec = Recorder()
    inf.add_handler(rec)
    factory.start()
    try:
        async with asyncio.timeout(10):
            await factory.wait_for_cache_sync()
        assert rec.events == [("add", "before")]
        await kube.create(configmap("during", {"app": "x"}))
        await kube.patch("v1", "ConfigMap", "before", {"data": {"k": "v"}}, namespace="default")
        await wait_until(lambda: len(rec.events) == 3)
        await wait_until(lambda: inf.watches >= 2)  # the first watch timed out and resumed
        await kube.delete("v1", "ConfigMap", "during", namespace="default")
        await wait_until(lambda: len(rec.events) == 4)
        assert rec.events == [
            ("add", "before"),
            ("add", "during"),
            ("update", "before"),
            ("delete", "during"),
        ]
        assert inf.lists == 1
        assert [store.key_of(o) for o in inf.store.by_index(store.LABEL, "app=x")] == [
            "default/before"
        ]
        cached = inf.store.get("default/before")
        assert cached is not None
        assert cached["data"] == {"k": "v"}
    finally:
        await factory.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_informer_relists_after_410_with_tombstones(tmp_path: Path, transport: str) -> None:
    apiserver = await start_server(tmp_path, watch_cache_capacity=3)
    kube = make_client(apiserver, transport)
    inf = informer.Informer(kube, "v1", "ConfigMap", namespace="default")
    rec = Recorder()
    inf.add_handler(rec)
    try:
        for name in ("keep", "drop", "change"):
            await kube.create(configmap(name))
        inf.start()
        async with asyncio.timeout(10):
            await inf.wait_for_sync()
        await inf.stop()  # disconnected while the world moves on
        await kube.delete("v1", "ConfigMap", "drop", namespace="default")
        await kube.patch("v1", "ConfigMap", "change", {"data": {"v": "2"}}, namespace="default")
        for i in range(5):
            await kube.create(configmap(f"new-{i}"))
        assert apiserver.backend is not None
        await apiserver.backend.compact(apiserver.backend.current_rev())
        inf.start()  # resumes from its old resourceVersion: 410, so it lists again
        await wait_until(lambda: inf.lists == 2 and inf.watches >= 2)
        assert ("tombstone", "drop") in rec.events
        assert ("update", "change") in rec.events
        assert sorted(k for k in inf.store.list_keys()) == sorted(
            ["default/keep", "default/change"] + [f"default/new-{i}" for i in range(5)]
        )
        await kube.create(configmap("after"))
        await wait_until(lambda: "default/after" in inf.store)
    finally:
        await inf.stop()
        await kube.close()
        await apiserver.stop()


# -- leader election ------------------------------------------------------------------


def seconds_between(earlier: str, later: str) -> float:
    parse = datetime.datetime.fromisoformat
    return (parse(later) - parse(earlier)).total_seconds()


async def drive(clock: FakeClock, seconds: float, idle: Callable[[], bool]) -> None:
    """Advance the fake clock in steps, each once every candidate is asleep on it."""
    end = clock.monotonic() + seconds
    while clock.monotonic() < end:
        await wait_until(idle)
        deadline = clock.next_deadline() or end
        clock.advance(max(0.0, min(deadline, end) - clock.monotonic()))


async def test_leader_election_two_candidates_and_failover(
    kube: Client,
) -> None:
    clock = FakeClock()
    leading: list[str] = []

    def candidate(
        identity: str, *, release: bool
    ) -> tuple[leaderelection.LeaderElector, asyncio.Task[None]]:
        async def lead() -> None:
            leading.append(identity)
            await asyncio.Event().wait()

        elector = leaderelection.LeaderElector(
            kube,
            leaderelection.Config(name="ctrl", identity=identity, release_on_cancel=release),
            on_started_leading=lead,
            clock=clock,
        )
        return elector, asyncio.ensure_future(elector.run())

    a, task_a = candidate("a", release=False)
    await wait_until(lambda: a.is_leader)
    b, task_b = candidate("b", release=True)
    tasks = [task_a, task_b]

    def idle() -> bool:
        return clock.sleepers == sum(1 for t in tasks if not t.done())

    await drive(clock, 30, idle)
    assert leading == ["a"]
    assert not b.is_leader
    task_a.cancel()  # a crashes: no release
    with pytest.raises(asyncio.CancelledError):
        await task_a
    last = await kube.get("coordination.k8s.io/v1", "Lease", "ctrl", namespace="kube-system")
    await drive(clock, 30, idle)
    await wait_until(lambda: b.is_leader)
    lease = await kube.get("coordination.k8s.io/v1", "Lease", "ctrl", namespace="kube-system")
    assert lease["spec"]["holderIdentity"] == "b"
    assert lease["spec"]["leaseTransitions"] == 1
    # b waited a full lease duration after a's last renewal, and not much more.
    waited = seconds_between(last["spec"]["renewTime"], lease["spec"]["acquireTime"])
    assert 15 <= waited <= 15 + 2 * 4.4  # seen up to one retry late, retried up to one late
    assert leading == ["a", "b"]
    task_b.cancel()  # b shuts down cleanly: it gives the lease up
    with pytest.raises(asyncio.CancelledError):
        await task_b
    released = await kube.get("coordination.k8s.io/v1", "Lease", "ctrl", namespace="kube-system")
    assert released["spec"]["holderIdentity"] == ""
    assert released["spec"]["leaseDurationSeconds"] == 1


# -- HTTPS with the server's kubeconfig -----------------------------------------------


async def test_https_from_the_admin_kubeconfig_and_tokens(tmp_path: Path) -> None:
    apiserver = server.APIServer(server.Config(data_dir=tmp_path, port=0))
    await apiserver.start()
    clients: list[Client] = []
    try:
        by_cert = Client(await RESTTransport.from_kubeconfig(apiserver.kubeconfig_path))
        clients.append(by_cert)
        review = await by_cert.create(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
        assert review["status"]["userInfo"]["username"] == pki.ADMIN_USER
        assert apiserver.pki is not None
        token = apiserver.pki.admin_token()
        kubeconfig = tmp_path / "token.yaml"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "clusters": [
                        {
                            "name": "c",
                            "cluster": {"server": apiserver.url, "insecure-skip-tls-verify": True},
                        }
                    ],
                    "users": [{"name": "u", "user": {"token": token}}],
                    "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                    "current-context": "x",
                }
            )
        )
        by_token = Client(await RESTTransport.from_kubeconfig(kubeconfig))
        clients.append(by_token)
        assert (await by_token.get("v1", "Namespace", "default"))["metadata"]["name"] == "default"
        config = await asyncio.to_thread(rest.load_kubeconfig, kubeconfig)
        wrong = Client(RESTTransport(dataclasses.replace(config, token="nope")))
        clients.append(wrong)
        with pytest.raises(errors.Unauthorized):
            await wrong.get("v1", "Namespace", "default")
    finally:
        for client in clients:
            await client.close()
        await apiserver.stop()


async def test_an_unreachable_server_is_a_transport_error() -> None:
    client = Client(RESTTransport.for_url("http://127.0.0.1:9", timeout=5))
    with pytest.raises(errors.TransportError):
        await client.get("v1", "Namespace", "default")
    await client.close()


async def test_in_process_requests_carry_the_transport_user(apiserver: server.APIServer) -> None:
    api = apiserver.local_api()
    me = Client(InProcessTransport(api, user=User(name="system:kube-scheduler")))
    review = await me.create(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    )
    assert review["status"]["userInfo"]["username"] == "system:kube-scheduler"
    assert "system:authenticated" in review["status"]["userInfo"]["groups"]
    nobody = Client(InProcessTransport(api, user=User(name="")))
    with pytest.raises(errors.Unauthorized):
        await nobody.get("v1", "Namespace", "default")
    with pytest.raises(errors.Unauthorized):
        async for _ in nobody.watch("v1", "Namespace"):
            pass


PARITY_REQUESTS: list[tuple[str, str, dict[str, str], Any, str]] = [
    ("GET", "/api/v1/namespaces/default/configmaps/missing", {}, None, "application/json"),
    ("GET", "/api/v1/namespaces/default/configmaps", {"labelSelector": "a in ("}, None, ""),
    ("GET", "/api/v1/configmaps", {"fieldSelector": "spec.bogus=1"}, None, ""),
    ("GET", "/api/v1/namespaces/default/nothings", {}, None, ""),
    ("GET", "/apis/apps/v9/deployments", {}, None, ""),
    ("PUT", "/api/v1/namespaces/default/configmaps", {}, {}, "application/json"),
    ("DELETE", "/api/v1/namespaces", {}, None, ""),
    ("POST", "/api/v1/namespaces/default/configmaps", {}, [1, 2], "application/json"),
    (
        "POST",
        "/api/v1/namespaces/default/configmaps",
        {},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}},
        "application/json",
    ),
    (
        "POST",
        "/api/v1/namespaces/default/configmaps",
        {},
        {"metadata": {"name": "Bad_Name"}, "data": {"k": 1}},
        "application/json",
    ),
    ("POST", "/api/v1/namespaces/default/configmaps", {"dryRun": "Some"}, {}, "application/json"),
    ("PATCH", "/api/v1/namespaces/default/configmaps/p", {}, {"data": 1}, "text/plain"),
    (
        "PATCH",
        "/api/v1/namespaces/default/configmaps/p",
        {},
        [{"op": "nope"}],
        "application/json-patch+json",
    ),
    ("DELETE", "/api/v1/namespaces/default", {}, None, ""),
    (
        "POST",
        "/api/v1/namespaces/default/configmaps",
        {"fieldValidation": "Strict"},
        {"metadata": {"name": "s"}, "bogus": 1, "data": {"k": "v"}},
        "application/json",
    ),
    (
        "PATCH",
        "/api/v1/namespaces/default/configmaps/p",
        {"fieldValidation": "Strict"},
        {"spec": {"x": 1}},
        "application/merge-patch+json",
    ),
    ("POST", "/api/v1/namespaces/default/configmaps", {"fieldValidation": "Maybe"}, {}, ""),
    ("POST", "/api/v1/namespaces/default/pods/p/eviction", {}, {}, "application/json"),
    (
        "POST",
        "/api/v1/namespaces/default/pods/missing/binding",
        {},
        {"target": {}},
        "application/json",
    ),
]


@pytest.mark.parametrize(("method", "path", "query", "body", "ctype"), PARITY_REQUESTS)
async def test_both_transports_answer_bad_requests_identically(
    apiserver: server.APIServer,
    method: str,
    path: str,
    query: dict[str, str],
    body: Any,
    ctype: str,
) -> None:
    http = RESTTransport.for_url(apiserver.url)
    local = InProcessTransport(apiserver.local_api())
    try:
        await Client(local).create(configmap("p"))
        answers = []
        for transport in (http, local):
            response = await transport.request(
                method, path, query=query, body=body, content_type=ctype or None
            )
            answers.append((response.status, response.json()))
        assert answers[0][0] >= 400
        assert answers[0] == answers[1]
    finally:
        await http.close()


async def test_raw_watch_streams_are_json_lines(kube: Client) -> None:
    await kube.create(configmap("line"))
    lines = kube.transport.stream(
        "GET", "/api/v1/namespaces/default/configmaps", query={"watch": "true"}
    )
    async with asyncio.timeout(10):
        first = await anext(lines)
    await lines.aclose()  # type: ignore[attr-defined]
    event = orjson.loads(first)
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "line")
