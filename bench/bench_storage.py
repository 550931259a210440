"""Benchmark of the sqlite storage backend: write throughput, file size under churn, watch latency.

Run: ``python bench/bench_storage.py`` (``--scale 0.1`` for a quick look, ``--no-write`` to
leave bench/RESULTS.md alone). Prints markdown tables and replaces the
"## Storage (sqlite backend)" section of bench/RESULTS.md (other sections are kept).

Scenarios, each on a fresh database in a temporary directory:

- create: N creates of distinct keys from 1, 16 and 64 concurrent writers; throughput and
  per-call latency (submit -> durable acknowledgement).
- churn: 100 keys updated 2,000 times each (200,000 updates, like node leases) with background
  compaction running; database and -wal sizes as it goes. With a revisions-only window
  (10,000), with the default window (keep 5 minutes AND 10,000 revisions) on the real clock,
  and with the default window on a simulated clock that spreads the run over 10 minutes.
- watch: time from submitting a create to a watcher receiving its event, with 1 and 100
  watchers.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib.metadata
import os
import platform
import shlex
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kybern.storage import sqlite

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADING = "## Storage (sqlite backend)"
VALUE = b"v" * 300  # about the size of a small serialized object


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


async def with_store(
    workdir: Path, name: str, body: Callable[[sqlite.SQLiteBackend], Awaitable[Any]], **opts: Any
) -> Any:
    store = sqlite.SQLiteBackend(path=workdir / name / "state.db", **opts)
    await store.start()
    try:
        return await body(store)
    finally:
        await store.close()


# -- create throughput ----------------------------------------------------------------------


async def create_run(store: sqlite.SQLiteBackend, writers: int, total: int) -> dict[str, Any]:
    latencies: list[float] = []

    async def writer(w: int) -> None:
        for i in range(total // writers):
            t0 = time.perf_counter()
            await store.create(f"/bench/{w}/{i}", VALUE)
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    wall = time.perf_counter() - start
    latencies.sort()
    stats = store.stats
    return {
        "writers": writers,
        "ops": len(latencies),
        "ops/s": f"{len(latencies) / wall:,.0f}",
        "p50 ms": ms(percentile(latencies, 0.50)),
        "p99 ms": ms(percentile(latencies, 0.99)),
        "commits": stats.commits,
        "ops/commit": f"{stats.ops / stats.commits:.1f}",
    }


async def bench_create(workdir: Path, scale: float) -> list[dict[str, Any]]:
    rows = []
    for writers, total in ((1, 5_000), (16, 40_000), (64, 64_000)):
        n = max(writers, int(total * scale))
        rows.append(
            await with_store(
                workdir,
                f"create{writers}",
                functools.partial(create_run, writers=writers, total=n),
                compact_interval=0,
            )
        )
    return rows


# -- churn: file size -----------------------------------------------------------------------


def row_count(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM kv").fetchone()[0])
    finally:
        conn.close()


class SimulatedClock:
    """Time that advances only when told: replays a long run in a few seconds."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def churn_run(
    store: sqlite.SQLiteBackend,
    keys: int,
    updates: int,
    samples: int,
    clock: SimulatedClock | None = None,
    seconds_per_sample: float = 0.0,
) -> list[dict[str, Any]]:
    revs = {f"/leases/{i:03}": await store.create(f"/leases/{i:03}", VALUE) for i in range(keys)}
    latencies: list[float] = []
    rows = [size_row(store, 0, 0.0, [])]

    async def churn(key: str, times: int) -> None:
        for _ in range(times):
            t0 = time.perf_counter()
            revs[key] = await store.update(key, VALUE, revs[key])
            latencies.append(time.perf_counter() - t0)

    per_sample = updates // samples // keys
    start = time.perf_counter()
    for n in range(1, samples + 1):
        latencies.clear()
        await asyncio.gather(*(churn(key, per_sample) for key in revs))
        if clock is not None:
            clock.now += seconds_per_sample
            await store.compact_history()  # what the 1 s timer would have done by then
        rows.append(size_row(store, n * per_sample * keys, time.perf_counter() - start, latencies))
    return rows


def size_row(
    store: sqlite.SQLiteBackend, updates: int, elapsed: float, latencies: list[float]
) -> dict[str, Any]:
    db, wal = store.file_sizes()
    latencies = sorted(latencies)
    return {
        "updates": f"{updates:,}",
        "elapsed s": f"{elapsed:.1f}",
        "db MiB": mib(db),
        "wal MiB": mib(wal),
        "rows": f"{row_count(store.path):,}",
        "compacted_rev": f"{store.compacted_rev():,}",
        "p99 ms": ms(percentile(latencies, 0.99)) if latencies else "-",
        "max ms": ms(latencies[-1]) if latencies else "-",
    }


async def bench_churn(workdir: Path, scale: float) -> dict[str, list[dict[str, Any]]]:
    updates = max(10_000, int(200_000 * scale))
    clock = SimulatedClock()
    runs: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "revisions-only window (history_window_seconds=0, 10,000 revisions), real clock": (
            {"history_window_seconds": 0},
            {},
        ),
        "default window (300 s AND 10,000 revisions), real clock: nothing is 5 minutes old": (
            {},
            {},
        ),
        "default window, simulated clock: each 10% slice counts as 60 s (updates spread over "
        "10 minutes)": ({"clock": clock}, {"clock": clock, "seconds_per_sample": 60.0}),
    }
    out = {}
    for i, (label, (opts, run_opts)) in enumerate(runs.items()):
        out[label] = await with_store(
            workdir,
            f"churn{i}",
            functools.partial(churn_run, keys=100, updates=updates, samples=10, **run_opts),
            compact_interval=1.0,
            **opts,
        )
    return out


# -- watch latency --------------------------------------------------------------------------


async def watch_run(
    store: sqlite.SQLiteBackend, watchers: int, writers: int, total: int
) -> dict[str, Any]:
    submitted: dict[str, float] = {}
    latencies: list[float] = []
    start_rev = store.current_rev()
    per_watcher = total // writers * writers

    async def watch(record: bool) -> None:
        seen = 0
        async for event in store.watch("/watch/", start_rev):
            if record:
                latencies.append(time.perf_counter() - submitted[event.kv.key])
            seen += 1
            if seen == per_watcher:
                return

    async def writer(w: int) -> None:
        for i in range(total // writers):
            key = f"/watch/{w}/{i}"
            submitted[key] = time.perf_counter()
            await store.create(key, VALUE)

    tasks = [asyncio.create_task(watch(record=n == 0)) for n in range(watchers)]
    await asyncio.sleep(0.05)  # let every watcher register before the first write
    await asyncio.gather(*(writer(w) for w in range(writers)))
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    latencies.sort()
    return {
        "watchers": watchers,
        "writers": writers,
        "events": len(latencies),
        "p50 ms": ms(percentile(latencies, 0.50)),
        "p99 ms": ms(percentile(latencies, 0.99)),
        "max ms": ms(latencies[-1]),
    }


async def bench_watch(workdir: Path, scale: float) -> list[dict[str, Any]]:
    rows = []
    for watchers, writers, total in ((1, 1, 3_000), (1, 16, 20_000), (100, 16, 20_000)):
        n = max(writers, int(total * scale))
        rows.append(
            await with_store(
                workdir,
                f"watch{watchers}-{writers}",
                functools.partial(watch_run, watchers=watchers, writers=writers, total=n),
                compact_interval=0,
            )
        )
    return rows


# -- report ---------------------------------------------------------------------------------


def table(rows: list[dict[str, Any]]) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(row[h]) for h in head) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"nproc {os.cpu_count()}, {model}, Linux {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


def report(results: dict[str, Any], command: str, loop_name: str, workdir: Path) -> str:
    parts = [
        HEADING,
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}  ",
        f"Event loop: {loop_name}; database in {workdir} (same disk as the repo); "
        f"run {time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        "Creates (distinct keys, 300-byte values, synchronous=FULL; latency = submit to "
        "durable acknowledgement):",
        "",
        table(results["create"]),
        "",
        "Update churn: 100 keys x N updates, background compaction every 1 s or 10,000 writes, "
        "sampled every 10% (p99/max = update latency in that slice):",
    ]
    for label, rows in results["churn"].items():
        parts += ["", f"*{label}*", "", table(rows)]
    parts += [
        "",
        "Watch delivery (submit of a create -> event received by the first watcher):",
        "",
        table(results["watch"]),
        "",
        "Reading the tables: ops/commit is the group-commit batch size (one fsync each). Under "
        "churn the file is bounded by the history window: with the revisions-only window it "
        "stays flat; with the default window it grows until the oldest revisions are 5 "
        "minutes old, then stays flat (simulated clock run). The -wal file is truncated after "
        "each compaction run and otherwise capped by journal_size_limit (16 MiB).",
        "",
    ]
    return "\n".join(parts)


def write_section(section: str) -> None:
    """Replace our section of RESULTS.md (or append it), keeping every other section."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    start = text.find(HEADING)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(HEADING))
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    RESULTS.write_text(text.rstrip("\n") + "\n")


async def run_all(workdir: Path, scale: float) -> dict[str, Any]:
    return {
        "create": await bench_create(workdir, scale),
        "churn": await bench_churn(workdir, scale),
        "watch": await bench_watch(workdir, scale),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply operation counts")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the databases")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()
    command = shlex.join(["python", "bench/bench_storage.py", *sys.argv[1:]])
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="kybern-bench-") as tmp:
        workdir = Path(tmp)
        try:
            import uvloop

            loop_name = f"uvloop {importlib.metadata.version('uvloop')}"
            results = uvloop.run(run_all(workdir, args.scale))
        except ImportError:
            loop_name = "asyncio"
            results = asyncio.run(run_all(workdir, args.scale))
        section = report(results, command, loop_name, workdir.parent)
    print(section)
    if not args.no_write:
        write_section(section)
        print(f"(written to {RESULTS})")


if __name__ == "__main__":
    main()
