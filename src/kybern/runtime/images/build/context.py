"""COPY and ADD: which files go where, with which owner and mode, and the layer tar of them.

:class:`Tree` is a source of files (the build context filtered by ``.dockerignore``, or another
stage's root file system for ``COPY --from``); :func:`plan` turns sources and a destination into
:class:`Item` s following Docker's rules (a directory's contents are copied, not the directory;
several sources need a destination ending in ``/``; a local tar archive given to ADD is
extracted); :func:`digest` is the cache input (content, mode, owner, link target, never times)
and :func:`write_tar` the layer. Missing parent directories get entries (0755, or the owner from
``--chown``); existing ones keep the image's mode and owner.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import re
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kybern.runtime.images import errors, unpack
from kybern.runtime.images.build import ignore
from kybern.runtime.images.build.errors import BuildError

_GLOB = re.compile(r"[*?\[]")
StatLookup = Callable[[str], os.stat_result | None]


@dataclass(frozen=True)
class Item:
    name: str  # path in the image, relative ("app/main.py")
    kind: str  # file, dir, symlink, hardlink
    mode: int
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    source: Path | None = None  # file content on disk
    data: bytes | None = None  # file content from an archive
    target: str = ""  # symlink or hard link target


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int


class Tree:
    """Files under ``root`` minus the ``.dockerignore`` exclusions."""

    def __init__(self, root: Path, patterns: list[ignore.Pattern] | None = None) -> None:
        self.root = root
        self.patterns = patterns or []
        self._all: list[str] | None = None

    def visible(self, rel: str) -> bool:
        return rel == "." or not ignore.excluded(rel, self.patterns)

    def everything(self) -> list[str]:
        if self._all is None:
            self._all = []
            for top, dirs, files in os.walk(self.root):
                dirs.sort()
                base = os.path.relpath(top, self.root)
                for name in sorted(dirs + files):
                    rel = name if base == "." else f"{base}/{name}"
                    if self.visible(rel):
                        self._all.append(rel)
        return self._all

    def resolve(self, source: str) -> list[str]:
        """Context-relative paths a COPY source names (wildcards expanded)."""
        cleaned = posixpath.normpath("/" + source).lstrip("/") or "."
        if posixpath.normpath(source).startswith("../") or posixpath.normpath(source) == "..":
            raise BuildError(f"forbidden path outside the build context: {source}")
        if _GLOB.search(cleaned):
            regex = ignore.compile_pattern(cleaned)
            return [p for p in self.everything() if regex.match(p)]
        if not os.path.lexists(self.root / cleaned) or not self.visible(cleaned):
            return []
        return [cleaned]

    def below(self, rel: str) -> list[str]:
        prefix = "" if rel == "." else rel + "/"
        return [p for p in self.everything() if p.startswith(prefix)]


def plan(
    tree: Tree,
    sources: list[str],
    dest: str,
    *,
    owner: Owner | None,
    chmod: int | None,
    lookup: StatLookup,
    extract_archives: bool = False,
) -> list[Item]:
    """The items of one COPY/ADD; ``dest`` is absolute, ``lookup`` stats image paths."""
    matched: list[str] = []
    for src in sources:
        found = tree.resolve(src)
        if not found:
            raise BuildError(
                f"{src!r} not found in the build context (or excluded by .dockerignore)"
            )
        matched.extend(found)
    dest_rel = posixpath.normpath(dest).lstrip("/")
    dest_rel = "" if dest_rel == "." else dest_rel
    existing = lookup(dest_rel) if dest_rel else None
    is_dir_dest = dest.endswith("/") or not dest_rel
    is_dir_dest = is_dir_dest or (existing is not None and stat.S_ISDIR(existing.st_mode))
    if len(matched) > 1 and not is_dir_dest:
        raise BuildError(
            "when using COPY/ADD with more than one source file, the destination must be a directory and end with a /"
        )
    items: list[Item] = []
    for rel in matched:
        path = tree.root / rel
        st = path.lstat()
        if stat.S_ISDIR(st.st_mode):
            inside = _directory(tree, rel, dest_rel, owner, chmod)
            if not inside and dest_rel and existing is None:
                uid, gid = (owner.uid, owner.gid) if owner else (0, 0)
                inside = [Item(dest_rel, "dir", 0o755, uid, gid, int(st.st_mtime))]
            items.extend(inside)
        elif extract_archives and stat.S_ISREG(st.st_mode) and _is_archive(path):
            items.extend(_archive(path, dest_rel, owner, chmod))
        else:
            name = _join(dest_rel, posixpath.basename(rel)) if is_dir_dest else dest_rel
            items.append(_item(name, path, st, owner, chmod))
    return _with_parents(items, lookup, owner)


def _join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


def _item(
    name: str, path: Path, st: os.stat_result, owner: Owner | None, chmod: int | None
) -> Item:
    uid, gid = (owner.uid, owner.gid) if owner else (0, 0)
    if stat.S_ISLNK(st.st_mode):
        return Item(name, "symlink", 0o777, uid, gid, int(st.st_mtime), target=os.readlink(path))
    mode = chmod if chmod is not None else stat.S_IMODE(st.st_mode)
    kind = "dir" if stat.S_ISDIR(st.st_mode) else "file"
    if kind == "file" and not stat.S_ISREG(st.st_mode):
        raise BuildError(f"{path.name}: only regular files, directories and symlinks can be copied")
    return Item(
        name, kind, mode, uid, gid, int(st.st_mtime), source=path if kind == "file" else None
    )


def _directory(
    tree: Tree, rel: str, dest: str, owner: Owner | None, chmod: int | None
) -> list[Item]:
    # The destination directory itself is created like any missing parent (or kept as it is).
    items = []
    prefix_len = 0 if rel == "." else len(rel) + 1
    for sub in tree.below(rel):
        path = tree.root / sub
        items.append(_item(_join(dest, sub[prefix_len:]), path, path.lstat(), owner, chmod))
    return items


def _is_archive(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _archive(path: Path, dest: str, owner: Owner | None, chmod: int | None) -> list[Item]:
    items = []
    with tarfile.open(path, mode="r:*") as tar:
        for member in tar:
            try:
                rel = unpack.safe_name(member.name)
            except errors.UnsafeLayer as e:
                raise BuildError(f"ADD {path.name}: {e}") from None
            if str(rel) == ".":
                continue
            name = _join(dest, str(rel))
            uid, gid = (owner.uid, owner.gid) if owner else (member.uid, member.gid)
            mode = chmod if chmod is not None else member.mode & 0o7777
            if member.isdir():
                items.append(Item(name, "dir", mode, uid, gid, int(member.mtime)))
            elif member.isreg():
                f = tar.extractfile(member)
                data = f.read() if f else b""
                items.append(Item(name, "file", mode, uid, gid, int(member.mtime), data=data))
            elif member.issym():
                items.append(
                    Item(
                        name, "symlink", 0o777, uid, gid, int(member.mtime), target=member.linkname
                    )
                )
            elif member.islnk():
                target = _join(dest, str(unpack.safe_name(member.linkname)))
                items.append(
                    Item(name, "hardlink", mode, uid, gid, int(member.mtime), target=target)
                )
            else:
                raise BuildError(
                    f"ADD {path.name}: entry {member.name!r} is a device node or fifo; refused"
                )
    return items


def _with_parents(items: list[Item], lookup: StatLookup, owner: Owner | None) -> list[Item]:
    """``items`` preceded by entries for their parent directories, parents first."""
    named = {i.name for i in items}
    parents: dict[str, Item] = {}
    for item in items:
        for parent in PurePosixPath(item.name).parents:
            p = str(parent)
            if p == "." or p in named or p in parents:
                continue
            st = lookup(p)
            if st is not None and stat.S_ISDIR(st.st_mode):
                parents[p] = Item(
                    p, "dir", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)
                )
            else:
                uid, gid = (owner.uid, owner.gid) if owner else (0, 0)
                parents[p] = Item(p, "dir", 0o755, uid, gid, item.mtime)
    merged = {**parents, **{i.name: i for i in items}}  # a later source replaces an earlier one
    return [merged[k] for k in sorted(merged, key=lambda n: PurePosixPath(n).parts)]


def digest(items: list[Item]) -> str:
    """The cache input of a COPY/ADD: names, kinds, modes, owners, targets and content."""
    h = hashlib.sha256()
    for i in items:
        h.update(f"{i.name}\0{i.kind}\0{i.mode:o}\0{i.uid}:{i.gid}\0{i.target}\0".encode())
        if i.kind == "file":
            h.update(_content_digest(i).encode())
        h.update(b"\n")
    return "sha256:" + h.hexdigest()


def _content_digest(item: Item) -> str:
    h = hashlib.sha256()
    if item.data is not None:
        h.update(item.data)
    elif item.source is not None:
        with item.source.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def write_tar(items: list[Item]) -> bytes:
    """The uncompressed layer tar of ``items`` (already in parents-first order)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in items:
            info = tarfile.TarInfo(i.name)
            info.mode, info.uid, info.gid, info.mtime = i.mode, i.uid, i.gid, i.mtime
            info.type = {
                "file": tarfile.REGTYPE,
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
            }[i.kind]
            info.linkname = i.target
            if i.kind != "file":
                tar.addfile(info)
            elif i.data is not None:
                info.size = len(i.data)
                tar.addfile(info, io.BytesIO(i.data))
            else:
                assert i.source is not None
                info.size = i.source.stat().st_size
                with i.source.open("rb") as f:
                    tar.addfile(info, f)
    return out.getvalue()
