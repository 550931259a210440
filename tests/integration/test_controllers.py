"""The controller manager against a real in-process API server (no scheduler, no kubelet:
pods stay Pending). Every wait is on a condition with a deadline, never a fixed sleep."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kybern import client as kclient
from kybern.apiserver import server
from kybern.cli import cluster
from kybern.controllers import manager
from tests.integration.conftest import start_server

pytestmark = pytest.mark.timeout(60)
T = TypeVar("T")
USER = kclient.User(name="system:kube-controller-manager", groups=("system:masters",))


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[kclient.Client]:
    """A client on a server whose controller manager runs every controller."""
    apiserver: server.APIServer = await start_server(tmp_path)
    transport = kclient.InProcessTransport(apiserver.local_api(), user=USER)
    client = kclient.Client(transport)
    informers = kclient.SharedInformerFactory(client)
    started = asyncio.Event()
    task = asyncio.create_task(manager.run_controllers(client, informers, started=started))
    await asyncio.wait_for(started.wait(), 30)
    yield client
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await informers.stop()
    await apiserver.stop()


async def eventually(check: Callable[[], Awaitable[T | None]], within: float = 15.0) -> T:
    """Poll ``check`` until it returns something truthy (or fail at the deadline)."""
    async with asyncio.timeout(within):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.02)


async def absent(kube: kclient.Client, api_version: str, kind: str, name: str, ns: str) -> bool:
    try:
        await kube.get(api_version, kind, name, namespace=ns)
    except kclient.NotFound:
        return True
    return False


def configmap(
    name: str, ns: str = "default", owner: dict[str, Any] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if owner is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": owner["apiVersion"],
                "kind": owner["kind"],
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "blockOwnerDeletion": True,
            }
        ]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def replicaset(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


async def owned_pods(kube: kclient.Client, owner: dict[str, Any]) -> list[dict[str, Any]]:
    uid = owner["metadata"]["uid"]
    items = (await kube.list("v1", "Pod", namespace="default"))["items"]
    return [
        p
        for p in items
        if not p["metadata"].get("deletionTimestamp")
        and any(r["uid"] == uid for r in p["metadata"].get("ownerReferences") or [])
    ]


class TestNamespaces:
    async def test_deleting_a_namespace_deletes_its_content_then_the_namespace(
        self, kube: kclient.Client
    ) -> None:
        await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}})
        await kube.create(configmap("a", "doomed"))
        await kube.create(configmap("b", "doomed"))
        await kube.delete("v1", "Namespace", "doomed")

        async def gone() -> bool:
            return await absent(kube, "v1", "Namespace", "doomed", "")

        await eventually(gone)
        assert (await kube.list("v1", "ConfigMap", namespace="doomed"))["items"] == []

    async def test_a_default_service_account_appears_and_comes_back(
        self, kube: kclient.Client
    ) -> None:
        await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})

        async def account() -> dict[str, Any] | None:
            with contextlib.suppress(kclient.NotFound):
                return await kube.get("v1", "ServiceAccount", "default", namespace="team")
            return None

        first = await eventually(account)
        await kube.delete("v1", "ServiceAccount", "default", namespace="team")

        async def recreated() -> dict[str, Any] | None:
            again = await account()
            return again if again and again["metadata"]["uid"] != first["metadata"]["uid"] else None

        await eventually(recreated)


class TestGarbageCollector:
    async def test_background_deletes_dependents_of_a_deleted_owner(
        self, kube: kclient.Client
    ) -> None:
        owner = await kube.create(configmap("owner"))
        await kube.create(configmap("dep", owner=owner))
        await kube.delete(
            "v1", "ConfigMap", "owner", namespace="default", propagation_policy="Background"
        )

        async def dep_gone() -> bool:
            return await absent(kube, "v1", "ConfigMap", "dep", "default")

        await eventually(dep_gone)

    async def test_foreground_deletes_dependents_before_the_owner(
        self, kube: kclient.Client
    ) -> None:
        owner = await kube.create(configmap("owner"))
        await kube.create(configmap("dep", owner=owner))
        deleted = await kube.delete(
            "v1", "ConfigMap", "owner", namespace="default", propagation_policy="Foreground"
        )
        assert "foregroundDeletion" in deleted["metadata"]["finalizers"]

        async def owner_gone() -> bool:
            return await absent(kube, "v1", "ConfigMap", "owner", "default")

        await eventually(owner_gone)
        assert await absent(kube, "v1", "ConfigMap", "dep", "default")

    async def test_orphan_keeps_dependents_without_the_reference(
        self, kube: kclient.Client
    ) -> None:
        owner = await kube.create(configmap("owner"))
        await kube.create(configmap("dep", owner=owner))
        await kube.delete(
            "v1", "ConfigMap", "owner", namespace="default", propagation_policy="Orphan"
        )

        async def owner_gone() -> bool:
            return await absent(kube, "v1", "ConfigMap", "owner", "default")

        await eventually(owner_gone)
        dep = await kube.get("v1", "ConfigMap", "dep", namespace="default")
        assert not dep["metadata"].get("ownerReferences")


class TestReplicaSet:
    async def test_creates_scales_down_and_reports_status(self, kube: kclient.Client) -> None:
        rs = await kube.create(replicaset("web", 3))

        async def three() -> list[dict[str, Any]]:
            found = await owned_pods(kube, rs)
            return found if len(found) == 3 else []

        await eventually(three)

        async def status_three() -> bool:
            got = await kube.get("apps/v1", "ReplicaSet", "web", namespace="default")
            return bool(got.get("status", {}).get("replicas") == 3)

        await eventually(status_three)
        await kube.scale("apps/v1", "ReplicaSet", "web", 1, namespace="default")

        async def one() -> list[dict[str, Any]]:
            found = await owned_pods(kube, rs)
            return found if len(found) == 1 else []

        await eventually(one)
        events = (await kube.list("v1", "Event", namespace="default"))["items"]
        reasons = {e["reason"] for e in events if e["involvedObject"]["name"] == "web"}
        assert {"SuccessfulCreate", "SuccessfulDelete"} <= reasons

    async def test_adopts_a_matching_orphan_pod(self, kube: kclient.Client) -> None:
        orphan = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "stray", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }
        await kube.create(orphan)
        rs = await kube.create(replicaset("web", 2))

        async def two() -> list[dict[str, Any]]:
            found = await owned_pods(kube, rs)
            return found if len(found) == 2 else []

        pods = await eventually(two)
        assert "stray" in {p["metadata"]["name"] for p in pods}

    async def test_deleting_the_replicaset_collects_its_pods(self, kube: kclient.Client) -> None:
        rs = await kube.create(replicaset("web", 2))

        async def two() -> list[dict[str, Any]]:
            found = await owned_pods(kube, rs)
            return found if len(found) == 2 else []

        await eventually(two)
        await kube.delete("apps/v1", "ReplicaSet", "web", namespace="default")

        async def none_left() -> bool:
            items = (await kube.list("v1", "Pod", namespace="default"))["items"]
            return not items

        await eventually(none_left)


class TestManager:
    async def test_with_leader_election_it_holds_the_lease_and_runs_controllers(
        self, tmp_path: Path
    ) -> None:
        apiserver = await start_server(tmp_path)
        transport = kclient.InProcessTransport(apiserver.local_api(), user=USER)
        client = kclient.Client(transport)
        ctx = cluster.Context(
            client=client,
            informers=kclient.SharedInformerFactory(client),
            options={"leader_elect": True, "identity": "me", "controllers": ["serviceaccount"]},
        )
        task = asyncio.create_task(manager.run(ctx))
        try:
            await client.create(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
            )

            async def ready() -> bool:
                try:
                    lease = await client.get(
                        "coordination.k8s.io/v1",
                        "Lease",
                        manager.LEASE_NAME,
                        namespace="kube-system",
                    )
                    await client.get("v1", "ServiceAccount", "default", namespace="team")
                except kclient.NotFound:
                    return False
                return bool(lease["spec"]["holderIdentity"] == "me")

            await eventually(ready)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await ctx.informers.stop()
            await apiserver.stop()

    def test_kybern_server_runs_the_controller_manager(self) -> None:
        names = [name for name, _ in cluster.default_components({})]
        assert "controller-manager" in names


def deployment(name: str, replicas: int, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox:1"}]},
            },
            **spec,
        },
    }


async def sets_of(kube: kclient.Client, name: str) -> dict[str, int]:
    """ReplicaSet name -> spec.replicas, for the Deployment's sets."""
    items = (await kube.list("apps/v1", "ReplicaSet", namespace="default"))["items"]
    return {
        rs["metadata"]["name"]: rs["spec"]["replicas"]
        for rs in items
        if any(r["name"] == name for r in rs["metadata"].get("ownerReferences") or [])
    }


class TestDeployment:
    async def test_rollout_creates_a_hashed_replicaset_with_its_pods(
        self, kube: kclient.Client
    ) -> None:
        await kube.create(deployment("web", 2))

        async def rolled() -> dict[str, int]:
            sets = await sets_of(kube, "web")
            return sets if list(sets.values()) == [2] else {}

        [rs_name] = await eventually(rolled)
        rs = await kube.get("apps/v1", "ReplicaSet", rs_name, namespace="default")
        pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
        assert rs_name == f"web-{pod_hash}"
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"

        async def status() -> bool:
            got = await kube.get("apps/v1", "Deployment", "web", namespace="default")
            st = got.get("status") or {}
            return st.get("updatedReplicas") == 2 and st.get("observedGeneration") == 1

        await eventually(status)
        got = await kube.get("apps/v1", "Deployment", "web", namespace="default")
        conditions = {c["type"]: c for c in got["status"]["conditions"]}
        assert conditions["Progressing"]["status"] == "True"
        assert conditions["Available"]["status"] == "False"  # no kubelet: pods never ready

    async def test_a_template_change_rolls_to_a_new_replicaset(self, kube: kclient.Client) -> None:
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 3}}
        await kube.create(deployment("web", 3, strategy=strategy))

        async def first() -> dict[str, int]:
            sets = await sets_of(kube, "web")
            return sets if list(sets.values()) == [3] else {}

        [old_name] = await eventually(first)
        patch = {
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}}
        }
        await kube.patch("apps/v1", "Deployment", "web", patch, namespace="default")

        async def second() -> dict[str, int]:
            sets = await sets_of(kube, "web")
            return sets if len(sets) == 2 and sets[old_name] == 0 and 3 in sets.values() else {}

        sets = await eventually(second)
        [new_name] = [n for n in sets if n != old_name]
        new_rs = await kube.get("apps/v1", "ReplicaSet", new_name, namespace="default")
        assert new_rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"

    async def test_recreate_scales_old_to_zero_before_the_new_one(
        self, kube: kclient.Client
    ) -> None:
        await kube.create(deployment("web", 2, strategy={"type": "Recreate"}))

        async def first() -> dict[str, int]:
            sets = await sets_of(kube, "web")
            return sets if list(sets.values()) == [2] else {}

        [old_name] = await eventually(first)
        patch = {
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}}
        }
        await kube.patch("apps/v1", "Deployment", "web", patch, namespace="default")

        async def second() -> dict[str, int]:
            sets = await sets_of(kube, "web")
            return sets if len(sets) == 2 and sets[old_name] == 0 and 2 in sets.values() else {}

        await eventually(second)
