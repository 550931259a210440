"""Node IPAM: one podCIDR per node out of the cluster CIDR, never twice."""

from __future__ import annotations

from typing import Any

import pytest

from kybern import client as kclient
from kybern.controllers import manager, nodeipam
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)


def node(name: str, cidr: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"podCIDR": cidr, "podCIDRs": [cidr]} if cidr else {}
    meta = {"name": name, "uid": f"uid-{name}"}
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta, "spec": spec}


def make(
    *objs: dict[str, Any], **options: object
) -> tuple[fakeclient.FakeCluster, nodeipam.NodeIPAMController]:
    cluster = fakeclient.FakeCluster()
    cluster.add(*objs)
    controller = nodeipam.NodeIPAMController(
        client=cluster.client, informers=cluster.informers, options=options
    )
    return cluster, controller


def patches(cluster: fakeclient.FakeCluster) -> list[tuple[str, Any]]:
    return [(a.name, a.body) for a in cluster.writes() if a.verb == "patch"]


class TestCIDRSet:
    def test_hands_out_subnets_in_order(self) -> None:
        cidrs = nodeipam.CIDRSet("10.42.0.0/16", 24)
        assert [str(cidrs.allocate_next()) for _ in range(3)] == [
            "10.42.0.0/24",
            "10.42.1.0/24",
            "10.42.2.0/24",
        ]

    def test_a_released_cidr_is_not_reused_at_once(self) -> None:
        cidrs = nodeipam.CIDRSet("10.42.0.0/23", 24)
        first = cidrs.allocate_next()
        cidrs.release(str(first))
        assert str(cidrs.allocate_next()) == "10.42.1.0/24"
        assert cidrs.allocate_next() == first  # wraps round to the free one

    def test_exhaustion(self) -> None:
        cidrs = nodeipam.CIDRSet("10.42.0.0/23", 24)
        cidrs.allocate_next()
        cidrs.occupy("10.42.1.0/24")
        with pytest.raises(nodeipam.CIDRSetFull, match=r"no free /24 left in 10\.42\.0\.0/23"):
            cidrs.allocate_next()

    @pytest.mark.parametrize("cidr", ["10.244.0.0/24", "10.42.0.0/25", "fd00::/64", "junk"])
    def test_foreign_cidrs_are_not_occupied(self, cidr: str) -> None:
        assert nodeipam.CIDRSet("10.42.0.0/16", 24).occupy(cidr) is False

    def test_mask_must_fit_the_cluster_cidr(self) -> None:
        with pytest.raises(ValueError, match="/8 must be between"):
            nodeipam.CIDRSet("10.42.0.0/16", 8)


async def test_a_new_node_gets_the_first_free_cidr_with_a_cas_patch() -> None:
    cluster, controller = make(node("a", "10.42.0.0/24"), node("b"))
    cached = cluster.informers.informer_for("v1", "Node").store.get("b")
    assert cached is not None
    rv = cached["metadata"]["resourceVersion"]
    await controller.reconcile("b")
    assert patches(cluster) == [
        (
            "b",
            {
                "metadata": {"resourceVersion": rv},
                "spec": {"podCIDR": "10.42.1.0/24", "podCIDRs": ["10.42.1.0/24"]},
            },
        )
    ]


async def test_nodes_with_a_cidr_are_left_alone() -> None:
    cluster, controller = make(node("sim", "10.244.0.0/24"), node("a", "10.42.5.0/24"))
    await controller.reconcile("sim")
    await controller.reconcile("a")
    assert cluster.writes() == []


async def test_cidrs_in_use_are_never_handed_out_again() -> None:
    held = [node(f"n{i}", f"10.42.{i}.0/24") for i in range(3)]
    cluster, controller = make(*held, node("new"), cluster_cidr="10.42.0.0/22")
    await controller.reconcile("new")  # the cache is read before the first allocation
    [(_, body)] = patches(cluster)
    assert body["spec"]["podCIDR"] == "10.42.3.0/24"


async def test_exhaustion_records_cidr_not_available_and_retries_later() -> None:
    cluster, controller = make(node("a", "10.42.0.0/24"), node("b"), cluster_cidr="10.42.0.0/24")
    result = await controller.reconcile("b")
    assert result.requeue_after == nodeipam.EXHAUSTED_RETRY
    [event] = [a.body for a in cluster.writes() if a.resource == "events"]
    assert event["reason"] == "CIDRNotAvailable"
    assert event["type"] == "Normal"
    assert event["message"] == "Node b status is now: CIDRNotAvailable"
    assert event["involvedObject"]["kind"] == "Node"
    assert patches(cluster) == []


async def test_a_deleted_node_releases_its_cidr() -> None:
    cluster, controller = make(node("a", "10.42.0.0/24"), node("b"), cluster_cidr="10.42.0.0/24")
    await controller.reconcile("b")  # full
    cluster.informers.informer_for("v1", "Node").store.remove("a")
    await controller.reconcile("a")  # the delete event
    await controller.reconcile("b")
    [(_, body)] = patches(cluster)
    assert body["spec"]["podCIDR"] == "10.42.0.0/24"


async def test_a_conflict_frees_the_cidr_and_retries() -> None:
    cluster, controller = make(node("b"))
    cluster.on("patch", "nodes", lambda _: fakeclient.status_response(409, "Conflict", "stale"))
    with pytest.raises(kclient.Conflict):
        await controller.reconcile("b")
    assert controller.cidrs.used == set()
    assert [a for a in cluster.writes() if a.resource == "events"] == []


def test_the_manager_knows_the_controller_and_passes_options() -> None:
    assert manager.CONTROLLERS["node-ipam-controller"] is nodeipam.NodeIPAMController
    cluster = fakeclient.FakeCluster()
    [runner] = manager.build(
        ["node-ipam-controller"], cluster.client, cluster.informers, {"cluster_cidr": "10.9.0.0/16"}
    )
    assert isinstance(runner.controller, nodeipam.NodeIPAMController)
    assert str(runner.controller.cidrs.cluster) == "10.9.0.0/16"
