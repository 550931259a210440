"""The heap freezer freezes at start, then once growth plus replacements since the last
freeze reach half the cache (or a fixed number of objects, whichever is fewer); a freeze
collects only the young generations; the watch cache counts the objects it replaced."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kybern import storage
from kybern.apiserver import gctuning, watchcache

pytestmark = pytest.mark.timeout(30)


class FakeCache:
    def __init__(self, size: int = 0) -> None:
        self.size = size
        self.replaced = 0

    def freezer(self, **kwargs: Any) -> gctuning.HeapFreezer:
        kwargs.setdefault("minimum", 100)
        return gctuning.HeapFreezer(lambda: self.size, lambda: self.replaced, **kwargs)


@pytest.fixture
def collects(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, ...]]]:
    """Records gc.collect calls (not run) and undoes the freezes."""
    calls: list[tuple[int, ...]] = []

    def collect(*args: int) -> int:
        calls.append(args)
        return 0

    monkeypatch.setattr(gc, "collect", collect)
    try:
        yield calls
    finally:
        gc.unfreeze()


def test_freezes_only_after_enough_growth(collects: list[tuple[int, ...]]) -> None:
    cache = FakeCache()
    freezer = cache.freezer()
    freezer.freeze()
    assert gc.get_freeze_count() > 0
    assert freezer.frozen_at == 0
    cache.size = 99
    assert not freezer.check()  # below the minimum
    cache.size = 100
    assert freezer.check()
    assert freezer.frozen_at == 100
    cache.size = 149
    assert not freezer.check()  # grown by less than half
    cache.size = 150
    assert freezer.check()
    assert freezer.freezes == 3


def test_replacements_count_as_growth(collects: list[tuple[int, ...]]) -> None:
    cache = FakeCache(1000)
    cache.replaced = 7
    freezer = cache.freezer()
    freezer.freeze()
    assert (freezer.frozen_at, freezer.replaced_at) == (1000, 7)
    cache.replaced += 499  # updates: the size stays, half the cache less one is new
    assert not freezer.check()
    cache.replaced += 1
    assert freezer.check()
    assert (freezer.frozen_at, freezer.replaced_at) == (1000, 507)
    assert not freezer.check()  # counted from the new freeze on


def test_growth_and_replacements_add_up(collects: list[tuple[int, ...]]) -> None:
    cache = FakeCache(1000)
    freezer = cache.freezer()
    freezer.freeze()
    cache.size, cache.replaced = 1300, 199
    assert not freezer.check()
    cache.replaced = 200
    assert freezer.check()


def test_delete_and_recreate_counts_once(collects: list[tuple[int, ...]]) -> None:
    cache = FakeCache(1000)
    freezer = cache.freezer()
    freezer.freeze()
    for _ in range(499):  # pods deleted and created again: the size never changes
        cache.size -= 1
        cache.replaced += 1
        cache.size += 1
    assert not freezer.check()
    cache.replaced += 1
    assert freezer.check()


def test_a_large_cache_refreezes_after_most_changes(collects: list[tuple[int, ...]]) -> None:
    cache = FakeCache(150_000)
    freezer = cache.freezer(most=20_000)
    freezer.freeze()
    cache.replaced = 19_999
    assert not freezer.check()
    cache.size, cache.replaced = 150_001, 19_999
    assert freezer.check()


def test_a_cache_below_the_minimum_is_left_alone(collects: list[tuple[int, ...]]) -> None:
    cache = FakeCache(10)
    freezer = cache.freezer()
    freezer.freeze()
    cache.replaced = 10_000  # full collections of a tiny cache are cheap anyway
    assert not freezer.check()


def test_without_a_replacement_counter_only_growth_counts(collects: list[tuple[int, ...]]) -> None:
    size = [1000]
    freezer = gctuning.HeapFreezer(lambda: size[0], minimum=100)
    freezer.freeze()
    assert not freezer.check()
    size[0] = 1500
    assert freezer.check()


def test_every_freeze_collects_only_the_young(collects: list[tuple[int, ...]]) -> None:
    cache = FakeCache(150_000)
    freezer = cache.freezer(most=20_000)
    freezer.freeze()
    cache.replaced = 20_000
    assert freezer.check()
    cache.size = 250_000  # a burst within one check interval
    assert freezer.check()
    assert collects == [(1,), (1,), (1,)]


def test_a_real_freeze_freezes_the_heap() -> None:
    try:
        gctuning.HeapFreezer(lambda: 0).freeze()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


async def test_the_watch_cache_counts_replaced_objects(tmp_path: Path) -> None:
    backend = storage.open_backend(tmp_path / "s.db", compact_interval=0)
    await backend.start()
    cache = watchcache.WatchCache(backend)
    await cache.start()
    try:
        key = "/registry/configmaps/default/a"
        body = (
            b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"default"}}'
        )
        rev = await backend.create(key, body)
        await cache.wait_for(rev)
        assert (cache.object_count(), cache.replaced_count()) == (1, 0)  # a create: growth
        rev = await backend.update(key, body, rev)
        await cache.wait_for(rev)
        assert (cache.object_count(), cache.replaced_count()) == (1, 1)
        kv = await backend.delete(key)
        await cache.wait_for(kv.mod_revision)
        assert (cache.object_count(), cache.replaced_count()) == (0, 2)
    finally:
        await cache.stop()
        await backend.close()
