"""An acknowledged write survives kill -9 of the process that made it.

A child process runs the sqlite backend with concurrent writers (creates, then CAS updates
of its own keys) and prints one line per acknowledged write. We SIGKILL it mid-run, reopen
the database and check every acknowledged write is there: the stored value is the
acknowledged one, or the single write after it that may have committed without its
acknowledgement being printed. Nothing else may appear, and revisions never go backwards.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from kybern.storage import errors, sqlite

# Child: argv = db path, key namespace. Prints "<key> <n> <rev>" after each acknowledged write.
WRITER_SCRIPT = """
import asyncio, sys
from kybern.storage import sqlite

async def writer(store, keys):
    revs = {}
    n = 0
    while True:
        for key in keys:
            if key in revs:
                revs[key] = await store.update(key, str(n).encode(), revs[key])
            else:
                revs[key] = await store.create(key, str(n).encode())
            print(key, n, revs[key], flush=True)
        n += 1

async def main(path, space):
    store = sqlite.SQLiteBackend(path=path)
    await store.start()
    keys = [[f"/{space}/{w}/{i}" for i in range(4)] for w in range(16)]
    await asyncio.gather(*(writer(store, ks) for ks in keys))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""

ACKS_BEFORE_KILL = 2000


@dataclass(frozen=True)
class Ack:
    key: str
    n: int
    rev: int


async def run_and_kill(path: Path, space: str) -> list[Ack]:
    """Run the writer child until it acknowledged enough writes, SIGKILL it, return the acks."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER_SCRIPT, str(path), space,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert child.stdout is not None
    assert child.stderr is not None
    lines: list[bytes] = []
    try:
        async with asyncio.timeout(60):
            while len(lines) < ACKS_BEFORE_KILL:
                line = await child.stdout.readline()
                if not line:
                    pytest.fail(f"writer died: {(await child.stderr.read()).decode()}")
                lines.append(line)
    finally:
        child.kill()  # SIGKILL: no atexit, no close(), no final checkpoint
        lines += (await child.stdout.read()).splitlines(keepends=True)
        await child.wait()
    assert child.returncode == -9
    return [_parse(line) for line in lines if line.endswith(b"\n")]


def _parse(line: bytes) -> Ack:
    key, n, rev = line.decode().split()
    return Ack(key, int(n), int(rev))


def latest_acks(acks: list[Ack]) -> dict[str, Ack]:
    latest: dict[str, Ack] = {}
    for ack in acks:
        seen = latest.get(ack.key)
        assert seen is None or (ack.n > seen.n and ack.rev > seen.rev)
        latest[ack.key] = ack
    return latest


async def check_survivors(store: sqlite.SQLiteBackend, space: str, acks: list[Ack]) -> None:
    assert len({a.rev for a in acks}) == len(acks), "two acknowledged writes share a revision"
    assert store.current_rev() >= max(a.rev for a in acks)
    latest = latest_acks(acks)
    for key, ack in latest.items():
        kv = await store.get(key)
        stored = int(kv.value)
        assert stored in (ack.n, ack.n + 1), (key, ack, kv)
        if stored == ack.n:
            assert kv.mod_revision == ack.rev
        else:
            assert kv.mod_revision > ack.rev
    for kv in (await store.list(f"/{space}/")).kvs:
        if kv.key not in latest:  # created, but the acknowledgement never got printed
            assert kv.value == b"0"


async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = await run_and_kill(path, "one")
    async with sqlite.SQLiteBackend(path=path, compact_interval=0) as store:
        await check_survivors(store, "one", first)
        after_crash = store.current_rev()
    second = await run_and_kill(path, "two")  # a crash after recovering from a crash
    assert min(a.rev for a in second) > after_crash
    async with sqlite.SQLiteBackend(path=path, compact_interval=0) as store:
        await check_survivors(store, "one", first)
        await check_survivors(store, "two", second)
        top = store.current_rev()
        assert await store.create("/after/crash", b"x") == top + 1
        with pytest.raises(errors.KeyExists):
            await store.create(first[0].key, b"again")
