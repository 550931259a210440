from __future__ import annotations

import pytest

from kybern.scheduler import podinfo, queue

from . import objects

pytestmark = pytest.mark.timeout(10)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pod(name: str, priority: int = 0) -> podinfo.PodInfo:
    return podinfo.pod_info(objects.pod(name, priority=priority))


def _q() -> tuple[queue.SchedulingQueue, FakeClock]:
    clock = FakeClock()
    return queue.SchedulingQueue(clock=clock), clock


def test_priority_then_fifo() -> None:
    q, clock = _q()
    for name, prio in (("low", 0), ("high", 10), ("low2", 0)):
        q.add(_pod(name, prio))
        clock.now += 1
    names = []
    while (entry := q.pop()) is not None:
        names.append(entry.pod.name)
    assert names == ["high", "low", "low2"]


def test_backoff_doubles_from_one_to_ten_seconds() -> None:
    q, _ = _q()
    assert [q.backoff_duration(a) for a in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_unschedulable_pod_waits_for_a_relevant_event() -> None:
    q, clock = _q()
    q.add(_pod("p"))
    entry = q.pop()
    assert entry is not None
    q.requeue_unschedulable(entry, {"NodeResourcesFit"}, cycle=q.scheduling_cycle)
    clock.now += 60
    assert q.pop() is None
    assert q.move_on_event(queue.POD_ADD) == 0  # irrelevant to NodeResourcesFit
    assert q.move_on_event(queue.POD_DELETE) == 1
    popped = q.pop()
    assert popped is not None
    assert popped.pod.name == "p"


def test_moved_pod_still_in_backoff_waits_for_it() -> None:
    q, clock = _q()
    q.add(_pod("p"))
    entry = q.pop()
    assert entry is not None
    q.requeue_unschedulable(entry, {"NodeResourcesFit"}, cycle=q.scheduling_cycle)
    q.move_on_event(queue.NODE_ADD)
    assert q.pop() is None  # backoff 1 s not over
    clock.now += 1
    assert q.pop() is not None


def test_event_during_the_cycle_sends_the_pod_to_backoff_not_unschedulable() -> None:
    q, clock = _q()
    q.add(_pod("p"))
    entry = q.pop()
    assert entry is not None
    cycle = q.scheduling_cycle
    q.move_on_event(queue.NODE_ADD)  # arrives while the pod is being scheduled
    q.requeue_unschedulable(entry, {"NodeResourcesFit"}, cycle=cycle)
    assert not q.unschedulable
    clock.now += 1
    assert q.pop() is not None


def test_unschedulable_pods_flushed_after_five_minutes() -> None:
    q, clock = _q()
    q.add(_pod("p"))
    entry = q.pop()
    assert entry is not None
    q.requeue_unschedulable(entry, {"NodeAffinity"}, cycle=q.scheduling_cycle)
    clock.now += 299
    assert q.pop() is None
    clock.now += 1
    assert q.pop() is not None


def test_attempts_grow_the_backoff() -> None:
    q, clock = _q()
    q.add(_pod("p"))
    for expected in (1.0, 2.0, 4.0):
        entry = q.pop()
        assert entry is not None
        q.requeue_error(entry)
        assert entry.backoff_until - clock.now == expected
        clock.now += expected


def test_delete_removes_from_every_queue() -> None:
    q, _ = _q()
    q.add(_pod("p"))
    q.delete("uid-default-p")
    assert q.pop() is None
    assert len(q) == 0


def test_nominated_pods_indexed_by_node() -> None:
    q, _ = _q()
    p = _pod("p", 10)
    q.add(p)
    entry = q.pop()
    assert entry is not None
    q.nominate(entry.pod, "n1")
    q.requeue_unschedulable(entry, {"NodeResourcesFit"}, cycle=q.scheduling_cycle)
    assert [x.name for x in q.nominated_on("n1")] == ["p"]
    q.delete(p.uid)
    assert list(q.nominated_on("n1")) == []


def test_status_only_update_leaves_an_unschedulable_pod_where_it_is() -> None:
    q, clock = _q()
    obj = objects.pod("p")
    q.add(podinfo.pod_info(obj))
    entry = q.pop()
    assert entry is not None
    q.requeue_unschedulable(entry, {"NodeResourcesFit"}, cycle=q.scheduling_cycle)
    echoed = {**obj, "status": {"conditions": [{"type": "PodScheduled", "status": "False"}]}}
    echoed["metadata"] = {**obj["metadata"], "resourceVersion": "42"}
    q.add(podinfo.pod_info(echoed))
    clock.now += 60
    assert q.pop() is None
    changed = {**echoed, "metadata": {**echoed["metadata"], "labels": {"new": "label"}}}
    q.add(podinfo.pod_info(changed))
    assert q.pop() is not None


def test_pod_deleted_while_in_flight_is_not_requeued() -> None:
    q, _ = _q()
    q.add(_pod("p"))
    entry = q.pop()
    assert entry is not None
    q.delete("uid-default-p")
    q.requeue_unschedulable(entry, {"NodeResourcesFit"}, cycle=q.scheduling_cycle)
    assert len(q) == 0
