"""Informer: list then watch, resume, relist on 410 with tombstones, handlers; the factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from kybern.client import clock, errors, informer, resources, store
from kybern.client.transport import WatchEvent

pytestmark = pytest.mark.timeout(10)
GONE = errors.from_status(410, {"kind": "Status", "code": 410, "reason": "Expired"})


def cm(name: str, rv: int, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv)},
        "data": data,
    }


def listing(rv: int, *items: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": str(rv)}, "items": list(items)}


class ScriptedClient:
    """Answers list and watch calls from scripts; a watch with no script left blocks."""

    def __init__(self) -> None:
        self.lists: list[dict[str, Any]] = []
        self.watches: list[list[tuple[str, dict[str, Any]] | BaseException]] = []
        self.list_calls: list[dict[str, Any]] = []
        self.watch_calls: list[dict[str, Any]] = []
        self.idle = asyncio.Event()

    async def list(self, api_version: str, kind: str, **options: Any) -> dict[str, Any]:
        self.list_calls.append(options)
        return self.lists.pop(0)

    async def watch(self, api_version: str, kind: str, **options: Any) -> AsyncIterator[WatchEvent]:
        self.watch_calls.append(options)
        if not self.watches:
            self.idle.set()
            await asyncio.Event().wait()
        for step in self.watches.pop(0):
            if isinstance(step, BaseException):
                raise step
            yield WatchEvent(*step)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def on_add(self, obj: dict[str, Any]) -> None:
        self.events.append(("add", obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))

    def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.events.append(("update", new["metadata"]["name"], new["metadata"]["resourceVersion"]))

    def on_delete(self, obj: dict[str, Any] | informer.DeletedFinalStateUnknown) -> None:
        kind = "tombstone" if isinstance(obj, informer.DeletedFinalStateUnknown) else "delete"
        o = informer.object_of(obj)
        self.events.append((kind, o["metadata"]["name"], o["metadata"]["resourceVersion"]))


async def run_until_idle(client: ScriptedClient, inf: informer.Informer) -> None:
    inf.start()
    await asyncio.wait_for(client.idle.wait(), 5)


def make(client: ScriptedClient, fake: clock.FakeClock | None = None) -> informer.Informer:
    return informer.Informer(
        cast(resources.Client, client),
        "v1",
        "ConfigMap",
        namespace="ns",
        clock=fake or clock.FakeClock(),
    )


async def test_list_then_watch_feeds_store_and_handlers() -> None:
    client = ScriptedClient()
    client.lists = [listing(10, cm("a", 5), cm("b", 6))]
    client.watches = [
        [
            ("MODIFIED", cm("a", 11, k="v")),
            ("ADDED", cm("c", 12)),
            ("DELETED", cm("b", 13)),
            ("BOOKMARK", {"metadata": {"resourceVersion": "20"}}),
        ]
    ]
    inf = make(client)
    rec = Recorder()
    inf.add_handler(rec)
    await run_until_idle(client, inf)
    assert inf.has_synced
    assert rec.events == [
        ("add", "a", "5"),
        ("add", "b", "6"),
        ("update", "a", "11"),
        ("add", "c", "12"),
        ("delete", "b", "13"),
    ]
    assert client.watch_calls[0]["resource_version"] == "10"
    assert client.watch_calls[0]["allow_bookmarks"] is True
    assert sorted(inf.store.list_keys()) == ["ns/a", "ns/c"]
    assert inf.store.get("ns/a") == cm("a", 11, k="v")
    # The watch ended cleanly: it resumes from the bookmark without listing again.
    assert client.watch_calls[1]["resource_version"] == "20"
    assert inf.lists == 1
    await inf.stop()


async def test_gone_relists_and_reports_missed_deletes_as_tombstones() -> None:
    client = ScriptedClient()
    client.lists = [
        listing(10, cm("a", 5), cm("b", 6), cm("c", 7)),
        listing(50, cm("a", 5), cm("c", 40), cm("d", 45)),
    ]
    client.watches = [[GONE]]
    inf = make(client)
    rec = Recorder()
    inf.add_handler(rec)
    await run_until_idle(client, inf)
    assert inf.lists == 2
    assert rec.events[3:] == [("tombstone", "b", "6"), ("update", "c", "40"), ("add", "d", "45")]
    assert client.watch_calls[-1]["resource_version"] == "50"
    assert sorted(inf.store.list_keys()) == ["ns/a", "ns/c", "ns/d"]
    await inf.stop()


async def test_a_failed_watch_backs_off_on_the_clock_then_resumes() -> None:
    fake = clock.FakeClock()
    client = ScriptedClient()
    client.lists = [listing(10, cm("a", 5))]
    client.watches = [
        [("ADDED", cm("b", 11)), errors.TransportError("reset")],
        [("ADDED", cm("c", 12))],
    ]
    inf = make(client, fake)
    inf.start()
    for _ in range(50):
        await asyncio.sleep(0)
    assert len(client.watch_calls) == 1  # sleeping on the fake clock
    await fake.run_for(2)
    await asyncio.wait_for(client.idle.wait(), 5)
    assert client.watch_calls[1]["resource_version"] == "11"
    assert inf.lists == 1
    assert sorted(inf.store.list_keys()) == ["ns/a", "ns/b", "ns/c"]
    await inf.stop()


async def test_late_handlers_get_the_cache_and_failing_handlers_are_contained() -> None:
    client = ScriptedClient()
    client.lists = [listing(10, cm("a", 5))]
    client.watches = [[("ADDED", cm("b", 11))]]
    inf = make(client)

    def broken(obj: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    inf.add_handler(informer.FuncHandler(add=broken))
    await run_until_idle(client, inf)
    late = Recorder()
    inf.add_handler(late)
    assert sorted(late.events) == [("add", "a", "5"), ("add", "b", "11")]
    assert len(inf.store) == 2
    await inf.stop()


async def test_indexes_follow_watch_events() -> None:
    client = ScriptedClient()
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns", "resourceVersion": "5"},
        "spec": {},
    }
    bound = {
        **pod,
        "metadata": {**pod["metadata"], "resourceVersion": "6"},
        "spec": {"nodeName": "n1"},
    }
    client.lists = [listing(5, pod)]
    client.watches = [[("MODIFIED", bound)]]
    inf = informer.Informer(cast(resources.Client, client), "v1", "Pod", clock=clock.FakeClock())
    await run_until_idle(client, inf)
    assert [store.key_of(o) for o in inf.store.by_index(store.NODE, "n1")] == ["ns/p"]
    await inf.stop()


async def test_factory_shares_one_informer_per_resource() -> None:
    client = ScriptedClient()
    factory = informer.SharedInformerFactory(cast(resources.Client, client))
    pods = factory.informer_for("v1", "Pod")
    assert factory.informer_for("v1", "pods") is pods
    assert factory.informer_for("v1", "Pod", namespace="ns") is not pods
    assert factory.informer_for("apps/v1", "Deployment") is not pods
    assert len(factory.informers) == 3
    client.lists = [listing(1), listing(1), listing(1)]
    factory.start()
    async with asyncio.timeout(5):
        await factory.wait_for_cache_sync()
    assert all(i.has_synced for i in factory.informers)
    await factory.stop()
