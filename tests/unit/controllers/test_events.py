"""The Event recorder: core/v1 Events, repeated ones counted, failures swallowed."""

from __future__ import annotations

from typing import Any

import pytest

from kybern import client as kclient
from kybern.controllers import events
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)

RS = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "metadata": {"name": "web", "namespace": "ns", "uid": "u"},
}


async def test_an_event_describes_the_object() -> None:
    cluster = fakeclient.FakeCluster()
    recorder = events.Recorder(cluster.client, "replicaset-controller")
    await recorder.event(RS, events.NORMAL, "SuccessfulCreate", "Created pod: web-1")
    [action] = cluster.writes()
    body = action.body
    assert (action.verb, action.namespace) == ("create", "ns")
    assert body["involvedObject"]["uid"] == "u"
    assert body["involvedObject"]["kind"] == "ReplicaSet"
    assert body["source"] == {"component": "replicaset-controller"}
    assert body["count"] == 1
    assert body["metadata"]["name"].startswith("web.")


async def test_a_repeated_event_increments_the_count() -> None:
    cluster = fakeclient.FakeCluster()
    recorder = events.Recorder(cluster.client, "c")
    for _ in range(3):
        await recorder.event(RS, events.WARNING, "FailedCreate", "quota")
    assert [a.verb for a in cluster.writes()] == ["create", "patch", "patch"]
    stored = [o for (res, _, _), o in cluster.objects.items() if res == "events"]
    assert len(stored) == 1
    assert stored[0]["count"] == 3


async def test_a_different_message_is_a_new_event() -> None:
    cluster = fakeclient.FakeCluster()
    recorder = events.Recorder(cluster.client, "c")
    await recorder.event(RS, events.NORMAL, "SuccessfulCreate", "Created pod: a")
    await recorder.event(RS, events.NORMAL, "SuccessfulCreate", "Created pod: b")
    assert [a.verb for a in cluster.writes()] == ["create", "create"]


async def test_failures_are_logged_not_raised() -> None:
    cluster = fakeclient.FakeCluster()

    def refuse(action: fakeclient.Action) -> Any:
        return fakeclient.status_response(403, "Forbidden", "namespace terminating")

    cluster.on("create", "events", refuse)
    await events.Recorder(cluster.client, "c").event(RS, events.NORMAL, "X", "y")


async def test_a_burst_about_one_object_is_limited_then_refilled() -> None:
    # client-go's EventSourceObjectSpamFilter: 25 at once per source + object, then one per
    # 5 minutes.
    cluster = fakeclient.FakeCluster()
    clock = kclient.FakeClock()
    recorder = events.Recorder(cluster.client, "c", clock=clock)
    for i in range(30):
        await recorder.event(RS, events.NORMAL, "SuccessfulCreate", f"Created pod: p{i}")
    assert len(cluster.writes()) == events.SPAM_BURST
    assert recorder.dropped == 5
    other = {**RS, "metadata": {**RS["metadata"], "name": "db", "uid": "v"}}
    await recorder.event(other, events.NORMAL, "SuccessfulCreate", "Created pod: q")
    assert len(cluster.writes()) == events.SPAM_BURST + 1  # another object: its own bucket
    clock.advance(300)
    await recorder.event(RS, events.NORMAL, "SuccessfulCreate", "Created pod: late")
    assert len(cluster.writes()) == events.SPAM_BURST + 2
