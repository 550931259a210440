"""The proxy component's bookkeeping (kybern.proxy.proxier): rule sets from the informer
caches, recomputing only changed services, node addresses, metrics and mode choice.
The sync loop against a real API server is in tests/integration/test_proxy_userspace.py."""

from __future__ import annotations

import copy

import pytest

from kybern.proxy import backend, proxier, rules
from kybern.testing import fakeclient
from tests.unit.proxy.objects import endpoint, endpoint_slice, service


def typed(obj, api_version, kind):
    return {"apiVersion": api_version, "kind": kind, **obj}


def svc(name, ip):
    return typed(service(name, ip), "v1", "Service")


def eps(name, *ips):
    return typed(
        endpoint_slice(name, [endpoint(ip) for ip in ips]), "discovery.k8s.io/v1", "EndpointSlice"
    )


class Recording:
    name = "recording"

    def __init__(self, fail: bool = False) -> None:
        self.synced: list[rules.RuleSet] = []
        self.fail = fail

    async def sync(self, ruleset):
        if self.fail:
            raise backend.ApplyError("boom")
        self.synced.append(ruleset)
        return "full" if len(self.synced) == 1 else "partial"

    async def cleanup(self): ...

    async def close(self): ...


def make(cluster, proxy_backend=None, **kw):
    kw.setdefault("node_ips", ("192.168.1.2",))
    return proxier.Proxier(cluster.informers, proxy_backend or Recording(), node_name="n1", **kw)


def fire_update(informer, old, new):
    informer.store.put(new)
    for handler in informer.handlers:
        handler.on_update(old, new)


def fire_delete(informer, obj):
    informer.store.remove(f"{obj['metadata']['namespace']}/{obj['metadata']['name']}")
    for handler in informer.handlers:
        handler.on_delete(obj)


@pytest.fixture
def cluster():
    c = fakeclient.FakeCluster()
    c.preload(
        svc("web", "10.43.0.10"),
        svc("db", "10.43.0.11"),
        eps("web", "10.1.0.5"),
        eps("db", "10.1.0.9"),
    )
    return c


def test_compute_matches_the_pure_function(cluster):
    p = make(cluster)
    objs = cluster.informers
    expected = rules.compute(
        objs.informer_for("v1", "Service").store.list(),
        objs.informer_for("discovery.k8s.io/v1", "EndpointSlice").store.list(),
        node_name="n1",
        node_ips=["192.168.1.2"],
    )
    assert p.compute() == expected


def test_only_changed_services_are_recomputed(cluster):
    p = make(cluster)
    first = p.ruleset = p.compute()
    old = p.slices.store.get("default/web-abc")
    new = copy.deepcopy(old)
    new["endpoints"][0]["addresses"] = ["10.1.0.6"]
    fire_update(p.slices, old, new)
    second = p.compute()
    assert second.services["default/db:http/tcp"] is first.services["default/db:http/tcp"]
    assert [e.ip for e in second.services["default/web:http/tcp"].endpoints] == ["10.1.0.6"]
    change = rules.diff(first, second)
    assert [n.service for _, n in change.changed] == ["web"]
    assert not change.added
    assert not change.removed


def test_deleted_service_leaves_the_rule_set(cluster):
    p = make(cluster)
    p.ruleset = p.compute()
    fire_delete(p.services, p.services.store.get("default/db"))
    assert set(p.compute().services) == {"default/web:http/tcp"}


def test_node_ips_from_the_node_object(cluster):
    cluster.preload(
        typed(
            {
                "metadata": {"name": "n1"},
                "status": {
                    "addresses": [
                        {"type": "Hostname", "address": "n1"},
                        {"type": "InternalIP", "address": "192.168.7.7"},
                        {"type": "InternalIP", "address": "fd00::7"},
                    ]
                },
            },
            "v1",
            "Node",
        )
    )
    p = make(cluster, node_ips=None)
    assert p.compute().node_ips == ("192.168.7.7",)


async def test_sync_once_applies_and_measures(cluster):
    rec = Recording()
    p = make(cluster, rec)
    assert await p.sync_once() == "full"
    assert rec.synced[0] == p.ruleset
    assert len(rec.synced[0]) == 2
    assert p.metrics.syncs == 1
    assert p.metrics.durations[0] >= 0


async def test_failed_sync_counts_and_raises(cluster):
    p = make(cluster, Recording(fail=True))
    with pytest.raises(backend.ApplyError):
        await p.sync_once()
    assert p.metrics.failures == 1


def test_modes():
    assert proxier.detect_mode() in proxier.MODES
    with pytest.raises(ValueError, match="unknown proxy mode"):
        proxier.make_backend("ipvs")
