"""Reading a container's CRI log file the way ``kubectl logs`` shows it.

The runtime writes one CRI entry per line (:mod:`kybern.runtime.crilog`); this module turns
them back into the container's output: partial entries (``P``) joined with what follows up to
the next full entry (``F``), ``tailLines`` counted in those logical lines, ``sinceSeconds``/
``sinceTime`` compared with each entry's timestamp, ``timestamps`` prefixing each line with
the time Kubernetes prints (RFC 3339 with trailing zeros of the fraction trimmed, as Go's
RFC3339Nano), ``limitBytes`` cutting the output, and ``follow`` waiting for more.

Following polls the file (every ``poll_interval`` seconds) instead of using inotify: it is
portable, and the log file's owner is another process. A rotation (the runtime renames the
file and starts a new one) is noticed when the path names another inode or a shorter file;
the reader finishes the old file first, then continues at the start of the new one. Following
ends when the container no longer runs and the file has nothing more to give.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kybern.runtime import crilog

Write = Callable[[bytes], Awaitable[None]]
Running = Callable[[], Awaitable[bool]]
CHUNK = 64 * 1024


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    tail_lines: int | None = None  # None: all lines
    since_ns: int | None = None  # entries older than this are skipped
    timestamps: bool = False
    limit_bytes: int | None = None


def format_timestamp(ns: int) -> str:
    """Go's RFC3339Nano in UTC: the fraction without trailing zeros (none at all when zero)."""
    text = crilog.timestamp(ns).decode()
    main, _, frac = text[:-1].partition(".")
    frac = frac.rstrip("0")
    return f"{main}.{frac}Z" if frac else f"{main}Z"


class _Renderer:
    """Entries to output bytes: timestamps at line starts, the byte limit, the since filter."""

    def __init__(self, options: LogOptions, write: Write) -> None:
        self.options = options
        self.write = write
        self.at_line_start = True
        self.remaining = options.limit_bytes

    @property
    def done(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    async def entry(self, entry: crilog.Entry) -> None:
        nanos = entry.nanos
        if self.options.since_ns is not None and nanos < self.options.since_ns:
            return
        out = b""
        if self.options.timestamps and self.at_line_start:
            out = format_timestamp(nanos).encode() + b" "
        out += entry.content if entry.partial else entry.content + b"\n"
        self.at_line_start = not entry.partial
        await self._emit(out)

    async def _emit(self, data: bytes) -> None:
        if self.remaining is not None:
            if self.remaining <= 0:
                return
            data = data[: self.remaining]
            self.remaining -= len(data)
        if data:
            await self.write(data)


def parse_entries(data: bytes) -> tuple[list[crilog.Entry], bytes]:
    """The complete entries in ``data`` and the unfinished last line (no newline yet)."""
    lines = data.split(b"\n")
    rest = lines.pop()
    entries = [e for e in (crilog.parse_line(line) for line in lines if line) if e is not None]
    return entries, rest


def tail(entries: list[crilog.Entry], lines: int | None) -> list[crilog.Entry]:
    """The entries of the last ``lines`` logical lines (a run of partials ends with a full one)."""
    if lines is None:
        return entries
    if lines <= 0:
        return []
    starts = [0] + [i + 1 for i, e in enumerate(entries[:-1]) if not e.partial]
    return entries[starts[-lines] :] if lines < len(starts) else entries


def _read_all(handle: BinaryIO) -> bytes:
    return handle.read()


def _read_chunk(handle: BinaryIO) -> bytes:
    return handle.read(CHUNK)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


async def _rotated(path: Path, handle: BinaryIO) -> bool:
    """True when ``path`` now names another file than the open ``handle`` (or a truncated one)."""
    st = await asyncio.to_thread(os.fstat, handle.fileno())
    now = await asyncio.to_thread(_identity, path)
    if now is None:
        return False  # between the rename and the new file: keep the old one for now
    if now != (st.st_dev, st.st_ino):
        return True
    size = (await asyncio.to_thread(os.stat, path)).st_size
    return size < handle.tell()


async def stream(
    path: Path,
    options: LogOptions,
    *,
    write: Write,
    running: Running,
    poll_interval: float = 0.1,
) -> None:
    """Write the log at ``path`` per ``options``; with follow, until the container stops."""
    renderer = _Renderer(options, write)
    cursor = _Cursor(await asyncio.to_thread(open, path, "rb"))
    try:
        entries, cursor.rest = parse_entries(await asyncio.to_thread(_read_all, cursor.handle))
        for entry in tail(entries, options.tail_lines):
            await renderer.entry(entry)
            if renderer.done:
                return
        if options.follow:
            await _follow(path, cursor, renderer, running, poll_interval)
    finally:
        cursor.handle.close()


@dataclass
class _Cursor:
    """The open log file (it changes on rotation) and its unfinished last line."""

    handle: BinaryIO
    rest: bytes = b""


async def _follow(
    path: Path, cursor: _Cursor, renderer: _Renderer, running: Running, poll_interval: float
) -> None:
    while not renderer.done:
        chunk = await asyncio.to_thread(_read_chunk, cursor.handle)
        if chunk:
            entries, cursor.rest = parse_entries(cursor.rest + chunk)
            for entry in entries:
                await renderer.entry(entry)
            continue
        if await _rotated(path, cursor.handle):
            # The writer moved on: what it wrote to the old file since our last read comes first.
            chunk = await asyncio.to_thread(_read_all, cursor.handle)
            for entry in parse_entries(cursor.rest + chunk + b"\n")[0]:
                await renderer.entry(entry)
            cursor.handle.close()
            cursor.handle = await asyncio.to_thread(open, path, "rb")
            cursor.rest = b""
            continue
        if not await running():
            # One last look: the container may have written just before it exited.
            chunk = await asyncio.to_thread(_read_all, cursor.handle)
            for entry in parse_entries(cursor.rest + chunk + b"\n")[0]:
                await renderer.entry(entry)
            return
        await asyncio.sleep(poll_interval)
