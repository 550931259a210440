"""Unpack one layer tar into a snapshot directory, safely and verifiably.

The layer blob may be gzip, zstd (through the ``zstd`` command, when installed) or plain tar;
the uncompressed stream is hashed while it is read and must equal the layer's diffID from the
image config, so a snapshot is keyed by what it contains. Entries are extracted one by one,
never through ``tarfile.extractall``: absolute paths, ``..``, writing through a symlink, hard
links to anything outside the layer and device nodes are refused (:class:`errors.UnsafeLayer`).

OCI whiteouts become overlayfs whiteouts so the runtime can stack snapshots directly:
``.wh.<name>`` -> a character device 0/0 named ``<name>``, ``.wh..wh..opq`` -> the
``trusted.overlay.opaque=y`` xattr on the directory. Both need root (CAP_MKNOD and
CAP_SYS_ADMIN for ``trusted.*``); without root the OCI marker files are kept as they are and
the caller records ``whiteouts="oci"`` for the snapshot (an overlay cannot use it directly; a
root runtime never sees such snapshots because it unpacks as root).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from kybern.runtime.images import errors

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class UnpackResult:
    diff_id: str  # sha256 of the uncompressed tar
    size: int  # bytes of file content written
    whiteouts: str  # "overlay" (device nodes and xattrs) or "oci" (marker files kept)


def compression_of(head: bytes) -> str:
    """``gzip``, ``zstd`` or ``none`` from a blob's first bytes."""
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    return "none"


class _HashingReader(io.RawIOBase):
    """Reads from a stream while hashing every byte that passes through."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.raw.read(len(buffer))
        self.hash.update(data)
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.read(1 << 16):
            pass


@contextlib.contextmanager
def open_uncompressed(blob: Path) -> Iterator[IO[bytes]]:
    """The blob's uncompressed byte stream, whatever its compression."""
    with blob.open("rb") as f:
        kind = compression_of(f.read(4))
        f.seek(0)
        if kind == "gzip":
            with gzip.GzipFile(fileobj=f, mode="rb") as g:
                yield g  # type: ignore[misc]  # GzipFile is a binary IO
        elif kind == "zstd":
            yield from _zstd_stream(blob)
        else:
            yield f


def _zstd_stream(blob: Path) -> Iterator[IO[bytes]]:
    if shutil.which("zstd") is None:
        raise errors.UnsafeLayer("layer is zstd-compressed and the zstd command is not installed")
    proc = subprocess.Popen(["zstd", "-dc", "--", str(blob)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        yield proc.stdout
    finally:
        proc.stdout.close()
        if proc.wait() != 0:
            raise errors.UnsafeLayer(f"zstd failed to decompress {blob.name}")


def diff_id_of(blob: Path) -> str:
    """The digest of a layer's uncompressed content."""
    with open_uncompressed(blob) as stream:
        reader = _HashingReader(stream)
        reader.drain()
    return "sha256:" + reader.hash.hexdigest()


def unpack(
    blob: Path, dest: Path, *, expected_diff_id: str = "", as_root: bool | None = None
) -> UnpackResult:
    """Extract the layer ``blob`` into the empty or new directory ``dest``.

    Raises :class:`errors.DigestMismatch` when the content's digest is not ``expected_diff_id``
    and :class:`errors.UnsafeLayer` for a layer it refuses; ``dest`` is then left partial and the
    caller discards it. ``as_root`` (default: whether we run as root) picks the whiteout form.
    """
    dest.mkdir(parents=True, exist_ok=True)
    root = os.geteuid() == 0 if as_root is None else as_root
    extractor = _Extractor(dest.resolve(), as_root=root)
    with open_uncompressed(blob) as stream:
        reader = _HashingReader(stream)
        buffered = io.BufferedReader(reader, buffer_size=1 << 16)
        try:
            with tarfile.open(fileobj=buffered, mode="r|") as tar:
                for member in tar:
                    extractor.extract(tar, member)
        except tarfile.TarError as e:
            raise errors.UnsafeLayer(f"malformed layer tar: {e}") from e
        while buffered.read(1 << 16):  # the tar's trailing padding counts in the digest
            pass
    extractor.finish()
    diff_id = "sha256:" + reader.hash.hexdigest()
    if expected_diff_id and diff_id != expected_diff_id:
        raise errors.DigestMismatch(
            f"layer content has diffID {diff_id}, expected {expected_diff_id}"
        )
    return UnpackResult(diff_id=diff_id, size=extractor.size, whiteouts=extractor.whiteout_mode)


def safe_name(name: str) -> PurePosixPath:
    """The member's path relative to the layer root; refuses absolute paths and ``..``."""
    path = PurePosixPath(name)
    if path.is_absolute():
        raise errors.UnsafeLayer(f"layer entry has an absolute path: {name!r}")
    parts = [p for p in path.parts if p != "."]
    if ".." in parts:
        raise errors.UnsafeLayer(f"layer entry escapes the layer with '..': {name!r}")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


class _Extractor:
    def __init__(self, root: Path, *, as_root: bool) -> None:
        self.root = root
        self.as_root = as_root
        self.whiteout_mode = "overlay" if as_root else "oci"
        self.size = 0
        self.dirs: list[tuple[Path, tarfile.TarInfo]] = []  # modes and times set at the end

    def extract(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        rel = safe_name(member.name)
        if rel == PurePosixPath("."):
            self.dirs.append((self.root, member))
            return
        target = self._target(rel)
        if rel.name == OPAQUE_MARKER:
            self._opaque(target.parent)
        elif rel.name.startswith(WHITEOUT_PREFIX):
            hidden = rel.name.removeprefix(WHITEOUT_PREFIX)
            if hidden in ("", ".", ".."):
                raise errors.UnsafeLayer(f"invalid whiteout entry {member.name!r}")
            self._whiteout(target.parent / hidden, target)
        else:
            self._entry(tar, member, target)

    def _target(self, rel: PurePosixPath) -> Path:
        """``root/rel`` after making sure no existing parent is a symlink (never write through one)."""
        current = self.root
        for part in rel.parts[:-1]:
            current = current / part
            try:
                st = current.lstat()
            except FileNotFoundError:
                current.mkdir(mode=0o755)
                continue
            if stat.S_ISLNK(st.st_mode):
                raise errors.UnsafeLayer(
                    f"layer entry {str(rel)!r} would be written through a symlink"
                )
            if not stat.S_ISDIR(st.st_mode):
                raise errors.UnsafeLayer(f"layer entry {str(rel)!r} has a non-directory parent")
        return current / rel.parts[-1]

    def _entry(self, tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
        if member.isdir():
            if target.is_symlink() or (target.exists() and not target.is_dir()):
                target.unlink()
            target.mkdir(mode=0o755, exist_ok=True)
            self.dirs.append((target, member))
            return
        _remove(target)
        if member.isfile():
            self._file(tar, member, target)
        elif member.issym():
            os.symlink(member.linkname, target)  # resolved inside the container's root later
        elif member.islnk():
            self._hardlink(member, target)
        elif member.isfifo():
            os.mkfifo(target)
        else:
            raise errors.UnsafeLayer(f"layer entry {member.name!r} is a device node; refused")
        self._attributes(target, member)

    def _file(self, tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
        source = tar.extractfile(member)
        assert source is not None
        with source, target.open("xb") as out:
            shutil.copyfileobj(source, out, 1 << 16)
        self.size += member.size

    def _hardlink(self, member: tarfile.TarInfo, target: Path) -> None:
        rel = safe_name(member.linkname)
        source = self.root / rel
        try:
            st = source.lstat()
        except FileNotFoundError:
            raise errors.UnsafeLayer(
                f"hard link {member.name!r} points outside the layer: {member.linkname!r}"
            ) from None
        if stat.S_ISDIR(st.st_mode) or self._through_symlink(rel):
            raise errors.UnsafeLayer(f"hard link {member.name!r} to {member.linkname!r} refused")
        os.link(source, target, follow_symlinks=False)

    def _through_symlink(self, rel: PurePosixPath) -> bool:
        current = self.root
        for part in rel.parts[:-1]:
            current = current / part
            if current.is_symlink():
                return True
        return False

    def _whiteout(self, hidden: Path, marker: Path) -> None:
        _remove(hidden)
        if self.as_root:
            os.mknod(hidden, stat.S_IFCHR | 0o000, os.makedev(0, 0))
        else:
            marker.touch()

    def _opaque(self, directory: Path) -> None:
        # Entries of this same layer unpacked before the marker stay: opaque hides lower layers only.
        if self.as_root:
            os.setxattr(directory, OPAQUE_XATTR, b"y")
        else:
            (directory / OPAQUE_MARKER).touch()

    def _attributes(self, target: Path, member: tarfile.TarInfo) -> None:
        if self.as_root:
            with contextlib.suppress(OSError):
                os.lchown(target, member.uid, member.gid)
            self._xattrs(target, member)
        if not member.issym():
            os.chmod(target, member.mode & 0o7777)
        with contextlib.suppress(OSError):
            os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)

    def _xattrs(self, target: Path, member: tarfile.TarInfo) -> None:
        for key, value in member.pax_headers.items():
            if key.startswith("SCHILY.xattr.") and not member.issym():
                with contextlib.suppress(OSError):
                    os.setxattr(
                        target,
                        key.removeprefix("SCHILY.xattr."),
                        value.encode("utf-8", "surrogateescape"),
                    )

    def finish(self) -> None:
        """Directory owners, modes and times, deepest first (a read-only directory last)."""
        for path, member in reversed(self.dirs):
            if self.as_root:
                with contextlib.suppress(OSError):
                    os.lchown(path, member.uid, member.gid)
                self._xattrs(path, member)
            os.chmod(path, member.mode & 0o7777)
            with contextlib.suppress(OSError):
                os.utime(path, (member.mtime, member.mtime))


def _remove(path: Path) -> None:
    """Remove whatever is at ``path`` (a later entry replaces an earlier one)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        path.unlink()
