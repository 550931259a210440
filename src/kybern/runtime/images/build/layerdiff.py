"""A RUN step's changes as an OCI layer: the container's overlay upper directory, converted.

overlayfs records a deletion as a character device 0/0 and a directory replaced wholesale as
the ``trusted.overlay.opaque=y`` xattr; OCI layers say ``.wh.<name>`` and ``.wh..wh..opq``.
Everything else in the upper directory (new and copied-up files, directories whose children
changed) goes into the tar with its mode, owner, times, xattrs (minus overlay's own
``trusted.overlay.*``) and hard links. The tar is deterministic for a given tree: sorted names.

``Markers`` decides what a whiteout or an opaque directory is, so the conversion can be tested
without root (tests pass markers that recognise ordinary files).
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from kybern.runtime.images import unpack


def _overlay_whiteout(_path: Path, st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _overlay_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, unpack.OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


@dataclass(frozen=True)
class Markers:
    whiteout: Callable[[Path, os.stat_result], bool] = _overlay_whiteout
    opaque: Callable[[Path], bool] = _overlay_opaque


OVERLAY = Markers()


def write(
    upper: Path, out: IO[bytes], *, markers: Markers = OVERLAY, skip: frozenset[str] = frozenset()
) -> int:
    """Write the layer tar of ``upper`` to ``out``; returns the number of entries. ``skip``
    names relative paths left out (mount points the runtime created)."""
    count = 0
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, path in walk(upper):
            if rel in skip:
                continue
            count += _add(tar, rel, path, markers)
    return count


def to_bytes(
    upper: Path, *, markers: Markers = OVERLAY, skip: frozenset[str] = frozenset()
) -> tuple[bytes, int]:
    buf = io.BytesIO()
    count = write(upper, buf, markers=markers, skip=skip)
    return buf.getvalue(), count


def walk(root: Path) -> list[tuple[str, Path]]:
    """``(relative name, path)`` of everything under ``root``, parents first, sorted."""
    out: list[tuple[str, Path]] = []

    def visit(directory: Path, prefix: str) -> None:
        for name in sorted(os.listdir(directory)):
            path = directory / name
            rel = f"{prefix}{name}"
            out.append((rel, path))
            if path.is_dir() and not path.is_symlink():
                visit(path, rel + "/")

    visit(root, "")
    return out


def _add(tar: tarfile.TarFile, rel: str, path: Path, markers: Markers) -> int:
    st = path.lstat()
    if markers.whiteout(path, st):
        parent, _, name = rel.rpartition("/")
        tar.addfile(_marker(f"{parent}/" if parent else "", unpack.WHITEOUT_PREFIX + name, st))
        return 1
    info = tar.gettarinfo(str(path), arcname=rel)
    if info is None:  # a socket: not representable in a layer, as in Docker
        return 0
    info.uname = info.gname = ""
    _copy_xattrs(path, info)
    if info.isreg():
        with path.open("rb") as f:
            tar.addfile(info, f)
    else:
        tar.addfile(info)
    if info.isdir() and markers.opaque(path):
        tar.addfile(_marker(rel + "/", unpack.OPAQUE_MARKER, st))
        return 2
    return 1


def _marker(prefix: str, name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(prefix + name)
    info.mtime = int(st.st_mtime)
    info.mode = 0o644
    return info


def _copy_xattrs(path: Path, info: tarfile.TarInfo) -> None:
    if info.issym():
        return
    headers = dict(info.pax_headers)
    with contextlib.suppress(OSError):
        for key in os.listxattr(path, follow_symlinks=False):
            if key.startswith("trusted.overlay.") or key == unpack.OPAQUE_XATTR:
                continue
            value = os.getxattr(path, key, follow_symlinks=False)
            headers["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")
    info.pax_headers = headers
