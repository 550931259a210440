"""The CRI container log format: what runtimes write and the kubelet reads.

Each line of a container's log file is ``<timestamp> <stream> <tag> <content>``: the
timestamp in RFC 3339 with nanoseconds (``2026-11-22T10:00:00.123456789Z``), the stream
``stdout`` or ``stderr``, the tag ``F`` for a full line or ``P`` for a partial one (a long
line split, or output without a trailing newline yet), then the bytes written. ``kubectl logs``
shows the contents joined back; ``--timestamps`` prefixes each line with its timestamp.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

STDOUT = b"stdout"
STDERR = b"stderr"
FULL = b"F"
PARTIAL = b"P"


@dataclass(frozen=True)
class Entry:
    timestamp: bytes  # as written: RFC 3339 nanoseconds, UTC
    stream: bytes  # b"stdout" or b"stderr"
    partial: bool
    content: bytes  # without the trailing newline

    @property
    def nanos(self) -> int:
        return parse_timestamp(self.timestamp)


def timestamp(ns: int | None = None) -> bytes:
    """RFC 3339 with nanoseconds in UTC, as containerd writes it."""
    ns = time.time_ns() if ns is None else ns
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)).encode() + (b".%09dZ" % frac)


def parse_timestamp(value: bytes) -> int:
    """Nanoseconds since the epoch from a timestamp written by :func:`timestamp`."""
    import calendar

    text = value.decode()
    main, _, frac = text.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
    return seconds * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])


def format_line(
    stream: bytes, content: bytes, *, partial: bool = False, ns: int | None = None
) -> bytes:
    """One log line; ``content`` must not contain a newline."""
    return b" ".join((timestamp(ns), stream, PARTIAL if partial else FULL, content)) + b"\n"


def parse_line(line: bytes) -> Entry | None:
    """The entry in one line (with or without its newline); None for a malformed line."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (STDOUT, STDERR) or parts[2] not in (FULL, PARTIAL):
        return None
    return Entry(parts[0], parts[1], parts[2] == PARTIAL, parts[3] if len(parts) > 3 else b"")
