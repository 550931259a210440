"""What /proc tells the process runtime: process identity across pid reuse, and usage.

A pid alone does not identify a process once it may have exited (pids are reused), so the
runtime keeps the pid together with its start time (field 22 of ``/proc/<pid>/stat``, clock
ticks since boot). Container stats sum over the container's process group: every process the
container started, unless it left the group on purpose (``setsid``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[bytes] | None:
    """Fields after the command name: index 0 is field 3 (state)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_ticks(pid: int) -> str:
    fields = _stat_fields(pid)
    return fields[19].decode() if fields else ""


def alive(pid: int, ticks: str) -> bool:
    """Whether the process that had ``ticks`` as start time still runs (zombies do not count)."""
    fields = _stat_fields(pid)
    if not fields or fields[0] == b"Z":
        return False
    return not ticks or fields[19].decode() == ticks


@dataclass(frozen=True)
class Usage:
    cpu_ns: int = 0
    rss_bytes: int = 0


def group_usage(pgid: int) -> Usage:
    """CPU time (user+system) and resident memory summed over a process group."""
    cpu = rss = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if not fields or int(fields[2]) != pgid:
            continue
        cpu += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        rss += int(fields[21])  # rss pages (field 24)
    return Usage(cpu_ns=cpu * 1_000_000_000 // TICKS, rss_bytes=rss * PAGE)
