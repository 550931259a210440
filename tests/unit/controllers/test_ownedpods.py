"""The ReplicaSet's per-owner tally: a reconcile claims and counts only the pods whose events
marked them, and rescans the set when what the counts depend on changes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kybern import client as kclient
from kybern.controllers import ownedpods, replicaset
from kybern.testing import fakeclient
from tests.unit.controllers.test_replicaset import KEY, pod, rs

pytestmark = pytest.mark.timeout(10)
Obj = dict[str, Any]


class Cluster:
    """The fake API with pod events delivered as the runner delivers them (old and new)."""

    def __init__(self, owner: Obj, *objs: Obj) -> None:
        self.fake = fakeclient.FakeCluster()
        self.fake.add(owner, *objs)
        self.controller = replicaset.ReplicaSetController(
            client=self.fake.client, informers=self.fake.informers
        )
        self.pods = self.fake.informers.informer_for("v1", "Pod").store

    def event(self, new: Obj | None, *, name: str = "") -> None:
        """A pod added, changed (new state) or deleted (``name``) in the cache."""
        old = self.pods.get(f"ns/{name or (new or {})['metadata']['name']}")
        if new is None:
            assert old is not None
            self.pods.remove(kclient.key_of(old))
        else:
            self.fake.add(new, cache=False)
            self.pods.put(new)
        for state in (old, new):
            if state is not None:
                list(self.controller.pod_keys(state))

    async def reconcile(self) -> None:
        await self.controller.reconcile(KEY)
        owner = self.fake.get("apps/v1", "ReplicaSet", "web", "ns")
        if owner is not None:
            self.fake.preload(owner)  # the status write reached the cache

    def status(self) -> Obj:
        updates = [a for a in self.fake.writes() if a.subresource == "status"]
        status: Obj = updates[-1].body["status"]
        return status

    def tally(self) -> ownedpods.Tally:
        return self.controller.owned.tallies[KEY]


def running(name: str, **kw: Any) -> Obj:
    return pod(name, node="n", phase="Running", ready="2026-01-01T00:00:00Z", **kw)


async def test_a_pod_event_updates_the_counts_without_a_rescan() -> None:
    c = Cluster(rs(2), pod("a", node="n"), pod("b", node="n"))
    await c.reconcile()
    assert c.status()["readyReplicas"] == 0
    scanned_at = c.tally().scanned_at
    c.event(running("a"))
    assert c.tally().dirty == {"ns/a"}
    await c.reconcile()
    assert c.status()["readyReplicas"] == 1
    assert c.tally().dirty == set()
    assert c.tally().scanned_at == scanned_at  # no full scan


async def test_only_marked_pods_are_looked_at_between_full_scans() -> None:
    c = Cluster(rs(1), pod("a", node="n"))
    await c.reconcile()
    c.status()
    c.fake.clear()
    c.pods.put(running("a"))  # changed in the cache with no event: not seen
    await c.reconcile()
    assert c.fake.writes() == []
    c.event(running("a"))
    await c.reconcile()
    assert c.status()["readyReplicas"] == 1


async def test_a_deleted_pod_is_replaced() -> None:
    c = Cluster(rs(2), running("a"), running("b"))
    await c.reconcile()
    c.fake.clear()
    c.event(None, name="a")
    await c.reconcile()
    assert [a.verb for a in c.fake.writes() if a.resource == "pods"] == ["create"]
    assert c.status()["replicas"] == 1


async def test_an_orphan_event_is_adopted_and_a_relabelled_pod_released() -> None:
    c = Cluster(rs(2), running("a"), running("b"))
    await c.reconcile()
    c.fake.clear()
    c.event(running("stray", owned=False))
    c.event(running("b", labels={"app": "other"}))
    await c.reconcile()
    patches = {a.name: a.body for a in c.fake.writes() if a.verb == "patch"}
    assert patches["stray"]["metadata"]["ownerReferences"][0]["uid"] == "rs-uid"
    assert patches["b"]["metadata"]["ownerReferences"] == [{"$patch": "delete", "uid": "rs-uid"}]
    assert set(c.tally().flags) == {"ns/a", "ns/stray"}


async def test_a_pod_taken_away_is_no_longer_counted() -> None:
    c = Cluster(rs(2), running("a"), running("b"))
    await c.reconcile()
    theirs = running("b", owned=False, labels={"app": "other"})
    c.event(theirs)  # the old state (ours) marks it for us
    await c.reconcile()
    assert "ns/b" not in c.tally().flags


async def test_a_template_change_rescans_the_whole_set() -> None:
    owner = rs(1)
    c = Cluster(owner, pod("a", node="n"))
    await c.reconcile()
    c.pods.put(running("a"))  # no event
    changed = copy.deepcopy(owner)
    changed["spec"]["template"]["metadata"]["labels"]["tier"] = "back"
    c.fake.add(changed)
    await c.reconcile()
    status = c.status()
    assert status["readyReplicas"] == 1
    assert status["fullyLabeledReplicas"] == 0


async def test_a_full_scan_every_few_minutes() -> None:
    c = Cluster(rs(1), pod("a", node="n"))
    await c.reconcile()
    c.pods.put(running("a"))  # no event
    clock = c.controller.clock
    assert isinstance(clock, kclient.FakeClock)
    clock.advance(ownedpods.FULL_SCAN_EVERY)
    await c.reconcile()
    assert c.status()["readyReplicas"] == 1


async def test_a_gone_set_drops_its_tally() -> None:
    c = Cluster(rs(1), running("a"))
    await c.reconcile()
    c.controller.sets.remove(KEY)
    await c.reconcile()
    assert KEY not in c.controller.owned.tallies
