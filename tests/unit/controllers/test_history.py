"""ControllerRevision history (shared by StatefulSet and DaemonSet) on the fake API."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kybern.controllers import history
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)
Obj = dict[str, Any]


def owner(image: str = "nginx:1", **status: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "uid": "ds-uid",
            "annotations": {"kubernetes.io/change-cause": "v1"},
        },
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
        },
        "status": status,
    }


def stored(of: Obj, number: int, *, collision: int = 0, uid: str = "ds-uid") -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": history.revision_name(of, collision),
            "namespace": "ns",
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "name": "web",
                    "uid": uid,
                    "controller": True,
                }
            ],
        },
        "data": history.revision_data(of),
        "revision": number,
    }


def writes(cluster: fakeclient.FakeCluster, verb: str) -> list[fakeclient.Action]:
    return [a for a in cluster.writes() if a.resource == "controllerrevisions" and a.verb == verb]


def test_data_round_trips_the_template_and_names_carry_its_hash() -> None:
    ds = owner()
    data = history.revision_data(ds)
    assert data["spec"]["template"]["$patch"] == "replace"
    assert history.template_of({"data": data}) == ds["spec"]["template"]
    name = history.revision_name(ds, 0)
    assert name.startswith("web-")
    assert history.hash_of(ds, {"metadata": {"name": name}}) == name[len("web-") :]
    assert history.revision_name(ds, 1) != name
    assert history.revision_name(owner("nginx:2"), 0) != name


async def test_creates_the_first_revision_with_labels_annotations_and_owner() -> None:
    cluster = fakeclient.FakeCluster()
    rev, collision = await history.ensure_revision(cluster.client, owner(), [])
    assert collision == 0
    assert rev["revision"] == 1
    meta = rev["metadata"]
    assert meta["name"] == history.revision_name(owner(), 0)
    assert meta["labels"] == {"app": "web"}
    assert meta["annotations"] == {"kubernetes.io/change-cause": "v1"}
    assert meta["ownerReferences"][0]["uid"] == "ds-uid"


async def test_an_existing_match_is_reused_and_a_rolled_back_one_renumbered() -> None:
    cluster = fakeclient.FakeCluster()
    first, second = stored(owner("nginx:1"), 1), stored(owner("nginx:2"), 2)
    cluster.add(first, second)
    revisions = [
        cluster.get("apps/v1", "ControllerRevision", r["metadata"]["name"], "ns")
        for r in (first, second)
    ]
    current = [r for r in revisions if r is not None]
    rev, _ = await history.ensure_revision(cluster.client, owner("nginx:2"), current)
    assert rev["revision"] == 2
    assert writes(cluster, "update") == []
    rev, _ = await history.ensure_revision(cluster.client, owner("nginx:1"), current)
    assert rev["metadata"]["name"] == first["metadata"]["name"]
    assert rev["revision"] == 3  # undo: the old template becomes the newest revision


async def test_a_same_named_revision_with_other_data_is_a_collision() -> None:
    cluster = fakeclient.FakeCluster()
    clash = stored(owner(), 1)
    clash["data"] = {"spec": {"template": {"$patch": "replace", "metadata": {}}}}
    cluster.add(clash)
    rev, collision = await history.ensure_revision(cluster.client, owner(), [])
    assert collision == 1
    assert rev["metadata"]["name"] == history.revision_name(owner(), 1)
    ds = owner(collisionCount=1)
    assert (await history.ensure_revision(cluster.client, ds, [rev]))[1] == 1


async def test_truncate_keeps_the_limit_and_every_live_revision() -> None:
    cluster = fakeclient.FakeCluster()
    revisions = [stored(owner(f"nginx:{i}"), i) for i in range(1, 6)]
    cluster.add(*revisions)
    ds = copy.deepcopy(owner())
    ds["spec"]["revisionHistoryLimit"] = 2
    live = {revisions[0]["metadata"]["name"], revisions[4]["metadata"]["name"]}
    await history.truncate(cluster.client, ds, revisions, live)
    # not live: 2, 3, 4; the limit keeps the newest two of them
    assert [a.name for a in writes(cluster, "delete")] == [revisions[1]["metadata"]["name"]]


def test_owned_keeps_only_the_revisions_the_owner_controls() -> None:
    cluster = fakeclient.FakeCluster()
    mine, other = stored(owner(), 1), stored(owner("x"), 2, uid="other")
    other["metadata"]["ownerReferences"].append(
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "web", "uid": "ds-uid"}
    )
    cluster.add(mine, other)
    store = cluster.informers.informer_for("apps/v1", "ControllerRevision").store
    assert [r["metadata"]["name"] for r in history.owned(store, owner())] == [
        mine["metadata"]["name"]
    ]
