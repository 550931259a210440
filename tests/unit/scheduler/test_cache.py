from __future__ import annotations

import pytest

from kybern.scheduler import cache, podinfo

from . import objects

pytestmark = pytest.mark.timeout(10)


def _cache() -> cache.Cache:
    c = cache.Cache(assumed_ttl=30)
    c.add_node(objects.node("n1", cpu="4"))
    c.add_node(objects.node("n2", cpu="4"))
    return c


def test_assume_counts_resources_at_once() -> None:
    c = _cache()
    p = podinfo.pod_info(objects.pod("p", cpu="1"))
    c.assume(p, "n1")
    assert c.nodes["n1"].requested["cpu"] == 1000
    assert c.is_assumed(p.uid)


def test_observed_binding_confirms_the_assumption() -> None:
    c = _cache()
    c.assume(podinfo.pod_info(objects.pod("p", cpu="1")), "n1")
    c.finish_binding("uid-default-p", now=0)
    c.add_pod(podinfo.pod_info(objects.pod("p", cpu="1", node_name="n1")))
    assert not c.is_assumed("uid-default-p")
    assert c.cleanup_expired(now=1000) == []
    assert c.nodes["n1"].requested["cpu"] == 1000
    assert len(c.nodes["n1"].pods) == 1


def test_binding_observed_on_another_node_moves_the_pod() -> None:
    c = _cache()
    c.assume(podinfo.pod_info(objects.pod("p", cpu="1")), "n1")
    c.add_pod(podinfo.pod_info(objects.pod("p", cpu="1", node_name="n2")))
    assert c.nodes["n1"].requested.get("cpu", 0) == 0
    assert c.nodes["n2"].requested["cpu"] == 1000


def test_assumption_expires_after_ttl_once_binding_finished() -> None:
    c = _cache()
    c.assume(podinfo.pod_info(objects.pod("p", cpu="1")), "n1")
    assert c.cleanup_expired(now=10_000) == []  # binding not finished: never expires
    c.finish_binding("uid-default-p", now=100)
    assert c.cleanup_expired(now=129) == []
    assert c.cleanup_expired(now=130) == ["uid-default-p"]
    assert c.nodes["n1"].requested.get("cpu", 0) == 0


def test_forget_after_failed_binding() -> None:
    c = _cache()
    c.assume(podinfo.pod_info(objects.pod("p", cpu="1")), "n1")
    c.forget("uid-default-p")
    assert not c.nodes["n1"].pods
    assert c.nodes["n1"].requested["cpu"] == 0


def test_generation_bumps_on_change_and_epoch_on_node_set_change() -> None:
    c = _cache()
    gen, epoch = c.nodes["n1"].generation, c.epoch
    c.add_pod(podinfo.pod_info(objects.pod("p", node_name="n1")))
    assert c.nodes["n1"].generation > gen
    assert c.epoch == epoch
    c.add_node(objects.node("n3"))
    assert c.epoch > epoch


def test_snapshot_interleaves_zones_and_hides_placeholder_nodes() -> None:
    c = cache.Cache()
    for name, zone in (("a1", "a"), ("a2", "a"), ("b1", "b"), ("b2", "b")):
        c.add_node(objects.node(name, labels={cache.ZONE_LABEL: zone}))
    c.add_pod(podinfo.pod_info(objects.pod("p", node_name="ghost")))
    assert [n.name for n in c.snapshot().nodes] == ["a1", "b1", "a2", "b2"]


def test_removed_node_with_pods_keeps_a_placeholder_until_they_go() -> None:
    c = _cache()
    c.add_pod(podinfo.pod_info(objects.pod("p", node_name="n1")))
    c.remove_node("n1")
    assert "n1" not in c.snapshot().by_name
    c.remove_pod("uid-default-p")
    assert "n1" not in c.nodes


def test_heartbeat_changes_nothing_the_scheduler_reads() -> None:
    c = _cache()
    gen, epoch = c.nodes["n1"].generation, c.epoch
    beat = objects.node("n1", cpu="4")
    beat["status"]["conditions"] = [{"type": "Ready", "status": "True", "lastHeartbeatTime": "now"}]
    assert c.add_node(beat) is False
    assert (c.nodes["n1"].generation, c.epoch) == (gen, epoch)
    assert c.add_node(objects.node("n1", cpu="8")) is True
    assert c.nodes["n1"].generation > gen
    assert c.nodes["n1"].allocatable["cpu"] == 8000
