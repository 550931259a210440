"""hostPath volumes: a path on the node, checked against the volume's ``type``.

The checks and messages are Kubernetes' (``pkg/volume/hostpath``): ``DirectoryOrCreate`` and
``FileOrCreate`` create what is missing (0755 directory, 0644 empty file), the other types only
check; an empty type checks nothing.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from kybern.kubelet.volumes import base

PLUGIN = "kubernetes.io~host-path"

_CHECKS = {
    "Directory": (stat.S_ISDIR, "is not a directory"),
    "File": (stat.S_ISREG, "is not a file"),
    "Socket": (stat.S_ISSOCK, "is not a socket file"),
    "CharDevice": (stat.S_ISCHR, "is not a character device"),
    "BlockDevice": (stat.S_ISBLK, "is not a block device"),
}


def check_type(path: str, kind: str) -> None:
    """Create or check ``path`` per the hostPath ``type``; SourceError with Kubernetes' text."""
    if kind == "":
        return
    if kind == "DirectoryOrCreate":
        if not os.path.lexists(path):
            os.makedirs(path, mode=0o755, exist_ok=True)
            return
        kind = "Directory"
    elif kind == "FileOrCreate":
        if not os.path.lexists(path):
            _make_file(path)
            return
        kind = "File"
    if kind not in _CHECKS:
        raise base.SourceError(f"{kind} is an invalid volume type")
    test, text = _CHECKS[kind]
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = 0
    if not test(mode):
        raise base.SourceError(f"hostPath type check failed: {path} {text}")


def _make_file(path: str) -> None:
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, mode=0o755, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)


async def setup(ctx: base.Context, volume: base.Obj, target: Path) -> Path:
    source = volume.get("hostPath") or {}
    path = str(source.get("path", ""))
    await asyncio.to_thread(check_type, path, str(source.get("type") or ""))
    return Path(path)
