"""The sqlite backend: the shared contract, then what only sqlite promises.

Grouped by behaviour: group commit, restart, compaction (incremental, windowed, background),
bounded file size under churn, slow watchers, the URL factory.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kybern import storage
from kybern.storage import compaction, errors, sqlite, watchhub
from kybern.storage import sqlite_ops as ops
from kybern.storage import sqlite_reads as reads
from kybern.storage import sqlite_schema as schema
from tests.unit.storage import contract

OpenStore = Callable[..., Awaitable[sqlite.SQLiteBackend]]


@pytest.fixture
async def open_store(tmp_path: Path) -> AsyncIterator[OpenStore]:
    """Start backends on tmp_path/state.db (options as keywords); all closed at teardown."""
    opened: list[sqlite.SQLiteBackend] = []

    async def start(**options: Any) -> sqlite.SQLiteBackend:
        options.setdefault("compact_interval", 0)
        store = sqlite.SQLiteBackend(path=tmp_path / "state.db", **options)
        await store.start()
        opened.append(store)
        return store

    yield start
    for store in opened:
        await store.close()


class TestContract(contract.BackendContract):
    @pytest.fixture
    async def store(self, open_store: OpenStore) -> sqlite.SQLiteBackend:
        return await open_store()


class TestContractWithTinyBatches(contract.BackendContract):
    """The same contract with 3-op commits and 2-revision compaction chunks."""

    @pytest.fixture
    async def store(self, open_store: OpenStore) -> sqlite.SQLiteBackend:
        return await open_store(max_batch=3, compact_batch=2)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def row_count(path: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM kv").fetchone()[0])


def page_count(path: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("PRAGMA page_count").fetchone()[0])


# -- group commit ---------------------------------------------------------------------------


async def test_group_commit_batches_concurrent_writes(open_store: OpenStore) -> None:
    store = await open_store()
    await asyncio.gather(*(store.create(f"/g/{i}", b"x") for i in range(200)))
    assert store.stats.ops == 200
    assert store.stats.commits < 200 // 4
    assert store.stats.largest_batch > 1


async def test_max_batch_caps_a_commit(open_store: OpenStore) -> None:
    store = await open_store(max_batch=8)
    await asyncio.gather(*(store.create(f"/g/{i}", b"x") for i in range(100)))
    assert store.stats.largest_batch <= 8
    assert store.stats.commits >= 100 // 8


async def test_operations_in_one_batch_see_each_other(open_store: OpenStore) -> None:
    store = await open_store()
    first, deleted, second, updated = await asyncio.gather(
        store.create("/g/k", b"1"),
        store.delete("/g/k"),
        store.create("/g/k", b"2"),
        store.update("/g/k", b"3", store.current_rev() + 3),
    )
    assert [first, deleted.mod_revision, second, updated] == [1, 2, 3, 4]
    assert await store.get("/g/k") == storage.KeyValue("/g/k", b"3", 3, 4)


def test_cas_checks_see_uncommitted_rows_of_the_same_transaction(tmp_path: Path) -> None:
    conn = schema.open_writer(str(tmp_path / "state.db"))
    batch = ops.Batch(conn, rev=0)
    conn.execute("BEGIN IMMEDIATE")
    assert ops.create(batch, "/k", b"1") == 1
    with pytest.raises(errors.KeyExists):
        ops.create(batch, "/k", b"again")
    assert ops.update(batch, "/k", b"2", 1) == 2
    with pytest.raises(errors.Conflict):
        ops.update(batch, "/k", b"3", 1)
    assert ops.delete(batch, "/k", 2).mod_revision == 3
    assert ops.create(batch, "/k", b"4") == 4
    conn.execute("COMMIT")
    assert [e.type.value for e in batch.events] == ["CREATE", "UPDATE", "DELETE", "CREATE"]
    assert schema.load_state(conn).current_rev == 4
    conn.close()


# -- restart --------------------------------------------------------------------------------


async def test_data_survives_reopen(open_store: OpenStore) -> None:
    store = await open_store()
    a = await store.create("/d/a", b"1")
    a2 = await store.update("/d/a", b"2", a)
    b = await store.create("/d/b", b"1")
    await store.delete("/d/b", b)
    await store.close()
    store = await open_store()
    assert store.current_rev() == 4
    assert await store.get("/d/a") == storage.KeyValue("/d/a", b"2", a, a2)
    assert await store.get("/d/a", a) == storage.KeyValue("/d/a", b"1", a, a)
    with pytest.raises(errors.NotFound):
        await store.get("/d/b")


async def test_revision_never_reused_after_compacting_the_newest_rows(
    open_store: OpenStore,
) -> None:
    store = await open_store()
    await store.create("/d/a", b"1")
    b = await store.create("/d/b", b"1")
    gone = (await store.delete("/d/b", b)).mod_revision
    await store.compact(gone)  # removes the tombstone: the highest row id is now 1
    await store.close()
    with contextlib.closing(sqlite3.connect(store.path)) as conn:
        assert conn.execute("SELECT MAX(id) FROM kv").fetchone()[0] == 1
    store = await open_store()
    assert store.current_rev() == gone
    assert store.compacted_rev() == gone
    assert await store.create("/d/c", b"1") == gone + 1
    with pytest.raises(errors.Compacted):
        await store.get("/d/a", gone - 1)


async def test_start_creates_parent_directories_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "state.db"
    async with sqlite.SQLiteBackend(path=path, compact_interval=0) as store:
        await store.create("/k", b"v")
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental


async def test_use_after_close_raises(open_store: OpenStore) -> None:
    store = await open_store()
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await store.create("/k", b"v")


# -- compaction -----------------------------------------------------------------------------


async def test_incremental_compaction_keeps_exactly_the_latest_live_rows(
    open_store: OpenStore,
) -> None:
    store = await open_store(compact_batch=7)
    revs = {f"/c/{i:02}": await store.create(f"/c/{i:02}", b"0") for i in range(40)}
    for round_ in range(1, 5):
        for key, rev in revs.items():
            revs[key] = await store.update(key, str(round_).encode(), rev)
    for key in list(revs)[:10]:
        await store.delete(key, revs.pop(key))
    commits = store.stats.commits
    await store.compact(store.current_rev())
    assert store.stats.commits - commits >= store.current_rev() // 7  # one chunk per commit
    assert row_count(store.path) == 30
    result = await store.list("/c/")
    assert [(kv.key, kv.value, kv.mod_revision) for kv in result.kvs] == [
        (key, b"4", rev) for key, rev in sorted(revs.items())
    ]


async def test_compaction_interleaved_with_writes_keeps_reads_at_its_revision(
    open_store: OpenStore,
) -> None:
    store = await open_store(compact_batch=5)
    revs = {f"/c/{i}": await store.create(f"/c/{i}", b"0") for i in range(20)}
    for key, rev in revs.items():
        revs[key] = await store.update(key, b"1", rev)
    target = store.current_rev()
    before = await store.list("/c/", target)

    async def churn() -> None:
        for round_ in range(2, 12):
            for key, rev in revs.items():
                revs[key] = await store.update(key, str(round_).encode(), rev)

    await asyncio.gather(store.compact(target), churn())
    assert store.compacted_rev() == target
    assert await store.list("/c/", target) == before
    assert all(kv.value == b"11" for kv in (await store.list("/c/")).kvs)


async def test_history_window_needs_both_age_and_distance(open_store: OpenStore) -> None:
    clock = FakeClock()
    store = await open_store(clock=clock, history_window_seconds=300, history_window_revisions=10)
    for i in range(50):
        await store.create(f"/h/{i}", b"x")
    assert await store.compact_history() == 0  # far enough behind, but not old enough
    clock.now += 301
    assert await store.compact_history() == 40  # now old enough: keep the last 10
    for i in range(50, 100):
        await store.create(f"/h/{i}", b"x")
    clock.now += 100
    assert await store.compact_history() == 50  # revisions 51-100 are only 100 s old
    clock.now += 201
    assert await store.compact_history() == 90


async def test_background_compaction_starts_after_enough_writes(open_store: OpenStore) -> None:
    store = await open_store(
        compact_interval=3600,
        compact_every_writes=50,
        history_window_seconds=0,
        history_window_revisions=20,
    )
    for i in range(120):
        await store.create(f"/b/{i}", b"x")
    await contract.wait_until(lambda: store.compacted_rev() >= 50)
    assert store.compacted_rows == 0  # creates supersede nothing: every row stays
    assert row_count(store.path) == 120


def test_revision_clock_maps_time_to_committed_revisions() -> None:
    clock = compaction.RevisionClock(granularity=1.0)
    for now, rev in [(10.0, 5), (10.5, 8), (11.0, 12), (11.2, 13), (20.0, 30)]:
        clock.note(now, rev)
    assert clock.committed_by(9.9) == 0
    assert clock.committed_by(10.7) == 8
    assert clock.committed_by(11.1) == 12
    assert clock.committed_by(11.5) == 13
    assert clock.committed_by(25.0) == 30


async def test_snapshot_checks_the_persisted_compact_revision(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    writer = schema.open_writer(path)
    writer.execute(schema.WRITE_COMPACT_REV, (schema.COMPACT_REV_KEY, 7))
    reader = schema.open_reader(path)
    with pytest.raises(errors.Compacted):
        reads.get_at(reader, "/k", 6)
    with pytest.raises(errors.NotFound):
        reads.get_at(reader, "/k", 7)
    reader.close()
    writer.close()


# -- file size under churn ------------------------------------------------------------------


async def test_file_stays_bounded_under_update_churn(open_store: OpenStore) -> None:
    store = await open_store(
        history_window_seconds=0, history_window_revisions=1000, compact_every_writes=1000
    )
    revs = {f"/lease/{i:03}": await store.create(f"/lease/{i:03}", b"x" * 200) for i in range(100)}

    async def churn(key: str, times: int) -> None:
        for _ in range(times):
            revs[key] = await store.update(key, b"y" * 200, revs[key])

    sizes = []
    for _ in range(2):  # 2 x 10,000 updates
        await asyncio.gather(*(churn(key, 100) for key in revs))
        await store.compact_history()
        sizes.append(sum(store.file_sizes()))
    assert row_count(store.path) <= 1000 + 100
    assert sizes[1] <= sizes[0] * 1.2, sizes
    assert store.file_sizes()[1] <= schema.JOURNAL_SIZE_LIMIT


async def test_compaction_gives_space_back_after_mass_delete(open_store: OpenStore) -> None:
    store = await open_store(compact_batch=500)
    await asyncio.gather(*(store.create(f"/m/{i}", b"z" * 2000) for i in range(1000)))
    await asyncio.gather(*(store.delete(f"/m/{i}") for i in range(1000)))
    full = page_count(store.path)
    await store.compact(store.current_rev())
    assert row_count(store.path) == 0
    assert page_count(store.path) < full / 2  # a quarter stays free for reuse
    db_bytes, wal_bytes = store.file_sizes()  # the WAL was checkpointed and truncated too
    assert db_bytes + wal_bytes < full * 4096 / 2


# -- watchers -------------------------------------------------------------------------------


async def test_slow_watcher_is_cut_off_without_blocking_writers(open_store: OpenStore) -> None:
    store = await open_store(watch_queue_limit=10)
    events = store.watch("/s/", 0)
    try:
        first = asyncio.ensure_future(anext(events))
        await store.create("/s/0", b"x")
        assert (await first).kv.key == "/s/0"
        for i in range(1, 50):  # the watcher reads nothing meanwhile
            await store.create(f"/s/{i}", b"x")
        with pytest.raises(watchhub.WatchTooSlow) as caught:
            await contract.collect(events, 50)
        assert isinstance(caught.value, errors.Compacted)
        assert "re-list" in str(caught.value)
    finally:
        await contract.close(events)


async def test_watch_reads_long_history_in_pages(
    open_store: OpenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "HISTORY_PAGE", 7)
    store = await open_store()
    for i in range(60):
        await store.create(f"/p/{i}" if i % 3 else f"/other/{i}", b"x")
    events = store.watch("/p/", 0)
    try:
        got = await contract.collect(events, 40)
    finally:
        await contract.close(events)
    assert contract.revisions(got) == [i + 1 for i in range(60) if i % 3]


async def test_closed_watchers_are_forgotten(open_store: OpenStore) -> None:
    store = await open_store()
    events = store.watch("/w/", 0)
    pending = asyncio.ensure_future(anext(events))
    await store.create("/w/a", b"x")
    await pending
    await contract.close(events)
    assert len(store._running().hub) == 0


# -- helpers and factory --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("", ("", None)),
        ("/a/", ("/a/", "/a0")),
        ("\U0010ffff", ("\U0010ffff", None)),
        ("a\U0010ffff", ("a\U0010ffff", "b")),
        ("\ud7ff", ("\ud7ff", "\ue000")),
    ],
)
def test_prefix_range(prefix: str, expected: tuple[str, str | None]) -> None:
    assert reads.prefix_range(prefix) == expected


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/lib/kybern/state.db", "/var/lib/kybern/state.db"),
        ("sqlite://data/state.db", "data/state.db"),
        ("/tmp/state.db", "/tmp/state.db"),
        (Path("rel/state.db"), "rel/state.db"),
    ],
)
def test_open_backend_accepts_sqlite_urls_and_paths(url: str | Path, path: str) -> None:
    store = storage.open_backend(url, compact_interval=5)
    assert isinstance(store, storage.SQLiteBackend)
    assert store.path == path


@pytest.mark.parametrize("url", ["etcd://127.0.0.1:2379", "sqlite://"])
def test_open_backend_rejects_other_urls(url: str) -> None:
    with pytest.raises(ValueError, match=r"scheme|path"):
        storage.open_backend(url)


async def test_a_second_store_on_the_same_file_is_refused(open_store: OpenStore) -> None:
    store = await open_store()
    await store.create("/k", b"v")
    with pytest.raises(RuntimeError, match="already open"):
        await open_store()
    await store.close()
    again = await open_store()  # the lock goes with the store that held it
    assert again.current_rev() == 1
