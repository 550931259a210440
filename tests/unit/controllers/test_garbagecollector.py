"""Garbage collector on the fake API: background, foreground, orphan, live owner checks."""

from __future__ import annotations

from typing import Any

import pytest

from kybern.controllers import garbagecollector
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)
DELETING = "2026-01-01T00:00:00Z"


def cm(
    name: str, uid: str, *, owners: tuple[str, ...] = (), block: bool = False, **meta: Any
) -> dict[str, Any]:
    refs = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": f"cm-{o}",
            "uid": o,
            "blockOwnerDeletion": block,
        }
        for o in owners
    ]
    metadata = {"name": name, "namespace": "ns", "uid": uid, **meta}
    if refs:
        metadata["ownerReferences"] = refs
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}


def make(*objs: dict[str, Any]) -> tuple[fakeclient.FakeCluster, garbagecollector.GarbageCollector]:
    cluster = fakeclient.FakeCluster()
    gc = garbagecollector.GarbageCollector(client=cluster.client, informers=cluster.informers)
    cluster.add(*objs)
    return cluster, gc


class TestBackground:
    async def test_a_dependent_whose_owner_is_gone_is_deleted_after_a_live_check(self) -> None:
        cluster, gc = make(cm("cm-dep", "dep", owners=("o1",)))
        await gc.reconcile("dep")
        verbs = [(a.verb, a.resource, a.name) for a in cluster.actions]
        assert verbs == [("get", "configmaps", "cm-o1"), ("delete", "configmaps", "cm-dep")]
        delete = cluster.actions[-1]
        assert delete.body["propagationPolicy"] == "Background"
        assert delete.body["preconditions"] == {"uid": "dep"}

    async def test_an_owner_missing_from_the_cache_but_live_keeps_its_dependent(self) -> None:
        cluster, gc = make(cm("cm-dep", "dep", owners=("o1",)))
        cluster.add(cm("cm-o1", "o1"), cache=False)
        await gc.reconcile("dep")
        assert cluster.writes() == []

    async def test_a_same_named_owner_with_another_uid_is_gone(self) -> None:
        cluster, gc = make(cm("cm-dep", "dep", owners=("o1",)))
        cluster.add(cm("cm-o1", "someone-else"), cache=False)
        await gc.reconcile("dep")
        assert [a.verb for a in cluster.writes()] == ["delete"]

    async def test_a_live_owner_left_means_only_the_dead_reference_goes(self) -> None:
        cluster, gc = make(cm("cm-o2", "o2"), cm("cm-dep", "dep", owners=("o1", "o2")))
        await gc.reconcile("dep")
        [patch] = cluster.writes()
        assert patch.verb == "patch"
        assert patch.body["metadata"]["ownerReferences"] == [{"$patch": "delete", "uid": "o1"}]

    async def test_deleting_an_owner_enqueues_its_dependents(self) -> None:
        _cluster, gc = make(cm("cm-o1", "o1"), cm("cm-dep", "dep", owners=("o1",)))
        assert list(gc.deleted_keys(cm("cm-o1", "o1"))) == ["dep"]
        assert list(gc.keys(cm("cm-o1", "o1"))) == []  # nothing to do for a plain object


class TestForeground:
    async def test_blocking_dependents_are_deleted_and_the_owner_waits(self) -> None:
        owner = cm("cm-o1", "o1", deletionTimestamp=DELETING, finalizers=["foregroundDeletion"])
        cluster, gc = make(owner, cm("cm-dep", "dep", owners=("o1",), block=True))
        await gc.reconcile("o1")
        writes = [(a.verb, a.name) for a in cluster.writes()]
        assert writes == [("delete", "cm-dep")]

    async def test_without_blocking_dependents_the_finalizer_is_removed(self) -> None:
        owner = cm("cm-o1", "o1", deletionTimestamp=DELETING, finalizers=["foregroundDeletion"])
        cluster, gc = make(owner)
        await gc.reconcile("o1")
        [update] = cluster.writes()
        assert (update.verb, update.name) == ("update", "cm-o1")
        assert update.body["metadata"]["finalizers"] == []


class TestOrphan:
    async def test_references_are_removed_then_the_finalizer(self) -> None:
        owner = cm("cm-o1", "o1", deletionTimestamp=DELETING, finalizers=["orphan"])
        cluster, gc = make(owner, cm("cm-dep", "dep", owners=("o1",)))
        await gc.reconcile("o1")
        patch, update = cluster.writes()
        assert (patch.verb, patch.name) == ("patch", "cm-dep")
        assert (update.verb, update.name) == ("update", "cm-o1")
        assert "orphan" not in update.body["metadata"]["finalizers"]
        dep = cluster.get("v1", "ConfigMap", "cm-dep", "ns")
        assert dep is not None
        assert not dep["metadata"].get("ownerReferences")


def test_every_stored_kind_is_monitored_once() -> None:
    resources = [info.storage_resource for info in garbagecollector.monitored_resources()]
    assert len(resources) == len(set(resources))
    assert {"pods", "namespaces", "replicasets.apps", "nodes"} <= set(resources)


class TestKeys:
    def test_a_dependent_of_a_live_cached_owner_costs_no_reconcile(self) -> None:
        _, gc = make(cm("cm-o1", "o1"), cm("cm-dep", "dep", owners=("o1",)))
        assert list(gc.keys(cm("cm-dep", "dep", owners=("o1",)))) == []

    def test_a_dependent_of_an_unknown_owner_is_checked(self) -> None:
        _, gc = make(cm("cm-dep", "dep", owners=("o1",)))
        assert list(gc.keys(cm("cm-dep", "dep", owners=("o1",)))) == ["dep"]

    def test_an_owner_entering_foreground_deletion_brings_its_dependents(self) -> None:
        owner = cm("cm-o1", "o1", deletionTimestamp=DELETING, finalizers=["foregroundDeletion"])
        _, gc = make(owner, cm("cm-dep", "dep", owners=("o1",)))
        assert sorted(gc.keys(owner)) == ["dep", "o1"]
