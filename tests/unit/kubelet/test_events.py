"""Kubelet events: written in the background, repeats counted on the first event."""

from __future__ import annotations

import asyncio

from kybern.client import clock as clock_
from kybern.kubelet import events, nodestatus
from kybern.testing import fakeclient

POD = {"metadata": {"name": "web", "namespace": "default", "uid": "u1"}}


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_event_then_count() -> None:
    cluster = fakeclient.FakeCluster()
    recorder = events.Recorder(cluster.client, "node-1")
    recorder.record(POD, "Warning", "BackOff", "Back-off restarting failed container")
    await settle()
    (created,) = [a for a in cluster.actions if a.matches("create", "events")]
    body = created.body
    assert body["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "web",
        "namespace": "default",
        "uid": "u1",
    }
    assert body["source"] == {"component": "kubelet", "host": "node-1"}
    assert (body["type"], body["reason"], body["count"]) == ("Warning", "BackOff", 1)
    recorder.record(POD, "Warning", "BackOff", "Back-off restarting failed container")
    await settle()
    (patched,) = [a for a in cluster.actions if a.matches("patch", "events")]
    assert patched.name == body["metadata"]["name"]
    assert patched.body["count"] == 2
    await recorder.close()


async def test_events_are_written_one_at_a_time_in_order_with_their_record_time() -> None:
    cluster = fakeclient.FakeCluster()
    clock = clock_.FakeClock()
    recorder = events.Recorder(cluster.client, "node-1", clock=clock)
    stamp = nodestatus.rfc3339(clock.now())
    recorder.record(POD, "Normal", "Created", "Created container app")
    clock.advance(5)  # written later: still stamped when it happened
    for reason in ("Started", "Killing"):
        recorder.record(POD, "Normal", reason, f"{reason} app")
    await settle()
    created = [a.body for a in cluster.actions if a.matches("create", "events")]
    assert [e["reason"] for e in created] == ["Created", "Started", "Killing"]
    assert created[0]["firstTimestamp"] == stamp
    assert created[1]["firstTimestamp"] != stamp
    await recorder.close()


async def test_a_full_queue_drops_new_events() -> None:
    cluster = fakeclient.FakeCluster()
    recorder = events.Recorder(cluster.client, "node-1")
    for i in range(events.MAX_QUEUED + 5):
        recorder.record(POD, "Normal", "Created", f"Created container c{i}")
    assert recorder.pending() == events.MAX_QUEUED
    await recorder.close()
