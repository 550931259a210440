"""Termination messages: what a container leaves in ``terminationMessagePath`` (or its logs).

The kubelet gives each container attempt a host file, mounted by the runtime at the
container's ``terminationMessagePath``; when the container has exited, the file's first 4 KiB
become ``state.terminated.message``. With ``terminationMessagePolicy: FallbackToLogsOnError``
an empty file and a non-zero exit take the last 80 lines (at most 2 KiB) of the container's
log instead, as kubelet v1.32 does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from kybern.runtime import cri, crilog

Obj = dict[str, Any]
MESSAGE_MAX = 4096  # kubelet's limit per container
LOG_LINES = 80
LOG_BYTES = 2048


def message_file(pods_root: Path, uid: str, name: str, attempt: int) -> Path:
    """``<pods_root>/<uid>/containers/<name>/<attempt>-termination-log``."""
    return pods_root / uid / "containers" / name / f"{attempt}-termination-log"


def touch(path: Path) -> None:
    """Create the (empty) file before the container starts, so the runtime can mount it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


async def messages(
    pod: Obj, containers: list[cri.ContainerStatus], pods_root: Path
) -> dict[str, str]:
    """Container id -> termination message, for the pod's exited containers."""
    spec = pod.get("spec") or {}
    specs = {
        c.get("name"): c for key in ("initContainers", "containers") for c in spec.get(key) or []
    }
    uid = str((pod.get("metadata") or {}).get("uid", ""))
    out = {}
    for c in containers:
        if c.state is not cri.ContainerState.EXITED:
            continue
        path = message_file(pods_root, uid, c.metadata.name, c.metadata.attempt)
        text = await asyncio.to_thread(read, path, c, specs.get(c.metadata.name) or {})
        if text:
            out[c.id] = text
    return out


def read(path: Path, c: cri.ContainerStatus, spec: Obj) -> str:
    """The file's message, or with FallbackToLogsOnError the log's tail after a failure."""
    text = ""
    if path.is_file():
        text = path.read_bytes()[:MESSAGE_MAX].decode(errors="replace")
    policy = spec.get("terminationMessagePolicy") or "File"
    if not text and policy == "FallbackToLogsOnError" and c.exit_code != 0 and c.log_path:
        text = log_tail(Path(c.log_path))
    return text


def log_tail(path: Path, lines: int = LOG_LINES, limit: int = LOG_BYTES) -> str:
    try:
        raw = path.read_bytes()[-64 * 1024 :]
    except OSError:
        return ""
    text = b""
    for line in raw.splitlines():
        entry = crilog.parse_line(line)
        if entry is not None:
            text += entry.content + (b"" if entry.partial else b"\n")
    tail = b"\n".join(text.splitlines()[-lines:])
    return tail[-limit:].decode(errors="replace")
