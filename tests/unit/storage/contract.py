"""The backend contract: every semantic of kybern.storage.backend, for any Backend.

Not collected on its own. A backend's test module subclasses ``BackendContract`` and provides
a ``store`` fixture yielding a started, empty backend (closed afterwards; close must be
idempotent). The sqlite tests do so in test_sqlite.py; the etcd backend runs the same class.

Tests never assume absolute revision numbers, only relations between them, so a backend may
start at any revision.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from kybern.storage import backend, errors

Backend = backend.Backend
EventType = backend.EventType

DEADLINE = 10.0  # seconds; every wait in this suite is bounded by it


async def collect(events: AsyncIterator[backend.Event], n: int) -> list[backend.Event]:
    """The next ``n`` events, within the deadline."""
    out: list[backend.Event] = []
    async with asyncio.timeout(DEADLINE):
        while len(out) < n:
            out.append(await anext(events))
    return out


async def close(events: AsyncIterator[backend.Event]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


async def wait_until(condition: Callable[[], bool]) -> None:
    """For state that offers nothing to await (e.g. background compaction progress)."""
    async with asyncio.timeout(DEADLINE):
        while not condition():  # noqa: ASYNC110 - no event to wait on; bounded by DEADLINE
            await asyncio.sleep(0.001)


def revisions(events: list[backend.Event]) -> list[int]:
    return [e.revision for e in events]


class BackendContract:
    """Subclass and provide a ``store`` fixture (async, yields a started backend)."""

    # -- create / get / update / delete ------------------------------------------------------

    async def test_create_then_get(self, store: Backend) -> None:
        rev = await store.create("/t/a", b"\x00binary\xff")
        kv = await store.get("/t/a")
        assert kv == backend_kv("/t/a", b"\x00binary\xff", rev, rev)
        assert store.current_rev() == rev

    async def test_empty_value_round_trips(self, store: Backend) -> None:
        rev = await store.create("/t/empty", b"")
        assert await store.get("/t/empty") == backend_kv("/t/empty", b"", rev, rev)

    async def test_create_of_live_key_raises_key_exists(self, store: Backend) -> None:
        rev = await store.create("/t/a", b"1")
        with pytest.raises(errors.KeyExists) as caught:
            await store.create("/t/a", b"2")
        assert caught.value.key == "/t/a"
        assert (await store.get("/t/a")).value == b"1"
        assert store.current_rev() == rev

    async def test_get_of_missing_key_raises_not_found(self, store: Backend) -> None:
        with pytest.raises(errors.NotFound):
            await store.get("/t/missing")

    async def test_update_with_current_revision(self, store: Backend) -> None:
        created = await store.create("/t/a", b"1")
        updated = await store.update("/t/a", b"2", created)
        assert updated > created
        assert await store.get("/t/a") == backend_kv("/t/a", b"2", created, updated)

    async def test_update_with_stale_revision_conflicts(self, store: Backend) -> None:
        created = await store.create("/t/a", b"1")
        updated = await store.update("/t/a", b"2", created)
        with pytest.raises(errors.Conflict) as caught:
            await store.update("/t/a", b"3", created)
        assert (caught.value.expected, caught.value.actual) == (created, updated)
        assert (await store.get("/t/a")).value == b"2"
        assert store.current_rev() == updated

    async def test_update_of_missing_or_deleted_key_raises_not_found(self, store: Backend) -> None:
        with pytest.raises(errors.NotFound):
            await store.update("/t/missing", b"x", 1)
        rev = await store.create("/t/a", b"1")
        await store.delete("/t/a", rev)
        with pytest.raises(errors.NotFound):
            await store.update("/t/a", b"2", rev)

    async def test_delete_returns_deleted_value_at_deletion_revision(self, store: Backend) -> None:
        created = await store.create("/t/a", b"1")
        deleted = await store.delete("/t/a", created)
        assert deleted.key == "/t/a"
        assert deleted.value == b"1"
        assert deleted.create_revision == created
        assert deleted.mod_revision > created
        assert store.current_rev() == deleted.mod_revision
        with pytest.raises(errors.NotFound):
            await store.get("/t/a")

    async def test_unconditional_delete(self, store: Backend) -> None:
        created = await store.create("/t/a", b"1")
        await store.update("/t/a", b"2", created)
        deleted = await store.delete("/t/a")
        assert deleted.value == b"2"

    async def test_delete_conflict_and_not_found(self, store: Backend) -> None:
        created = await store.create("/t/a", b"1")
        updated = await store.update("/t/a", b"2", created)
        with pytest.raises(errors.Conflict) as caught:
            await store.delete("/t/a", created)
        assert (caught.value.expected, caught.value.actual) == (created, updated)
        assert (await store.get("/t/a")).value == b"2"
        with pytest.raises(errors.NotFound):
            await store.delete("/t/missing")
        await store.delete("/t/a", updated)
        with pytest.raises(errors.NotFound):
            await store.delete("/t/a")

    async def test_recreate_after_delete_gets_new_create_revision(self, store: Backend) -> None:
        first = await store.create("/t/a", b"1")
        await store.delete("/t/a", first)
        second = await store.create("/t/a", b"2")
        assert second > first
        assert await store.get("/t/a") == backend_kv("/t/a", b"2", second, second)
        with pytest.raises(errors.Conflict):
            await store.update("/t/a", b"3", first)

    # -- revisions --------------------------------------------------------------------------

    async def test_revision_is_global_and_strictly_increasing(self, store: Backend) -> None:
        start = store.current_rev()
        revs = [await store.create(f"/t/{i}", b"x") for i in range(5)]
        revs.append(await store.update("/t/0", b"y", revs[0]))
        revs.append((await store.delete("/t/1")).mod_revision)
        revs.append(await store.create("/other/key", b"z"))
        assert revs == sorted(set(revs))
        assert revs[0] > start
        assert store.current_rev() == revs[-1]

    async def test_failed_writes_do_not_advance_revision(self, store: Backend) -> None:
        rev = await store.create("/t/a", b"1")
        for failing in (
            store.create("/t/a", b"2"),
            store.update("/t/a", b"2", rev + 100),
            store.update("/t/missing", b"2", rev),
            store.delete("/t/a", rev + 100),
            store.delete("/t/missing"),
        ):
            with pytest.raises(errors.StorageError):
                await failing
        assert store.current_rev() == rev

    # -- reads at a revision ----------------------------------------------------------------

    async def test_get_at_old_revisions(self, store: Backend) -> None:
        before = await store.create("/t/other", b"o")
        v1 = await store.create("/t/a", b"1")
        v2 = await store.update("/t/a", b"2", v1)
        gone = (await store.delete("/t/a", v2)).mod_revision
        v3 = await store.create("/t/a", b"3")
        with pytest.raises(errors.NotFound):
            await store.get("/t/a", before)
        assert await store.get("/t/a", v1) == backend_kv("/t/a", b"1", v1, v1)
        assert await store.get("/t/a", v2) == backend_kv("/t/a", b"2", v1, v2)
        with pytest.raises(errors.NotFound):
            await store.get("/t/a", gone)
        assert await store.get("/t/a", v3) == backend_kv("/t/a", b"3", v3, v3)
        assert (await store.get("/t/other", v3)).value == b"o"

    async def test_future_revision(self, store: Backend) -> None:
        rev = await store.create("/t/a", b"1")
        with pytest.raises(errors.FutureRevision):
            await store.get("/t/a", rev + 1)
        with pytest.raises(errors.FutureRevision):
            await store.list("/t/", rev + 1)

    async def test_list_is_sorted_and_prefix_bounded(self, store: Backend) -> None:
        for key in ["/r/b", "/r/a", "/r/c/d", "/r0", "/r", "/q/x", "/r/\u00e9", "/r/Z"]:
            await store.create(key, key.encode())
        result = await store.list("/r/")
        assert [kv.key for kv in result.kvs] == ["/r/Z", "/r/a", "/r/b", "/r/c/d", "/r/\u00e9"]
        assert all(kv.value == kv.key.encode() for kv in result.kvs)
        assert result.revision == store.current_rev()
        assert not result.more

    async def test_list_with_empty_prefix_lists_everything(self, store: Backend) -> None:
        for key in ["/b", "/a", "/c/d"]:
            await store.create(key, b"x")
        assert [kv.key for kv in (await store.list("")).kvs] == ["/a", "/b", "/c/d"]

    async def test_list_excludes_deleted_keys_and_reports_mod_revisions(
        self, store: Backend
    ) -> None:
        a = await store.create("/l/a", b"1")
        b = await store.create("/l/b", b"1")
        a2 = await store.update("/l/a", b"2", a)
        await store.delete("/l/b", b)
        result = await store.list("/l/")
        assert result.kvs == [backend_kv("/l/a", b"2", a, a2)]

    async def test_list_limit_and_start_after(self, store: Backend) -> None:
        for i in range(5):
            await store.create(f"/l/{i}", b"x")
        first = await store.list("/l/", limit=2)
        assert [kv.key for kv in first.kvs] == ["/l/0", "/l/1"]
        assert first.more
        rest = await store.list("/l/", first.revision, limit=2, start_after="/l/1")
        assert [kv.key for kv in rest.kvs] == ["/l/2", "/l/3"]
        assert rest.more
        last = await store.list("/l/", first.revision, limit=2, start_after="/l/3")
        assert [kv.key for kv in last.kvs] == ["/l/4"]
        assert not last.more
        exact = await store.list("/l/", limit=5)
        assert len(exact.kvs) == 5
        assert not exact.more

    async def test_list_at_old_revision(self, store: Backend) -> None:
        a = await store.create("/l/a", b"1")
        b = await store.create("/l/b", b"1")
        old = store.current_rev()
        await store.update("/l/a", b"2", a)
        await store.delete("/l/b", b)
        await store.create("/l/c", b"1")
        result = await store.list("/l/", old)
        assert result.revision == old
        assert result.kvs == [backend_kv("/l/a", b"1", a, a), backend_kv("/l/b", b"1", b, b)]

    async def test_paged_list_at_fixed_revision_while_writes_continue(self, store: Backend) -> None:
        revs = {f"/p/{i:02}": await store.create(f"/p/{i:02}", b"0") for i in range(30)}
        first = await store.list("/p/", limit=7)
        expected = {kv.key: kv.value for kv in (await store.list("/p/", first.revision)).kvs}
        seen = [kv.key for kv in first.kvs]
        writes = iter(sorted(revs.items()))
        more = first.more
        while more:
            key, rev = next(writes)  # change the store between pages
            await store.update(key, b"changed", rev)
            await store.delete(key)
            await store.create(key + "-new", b"new")
            page = await store.list("/p/", first.revision, limit=7, start_after=seen[-1])
            assert page.revision == first.revision
            assert all(kv.value == b"0" for kv in page.kvs)
            seen += [kv.key for kv in page.kvs]
            more = page.more
        assert seen == sorted(expected)

    # -- watch ------------------------------------------------------------------------------

    async def test_watch_replays_history_then_live(self, store: Backend) -> None:
        start = store.current_rev()
        history = [await store.create(f"/w/{i}", b"h") for i in range(5)]
        events = store.watch("/w/", start)
        try:
            assert revisions(await collect(events, 5)) == history
            live = [await store.create(f"/w/live{i}", b"l") for i in range(3)]
            got = await collect(events, 3)
            assert revisions(got) == live
            assert [e.kv.value for e in got] == [b"l"] * 3
        finally:
            await close(events)

    async def test_watch_has_no_gap_and_no_duplicate_under_concurrent_writes(
        self, store: Backend
    ) -> None:
        base = store.current_rev()
        total = 300

        a_third_written = asyncio.Event()

        async def write() -> None:
            for i in range(total):
                await store.create(f"/w/{i:04}", b"x")
                if i == total // 3:
                    a_third_written.set()

        writer = asyncio.create_task(write())
        await asyncio.wait_for(a_third_written.wait(), DEADLINE)
        start = store.current_rev()  # history up to here, live after, writes ongoing
        events = store.watch("/w/", start)
        try:
            got = await collect(events, base + total - start)
            assert revisions(got) == list(range(start + 1, base + total + 1))
        finally:
            await close(events)
            await writer

    async def test_watch_filters_by_prefix(self, store: Backend) -> None:
        start = store.current_rev()
        for key in ["/w/a/1", "/w/ab", "/w/a/2", "/x/a/3", "/w/a"]:
            await store.create(key, b"x")
        events = store.watch("/w/a/", start)
        try:
            await store.create("/w/a/3", b"x")
            await store.create("/w/b/4", b"x")
            await store.create("/w/a/5", b"x")
            got = await collect(events, 4)
            assert [e.kv.key for e in got] == ["/w/a/1", "/w/a/2", "/w/a/3", "/w/a/5"]
        finally:
            await close(events)

    async def test_watch_event_types_and_prev_values(self, store: Backend) -> None:
        start = store.current_rev()
        events = store.watch("/w/", start)
        try:
            c = await store.create("/w/k", b"1")
            u = await store.update("/w/k", b"2", c)
            d = (await store.delete("/w/k", u)).mod_revision
            r = await store.create("/w/k", b"3")
            create, update, delete, recreate = await collect(events, 4)
        finally:
            await close(events)
        assert create == backend.Event(EventType.CREATE, backend_kv("/w/k", b"1", c, c), None)
        assert update == backend.Event(
            EventType.UPDATE, backend_kv("/w/k", b"2", c, u), backend_kv("/w/k", b"1", c, c)
        )
        assert delete == backend.Event(
            EventType.DELETE, backend_kv("/w/k", b"2", c, d), backend_kv("/w/k", b"2", c, u)
        )
        assert recreate == backend.Event(EventType.CREATE, backend_kv("/w/k", b"3", r, r), None)
        assert delete.revision == d

    async def test_history_events_equal_live_events(self, store: Backend) -> None:
        start = store.current_rev()
        live_stream = store.watch("/w/", start)
        try:
            c = await store.create("/w/k", b"1")
            u = await store.update("/w/k", b"2", c)
            await store.delete("/w/k", u)
            live = await collect(live_stream, 3)
        finally:
            await close(live_stream)
        replay_stream = store.watch("/w/", start)
        try:
            assert await collect(replay_stream, 3) == live
        finally:
            await close(replay_stream)

    async def test_watch_from_current_revision_sees_only_new_events(self, store: Backend) -> None:
        await store.create("/w/old", b"x")
        events = store.watch("/w/", store.current_rev())
        try:
            rev = await store.create("/w/new", b"x")
            assert revisions(await collect(events, 1)) == [rev]
        finally:
            await close(events)

    async def test_watch_ends_when_backend_closes(self, store: Backend) -> None:
        events = store.watch("/w/", store.current_rev())
        pending = asyncio.ensure_future(anext(events))
        await store.create("/w/a", b"x")
        assert (await asyncio.wait_for(pending, DEADLINE)).kv.key == "/w/a"
        pending = asyncio.ensure_future(anext(events))
        await store.close()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(pending, DEADLINE)

    # -- compaction -------------------------------------------------------------------------

    async def test_compact_keeps_latest_values(self, store: Backend) -> None:
        a1 = await store.create("/c/a", b"1")
        a = await store.update("/c/a", b"2", a1)
        b = await store.create("/c/b", b"1")
        await store.delete("/c/b", b)
        c = await store.create("/c/c", b"1")
        await store.compact(store.current_rev())
        assert store.compacted_rev() == store.current_rev()
        result = await store.list("/c/")
        assert result.kvs == [backend_kv("/c/a", b"2", a1, a), backend_kv("/c/c", b"1", c, c)]
        assert await store.update("/c/a", b"3", a) > a

    async def test_reads_below_compacted_revision_raise_compacted(self, store: Backend) -> None:
        v1 = await store.create("/c/a", b"1")
        v2 = await store.update("/c/a", b"2", v1)
        v3 = await store.update("/c/a", b"3", v2)
        await store.update("/c/a", b"4", v3)
        await store.compact(v3)
        assert store.compacted_rev() == v3
        with pytest.raises(errors.Compacted):
            await store.get("/c/a", v2)
        with pytest.raises(errors.Compacted):
            await store.list("/c/", v1)
        events = store.watch("/c/", v1)
        try:
            with pytest.raises(errors.Compacted):
                await anext(events)
        finally:
            await close(events)
        assert (await store.get("/c/a", v3)).value == b"3"
        assert [kv.value for kv in (await store.list("/c/", v3)).kvs] == [b"3"]

    async def test_watch_from_compacted_revision_replays_what_follows(self, store: Backend) -> None:
        v1 = await store.create("/c/a", b"1")
        v2 = await store.update("/c/a", b"2", v1)
        v3 = await store.update("/c/a", b"3", v2)
        gone = (await store.delete("/c/a", v3)).mod_revision
        await store.compact(v2)
        events = store.watch("/c/", v2)
        try:
            update, delete = await collect(events, 2)
        finally:
            await close(events)
        assert update.prev == backend_kv("/c/a", b"2", v1, v2)
        assert delete.kv == backend_kv("/c/a", b"3", v1, gone)

    async def test_compact_to_future_revision_raises(self, store: Backend) -> None:
        rev = await store.create("/c/a", b"1")
        with pytest.raises(errors.FutureRevision):
            await store.compact(rev + 1)

    # -- concurrency ------------------------------------------------------------------------

    async def test_concurrent_writers_get_distinct_revisions(self, store: Backend) -> None:
        start = store.current_rev()
        revs = await asyncio.gather(*(store.create(f"/cc/{i}", b"x") for i in range(64)))
        assert sorted(revs) == list(range(start + 1, start + 65))
        for i, rev in enumerate(revs):
            assert (await store.get(f"/cc/{i}")).mod_revision == rev

    async def test_cas_race_has_exactly_one_winner(self, store: Backend) -> None:
        rev = await store.create("/cc/k", b"0")
        results = await asyncio.gather(
            *(store.update("/cc/k", str(i).encode(), rev) for i in range(64)),
            return_exceptions=True,
        )
        winners = [i for i, r in enumerate(results) if isinstance(r, int)]
        assert len(winners) == 1
        assert all(isinstance(r, errors.Conflict) for r in results if not isinstance(r, int))
        assert (await store.get("/cc/k")).value == str(winners[0]).encode()

    async def test_create_race_has_exactly_one_winner(self, store: Backend) -> None:
        results = await asyncio.gather(
            *(store.create("/cc/k", str(i).encode()) for i in range(64)),
            return_exceptions=True,
        )
        assert sum(isinstance(r, int) for r in results) == 1
        assert sum(isinstance(r, errors.KeyExists) for r in results) == 63


def backend_kv(key: str, value: bytes, create_rev: int, mod_rev: int) -> backend.KeyValue:
    return backend.KeyValue(key, value, create_rev, mod_rev)
