"""Kubelet events: written in the background, repeats counted on the first event."""

from __future__ import annotations

import asyncio

from kybern.kubelet import events
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
