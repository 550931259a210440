"""The CRI log reader: tail across partial entries, since, timestamps, limitBytes, follow with
appends and a rotation."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from kybern.kubelet import logs
from kybern.runtime import crilog

NS = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z


def line(content: bytes, *, at: int, partial: bool = False, stream: bytes = crilog.STDOUT) -> bytes:
    return crilog.format_line(stream, content, partial=partial, ns=NS + at * 1_000_000_000)


async def read(path: Path, options: logs.LogOptions, *, running: bool = False) -> bytes:
    out = bytearray()

    async def write(data: bytes) -> None:
        out.extend(data)

    async def is_running() -> bool:
        return running

    await logs.stream(path, options, write=write, running=is_running, poll_interval=0.01)
    return bytes(out)


@pytest.fixture
def logfile(tmp_path: Path) -> Path:
    path = tmp_path / "c.log"
    path.write_bytes(
        line(b"one", at=0)
        + line(b"tw", at=1, partial=True)
        + line(b"o", at=2)
        + line(b"err", at=3, stream=crilog.STDERR)
        + line(b"four", at=4)
    )
    return path


async def test_whole_log_joins_partial_entries(logfile: Path) -> None:
    assert await read(logfile, logs.LogOptions()) == b"one\ntwo\nerr\nfour\n"


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (0, b""),
        (1, b"four\n"),
        (3, b"two\nerr\nfour\n"),  # "two" is two entries but one line
        (4, b"one\ntwo\nerr\nfour\n"),
        (100, b"one\ntwo\nerr\nfour\n"),
    ],
)
async def test_tail_counts_logical_lines(logfile: Path, tail: int, expected: bytes) -> None:
    assert await read(logfile, logs.LogOptions(tail_lines=tail)) == expected


async def test_since_skips_older_entries(logfile: Path) -> None:
    since = NS + 3 * 1_000_000_000
    assert await read(logfile, logs.LogOptions(since_ns=since)) == b"err\nfour\n"


async def test_timestamps_prefix_each_line_once(logfile: Path) -> None:
    out = await read(logfile, logs.LogOptions(timestamps=True, tail_lines=3))
    assert out.splitlines() == [
        b"2023-11-14T22:13:21Z two",
        b"2023-11-14T22:13:23Z err",
        b"2023-11-14T22:13:24Z four",
    ]


def test_timestamp_trims_trailing_zeros_like_go() -> None:
    assert logs.format_timestamp(NS + 120_000_000) == "2023-11-14T22:13:20.12Z"
    assert logs.format_timestamp(NS + 123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert logs.format_timestamp(NS) == "2023-11-14T22:13:20Z"


async def test_limit_bytes_cuts_the_output(logfile: Path) -> None:
    assert await read(logfile, logs.LogOptions(limit_bytes=6)) == b"one\ntw"


async def test_malformed_and_unfinished_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    path.write_bytes(b"garbage\n" + line(b"ok", at=0) + b"2023-11-14T22:13:20Z stdout F no-newline")
    assert await read(path, logs.LogOptions()) == b"ok\n"


async def test_follow_picks_up_appends_and_a_rotation(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    path.write_bytes(line(b"first", at=0))
    out = bytearray()
    got_line = asyncio.Event()
    running = True

    async def write(data: bytes) -> None:
        out.extend(data)
        got_line.set()

    async def is_running() -> bool:
        return running

    async def wait_for(expected: bytes) -> None:
        async with asyncio.timeout(5):
            while not out.endswith(expected):
                got_line.clear()
                await got_line.wait()

    task = asyncio.create_task(
        logs.stream(
            path, logs.LogOptions(follow=True), write=write, running=is_running, poll_interval=0.01
        )
    )
    await wait_for(b"first\n")
    with path.open("ab") as f:
        f.write(line(b"second", at=1))
    await wait_for(b"second\n")
    # Rotation: the old file gets one more line, is renamed, a new file starts.
    with path.open("ab") as f:
        f.write(line(b"last-in-old", at=2))
    os.rename(path, tmp_path / "c.log.1")
    path.write_bytes(line(b"in-new", at=3))
    await wait_for(b"in-new\n")
    running = False
    async with asyncio.timeout(5):
        await task
    assert bytes(out) == b"first\nsecond\nlast-in-old\nin-new\n"


async def test_follow_ends_when_the_container_stops(logfile: Path) -> None:
    out = await read(logfile, logs.LogOptions(follow=True, tail_lines=1), running=False)
    assert out == b"four\n"
