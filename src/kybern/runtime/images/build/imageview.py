"""Read-only questions about an image's file system without mounting it: stat a path through
the stacked layer snapshots (top layer first, honouring whiteouts), read ``/etc/passwd``, and
resolve ``USER``/``--chown`` names to numeric ids as Docker does."""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from kybern.runtime.images import unpack
from kybern.runtime.images.build.errors import BuildError


class ImageView:
    def __init__(self, layers: list[Path]) -> None:
        self.layers = list(layers)  # bottom first

    def stat(self, rel: str) -> os.stat_result | None:
        """``lstat`` of the image path ``rel`` ("etc/passwd"), or None when absent."""
        parts = PurePosixPath(rel).parts
        for layer in reversed(self.layers):
            if _hidden(layer, parts):
                return None
            try:
                st = (layer / rel).lstat()
            except OSError:
                if _opaque_above(layer, parts):
                    return None
                continue
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                return None
            return st
        return None

    def read_text(self, rel: str) -> str:
        for layer in reversed(self.layers):
            path = layer / rel
            if os.path.lexists(path):
                if path.is_symlink() or not path.is_file():
                    return ""
                return path.read_text(errors="replace")
        return ""


def _hidden(layer: Path, parts: tuple[str, ...]) -> bool:
    """Whether an OCI-style whiteout marker in ``layer`` hides the path or a parent."""
    for k in range(len(parts)):
        parent = layer.joinpath(*parts[:k])
        if (parent / (unpack.WHITEOUT_PREFIX + parts[k])).exists():
            return True
    return False


def _opaque_above(layer: Path, parts: tuple[str, ...]) -> bool:
    for k in range(len(parts)):
        parent = layer.joinpath(*parts[:k])
        try:
            if os.getxattr(parent, unpack.OPAQUE_XATTR) == b"y":
                return True
        except OSError:
            pass
        if (parent / unpack.OPAQUE_MARKER).exists():
            return True
    return False


def resolve_user(spec: str, passwd: str, group: str) -> tuple[int, int, list[int]]:
    """``(uid, gid, additional gids)`` for ``user[:group]`` given /etc/passwd and /etc/group."""
    user, _, grp = spec.partition(":")
    users = _table(passwd)
    groups = _table(group)
    if user.isdigit():
        uid = int(user)
        entry = next((e for e in users.values() if e[1] == user), None)
        gid = int(entry[2]) if entry and len(entry) > 2 and entry[2].isdigit() else 0
        name = entry[0] if entry else ""
    elif user in users and len(users[user]) > 2:
        uid, gid, name = int(users[user][1]), int(users[user][2]), user
    else:
        raise BuildError(f"unable to find user {user}: no matching entries in passwd file")
    if grp:
        gid = _group_id(grp, groups)
    extra = sorted(
        {
            int(e[1])
            for e in groups.values()
            if len(e) > 2 and name and name in e[2].split(",") and e[1].isdigit()
        }
    )
    return uid, gid, extra


def _group_id(grp: str, groups: dict[str, list[str]]) -> int:
    if grp.isdigit():
        return int(grp)
    if grp in groups and len(groups[grp]) > 1 and groups[grp][1].isdigit():
        return int(groups[grp][1])
    raise BuildError(f"unable to find group {grp}: no matching entries in group file")


def _table(text: str) -> dict[str, list[str]]:
    """name -> the remaining colon-separated fields (passwd: x, uid, gid, ...; group: x, gid,
    members)."""
    out = {}
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) >= 3 and not line.startswith("#"):
            out[fields[0]] = [fields[0], *fields[2:]]
    return out
