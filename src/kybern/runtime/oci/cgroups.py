"""Where a container's cgroup lives, and what it tells us: usage, OOM kills, cleanup.

runc creates the container's cgroup from the spec's ``cgroupsPath`` (``/<pod parent>/<id>``,
relative to the root of each hierarchy); this module reads it back. Both layouts are handled:

- cgroup v1 (one hierarchy per controller under ``/sys/fs/cgroup/<controller>``; a hybrid host
  may also mount a cgroup2 tree at ``/sys/fs/cgroup/unified``, which we ignore): CPU time from
  ``cpuacct.usage``, memory from ``memory.usage_in_bytes`` minus ``total_inactive_file`` (the
  kubelet's working set), OOM kills from ``memory.oom_control``'s ``oom_kill``;
- cgroup v2 (one tree): ``cpu.stat`` ``usage_usec``, ``memory.current`` minus
  ``inactive_file`` from ``memory.stat``, ``memory.events`` ``oom_kill``.

Pod cgroups (the parent) are not made by runc's delete: :func:`remove` clears them.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


def is_v2(root: Path = ROOT) -> bool:
    return (root / "cgroup.controllers").exists()


def pod_parent(cgroup_parent: str, pod_uid: str) -> str:
    """The pod's cgroup: the kubelet's ``kubepods/<qos>/pod<uid>`` when given, else kybern's."""
    parent = cgroup_parent.strip("/") or f"kybern/pod{pod_uid}"
    return "/" + parent


def container_path(parent: str, container_id: str) -> str:
    return f"{parent.rstrip('/')}/{container_id}"


def _dir(controller: str, path: str, root: Path) -> Path:
    rel = path.lstrip("/")
    return root / rel if is_v2(root) else root / controller / rel


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _keyed(text: str) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            values[key] = int(value)
    return values


def oom_file(path: str, root: Path = ROOT) -> Path:
    """The file with an ``oom_kill N`` line for the cgroup ``path``."""
    if is_v2(root):
        return root / path.lstrip("/") / "memory.events"
    return root / "memory" / path.lstrip("/") / "memory.oom_control"


def oom_kills(path: str, root: Path = ROOT) -> int:
    return _keyed(_read(oom_file(path, root))).get("oom_kill", 0)


@dataclass(frozen=True)
class Usage:
    cpu_ns: int = 0
    working_set: int = 0
    rss: int = 0


def usage(path: str, root: Path = ROOT) -> Usage:
    if is_v2(root):
        base = root / path.lstrip("/")
        cpu = _keyed(_read(base / "cpu.stat")).get("usage_usec", 0) * 1000
        current = int(_read(base / "memory.current") or 0)
        stat = _keyed(_read(base / "memory.stat"))
        inactive, rss = stat.get("inactive_file", 0), stat.get("anon", 0)
    else:
        cpu = int(_read(_dir("cpuacct", path, root) / "cpuacct.usage") or 0)
        memory = _dir("memory", path, root)
        current = int(_read(memory / "memory.usage_in_bytes") or 0)
        stat = _keyed(_read(memory / "memory.stat"))
        inactive, rss = stat.get("total_inactive_file", 0), stat.get("total_rss", 0)
    return Usage(cpu_ns=cpu, working_set=max(current - inactive, 0), rss=rss)


def directories(path: str, root: Path = ROOT) -> list[Path]:
    """Every directory of cgroup ``path`` that exists (one per v1 hierarchy, or the v2 one)."""
    if is_v2(root):
        candidates = [root / path.lstrip("/")]
    else:
        candidates = [
            h / path.lstrip("/")
            for h in sorted(root.iterdir())
            if h.is_dir() and not h.is_symlink()  # incl. a hybrid host's cgroup2 "unified"
        ]
    return [c for c in candidates if c.is_dir()]


def remove(path: str, root: Path = ROOT) -> None:
    """rmdir the cgroup ``path`` everywhere (children first); a busy one is left alone."""
    for directory in directories(path, root):
        for sub, _, _ in os.walk(directory, topdown=False):  # children first
            with contextlib.suppress(OSError):
                os.rmdir(sub)
