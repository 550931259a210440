from __future__ import annotations

import pytest

from kybern.scheduler import adapter, scheduler

from . import objects

pytestmark = pytest.mark.timeout(10)


def test_binding_body() -> None:
    body = adapter.binding(objects.pod("p"), "n1")
    assert body == {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "p", "namespace": "default", "uid": "uid-default-p"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"},
    }


def test_informer_events_drive_the_scheduler() -> None:
    sched = scheduler.Scheduler()
    adapter.on_node_event(sched, adapter.ADDED, objects.node("n1"))
    adapter.on_pod_event(sched, adapter.ADDED, objects.pod("pending"))
    adapter.on_pod_event(sched, adapter.ADDED, objects.pod("bound", cpu="1", node_name="n1"))
    assert len(sched.queue) == 1
    assert sched.cache.nodes["n1"].requested["cpu"] == 1000
    adapter.on_pod_event(sched, adapter.DELETED, objects.pod("bound", node_name="n1"))
    assert sched.cache.nodes["n1"].requested["cpu"] == 0
    adapter.on_pdb_event(sched, adapter.ADDED, {"metadata": {"namespace": "d", "name": "x"}})
    assert "d/x" in sched.cache.pdbs
    adapter.on_namespace_event(
        sched, adapter.ADDED, {"metadata": {"name": "d", "labels": {"t": "1"}}}
    )
    assert sched.cache.namespace_labels["d"] == {"t": "1"}
    adapter.on_priority_class_event(sched, adapter.ADDED, {"metadata": {"name": "hi"}, "value": 5})
    assert sched.priority_classes == {"hi": 5}
    adapter.on_node_event(sched, adapter.DELETED, objects.node("n1"))
    assert "n1" not in sched.cache.snapshot().by_name
