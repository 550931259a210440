"""LIST pages at a past revision (continue tokens, Exact reads) served from the watch cache
must be exactly what the store holds at that revision: same objects, same resourceVersions,
same remainingItemCount; older than the cache's window they come from the store, a page at
a time; compacted ones are 410 Expired."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from kybern import storage
from kybern.api import kinds
from kybern.apiserver import errors, listing, query, watchcache

pytestmark = pytest.mark.timeout(30)

PREFIX = "/registry/configmaps/"


@dataclass
class Reg:
    """The two things the list path reads from a registry."""

    cache: watchcache.WatchCache
    backend: storage.SQLiteBackend


def info() -> kinds.ResourceInfo:
    found = kinds.lookup("", "v1", "configmaps")
    assert found is not None
    return found


def value(ns: str, name: str, n: int, labels: dict[str, str] | None = None) -> bytes:
    meta = {"name": name, "namespace": ns, "labels": labels or {}}
    return orjson.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"n": str(n)}}
    )


async def started(tmp_path: Path, capacity: int = 10_000) -> Reg:
    backend = storage.open_backend(tmp_path / "s.db", compact_interval=0)
    await backend.start()
    cache = watchcache.WatchCache(backend, capacity=capacity)
    await cache.start()
    return Reg(cache, backend)


async def stop(reg: Reg) -> None:
    await reg.cache.stop()
    await reg.backend.close()


async def caught_up(reg: Reg) -> None:
    await reg.cache.wait_for(reg.backend.current_rev())


async def list_page(reg: Reg, namespace: str = "", **params: str) -> dict[str, Any]:
    opts = query.list_options(params)
    return await listing.list_objects(reg, info(), namespace, opts)  # type: ignore[arg-type]


async def all_pages(reg: Reg, namespace: str = "", **params: str) -> list[dict[str, Any]]:
    pages = [await list_page(reg, namespace, **params)]
    while token := pages[-1]["metadata"].get("continue"):
        pages.append(await list_page(reg, namespace, **params, **{"continue": token}))
    return pages


async def store_at(reg: Reg, prefix: str, rev: int) -> list[tuple[str, str]]:
    """(name, resourceVersion) of every object under prefix at rev, as the store has them."""
    result = await reg.backend.list(prefix, rev=rev)
    return [(orjson.loads(kv.value)["metadata"]["name"], str(kv.mod_revision)) for kv in result.kvs]


def names_rvs(pages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (i["metadata"]["name"], i["metadata"]["resourceVersion"]) for p in pages for i in p["items"]
    ]


async def churn(reg: Reg, rng: random.Random, live: dict[str, int], ops: int) -> None:
    """Random creates, updates, deletes and re-creates of keys ns-<0..2>/cm-<0..59>."""
    for _ in range(ops):
        ns, n = f"ns-{rng.randrange(3)}", rng.randrange(60)
        key = f"{PREFIX}{ns}/cm-{n:02d}"
        labels = {"tier": rng.choice(["web", "db"])}
        if key not in live:
            live[key] = await reg.backend.create(key, value(ns, f"cm-{n:02d}", 0, labels))
        elif rng.random() < 0.4:
            await reg.backend.delete(key)
            del live[key]
        else:
            rev = live[key]
            live[key] = await reg.backend.update(key, value(ns, f"cm-{n:02d}", rev, labels), rev)


def count_store_lists(reg: Reg, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, every list the store serves is recorded (by prefix)."""
    calls: list[str] = []
    real = reg.backend.list

    async def recording(prefix: str, *args: Any, **kw: Any) -> storage.ListResult:
        calls.append(prefix)
        return await real(prefix, *args, **kw)

    monkeypatch.setattr(reg.backend, "list", recording)
    return calls


class TestPagesAtThePagedRevision:
    async def test_pages_equal_the_store_at_the_first_pages_revision(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        reg = await started(tmp_path)
        try:
            rng, live = random.Random(7), dict[str, int]()
            await churn(reg, rng, live, 150)
            await caught_up(reg)
            first = await list_page(reg, limit="7")
            rv = int(first["metadata"]["resourceVersion"])
            pages = [first]
            store_lists = count_store_lists(reg, monkeypatch)
            while token := pages[-1]["metadata"].get("continue"):
                await churn(reg, rng, live, 15)  # the collection moves on between pages
                await caught_up(reg)
                page = await list_page(reg, limit="7", **{"continue": token})
                assert page["metadata"]["resourceVersion"] == str(rv)
                pages.append(page)
            assert store_lists == []  # every page came from the cache
            assert names_rvs(pages) == await store_at(reg, PREFIX, rv)
            # remainingItemCount on every page is what the store had left after it.
            total = len(names_rvs(pages))
            seen = 0
            for page in pages:
                seen += len(page["items"])
                assert page["metadata"].get("remainingItemCount", 0) == total - seen
        finally:
            await stop(reg)

    async def test_namespace_and_selector_pages_at_a_past_revision(self, tmp_path: Path) -> None:
        reg = await started(tmp_path)
        try:
            rng, live = random.Random(11), dict[str, int]()
            await churn(reg, rng, live, 150)
            await caught_up(reg)
            first = await list_page(reg, "ns-1", limit="4", labelSelector="tier=web")
            rv = int(first["metadata"]["resourceVersion"])
            assert "remainingItemCount" not in first["metadata"]
            pages = [first]
            while token := pages[-1]["metadata"].get("continue"):
                await churn(reg, rng, live, 10)
                await caught_up(reg)
                pages.append(
                    await list_page(
                        reg, "ns-1", limit="4", labelSelector="tier=web", **{"continue": token}
                    )
                )
            result = await reg.backend.list(f"{PREFIX}ns-1/", rev=rv)
            want = [
                (o["metadata"]["name"], str(kv.mod_revision))
                for kv in result.kvs
                if (o := orjson.loads(kv.value))["metadata"]["labels"]["tier"] == "web"
            ]
            assert names_rvs(pages) == want
        finally:
            await stop(reg)

    async def test_exact_read_of_a_past_revision(self, tmp_path: Path) -> None:
        reg = await started(tmp_path)
        try:
            rng, live = random.Random(3), dict[str, int]()
            await churn(reg, rng, live, 80)
            rv = reg.backend.current_rev()
            await churn(reg, rng, live, 80)
            await caught_up(reg)
            exact = await list_page(
                reg, resourceVersion=str(rv), resourceVersionMatch="Exact", limit="1000"
            )
            assert exact["metadata"]["resourceVersion"] == str(rv)
            assert names_rvs([exact]) == await store_at(reg, PREFIX, rv)
        finally:
            await stop(reg)


class TestOlderThanTheCacheWindow:
    async def test_pages_come_from_the_store_one_page_at_a_time(self, tmp_path: Path) -> None:
        reg = await started(tmp_path, capacity=5)
        try:
            rng, live = random.Random(5), dict[str, int]()
            await churn(reg, rng, live, 120)
            await caught_up(reg)
            first = await list_page(reg, limit="9")
            rv = int(first["metadata"]["resourceVersion"])
            await churn(reg, rng, live, 30)  # more than the 5-event window
            await caught_up(reg)
            pages = [first]
            while token := pages[-1]["metadata"].get("continue"):
                page = await list_page(reg, limit="9", **{"continue": token})
                assert len(page["items"]) <= 9
                if page["metadata"].get("continue"):
                    assert page["metadata"]["remainingItemCount"] >= 1  # an estimate here
                pages.append(page)
            assert names_rvs(pages) == await store_at(reg, PREFIX, rv)
            selected = await all_pages(reg, limit="3", labelSelector="tier=db")
            assert all(
                i["metadata"]["labels"]["tier"] == "db" for p in selected for i in p["items"]
            )
        finally:
            await stop(reg)

    async def test_a_compacted_continue_is_410_expired(self, tmp_path: Path) -> None:
        reg = await started(tmp_path)
        try:
            rng, live = random.Random(9), dict[str, int]()
            await churn(reg, rng, live, 60)
            await caught_up(reg)
            first = await list_page(reg, limit="2")
            await churn(reg, rng, live, 20)
            await reg.backend.compact(reg.backend.current_rev() - 1)
            with pytest.raises(errors.StatusError) as caught:
                await list_page(reg, limit="2", **{"continue": first["metadata"]["continue"]})
            assert caught.value.code == 410
            assert caught.value.reason == "Expired"
            rv = first["metadata"]["resourceVersion"]  # still in the cache, but compacted
            with pytest.raises(errors.StatusError) as caught:
                await list_page(reg, resourceVersion=rv, resourceVersionMatch="Exact")
            assert caught.value.code == 410
        finally:
            await stop(reg)


class TestSortedKeys:
    def test_kept_sorted_through_creates_and_deletes_without_a_rebuild(self) -> None:
        cache = watchcache.ResourceCache("configmaps", 0, 100)
        rng = random.Random(1)
        for i in range(40):
            key = f"{PREFIX}ns/cm-{rng.randrange(1000):04d}"
            cache.apply(watchcache.CachedEvent(watchcache.ADDED, key, "ns", {}, None, i + 1))
        keys = cache.sorted_keys()
        for i, key in enumerate(rng.sample(sorted(cache.objects), 10)):
            cache.apply(watchcache.CachedEvent(watchcache.DELETED, key, "ns", {}, {}, 100 + i))
        for i in range(10):
            key = f"{PREFIX}ns/new-{rng.randrange(1000):04d}"
            cache.apply(watchcache.CachedEvent(watchcache.ADDED, key, "ns", {}, None, 200 + i))
        assert cache.sorted_keys() is keys  # the same list, updated in place
        assert keys == sorted(cache.objects)

    def test_objects_filled_directly_are_picked_up(self) -> None:
        cache = watchcache.ResourceCache("configmaps", 0, 100)
        assert cache.sorted_keys() == []
        cache.objects[f"{PREFIX}ns/b"] = {}
        cache.objects[f"{PREFIX}ns/a"] = {}
        assert cache.sorted_keys() == [f"{PREFIX}ns/a", f"{PREFIX}ns/b"]


async def test_deleted_events_carry_the_object_as_it_was(tmp_path: Path) -> None:
    reg = await started(tmp_path)
    try:
        rev = await reg.backend.create(f"{PREFIX}ns/a", value("ns", "a", 1))
        await reg.backend.delete(f"{PREFIX}ns/a")
        await caught_up(reg)
        events = reg.cache.resource("configmaps").events_after(rev)
        assert events is not None
        assert [e.type for e in events] == [watchcache.DELETED]
        assert events[0].prev is not None
        assert events[0].prev["metadata"]["resourceVersion"] == str(rev)
        assert events[0].obj["metadata"]["resourceVersion"] == str(events[0].revision)
        await asyncio.sleep(0)
    finally:
        await stop(reg)


@pytest.mark.parametrize(
    "selector",
    [
        "tier=web",
        "tier==web",
        "tier in (web)",
        "tier=web,app=a",
        "tier in (web,db)",
        "tier!=web",
        "tier",
        "!tier",
        "tier=web,app!=a",
        "n>1",
    ],
)
def test_label_fast_path_agrees_with_the_selector(selector: str) -> None:
    from kybern.api import labels

    parsed = labels.parse(selector)
    test = listing._label_test(parsed)
    for found in (
        {},
        {"tier": "web"},
        {"tier": "db"},
        {"tier": "web", "app": "a"},
        {"tier": "web", "app": "b"},
        {"app": "a"},
        {"n": "2"},
        {"n": "0"},
    ):
        assert test(found) == parsed.matches(found), (selector, found)


class Recording(watchcache.Watcher):
    """A watcher that notes in ``offered`` each time the cache offers it an event."""

    def __init__(self, name: str, offered: list[str], *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.name, self.offered = name, offered

    def offer(self, event: watchcache.CachedEvent) -> None:
        self.offered.append(self.name)
        super().offer(event)


class TestNodeNameTriggers:
    """Pod watchers selecting ``spec.nodeName=<node>`` are offered only their node's events,
    and still see every transition (binding = ADDED, leaving = DELETED)."""

    @staticmethod
    def watcher(
        cache: watchcache.ResourceCache, selector: str, trigger: str | None, offered: list[str]
    ) -> watchcache.Watcher:
        pods = kinds.lookup("", "v1", "pods")
        assert pods is not None
        match = listing.versioned_matcher(pods, listing.matcher(pods, "", selector))
        found = Recording(selector or "all", offered, "", match, 100, trigger=trigger)
        cache.add_watcher(found)
        return found

    @staticmethod
    def seen(watcher: watchcache.Watcher) -> list[tuple[str, str]]:
        out = []
        while not watcher.queue.empty():
            event = watcher.queue.get_nowait()
            assert event is not None
            out.append((event.type, event.obj["spec"].get("nodeName", "")))
        return out

    def test_events_reach_exactly_the_watchers_of_their_node(self) -> None:
        cache = watchcache.ResourceCache("pods", 0, 100)
        assert cache.trigger_field == "spec.nodeName"
        offered: list[str] = []
        n1 = self.watcher(cache, "spec.nodeName=n1", "n1", offered)
        n2 = self.watcher(cache, "spec.nodeName=n2", "n2", offered)
        unbound = self.watcher(cache, "spec.nodeName=", "", offered)
        everyone = self.watcher(cache, "", None, offered)
        key = "/registry/pods/ns/p"
        pod: dict[str, Any] = {"metadata": {"name": "p"}, "spec": {}}
        bound = {"metadata": {"name": "p"}, "spec": {"nodeName": "n2"}}
        cache.apply(watchcache.CachedEvent(watchcache.ADDED, key, "ns", pod, None, 1))
        cache.apply(watchcache.CachedEvent(watchcache.MODIFIED, key, "ns", bound, pod, 2))
        cache.apply(watchcache.CachedEvent(watchcache.DELETED, key, "ns", bound, bound, 3))
        # n1 is never asked; the unselective watcher is asked about everything.
        assert [name for name in offered if name != "all"] == [
            "spec.nodeName=",
            "spec.nodeName=n2",
            "spec.nodeName=",
            "spec.nodeName=n2",
        ]
        assert self.seen(n1) == []
        assert self.seen(n2) == [("ADDED", "n2"), ("DELETED", "n2")]
        assert self.seen(unbound) == [("ADDED", ""), ("DELETED", "")]
        assert [t for t, _ in self.seen(everyone)] == ["ADDED", "MODIFIED", "DELETED"]
        cache.remove_watcher(n2)
        cache.apply(watchcache.CachedEvent(watchcache.ADDED, key, "ns", bound, None, 4))
        assert self.seen(n2) == []
        assert cache.watchers == {n1, unbound, everyone}


class TestNodeNameIndex:
    """LISTs of pods by ``spec.nodeName=<node>`` (a kubelet's) test only that node's pods
    (and the keys changed since a past revision) and still give exactly the store's answer."""

    PODS = "/registry/pods/"

    @staticmethod
    def pod(name: str, node: str, n: int) -> bytes:
        spec: dict[str, Any] = {"containers": [{"name": "c", "image": "i"}]}
        if node:
            spec["nodeName"] = node
        meta = {"name": name, "namespace": "ns", "labels": {"n": str(n)}}
        return orjson.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})

    async def churn(self, reg: Reg, rng: random.Random, live: dict[str, int], ops: int) -> None:
        """Creates, deletes and node changes of pods p-00..p-39 over nodes '', n0..n3."""
        for _ in range(ops):
            name = f"p-{rng.randrange(40):02d}"
            key, node = f"{self.PODS}ns/{name}", rng.choice(["", "n0", "n1", "n2", "n3"])
            if key not in live:
                live[key] = await reg.backend.create(key, self.pod(name, node, 0))
            elif rng.random() < 0.3:
                await reg.backend.delete(key)
                del live[key]
            else:
                body = self.pod(name, node, live[key])
                live[key] = await reg.backend.update(key, body, live[key])

    async def expected(self, reg: Reg, rev: int, node: str) -> list[tuple[str, str]]:
        result = await reg.backend.list(self.PODS, rev=rev)
        return [
            (o["metadata"]["name"], str(kv.mod_revision))
            for kv in result.kvs
            if ((o := orjson.loads(kv.value))["spec"].get("nodeName") or "") == node
        ]

    async def pages(self, reg: Reg, node: str, rng: random.Random, live: dict[str, int]) -> Any:
        pods = kinds.lookup("", "v1", "pods")
        assert pods is not None
        params = {"fieldSelector": f"spec.nodeName={node}", "limit": "3"}
        first = await listing.list_objects(reg, pods, "", query.list_options(params))  # type: ignore[arg-type]
        out = [first]
        while token := out[-1]["metadata"].get("continue"):
            await self.churn(reg, rng, live, 8)
            await caught_up(reg)
            opts = query.list_options({**params, "continue": token})
            out.append(await listing.list_objects(reg, pods, "", opts))  # type: ignore[arg-type]
        return int(first["metadata"]["resourceVersion"]), out

    @pytest.mark.parametrize("node", ["n1", ""])
    async def test_paged_node_lists_equal_the_store(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, node: str
    ) -> None:
        reg = await started(tmp_path)
        try:
            rng, live = random.Random(21), dict[str, int]()
            await self.churn(reg, rng, live, 120)
            await caught_up(reg)
            resource = reg.cache.resource("pods")
            tested: list[str] = []
            real = resource.indexed

            def recording(value: str) -> set[str]:
                tested.append(value)
                return real(value)

            monkeypatch.setattr(resource, "indexed", recording)
            rev, pages = await self.pages(reg, node, rng, live)
            assert tested == [node] * len(pages)  # the index answered every page
            assert names_rvs(pages) == await self.expected(reg, rev, node)
            # ... and the index is still in step with the objects after all that churn.
            for value in ("", "n0", "n1", "n2", "n3"):
                want = {
                    k
                    for k, o in resource.objects.items()
                    if (o["spec"].get("nodeName") or "") == value
                }
                assert real(value) == want
        finally:
            await stop(reg)
