"""Namespace lifecycle on the fake API: content deleted, conditions, finalize."""

from __future__ import annotations

from typing import Any

import pytest

from kybern.controllers import namespaces, runtime
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)


def namespace(name: str, *, deleting: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": meta,
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Terminating" if deleting else "Active"},
    }


def configmap(name: str, ns: str, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, **meta},
    }


def make(*objs: dict[str, Any]) -> tuple[fakeclient.FakeCluster, namespaces.NamespaceController]:
    cluster = fakeclient.FakeCluster()
    cluster.add(*objs)
    return cluster, namespaces.NamespaceController(
        client=cluster.client, informers=cluster.informers
    )


def conditions(cluster: fakeclient.FakeCluster, name: str) -> dict[str, dict[str, Any]]:
    ns = cluster.get("v1", "Namespace", name)
    assert ns is not None
    return {c["type"]: c for c in ns["status"]["conditions"]}


class TestDeletion:
    async def test_content_is_deleted_then_the_namespace_finalized(self) -> None:
        cluster, controller = make(namespace("x"), configmap("a", "x"), configmap("b", "x"))
        assert await controller.reconcile("x") == runtime.Result()
        deleted = [a for a in cluster.writes() if a.verb == "deletecollection"]
        assert [(a.resource, a.namespace) for a in deleted] == [("configmaps", "x")]
        finalize = [a for a in cluster.writes() if a.subresource == "finalize"]
        assert len(finalize) == 1
        assert finalize[0].body["spec"]["finalizers"] == []
        assert cluster.get("v1", "Namespace", "x") is None  # the fake removes it like the server

    async def test_conditions_report_success(self) -> None:
        cluster, controller = make(namespace("x"), configmap("a", "x"))
        found = namespaces.Deletion()
        await controller.update_conditions(namespace("x"), namespaces.conditions_for(found, "t"))
        got = conditions(cluster, "x")
        assert got["NamespaceContentRemaining"]["status"] == "False"
        assert got["NamespaceContentRemaining"]["reason"] == "ContentRemoved"
        assert got["NamespaceDeletionDiscoveryFailure"]["reason"] == "ResourcesDiscovered"

    async def test_remaining_content_with_finalizers_waits_and_says_why(self) -> None:
        held = configmap("held", "x", finalizers=["example.com/hold"])
        cluster, controller = make(namespace("x"), held)
        result = await controller.reconcile("x")
        assert result.requeue_after is not None
        assert not [a for a in cluster.writes() if a.subresource == "finalize"]
        got = conditions(cluster, "x")
        assert got["NamespaceContentRemaining"]["status"] == "True"
        assert got["NamespaceContentRemaining"]["message"] == (
            "Some resources are remaining: configmaps. has 1 resource instances"
        )
        assert got["NamespaceFinalizersRemaining"]["message"] == (
            "Some content in the namespace has finalizers remaining: "
            "example.com/hold in 1 resource instances"
        )

    async def test_a_failing_delete_sets_content_failure_and_retries(self) -> None:
        cluster, controller = make(namespace("x"), configmap("a", "x"))

        def refuse(action: fakeclient.Action) -> Any:
            return fakeclient.status_response(500, "InternalError", "disk on fire")

        cluster.on("deletecollection", "configmaps", refuse)
        with pytest.raises(RuntimeError):
            await controller.reconcile("x")
        got = conditions(cluster, "x")
        assert got["NamespaceDeletionContentFailure"]["status"] == "True"
        assert got["NamespaceDeletionContentFailure"]["reason"] == "ContentDeletionFailed"

    async def test_active_namespaces_are_left_alone(self) -> None:
        cluster, controller = make(namespace("x", deleting=False), configmap("a", "x"))
        await controller.reconcile("x")
        assert cluster.actions == []

    async def test_a_vanished_namespace_is_a_no_op(self) -> None:
        cluster, controller = make()
        assert await controller.reconcile("gone") == runtime.Result()
        assert cluster.actions == []


def test_every_namespaced_kind_once() -> None:
    plurals = [info.storage_resource for info in namespaces.namespaced_resources()]
    assert len(plurals) == len(set(plurals))
    assert {
        "pods",
        "configmaps",
        "events",
        "replicasets.apps",
        "leases.coordination.k8s.io",
    } <= set(plurals)
    assert "namespaces" not in plurals
